/**
 * The player page as the origin serves it (buildOrigin, app.inject()): the page and every
 * asset it references come from this origin with the right types and cache times, the
 * channel listing says which channels are live, a store outage is a 503 like the rest of
 * the origin, and none of these paths is taken by the channel routes or takes theirs.
 */
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import type { Test } from 'tap';
import { renderChannelMpds } from '../../src/dash/channel-mpd.js';
import { OnairError } from '../../src/errors.js';
import { formatKey } from '../../src/hls/playlist/media-segment-tags.js';
import { renderMasterPlaylist } from '../../src/hls/playlist-writer.js';
import { emptyChannelState } from '../../src/hls/sequence-state.js';
import { serializeNowPlaying } from '../../src/media/now-playing.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import type { ChannelListing } from '../../src/origin/player-plugin.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { DelegatingStore } from '../helpers/delegating-store.js';

const TARGET_DURATION = 4;
const CHANNELS = [
  { id: 'fip', renditions: ['lofi', 'hifi'] },
  { id: 'jazz', renditions: ['hifi'] },
  { id: 'rock', renditions: ['hifi'] },
];
const JSON_TYPE = 'application/json; charset=utf-8';
const JS_TYPE = /^(application|text)\/javascript/;

/** Publishes a channel whose newest segment (MSN 7) ended `endedSecondsAgo` ago. */
async function publishChannel(store: Store, channel: string, endedSecondsAgo: number): Promise<void> {
  const state = liveState(endedSecondsAgo);
  const playlist = `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:${TARGET_DURATION}\n#EXT-X-MEDIA-SEQUENCE:6\n`;
  await store.publish({ channel, playlists: { [`${channel}.m3u8`]: playlist, [`${channel}_hifi.m3u8`]: playlist }, state: JSON.stringify(state) });
}

/** A sequence state whose newest segment (MSN 7) ended `endedSecondsAgo` ago. */
function liveState(endedSecondsAgo: number): ReturnType<typeof emptyChannelState> {
  const state = emptyChannelState(TARGET_DURATION, 0);
  const durationSeconds = 3.989;
  const end = Date.now() - endedSecondsAgo * 1000;
  state.window = [6, 7].map((msn, index) => ({
    msn,
    run: 1,
    bytes: { hifi: 1000 },
    durationSeconds,
    programDateTime: end - (2 - index) * durationSeconds * 1000,
    discontinuity: false,
  }));
  state.nextMsn = 8;
  state.nextPts = 2 * 3.989 * 90_000;
  return state;
}

/** fip live (newest segment ended 1 s ago), jazz silent for a minute, rock never published. */
async function filledStore(t: Test): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  await publishChannel(store, 'fip', 1);
  await publishChannel(store, 'jazz', 60);
  return store;
}

