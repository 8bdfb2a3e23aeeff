/**
 * Content encryption end to end (docs/architecture.md, "Content encryption"): onair (in this
 * process, memory store) packages FFmpeg's 440 Hz tone on a signed Low-Latency channel with
 * `encryption: aes-128` and a new key every 2 segments of 2 s. hls.js in Debian's Chromium
 * plays it with a token (parts and segments, each decrypted with the key its EXT-X-KEY names)
 * across at least two key rotations without an error; FFmpeg's HLS demuxer reads the same
 * playlist and its audio, decoded, is the tone; a key asked for without the token is refused.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { DEMO_RENDITIONS } from '../../src/demo.js';
import { channelPathPrefix, signPath } from '../../src/origin/signed-urls.js';
import { launchChromium } from '../helpers/browser.js';
import { killAndWait } from '../helpers/child-processes.js';
import { loopbackSettings, originUrl, startRole, startSender, waitForBody } from '../helpers/onair-harness.js';
import { freeUdpPort } from '../helpers/ports.js';
import { identifyTone } from '../helpers/tone.js';
import { startVarnish, VARNISHD_PATH } from '../helpers/varnish.js';
import { existsSync } from 'node:fs';

const SIGNING_KEY = 'an-hmac-key-of-thirty-two-characters!';
const SEGMENT_SECONDS = 2;
/** A new key every 4 s of audio. */
const ROTATION_SEGMENTS = 2;
const PLAY_SECONDS = 10;
const FFMPEG_SECONDS = 10;

const config = resolveConfig({
  store: 'memory',
  ...(await loopbackSettings(SEGMENT_SECONDS)),
  signing: { key: SIGNING_KEY },
  channels: [
    {
      id: 'fip',
      renditions: DEMO_RENDITIONS,
      inputs: [{ id: 'main', url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { latency: 120, passphrase: 'onair-test-passphrase' } }],
      access: 'signed',
      lowLatency: true,
      partSeconds: 0.5,
      encryption: 'aes-128',
      keyRotationSegments: ROTATION_SEGMENTS,
    },
  ],
});
const base = originUrl(config);
const token = signPath({ key: SIGNING_KEY, pathPrefix: channelPathPrefix('fip'), expiresAt: Math.floor(Date.now() / 1000) + 3600 });
const keyUris = (playlist: string): string[] => [...playlist.matchAll(/#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)"/g)].map((match) => match[1]!);

await startRole(t, config, 'start');
startSender(t, config);
const browserStarting = launchChromium(t);
await waitForBody('three encrypted segments', `${base}/fip/fip_hifi.m3u8?token=${token}`, '#EXTINF', 3);

const ffmpegRun = readWithFfmpeg();

t.test("behind the shipped default.vcl, keys and refusals always reach the origin; segments are cached", { skip: existsSync(VARNISHD_PATH) ? false : 'no varnishd' }, async (t) => {
  const varnish = await startVarnish(t, { backendPort: config.origin.port });
  const playlist = await (await fetch(`${varnish.url}/fip/fip_hifi.m3u8?token=${token}`)).text();
  const key = `${varnish.url}/fip/${keyUris(playlist)[0]!}`;
  const segment = `${varnish.url}/fip/${playlist.split('\n').find((line) => line.startsWith('hifi/'))!}`;
  const through = async (url: string): Promise<{ status: number; cache: string | null; bytes: number; backend: number }> => {
    const before = await varnish.backendRequests();
    const response = await fetch(url);
    const bytes = (await response.arrayBuffer()).byteLength;
    return { status: response.status, cache: response.headers.get('x-cache'), bytes, backend: (await varnish.backendRequests()) - before };
  };
  await through(segment);
  const again = await through(segment);
  t.same([again.status, again.cache, again.backend], [200, 'HIT', 0], 'a segment fetched twice is a hit (the cache works)');
  for (let round = 0; round < 2; round++) {
    const served = await through(key);
    t.same([served.status, served.cache, served.bytes, served.backend], [200, 'MISS', 16, 1], `key fetch ${round + 1}: from the origin, never from the cache`);
    const refused = await through(key.slice(0, key.indexOf('?')));
    t.same([refused.status, refused.cache, refused.backend], [403, 'MISS', 1], `refusal ${round + 1}: from the origin too`);
  }
});

t.test('a key needs the token: 403 ONAIR_KEY_FORBIDDEN, never cached; with it, 16 bytes, private', async (t) => {
  const playlist = await (await fetch(`${base}/fip/fip_hifi.m3u8?token=${token}`)).text();
  const uri = keyUris(playlist)[0]!;
  t.match(uri, /^key-\d+\.key\?token=/, 'the playlist names the key with the token');
  const bare = uri.slice(0, uri.indexOf('?'));
  const refused = await fetch(`${base}/fip/${bare}`);
  t.equal(refused.status, 403);
  t.equal(refused.headers.get('cache-control'), 'no-store');
  t.equal(((await refused.json()) as { error: string }).error, 'key_forbidden');
  const forged = await fetch(`${base}/fip/${bare}?token=${token.slice(0, -2)}xx`);
  t.equal(forged.status, 403, 'a forged token is refused too');
  const served = await fetch(`${base}/fip/${uri}`);
  t.equal(served.status, 200);
  t.equal(served.headers.get('cache-control'), 'private, no-store');
  t.equal((await served.arrayBuffer()).byteLength, 16);
  t.equal((await fetch(`${base}/fip-hifi.aac`)).status, 403, "a signed channel's mount needs its token first");
  const mount = await fetch(`${base}/fip-hifi.aac?token=${token}`);
  t.equal(mount.status, 200, 'with the token the mount plays, decrypted (test/e2e/encryption-recording.test.ts)');
  await mount.body?.cancel();
});

t.test('hls.js in Chromium plays the encrypted LL-HLS channel across two key rotations', async (t) => {
  const browser = await browserStarting;
  const page = await browser.newPage();
  const keyRequests = new Map<string, number>();
  const mediaRequests: string[] = [];
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (path.endsWith('.key')) keyRequests.set(path, response.status());
    if (/\.ts$/.test(path)) mediaRequests.push(path);
  });
  // A page of the origin (same origin for hls.js's requests), then hls.js's build the origin serves.
  await page.goto(`${base}/time`);
  await page.addScriptTag({ url: `${base}/_player/hls/hls.light.min.js` });
  await page.evaluate((source) => {
    const state = { errors: [] as string[] };
    (window as unknown as { encryptionTest: typeof state }).encryptionTest = state;
    const audio = document.createElement('audio');
    audio.id = 'audio';
    document.body.append(audio);
    const Hls = (window as unknown as { Hls: any }).Hls; // eslint-disable-line @typescript-eslint/no-explicit-any
    const hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_event: unknown, data: { details: string; fatal: boolean }) => state.errors.push(`${data.fatal ? 'fatal ' : ''}${data.details}`));
    hls.loadSource(source);
    hls.attachMedia(audio);
    hls.on(Hls.Events.MANIFEST_PARSED, () => void audio.play().catch((error: Error) => state.errors.push(`play: ${error.message}`)));
  }, `/fip/fip.m3u8?token=${token}`);
  await page.waitForFunction(() => (document.getElementById('audio') as HTMLAudioElement).currentTime > 0, undefined, { timeout: 30_000, polling: 100 });
  const startedAt = await page.evaluate(() => (document.getElementById('audio') as HTMLAudioElement).currentTime);
  await page.waitForFunction(
    (target) => (document.getElementById('audio') as HTMLAudioElement).currentTime >= target || (window as unknown as { encryptionTest: { errors: string[] } }).encryptionTest.errors.some((error) => error.startsWith('fatal')),
    startedAt + PLAY_SECONDS,
    { timeout: (PLAY_SECONDS + 15) * 1000, polling: 200 },
  );
  const { currentTime, errors } = await page.evaluate(() => ({
    currentTime: (document.getElementById('audio') as HTMLAudioElement).currentTime,
    ...(window as unknown as { encryptionTest: { errors: string[] } }).encryptionTest,
  }));
  t.comment(`played ${(currentTime - startedAt).toFixed(2)} s; keys ${[...keyRequests].map(([path, status]) => `${path} ${status}`).join(', ')}; ${mediaRequests.length} media requests`);
  // bufferSeekOverHole is hls.js stepping over a gap in its buffer (at a live start, the first
  // part begins after currentTime), a non-fatal recovery it also makes on clear channels; the
  // continuity that matters is the media time checked next. Anything else is an error.
  if (errors.includes('bufferSeekOverHole')) t.comment('hls.js stepped over a buffer gap (non-fatal)');
  t.same(errors.filter((error) => error !== 'bufferSeekOverHole'), [], 'no hls.js or media error');
  t.ok(currentTime - startedAt >= PLAY_SECONDS, `media time advanced ${(currentTime - startedAt).toFixed(2)} s`);
  t.ok(keyRequests.size >= 3, `${keyRequests.size} keys loaded: at least two rotations`);
  t.ok([...keyRequests.values()].every((status) => status === 200), 'every key was served');
  t.ok(mediaRequests.some((path) => /\.\d+\.ts$/.test(path)), 'parts were played');
  await page.close();
});

