/**
 * The Redis store on a Cluster and behind Sentinel, beyond the shared contract
 * (store-contract.test.ts): the same fail-fast limits during an outage as on a single
 * server, and healing on the same store instance when the Sentinel's master is back.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { isOnairError } from '../../src/errors.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { startRedisSentinel } from '../helpers/redis-sentinel.js';

import { eventually, rejection } from '../helpers/wait-until.js';

const uniquePrefix = (): string => `test-${randomUUID().slice(0, 8)}`;



/** One cluster for the Cluster tests: restarted by the first, stopped for good by the second. */
const cluster = await startRedisCluster();
t.teardown(() => cluster.stop());

t.test('a cluster store heals on the same instance when the cluster comes back', async (t) => {
  const store = new RedisStore({ url: cluster.url, keyPrefix: uniquePrefix() });
  t.teardown(() => store.close());
  await store.start();
  const heard: string[] = [];
  await store.subscribe((channel) => heard.push(channel));
  const before = await store.acquireLease('fip', 'packager-a', 30_000);

  await cluster.restart({ signal: 'SIGKILL', downMs: 1500 });
  const restarted = Date.now();
  await eventually(10_000, () => store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'after' }, state: '{"back":true}' }));
  t.comment(`writing again ${Date.now() - restarted} ms after the cluster is ok`);
  t.equal(await store.getState('fip'), '{"back":true}', 'the same store instance writes and reads again');
  const after = await store.acquireLease('fip', 'packager-b', 30_000);
  t.not(after?.token, before?.token, 'the lease was lost with the data and is taken with a new token');
  await eventually(10_000, async () => {
    await store.publish({ channel: 'fipjazz', playlists: {}, state: '{}' });
    if (!heard.includes('fipjazz')) throw new Error('no update heard yet');
  });
  t.ok(heard.includes('fipjazz'), 'the subscriber hears publishes again');
  t.comment(`hearing again ${Date.now() - restarted} ms after the cluster is ok`);
});

t.test('a cluster store whose nodes are all gone fails fast with ONAIR_STORE_UNAVAILABLE', async (t) => {
  const store = new RedisStore({ url: cluster.url, keyPrefix: uniquePrefix() });
  t.teardown(() => store.close());
  await store.start();
  await store.subscribe(() => {});
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'master' }, state: '{}' });

  await cluster.stop();
  for (const when of ['at once', 'later in the outage']) {
    const failure = await rejection(store.getPlaylist('fip', 'fip.m3u8'));
    t.ok(isOnairError(failure.error, 'ONAIR_STORE_UNAVAILABLE'), `a read fails with ONAIR_STORE_UNAVAILABLE ${when}`);
    t.ok(failure.elapsedMs < 3000, `within 3 s (${failure.elapsedMs} ms)`);
    const write = await rejection(store.putSegment('fip', 'hifi', '1.ts', Uint8Array.from([1]), 30));
    t.ok(isOnairError(write.error, 'ONAIR_STORE_UNAVAILABLE'), 'so does a write');
    t.ok(write.elapsedMs < 3000, `within 3 s (${write.elapsedMs} ms)`);
    await sleep(1000);
  }
});

t.test('a sentinel store fails fast while the master is down and heals when it is back', async (t) => {
  const sentinel = await startRedisSentinel();
  t.teardown(() => sentinel.stop());
  const store = new RedisStore({ url: sentinel.url, keyPrefix: uniquePrefix() });
  t.teardown(() => store.close());
  await store.start();
  const heard: string[] = [];
  await store.subscribe((channel) => heard.push(channel));
  await sentinel.master.stop({ signal: 'SIGKILL' });
  const failure = await rejection(store.getState('fip'));
  t.ok(isOnairError(failure.error, 'ONAIR_STORE_UNAVAILABLE'), 'a read fails with ONAIR_STORE_UNAVAILABLE');
  t.ok(failure.elapsedMs < 3000, `within 3 s (${failure.elapsedMs} ms)`);

  await sentinel.master.start();
  await eventually(5000, () => store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'after' }, state: '{"back":true}' }));
  t.equal(await store.getState('fip'), '{"back":true}', 'the same store instance writes and reads again');
  await eventually(5000, async () => {
    await store.publish({ channel: 'fipjazz', playlists: {}, state: '{}' });
    if (!heard.includes('fipjazz')) throw new Error('no update heard yet');
  });
  t.ok(heard.includes('fipjazz'), 'the subscriber hears publishes again');
});