async function startOrigin(t: Test, store: Store): Promise<FastifyInstance> {
  const app = await buildOrigin({ store, channels: CHANNELS, targetDurationSeconds: TARGET_DURATION, storeTimeoutMs: 200 });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

/** The src/href attributes of an HTML page. */
function referencedUrls(html: string): string[] {
  return [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((match) => match[1]!);
}

t.test('GET / is the player page; it loads its script, styles and hls.js from this origin only', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const page = await app.inject({ method: 'GET', url: '/' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.equal(page.headers['cache-control'], 'public, max-age=10');
  t.ok(page.headers.etag, 'the page has an ETag');
  t.match(page.body, /<title>onair player<\/title>/);

  const urls = referencedUrls(page.body).filter((url) => url !== 'data:,');
  t.same(urls.sort(), ['_player/hls/hls.light.min.js', '_player/player.css', '_player/player.js'], 'three assets, all relative URLs');
  const types: Record<string, RegExp> = { '.js': JS_TYPE, '.css': /^text\/css/ };
  for (const url of urls) {
    const asset = await app.inject({ method: 'GET', url: `/${url}` });
    t.equal(asset.statusCode, 200, url);
    t.match(asset.headers['content-type'], types[url.slice(url.lastIndexOf('.'))]!, `${url}: ${asset.headers['content-type']}`);
    if (!url.startsWith('_player/hls/')) t.notMatch(asset.body, /https?:\/\//, `${url} names no other site`);
  }
  t.notMatch(page.body, /https?:\/\//, 'the page names no other site');

  const head = await app.inject({ method: 'HEAD', url: '/' });
  t.equal(head.statusCode, 200, 'HEAD works');
  t.equal(head.body, '', 'HEAD has no body');
});

t.test('hls.js is served as JavaScript from the installed package, cached for a day', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const response = await app.inject({ method: 'GET', url: '/_player/hls/hls.light.min.js' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], JS_TYPE);
  t.equal(response.headers['cache-control'], 'public, max-age=86400');
  t.match(response.body.slice(0, 2000), /^!function|^\(function|^"use strict"/, 'a script, not an error page');
  t.ok(response.body.length > 100_000, `the whole build (${response.body.length} bytes)`);

  const revalidated = await app.inject({ method: 'GET', url: '/_player/hls/hls.light.min.js', headers: { 'if-none-match': String(response.headers.etag) } });
  t.equal(revalidated.statusCode, 304, 'a cached copy is revalidated with its ETag');
});

t.test('dash.js is served as JavaScript from the installed package, cached for a day like hls.js', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const url = '/_player/dash/dash.mediaplayer.min.js';
  const response = await app.inject({ method: 'GET', url });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], JS_TYPE);
  t.equal(response.headers['cache-control'], 'public, max-age=86400');
  t.match(response.body.slice(0, 2000), /e\.dashjs=t\(\)/, 'the UMD build, which defines window.dashjs');
  t.ok(response.body.length > 100_000, `the whole build (${response.body.length} bytes)`);
  t.notOk(response.headers['accept-ranges'], 'no ranges, as for hls.js');

  const revalidated = await app.inject({ method: 'GET', url, headers: { 'if-none-match': String(response.headers.etag) } });
  t.equal(revalidated.statusCode, 304, 'a cached copy is revalidated with its ETag');
  const head = await app.inject({ method: 'HEAD', url });
  t.equal(head.statusCode, 200, 'HEAD works');
  t.equal(head.body, '', 'HEAD has no body');

  const script = (await app.inject({ method: 'GET', url: '/_player/player.js' })).body;
  t.match(script, `'${url.slice(1)}'`, 'the page script loads this very path (relative)');
});

t.test('channels.json lists every channel with its renditions, live only while segments keep coming', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const response = await app.inject({ method: 'GET', url: '/channels.json' });
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], JSON_TYPE);
  t.equal(response.headers['cache-control'], 'public, max-age=2');
  const listing = response.json<ChannelListing>();
  t.same(
    listing.channels.map(({ id, url, renditions, live }) => ({ id, url, renditions, live })),
    [
      {
        id: 'fip',
        url: 'fip/fip.m3u8',
        renditions: [
          { id: 'lofi', url: 'fip/fip_lofi.m3u8', codecs: null },
          { id: 'hifi', url: 'fip/fip_hifi.m3u8', codecs: null },
        ],
        live: true,
      },
      { id: 'jazz', url: 'jazz/jazz.m3u8', renditions: [{ id: 'hifi', url: 'jazz/jazz_hifi.m3u8', codecs: null }], live: false },
      { id: 'rock', url: 'rock/rock.m3u8', renditions: [{ id: 'hifi', url: 'rock/rock_hifi.m3u8', codecs: null }], live: false },
    ],
  );
  const ages = listing.channels.map((channel) => channel.lastSegmentAgeSeconds);
  t.ok(ages[0]! >= 1 && ages[0]! < 3, `fip's newest segment ended ${ages[0]} s ago`);
  t.ok(ages[1]! >= 60 && ages[1]! < 62, `jazz's newest segment ended ${ages[1]} s ago`);
  t.equal(ages[2], null, 'rock has no segment yet');
});

