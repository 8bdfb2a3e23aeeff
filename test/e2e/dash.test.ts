/**
 * MPEG-DASH end to end: FFmpeg sends a tone over SRT, onair packages a `container: fmp4`
 * channel (memory store) and serves its MPD; dash.js in Chromium plays the live MPD for 15 s of
 * media time with no error, and FFmpeg's DASH demuxer decodes 10 s of its segments, at the same time.
 *
 * FFmpeg reads a static copy of the live MPD (same templates, timeline and segments, a BaseURL
 * to the origin): its demuxer (libavformat/dashdec.c, 5.1 to current) cannot follow a live
 * SegmentTimeline whose startNumber is not 0, since each refresh_manifest() turns the segment
 * number into an index of the timeline and restarts at the window's start, so a live read
 * repeats audio (non-monotonic DTS). The MPD's `$Number$` is the HLS MSN by design.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { launchChromium } from '../helpers/browser.js';
import { openDashPage } from '../helpers/dash-page.js';
import { originUrl, playlistSegmentCount, startRole, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';

const PLAY_SECONDS = 15;
const DECODE_SECONDS = 10;
const SAMPLE_RATE = 48_000;

declare global {
  interface Window {
    dashState: () => { time: number; playing: boolean; errors: string[] };
  }
}

/** FFmpeg reads an MPD file and decodes `seconds` of audio to raw PCM; resolves with the sample count and stderr. */
function decodeWithFfmpeg(mpdPath: string, seconds: number, timeoutMs: number): Promise<{ code: number | null; samples: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const ffmpeg = spawn('ffmpeg', ['-nostdin', '-hide_banner', '-v', 'error', '-protocol_whitelist', 'file,http,tcp', '-i', mpdPath, '-t', String(seconds), '-vn', '-ac', '1', '-ar', String(SAMPLE_RATE), '-f', 's16le', 'pipe:1']);
    let bytes = 0;
    let stderr = '';
    ffmpeg.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    ffmpeg.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()).length > 20_000 && (stderr = stderr.slice(-10_000)));
    const timer = setTimeout(() => ffmpeg.kill('SIGKILL'), timeoutMs);
    ffmpeg.on('error', reject);
    ffmpeg.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, samples: bytes / 2, stderr });
    });
  });
}

t.test('dash.js plays the live MPD of an fmp4 channel in Chromium and FFmpeg decodes it', async (t) => {
  const config = await testConfig({ segmentSeconds: 2, channel: { container: 'fmp4' } });
  await startRole(t, config, 'start');
  startSender(t, config);
  const base = originUrl(config);
  const browserStarting = launchChromium(t);
  const mpdUrl = `${base}/fip/fip.mpd`;
  // A full window (six segments, 12 s: enough for FFmpeg's 10 s), then the MPD that lists it.
  await waitFor('a full window', async () => ((await playlistSegmentCount(`${base}/fip/fip_hifi.m3u8`)) >= 6 ? true : undefined), 40_000);

  const response = await fetch(mpdUrl);
  t.equal(response.headers.get('content-type'), 'application/dash+xml', 'served as application/dash+xml');
  t.equal(response.headers.get('cache-control'), 'public, max-age=1', 'with the media playlists Cache-Control (TD/2)');
  const mpd = await response.text();
  t.match(mpd, 'type="dynamic"');
  t.match(mpd, 'codecs="mp4a.40.2"');
  t.equal(mpd.split('<Period ').length, 2, 'one Period while nothing broke the timeline');
  const time = await fetch(`${base}/time`);
  t.equal(time.headers.get('cache-control'), 'no-store', '/time is never cached');
  t.ok(Math.abs(Date.parse(await time.text()) - Date.now()) < 5000, '/time answers the time');

  const directory = await mkdtemp(join(tmpdir(), 'onair-dash-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const snapshot = join(directory, 'fip.mpd');
  await writeFile(
    snapshot,
    mpd
      .replace('type="dynamic"', 'type="static"')
      .replace(/ (minimumUpdatePeriod|timeShiftBufferDepth|suggestedPresentationDelay)="[^"]*"/g, '')
      .replace(/(<MPD [^>]*>)/, `$1\n  <BaseURL>${base}/fip/</BaseURL>`),
  );
  const decoding = decodeWithFfmpeg(snapshot, DECODE_SECONDS, 50_000);

  const { page, errors } = await openDashPage(await browserStarting, base);
  await page.evaluate((url) => {
    const errors: string[] = [];
    const audio = document.createElement('audio');
    document.body.append(audio);
    audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
    const player = window.dashjs.MediaPlayer().create();
    player.on(window.dashjs.MediaPlayer.events.ERROR, (event: { error?: unknown }) => errors.push(`dash.js: ${JSON.stringify(event.error ?? event)}`));
    player.initialize(audio, url, true);
    window.dashState = () => ({ time: audio.currentTime, playing: !audio.paused && audio.readyState >= 3, errors: [...errors] });
  }, mpdUrl);

  await page.waitForFunction(() => window.dashState().errors.length > 0 || window.dashState().time > 0, undefined, { timeout: 30_000, polling: 200 });
  const start = await page.evaluate(() => window.dashState());
  const startedAt = Date.now();
  if (start.errors.length === 0) {
    await page
      .waitForFunction((target) => window.dashState().errors.length > 0 || window.dashState().time >= target, start.time + PLAY_SECONDS, { timeout: 40_000, polling: 200 })
      .catch(() => undefined);
  }
  const end = await page.evaluate(() => window.dashState());
  const advanced = end.time - start.time;
  t.same([...errors, ...end.errors], [], 'no dash.js, media or page error');
  t.ok(advanced >= PLAY_SECONDS, `media time advanced ${advanced.toFixed(2)} s in ${((Date.now() - startedAt) / 1000).toFixed(2)} s`);

  const decoded = await decoding;
  t.equal(decoded.code, 0, `FFmpeg exits cleanly${decoded.stderr ? `: ${decoded.stderr.slice(-2000)}` : ''}`);
  t.equal(decoded.samples, DECODE_SECONDS * SAMPLE_RATE, `FFmpeg decoded ${decoded.samples / SAMPLE_RATE} s`);
  t.equal(decoded.stderr.trim(), '', 'FFmpeg reports no error');
});
