/**
 * The Redis store refuses to start on a Redis that may evict its keys
 * (src/store/redis-memory-policy.ts): every maxmemory-policy but noeviction, on a real
 * redis-server and on each master of a real Cluster, unless `allowEvictingPolicy` is set.
 */
import t from 'tap';
import { isOnairError } from '../../src/errors.js';
import { checkMemoryPolicy, memorySettingsOf } from '../../src/store/redis-memory-policy.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { StoreLogger } from '../../src/store/redis-connection.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { redisCli, startRedisServer } from '../helpers/redis-server.js';
import { rejection } from '../helpers/wait-until.js';

const EVICTING_POLICIES = ['allkeys-lru', 'allkeys-lfu', 'allkeys-random', 'volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl'];

/** A logger that keeps its warnings. */
function recordingLogger(): StoreLogger & { warnings: { object: object; message?: string }[] } {
  const warnings: { object: object; message?: string }[] = [];
  return { warnings, info() {}, error() {}, warn: (object, message) => void warnings.push({ object, message }) };
}

t.test('INFO memory gives the policy and the limit', async (t) => {
  const info = '# Memory\r\nused_memory:1020152\r\nmaxmemory:104857600\r\nmaxmemory_human:100.00M\r\nmaxmemory_policy:allkeys-lru\r\n';
  t.strictSame(memorySettingsOf(info), { policy: 'allkeys-lru', maxmemory: 104_857_600 });
  t.equal(memorySettingsOf('# Memory\r\nused_memory:1\r\n'), undefined, 'a reply without the policy');
});

t.test('a redis-server whose policy may evict is refused at start with ONAIR_STORE_POLICY, unless allowed', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const cli = (...args: string[]) => redisCli(['-p', String(redis.port), ...args]);

  const open = new RedisStore({ url: redis.url });
  await open.start();
  await open.close();
  t.pass('noeviction (the default) starts');

  for (const policy of EVICTING_POLICIES) {
    await cli('CONFIG', 'SET', 'maxmemory-policy', policy);
    const store = new RedisStore({ url: redis.url, readyTimeoutMs: 2000 });
    t.teardown(() => store.close());
    const { error } = await rejection(store.start());
    t.ok(isOnairError(error, 'ONAIR_STORE_POLICY'), `${policy}: refused with ONAIR_STORE_POLICY`);
    t.match((error as Error).message, new RegExp(`maxmemory-policy is ${policy}\\b.*noeviction.*redis\\.allowEvictingPolicy`), `${policy}: the message names the setting, the fix and the override`);

    const logger = recordingLogger();
    const allowed = new RedisStore({ url: redis.url, allowEvictingPolicy: true, logger });
    t.teardown(() => allowed.close());
    await allowed.start();
    await allowed.putStatus('fip', 'on');
    t.equal(await allowed.getStatus('fip'), 'on', `${policy}: with allowEvictingPolicy the store starts and works`);
    t.match(logger.warnings, [{ object: { maxmemoryPolicy: policy }, message: /may evict/ }], `${policy}: and warns`);
    await allowed.close();
  }
});

// ioredis's own ready check needs INFO, so a real server cannot refuse it to us: a stand-in node does.
t.test('a node that will not say its policy is passed with a warning; the next one is still checked', async (t) => {
  const logger = recordingLogger();
  const silent = { address: 'a:6379', infoMemory: () => Promise.reject(new Error("ERR unknown command 'INFO'")) };
  const mute = { address: 'b:6379', infoMemory: async () => '# Memory\r\nused_memory:1\r\n' };
  const evicting = { address: 'c:6379', infoMemory: async () => 'maxmemory_policy:allkeys-lru\r\n' };
  await checkMemoryPolicy([silent, mute], { allowEvicting: false, logger });
  t.match(logger.warnings, [{ object: { url: 'a:6379' }, message: /cannot read maxmemory-policy/ }, { object: { url: 'b:6379' }, message: /no maxmemory_policy/ }]);
  const { error } = await rejection(checkMemoryPolicy([silent, evicting], { allowEvicting: false, logger }));
  t.ok(isOnairError(error, 'ONAIR_STORE_POLICY'));
  t.equal((error as { where?: string }).where, 'c:6379');
});

t.test('every master of a Cluster is checked', async (t) => {
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());
  const last = cluster.ports.at(-1)!;
  await redisCli(['-p', String(last), 'CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru']);
  const store = new RedisStore({ url: cluster.url });
  t.teardown(() => store.close());
  const { error } = await rejection(store.start());
  t.ok(isOnairError(error, 'ONAIR_STORE_POLICY'), 'refused for the one master that evicts');
  t.match((error as Error).message, `127.0.0.1:${last}`, 'the message names that node');
});
