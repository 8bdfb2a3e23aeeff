/**
 * The origin's error lines while the store is down (src/http/error-replies.ts) through the
 * process logger (src/logging/create-logger.ts): a real redis-server is stopped, signed-style
 * requests keep coming, and the log holds no token and one line per window with a count.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger } from '../../src/logging/create-logger.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { startRedisServer } from '../helpers/redis-server.js';

t.test('while the store is down the origin answers 503 and logs neither tokens nor one line per request', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const store = new RedisStore({ url: redis.url, keyPrefix: `onair-test-${process.pid}`, commandTimeoutMs: 300 });
  await store.start();
  t.teardown(() => store.close());
  let output = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output += chunk.toString();
      done();
    },
  });
  const logClock = new ManualClock();
  const logger = createLogger({ level: 'info', destination, pretty: false, clock: logClock, repeatWindowMs: 5000 });
  const app = await buildOrigin({ store, channels: [{ id: 'fip', renditions: ['hifi'] }], targetDurationSeconds: 4, storeTimeoutMs: 500, logger });
  t.teardown(() => app.close());

  await redis.stop();
  const token = '1767225600.c2VjcmV0LXRva2VuLXZhbHVl';
  const statuses: number[] = [];
  for (let request = 0; request < 20; request++) {
    const response = await app.inject({ method: 'GET', url: `/fip/hifi/${1000 + request}-1.ts?token=${token}` });
    statuses.push(response.statusCode);
  }
  t.same([...new Set(statuses)], [503], 'every request: 503 while the store is down');
  const lines = (): { msg: string; url?: string; repeated?: number }[] =>
    output.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { msg: string; url?: string; repeated?: number });
  const unavailable = () => lines().filter((line) => line.msg === 'store unavailable');
  t.equal(unavailable().length, 1, 'one line for 20 requests so far');
  t.equal(unavailable()[0]!.url, '/fip/hifi/1000-1.ts?token=***', 'the URL is logged with its token redacted');
  await logClock.advance(5000);
  t.equal(unavailable().length, 2, 'the window ends: the count');
  t.equal(unavailable()[1]!.repeated, 19, "standing for the 19 lines held back");
  t.notOk(output.includes(token), 'the token is in no line');
  t.notOk(output.includes('c2VjcmV0'), 'not even part of it');
});
