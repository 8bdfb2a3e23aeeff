/**
 * Protected channels on a real origin: the origin plugin and onair-signed-access on one
 * Fastify instance, built as origin-server.ts builds it, over a MemoryStore holding a signed
 * low-latency channel (fip) and a public one (jazz).
 */
import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import { originFrameworkErrorHandler } from '../../src/http/error-replies.js';
import { MAX_PARAM_LENGTH, originPlugin } from '../../src/origin/origin-plugin.js';
import { renderMediaPlaylist } from '../../src/hls/playlist-writer.js';
import { signedAccessPlugin, SignedVariants } from '../../src/origin/signed-access.js';
import type { SignedAccessOptions } from '../../src/origin/signed-access.js';
import { channelPathPrefix, signPath } from '../../src/origin/signed-urls.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { renderChannelMpds } from '../../src/dash/channel-mpd.js';
import { dashPlugin } from '../../src/origin/dash-plugin.js';
import { ManualClock } from '../helpers/manual-clock.js';

const KEY = 'onair-test-signing-key-0123456789abcdef';
const TARGET_DURATION = 4;
const CHANNELS = [
  { id: 'fip', renditions: ['hifi', 'lofi'] },
  { id: 'jazz', renditions: ['hifi'] },
];
const SIGNED = new Set(['fip']);

const FIP_MASTER = [
  '#EXTM3U',
  '#EXT-X-VERSION:9',
  '#EXT-X-STREAM-INF:BANDWIDTH=200000,AVERAGE-BANDWIDTH=192000,CODECS="mp4a.40.2"',
  'fip_hifi.m3u8',
  '#EXT-X-STREAM-INF:BANDWIDTH=70000,AVERAGE-BANDWIDTH=64000,CODECS="mp4a.40.2"',
  'fip_lofi.m3u8',
  '',
].join('\n');

/** Segments 100–105 and the parts of 106 up to `partsOf106`, hinting the next part. */
function lowLatencyPlaylist(rendition: string, partsOf106: number): string {
  const other = rendition === 'hifi' ? 'lofi' : 'hifi';
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:9',
    `#EXT-X-TARGETDURATION:${TARGET_DURATION}`,
    '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.0,CAN-SKIP-UNTIL=24.0',
    '#EXT-X-PART-INF:PART-TARGET=1.0',
    '#EXT-X-MEDIA-SEQUENCE:100',
    '#EXT-X-DISCONTINUITY-SEQUENCE:0',
  ];
  for (let msn = 100; msn < 106; msn++) {
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:${String((msn - 100) * 4).padStart(2, '0')}.000Z`);
    lines.push('#EXTINF:3.989,', `${rendition}/${msn}-1.ts`);
  }
  for (let part = 0; part < partsOf106; part++) {
    lines.push(`#EXT-X-PART:DURATION=1.0,URI="${rendition}/106-1.${part}.ts"${part === 0 ? ',INDEPENDENT=YES' : ''}`);
  }
  lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${rendition}/106-1.${partsOf106}.ts"`);
  lines.push(`#EXT-X-RENDITION-REPORT:URI="fip_${other}.m3u8",LAST-MSN=106,LAST-PART=${partsOf106 - 1}`);
  return `${lines.join('\n')}\n`;
}

const JAZZ_MASTER = '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS="mp4a.40.2"\njazz_hifi.m3u8\n';
const JAZZ_MEDIA = [
  '#EXTM3U',
  '#EXT-X-VERSION:3',
  `#EXT-X-TARGETDURATION:${TARGET_DURATION}`,
  '#EXT-X-MEDIA-SEQUENCE:7',
  ...Array.from({ length: 6 }, (_, i) => [`#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:0${i}.000Z`, '#EXTINF:3.989,', `hifi/${7 + i}-1.ts`]).flat(),
  '',
].join('\n');

/** Bytes recognizable per URI. */
function segmentBytes(name: string): Buffer {
  return Buffer.from(`segment ${name} `.repeat(40));
}

async function publishFip(store: MemoryStore, partsOf106: number): Promise<void> {
  for (const rendition of ['hifi', 'lofi']) {
    for (let part = 0; part < partsOf106; part++) {
      await store.putSegment('fip', rendition, `106-1.${part}.ts`, segmentBytes(`fip/${rendition}/106-1.${part}`), 600);
    }
  }
  await store.publish({
    channel: 'fip',
    playlists: { 'fip.m3u8': FIP_MASTER, 'fip_hifi.m3u8': lowLatencyPlaylist('hifi', partsOf106), 'fip_lofi.m3u8': lowLatencyPlaylist('lofi', partsOf106) },
    state: JSON.stringify({ msn: 105 }),
  });
}

