/**
 * The Store contract (src/store/store.ts), run against every implementation: the embedded
 * MemoryStore and the RedisStore on a private redis-server. A behaviour difference between
 * the two is a bug in one of them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/store.js';
import { startRedisServer } from '../helpers/redis-server.js';

/** Stores opened by one harness see the same data, like origins sharing one store. */
interface StoreHarness {
  /** A started store, closed at the end of the test. */
  open(): Promise<Store>;
  /** Another store instance over the same data (another origin), or `store` itself when embedded. */
  openPeer(store: Store): Promise<Store>;
  /** Lets `ms` pass for segment TTLs. */
  elapse(ms: number): Promise<void>;
}

interface Backend {
  name: string;
  harness(t: Test): StoreHarness;
}

const redisServer = await startRedisServer();
t.teardown(() => redisServer.stop());

const memoryBackend: Backend = {
  name: 'memory',
  harness(t) {
    // A fake clock: TTLs expire without waiting, deterministically.
    let clock = Date.now();
    return {
      async open() {
        const store = new MemoryStore({ now: () => clock });
        await store.start();
        t.teardown(() => store.close());
        return store;
      },
      async openPeer(store) {
        return store;
      },
      async elapse(ms) {
        clock += ms;
      },
    };
  },
};

const redisBackend: Backend = {
  name: 'redis',
  harness(t) {
    // A unique prefix per test: tests never see each other's keys.
    const keyPrefix = `test-${randomUUID().slice(0, 8)}`;
    const open = async (): Promise<Store> => {
      const store = new RedisStore({ url: redisServer.url, keyPrefix });
      t.teardown(() => store.close());
      await store.start();
      return store;
    };
    return { open, openPeer: open, elapse: (ms) => sleep(ms) };
  },
};

/** Resolves with the channel ids a listener heard, once `count` arrived (or rejects after `timeoutMs`). */
async function listen(store: Store, count: number, timeoutMs = 2000) {
  const heard: string[] = [];
  let arrived: () => void = () => {};
  const enough = new Promise<void>((resolve) => (arrived = resolve));
  const unsubscribe = await store.subscribe((channel) => {
    heard.push(channel);
    if (heard.length === count) arrived();
  });
  return {
    heard,
    unsubscribe,
    async done(): Promise<string[]> {
      const timeout = sleep(timeoutMs).then(() => {
        throw new Error(`expected ${count} update(s) within ${timeoutMs} ms, heard ${JSON.stringify(heard)}`);
      });
      await Promise.race([enough, timeout]);
      return heard;
    },
  };
}

function publishRequest(channel: string, playlists: Record<string, string>, state = '{"msn":0}') {
  return { channel, playlists, state };
}