t.test('channels.json gives each channel its container, its DASH MPD on fmp4 channels and each rendition its codecs', async (t) => {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const state = liveState(1);
  const master = (ids: string[]): string =>
    renderMasterPlaylist(ids.map((id) => ({ uri: `${id}.m3u8`, bandwidth: 130_000, averageBandwidth: 128_000, codecs: 'mp4a.40.2' })));
  // A TS channel: master playlist only; its MP3 rendition is not in the master (packed audio).
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': master(['fip_hifi']) }, state: JSON.stringify(state) });
  // An fmp4 channel: the master lists its AAC rendition, the MPD (as the packager renders it) AAC and MP3.
  const mpds = renderChannelMpds(
    { id: 'jazz', sampleRate: 48_000, renditions: [{ id: 'hifi', bitrate: 128_000 }, { id: 'mp3', codec: 'mp3', bitrate: 128_000 }] },
    state,
  );
  await store.publish({ channel: 'jazz', playlists: { 'jazz.m3u8': master(['jazz_hifi']), ...mpds }, state: JSON.stringify(state) });
  const app = await buildOrigin({
    store,
    channels: [
      { id: 'fip', renditions: ['hifi', 'mp3'] },
      { id: 'jazz', renditions: ['hifi', 'mp3'] },
      { id: 'rock', renditions: ['hifi'] },
    ],
    targetDurationSeconds: TARGET_DURATION,
    storeTimeoutMs: 200,
  });
  t.teardown(() => app.close());
  await app.ready();

  const listing = (await app.inject({ method: 'GET', url: '/channels.json' })).json<ChannelListing>();
  t.same(
    listing.channels.map(({ id, url, renditions, container, dashUrl }) => ({ id, url, renditions, container, dashUrl })),
    [
      {
        id: 'fip',
        url: 'fip/fip.m3u8',
        renditions: [
          { id: 'hifi', url: 'fip/fip_hifi.m3u8', codecs: 'mp4a.40.2' },
          { id: 'mp3', url: 'fip/fip_mp3.m3u8', codecs: null },
        ],
        container: 'ts',
        dashUrl: null,
      },
      {
        id: 'jazz',
        url: 'jazz/jazz.m3u8',
        renditions: [
          { id: 'hifi', url: 'jazz/jazz_hifi.m3u8', codecs: 'mp4a.40.2' },
          { id: 'mp3', url: 'jazz/jazz_mp3.m3u8', codecs: 'mp4a.40.34' },
        ],
        container: 'fmp4',
        dashUrl: 'jazz/jazz.mpd',
      },
      { id: 'rock', url: 'rock/rock.m3u8', renditions: [{ id: 'hifi', url: 'rock/rock_hifi.m3u8', codecs: null }], container: null, dashUrl: null },
    ],
    'codecs as the master lists them, else as the MPD does; nothing published, nothing known',
  );
  t.same(
    listing.channels.map((channel) => [channel.live, channel.lastSegmentAgeSeconds !== null, channel.nowPlaying]),
    [
      [true, true, null],
      [true, true, null],
      [false, false, null],
    ],
    'the existing fields are still there',
  );
  t.equal((await app.inject({ method: 'GET', url: '/jazz/jazz.mpd' })).statusCode, 200, 'the listed dashUrl is served');
});