async function filledStore(t: Test): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  for (const rendition of ['hifi', 'lofi']) {
    for (let msn = 100; msn < 106; msn++) {
      await store.putSegment('fip', rendition, `${msn}-1.ts`, segmentBytes(`fip/${rendition}/${msn}-1`), 600);
    }
  }
  await publishFip(store, 1);
  for (let msn = 7; msn < 13; msn++) await store.putSegment('jazz', 'hifi', `${msn}-1.ts`, segmentBytes(`jazz/hifi/${msn}-1`), 600);
  await store.publish({ channel: 'jazz', playlists: { 'jazz.m3u8': JAZZ_MASTER, 'jazz_hifi.m3u8': JAZZ_MEDIA }, state: JSON.stringify({ msn: 12 }) });
  return store;
}

/** As origin-server.ts's buildOrigin, plus onair-signed-access (or without it, to compare). */
async function startOrigin(
  t: Test,
  store: MemoryStore,
  access: Partial<SignedAccessOptions> | 'none' = {},
  moreRoutes: (app: FastifyInstance) => void = () => undefined,
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    trustProxy: true,
    return503OnClosing: true,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: originFrameworkErrorHandler,
  }) as unknown as FastifyInstance;
  t.teardown(() => app.close());
  await app.register(originPlugin, { store, channels: CHANNELS, targetDurationSeconds: TARGET_DURATION });
  if (access !== 'none') await app.register(signedAccessPlugin, { key: KEY, signedChannels: () => SIGNED, clock, ...access });
  moreRoutes(app);
  await app.ready();
  return app;
}

/** Token expiry is judged on this clock: tokens are signed relative to it, and it stands still. */
const clock = new ManualClock();
const nowSeconds = (): number => Math.floor(clock.now() / 1000);
const fipToken = (expiresAt = nowSeconds() + 3600): string => signPath({ key: KEY, pathPrefix: channelPathPrefix('fip'), expiresAt });

function get(app: FastifyInstance, url: string, headers: Record<string, string> = {}, method: InjectOptions['method'] = 'GET') {
  return app.inject({ method, url, headers });
}

/** The URI lines and URI="…" attributes of a playlist, in order. */
function urisOf(playlist: string): string[] {
  return playlist.split('\n').flatMap((line) => {
    if (line === '') return [];
    if (!line.startsWith('#')) return [line];
    return [...line.matchAll(/URI="([^"]*)"/g)].map((match) => match[1]!);
  });
}

/** Resolves a playlist URI against the playlist's URL, keeping its query. */
function resolveUri(playlistUrl: string, uri: string): string {
  const resolved = new URL(uri, `http://origin${playlistUrl}`);
  return resolved.pathname + resolved.search;
}

const FIP_URLS = ['/fip/fip.m3u8', '/fip/fip_hifi.m3u8', '/fip/hifi/100-1.ts', '/fip/lofi/106-1.0.ts'];

function assertRefused(t: Test, response: LightMyRequestResponse, error: string, what: string): void {
  t.equal(response.statusCode, 403, what);
  t.equal(response.headers['content-type'], 'application/json; charset=utf-8', what);
  t.equal(response.headers['cache-control'], 'no-store', `${what}: a refusal is never cached`);
  t.equal(response.headers['access-control-allow-origin'], '*', `${what}: a web player can read the refusal`);
  t.equal(response.headers.etag, undefined, what);
  if (response.body !== '') t.equal(response.json().error, error, what);
}

t.test('every URL of a signed channel needs a token: 403 JSON without one, for GET and HEAD', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  for (const url of FIP_URLS) {
    assertRefused(t, await get(app, url), 'token_missing', `GET ${url}`);
    const head = await get(app, url, {}, 'HEAD');
    assertRefused(t, head, 'token_missing', `HEAD ${url}`);
    t.equal(head.body, '', `HEAD ${url}: no body`);
  }
});

