/**
 * Inputs other than an SRT listener: onair as an SRT caller to a remote listener (with
 * SRT options passed through), an HTTP stream (the way an Icecast mount is read) and a
 * local file played in real time. Each must turn into a live, valid playlist.
 *
 * And what a feed must not do: an HLS playlist pushed at an SRT listener (by a sender that
 * knows the passphrase) or served by an HTTP input must not make FFmpeg fetch the URLs or
 * read the local files it lists. Real FFmpeg on both sides; a control run without the
 * input's container and protocol whitelists shows the same push does fetch and read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { TestSignalSender } from '../../src/ffmpeg/test-signal-sender.js';
import { InputWorker } from '../../src/ingest/input-worker.js';
import { createLogger } from '../../src/logging/create-logger.js';
import { HlsVerifier } from '../helpers/hls-verifier.js';
import { originUrl, RENDITIONS, startRole, testConfig, waitForThreeSegments } from '../helpers/onair-harness.js';
import { freeUdpPort } from '../helpers/ports.js';
import { sleep } from '../helpers/wait-until.js';


/** Waits for three segments, then checks a few seconds of the stream with the verifying listener. */
async function assertLiveAndValid(t: Test, base: string): Promise<void> {
  await waitForThreeSegments(base);
  const verifier = new HlsVerifier({ baseUrl: base, channel: 'fip', renditions: RENDITIONS, pollIntervalMs: 300 });
  verifier.start();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const report = await verifier.stop();
  t.same(report.errors, [], 'the verifying listener saw no broken rule');
  t.ok(report.segments.hifi!.length >= 3, `${report.segments.hifi!.length} segments checked`);
}

async function makeAacFile(t: Test, seconds: number): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'onair-input-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'programme.aac');
  await new Promise<void>((resolve, reject) => {
    const ffmpeg = spawn('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=660:duration=${seconds}`, '-ac', '2', '-c:a', 'aac', '-b:a', '128k', '-f', 'adts', path]);
    ffmpeg.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
  return path;
}

// The five runs share nothing (each its own ports, server, channel and FFmpeg) and assert no
// timing: they run at once.
t.jobs = 5;

t.test('an SRT caller input pulls from a remote listener, with SRT options passed through', async (t) => {
  const srtPort = await freeUdpPort();
  const config = await testConfig({
    input: {
      id: 'studio',
      url: `srt://127.0.0.1:${srtPort}?mode=caller`,
      srt: { latency: 200, passphrase: 'correct-horse-battery', streamid: 'fip-main' },
    },
  });
  // The studio side listens, with the same passphrase: without it the handshake fails.
  const studio = new TestSignalSender({
    outputUrl: `srt://127.0.0.1:${srtPort}?mode=listener&passphrase=correct-horse-battery`,
  });
  studio.start();
  t.teardown(() => studio.close('SIGKILL'));
  await startRole(t, config, 'start');
  await assertLiveAndValid(t, originUrl(config));
});

t.test('an HTTP stream input (an Icecast-style mount) is read like any other feed', async (t) => {
  const aac = await makeAacFile(t, 30);
  const server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'audio/aac' });
    createReadStream(aac).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  const config = await testConfig({ input: { id: 'icecast', url: `http://127.0.0.1:${port}/fip.aac` } });
  await startRole(t, config, 'start');
  await assertLiveAndValid(t, originUrl(config));
});

t.test('a file input is played in real time as a live feed', async (t) => {
  const aac = await makeAacFile(t, 4);
  const config = await testConfig({ input: { id: 'file', url: aac } });
  await startRole(t, config, 'start');
  await assertLiveAndValid(t, originUrl(config));
});

const PASSPHRASE = 'correct-horse-battery';

/** A loopback HTTP server that records every request and answers with `respond`. */
async function recordingServer(t: Test, respond: (path: string) => { type: string; body: string | Buffer }): Promise<{ base: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((request, response) => {
    hits.push(request.url ?? '');
    const { type, body } = respond(request.url ?? '');
    response.writeHead(200, { 'content-type': type });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, hits };
}

/** A directory with a real MPEG-TS of AAC audio, `local.ts`, that a playlist may name as file://. */
async function localSegment(t: Test): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'onair-hostile-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'local.ts');
  await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=550:duration=4', '-c:a', 'aac', '-f', 'mpegts', path]);
  return path;
}