for (const backend of [memoryBackend, redisBackend]) {
  t.test(`the ${backend.name} store`, async (t) => {
    t.test('a segment reads back byte for byte, including 0x00 and 0xFF', async (t) => {
      const store = await backend.harness(t).open();
      const edges = Uint8Array.from([0x00, 0xff, 0x00, 0x47, 0xff, 0x0d, 0x0a, 0x00]);
      const large = new Uint8Array(randomBytes(188 * 400));
      await store.putSegment('fip', 'hifi', '1234-3.ts', edges, 30);
      await store.putSegment('fip', 'midfi', '1234-3.ts', large, 30);
      t.same(Buffer.from((await store.getSegment('fip', 'hifi', '1234-3.ts'))!), Buffer.from(edges));
      t.same(Buffer.from((await store.getSegment('fip', 'midfi', '1234-3.ts'))!), Buffer.from(large));
    });

    t.test('a segment reads back from a subarray view without its neighbours', async (t) => {
      const store = await backend.harness(t).open();
      const whole = Uint8Array.from([1, 2, 3, 4, 5, 6]);
      await store.putSegment('fip', 'hifi', '7.ts', whole.subarray(2, 4), 30);
      t.same(Buffer.from((await store.getSegment('fip', 'hifi', '7.ts'))!), Buffer.from([3, 4]));
    });

    t.test('a segment that was never written reads as null', async (t) => {
      const store = await backend.harness(t).open();
      t.equal(await store.getSegment('fip', 'hifi', 'missing.ts'), null);
      await store.putSegment('fip', 'hifi', '1.ts', Uint8Array.from([1]), 30);
      t.equal(await store.getSegment('fip', 'lofi', '1.ts'), null, 'another rendition does not see it');
      t.equal(await store.getSegment('fipjazz', 'hifi', '1.ts'), null, 'another channel does not see it');
    });

    t.test('a segment is gone once its TTL has passed', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      await store.putSegment('fip', 'hifi', 'short.ts', Uint8Array.from([1, 2, 3]), 1);
      await store.putSegment('fip', 'hifi', 'long.ts', Uint8Array.from([4, 5, 6]), 60);
      t.not(await store.getSegment('fip', 'hifi', 'short.ts'), null, 'readable before the TTL');
      await harness.elapse(2200);
      t.equal(await store.getSegment('fip', 'hifi', 'short.ts'), null, 'expired after the TTL');
      t.not(await store.getSegment('fip', 'hifi', 'long.ts'), null, 'a longer TTL still holds');
    });

    t.test('a publish replaces the whole playlist set of the channel', async (t) => {
      const store = await backend.harness(t).open();
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'master 1', 'fip_hifi.m3u8': 'hifi 1', 'fip_lofi.m3u8': 'lofi 1' }));
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'master 2', 'fip_hifi.m3u8': 'hifi 2' }));
      t.equal((await store.getPlaylist('fip', 'fip.m3u8'))?.body, 'master 2');
      t.equal((await store.getPlaylist('fip', 'fip_hifi.m3u8'))?.body, 'hifi 2');
      t.equal(await store.getPlaylist('fip', 'fip_lofi.m3u8'), null, 'a playlist absent from the new set is gone');
    });

    t.test('a publish leaves the playlists of other channels alone', async (t) => {
      const store = await backend.harness(t).open();
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'fip master' }));
      await store.publish(publishRequest('fipjazz', { 'fipjazz.m3u8': 'jazz master' }));
      t.equal((await store.getPlaylist('fip', 'fip.m3u8'))?.body, 'fip master');
      t.equal(await store.getPlaylist('fip', 'fipjazz.m3u8'), null);
    });

    t.test('a playlist that was never published reads as null', async (t) => {
      const store = await backend.harness(t).open();
      t.equal(await store.getPlaylist('fip', 'fip.m3u8'), null);
    });

    t.test('equal playlist bodies get equal ETags on every store instance, other bodies another', async (t) => {
      const harness = backend.harness(t);
      const writer = await harness.open();
      const reader = await harness.openPeer(writer);
      await writer.publish(publishRequest('fip', { 'fip_hifi.m3u8': '#EXTM3U\nsame', 'fip_lofi.m3u8': '#EXTM3U\nsame' }));
      const onWriter = await writer.getPlaylist('fip', 'fip_hifi.m3u8');
      const onReader = await reader.getPlaylist('fip', 'fip_hifi.m3u8');
      t.ok(onWriter?.etag.startsWith('"'), 'a quoted strong ETag');
      t.equal(onReader?.etag, onWriter?.etag);
      t.equal((await reader.getPlaylist('fip', 'fip_lofi.m3u8'))?.etag, onWriter?.etag);
      await writer.publish(publishRequest('fip', { 'fip_hifi.m3u8': '#EXTM3U\nchanged' }));
      t.not((await reader.getPlaylist('fip', 'fip_hifi.m3u8'))?.etag, onWriter?.etag);
    });

    t.test('the sequence state reads back as it was published', async (t) => {
      const store = await backend.harness(t).open();
      t.equal(await store.getState('fip'), null, 'no state before the first publish');
      const state = JSON.stringify({ mediaSequence: 1234, discontinuitySequence: 3, run: 2 });
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'master' }, state));
      t.equal(await store.getState('fip'), state);
      t.equal(await store.getState('fipjazz'), null, 'per channel');
    });

    t.test('the run counter counts 1, 2, 3 per channel', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      t.equal(await store.nextRun('fip'), 1);
      t.equal(await store.nextRun('fip'), 2);
      t.equal(await (await harness.openPeer(store)).nextRun('fip'), 3, 'shared by every store instance');
      t.equal(await store.nextRun('fipjazz'), 1, 'another channel has its own counter');
    });

    t.test('a subscriber hears the channel id after each publish', async (t) => {
      const store = await backend.harness(t).open();
      const updates = await listen(store, 2);
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'master' }));
      await store.publish(publishRequest('fipjazz', { 'fipjazz.m3u8': 'master' }));
      t.same(await updates.done(), ['fip', 'fipjazz']);
    });

    t.test('a reader store hears the publish of a writer store and then reads the new playlist', async (t) => {
      const harness = backend.harness(t);
      const writer = await harness.open();
      const reader = await harness.openPeer(writer);
      const updates = await listen(reader, 1);
      await writer.publish(publishRequest('fip', { 'fip_hifi.m3u8': 'hifi 7' }));
      t.same(await updates.done(), ['fip']);
      t.equal((await reader.getPlaylist('fip', 'fip_hifi.m3u8'))?.body, 'hifi 7');
    });

    t.test('an unsubscribed listener hears nothing more', async (t) => {
      const store = await backend.harness(t).open();
      const gone = await listen(store, 1);
      await gone.unsubscribe();
      // A second listener proves that the update went out: once it hears it, the first would have too.
      const staying = await listen(store, 1);
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'master' }));
      t.same(await staying.done(), ['fip']);
      t.same(gone.heard, []);
    });
  });
}
