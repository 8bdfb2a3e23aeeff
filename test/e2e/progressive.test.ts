/**
 * Progressive mounts end to end (src/origin/progressive/): a real redis-server, a real
 * `onair ingest` (dist/src/cli.js) fed a 440 Hz test tone over SRT, and a separate real
 * `onair origin` process that serves `/fip-hifi.aac` from the store alone. Over raw HTTP:
 * the headers, ICY blocks at exact byte intervals (≥ 5 of them), a StreamTitle change set
 * through the store arriving within one metaint, HEAD/OPTIONS/405, /status-json.xsl and
 * /listeners.json counting the listeners; FFmpeg decoding more than 10 s of the stream as
 * continuous tone; and a listener that stops reading being disconnected.
 * Build first: `npx tsc -p tsconfig.build.json`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { pino } from 'pino';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { AdtsReader } from '../../src/media/adts.js';
import { serializeNowPlaying } from '../../src/media/now-playing.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { originUrl, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { openStream, splitIcy } from '../helpers/progressive-listener.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { identifyTone } from '../helpers/tone.js';
import { sleep } from '../helpers/wait-until.js';

const METAINT = 16000;
const TONE_HZ = 440;
const FRAME_SECONDS = 1024 / 48000;

const redis = await startRedisServer();
t.teardown(() => redis.stop());
const base = await testConfig({
  store: redis.url,
  segmentSeconds: 1,
  channel: {
    renditions: [
      { id: 'lofi', bitrate: '32k' },
      { id: 'hifi', bitrate: '192k' },
    ],
    icy: { name: 'FIP e2e', description: 'Radio éclectique', genre: 'Eclectic' },
  },
});
const config = resolveConfig({ ...base, origin: { ...base.origin, progressive: { metaint: METAINT, burstSeconds: 4, maxBacklogBytes: '16k' } } });
startSender(t, config, TONE_HZ);
await startOnairProcess(t, { role: 'ingest', config, readyPattern: /"msg":"ingest started"/, readyTimeoutMs: 20_000 });
const origin = await startOnairProcess(t, { role: 'origin', config, readyPattern: /"msg":"admin listening"/ });
const adminUrl = /"url":"(http:\/\/[^"]+)","msg":"admin listening"/.exec(origin.output())![1]!;
const url = originUrl(config);
const port = config.origin.port;
await waitFor('the hifi mount on air', async () => {
  const head = await fetch(`${url}/fip-hifi.aac`, { method: 'HEAD' });
  return head.status === 200 ? true : undefined;
});
const store = new RedisStore({ url: redis.url, logger: pino({ level: 'silent' }) });
await store.start();
t.teardown(() => store.close());

t.test('headers: audio/aac, the channel’s icy-* identity, no caching, CORS exposing them, no chunked coding', async (t) => {
  const listener = await openStream(port, '/fip-hifi.aac', { headers: { 'icy-metadata': '1', origin: 'https://player.example' } });
  t.teardown(() => listener.close());
  t.equal(listener.head.status, 200);
  t.equal(listener.header('content-type'), 'audio/aac');
  t.equal(listener.header('icy-name'), 'FIP e2e');
  t.equal(Buffer.from(listener.header('icy-description')!, 'latin1').toString('utf8'), 'Radio éclectique', 'UTF-8 as Icecast sends it');
  t.equal(listener.header('icy-genre'), 'Eclectic');
  t.equal(listener.header('icy-url'), `${url}/`, 'the player page by default');
  t.equal(listener.header('icy-br'), '192');
  t.equal(listener.header('icy-metaint'), String(METAINT));
  t.equal(listener.header('cache-control'), 'no-cache, no-store');
  t.equal(listener.header('access-control-allow-origin'), '*');
  t.match(listener.header('access-control-expose-headers'), /icy-metaint/);
  t.match(listener.header('access-control-expose-headers'), /icy-name/);
  t.equal(listener.header('transfer-encoding'), undefined, 'the body is not chunked');
  t.equal(listener.header('content-length'), undefined);
  const plain = await openStream(port, '/fip-hifi.aac');
  t.teardown(() => plain.close());
  t.equal(plain.header('icy-metaint'), undefined, 'no metaint without Icy-MetaData: 1');
});

t.test('ICY blocks come after exactly every metaint audio bytes, and a StreamTitle set through the store arrives within one metaint', async (t) => {
  const listener = await openStream(port, '/fip-hifi.aac', { headers: { 'icy-metadata': '1' } });
  t.teardown(() => listener.close());
  await waitFor('six blocks', async () => (splitIcy(listener.body(), METAINT).blocks.length >= 6 ? true : undefined), 15_000);

  await store.putNowPlaying('fip', serializeNowPlaying({ title: "Don't Stop", artist: 'Ensemble', setAt: Date.now() }));
  // By now the origin has applied the title (pub/sub on loopback): what it writes from here on counts.
  await sleep(100);
  const audioAtChange = splitIcy(listener.body(), METAINT).audio.length;
  const expected = 'StreamTitle=\'Ensemble - Don’t Stop\';';
  const arrived = await waitFor(
    'the new StreamTitle',
    async () => {
      const { blocks } = splitIcy(listener.body(), METAINT);
      const index = blocks.indexOf(expected);
      return index >= 0 ? index : undefined;
    },
    15_000,
  );
  const audioBeforeBlock = (arrived + 1) * METAINT;
  t.ok(audioBeforeBlock <= audioAtChange + METAINT, `the title came ${audioBeforeBlock - audioAtChange} audio bytes after the change (metaint ${METAINT})`);

  await waitFor('two more blocks', async () => (splitIcy(listener.body(), METAINT).blocks.length >= arrived + 3 ? true : undefined), 15_000);
  listener.close();
  const { audio, blocks } = splitIcy(listener.body(), METAINT);
  t.ok(blocks.length >= 8, `${blocks.length} blocks read`);
  t.ok(blocks.every((block) => block === '' || block.startsWith("StreamTitle='")), 'every block is where expected: empty or a StreamTitle');
  t.equal(blocks[arrived + 1], '', 'an unchanged title is sent as an empty block');
  const reader = new AdtsReader();
  const frames = reader.push(audio);
  t.equal(reader.stats.skippedBytes, 0, 'with the blocks taken out at every metaint, the audio is unbroken ADTS');
  t.ok(frames.length * FRAME_SECONDS > 5, `${(frames.length * FRAME_SECONDS).toFixed(1)} s of frames`);
});

t.test('FFmpeg decodes more than 10 s of the mount as continuous tone', async (t) => {
  const listener = await openStream(port, '/fip-hifi.aac');
  t.teardown(() => listener.close());
  const startedAt = Date.now();
  await sleep(11_000);
  const elapsed = (Date.now() - startedAt) / 1000;
  listener.close();
  const reader = new AdtsReader();
  const frames = reader.push(listener.body());
  t.equal(reader.stats.skippedBytes, 0, 'whole ADTS frames only');
  const seconds = frames.length * FRAME_SECONDS;
  t.ok(seconds >= 10, `${seconds.toFixed(1)} s of audio`);
  // The burst (4 s) plus what aired meanwhile, a segment (1 s) at most behind: no gap.
  t.ok(seconds >= elapsed + 4 - 1.5, `no audio missing: ${seconds.toFixed(1)} s received over ${elapsed.toFixed(1)} s with a 4 s burst`);
  const perSecond = Math.round(1 / FRAME_SECONDS);
  const pieces: Buffer[] = [];
  for (let at = 0; at + perSecond <= frames.length; at += perSecond) pieces.push(Buffer.concat(frames.slice(at, at + perSecond).map((frame) => frame.data)));
  const whole = await identifyTone(listener.body(), [TONE_HZ, 880, 660]);
  t.equal(whole.tone, TONE_HZ, 'FFmpeg decodes the whole stream as the tone');
  const readings = await Promise.all(pieces.map((piece) => identifyTone(piece, [TONE_HZ, 880, 660])));
  t.strictSame(readings.map((reading) => reading.tone).filter((tone) => tone !== TONE_HZ), [], `every one of ${readings.length} seconds is the tone`);
});

t.test('HEAD gives the headers and no body, OPTIONS is a CORS preflight, other methods 405, unknown mounts 404', async (t) => {
  const head = await openStream(port, '/fip-hifi.aac', { method: 'HEAD' });
  await head.ended;
  t.equal(head.head.status, 200);
  t.equal(head.header('content-type'), 'audio/aac');
  t.equal(head.header('icy-br'), '192');
  t.equal(head.body().length, 0, 'no body');
  const preflight = await fetch(`${url}/fip-hifi.aac`, { method: 'OPTIONS', headers: { origin: 'https://player.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'icy-metadata' } });
  t.equal(preflight.status, 204);
  t.equal(preflight.headers.get('access-control-allow-origin'), '*');
  t.match(preflight.headers.get('access-control-allow-methods'), /GET/);
  const post = await fetch(`${url}/fip-hifi.aac`, { method: 'POST', body: 'x' });
  t.equal(post.status, 405);
  t.match(post.headers.get('allow'), /GET/);
  t.equal((await fetch(`${url}/fip-nope.aac`)).status, 404);
  t.equal((await fetch(`${url}/fip-hifi.mp3`)).status, 404, 'an AAC rendition has no .mp3 mount');
});

t.test('status-json.xsl and /listeners.json count the open progressive connections exactly', async (t) => {
  const listeners = await Promise.all([openStream(port, '/fip-hifi.aac'), openStream(port, '/fip-hifi.aac'), openStream(port, '/fip-lofi.aac')]);
  t.teardown(() => listeners.forEach((listener) => listener.close()));
  const counted = await waitFor('the counts reported', async () => {
    const status = (await (await fetch(`${url}/status-json.xsl`)).json()) as { icestats: { source: { listenurl: string; listeners: number }[] } };
    const hifi = status.icestats.source.find((source) => source.listenurl.endsWith('/fip-hifi.aac'));
    return hifi?.listeners === 2 ? status : undefined;
  }, 15_000);
  const sources = counted.icestats.source as unknown as Record<string, unknown>[];
  t.equal(sources.length, 2, "one source per mount");
  const hifi = sources.find((source) => String(source.listenurl).endsWith('/fip-hifi.aac'))!;
  t.match(hifi, { server_name: 'FIP e2e', server_type: 'audio/aac', bitrate: 192, genre: 'Eclectic', title: "Ensemble - Don't Stop", audio_info: 'channels=2;samplerate=48000;bitrate=192' });
  t.match(counted.icestats, { server_id: /^onair /, server_start_iso8601: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/ });
  const listenersJson = (await (await fetch(`${adminUrl}/listeners.json`)).json()) as { channels: { fip: { progressive: unknown } } };
  t.strictSame(listenersJson.channels.fip.progressive, { total: 3, renditions: { lofi: 1, hifi: 2 } });
  listeners.forEach((listener) => listener.close());
  await waitFor('the counts back to zero', async () => {
    const body = (await (await fetch(`${adminUrl}/listeners.json`)).json()) as { channels: { fip: { progressive: { total: number } } } };
    return body.channels.fip.progressive.total === 0 ? true : undefined;
  }, 15_000);
});

t.test('a listener that stops reading is disconnected once its backlog passes maxBacklogBytes; a reading one goes on', async (t) => {
  const reading = await openStream(port, '/fip-hifi.aac');
  t.teardown(() => reading.close());
  const slowDisconnects = async (): Promise<number> => Number(/^onair_progressive_slow_disconnects_total (\d+)/m.exec(await (await fetch(`${adminUrl}/metrics`)).text())?.[1] ?? NaN);
  const before = await slowDisconnects();
  const stalled = stalledListener(port, '/fip-hifi.aac');
  t.teardown(() => stalled.kill('SIGKILL'));
  await waitFor('the stalled listener cut off', async () => ((await slowDisconnects()) > before ? true : undefined), 30_000);
  const received = reading.body().length;
  await sleep(1500);
  t.ok(reading.body().length > received, 'the reading listener still gets audio');
  t.equal((await slowDisconnects()) - before, 1, 'one slow listener, counted once');
  const status = (await (await fetch(`${url}/status-json.xsl`)).json()) as { icestats: { source: { listenurl: string; listeners: number }[] } };
  await waitFor('the count without it', async () => {
    const counts = (await (await fetch(`${adminUrl}/listeners.json`)).json()) as { channels: { fip: { progressive: { renditions: { hifi: number } } } } };
    return counts.channels.fip.progressive.renditions.hifi === 1 ? true : undefined;
  }, 15_000);
  t.ok(status.icestats.source.length === 2);
});

/**
 * A listener that never reads, in Python: a 4 KiB receive buffer and a 536-byte MSS keep the
 * kernel from absorbing megabytes for it (loopback's 64 KiB MSS would let the origin's send
 * buffer grow to several MB), so the origin's own backlog for it grows within seconds.
 */
function stalledListener(port: number, path: string): ChildProcess {
  const script = [
    'import socket, sys, time',
    's = socket.socket()',
    's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)',
    's.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)',
    `s.connect(('127.0.0.1', ${port}))`,
    `s.sendall(b'GET ${path} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n')`,
    'time.sleep(60)',
  ].join('\n');
  return spawn('python3', ['-c', script], { stdio: 'ignore' });
}