function run(command: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function hostilePlaylist(httpSegment: string, fileSegment: string): string {
  return `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:4.0,\n${httpSegment}\n#EXTINF:4.0,\nfile://${fileSegment}\n#EXT-X-ENDLIST\n`;
}

/** Pushes a text file's bytes, over and over for 3 s, into an SRT listener as a caller with the passphrase. */
function pushOverSrt(playlistPath: string, port: number): Promise<number | null> {
  // u8 PCM in and out: FFmpeg copies the bytes as they are.
  return run('ffmpeg', ['-v', 'error', '-re', '-stream_loop', '-1', '-f', 'u8', '-ar', '8000', '-ac', '1', '-i', playlistPath, '-t', '3', '-c', 'copy', '-f', 'u8', `srt://127.0.0.1:${port}?mode=caller&passphrase=${PASSPHRASE}`]);
}

/** An input worker (real FFmpeg, the live encoder's options) for one input, its log lines kept. */
function startWorker(t: Test, input: Record<string, unknown>): { worker: InputWorker; log: () => string } {
  const config = resolveConfig({ channels: [{ id: 'fip', renditions: [{ id: 'lofi', bitrate: '32k' }], inputs: [input] }] });
  let log = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      log += chunk.toString();
      done();
    },
  });
  const worker = new InputWorker({
    channel: config.channels[0]!,
    input: config.channels[0]!.inputs[0]!,
    logger: createLogger({ level: 'info', destination, pretty: false }),
    onFrameGroups: () => undefined,
    startTimeoutMs: 20_000,
  });
  worker.start();
  t.teardown(() => worker.close(1000));
  return { worker, log: () => log };
}

/** The same listener without the input's -f and whitelists: what FFmpeg did before. */
function unguardedListener(port: number): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-i', `srt://127.0.0.1:${port}?mode=listener&passphrase=${PASSPHRASE}`, '-map', '0:a:0', '-c:a', 'aac', '-f', 'null', '-'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited };
}

t.test('an HLS playlist pushed at an SRT listener makes FFmpeg fetch nothing and read no local file', async (t) => {
  const local = await localSegment(t);
  const { base, hits } = await recordingServer(t, () => ({ type: 'video/mp2t', body: Buffer.alloc(188 * 10) }));
  const directory = await mkdtemp(join(tmpdir(), 'onair-push-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));

  // Control: an FFmpeg listening without the guards does follow the pushed playlist.
  const controlPlaylist = join(directory, 'control.m3u8');
  await writeFile(controlPlaylist, hostilePlaylist(`${base}/control-segment.ts`, local));
  const controlPort = await freeUdpPort();
  const control = unguardedListener(controlPort);
  t.teardown(async () => {
    control.child.kill('SIGKILL');
    await control.exited;
  });
  await sleep(500);
  await pushOverSrt(controlPlaylist, controlPort);
  await sleep(2000);
  t.ok(hits.some((path) => path === '/control-segment.ts'), `without the guards FFmpeg fetched the listed URL (${hits.length} requests)`);

  // onair's input worker: SRT listener with a passphrase; the sender knows it.
  const port = await freeUdpPort();
  const playlist = join(directory, 'pushed.m3u8');
  await writeFile(playlist, hostilePlaylist(`${base}/pushed-segment.ts`, local));
  const { worker, log } = startWorker(t, { id: 'main', url: `srt://127.0.0.1:${port}?mode=listener`, srt: { passphrase: PASSPHRASE } });
  await sleep(1000);
  t.equal(await pushOverSrt(playlist, port), 0, 'the sender pushed the playlist for 3 s');
  await sleep(3000);
  t.same(hits.filter((path) => path === '/pushed-segment.ts'), [], 'the loopback server saw no request from onair');
  t.equal(worker.stats.frameGroups, 0, 'no audio: the local file was not read');
  t.ok(worker.stats.bytesReceived === 0, 'FFmpeg produced nothing from the pushed bytes');
  t.match(log(), /input encoder stopped/, 'FFmpeg refused the feed and exited');
  t.notOk(log().includes(PASSPHRASE), 'the passphrase is not in the log');
});

t.test('an HTTP input serving an HLS playlist makes FFmpeg fetch none of its URLs', async (t) => {
  const local = await localSegment(t);
  let playlist = '';
  const { base, hits } = await recordingServer(t, (path) =>
    path.endsWith('.m3u8') ? { type: 'application/vnd.apple.mpegurl', body: playlist } : { type: 'video/mp2t', body: Buffer.alloc(188 * 10) },
  );
  playlist = hostilePlaylist(`${base}/segment.ts`, local);

  // Control: FFmpeg reading the URL with no guard follows the playlist.
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', `${base}/control.m3u8`, '-t', '1', '-f', 'null', '-']);
  t.ok(hits.includes('/segment.ts'), 'without the guards FFmpeg fetched the listed segment');
  hits.length = 0;

  const { worker, log } = startWorker(t, { id: 'icecast', url: `${base}/live.m3u8?token=listener-token-123` });
  await sleep(3000);
  t.ok(hits.some((path) => path.startsWith('/live.m3u8')), 'the configured URL itself is read');
  t.same(hits.filter((path) => !path.startsWith('/live.m3u8')), [], 'no URL listed in it is');
  t.equal(worker.stats.frameGroups, 0, 'no audio from the playlist or the local file');
  t.match(log(), /"msg":"input encoder stopped"/, 'FFmpeg refused the input and exited');
  t.notOk(log().includes('listener-token-123'), 'the token in the input URL is not in the log');
});