t.test('expired, forged, other-channel and malformed tokens are refused with their own code', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const valid = fipToken();
  const [expiresAt, prefix, signature] = valid.split('~') as [string, string, string];
  const refusals: [string, string][] = [
    [`token=${fipToken(nowSeconds() - 1)}`, 'token_expired'],
    [`token=${Number(expiresAt) + 86400}~${prefix}~${signature}`, 'token_forged'],
    [`token=${signPath({ key: `${KEY}-leaked-elsewhere`, pathPrefix: '/fip/', expiresAt: Number(expiresAt) })}`, 'token_forged'],
    [`token=${signPath({ key: KEY, pathPrefix: channelPathPrefix('jazz'), expiresAt: Number(expiresAt) })}`, 'token_wrong_path'],
    ['token=letmein', 'token_malformed'],
    [`token=${valid}&token=${valid}`, 'token_malformed'],
    [`token[]=${valid}`, 'token_missing'],
    [`token=${'A'.repeat(20_000)}`, 'token_malformed'],
  ];
  for (const url of FIP_URLS) {
    for (const [query, error] of refusals) {
      assertRefused(t, await get(app, `${url}?${query}`), error, `${url} ${error} ${query.slice(0, 30)}`);
    }
  }
});

t.test('with a valid token every playlist URI carries it, and each of those URIs answers 200', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const token = fipToken();
  const master = await get(app, `/fip/fip.m3u8?token=${token}`);
  t.equal(master.statusCode, 200);
  t.equal(master.headers['content-type'], 'application/vnd.apple.mpegurl');
  t.same(urisOf(master.body), [`fip_hifi.m3u8?token=${token}`, `fip_lofi.m3u8?token=${token}`]);
  t.equal(master.headers['content-length'], String(Buffer.byteLength(master.body)), 'Content-Length counts the tokens');

  let fetched = 0;
  for (const variant of urisOf(master.body)) {
    const playlistUrl = resolveUri('/fip/fip.m3u8', variant);
    const media = await get(app, playlistUrl);
    t.equal(media.statusCode, 200, playlistUrl);
    const uris = urisOf(media.body);
    t.equal(uris.length, 6 + 1 + 1 + 1, `${playlistUrl}: six segments, a part, the preload hint and a rendition report`);
    for (const uri of uris) {
      t.ok(uri.endsWith(`?token=${token}`), `${uri} carries the token`);
      if (uri.includes('PRELOAD') || uri.endsWith(`106-1.1.ts?token=${token}`)) continue; // the hint is held until published
      const response = await get(app, resolveUri(playlistUrl, uri));
      t.equal(response.statusCode, 200, uri);
      fetched += 1;
    }
  }
  t.equal(fetched, 2 * 8, 'every listed segment, part and rendition report fetched');

  const segment = await get(app, `/fip/hifi/100-1.ts?token=${token}`);
  t.same(segment.rawPayload, segmentBytes('fip/hifi/100-1'), 'segment bytes are untouched');
  const range = await get(app, `/fip/hifi/100-1.ts?token=${token}`, { range: 'bytes=0-9' });
  t.equal(range.statusCode, 206, 'ranges still work');
});

