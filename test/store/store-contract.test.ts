/**
 * The Store contract (src/store/store.ts), run against every implementation: the embedded
 * MemoryStore, and the RedisStore on a private redis-server, a three-node Redis Cluster and
 * a Sentinel-managed master (see test/helpers/store-backends.ts). A behaviour difference between them
 * is a bug in one of them.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { isOnairError } from '../../src/errors.js';
import type { Store } from '../../src/store/store.js';
import { startBackends } from '../helpers/store-backends.js';

const backends = await startBackends(t);

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

function publishRequest(channel: string, playlists: Record<string, string>, state = '{"msn":0}', fence?: string) {
  return { channel, playlists, state, fence };
}

/** Awaits `promise`, expecting it to reject with `code`; returns whether it did. */
async function refusedWith(promise: Promise<unknown>, code: 'ONAIR_FENCED'): Promise<boolean> {
  try {
    await promise;
    return false;
  } catch (error) {
    return isOnairError(error, code);
  }
}

/** Orders Redis stream ids (`<ms>-<seq>`) numerically. */
function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split('-').map(Number);
  const [bMs, bSeq] = b.split('-').map(Number);
  return aMs! - bMs! || aSeq! - bSeq!;
}

/** Lease TTLs short enough to wait out on a real server, long enough not to expire mid-test. */
const SHORT_LEASE_MS = 300;
const LONG_LEASE_MS = 30_000;