t.test("FFmpeg's HLS demuxer decrypts the channel across key rotations: the audio is the tone", async (t) => {
  const { code, log, audio } = await ffmpegRun;
  const keys = new Set([...log.matchAll(/key-(\d+)\.key/g)].map((match) => match[1]));
  t.comment(`FFmpeg exited ${code}, ${audio.byteLength} bytes, keys ${[...keys].join(', ')}`);
  t.equal(code, 0, `FFmpeg succeeded${code === 0 ? '' : `: ${log.slice(-2000)}`}`);
  t.ok(keys.size >= 3, `FFmpeg loaded ${keys.size} keys: at least two rotations`);
  const reading = await identifyTone(audio, [440, 880]);
  t.equal(reading.tone, 440, `the decrypted audio is the 440 Hz tone (${JSON.stringify(reading)})`);
});

/** FFmpeg reads the live playlist (in real time, beside the browser) and copies the audio out as ADTS. */
async function readWithFfmpeg(): Promise<{ code: number | null; log: string; audio: Buffer }> {
  const ffmpeg = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'info', '-i', `${base}/fip/fip_hifi.m3u8?token=${token}`, '-t', String(FFMPEG_SECONDS), '-map', '0:a:0', '-c', 'copy', '-f', 'adts', 'pipe:1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  let log = '';
  ffmpeg.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  ffmpeg.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const guard = setTimeout(() => void killAndWait(ffmpeg, 'SIGKILL'), (FFMPEG_SECONDS + 25) * 1000);
  t.teardown(() => killAndWait(ffmpeg, 'SIGKILL'));
  const code = await new Promise<number | null>((resolve) => ffmpeg.on('close', resolve));
  clearTimeout(guard);
  return { code, log, audio: Buffer.concat(chunks) };
}
