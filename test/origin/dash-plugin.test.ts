/**
 * The DASH routes of the origin (src/origin/dash-plugin.ts) through buildOrigin and app.inject:
 * MPDs served from the store as application/dash+xml with the media playlists' caching, ETag
 * and gzip, updated on publish, 404 where a channel has none; /time as an uncached clock.
 */
import { gunzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { renderChannelMpds } from '../../src/dash/channel-mpd.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import type { ChannelState } from '../../src/hls/sequence-state.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitUntil } from '../helpers/wait-until.js';

const TARGET_DURATION = 4;

function mpds(firstMsn: number): Record<string, string> {
  const window = [0, 1, 2].map((index) => ({ msn: firstMsn + index, run: 3, durationSeconds: 4, programDateTime: Date.UTC(2027, 0, 1) + index * 4000, discontinuity: false, bytes: { hifi: 96_000 } }));
  const state: ChannelState = { version: 1, targetDuration: TARGET_DURATION, nextMsn: firstMsn + 3, discontinuitySequence: 0, nextPts: 900_000, window, bandwidth: {}, dvr: window };
  return renderChannelMpds({ id: 'fip', sampleRate: 48_000, renditions: [{ id: 'hifi', bitrate: 192_000 }] }, state);
}

async function start(t: Test) {
  const store = new MemoryStore();
  await store.start();
  const clock = new ManualClock(Date.UTC(2027, 0, 1, 12));
  const app = await buildOrigin({
    store,
    channels: [
      { id: 'fip', renditions: ['hifi'] },
      { id: 'jazz', renditions: ['hifi'] },
    ],
    targetDurationSeconds: TARGET_DURATION,
    clock,
  });
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': '#EXTM3U\n', ...mpds(100) }, state: '{}' });
  return { app, store, clock };
}

t.test('the live and DVR MPDs are served as application/dash+xml with the media playlists Cache-Control and an ETag', async (t) => {
  const { app } = await start(t);
  for (const url of ['/fip/fip.mpd', '/fip/fip_dvr.mpd']) {
    const reply = await app.inject(url);
    t.equal(reply.statusCode, 200, url);
    t.equal(reply.headers['content-type'], 'application/dash+xml');
    t.equal(reply.headers['cache-control'], `public, max-age=${TARGET_DURATION / 2}`);
    t.equal(reply.headers['vary'], 'Accept-Encoding');
    t.equal(reply.headers['access-control-allow-origin'], '*', 'CORS for web players');
    t.match(reply.body, /^<\?xml/);
    const again = await app.inject({ url, headers: { 'if-none-match': String(reply.headers.etag) } });
    t.equal(again.statusCode, 304, 'If-None-Match with the ETag: 304');
  }
  const head = await app.inject({ method: 'HEAD', url: '/fip/fip.mpd' });
  t.equal(head.statusCode, 200);
  t.equal(head.body, '');
  t.equal(Number(head.headers['content-length']), Buffer.byteLength(mpds(100)['fip.mpd']!), 'HEAD counts the body');
  const gzipped = await app.inject({ url: '/fip/fip.mpd', headers: { 'accept-encoding': 'gzip' } });
  t.equal(gzipped.headers['content-encoding'], 'gzip');
  t.equal(gunzipSync(gzipped.rawPayload).toString(), mpds(100)['fip.mpd']);
});

t.test('a new publish replaces the MPD served (the store notification drops the cached one)', async (t) => {
  const { app, store } = await start(t);
  t.match((await app.inject('/fip/fip.mpd')).body, 'startNumber="100"');
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': '#EXTM3U\n', ...mpds(101) }, state: '{}' });
  await waitUntil(t, 'the new MPD', async () => (await app.inject('/fip/fip.mpd')).body.includes('startNumber="101"'));
  t.pass('served the new MPD');
});

t.test('404 (JSON, short max-age) for a channel without MPD, an unknown channel, or another channel’s name', async (t) => {
  const { app } = await start(t);
  for (const url of ['/jazz/jazz.mpd', '/rock/rock.mpd', '/fip/jazz.mpd']) {
    const reply = await app.inject(url);
    t.equal(reply.statusCode, 404, url);
    t.match(reply.headers['content-type'], /^application\/json/);
    t.match(reply.headers['cache-control'], /max-age=[12]\b/);
  }
  t.equal((await app.inject('/fip/fip_hifi.mpd')).statusCode, 400, 'a name no MPD has is a bad request, as any malformed name');
  t.equal((await app.inject('/fip/fip.m3u8')).statusCode, 200, 'HLS playlists are still the origin plugin’s');
});

t.test('/time answers the clock in ISO 8601 UTC with milliseconds, never cached', async (t) => {
  const { app, clock } = await start(t);
  await clock.advance(1234);
  const reply = await app.inject('/time');
  t.equal(reply.statusCode, 200);
  t.equal(reply.body, '2027-01-01T12:00:01.234Z');
  t.equal(reply.headers['cache-control'], 'no-store');
});
