/**
 * An fMP4 channel end to end (docs/architecture.md, "Fragmented MP4 channels"): the built CLI (`onair
 * start`, a child process) packages a tone FFmpeg sends over SRT on a `container: fmp4`
 * channel with Low-Latency HLS and three AAC renditions. The origin serves playlists with
 * EXT-X-MAP, init segments and `.m4s` segments and parts as audio/mp4; ffprobe and FFmpeg read
 * init + segments and init + parts; hls.js in Debian's Chromium plays it on the player page
 * for 10 s of media time, loading the init segment and parts, with no error.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parseMasterPlaylist, parseMediaPlaylist } from '../../src/hls/playlist/index.js';
import { PlayerPage, launchChromium } from '../helpers/browser.js';
import { originUrl, RENDITIONS, startSender, testConfig, waitFor, waitForThreeSegments } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';

const READY = /"msg":"ingest started"/;
const PLAY_SECONDS = 10;

async function fetchBytes(url: string): Promise<{ type: string | null; cacheControl: string | null; bytes: Buffer }> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
  return { type: response.headers.get('content-type'), cacheControl: response.headers.get('cache-control'), bytes: Buffer.from(await response.arrayBuffer()) };
}

/** ffprobe's codec and packet count for `bytes`, and FFmpeg decoding all of it with nothing said at -v error. */
function readWithFfmpeg(t: Test, bytes: Buffer, name: string): { codec: string; packets: number; decodeMessages: string } {
  const dir = mkdtempSync(join(tmpdir(), 'onair-fmp4-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  writeFileSync(file, bytes);
  const json = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-count_packets', '-show_entries', 'stream=codec_name,nb_read_packets', '-of', 'json', file], { encoding: 'utf8', timeout: 30_000 }),
  ) as { streams: { codec_name: string; nb_read_packets: string }[] };
  const decodeMessages = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { codec: json.streams[0]!.codec_name, packets: Number(json.streams[0]!.nb_read_packets), decodeMessages };
}

t.test('a container: fmp4 LL-HLS channel: EXT-X-MAP, audio/mp4 init and .m4s, FFmpeg reads them, hls.js in Chromium plays 10 s', async (t) => {
  const config = await testConfig({ segmentSeconds: 2, channel: { container: 'fmp4', lowLatency: true, partSeconds: 0.5 } });
  const base = originUrl(config);
  startSender(t, config);
  await startOnairProcess(t, { role: 'start', config, readyPattern: READY, readyTimeoutMs: 30_000 });
  const browserStarting = launchChromium(t);
  await waitForThreeSegments(base, 45_000);

  const master = parseMasterPlaylist(await (await fetch(`${base}/fip/fip.m3u8`)).text());
  t.same(master.variants.map((variant) => variant.codecs), RENDITIONS.map(() => 'mp4a.40.2'), 'the master lists every AAC rendition with CODECS mp4a.40.2');

  const mediaText = await (await fetch(`${base}/fip/fip_hifi.m3u8`)).text();
  const media = parseMediaPlaylist(mediaText);
  t.equal(media.version, 9, 'LL-HLS with EXT-X-MAP: version 9');
  const map = media.segments[0]!.map;
  t.match(map?.uri, /^hifi\/init-\d+\.mp4$/, 'EXT-X-MAP before the first segment');
  t.ok(media.segments.every((segment) => /^hifi\/\d+-\d+\.m4s$/.test(segment.uri)), 'segments are .m4s');
  t.ok(media.preloadHints.every((hint) => /\.m4s$/.test(hint.uri)), 'the preload hint names a .m4s part');

  const init = await fetchBytes(`${base}/fip/${map!.uri}`);
  t.equal(init.type, 'audio/mp4', 'the init segment is audio/mp4');
  t.equal(init.cacheControl, 'public, max-age=31536000, immutable');
  const segments = await Promise.all(media.segments.map((segment) => fetchBytes(`${base}/fip/${segment.uri}`)));
  t.ok(segments.every((segment) => segment.type === 'audio/mp4'), 'segments are audio/mp4');
  const joined = readWithFfmpeg(t, Buffer.concat([init.bytes, ...segments.map((segment) => segment.bytes)]), 'segments.mp4');
  t.equal(joined.codec, 'aac', 'ffprobe reads init + segments as AAC');
  const expectedPackets = Math.round((media.segments.reduce((sum, segment) => sum + segment.durationSeconds, 0) * 48000) / 1024);
  t.equal(joined.packets, expectedPackets, `one packet per AAC frame the playlist lists (${expectedPackets})`);
  t.equal(joined.decodeMessages, '', 'FFmpeg decodes init + segments without a message');

  const withParts = media.segments.filter((segment) => segment.parts.length > 0).at(-1)!;
  const parts = await Promise.all(withParts.parts.map((part) => fetchBytes(`${base}/fip/${part.uri}`)));
  t.ok(parts.every((part) => part.type === 'audio/mp4'), 'parts are audio/mp4');
  const fromParts = readWithFfmpeg(t, Buffer.concat([init.bytes, ...parts.map((part) => part.bytes)]), 'parts.mp4');
  t.equal(fromParts.codec, 'aac');
  t.equal(fromParts.decodeMessages, '', 'FFmpeg decodes init + parts without a message');

  const player = await PlayerPage.open(await browserStarting, base);
  const requested = { inits: 0, parts: 0, ts: 0 };
  player.page.on('request', (request) => {
    const url = request.url();
    if (/\/init-\d+\.mp4$/.test(url)) requested.inits += 1;
    if (/\/\d+-\d+\.\d+\.m4s$/.test(url)) requested.parts += 1;
    if (/\.ts$/.test(url)) requested.ts += 1;
  });
  const playback = await player.play('fip', PLAY_SECONDS, 60_000);
  t.same(playback.errors, [], 'no hls.js, media or page error');
  t.ok(playback.advancedSeconds >= PLAY_SECONDS, `media time advanced ${playback.advancedSeconds.toFixed(2)} s in ${playback.wallSeconds.toFixed(2)} s`);
  t.comment(`fMP4 LL-HLS latency behind the live edge ${playback.latencySeconds?.toFixed(2)} s, by the wall clock ${playback.wallClockLatencySeconds?.toFixed(2)} s`);
  t.ok(requested.inits > 0, `hls.js loaded the init segment (${requested.inits} requests)`);
  t.ok(requested.parts > 0, `hls.js loaded ${requested.parts} .m4s parts`);
  t.equal(requested.ts, 0, 'nothing MPEG-TS');
  await waitFor('no late error', async () => ((await player.errors()).length === 0 ? true : undefined), 2_000).catch(() => undefined);
  t.same(await player.errors(), [], 'no error at all');
});
