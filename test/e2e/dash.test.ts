/**
 * MPEG-DASH end to end: FFmpeg sends a tone over SRT, onair packages a `container: fmp4`
 * channel (memory store, a DVR window) and serves its MPDs; dash.js in Chromium plays the live
 * MPD for 15 s of media time with no error. Meanwhile ffprobe reads every init segment and
 * every media segment of every rendition the live MPD lists (init + segment, one AAC packet
 * per 1024 samples of its `d`). Then FFmpeg's DASH demuxer and GStreamer's dashdemux, at the
 * same time, each decode 20 s of the channel's DVR MPD with no error.
 *
 * Both read a static copy of the MPD (same templates, timeline and segments, a BaseURL to the
 * origin); neither follows our live MPD
 * (docs/architecture.md, "DASH clients that need a static copy"):
 * - FFmpeg (libavformat/dashdec.c, 5.1 to current) keeps `cur_seq_no` as a segment number
 *   (startNumber + index, what `$Number$` gets) but get_segment_start_time_based_on_timeline()
 *   and calc_next_seg_no_from_timelines() count it as an index from 0, so each
 *   refresh_manifest() turns it into an index, below startNumber, and get_current_fragment()
 *   restarts at the window's start: a live read repeats audio (non-monotonic DTS). It only
 *   works with startNumber 0; our `$Number$` is the HLS MSN by design.
 * - GStreamer (1.21.2 to current, dashdemux and dashdemux2) starts a live stream with
 *   gst_mpd_client_stream_seek(), whose repeat index adds the first listed segment's start
 *   (commit 8a9821e805), so unless that start is 0 on the MPD timeline it seeks to about
 *   twice "now" and waits decades for the segment. Our segments start at their wall-clock
 *   time (availabilityStartTime is the epoch); a live window that slides never starts at 0.
 *   Its static copy puts the Period at 0 with a mediaPresentationDuration, as GStreamer
 *   requires of a static MPD.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { launchChromium } from '../helpers/browser.js';
import { openDashPage } from '../helpers/dash-page.js';
import { originUrl, playlistSegmentCount, startRole, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';

const PLAY_SECONDS = 15;
const DECODE_SECONDS = 20;
const SAMPLE_RATE = 48_000;
const AAC_FRAME_SAMPLES = 1024;
const run = promisify(execFile);

declare global {
  interface Window {
    dashState: () => { time: number; playing: boolean; errors: string[] };
  }
}

/** A decoder writing `seconds` of raw mono 48 kHz PCM to stdout; resolves with the sample count and stderr (killed after `timeoutMs`). */
function decodeToPcm(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; samples: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()).length > 20_000 && (stderr = stderr.slice(-10_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, samples: Math.floor(bytes / 2), stderr });
    });
  });
}

/** FFmpeg's DASH demuxer decodes `seconds` of an MPD file. */
function decodeWithFfmpeg(mpdPath: string, seconds: number): ReturnType<typeof decodeToPcm> {
  const args = ['-nostdin', '-hide_banner', '-v', 'error', '-protocol_whitelist', 'file,http,tcp', '-i', mpdPath, '-t', String(seconds), '-vn', '-ac', '1', '-ar', String(SAMPLE_RATE), '-f', 's16le', 'pipe:1'];
  return decodeToPcm('ffmpeg', args, 50_000);
}

/** GStreamer's dashdemux (through decodebin) decodes an MPD file to its end. */
function decodeWithGstreamer(mpdPath: string): ReturnType<typeof decodeToPcm> {
  const caps = `audio/x-raw,format=S16LE,channels=1,rate=${SAMPLE_RATE}`;
  return decodeToPcm('gst-launch-1.0', ['-q', 'uridecodebin', `uri=file://${mpdPath}`, '!', 'audioconvert', '!', 'audioresample', '!', caps, '!', 'fdsink', 'fd=1'], 50_000);
}

/** A static copy of a live MPD, its segments at `base`, that a DASH client reads from start to end. */
function staticCopy(mpd: string, base: string, options: { periodAtZero: boolean }): string {
  let text = mpd
    .replace('type="dynamic"', 'type="static"')
    .replace(/ (minimumUpdatePeriod|timeShiftBufferDepth|suggestedPresentationDelay)="[^"]*"/g, '')
    .replace(/(<MPD [^>]*>)/, `$1\n  <BaseURL>${base}/fip/</BaseURL>`);
  if (options.periodAtZero) {
    // GStreamer: a static MPD has a duration, and its Period starts within it.
    const samples = [...text.matchAll(/<S (?:t="\d+" )?d="(\d+)"(?: r="(\d+)")?\/>/g)].reduce((sum, match) => sum + Number(match[1]) * (1 + Number(match[2] ?? 0)), 0);
    text = text.replace('type="static"', `type="static" mediaPresentationDuration="PT${(samples / SAMPLE_RATE).toFixed(6)}S"`).replace(/(<Period [^>]*)start="[^"]*"/, '$1start="PT0S"');
  }
  return text;
}