for (const backend of backends) {
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

    t.test('a subscriber hears the channel id after each publish', async (t) => {
      const store = await backend.harness(t).open();
      const updates = await listen(store, 2);
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'master' }));
      await store.publish(publishRequest('fipjazz', { 'fipjazz.m3u8': 'master' }));
      // One notification per publish; across channels no order is promised (on a Cluster the two
      // channels live on different nodes, and their messages cross the cluster bus separately).
      t.same([...(await updates.done())].sort(), ['fip', 'fipjazz']);
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
  
    t.test('a free lease is taken, renewed and released, and then free for another owner', async (t) => {
      const store = await backend.harness(t).open();
      const lease = await store.acquireLease('fip', 'packager-a', LONG_LEASE_MS);
      t.equal(lease?.channel, 'fip');
      t.type(lease?.token, 'string');
      t.equal(await store.renewLease(lease!, LONG_LEASE_MS), true, 'the holder renews it');
      await store.releaseLease(lease!);
      const next = await store.acquireLease('fip', 'packager-b', LONG_LEASE_MS);
      t.not(next, null, 'released: another owner takes it at once');
      t.not(next?.token, lease?.token, 'with a token of its own');
      t.equal(await store.renewLease(lease!, LONG_LEASE_MS), false, 'the released lease cannot be renewed');
    });

    t.test('a held lease is refused to a second owner and extended for its holder', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      const peer = await harness.openPeer(store);
      const lease = await store.acquireLease('fip', 'packager-a', LONG_LEASE_MS);
      t.equal(await peer.acquireLease('fip', 'packager-b', LONG_LEASE_MS), null, 'another owner gets null');
      t.same(await peer.acquireLease('fip', 'packager-a', LONG_LEASE_MS), lease, 'the holder gets the same token back');
      t.not(await peer.acquireLease('fipjazz', 'packager-b', LONG_LEASE_MS), null, 'another channel has its own lease');
      await peer.releaseLease({ channel: 'fip', token: 'not-the-token' });
      t.equal(await store.renewLease(lease!, LONG_LEASE_MS), true, 'a release with another token leaves the lease alone');
    });

    t.test('an expired lease goes to another owner with a different token, and the old one stays lost', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      const old = await store.acquireLease('fip', 'packager-a', SHORT_LEASE_MS);
      await harness.elapse(SHORT_LEASE_MS * 2);
      const taken = await store.acquireLease('fip', 'packager-b', LONG_LEASE_MS);
      t.not(taken, null, 'the other owner takes over');
      t.not(taken?.token, old?.token);
      t.equal(await store.renewLease(old!, LONG_LEASE_MS), false, 'the old holder learns it lost the lease');
      await store.releaseLease(old!);
      t.equal(await store.renewLease(taken!, LONG_LEASE_MS), true, "the old holder's release leaves the new lease alone");
      t.equal(await store.acquireLease('fip', 'packager-a', LONG_LEASE_MS), null, 'nor can the old holder take it back');
    });

    t.test('a renewed lease outlives its first TTL', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      const lease = await store.acquireLease('fip', 'packager-a', SHORT_LEASE_MS);
      t.equal(await store.renewLease(lease!, LONG_LEASE_MS), true);
      await harness.elapse(SHORT_LEASE_MS * 2);
      t.equal(await store.acquireLease('fip', 'packager-b', LONG_LEASE_MS), null, 'still held');
    });

    t.test('writes fenced with a stale token are refused with ONAIR_FENCED and change nothing', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      const old = await store.acquireLease('fip', 'packager-a', SHORT_LEASE_MS);
      await store.putSegment('fip', 'hifi', '1.ts', Uint8Array.from([1]), 30, old!.token);
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'master 1', 'fip_hifi.m3u8': 'hifi 1' }, '{"msn":1}', old!.token));
      await store.putStatus('fip', '{"leader":"a"}', old!.token);
      await harness.elapse(SHORT_LEASE_MS * 2);
      const current = await store.acquireLease('fip', 'packager-b', LONG_LEASE_MS);
      t.not(current, null);
      const updates = await listen(store, 1);

      const segment = store.putSegment('fip', 'hifi', '2.ts', Uint8Array.from([2]), 30, old!.token);
      t.ok(await refusedWith(segment, 'ONAIR_FENCED'), 'a segment write is refused');
      const overwrite = store.putSegment('fip', 'hifi', '1.ts', Uint8Array.from([9]), 30, old!.token);
      t.ok(await refusedWith(overwrite, 'ONAIR_FENCED'), 'a segment overwrite is refused');
      const publish = store.publish(publishRequest('fip', { 'fip.m3u8': 'master 2' }, '{"msn":2}', old!.token));
      t.ok(await refusedWith(publish, 'ONAIR_FENCED'), 'a publish is refused');
      t.ok(await refusedWith(store.putStatus('fip', '{"leader":"a2"}', old!.token), 'ONAIR_FENCED'), 'a status write is refused');
      const forged = store.publish(publishRequest('fip', { 'fip.m3u8': 'forged' }, '{}', 'forged-token'));
      t.ok(await refusedWith(forged, 'ONAIR_FENCED'), 'a token that never was is refused too');

      t.equal(await store.getSegment('fip', 'hifi', '2.ts'), null, 'no new segment');
      t.same(Buffer.from((await store.getSegment('fip', 'hifi', '1.ts'))!), Buffer.from([1]), 'the old segment is intact');
      t.equal((await store.getPlaylist('fip', 'fip.m3u8'))?.body, 'master 1', 'the playlists are intact');
      t.equal((await store.getPlaylist('fip', 'fip_hifi.m3u8'))?.body, 'hifi 1');
      t.equal(await store.getState('fip'), '{"msn":1}', 'the state is intact');
      t.equal(await store.getStatus('fip'), '{"leader":"a"}', 'the status is intact');
      // A later publish proves the refused ones would have been heard first, had they gone out.
      await store.publish(publishRequest('fipjazz', { 'fipjazz.m3u8': 'jazz' }));
      t.same(await updates.done(), ['fipjazz'], 'no notification for the refused publishes');
    });

    t.test("the current holder's fenced writes go through and read back", async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      const reader = await harness.openPeer(store);
      const lease = await store.acquireLease('fip', 'packager-a', LONG_LEASE_MS);
      const updates = await listen(reader, 1);
      const bytes = Uint8Array.from([0x00, 0xff, 0x47, 0x00, 0x0d, 0x0a]);
      await store.putSegment('fip', 'hifi', '1.ts', bytes, 30, lease!.token);
      await store.publish(publishRequest('fip', { 'fip_hifi.m3u8': 'hifi 1' }, '{"msn":1}', lease!.token));
      await store.putStatus('fip', '{"leader":"a"}', lease!.token);
      t.same(await updates.done(), ['fip']);
      t.same(Buffer.from((await reader.getSegment('fip', 'hifi', '1.ts'))!), Buffer.from(bytes), 'bytes intact');
      t.equal((await reader.getPlaylist('fip', 'fip_hifi.m3u8'))?.body, 'hifi 1');
      t.equal(await reader.getState('fip'), '{"msn":1}');
      t.equal(await reader.getStatus('fip'), '{"leader":"a"}');
    });

    t.test('unfenced writes go through whether or not a lease is held', async (t) => {
      const store = await backend.harness(t).open();
      await store.acquireLease('fip', 'packager-a', LONG_LEASE_MS);
      await store.putSegment('fip', 'hifi', '1.ts', Uint8Array.from([1]), 30);
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'master' }));
      await store.putStatus('fip', '{}');
      t.not(await store.getSegment('fip', 'hifi', '1.ts'), null);
      t.equal((await store.getPlaylist('fip', 'fip.m3u8'))?.body, 'master');
      t.equal(await store.getStatus('fip'), '{}');
    });

    t.test('a token from before the store lost its data never becomes valid again', async (t) => {
      const harness = backend.harness(t);
      const before = await harness.open();
      const old = await before.acquireLease('fip', 'packager-a', LONG_LEASE_MS);
      const store = await harness.loseData(before);
      const current = await store.acquireLease('fip', 'packager-b', LONG_LEASE_MS);
      t.not(current, null, 'the empty store gives the lease to the next owner');
      t.not(current?.token, old?.token, 'with another token, although the counter started over');
      const stale = store.publish(publishRequest('fip', { 'fip.m3u8': 'stale' }, '{}', old!.token));
      t.ok(await refusedWith(stale, 'ONAIR_FENCED'), "the old holder's write is refused");
      t.equal(await store.renewLease(old!, LONG_LEASE_MS), false, 'and its renewal fails');
      await store.publish(publishRequest('fip', { 'fip.m3u8': 'current' }, '{}', current!.token));
      t.equal((await store.getPlaylist('fip', 'fip.m3u8'))?.body, 'current');
    });

    t.test('listeners count once per id, per rendition and bucket, and as a union across them', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      const peer = await harness.openPeer(store);
      await store.recordListeners('fip', 'hifi', 10, ['a', 'b', 'c'], LONG_LEASE_MS);
      await peer.recordListeners('fip', 'hifi', 10, ['a', 'b'], LONG_LEASE_MS);
      await store.recordListeners('fip', 'hifi', 11, ['b', 'c', 'd'], LONG_LEASE_MS);
      await peer.recordListeners('fip', 'lofi', 11, ['d', 'e'], LONG_LEASE_MS);
      t.equal(await store.countListeners('fip', ['hifi'], [10]), 3, 'an id added twice counts once');
      t.equal(await store.countListeners('fip', ['hifi'], [10, 11]), 4, 'an id in two buckets counts once');
      t.equal(await peer.countListeners('fip', ['lofi'], [10, 11]), 2, 'shared by every store instance');
      t.equal(await store.countListeners('fip', ['hifi', 'lofi'], [10, 11]), 5, 'an id in two renditions counts once');
      t.equal(await store.countListeners('fip', ['hifi'], [12]), 0, 'a bucket nobody wrote counts 0');
      t.equal(await store.countListeners('fipjazz', ['hifi'], [10, 11]), 0, 'another channel has its own sets');
      t.equal(await store.countListeners('fip', [], [10]), 0, 'no rendition, no listener');
    });

    t.test('a batch of 10,000 listener ids is counted within 2 %', async (t) => {
      const store = await backend.harness(t).open();
      const clientIds = Array.from({ length: 10_000 }, (_, index) => `client-${index}`);
      await store.recordListeners('fip', 'hifi', 1, clientIds, LONG_LEASE_MS);
      const counted = await store.countListeners('fip', ['hifi'], [1]);
      t.ok(Math.abs(counted - 10_000) <= 200, `counted ${counted}`);
    });

    t.test('a listener set is gone once its TTL has passed', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      await store.recordListeners('fip', 'hifi', 1, ['a', 'b'], SHORT_LEASE_MS);
      await store.recordListeners('fip', 'hifi', 2, ['c'], LONG_LEASE_MS);
      t.equal(await store.countListeners('fip', ['hifi'], [1, 2]), 3, 'counted before the TTL');
      await harness.elapse(SHORT_LEASE_MS * 2);
      t.equal(await store.countListeners('fip', ['hifi'], [1, 2]), 1, 'expired after the TTL');
      await store.recordListeners('fip', 'hifi', 1, ['d'], LONG_LEASE_MS);
      t.equal(await store.countListeners('fip', ['hifi'], [1]), 1, 'a new write starts from an empty set');
    });

    t.test('a listener bucket must be a non-negative integer', async (t) => {
      const store = await backend.harness(t).open();
      await t.rejects(store.recordListeners('fip', 'hifi', -1, ['a'], LONG_LEASE_MS), RangeError);
      await t.rejects(store.countListeners('fip', ['hifi'], [1.5]), RangeError);
    });

    t.test('the status reads back as last written, per channel', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      t.equal(await store.getStatus('fip'), null, 'no status before the first write');
      await store.putStatus('fip', '{"activeInput":"main"}');
      await store.putStatus('fip', '{"activeInput":"backup"}');
      t.equal(await (await harness.openPeer(store)).getStatus('fip'), '{"activeInput":"backup"}');
      t.equal(await store.getStatus('fipjazz'), null, 'per channel');
    });

    t.test('now playing reads back as last written, per channel, on every store instance, and announces each change', async (t) => {
      const harness = backend.harness(t);
      const writer = await harness.open();
      const reader = await harness.openPeer(writer);
      t.equal(await reader.getNowPlaying('fip'), null, 'nothing before the first write');
      const heard: string[] = [];
      const heardTwo = new Promise<void>((resolve) => {
        void reader.subscribeNowPlaying((channel) => {
          heard.push(channel);
          if (heard.length === 2) resolve();
        }).then(async (unsubscribe) => {
          await writer.putNowPlaying('fip', '{"title":"Blue in Green"}');
          await writer.putNowPlaying('fipjazz', '{"title":"So What"}');
          await heardTwo;
          await unsubscribe();
        });
      });
      const publishes: string[] = [];
      const stopPublishes = await reader.subscribe((channel) => publishes.push(channel));
      await heardTwo;
      t.same([...heard].sort(), ['fip', 'fipjazz'], 'one announcement per change');
      t.equal(await reader.getNowPlaying('fip'), '{"title":"Blue in Green"}');
      t.equal(await reader.getNowPlaying('fipjazz'), '{"title":"So What"}', 'per channel');
      await writer.putNowPlaying('fip', '{"title":"Flamenco Sketches"}');
      t.equal(await reader.getNowPlaying('fip'), '{"title":"Flamenco Sketches"}', 'the last write wins');
      await harness.elapse(1200);
      t.equal(await reader.getNowPlaying('fip'), '{"title":"Flamenco Sketches"}', 'it does not expire');
      t.same(publishes, [], 'publish subscribers do not hear now-playing changes');
      await stopPublishes();
    });

    t.test('connection counts add up across origins, per rendition, until a report expires', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      const peer = await harness.openPeer(store);
      t.same(await store.getConnectionCounts('fip'), {}, 'nobody reported');
      await store.putConnectionCounts('origin-a', 'fip', { hifi: 3, midfi: 1 }, 60_000);
      await peer.putConnectionCounts('origin-b', 'fip', { hifi: 2 }, 800);
      await peer.putConnectionCounts('origin-b', 'fipjazz', { hifi: 7 }, 60_000);
      t.same(await peer.getConnectionCounts('fip'), { hifi: 5, midfi: 1 }, 'summed over origins');
      await store.putConnectionCounts('origin-a', 'fip', { hifi: 4, midfi: 0 }, 60_000);
      t.same(await store.getConnectionCounts('fip'), { hifi: 6, midfi: 0 }, "an origin's new report replaces its old one");
      await harness.elapse(1500);
      t.same(await store.getConnectionCounts('fip'), { hifi: 4, midfi: 0 }, 'an expired report no longer counts');
      t.same(await store.getConnectionCounts('fipjazz'), { hifi: 7 }, 'per channel');
      await t.rejects(store.putConnectionCounts('origin-a', 'fip', { hifi: -1 }, 1000), RangeError);
      await t.rejects(store.putConnectionCounts('origin-a', 'fip', { hifi: 1 }, 0), RangeError);
    });

    t.test('recording records read back, list per channel, are replaced and deleted, and never expire', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      t.equal(await store.getRecording('fip', '20261121T231500Z'), null, 'nothing before the first write');
      t.same(await store.listRecordings('fip'), []);
      await store.putRecording('fip', '20261121T231500Z', '{"state":"recording"}');
      await store.putRecording('fip', '20261121T231500Z', '{"state":"ended"}');
      await store.putRecording('fip', '20261121T232000Z', '{"state":"recording"}');
      await store.putRecording('fipjazz', '20261121T231500Z', '{"state":"done"}');
      await harness.elapse(SHORT_LEASE_MS);
      const peer = await harness.openPeer(store);
      t.equal(await peer.getRecording('fip', '20261121T231500Z'), '{"state":"ended"}', 'the last write wins');
      t.same((await peer.listRecordings('fip')).sort(), ['{"state":"ended"}', '{"state":"recording"}'], 'per channel');
      await store.deleteRecording('fip', '20261121T231500Z');
      await store.deleteRecording('fip', '20261121T000000Z');
      t.same(await peer.listRecordings('fip'), ['{"state":"recording"}'], 'deleting a missing one changes nothing');
      t.equal(await peer.getRecording('fipjazz', '20261121T231500Z'), '{"state":"done"}');
    });

    t.test('events append in order with increasing ids and read back newest-last', async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      t.same(await store.readEvents(10), [], 'an empty stream');
      const ids: string[] = [];
      for (let index = 0; index < 5; index++) ids.push(await store.appendEvent({ type: 'recording.ready', index: String(index) }));
      const increasing = ids.every((id, index) => index === 0 || compareStreamIds(id, ids[index - 1]!) > 0);
      t.ok(increasing, `ids increase: ${ids.join(', ')}`);
      const events = await (await harness.openPeer(store)).readEvents(3);
      t.same(events.map((event) => event.id), ids.slice(2), 'the newest three, oldest first');
      t.same(events.map((event) => event.fields), [2, 3, 4].map((index) => ({ type: 'recording.ready', index: String(index) })));
      await t.rejects(store.appendEvent({}), RangeError, 'an event needs a field');
    });
  });
}