t.test('the preload-hinted part, asked for with the token, is held and served once published', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const token = fipToken();
  const media = await get(app, `/fip/fip_hifi.m3u8?token=${token}`);
  t.match(media.body, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="hifi/106-1.1.ts?token=${token}"`);
  const held = get(app, `/fip/hifi/106-1.1.ts?token=${token}`);
  assertRefused(t, await get(app, '/fip/hifi/106-1.1.ts'), 'token_missing', 'without the token it is refused at once');
  await publishFip(store, 2);
  const part = await held;
  t.equal(part.statusCode, 200);
  t.same(part.rawPayload, segmentBytes('fip/hifi/106-1.1'));

  const blocking = await get(app, `/fip/fip_hifi.m3u8?_HLS_msn=106&_HLS_part=1&token=${token}`);
  t.equal(blocking.statusCode, 200, 'a blocking reload with the token is answered');
  t.match(blocking.body, `URI="hifi/106-1.1.ts?token=${token}"`);
});

t.test('gzip: the rewritten playlist is compressed again, with the origin ETag and 304s', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const url = `/fip/fip_hifi.m3u8?token=${fipToken()}`;
  const identity = await get(app, url);
  const gzipped = await get(app, url, { 'accept-encoding': 'gzip' });
  t.equal(gzipped.statusCode, 200);
  t.equal(gzipped.headers['content-encoding'], 'gzip');
  t.equal(gzipped.headers.vary, 'Accept-Encoding');
  t.equal(gzipped.headers['content-length'], String(gzipped.rawPayload.length));
  t.equal(gunzipSync(gzipped.rawPayload).toString('utf8'), identity.body, 'the same signed playlist');
  t.ok(gzipped.rawPayload.length < identity.rawPayload.length, 'and smaller');

  const unsigned = await startOrigin(t, await filledStore(t), 'none');
  const origin = await get(unsigned, '/fip/fip_hifi.m3u8', { 'accept-encoding': 'gzip' });
  t.equal(gzipped.headers.etag, origin.headers.etag, 'the ETag of the gzip coding is the origin one');
  t.not(gzipped.headers.etag, identity.headers.etag, 'and differs from the identity one');

  for (const [coding, etag] of [['gzip', gzipped.headers.etag], ['identity', identity.headers.etag]] as const) {
    const revalidated = await get(app, url, { 'accept-encoding': coding, 'if-none-match': etag as string });
    t.equal(revalidated.statusCode, 304, `${coding}: 304`);
    t.equal(revalidated.rawPayload.length, 0, `${coding}: no body`);
  }
});

t.test('HEAD of a signed playlist answers 200 without a Content-Length that would count no tokens', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const token = fipToken();
  const playlist = await get(app, `/fip/fip_hifi.m3u8?token=${token}`, {}, 'HEAD');
  t.equal(playlist.statusCode, 200);
  t.equal(playlist.headers['content-type'], 'application/vnd.apple.mpegurl');
  t.equal(playlist.headers['content-length'], undefined);
  t.equal(playlist.body, '');
  const segment = await get(app, `/fip/hifi/100-1.ts?token=${token}`, {}, 'HEAD');
  t.equal(segment.statusCode, 200);
  t.equal(segment.headers['content-length'], String(segmentBytes('fip/hifi/100-1').length), 'a segment keeps its length');
});

t.test('caches keep a signed answer no longer than its token is valid', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const longLived = fipToken();
  t.equal((await get(app, `/fip/fip_hifi.m3u8?token=${longLived}`)).headers['cache-control'], 'public, max-age=2', 'media: the origin value');
  t.equal((await get(app, `/fip/fip.m3u8?token=${longLived}`)).headers['cache-control'], 'public, max-age=12', 'master: the origin value');

  const shortLived = fipToken(nowSeconds() + 5);
  const master = await get(app, `/fip/fip.m3u8?token=${shortLived}`);
  t.equal(master.headers['cache-control'], 'public, max-age=5', 'master: capped at the token lifetime');
  const segment = await get(app, `/fip/hifi/100-1.ts?token=${shortLived}`);
  t.equal(segment.headers['cache-control'], 'public, max-age=5, immutable', 'segment: capped too');
  await clock.advance(2000);
  t.equal((await get(app, `/fip/fip.m3u8?token=${shortLived}`)).headers['cache-control'], 'public, max-age=3', 'shorter as the token ages');
  await clock.advance(3000);
  assertRefused(t, await get(app, `/fip/fip.m3u8?token=${shortLived}`), 'token_expired', 'refused once it expired');
});

t.test('a public channel needs no token and is answered exactly as without the plugin', async (t) => {
  const store = await filledStore(t);
  const signed = await startOrigin(t, store);
  const plain = await startOrigin(t, store, 'none');
  const requests: [string, Record<string, string>, InjectOptions['method']][] = [
    ['/jazz/jazz.m3u8', {}, 'GET'],
    ['/jazz/jazz_hifi.m3u8', { 'accept-encoding': 'gzip' }, 'GET'],
    ['/jazz/jazz_hifi.m3u8', {}, 'HEAD'],
    [`/jazz/jazz_hifi.m3u8?token=${fipToken()}`, {}, 'GET'],
    ['/jazz/jazz_hifi.m3u8?token=forged', {}, 'GET'],
    ['/jazz/hifi/7-1.ts', { range: 'bytes=0-9' }, 'GET'],
    ['/jazz/hifi/99-1.ts', {}, 'GET'],
    ['/healthz', {}, 'GET'],
    ['/nowhere', {}, 'GET'],
  ];
  for (const [url, headers, method] of requests) {
    const expected = await get(plain, url, headers, method);
    const actual = await get(signed, url, headers, method);
    t.equal(actual.statusCode, expected.statusCode, `${method} ${url}: status`);
    t.same(withoutDate(actual.headers), withoutDate(expected.headers), `${method} ${url}: headers`);
    t.same(actual.rawPayload, expected.rawPayload, `${method} ${url}: body`);
  }
  t.equal((await get(signed, '/jazz/jazz.m3u8')).statusCode, 200);
});

t.test('the channel is the routed one: a percent-encoded channel id is still signed', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  assertRefused(t, await get(app, '/%66ip/fip.m3u8'), 'token_missing', '/%66ip/ is fip');
  const withToken = await get(app, `/%66ip/fip.m3u8?token=${fipToken()}`);
  t.equal(withToken.statusCode, 403, 'a token does not cover a path written another way');
});

t.test('hostile requests to a signed channel get a 4xx, never a 5xx', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const token = fipToken();
  const queries = [
    `token=${token}%`,
    `token=%E0%A4%A`,
    `token=${encodeURIComponent(token)}`,
    `token=${token}&_HLS_msn=9999999`,
    `token=${token}&_HLS_part=1`,
    `token=${'~'.repeat(5000)}`,
    `token=${token.replace(/~/g, '%7E')}&token=x`,
    `token[a]=${token}`,
    `${'token=x&'.repeat(500)}token=${token}`,
    'token',
    'token=',
    '=&&=',
  ];
  for (const url of FIP_URLS) {
    for (const query of queries) {
      for (const method of ['GET', 'HEAD'] as const) {
        const response = await get(app, `${url}?${query}`, {}, method);
        t.ok(response.statusCode < 500, `${method} ${url}?${query.slice(0, 40)} → ${response.statusCode}`);
      }
    }
  }
  const encoded = await get(app, `/fip/fip.m3u8?token=${encodeURIComponent(token)}`);
  t.equal(encoded.statusCode, 200, 'a percent-encoded token is the same token');
});

t.test('the signed channels are read per request, so a reload can change them', async (t) => {
  let signed = new Set(['fip']);
  const app = await startOrigin(t, await filledStore(t), { signedChannels: () => signed });
  t.equal((await get(app, '/jazz/jazz.m3u8')).statusCode, 200);
  signed = new Set(['jazz']);
  assertRefused(t, await get(app, '/jazz/jazz.m3u8'), 'token_missing', 'jazz is signed now');
  t.equal((await get(app, '/fip/fip.m3u8')).statusCode, 200, 'fip is public now');
  const jazzToken = signPath({ key: KEY, pathPrefix: channelPathPrefix('jazz'), expiresAt: nowSeconds() + 60 });
  t.equal((await get(app, `/jazz/jazz.m3u8?token=${jazzToken}`)).statusCode, 200);
});

t.test('registration refuses signed channels without a key; a key removed later accepts no token', async (t) => {
  const store = await filledStore(t);
  await t.rejects(startOrigin(t, store, { key: undefined }), { code: 'ONAIR_CONFIG_INVALID', where: 'signing.key' });
  await t.rejects(startOrigin(t, store, { signedChannels: undefined as unknown as () => Set<string> }), {
    code: 'ONAIR_CONFIG_INVALID',
    where: 'signedChannels',
  });
  await t.rejects(startOrigin(t, store, { clock: { now: () => 0 } as unknown as ManualClock }), { code: 'ONAIR_CONFIG_INVALID', where: 'clock' });

  let signed = new Set<string>();
  const app = await startOrigin(t, store, { key: undefined, signedChannels: () => signed });
  t.equal((await get(app, '/fip/fip.m3u8')).statusCode, 200, 'no signed channel, no key needed');
  signed = new Set(['fip']);
  assertRefused(t, await get(app, `/fip/fip.m3u8?token=${fipToken()}`), 'token_forged', 'fails closed');
});

function withoutDate(headers: LightMyRequestResponse['headers']): LightMyRequestResponse['headers'] {
  const { date: _date, ...rest } = headers;
  return rest;
}

t.test("a channel's token covers its recordings; other routes with a channel parameter (the control API) are not token-checked", async (t) => {
  const app = await startOrigin(t, await filledStore(t), {}, (app) => {
    app.get('/api/channels/:channel', async () => ({ ok: true }));
    app.get('/recordings/:channel/:file', async () => 'recording');
    app.get('/recordings/:channel.json', async () => ({ sessions: [] }));
  });
  t.equal((await get(app, '/api/channels/fip')).statusCode, 200, 'the API route of a signed channel needs no media token');
  assertRefused(t, await get(app, '/recordings/fip/20261121T231500Z.m4a'), 'token_missing', 'a recording without a token');
  assertRefused(t, await get(app, '/recordings/fip.json'), 'token_missing', 'the listing without a token');
  const token = fipToken();
  t.equal((await get(app, `/recordings/fip/20261121T231500Z.m4a?token=${token}`)).statusCode, 200, "fip's token opens fip's recording");
  t.equal((await get(app, `/recordings/fip.json?token=${token}`)).statusCode, 200, 'and its listing');
  const jazzToken = signPath({ key: KEY, pathPrefix: channelPathPrefix('jazz'), expiresAt: nowSeconds() + 3600 });
  t.equal((await get(app, '/recordings/jazz/x.m4a')).statusCode, 200, 'a public channel: no token needed');
  assertRefused(t, await get(app, `/recordings/fip/x.m4a?token=${jazzToken}`), 'token_wrong_path', "another channel's token");
});

t.test('signed variants are kept per path, version and token, and a new version is never served from an old one', async (t) => {
  const store = await filledStore(t);
  const app = await startOrigin(t, store);
  const token = fipToken();
  const other = fipToken(nowSeconds() + 7200);
  const first = await get(app, `/fip/fip_hifi.m3u8?token=${token}`);
  const again = await get(app, `/fip/fip_hifi.m3u8?token=${token}&utm=x`);
  t.equal(again.body, first.body, 'the same variant, an unknown parameter ignored');
  const byOther = await get(app, `/fip/fip_hifi.m3u8?token=${other}`);
  t.ok(urisOf(byOther.body).every((uri) => uri.endsWith(`token=${other}`)), "another token gets its own variant, never the first one's");
  const lofi = await get(app, `/fip/fip_lofi.m3u8?token=${token}`);
  t.match(lofi.body, /lofi\/100-1\.ts/, 'another path with the same token gets its own playlist');
  const gzipped = await get(app, `/fip/fip_hifi.m3u8?token=${token}`, { 'accept-encoding': 'gzip' });
  t.equal(gunzipSync(gzipped.rawPayload).toString(), first.body, 'the gzip coding is a variant of its own');

  await publishFip(store, 2);
  await new Promise((resolve) => setImmediate(resolve));
  const updated = await get(app, `/fip/fip_hifi.m3u8?token=${token}`);
  t.not(updated.headers.etag, first.headers.etag);
  t.match(updated.body, /106-1\.1\.ts\?token=/, 'the new version, with the token');
});

t.test('the variant cache is bounded in bytes, least recently used out first, and shares one rewrite', async (t) => {
  const variants = new SignedVariants(1000);
  let made = 0;
  const make = (size: number) => async (): Promise<Buffer> => {
    made += 1;
    return Buffer.alloc(size, made);
  };
  const [one, two] = await Promise.all([variants.get('a', make(400)), variants.get('a', make(400))]);
  t.equal(made, 1, 'concurrent misses share one rewrite');
  t.equal(one, two);
  await variants.get('b', make(400));
  await variants.get('a', make(400));
  t.equal(made, 2, 'a hit does not rewrite');
  await variants.get('c', make(400));
  t.ok(variants.sizeBytes <= 1000, `${variants.sizeBytes} bytes kept`);
  await variants.get('a', make(400));
  t.equal(made, 3, 'a, used more recently than b, was kept');
  await variants.get('b', make(400));
  t.equal(made, 4, 'the least recently used (b) was dropped');
  await variants.get('huge', make(5000));
  t.ok(variants.sizeBytes <= 1000, 'a variant larger than the budget is not kept');
  await variants.get(undefined, make(10));
  await variants.get(undefined, make(10));
  t.equal(made, 7, 'without a key (no ETag) nothing is kept');
  const none = new SignedVariants(0);
  await none.get('a', make(1));
  await none.get('a', make(1));
  t.equal(made, 9, 'a zero budget keeps nothing');
});

t.test('fMP4 on a signed channel: the EXT-X-MAP URI carries the token, and the init segment needs one like any segment', async (t) => {
  const store = await filledStore(t);
  const playlist = renderMediaPlaylist({
    targetDuration: TARGET_DURATION,
    mediaSequence: 200,
    discontinuitySequence: 0,
    segments: [200, 201].map((msn) => ({ uri: `hifi/${msn}-5.m4s`, durationSeconds: 3.989, programDateTime: Date.UTC(2024, 4, 1, 12), discontinuity: false, initUri: 'hifi/init-5.mp4' })),
  });
  await store.putSegment('fip', 'hifi', 'init-5.mp4', segmentBytes('fip/hifi/init-5'), 600);
  for (const msn of [200, 201]) await store.putSegment('fip', 'hifi', `${msn}-5.m4s`, segmentBytes(`fip/hifi/${msn}-5`), 600);
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': FIP_MASTER, 'fip_hifi.m3u8': playlist, 'fip_lofi.m3u8': lowLatencyPlaylist('lofi', 1) }, state: JSON.stringify({ msn: 201 }) });
  const app = await startOrigin(t, store);
  const token = fipToken();
  const media = await get(app, `/fip/fip_hifi.m3u8?token=${token}`);
  t.equal(media.statusCode, 200);
  t.match(media.body, `#EXT-X-MAP:URI="hifi/init-5.mp4?token=${token}"`);
  const uris = urisOf(media.body);
  t.same(uris, [`hifi/init-5.mp4?token=${token}`, `hifi/200-5.m4s?token=${token}`, `hifi/201-5.m4s?token=${token}`]);
  for (const uri of uris) {
    const response = await get(app, resolveUri('/fip/fip_hifi.m3u8', uri));
    t.equal(response.statusCode, 200, uri);
    t.equal(response.headers['content-type'], 'audio/mp4', uri);
  }
  assertRefused(t, await get(app, '/fip/hifi/init-5.mp4'), 'token_missing', 'an init segment without a token');
  assertRefused(t, await get(app, '/fip/hifi/200-5.m4s'), 'token_missing', 'an .m4s segment without a token');
});

