/**
 * Now playing end to end: the built CLI (`onair start`, a child process) packages a tone that
 * FFmpeg sends over SRT, on a private redis-server; the test sets the now playing in that
 * store, as the control API or an Icecast update would. Then hls.js in Debian's Chromium,
 * on onair's player page, receives it as ID3 timed metadata (cues of a metadata text track,
 * with the title), the page shows it with its artwork, /channels.json lists it, and a change
 * reaches all three while the channel plays. And VLC 3, which clocks by the PCR and demuxes
 * the ID3 stream too, plays a channel whose now playing changes mid-segment without a single
 * timestamp or decoder error.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { ChannelListing } from '../../src/origin/player-plugin.js';
import { serializeNowPlaying, type NowPlaying } from '../../src/media/now-playing.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { PlayerPage, launchChromium } from '../helpers/browser.js';
import { originUrl, startRole, startSender, testConfig, waitFor, waitForThreeSegments } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { playWithVlc, vlcUnavailable } from '../helpers/vlc.js';

const READY = /"msg":"ingest started"/;
/** A 1×1 PNG: the artwork, served on loopback so the page loads nothing from another site. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

/** The ID3 frames hls.js has turned into cues so far, as `KEY=data` (TXXX: `TXXX:info=data`), with their start times. */
function metadataCues(): { text: string; startTime: number }[] {
  const cues: { text: string; startTime: number }[] = [];
  const media = document.getElementById('audio') as HTMLAudioElement;
  for (const track of Array.from(media.textTracks)) {
    if (track.kind !== 'metadata') continue;
    for (const cue of Array.from(track.cues ?? [])) {
      const value = (cue as TextTrackCue & { value?: { key: string; info?: string; data: string } }).value;
      if (value) cues.push({ text: `${value.key}${value.key === 'TXXX' ? `:${value.info}` : ''}=${value.data}`, startTime: cue.startTime });
    }
  }
  return cues;
}

// The two runs share nothing (each its own store, channel, ports and player) and assert no timing: they run at once.
t.jobs = 2;

