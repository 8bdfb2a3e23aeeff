/**
 * Content keys in the store (ContentKeyStore, docs/architecture.md, "Content encryption"), the
 * same on the MemoryStore and on a RedisStore over a private redis-server: the first key
 * written for a period stays (two writers agree on it), bytes come back exact, a key expires
 * with its TTL, and the Redis key carries the channel's hash tag.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import t from 'tap';
import { isOnairError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { ContentKeyStore } from '../../src/store/store.js';
import { startRedisServer } from '../helpers/redis-server.js';

const server = await startRedisServer();
t.teardown(() => server.stop());
const keyPrefix = `test-${randomUUID().slice(0, 8)}`;
const redis = new RedisStore({ url: server.url, keyPrefix });
t.teardown(() => redis.close());
await redis.start();
const memory = new MemoryStore();
await memory.start();
t.teardown(() => memory.close());

const stores: [string, ContentKeyStore][] = [
  ['memory', memory],
  ['redis', redis],
];

for (const [name, store] of stores) {
  t.test(`${name}: the first key of a period stays, byte for byte`, async (t) => {
    const first = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const second = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');
    t.same(Buffer.from(await store.putContentKey('fip', 41, first, 60)), first);
    t.same(Buffer.from(await store.putContentKey('fip', 41, second, 60)), first, 'a second writer gets the stored key back');
    t.same(Buffer.from((await store.getContentKey('fip', 41))!), first);
    t.equal(await store.getContentKey('fip', 42), null);
    t.equal(await store.getContentKey('jazz', 41), null, 'keys are per channel');
    await t.rejects(store.getContentKey('fip', -1), RangeError);
  });

  t.test(`${name}: a key expires with its TTL`, async (t) => {
    await store.putContentKey('fip', 7, Buffer.alloc(16, 3), 0.2);
    t.ok(await store.getContentKey('fip', 7));
    await sleep(400);
    if (store instanceof MemoryStore) store.sweepExpired();
    t.equal(await store.getContentKey('fip', 7), null);
  });
}

t.test('redis: the key carries the channel hash tag and the key id', async (t) => {
  await redis.putContentKey('fip', 5, Buffer.alloc(16, 9), 60);
  const inspector = new Redis(server.url);
  t.teardown(() => inspector.quit());
  t.same((await inspector.keys(`${keyPrefix}:*key*`)).sort(), [`${keyPrefix}:{fip}:key:41`, `${keyPrefix}:{fip}:key:5`]);
  const ttl = await inspector.pttl(`${keyPrefix}:{fip}:key:5`);
  t.ok(ttl > 50_000 && ttl <= 60_000, `PX TTL set (${ttl} ms)`);
});

t.test('redis: a refused key write carries no key bytes into the error a log would print', async (t) => {
  const inspector = new Redis(server.url);
  t.teardown(async () => {
    await inspector.config('SET', 'maxmemory', '0');
    await inspector.quit();
  });
  await inspector.config('SET', 'maxmemory-policy', 'noeviction');
  await inspector.config('SET', 'maxmemory', '1');
  const key = Buffer.from('5ec2e75ec2e75ec2e75ec2e75ec2e75e', 'hex');
  const error = await redis.putContentKey('fip', 99, key, 60).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  t.ok(isOnairError(error), `refused with a coded error (${String(error)})`);
  const logged = JSON.stringify(pino.stdSerializers.err(error as Error)) + String((error as Error).stack);
  t.notMatch(logged, /5ec2e75e/i, 'not as hex');
  t.notMatch(logged, new RegExp(key.toString('base64').slice(0, 12).replace(/[+/]/g, '.')), 'not as base64');
  t.notOk(logged.includes('"type":"Buffer"'), 'not as a serialized Buffer');
  t.equal((error as { cause?: unknown }).cause, undefined, 'no cause holding the command');
});