/** fip as an fmp4 channel with MPDs: MSN 300–301 of run 6, then a takeover, 302 of run 8; hifi and lofi. */
async function publishFipMpds(store: MemoryStore): Promise<void> {
  const window = [300, 301, 302].map((msn) => ({ msn, run: msn < 302 ? 6 : 8, durationSeconds: 4, programDateTime: Date.UTC(2024, 4, 1, 12) + (msn - 300) * 4000, discontinuity: msn === 302, bytes: { hifi: 96_000, lofi: 32_000 } }));
  const mpds = renderChannelMpds(
    { id: 'fip', sampleRate: 48_000, renditions: [{ id: 'hifi', bitrate: 192_000 }, { id: 'lofi', bitrate: 64_000 }] },
    { version: 1, targetDuration: TARGET_DURATION, nextMsn: 303, discontinuitySequence: 0, nextPts: 900_000, window, bandwidth: {}, dvr: window },
  );
  for (const rendition of ['hifi', 'lofi']) {
    for (const run of [6, 8]) await store.putSegment('fip', rendition, `init-${run}.mp4`, segmentBytes(`fip/${rendition}/init-${run}`), 600);
    for (const { msn, run } of window) await store.putSegment('fip', rendition, `${msn}-${run}.m4s`, segmentBytes(`fip/${rendition}/${msn}-${run}`), 600);
  }
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': FIP_MASTER, 'fip_hifi.m3u8': lowLatencyPlaylist('hifi', 1), 'fip_lofi.m3u8': lowLatencyPlaylist('lofi', 1), ...mpds }, state: JSON.stringify({ msn: 302 }) });
}