/** Every (rendition, init, segment number, samples) the MPD's single Period lists. */
function listedSegments(mpd: string): { init: string; media: string; number: number; samples: number }[] {
  const template = /<SegmentTemplate [^>]*startNumber="(\d+)" initialization="([^"]+)" media="([^"]+)">/.exec(mpd)!;
  const durations = [...mpd.matchAll(/<S (?:t="\d+" )?d="(\d+)"(?: r="(\d+)")?\/>/g)].flatMap((match) => new Array<number>(1 + Number(match[2] ?? 0)).fill(Number(match[1])));
  const representations = [...mpd.matchAll(/<Representation id="([^"]+)"/g)].map((match) => match[1]!);
  return representations.flatMap((id) =>
    durations.map((samples, index) => {
      const number = Number(template[1]) + index;
      return { init: template[2]!.replace('$RepresentationID$', id), media: template[3]!.replace('$RepresentationID$', id).replace('$Number$', String(number)), number, samples };
    }),
  );
}

/** ffprobe on init + one media segment: the codec and the packet count, nothing said at -v error. */
async function probeSegment(directory: string, name: string, init: Buffer, segment: Buffer): Promise<{ codec: string; packets: number; stderr: string }> {
  const file = join(directory, name);
  await writeFile(file, Buffer.concat([init, segment]));
  const { stdout, stderr } = await run('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-count_packets', '-show_entries', 'stream=codec_name,nb_read_packets', '-of', 'json', file], { timeout: 30_000 });
  const stream = (JSON.parse(stdout) as { streams: { codec_name: string; nb_read_packets: string }[] }).streams[0];
  return { codec: stream?.codec_name ?? '', packets: Number(stream?.nb_read_packets ?? 0), stderr };
}

t.test('dash.js plays the live MPD of an fmp4 channel in Chromium, ffprobe reads every segment, FFmpeg and GStreamer decode 20 s', async (t) => {
  const config = await testConfig({ segmentSeconds: 2, channel: { container: 'fmp4', dvrSeconds: 60 } });
  await startRole(t, config, 'start');
  startSender(t, config);
  const base = originUrl(config);
  const browserStarting = launchChromium(t);
  const mpdUrl = `${base}/fip/fip.mpd`;
  // A full window (six segments, 12 s), then the MPD that lists it.
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
  // ffprobe reads every init and media segment the live MPD lists, of every rendition, while dash.js plays.
  const probing = (async () => {
    const listed = listedSegments(mpd);
    const inits = new Map<string, Buffer>();
    for (const init of new Set(listed.map((segment) => segment.init))) inits.set(init, Buffer.from(await (await fetch(`${base}/fip/${init}`)).arrayBuffer()));
    const results: { name: string; samples: number; codec: string; packets: number; stderr: string }[] = [];
    for (const segment of listed) {
      const bytes = Buffer.from(await (await fetch(`${base}/fip/${segment.media}`)).arrayBuffer());
      const name = segment.media.replace('/', '-').replace('.m4s', '.mp4');
      results.push({ name: segment.media, samples: segment.samples, ...(await probeSegment(directory, name, inits.get(segment.init)!, bytes)) });
    }
    return { inits: inits.size, results };
  })();

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

  const probed = await probing;
  t.equal(probed.inits, 3, 'an init segment per rendition');
  t.equal(probed.results.length, 18, 'six segments of each of the three renditions');
  const unread = probed.results.filter((result) => result.codec !== 'aac' || result.packets !== result.samples / AAC_FRAME_SAMPLES || result.stderr !== '');
  t.same(unread, [], 'ffprobe reads every init + segment as AAC, one packet per 1024 samples of its d, with no message');

  // The DVR MPD lists more than 20 s by now (the live window alone, 12 s, is not enough).
  const dvrMpd = await (await fetch(`${base}/fip/fip_dvr.mpd`)).text();
  t.equal(dvrMpd.split('<Period ').length, 2, 'the DVR MPD has one Period too');
  const forFfmpeg = join(directory, 'ffmpeg.mpd');
  const forGstreamer = join(directory, 'gstreamer.mpd');
  await writeFile(forFfmpeg, staticCopy(dvrMpd, base, { periodAtZero: false }));
  await writeFile(forGstreamer, staticCopy(dvrMpd, base, { periodAtZero: true }));
  const [ffmpeg, gstreamer] = await Promise.all([decodeWithFfmpeg(forFfmpeg, DECODE_SECONDS), decodeWithGstreamer(forGstreamer)]);
  t.equal(ffmpeg.code, 0, `FFmpeg exits cleanly${ffmpeg.stderr ? `: ${ffmpeg.stderr.slice(-2000)}` : ''}`);
  t.equal(ffmpeg.samples, DECODE_SECONDS * SAMPLE_RATE, `FFmpeg decoded ${ffmpeg.samples / SAMPLE_RATE} s`);
  t.equal(ffmpeg.stderr.trim(), '', 'FFmpeg reports no error');
  t.equal(gstreamer.code, 0, `GStreamer exits cleanly${gstreamer.stderr ? `: ${gstreamer.stderr.slice(-2000)}` : ''}`);
  t.ok(gstreamer.samples >= DECODE_SECONDS * SAMPLE_RATE, `GStreamer's dashdemux decoded ${(gstreamer.samples / SAMPLE_RATE).toFixed(2)} s (≥ ${DECODE_SECONDS} s)`);
  t.equal(gstreamer.stderr.trim(), '', 'GStreamer reports no error');
});