t.test('hls.js receives the now playing as ID3 cues; the page and /channels.json show it and follow a change', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const artworkServer = createServer((request, response) => response.writeHead(200, { 'content-type': 'image/png' }).end(PNG));
  await new Promise<void>((resolve) => artworkServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => artworkServer.close(() => resolve())));
  const artworkUrl = `http://127.0.0.1:${(artworkServer.address() as AddressInfo).port}/kind-of-blue.png`;

  const store = new RedisStore({ url: redis.url });
  await store.start();
  t.teardown(() => store.close());
  const first: NowPlaying = { title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl, setAt: Date.now() };
  await store.putNowPlaying('fip', serializeNowPlaying(first));

  const config = await testConfig({ store: redis.url, segmentSeconds: 1 });
  const base = originUrl(config);
  startSender(t, config);
  await startOnairProcess(t, { role: 'start', config, readyPattern: READY });
  const browserStarting = launchChromium(t);
  await waitForThreeSegments(base);

  const listed = async (): Promise<ChannelListing['channels'][number]['nowPlaying']> =>
    (await (await fetch(`${base}/channels.json`)).json() as ChannelListing).channels.find((channel) => channel.id === 'fip')!.nowPlaying;
  t.same(await listed(), { title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl }, '/channels.json lists the now playing');

  const player = await PlayerPage.open(await browserStarting, base);
  const row = player.page.getByRole('listitem').filter({ has: player.page.getByRole('heading', { name: /^fip\b/ }) });
  await row.getByText('Miles Davis – So What').waitFor({ timeout: 10_000 });
  t.pass('the channel row shows the now playing');

  const playback = await player.play('fip', 2);
  t.same(playback.errors, [], 'plays without an error');
  await player.page.waitForFunction(() => (window.onairPlayer as unknown as { track: { source: string } | null }).track?.source === 'stream', undefined, { timeout: 10_000, polling: 100 });
  const cues = await player.page.evaluate(metadataCues);
  const texts = new Set(cues.map((cue) => cue.text));
  for (const expected of ['TIT2=So What', 'TPE1=Miles Davis', 'TALB=Kind of Blue', `TXXX:artworkUrl=${artworkUrl}`]) t.ok(texts.has(expected), `hls.js made a cue ${expected}`);
  const starts = [...new Set(cues.filter((cue) => cue.text === 'TIT2=So What').map((cue) => cue.startTime))];
  t.ok(starts.length >= 2, `repeated at every segment start: TIT2 cues at ${starts.map((start) => start.toFixed(2)).join(', ')} s`);
  t.equal(await player.page.locator('#track').textContent(), 'Miles Davis – So What', 'On air shows the stream’s now playing');
  t.ok(await player.page.locator('#artwork').evaluate((image: HTMLImageElement) => image.complete && image.naturalWidth === 1 && !image.hidden), 'with its artwork');

  const second: NowPlaying = { title: 'Été — Blue in Green', artist: 'Bill Evans', setAt: Date.now() };
  await store.putNowPlaying('fip', serializeNowPlaying(second));
  await player.page.waitForFunction(() => document.getElementById('track')!.textContent === 'Bill Evans – Été — Blue in Green', undefined, { timeout: 15_000, polling: 100 });
  const afterChange = await player.page.evaluate(metadataCues);
  const changeCue = afterChange.find((cue) => cue.text === 'TIT2=Été — Blue in Green');
  t.ok(changeCue, 'the change reached hls.js as an ID3 cue, UTF-8 intact');
  t.ok(changeCue!.startTime > Math.max(...starts), 'later on the timeline than the first one');
  t.ok(await player.page.locator('#artwork').evaluate((image: HTMLImageElement) => image.hidden), 'no artwork for a track without one');
  t.equal(((await player.page.evaluate(() => (window.onairPlayer as unknown as { track: { source: string } }).track.source))), 'stream', 'from the stream');
  await waitFor('/channels.json to list the change', async () => ((await listed())?.title === second.title ? true : undefined), 5000);
  await row.getByText('Bill Evans – Été — Blue in Green').waitFor({ timeout: 10_000 });
  t.pass('the channel row follows the change');
  t.same(await player.errors(), [], 'no error at all');
});

const VLC_SECONDS = 12;
const vlcMissing = vlcUnavailable();

t.test('VLC plays a channel whose now playing changes mid-segment, with no timestamp or decoder error', { skip: vlcMissing }, async (t) => {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  // 4 s segments, as in vlc.test.ts: VLC's live start-up has the margin it needs on a loaded machine.
  const config = await testConfig({ segmentSeconds: 4 });
  await startRole(t, config, 'start', store);
  await store.putNowPlaying('fip', serializeNowPlaying({ title: 'So What', artist: 'Miles Davis', setAt: Date.now() }));
  startSender(t, config);
  const base = originUrl(config);
  await waitForThreeSegments(base);
  const changes = setInterval(() => void store.putNowPlaying('fip', serializeNowPlaying({ title: `Take ${Date.now()}`, artist: 'Miles Davis', setAt: Date.now() })), 1300);
  t.teardown(() => clearInterval(changes));
  const played = await playWithVlc(`${base}/fip/fip_hifi.m3u8`, VLC_SECONDS);
  t.comment(`VLC exited ${played.code}, ${played.audioSeconds.toFixed(2)} s of audio, ${played.decoderErrors.length} decoder error lines`);
  t.match(played.log, /found Metadata_descriptor type ID3/, 'VLC read the ID3 stream’s descriptors');
  t.same(played.decoderErrors.slice(0, 10), [], 'VLC logged no timestamp, buffering or decoder error');
  t.ok(played.audioSeconds >= VLC_SECONDS - 2, `VLC wrote ${played.audioSeconds.toFixed(2)} s of audio`);
});