t.test('channels.json says which channels are signed and encrypted, a cbcs channel\'s key formats as published and its license route', async (t) => {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const state = JSON.stringify(liveState(1));
  const header = `#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:${TARGET_DURATION}\n#EXT-X-MEDIA-SEQUENCE:6\n`;
  const iv = '0'.repeat(32);
  // jazz (cbcs) publishes both key formats, as the packager writes them; pop (cbcs) only identity; soul (cbcs) nothing yet.
  const jazzKeys = formatKey({
    method: 'SAMPLE-AES',
    uri: 'key-0.key',
    iv,
    keyFormat: 'identity',
    otherFormats: [{ method: 'SAMPLE-AES', uri: 'data:text/plain;base64,AAAAAAAAAAAAAAAAAAAAAA==', iv, keyFormat: 'org.w3.clearkey', keyFormatVersions: '1' }],
  }).join('\n');
  t.match(jazzKeys, /KEYFORMAT="identity"[\s\S]*KEYFORMAT="org.w3.clearkey"/, 'the fixture has both tags');
  await store.publish({ channel: 'jazz', playlists: { 'jazz_hifi.m3u8': `${header}${jazzKeys}\n#EXTINF:4,\nhifi/6-1.m4s\n` }, state });
  await store.publish({ channel: 'pop', playlists: { 'pop_hifi.m3u8': `${header}#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key-0.key",IV=0x${iv}\n#EXTINF:4,\nhifi/6-1.m4s\n` }, state });
  await store.publish({ channel: 'fip', playlists: { 'fip_hifi.m3u8': `${header}#EXT-X-KEY:METHOD=AES-128,URI="key-0.key",IV=0x${iv}\n#EXTINF:4,\nhifi/6-1.ts\n` }, state });
  const ids = ['fip', 'jazz', 'pop', 'soul', 'news', 'rock'];
  const app = await buildOrigin({
    store,
    channels: ids.map((id) => ({ id, renditions: ['hifi'] })),
    targetDurationSeconds: TARGET_DURATION,
    storeTimeoutMs: 200,
    signing: { key: 'k'.repeat(32), signedChannels: () => new Set(['fip', 'jazz', 'pop', 'soul', 'news']) },
    encryptedChannels: () => new Set(['fip', 'jazz', 'pop', 'soul']),
    cbcsChannels: () => new Map([['jazz', 10], ['pop', 10], ['soul', 10]]),
  });
  t.teardown(() => app.close());
  await app.ready();
  const listing = (await app.inject({ method: 'GET', url: '/channels.json' })).json<ChannelListing>();
  t.same(
    listing.channels.map(({ id, access, encryption, hlsKeyFormats, licenseUrl }) => ({ id, access, encryption, hlsKeyFormats, licenseUrl })),
    [
      { id: 'fip', access: 'signed', encryption: 'aes-128', hlsKeyFormats: null, licenseUrl: null },
      { id: 'jazz', access: 'signed', encryption: 'cbcs', hlsKeyFormats: ['identity', 'clearkey'], licenseUrl: 'jazz/clearkey' },
      { id: 'pop', access: 'signed', encryption: 'cbcs', hlsKeyFormats: ['identity'], licenseUrl: 'pop/clearkey' },
      { id: 'soul', access: 'signed', encryption: 'cbcs', hlsKeyFormats: null, licenseUrl: 'soul/clearkey' },
      { id: 'news', access: 'signed', encryption: null, hlsKeyFormats: null, licenseUrl: null },
      { id: 'rock', access: 'public', encryption: null, hlsKeyFormats: null, licenseUrl: null },
    ],
    'a KEYFORMAT-less SAMPLE-AES tag is identity; a cbcs channel with no media playlist yet has no known formats',
  );
  t.equal((await app.inject({ method: 'GET', url: '/channels.json' })).headers['cache-control'], 'public, max-age=2', 'the listing holds no token: shared caches may keep it');
  const license = await app.inject({ method: 'POST', url: `/${listing.channels[1]!.licenseUrl}`, payload: '{}' });
  t.equal(license.statusCode, 403, 'the listed license route is the origin\'s (a token is needed)');

  // A public origin (no signing, no encryption): every channel public and clear.
  const publicApp = await startOrigin(t, await filledStore(t));
  const publicListing = (await publicApp.inject({ method: 'GET', url: '/channels.json' })).json<ChannelListing>();
  t.same(publicListing.channels.map(({ access, encryption, hlsKeyFormats, licenseUrl }) => [access, encryption, hlsKeyFormats, licenseUrl]), ids.slice(0, 3).map(() => ['public', null, null, null]));
});

t.test('the full hls.js and dash.js builds (EME) are served like the light ones, and the page script loads them by these paths', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const script = (await app.inject({ method: 'GET', url: '/_player/player.js' })).body;
  const page = (await app.inject({ method: 'GET', url: '/' })).body;
  // EME's MediaKeySession.generateRequest: only the full builds call it.
  for (const url of ['/_player/hls/hls.min.js', '/_player/dash/dash.all.min.js']) {
    const response = await app.inject({ method: 'GET', url });
    t.equal(response.statusCode, 200, url);
    t.match(response.headers['content-type'], JS_TYPE, url);
    t.equal(response.headers['cache-control'], 'public, max-age=86400', `${url}: a day, as the light builds`);
    t.ok(response.body.includes('generateRequest'), `${url}: a full build, with EME (${response.body.length} bytes)`);
    t.match(script, `'${url.slice(1)}'`, `the page script loads ${url} (relative)`);
    t.notMatch(page, url.slice(1), `${url}: not loaded by the page itself, only when an encrypted channel plays`);
  }
  for (const url of ['/_player/hls/hls.light.min.js', '/_player/dash/dash.mediaplayer.min.js']) {
    const light = (await app.inject({ method: 'GET', url })).body;
    t.notOk(light.includes('generateRequest'), `${url} has no EME: hence the full builds for cbcs`);
  }
});

