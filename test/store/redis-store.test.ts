/**
 * What only the Redis store has to get right: the key layout on a real server, outages
 * (fail fast, then heal on the same instance), and clients it does not own.
 * The behaviour it shares with the memory store is in store-contract.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import t from 'tap';
import { isOnairError } from '../../src/errors.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { redisCli, startRedisServer } from '../helpers/redis-server.js';

import { eventually, rejection } from '../helpers/wait-until.js';

const uniquePrefix = (): string => `test-${randomUUID().slice(0, 8)}`;



t.test('every key the store writes carries the channel as a hash tag', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const keyPrefix = uniquePrefix();
  const store = new RedisStore({ url: server.url, keyPrefix });
  t.teardown(() => store.close());
  await store.start();
  await store.putSegment('fip', 'hifi', '1234-3.ts', Uint8Array.from([1]), 30);
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'master', 'fip_hifi.m3u8': 'hifi' }, state: '{}' });
  await store.putStatus('fip-jazz', '{}');
  const lease = await store.acquireLease('fip', 'packager-a', 30_000);
  await store.putStatus('fip', '{}', lease!.token);

  const inspector = new Redis(server.url);
  t.teardown(() => inspector.quit());
  const keys = (await inspector.keys('*')).sort();
  t.same(keys, [
    `${keyPrefix}:{fip-jazz}:status`,
    `${keyPrefix}:{fip}:fence`,
    `${keyPrefix}:{fip}:lease`,
    `${keyPrefix}:{fip}:playlists`,
    `${keyPrefix}:{fip}:seg:hifi:1234-3.ts`,
    `${keyPrefix}:{fip}:state`,
    `${keyPrefix}:{fip}:status`,
  ]);
  for (const key of keys) t.match(key, /\{[a-z0-9-]+\}/, `${key} has a hash tag`);
  t.same(await inspector.hgetall(`${keyPrefix}:{fip}:playlists`), {
    'fip.m3u8': 'master',
    'fip.m3u8#etag': (await store.getPlaylist('fip', 'fip.m3u8'))?.etag,
    'fip_hifi.m3u8': 'hifi',
    'fip_hifi.m3u8#etag': (await store.getPlaylist('fip', 'fip_hifi.m3u8'))?.etag,
  });
  const ttlMs = await inspector.pttl(`${keyPrefix}:{fip}:seg:hifi:1234-3.ts`);
  t.ok(ttlMs > 25_000 && ttlMs <= 30_000, `the segment key expires with the TTL given (${ttlMs} ms left)`);
  const leaseTtlMs = await inspector.pttl(`${keyPrefix}:{fip}:lease`);
  t.ok(leaseTtlMs > 25_000 && leaseTtlMs <= 30_000, `the lease key expires with the lease (${leaseTtlMs} ms left)`);
  t.equal(await inspector.get(`${keyPrefix}:{fip}:lease`), lease!.token);
  t.equal(await inspector.pttl(`${keyPrefix}:{fip}:status`), -1, 'the status does not expire');
});

t.test('a publish is one script that checks the fence, writes the new playlists, then removes the stale ones, writes the state and announces the channel', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const keyPrefix = uniquePrefix();
  const store = new RedisStore({ url: server.url, keyPrefix });
  t.teardown(() => store.close());
  await store.start();

  const inspector = new Redis(server.url);
  t.teardown(() => inspector.quit());
  const lease = await store.acquireLease('fip', 'packager-a', 30_000);
  // The first call loads the script (EVALSHA, NOSCRIPT, EVAL); the next ones run it by its SHA1.
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'master 1', 'fip_lofi.m3u8': 'lofi 1' }, state: '{}', fence: lease!.token });
  const monitor = await inspector.monitor();
  t.teardown(() => monitor.disconnect());
  const commands: string[] = [];
  monitor.on('monitor', (_time: string, args: string[]) => commands.push(args[0].toLowerCase()));
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'master 2' }, state: '{}', fence: lease!.token });
  await eventually(2000, async () => {
    if (!commands.includes('publish')) throw new Error('PUBLISH not seen yet');
  });
  // HSET first: the first write Redis refuses when memory is full, before anything changed.
  t.same(commands, ['evalsha', 'get', 'hset', 'hkeys', 'hdel', 'set', 'publish']);
  t.equal(await store.getPlaylist('fip', 'fip_lofi.m3u8'), null, 'the stale playlist is gone');
});

t.test('a script that Redis forgot (SCRIPT FLUSH) is loaded again and the write goes through', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const keyPrefix = uniquePrefix();
  const store = new RedisStore({ url: server.url, keyPrefix });
  t.teardown(() => store.close());
  await store.start();
  const lease = await store.acquireLease('fip', 'packager-a', 30_000);
  await store.putSegment('fip', 'hifi', '1.ts', Uint8Array.from([1]), 30, lease!.token);
  const inspector = new Redis(server.url);
  t.teardown(() => inspector.quit());
  await inspector.script('FLUSH');
  await store.putSegment('fip', 'hifi', '2.ts', Uint8Array.from([2]), 30, lease!.token);
  t.same(Buffer.from((await store.getSegment('fip', 'hifi', '2.ts'))!), Buffer.from([2]));
});

t.test('a store whose Redis is down fails fast with ONAIR_STORE_UNAVAILABLE and heals when Redis is back', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const keyPrefix = uniquePrefix();
  const logged: string[] = [];
  const logger = {
    info: (_: object, message?: string) => logged.push(`info: ${message}`),
    warn: (_: object, message?: string) => logged.push(`warn: ${message}`),
    error: (_: object, message?: string) => logged.push(`error: ${message}`),
  };
  const store = new RedisStore({ url: server.url, keyPrefix, logger });
  t.teardown(() => store.close());
  const reader = new RedisStore({ url: server.url, keyPrefix });
  t.teardown(() => reader.close());
  await store.start();
  await reader.start();
  const heard: string[] = [];
  await reader.subscribe((channel) => heard.push(channel));
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'before' }, state: '{}' });

  await server.stop({ signal: 'SIGKILL' });
  const failure = await rejection(store.getPlaylist('fip', 'fip.m3u8'));
  t.ok(isOnairError(failure.error, 'ONAIR_STORE_UNAVAILABLE'), 'a read fails with ONAIR_STORE_UNAVAILABLE');
  t.ok(failure.elapsedMs < 3000, `the read fails within 3 s, not hangs (${failure.elapsedMs} ms)`);
  const writeFailure = await rejection(store.putSegment('fip', 'hifi', '1.ts', Uint8Array.from([1]), 30));
  t.ok(isOnairError(writeFailure.error, 'ONAIR_STORE_UNAVAILABLE'), 'a write fails with ONAIR_STORE_UNAVAILABLE');
  // Deep into an outage the reconnect backoff is at its cap; requests must still fail fast.
  await sleep(3000);
  const lateFailure = await rejection(store.getPlaylist('fip', 'fip.m3u8'));
  t.ok(isOnairError(lateFailure.error, 'ONAIR_STORE_UNAVAILABLE'), 'a read later in the outage fails the same way');
  t.ok(lateFailure.elapsedMs < 3000, `also within 3 s (${lateFailure.elapsedMs} ms)`);

  await server.start();
  const healed = await eventually(5000, () =>
    store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'after' }, state: '{}' }),
  );
  t.ok(healed.elapsedMs < 5000, `the same store instance writes again (${healed.elapsedMs} ms after restart)`);
  t.equal((await reader.getPlaylist('fip', 'fip.m3u8'))?.body, 'after', 'the reader reads again');
  // The subscriber connection re-subscribed by itself: the next publish reaches it.
  await eventually(5000, async () => {
    await store.publish({ channel: 'fipjazz', playlists: { 'fipjazz.m3u8': 'after' }, state: '{}' });
    if (!heard.includes('fipjazz')) throw new Error('no update heard yet');
  });
  t.ok(heard.includes('fipjazz'), 'the reader hears publishes again after the restart');
  t.same(logged, ['warn: redis unreachable; retrying', 'info: redis connection restored'], 'one line per outage, not one per retry');
});

t.test('on a persistent Redis, a crash and restart keep the lease, the playlists and the segments', async (t) => {
  const server = await startRedisServer({ persist: true });
  t.teardown(() => server.stop());
  const store = new RedisStore({ url: server.url, keyPrefix: uniquePrefix() });
  t.teardown(() => store.close());
  await store.start();
  const lease = await store.acquireLease('fip', 'packager-a', 30_000);
  await store.putSegment('fip', 'hifi', '1.ts', Uint8Array.from([0, 255]), 30, lease!.token);
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'master' }, state: '{"msn":1}', fence: lease!.token });

  await server.restart({ signal: 'SIGKILL' });
  const renewed = await eventually(5000, () => store.renewLease(lease!, 30_000));
  t.equal(renewed.value, true, 'the lease is still held by the same token');
  t.equal((await store.getPlaylist('fip', 'fip.m3u8'))?.body, 'master');
  t.same(Buffer.from((await store.getSegment('fip', 'hifi', '1.ts'))!), Buffer.from([0, 255]));
  t.equal(await store.acquireLease('fip', 'packager-b', 30_000), null, 'nobody else can take it');
});

t.test('without persistence, a restarted Redis comes back empty', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const store = new RedisStore({ url: server.url, keyPrefix: uniquePrefix() });
  t.teardown(() => store.close());
  await store.start();
  const lease = await store.acquireLease('fip', 'packager-a', 30_000);
  await server.restart();
  const renewed = await eventually(5000, () => store.renewLease(lease!, 30_000));
  t.equal(renewed.value, false, 'the lease is gone with the data');
});

t.test('start() rejects with ONAIR_STORE_UNAVAILABLE when Redis cannot be reached in time', async (t) => {
  const server = await startRedisServer();
  await server.stop();
  const store = new RedisStore({ url: server.url, readyTimeoutMs: 500 });
  t.teardown(() => store.close());
  const failure = await rejection(store.start());
  t.ok(isOnairError(failure.error, 'ONAIR_STORE_UNAVAILABLE'));
  t.ok(failure.elapsedMs < 2000, `within the ready timeout (${failure.elapsedMs} ms)`);
});

t.test('start() succeeds when Redis comes up within the ready timeout', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  await server.stop();
  const store = new RedisStore({ url: server.url, keyPrefix: uniquePrefix(), readyTimeoutMs: 5000 });
  t.teardown(() => store.close());
  const starting = store.start();
  await sleep(300);
  await server.start();
  await starting;
  await store.putStatus('fip', 'on');
  t.equal(await store.getStatus('fip'), 'on', 'it answers commands');
});

t.test('a store given a client uses it and leaves it open on close()', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const client = new Redis(server.url);
  t.teardown(() => client.quit());
  const keyPrefix = uniquePrefix();
  const store = new RedisStore({ client, keyPrefix });
  await store.start();
  const heard: string[] = [];
  await store.subscribe((channel) => heard.push(channel));
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'master' }, state: '{}' });
  await eventually(2000, async () => {
    if (heard.length === 0) throw new Error('no update heard yet');
  });
  await store.close();
  await store.close();
  t.equal(client.status, 'ready', 'the client is still connected');
  t.equal(await client.get(`${keyPrefix}:{fip}:state`), '{}', 'and still answers');
  const connections = await eventually(2000, async () => {
    const count = String(await client.client('LIST')).trim().split('\n').length;
    if (count !== 1) throw new Error(`${count} connections`);
    return count;
  });
  t.equal(connections.value, 1, "the store's own subscriber connection is closed");
});

t.test('a store built from a bare client does not own it either', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const client = new Redis(server.url);
  t.teardown(() => client.quit());
  const store = new RedisStore(client);
  await store.start();
  await store.close();
  t.equal(await client.ping(), 'PONG');
});

t.test('close() is idempotent and later calls fail with ONAIR_STORE_UNAVAILABLE', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const store = new RedisStore({ url: server.url, keyPrefix: uniquePrefix() });
  await store.start();
  await store.subscribe(() => {});
  await Promise.all([store.close(), store.close()]);
  await store.close();
  const failure = await rejection(store.getState('fip'));
  t.ok(isOnairError(failure.error, 'ONAIR_STORE_UNAVAILABLE'));
  t.ok(isOnairError((await rejection(store.subscribe(() => {}))).error, 'ONAIR_STORE_UNAVAILABLE'));
});

t.test('an invalid store URL is rejected with ONAIR_STORE_URL_INVALID before connecting', async (t) => {
  for (const url of ['not a url', 'http://127.0.0.1:6379', 'redis://', 'redis://127.0.0.1:6379/zero', 'redis://h?db=1']) {
    let error: unknown;
    try {
      new RedisStore({ url });
    } catch (caught) {
      error = caught;
    }
    t.ok(isOnairError(error, 'ONAIR_STORE_URL_INVALID'), `${url} is rejected`);
  }
});

t.test('a publish Redis refuses for memory (noeviction) leaves the previous playlists and state; it goes through once memory frees', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const store = new RedisStore({ url: server.url, keyPrefix: uniquePrefix() });
  t.teardown(() => store.close());
  await store.start();
  const cli = (...args: string[]) => redisCli(['-p', String(server.port), ...args]);
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': 'master 1', 'fip_hifi.m3u8': 'hifi 1', 'fip_lofi.m3u8': 'lofi 1' }, state: '{"msn":1}' });
  const lease = await store.acquireLease('fip', 'me', 60_000);

  // Memory is full: every write that may grow it is refused (noeviction is Redis's default).
  await cli('CONFIG', 'SET', 'maxmemory', '1');
  const next = { channel: 'fip', playlists: { 'fip.m3u8': 'master 2', 'fip_hifi.m3u8': 'hifi 2' }, state: '{"msn":2}' };
  for (const fence of [undefined, lease!.token]) {
    const { error } = await rejection(store.publish({ ...next, fence }));
    t.ok(isOnairError(error, 'ONAIR_STORE_FULL'), `the ${fence ? 'fenced' : 'unfenced'} publish is refused with ONAIR_STORE_FULL`);
    t.equal((await store.getPlaylist('fip', 'fip_hifi.m3u8'))?.body, 'hifi 1', 'the previous playlists are still there');
    t.equal((await store.getPlaylist('fip', 'fip_lofi.m3u8'))?.body, 'lofi 1', 'all of them, even one the refused publish would have removed');
    t.equal(await store.getState('fip'), '{"msn":1}', 'and the previous state');
  }
  const { error } = await rejection(store.putSegment('fip', 'hifi', '3-1.ts', Uint8Array.from([1]), 30, lease!.token));
  t.ok(isOnairError(error, 'ONAIR_STORE_FULL'), 'segment writes are refused the same way');

  await cli('CONFIG', 'SET', 'maxmemory', '0');
  await store.publish({ ...next, fence: lease!.token });
  t.equal((await store.getPlaylist('fip', 'fip_hifi.m3u8'))?.body, 'hifi 2', 'once memory frees, the publish goes through');
  t.equal(await store.getPlaylist('fip', 'fip_lofi.m3u8'), null, 'and removes the playlists it does not carry');
  t.equal(await store.getState('fip'), '{"msn":2}');
});
