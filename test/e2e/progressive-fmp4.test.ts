/**
 * Progressive mounts on a `container: fmp4` channel end to end
 * (docs/architecture.md, "Progressive mounts on fMP4 channels"): a real redis-server, a real `onair ingest`
 * (dist/src/cli.js) fed a 440 Hz tone over SRT, packaging CMAF (`.m4s` + `init-{run}.mp4`),
 * and a separate real `onair origin` serving `/fip-hifi.aac` and `/fip-midfi.mp3` from the
 * store alone. FFmpeg decodes ≥ 8 s of each mount as continuous tone; the AAC mount is
 * unbroken ADTS and the MP3 mount unbroken MPEG audio, with no audio missing.
 * Build first: `npx tsc -p tsconfig.build.json`.
 */
import t from 'tap';
import { AdtsReader } from '../../src/media/adts.js';
import { MpegAudioReader } from '../../src/media/mpeg-audio.js';
import { originUrl, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { openStream } from '../helpers/progressive-listener.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { identifyTone } from '../helpers/tone.js';
import { sleep } from '../helpers/wait-until.js';

const TONE_HZ = 440;
const LISTEN_MS = 9_000;

const redis = await startRedisServer();
t.teardown(() => redis.stop());
const config = await testConfig({
  store: redis.url,
  segmentSeconds: 1,
  channel: {
    container: 'fmp4',
    renditions: [
      { id: 'hifi', bitrate: '192k' },
      { id: 'midfi', bitrate: '128k', codec: 'mp3' },
    ],
  },
});
startSender(t, config, TONE_HZ);
await startOnairProcess(t, { role: 'ingest', config, readyPattern: /"msg":"ingest started"/, readyTimeoutMs: 20_000 });
await startOnairProcess(t, { role: 'origin', config, readyPattern: /"msg":"admin listening"/ });
const url = originUrl(config);
const port = config.origin.port;
await waitFor('both mounts on air', async () => {
  const heads = await Promise.all(['/fip-hifi.aac', '/fip-midfi.mp3'].map((path) => fetch(`${url}${path}`, { method: 'HEAD' })));
  return heads.every((head) => head.status === 200) ? true : undefined;
}, 30_000);
// A full burst (4 s) needs that much listed: wait for five 1 s segments.
await waitFor('five segments listed', async () => {
  const playlist = await (await fetch(`${url}/fip/fip_hifi.m3u8`)).text();
  return (playlist.match(/#EXTINF/g) ?? []).length >= 5 ? true : undefined;
}, 30_000);

t.test('the channel is fMP4: its playlist names an init segment and .m4s segments', async (t) => {
  const playlist = await (await fetch(`${url}/fip/fip_hifi.m3u8`)).text();
  t.match(playlist, /#EXT-X-MAP:URI="hifi\/init-\d+\.mp4"/);
  t.match(playlist, /hifi\/\d+-\d+\.m4s/);
});

t.test('both mounts at once: FFmpeg decodes ≥ 8 s of /fip-hifi.aac (ADTS) and /fip-midfi.mp3 (MPEG audio) as continuous tone', async (t) => {
  const aac = await openStream(port, '/fip-hifi.aac');
  const mp3 = await openStream(port, '/fip-midfi.mp3');
  t.teardown(() => {
    aac.close();
    mp3.close();
  });
  t.equal(aac.head.status, 200);
  t.equal(aac.header('content-type'), 'audio/aac');
  t.equal(mp3.header('content-type'), 'audio/mpeg');
  const startedAt = Date.now();
  await sleep(LISTEN_MS);
  const elapsed = (Date.now() - startedAt) / 1000;
  aac.close();
  mp3.close();

  const adts = new AdtsReader();
  const aacFrames = adts.push(aac.body());
  t.equal(adts.stats.skippedBytes, 0, 'the AAC mount is whole ADTS frames only');
  t.ok(aacFrames.every((frame) => frame.sampleRate === 48000 && frame.channelCount === 2 && frame.objectType === 2), 'AAC-LC 48 kHz stereo headers, from the init segment');
  const aacSeconds = (aacFrames.length * 1024) / 48000;
  t.ok(aacSeconds >= 8, `${aacSeconds.toFixed(1)} s of AAC`);
  // The burst (4 s by default) plus what aired meanwhile, a segment (1 s) behind at most: no gap.
  t.ok(aacSeconds >= elapsed + 4 - 1.5, `no AAC missing: ${aacSeconds.toFixed(1)} s over ${elapsed.toFixed(1)} s with a 4 s burst`);

  const mpeg = new MpegAudioReader();
  const mp3Frames = mpeg.push(mp3.body());
  t.equal(mpeg.stats.skippedBytes, 0, 'the MP3 mount is whole MPEG audio frames only');
  const mp3Seconds = mp3Frames.reduce((sum, frame) => sum + frame.samples / frame.sampleRate, 0);
  t.ok(mp3Seconds >= 8, `${mp3Seconds.toFixed(1)} s of MP3`);

  for (const [name, body, format, frames] of [
    ['AAC', aac.body(), 'aac', aacFrames],
    ['MP3', mp3.body(), 'mp3', mp3Frames],
  ] as const) {
    const whole = await identifyTone(body, [TONE_HZ, 880, 660], { format });
    t.equal(whole.tone, TONE_HZ, `FFmpeg decodes the whole ${name} stream as the tone`);
    // Each second on its own: no second of silence or noise anywhere (a dropped or mangled segment would show).
    const perSecond = Math.round(frames.length / (format === 'aac' ? aacSeconds : mp3Seconds));
    const pieces: Buffer[] = [];
    for (let at = 0; at + perSecond <= frames.length; at += perSecond) pieces.push(Buffer.concat(frames.slice(at, at + perSecond).map((frame) => frame.data)));
    const readings = await Promise.all(pieces.map((piece) => identifyTone(piece, [TONE_HZ, 880, 660], { format })));
    t.strictSame(readings.map((reading) => reading.tone).filter((tone) => tone !== TONE_HZ), [], `${name}: every one of ${readings.length} seconds is the tone`);
  }
});