t.test('the page sends no Referer, and a page URL with a query (?token=) is kept by no cache', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const plain = await app.inject({ method: 'GET', url: '/' });
  t.equal(plain.headers['cache-control'], 'public, max-age=10', 'the page without a query caches as before');
  t.equal(plain.headers['referrer-policy'], 'no-referrer');
  t.match(plain.body, '<meta name="referrer" content="no-referrer">');
  t.match(plain.body, /<input id="token"/, 'a Token field');
  for (const url of ['/?token=1900000000~L2ZpcC8~abc', '/?x=1']) {
    const response = await app.inject({ method: 'GET', url });
    t.equal(response.statusCode, 200, url);
    t.equal(response.headers['cache-control'], 'private, no-store', `${url}: no shared cache keeps a URL holding a token`);
    t.equal(response.headers['referrer-policy'], 'no-referrer', url);
    t.equal(response.body, plain.body, `${url}: the same page`);
  }
  const head = await app.inject({ method: 'HEAD', url: '/?token=x' });
  t.equal(head.headers['cache-control'], 'private, no-store', 'HEAD too');
});

t.test('channels.json gives each channel its now playing: the fields a page shows, null when none is set or readable', async (t) => {
  const store = await filledStore(t);
  await store.putNowPlaying('fip', serializeNowPlaying({ title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl: 'https://art.example/kob.jpg', durationSeconds: 562, setAt: 1 }));
  await store.putNowPlaying('jazz', '{"title": 5}');
  const app = await startOrigin(t, store);
  const response = await app.inject({ method: 'GET', url: '/channels.json' });
  t.equal(response.headers['cache-control'], 'public, max-age=2', 'a short max-age: the now playing changes with every track');
  t.same(
    response.json<ChannelListing>().channels.map((channel) => [channel.id, channel.nowPlaying]),
    [
      ['fip', { title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl: 'https://art.example/kob.jpg' }],
      ['jazz', null],
      ['rock', null],
    ],
    'a stored value that is not a now playing is listed as none',
  );
});

t.test('channels.json follows the origin when its channel list changes', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  app.onairOrigin.setChannels([{ id: 'fip', renditions: ['hifi'] }]);
  const listing = (await app.inject({ method: 'GET', url: '/channels.json' })).json<ChannelListing>();
  t.same(listing.channels.map((channel) => [channel.id, channel.renditions.map((rendition) => rendition.id)]), [['fip', ['hifi']]]);
});

t.test('channels.json answers 503 with Retry-After while the store is down, and the page still loads', async (t) => {
  class UnavailableStore extends DelegatingStore {
    override getState(): Promise<string | null> {
      return Promise.reject(new OnairError('ONAIR_STORE_UNAVAILABLE', 'connection refused'));
    }
  }
  const app = await startOrigin(t, new UnavailableStore(await filledStore(t)));
  const response = await app.inject({ method: 'GET', url: '/channels.json' });
  t.equal(response.statusCode, 503);
  t.equal(response.headers['retry-after'], '1');
  t.equal(response.headers['cache-control'], 'no-store');
  t.equal(response.json().error, 'store_unavailable');
  t.equal((await app.inject({ method: 'GET', url: '/' })).statusCode, 200, 'the page does not need the store');
});

t.test('unknown assets and files outside the player get the origin JSON 404', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  const urls = [
    '/_player/missing.js',
    '/_player/index.html',
    '/_player/hls/hls.js',
    '/_player/hls/hls.light.min.js.map',
    '/_player/hls/missing.js',
    '/_player/hls/%2e%2e/%2e%2e/package.json',
    '/_player/dash/dash.protection.min.js',
    '/_player/dash/dash.mediaplayer.min.js.map',
    '/_player/dash/dash.mediaplayer.debug.js',
    '/_player/dash/%2e%2e/%2e%2e/%2e%2e/package.json',
    '/_player/%2e%2e/player-plugin.ts',
  ];
  for (const url of urls) {
    const response = await app.inject({ method: 'GET', url });
    t.equal(response.statusCode, 404, url);
    t.equal(response.headers['content-type'], JSON_TYPE, url);
    t.equal(response.json().error, 'not_found', url);
    t.equal(response.headers['cache-control'], 'public, max-age=1', `${url}: a miss is not pinned`);
  }
});

t.test('player paths and channel paths do not take each other', async (t) => {
  const app = await startOrigin(t, await filledStore(t));
  for (const url of ['/channels.json', '/_player/player.js', '/_player/hls/hls.light.min.js', '/_player/dash/dash.mediaplayer.min.js']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `${url} reaches the player`);
  }
  t.equal((await app.inject({ method: 'GET', url: '/fip/fip.m3u8' })).statusCode, 200, 'the master playlist is still served');
  t.equal((await app.inject({ method: 'GET', url: '/fip/fip_hifi.m3u8' })).statusCode, 200, 'a media playlist is still served');
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'healthz is still served');
});