/** Every segment URL an MPD's SegmentTemplates name, expanded per Representation and segment (ISO/IEC 23009-1 §5.3.9.4.4), XML-unescaped. */
function mpdSegmentUrls(mpd: string): string[] {
  const unescape = (value: string): string => value.replaceAll('&amp;', '&');
  const representations = [...new Set([...mpd.matchAll(/<Representation id="([^"]+)"/g)].map((match) => match[1]!))];
  return [...mpd.matchAll(/<SegmentTemplate [^>]*startNumber="(\d+)" initialization="([^"]+)" media="([^"]+)">([^]*?)<\/SegmentTemplate>/g)].flatMap(
    ([, startNumber, initialization, media, timeline]) => {
      const count = [...timeline!.matchAll(/<S [^>]*?(?:r="(\d+)")?\/>/g)].reduce((sum, entry) => sum + 1 + Number(entry[1] ?? 0), 0);
      return representations.flatMap((id) => [
        unescape(initialization!).replace('$RepresentationID$', id),
        ...Array.from({ length: count }, (_, index) => unescape(media!).replace('$RepresentationID$', id).replace('$Number$', String(Number(startNumber) + index))),
      ]);
    },
  );
}

t.test('DASH on a signed channel: MPDs need the token and carry it on every segment and init URL, each of which answers 200', async (t) => {
  const store = await filledStore(t);
  await publishFipMpds(store);
  const app = await startOrigin(t, store, {}, (app) => void app.register(dashPlugin, { targetDurationSeconds: TARGET_DURATION, clock }));
  const token = fipToken();
  for (const mpdUrl of ['/fip/fip.mpd', '/fip/fip_dvr.mpd']) {
    assertRefused(t, await get(app, mpdUrl), 'token_missing', `${mpdUrl} without a token`);
    assertRefused(t, await get(app, mpdUrl, {}, 'HEAD'), 'token_missing', `HEAD ${mpdUrl} without a token`);
    assertRefused(t, await get(app, `${mpdUrl}?token=${fipToken(nowSeconds())}`), 'token_expired', `${mpdUrl} with an expired token`);
    const response = await get(app, `${mpdUrl}?token=${token}`);
    t.equal(response.statusCode, 200, mpdUrl);
    t.equal(response.headers['content-type'], 'application/dash+xml', mpdUrl);
    t.match(response.body, '<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="/time"/>', 'UTCTiming stays public');
    const urls = mpdSegmentUrls(response.body);
    t.same(
      urls,
      ['hifi/init-6.mp4', 'hifi/300-6.m4s', 'hifi/301-6.m4s', 'lofi/init-6.mp4', 'lofi/300-6.m4s', 'lofi/301-6.m4s', 'hifi/init-8.mp4', 'hifi/302-8.m4s', 'lofi/init-8.mp4', 'lofi/302-8.m4s'].map((url) => `${url}?token=${token}`),
      `${mpdUrl}: every init and media URL of both Periods carries the token`,
    );
    for (const url of urls) {
      const segment = await get(app, resolveUri(mpdUrl, url));
      t.equal(segment.statusCode, 200, url);
      t.equal(segment.headers['content-type'], 'audio/mp4', url);
      t.same(segment.rawPayload, segmentBytes(`fip/${url.slice(0, url.indexOf('?')).replace(/\.m4s$|\.mp4$/, '')}`), url);
      assertRefused(t, await get(app, resolveUri(mpdUrl, url.slice(0, url.indexOf('?')))), 'token_missing', `${url} without its token`);
    }
  }
  const time = await get(app, '/time');
  t.equal(time.statusCode, 200, 'the UTCTiming clock needs no token');
});

t.test('DASH on a signed channel: gzip, ETag and 304, HEAD, max-age capped at the token, one MPD per token', async (t) => {
  const store = await filledStore(t);
  await publishFipMpds(store);
  const app = await startOrigin(t, store, {}, (app) => void app.register(dashPlugin, { targetDurationSeconds: TARGET_DURATION, clock }));
  const token = fipToken();
  const plain = await get(app, `/fip/fip.mpd?token=${token}`);
  t.match(plain.body, `media="$RepresentationID$/$Number$-6.m4s?token=${token}"`);
  const gzipped = await get(app, `/fip/fip.mpd?token=${token}`, { 'accept-encoding': 'gzip' });
  t.equal(gzipped.headers['content-encoding'], 'gzip');
  t.equal(gunzipSync(gzipped.rawPayload).toString('utf8'), plain.body, 'the gzip-coded MPD is the same rewritten MPD');
  const notModified = await get(app, `/fip/fip.mpd?token=${token}`, { 'if-none-match': String(plain.headers.etag) });
  t.equal(notModified.statusCode, 304, 'If-None-Match with the ETag: 304');
  const head = await get(app, `/fip/fip.mpd?token=${token}`, {}, 'HEAD');
  t.equal(head.statusCode, 200);
  t.equal(head.headers['content-length'], undefined, 'HEAD has no Content-Length that would count no tokens');
  const shortToken = fipToken(nowSeconds() + 1);
  const short = await get(app, `/fip/fip.mpd?token=${shortToken}`);
  t.equal(short.headers['cache-control'], 'public, max-age=1', 'max-age capped at the token’s remaining second');
  t.match(short.body, `?token=${shortToken}"`, 'another token, its own MPD');
  t.notMatch(short.body, token, 'never the MPD of another token');
  t.equal(plain.headers['cache-control'], `public, max-age=${TARGET_DURATION / 2}`, 'a long token keeps the MPD’s own max-age');
});
