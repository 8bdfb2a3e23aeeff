import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { ManualClock, settle } from '../helpers/manual-clock.js';
import { waitUntil } from '../helpers/wait-until.js';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { pino } from 'pino';
import t from 'tap';
import type { Test } from 'tap';
import { OnairError } from '../../src/errors.js';
import { originPlugin } from '../../src/origin/origin-plugin.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import type { BuildOriginOptions } from '../../src/origin/origin-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store, StoredPlaylist, StoreUpdateListener } from '../../src/store/store.js';

const TARGET_DURATION = 4;
const CHANNELS = [
  { id: 'fip', renditions: ['hifi', 'lofi'] },
  { id: 'jazz', renditions: ['hifi'] },
];

const MASTER = [
  '#EXTM3U',
  '#EXT-X-VERSION:3',
  '#EXT-X-STREAM-INF:BANDWIDTH=200000,AVERAGE-BANDWIDTH=192000,CODECS="mp4a.40.2"',
  'fip_hifi.m3u8',
  '#EXT-X-STREAM-INF:BANDWIDTH=70000,AVERAGE-BANDWIDTH=64000,CODECS="mp4a.40.2"',
  'fip_lofi.m3u8',
  '',
].join('\n');

function mediaPlaylist(rendition: string, firstMsn: number): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${TARGET_DURATION}`];
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${firstMsn}`, '#EXT-X-DISCONTINUITY-SEQUENCE:0');
  for (let msn = firstMsn; msn < firstMsn + 6; msn++) {
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:${String(msn % 60).padStart(2, '0')}.000Z`);
    lines.push('#EXTINF:3.989,', `${rendition}/${msn}-1.ts`);
  }
  return `${lines.join('\n')}\n`;
}

/** 1000 bytes where byte i is i mod 251: any slice is recognizable. */
const SEGMENT = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

async function publishFip(store: Store, firstMsn: number): Promise<void> {
  await store.publish({
    channel: 'fip',
    playlists: {
      'fip.m3u8': MASTER,
      'fip_hifi.m3u8': mediaPlaylist('hifi', firstMsn),
      'fip_lofi.m3u8': mediaPlaylist('lofi', firstMsn),
    },
    state: JSON.stringify({ msn: firstMsn + 5 }),
  });
}

async function filledStore(t: Test): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  await store.putSegment('fip', 'hifi', '100-1.ts', SEGMENT, 600);
  await store.putSegment('fip', 'lofi', '100-1.ts', Buffer.alloc(300, 0x4c), 600);
  await publishFip(store, 100);
  return store;
}

async function startOrigin(t: Test, store: Store, options: Partial<BuildOriginOptions> = {}): Promise<FastifyInstance> {
  const app = await buildOrigin({ store, channels: CHANNELS, targetDurationSeconds: TARGET_DURATION, ...options });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

async function storedEtag(store: Store, channel: string, name: string): Promise<string> {
  const playlist = await store.getPlaylist(channel, name);
  if (!playlist) throw new Error(`fixture has no ${name}`);
  return playlist.etag;
}


class CountingStore extends DelegatingStore {
  reads = 0;
  unsubscribes = 0;
  /** Names of the segments read, once each read has answered. */
  readonly segmentsRead: string[] = [];
  /** While set, segment reads wait for it: lets concurrent requests pile up on one read. */
  segmentGate: Promise<void> | undefined;
  override async getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null> {
    this.reads += 1;
    await this.segmentGate;
    const bytes = await this.inner.getSegment(channel, rendition, name);
    this.segmentsRead.push(name);
    return bytes;
  }
  override getPlaylist(channel: string, name: string): Promise<StoredPlaylist | null> {
    this.reads += 1;
    return this.inner.getPlaylist(channel, name);
  }
  override async subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    const unsubscribe = await this.inner.subscribe(listener);
    return async () => {
      this.unsubscribes += 1;
      await unsubscribe();
    };
  }
}

/** A store whose connection is gone until `down` is cleared: reads and the subscription reject. */
class UnavailableStore extends DelegatingStore {
  down = true;
  private unavailable(): Promise<never> {
    return Promise.reject(new OnairError('ONAIR_STORE_UNAVAILABLE', 'connection refused'));
  }
  override getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null> {
    return this.down ? this.unavailable() : this.inner.getSegment(channel, rendition, name);
  }
  override getPlaylist(channel: string, name: string): Promise<StoredPlaylist | null> {
    return this.down ? this.unavailable() : this.inner.getPlaylist(channel, name);
  }
  override getState(channel: string): Promise<string | null> {
    return this.down ? this.unavailable() : this.inner.getState(channel);
  }
  override subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    return this.down ? this.unavailable() : this.inner.subscribe(listener);
  }
}

/** A store whose notifications never arrive. */
class SilentStore extends DelegatingStore {
  override async subscribe(): Promise<() => Promise<void>> {
    return async () => undefined;
  }
}

async function get(app: Pick<FastifyInstance, 'inject'>, url: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url, headers });
}

t.test('the master playlist is served with its type, a cache time of three target durations and the store ETag', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const response = await get(app, '/fip/fip.m3u8');
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'application/vnd.apple.mpegurl');
  t.equal(response.headers['cache-control'], 'public, max-age=12');
  t.equal(response.headers.etag, await storedEtag(store, 'fip', 'fip.m3u8'));
  t.equal(response.headers.vary, 'Accept-Encoding');
  t.equal(response.headers['access-control-allow-origin'], '*');
  t.equal(response.body, MASTER);
});

t.test('a media playlist is cached for half a target duration', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const response = await get(app, '/fip/fip_lofi.m3u8');
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'application/vnd.apple.mpegurl');
  t.equal(response.headers['cache-control'], 'public, max-age=2');
  t.equal(response.headers.etag, await storedEtag(store, 'fip', 'fip_lofi.m3u8'));
  t.equal(response.body, mediaPlaylist('lofi', 100));
});

t.test('a one-second target duration still gives media playlists max-age=1 and the master three', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store, { targetDurationSeconds: 1 });
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).headers['cache-control'], 'public, max-age=1');
  t.equal((await get(app, '/fip/fip.m3u8')).headers['cache-control'], 'public, max-age=3');
});

t.test('a segment is served as immutable MPEG-TS with byte ranges advertised', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const response = await get(app, '/fip/hifi/100-1.ts');
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'video/mp2t');
  t.equal(response.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.equal(response.headers['accept-ranges'], 'bytes');
  t.equal(response.headers['content-length'], '1000');
  t.match(response.headers.etag, /^"[^"]+"$/);
  t.same(response.rawPayload, SEGMENT);

  const other = await get(app, '/fip/lofi/100-1.ts');
  t.same(other.rawPayload, Buffer.alloc(300, 0x4c));
  t.not(other.headers.etag, response.headers.etag);
  t.equal((await get(app, '/fip/hifi/100-1.ts')).headers.etag, response.headers.etag, 'the validator is stable');
});

t.test("an fMP4 channel's init segments, segments and parts are served as audio/mp4, immutable, with ranges and ETags", async (t) => {
  const store = await filledStore(t);
  await store.putSegment('jazz', 'hifi', 'init-1767225600000417.mp4', SEGMENT.subarray(0, 600), 600);
  await store.putSegment('jazz', 'hifi', '7-2.m4s', SEGMENT, 600);
  await store.putSegment('jazz', 'hifi', '7-2.1.m4s', SEGMENT.subarray(0, 100), 600);
  const app = await startOrigin(t, store);
  const init = await get(app, '/jazz/hifi/init-1767225600000417.mp4');
  t.equal(init.statusCode, 200);
  t.equal(init.headers['content-type'], 'audio/mp4');
  t.equal(init.headers['cache-control'], 'public, max-age=31536000, immutable', 'an init name is never reused: immutable like segments');
  t.equal(init.rawPayload.length, 600);
  t.equal((await get(app, '/jazz/hifi/init-1767225600000417.mp4', { 'if-none-match': init.headers.etag as string })).statusCode, 304);
  const segment = await get(app, '/jazz/hifi/7-2.m4s');
  t.equal(segment.statusCode, 200);
  t.equal(segment.headers['content-type'], 'audio/mp4');
  t.equal(segment.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.equal(segment.headers['accept-ranges'], 'bytes');
  t.same(segment.rawPayload, SEGMENT);
  const part = await get(app, '/jazz/hifi/7-2.1.m4s');
  t.equal(part.headers['content-type'], 'audio/mp4');
  t.equal(part.rawPayload.length, 100);
  t.not(part.headers.etag, segment.headers.etag);
  t.not(init.headers.etag, segment.headers.etag);
  const range = await get(app, '/jazz/hifi/7-2.m4s', { range: 'bytes=10-19' });
  t.equal(range.statusCode, 206);
  t.same(range.rawPayload, SEGMENT.subarray(10, 20));
  t.equal((await get(app, '/jazz/hifi/init-5.mp4')).statusCode, 404, 'an init segment not stored is 404 at once (never held)');
  t.equal((await get(app, '/jazz/hifi/init-05.mp4')).statusCode, 400, 'a malformed init name is a client mistake');
  t.equal((await get(app, '/jazz/hifi/init.mp4')).statusCode, 400);
});

t.test("an MP3 rendition's packed-audio segments and parts are served as audio/mpeg, immutable, with ranges and ETags", async (t) => {
  const store = await filledStore(t);
  await store.putSegment('jazz', 'hifi', '7-2.mp3', SEGMENT, 600);
  await store.putSegment('jazz', 'hifi', '7-2.1.mp3', SEGMENT.subarray(0, 100), 600);
  const app = await startOrigin(t, store);
  const segment = await get(app, '/jazz/hifi/7-2.mp3');
  t.equal(segment.statusCode, 200);
  t.equal(segment.headers['content-type'], 'audio/mpeg');
  t.equal(segment.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.equal(segment.headers['accept-ranges'], 'bytes');
  t.same(segment.rawPayload, SEGMENT);
  const part = await get(app, '/jazz/hifi/7-2.1.mp3');
  t.equal(part.headers['content-type'], 'audio/mpeg');
  t.equal(part.rawPayload.length, 100);
  t.not(part.headers.etag, segment.headers.etag, 'a part and its segment have their own validators');
  t.equal((await get(app, '/jazz/hifi/7-2.mp3', { 'if-none-match': segment.headers.etag as string })).statusCode, 304);
  const range = await get(app, '/jazz/hifi/7-2.mp3', { range: 'bytes=10-19' });
  t.equal(range.statusCode, 206);
  t.same(range.rawPayload, SEGMENT.subarray(10, 20));
  t.equal((await get(app, '/jazz/hifi/7-2.ts')).statusCode, 404, 'the same segment under .ts does not exist');
  t.equal((await get(app, '/jazz/hifi/7-2.mp4')).statusCode, 400, 'another extension is a malformed name, as before');
});

t.test('a matching If-None-Match gets 304 without a body, for playlists and segments', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const etag = await storedEtag(store, 'fip', 'fip_hifi.m3u8');
  for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const response = await get(app, '/fip/fip_hifi.m3u8', { 'if-none-match': ifNoneMatch });
    t.equal(response.statusCode, 304, ifNoneMatch);
    t.equal(response.body, '');
    t.equal(response.headers.etag, etag);
    t.equal(response.headers['cache-control'], 'public, max-age=2');
  }
  t.equal((await get(app, '/fip/fip_hifi.m3u8', { 'if-none-match': '"stale"' })).statusCode, 200);

  const segmentEtag = (await get(app, '/fip/hifi/100-1.ts')).headers.etag as string;
  const segment = await get(app, '/fip/hifi/100-1.ts', { 'if-none-match': segmentEtag });
  t.equal(segment.statusCode, 304);
  t.equal(segment.rawPayload.length, 0);
  t.equal(segment.headers['cache-control'], 'public, max-age=31536000, immutable');
});

t.test('HEAD answers the headers of GET with Content-Length and no body', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const playlist = await app.inject({ method: 'HEAD', url: '/fip/fip_hifi.m3u8' });
  t.equal(playlist.statusCode, 200);
  t.equal(playlist.headers['content-length'], String(Buffer.byteLength(mediaPlaylist('hifi', 100))));
  t.equal(playlist.headers['content-type'], 'application/vnd.apple.mpegurl');
  t.equal(playlist.body, '');

  const segment = await app.inject({ method: 'HEAD', url: '/fip/hifi/100-1.ts', headers: { range: 'bytes=0-9' } });
  t.equal(segment.statusCode, 200, 'Range is ignored on HEAD');
  t.equal(segment.headers['content-length'], '1000');
  t.equal(segment.headers['content-type'], 'video/mp2t');
  t.equal(segment.rawPayload.length, 0);

  const missing = await app.inject({ method: 'HEAD', url: '/fip/hifi/999-1.ts' });
  t.equal(missing.statusCode, 404);
  t.equal(missing.body, '');
});

t.test('a single byte range on a segment gets 206 with exactly those bytes', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const cases: [string, number, number][] = [
    ['bytes=0-9', 0, 9],
    ['bytes=990-', 990, 999],
    ['bytes=-5', 995, 999],
    ['bytes=500-5000', 500, 999],
    ['bytes=-5000', 0, 999],
    ['BYTES = 10 - 19', 10, 19],
  ];
  for (const [range, start, end] of cases) {
    const response = await get(app, '/fip/hifi/100-1.ts', { range });
    t.equal(response.statusCode, 206, range);
    t.equal(response.headers['content-range'], `bytes ${start}-${end}/1000`, range);
    t.equal(response.headers['content-length'], String(end - start + 1), range);
    t.equal(response.headers['content-type'], 'video/mp2t', range);
    t.same(response.rawPayload, SEGMENT.subarray(start, end + 1), range);
  }
});

t.test('a range past the end of a segment gets 416 with the segment length', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
    const response = await get(app, '/fip/hifi/100-1.ts', { range });
    t.equal(response.statusCode, 416, range);
    t.equal(response.headers['content-range'], 'bytes */1000', range);
    t.equal(response.headers['content-type'], 'application/json; charset=utf-8');
    t.equal(response.json().error, 'range_not_satisfiable');
  }
});

t.test('multiple, malformed or outdated ranges are ignored and the whole segment is sent', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const headers: Record<string, string>[] = [
    { range: 'bytes=0-1,5-6' },
    { range: 'bytes=9-3' },
    { range: 'bytes=abc' },
    { range: 'items=0-9' },
    { range: 'bytes=-' },
    { range: `bytes=0-${'9'.repeat(200)}` },
    { range: 'bytes=0-9', 'if-range': '"another-version"' },
    { range: 'bytes=0-9', 'if-range': 'Wed, 01 May 2024 12:00:00 GMT' },
  ];
  for (const header of headers) {
    const response = await get(app, '/fip/hifi/100-1.ts', header);
    t.equal(response.statusCode, 200, JSON.stringify(header));
    t.same(response.rawPayload, SEGMENT, JSON.stringify(header));
  }
  const etag = (await get(app, '/fip/hifi/100-1.ts')).headers.etag as string;
  t.equal((await get(app, '/fip/hifi/100-1.ts', { range: 'bytes=0-9', 'if-range': etag })).statusCode, 206);
});

t.test('playlists are gzipped when the client accepts it, with Vary and their own ETag', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const etag = await storedEtag(store, 'fip', 'fip_hifi.m3u8');
  const response = await get(app, '/fip/fip_hifi.m3u8', { 'accept-encoding': 'br;q=1, gzip;q=0.8' });
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-encoding'], 'gzip');
  t.equal(response.headers.vary, 'Accept-Encoding');
  t.equal(response.headers['content-length'], String(response.rawPayload.length));
  t.equal(gunzipSync(response.rawPayload).toString('utf8'), mediaPlaylist('hifi', 100));
  t.not(response.headers.etag, etag, 'the gzip coding is another representation');

  const revalidated = await get(app, '/fip/fip_hifi.m3u8', {
    'accept-encoding': 'gzip',
    'if-none-match': response.headers.etag as string,
  });
  t.equal(revalidated.statusCode, 304);

  for (const acceptEncoding of ['gzip;q=0', 'br', 'identity']) {
    const identity = await get(app, '/fip/fip_hifi.m3u8', { 'accept-encoding': acceptEncoding });
    t.equal(identity.headers['content-encoding'], undefined, acceptEncoding);
    t.equal(identity.headers.vary, 'Accept-Encoding', acceptEncoding);
    t.equal(identity.body, mediaPlaylist('hifi', 100), acceptEncoding);
  }
  t.equal((await get(app, '/fip/hifi/100-1.ts', { 'accept-encoding': 'gzip' })).headers['content-encoding'], undefined, 'segments are never gzipped');
});

t.test('after a publish the next request gets the new playlist and its new ETag', async (t) => {
  const store = await filledStore(t);
  // A long safety-net max age: only the store notification can refresh the cache in time.
  const app = await startOrigin(t, store, { playlistCacheMaxAgeMs: 60_000 });
  const before = await get(app, '/fip/fip_hifi.m3u8', { 'accept-encoding': 'gzip' });
  t.equal(gunzipSync(before.rawPayload).toString('utf8'), mediaPlaylist('hifi', 100));

  await publishFip(store, 101);
  const newEtag = await storedEtag(store, 'fip', 'fip_hifi.m3u8');
  const after = await get(app, '/fip/fip_hifi.m3u8');
  t.equal(after.headers.etag, newEtag);
  t.equal(after.body, mediaPlaylist('hifi', 101));
  const afterGzip = await get(app, '/fip/fip_hifi.m3u8', { 'accept-encoding': 'gzip' });
  t.equal(gunzipSync(afterGzip.rawPayload).toString('utf8'), mediaPlaylist('hifi', 101));
});

t.test('a lost notification is made up for: a cached playlist is read again after half a target duration', async (t) => {
  const store = new SilentStore(await filledStore(t));
  const clock = new ManualClock();
  const app = await startOrigin(t, store, { playlistCacheMaxAgeMs: 100, targetDurationSeconds: 1, clock });
  const oldEtag = (await get(app, '/fip/fip_hifi.m3u8')).headers.etag;
  await publishFip(store, 101);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).headers.etag, oldEtag, 'served from memory meanwhile');
  await clock.advance(200);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).headers.etag, oldEtag, 'subscribed: the short max age no longer applies');
  await clock.advance(400);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).headers.etag, await storedEtag(store, 'fip', 'fip_hifi.m3u8'));
});

t.test('without a subscription a cached playlist refreshes after its short max age', async (t) => {
  class UnsubscribableStore extends DelegatingStore {
    override async subscribe(): Promise<() => Promise<void>> {
      throw new Error('pub/sub refused');
    }
  }
  const store = new UnsubscribableStore(await filledStore(t));
  const clock = new ManualClock();
  const app = await startOrigin(t, store, { playlistCacheMaxAgeMs: 100, clock });
  const oldEtag = (await get(app, '/fip/fip_hifi.m3u8')).headers.etag;
  await publishFip(store, 101);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).headers.etag, oldEtag, 'served from memory meanwhile');
  await clock.advance(99);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).headers.etag, oldEtag, 'still within the short max age');
  await clock.advance(1);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).headers.etag, await storedEtag(store, 'fip', 'fip_hifi.m3u8'));
});

t.test('an unknown channel or rendition is 404 without a store read', async (t) => {
  const store = new CountingStore(await filledStore(t));
  const app = await startOrigin(t, store);
  for (const url of ['/radio/radio.m3u8', '/fip/fip_midfi.m3u8', '/fip/jazz.m3u8', '/fip/jazz_hifi.m3u8', '/fip/midfi/100-1.ts', '/radio/hifi/100-1.ts']) {
    const response = await get(app, url);
    t.equal(response.statusCode, 404, url);
    t.equal(response.headers['content-type'], 'application/json; charset=utf-8', url);
    t.equal(response.headers['cache-control'], 'public, max-age=1', url);
    t.equal(response.json().error, 'not_found', url);
    t.type(response.json().message, 'string', url);
  }
  t.equal(store.reads, 0);
});

t.test('a known channel whose playlist or segment is not in the store yet is 404 for one second', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  for (const url of ['/jazz/jazz.m3u8', '/jazz/jazz_hifi.m3u8', '/fip/hifi/101-1.ts', '/fip/hifi/100-2.ts']) {
    const response = await get(app, url);
    t.equal(response.statusCode, 404, url);
    t.equal(response.headers['cache-control'], 'public, max-age=1', url);
    t.equal(response.headers['access-control-allow-origin'], '*', url);
    t.equal(response.headers.etag, undefined, url);
    t.same(Object.keys(response.json()).sort(), ['error', 'message'], url);
    t.equal(response.json().error, 'not_found', url);
  }
});

t.test('a missing segment is read again later and served once it exists', async (t) => {
  const memory = await filledStore(t);
  const store = new CountingStore(memory);
  const app = await startOrigin(t, store);
  t.equal((await get(app, '/fip/hifi/101-1.ts')).statusCode, 404);
  await memory.putSegment('fip', 'hifi', '101-1.ts', SEGMENT, 600);
  t.equal((await get(app, '/fip/hifi/101-1.ts')).statusCode, 200);
  // Two segment reads, and one of the media playlist: is the segment a preload hint to wait for?
  t.equal(store.reads, 3);
});

t.test('a store that is down gives 503 with Retry-After and no-store, and healthz says so', async (t) => {
  const store = new UnavailableStore(await filledStore(t));
  const app = await startOrigin(t, store);
  for (const url of ['/fip/fip.m3u8', '/fip/fip_hifi.m3u8', '/fip/hifi/100-1.ts', '/healthz']) {
    const response = await get(app, url);
    t.equal(response.statusCode, 503, url);
    t.equal(response.headers['retry-after'], '1', url);
    t.equal(response.headers['cache-control'], 'no-store', url);
    t.equal(response.headers['content-type'], 'application/json; charset=utf-8', url);
    t.equal(response.json().error, 'store_unavailable', url);
  }
});

t.test('a store read that never answers gives 503 after the store timeout', async (t) => {
  class HangingStore extends DelegatingStore {
    override getSegment(): Promise<Uint8Array | null> {
      return new Promise(() => undefined);
    }
  }
  const store = new HangingStore(await filledStore(t));
  const clock = new ManualClock();
  const app = await startOrigin(t, store, { storeTimeoutMs: 60_000, clock });
  let answered = false;
  const request = get(app, '/fip/hifi/100-1.ts').finally(() => (answered = true));
  await clock.advance(59_999);
  t.notOk(answered, 'no answer before the timeout');
  await clock.advance(1);
  await waitUntil(t, 'answered at the timeout', () => answered);
  const response = await request;
  t.equal(response.statusCode, 503);
  t.equal(response.headers['retry-after'], '1');
});

t.test('healthz answers 200 while the store answers', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const response = await get(app, '/healthz');
  t.equal(response.statusCode, 200);
  t.same(response.json(), { status: 'ok' });
  t.equal(response.headers['cache-control'], 'no-store');
});

t.test('malformed, traversing and overlong requests get a 4xx, never a 5xx', async (t) => {
  const store = new CountingStore(await filledStore(t));
  const app = await startOrigin(t, store);
  const requests: InjectOptions[] = [
    '/FIP/FIP.m3u8',
    '/fip/FIP.m3u8',
    '/fip/../fip.m3u8',
    '/fip/%2e%2e/fip.m3u8',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/fip/hifi/..%2f..%2fetc%2fpasswd',
    '/fip/hifi%2F100-1.ts',
    '/fip%2Ffip.m3u8',
    '/fip/fip_hifi.m3u8%00',
    '/fip/hifi/100-1.ts%00.m3u8',
    '/fip/hifi/100-1.mp4',
    '/fip/hifi/100-1.TS',
    '/fip/hifi/100.ts',
    '/fip/hifi/-1-1.ts',
    '/fip/hifi/1e3-1.ts',
    '/fip/hifi/0100-1.ts',
    '/fip/hifi/99999999999999999999-1.ts',
    `/${'a'.repeat(33)}/${'a'.repeat(33)}.m3u8`,
    `/fip/${'x'.repeat(5000)}.m3u8`,
    `/fip/hifi/${'1'.repeat(200)}-1.ts`,
    '/fip/fip_hi_fi.m3u8',
    '/fip/fip_.m3u8',
    '/fip/fip.m3u8/',
    '//fip/fip.m3u8',
    '/fip//fip.m3u8',
    '/fip/%zz.m3u8',
    '/fip/%C3%A9.m3u8',
    '/fip/fip.m3u8;jsessionid=1',
    '/fip/hifi/100-1.ts/extra',
    '/fip_hifi.m3u8',
    '/fip',
  ].map((url) => ({ method: 'GET' as const, url }));
  requests.push(
    { method: 'POST', url: '/fip/fip.m3u8', payload: { a: 1 } },
    { method: 'PUT', url: '/fip/hifi/100-1.ts', payload: Buffer.alloc(100_000) },
    { method: 'DELETE', url: '/fip/hifi/100-1.ts' },
    { method: 'PATCH', url: '/healthz' },
    { method: 'PROPFIND', url: '/fip/fip.m3u8' },
  );
  for (const request of requests) {
    const response = await app.inject(request);
    const label = `${request.method} ${String(request.url).slice(0, 80)}`;
    t.ok(response.statusCode >= 400 && response.statusCode < 500, `${label} → ${response.statusCode}`);
  }
  t.equal(store.reads, 0, 'none of them reached the store');
});

t.test('absurd query strings are ignored', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const queries = [
    'a=1&'.repeat(5000),
    '__proto__[polluted]=1&constructor[prototype][polluted]=1',
    '_HLS_msn=abc&_HLS_part=-1',
    '%zz=%ff&&&==',
  ];
  for (const query of queries) {
    const response = await get(app, `/fip/fip.m3u8?${query}`);
    t.equal(response.statusCode, 200, query.slice(0, 40));
    t.equal(response.body, MASTER, query.slice(0, 40));
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted');
});

t.test('writes are refused with 405 and an Allow header', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const response = await app.inject({ method: 'POST', url: '/fip/fip.m3u8', payload: 'x' });
  t.equal(response.statusCode, 405);
  t.equal(response.headers.allow, 'GET, HEAD, OPTIONS');
  t.equal(response.json().error, 'method_not_allowed');
});

t.test('a CORS preflight from a web player is answered with the allowed methods', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const response = await app.inject({
    method: 'OPTIONS',
    url: '/fip/hifi/100-1.ts',
    headers: { origin: 'https://player.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'range' },
  });
  t.equal(response.statusCode, 204);
  t.equal(response.headers['access-control-allow-origin'], '*');
  t.match(response.headers['access-control-allow-methods'], /GET/);
  t.match(String(response.headers['access-control-allow-headers']).toLowerCase(), /range/);

  const simple = await get(app, '/fip/hifi/100-1.ts', { origin: 'https://player.example' });
  const exposed = String(simple.headers['access-control-expose-headers']).toLowerCase().split(/\s*,\s*/);
  t.same(exposed.sort(), ['age', 'content-length', 'content-range', 'etag']);
});

t.test('fifty concurrent requests for one uncached segment share one store read', async (t) => {
  const store = new CountingStore(await filledStore(t));
  let release = (): void => undefined;
  store.segmentGate = new Promise<void>((resolve) => {
    release = resolve;
  });
  // No LRU: only sharing the in-flight read can keep it to one.
  const app = await startOrigin(t, store, { segmentCacheBytes: 0 });
  const responses = Array.from({ length: 50 }, () => get(app, '/fip/hifi/100-1.ts'));
  await waitUntil(t, 'all fifty asked the segment cache', () => app.onairOrigin.stats().segmentCache.misses === 50);
  release();
  for (const response of await Promise.all(responses)) {
    t.equal(response.statusCode, 200);
    t.equal(response.rawPayload.length, SEGMENT.length);
  }
  t.equal(store.reads, 1);
});

t.test('concurrent requests for one uncached playlist share one store read', async (t) => {
  const store = new CountingStore(await filledStore(t));
  const app = await startOrigin(t, store);
  const responses = await Promise.all(Array.from({ length: 20 }, () => get(app, '/fip/fip_hifi.m3u8')));
  t.ok(responses.every((response) => response.statusCode === 200));
  t.equal(store.reads, 1);
});

t.test('segments stay in memory until the byte bound evicts the least recently used', async (t) => {
  const memory = await filledStore(t);
  for (const msn of [101, 102]) await memory.putSegment('fip', 'hifi', `${msn}-1.ts`, SEGMENT, 600);
  const store = new CountingStore(memory);
  const app = await startOrigin(t, store, { segmentCacheBytes: 2500 });
  await get(app, '/fip/hifi/100-1.ts');
  await get(app, '/fip/hifi/101-1.ts');
  await get(app, '/fip/hifi/100-1.ts');
  t.equal(store.reads, 2, 'a hit does not read the store');
  await get(app, '/fip/hifi/102-1.ts');
  await get(app, '/fip/hifi/100-1.ts');
  t.equal(store.reads, 3, 'the recently used segment survived');
  await get(app, '/fip/hifi/101-1.ts');
  t.equal(store.reads, 4, 'the least recently used one was evicted');
});

t.test('the origin unsubscribes from store notifications when it closes', async (t) => {
  const store = new CountingStore(await filledStore(t));
  const app = await buildOrigin({ store, channels: CHANNELS, targetDurationSeconds: TARGET_DURATION });
  await app.ready();
  await app.close();
  t.equal(store.unsubscribes, 1);
});

t.test('the origin starts while the store is down, then serves and follows publishes once it is back', async (t) => {
  const store = new UnavailableStore(await filledStore(t));
  const clock = new ManualClock();
  const app = await startOrigin(t, store, { playlistCacheMaxAgeMs: 60_000, clock });
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).statusCode, 503);

  store.down = false;
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).statusCode, 200, 'no restart needed');
  // The subscription is retried every second; after that a publish reaches the cache again.
  await clock.advance(1000);
  await publishFip(store, 101);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).headers.etag, await storedEtag(store, 'fip', 'fip_hifi.m3u8'));
});

t.test('the channel list can change while the origin runs', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store, { channels: [{ id: 'jazz', renditions: ['hifi'] }] });
  t.equal((await get(app, '/fip/fip.m3u8')).statusCode, 404);
  app.onairOrigin.setChannels(CHANNELS);
  t.equal((await get(app, '/fip/fip.m3u8')).statusCode, 200);
  t.same(app.onairOrigin.channels(), CHANNELS);
  app.onairOrigin.setChannels([{ id: 'fip', renditions: ['lofi'] }]);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).statusCode, 404);
  t.equal((await get(app, '/fip/hifi/100-1.ts')).statusCode, 404);
  t.equal((await get(app, '/fip/lofi/100-1.ts')).statusCode, 200);
  t.throws(() => app.onairOrigin.setChannels([{ id: 'Bad_Id', renditions: ['hifi'] }]), { code: 'ONAIR_CONFIG_INVALID' });
});

t.test('bad plugin options fail registration with ONAIR_CONFIG_INVALID', async (t) => {
  const store = await filledStore(t);
  const good = { store, channels: CHANNELS, targetDurationSeconds: TARGET_DURATION };
  const cases: [string, unknown][] = [
    ['no store', { ...good, store: undefined }],
    ['a store without reads', { ...good, store: {} }],
    ['channels not an array', { ...good, channels: 'fip' }],
    ['an uppercase channel id', { ...good, channels: [{ id: 'FIP', renditions: ['hifi'] }] }],
    ['an underscore in a rendition', { ...good, channels: [{ id: 'fip', renditions: ['hi_fi'] }] }],
    ['a 33-character id', { ...good, channels: [{ id: 'a'.repeat(33), renditions: ['hifi'] }] }],
    ['no renditions', { ...good, channels: [{ id: 'fip', renditions: [] }] }],
    ['duplicate channels', { ...good, channels: [CHANNELS[0], CHANNELS[0]] }],
    ['duplicate renditions', { ...good, channels: [{ id: 'fip', renditions: ['hifi', 'hifi'] }] }],
    ['a zero target duration', { ...good, targetDurationSeconds: 0 }],
    ['a fractional target duration', { ...good, targetDurationSeconds: 3.5 }],
    ['a negative segment cache', { ...good, segmentCacheBytes: -1 }],
    ['a clock without timers', { ...good, clock: { now: () => 0 } }],
  ];
  for (const [label, options] of cases) {
    const app = Fastify();
    await t.rejects(async () => app.register(originPlugin, options as BuildOriginOptions), { code: 'ONAIR_CONFIG_INVALID' }, label);
    await app.close();
  }
  await t.rejects(buildOrigin({ ...good, targetDurationSeconds: -4 }), { code: 'ONAIR_CONFIG_INVALID' });
});

t.test('an unexpected fault is a logged 500 with the small JSON body', async (t) => {
  const store = await filledStore(t);
  const logLines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  const app = Fastify({ loggerInstance: pino({ level: 'error' }, destination) });
  t.teardown(() => app.close());
  await app.register(originPlugin, { store, channels: CHANNELS, targetDurationSeconds: TARGET_DURATION });
  app.get('/broken', async () => {
    throw new Error('bug');
  });
  const response = await get(app, '/broken');
  t.equal(response.statusCode, 500);
  t.equal(response.headers['cache-control'], 'no-store');
  t.equal(response.json().error, 'internal_server_error');
  t.ok(logLines.some((line) => JSON.parse(line).level === 50), 'the fault was logged as an error');
});

t.test('over a real socket, playlists arrive gzipped with CORS headers', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const response = await fetch(`${address}/fip/fip_hifi.m3u8`, {
    headers: { origin: 'https://player.example', 'accept-encoding': 'gzip' },
  });
  t.equal(response.status, 200);
  t.equal(response.headers.get('content-encoding'), 'gzip');
  t.equal(response.headers.get('vary'), 'Accept-Encoding');
  t.equal(response.headers.get('access-control-allow-origin'), '*');
  t.match(String(response.headers.get('access-control-expose-headers')), /ETag/);
  t.equal(await response.text(), mediaPlaylist('hifi', 100), 'fetch decodes the gzip body');

  const preflight = await fetch(`${address}/fip/hifi/100-1.ts`, {
    method: 'OPTIONS',
    headers: { origin: 'https://player.example', 'access-control-request-method': 'GET' },
  });
  t.equal(preflight.status, 204);
  t.equal(preflight.headers.get('access-control-allow-origin'), '*');

  const range = await fetch(`${address}/fip/hifi/100-1.ts`, { headers: { range: 'bytes=10-19' } });
  t.equal(range.status, 206);
  t.same(Buffer.from(await range.arrayBuffer()), SEGMENT.subarray(10, 20));
});

t.test('after a publish, the newest segment of a requested playlist is in memory before anyone asks', async (t) => {
  const memory = await filledStore(t);
  const store = new CountingStore(memory);
  const app = await startOrigin(t, store);
  t.equal((await get(app, '/fip/fip_hifi.m3u8')).statusCode, 200, 'the playlist is being requested');
  await memory.putSegment('fip', 'hifi', '106-1.ts', SEGMENT, 600);
  await publishFip(memory, 101);
  await waitUntil(t, 'the refreshed playlist lists 106', async () => (await get(app, '/fip/fip_hifi.m3u8')).body.includes('hifi/106-1.ts'), 2000);
  await waitUntil(t, 'the newest segment was read', () => store.segmentsRead.includes('106-1.ts'), 2000);
  await settle();
  const readsBefore = store.reads;
  const segment = await get(app, '/fip/hifi/106-1.ts');
  t.equal(segment.statusCode, 200);
  t.equal(store.reads, readsBefore, 'served from memory: prefetched at the publish');
  t.equal(app.onairOrigin.stats().segmentCache.hits, 1, 'and counted as a hit');
});
