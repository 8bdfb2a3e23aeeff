/**
 * FFmpeg supervision with real FFmpeg (src/ingest/input-worker.ts, src/ffmpeg/):
 * a hung encoder is killed and replaced, one that never starts writing is too, an SRT
 * listener may wait for its caller as long as it takes, no FFmpeg outlives a crashed onair,
 * and silencedetect makes an input `silent` and audible again.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { InputWorker, type InputWorkerOptions } from '../../src/ingest/input-worker.js';
import { TestSignalSender } from '../../src/ffmpeg/test-signal-sender.js';
import { freeUdpPort } from '../helpers/ports.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';

const logger = pino({ level: process.env.ONAIR_TEST_LOG ?? 'silent' }, pino.destination(2));

function channelWith(input: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return resolveConfig({
    channels: [{ id: 'fip', renditions: [{ id: 'lofi', bitrate: '32k' }, { id: 'hifi', bitrate: '96k' }], inputs: [input], ...extra }],
  }).channels[0]!;
}

/** A worker on real FFmpeg, closed in teardown. */
function startWorker(t: Test, input: Record<string, unknown>, options: Partial<InputWorkerOptions> & { extra?: Record<string, unknown> } = {}) {
  const { extra, ...workerOptions } = options;
  const channel = channelWith(input, extra);
  const changes: { running: boolean; silent: boolean }[] = [];
  const worker: InputWorker = new InputWorker({
    channel,
    input: channel.inputs[0]!,
    logger,
    onFrameGroups: () => undefined,
    onStateChange: () => changes.push({ running: worker.running, silent: worker.silent }),
    ...workerOptions,
  });
  worker.start();
  t.teardown(() => worker.close(1000));
  return { worker, changes };
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, …], or undefined when the process is gone. */
async function procStat(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process state letter (R, S, T for stopped, Z for a zombie), or undefined when it is gone. */
async function processState(pid: number): Promise<string | undefined> {
  return (await procStat(pid))?.[0];
}

/** Gone, or a zombie: it holds no port, no file and no CPU any more (a container's PID 1 may not reap it). */
async function processGone(pid: number): Promise<boolean> {
  const state = await processState(pid);
  return state === undefined || state === 'Z';
}

/** Kills, in teardown, a process this test started if it is still there. */
function killInTeardown(t: Test, pid: () => number | undefined): void {
  t.teardown(async () => {
    const target = pid();
    if (target !== undefined && !(await processGone(target))) process.kill(target, 'SIGKILL');
  });
}

async function waitFor(t: Test, what: string, predicate: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting until ${what}`);
      return false;
    }
    await sleep(20);
  }
  return true;
}

function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ address: '127.0.0.1', port, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

async function tempDirectory(t: Test): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'onair-supervision-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

/** A WAV file made of tone and digital-silence sections, e.g. [['tone', 1], ['silence', 3]]. */
async function wavFile(t: Test, sections: ['tone' | 'silence', number][]): Promise<string> {
  const path = join(await tempDirectory(t), 'programme.wav');
  const inputs = sections.flatMap(([kind, seconds]) => [
    '-f',
    'lavfi',
    '-i',
    kind === 'tone' ? `sine=frequency=440:sample_rate=48000:duration=${seconds}` : `anullsrc=r=48000:cl=mono:d=${seconds}`,
  ]);
  const labels = sections.map((_, index) => `[${index}:a]`).join('');
  execFileSync(
    'ffmpeg',
    ['-nostdin', '-v', 'error', ...inputs, '-filter_complex', `${labels}concat=n=${sections.length}:v=0:a=1`, '-ac', '2', '-c:a', 'pcm_s16le', path],
    { timeout: 20_000 },
  );
  return path;
}

t.test('a hung FFmpeg is killed by the watchdog, and a new one delivers frames again', async (t) => {
  const file = await wavFile(t, [['tone', 5]]);
  const { worker } = startWorker(t, { id: 'file', url: file }, { stallTimeoutMs: 1000 });
  await waitUntil(t, 'frames flow', () => worker.stats.frameGroups > 20, 8000);
  const hung = worker.encoderPid!;
  killInTeardown(t, () => hung);
  t.equal(await realpath(`/proc/${hung}/exe`), await realpath('/usr/bin/ffmpeg'), 'the pid is FFmpeg itself: the wrapper exec’d it');
  process.kill(hung, 'SIGSTOP');
  const stoppedAt = Date.now();
  t.ok(await waitFor(t, 'FFmpeg is stopped', async () => (await processState(hung)) === 'T', 500), 'FFmpeg is stopped: alive, but writes nothing');
  await waitUntil(t, 'the watchdog kills it', () => worker.stats.hangKills === 1, 4000);
  const killedAfter = Date.now() - stoppedAt;
  t.ok(killedAfter >= 700 && killedAfter < 2500, `killed ${killedAfter} ms after it stopped (stall timeout 1000 ms)`);
  await waitFor(t, 'the hung FFmpeg is gone', () => processGone(hung), 2000);
  await waitUntil(t, 'a new encoder runs', () => worker.stats.encoderStarts === 2 && worker.running, 4000);
  t.not(worker.encoderPid, hung);
  const framesBefore = worker.stats.frameGroups;
  await waitUntil(t, 'frames flow again', () => worker.stats.frameGroups > framesBefore + 20, 8000);
  t.equal(worker.stats.encoderRestarts, 1);
  t.equal(worker.stats.hangKills, 1);
});

t.test('an FFmpeg whose source never sends (an HTTP server that goes quiet) is killed after the start timeout', async (t) => {
  const responses: ServerResponse[] = [];
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'audio/aac' });
    response.flushHeaders();
    responses.push(response); // and never a byte of audio
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as { port: number }).port;
  const { worker } = startWorker(t, { id: 'icecast', url: `http://127.0.0.1:${port}/fip.aac` }, { startTimeoutMs: 1000 });
  await waitUntil(t, 'FFmpeg connects', () => responses.length === 1 && worker.running, 4000);
  const pid = worker.encoderPid!;
  killInTeardown(t, () => pid);
  await waitUntil(t, 'the watchdog kills it', () => worker.stats.hangKills === 1, 4000);
  await waitFor(t, 'it is gone', () => processGone(pid), 2000);
  t.equal(worker.stats.hangKills, 1, 'counted as a hang');
  await waitUntil(t, 'a new FFmpeg tries again', () => responses.length === 2 && worker.stats.encoderStarts === 2, 4000);
  t.equal(worker.stats.encoderRestarts, 1);
});

t.test('an SRT listener waits for its caller as long as it takes, then delivers', async (t) => {
  const port = await freeUdpPort();
  const { worker } = startWorker(t, { id: 'main', url: `srt://127.0.0.1:${port}?mode=listener`, srt: { passphrase: 'onair-test-passphrase' } }, { startTimeoutMs: 300, stallTimeoutMs: 2000 });
  await sleep(1500);
  t.equal(worker.stats.hangKills, 0, 'no caller yet, and no kill');
  t.equal(worker.stats.encoderStarts, 1);
  t.ok(worker.running);
  const sender = new TestSignalSender({ outputUrl: `srt://127.0.0.1:${port}?mode=caller&passphrase=onair-test-passphrase` });
  sender.start();
  t.teardown(() => sender.close('SIGKILL'));
  const calledAt = Date.now();
  await waitUntil(t, 'frames flow', () => worker.stats.frameGroups > 0, 10_000);
  t.comment(`first frames ${Date.now() - calledAt} ms after the caller started`);
  await waitUntil(t, 'a second of audio', () => worker.stats.frameGroups > 47, 5000);
  t.equal(worker.stats.encoderStarts, 1);
});

t.test('FFmpeg dies with a crashed onair: no orphan, and the SRT port is free again', async (t) => {
  const port = await freeUdpPort();
  const liveEncoder = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'ffmpeg', 'live-encoder.js')).href;
  // A Node process that starts an SRT listener encoder (no caller: it never writes) and says its pid.
  const program = `
    import { startEncoder } from ${JSON.stringify(liveEncoder)};
    const encoder = startEncoder(
      { inputUrl: 'srt://127.0.0.1:${port}?mode=listener', sampleRate: 48000, renditions: [{ bitrate: 64000, audioChannels: 2 }] },
      { onStderrLine: () => {}, onExit: (exit) => console.log('exit ' + JSON.stringify(exit)) },
    );
    encoder.stdout.resume();
    const poll = setInterval(() => {
      if (encoder.pid() === undefined) return;
      clearInterval(poll);
      console.log('pid ' + encoder.pid());
    }, 10);
    setTimeout(() => process.exit(3), 60000); // bounded, should the test not kill it
  `;
  // The same TypeScript loader tap runs this test with; type-checking is the test run's job.
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', import.meta.resolve('@tapjs/typescript/import'), '--input-type=module', '--eval', program],
    { env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const childExited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await childExited;
  });
  let ffmpegPid: number | undefined;
  killInTeardown(t, () => ffmpegPid);
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    if (line.startsWith('pid ')) ffmpegPid = Number(line.slice(4));
    else t.comment(`child: ${line}`);
  });
  await waitUntil(t, 'the child has started FFmpeg', () => ffmpegPid !== undefined, 30_000);
  const pid = ffmpegPid!;
  const ffmpegBinary = await realpath('/usr/bin/ffmpeg');
  // The wrapper shell and setpriv exec() in turn: same pid, FFmpeg in the end.
  await waitFor(t, 'the wrapper has become FFmpeg', async () => (await realpath(`/proc/${pid}/exe`).catch(() => '')) === ffmpegBinary, 2000);
  const parent = Number((await procStat(pid))?.[1]);
  t.equal(parent, child.pid, 'a child of that Node process');
  t.ok(await waitFor(t, 'FFmpeg listens on the SRT port', async () => !(await udpPortFree(port)), 5000), 'FFmpeg holds the SRT port, waiting for a caller');

  child.kill('SIGKILL'); // the crash: no exit handler, no cleanup
  const crashedAt = Date.now();
  await childExited;
  const gone = await waitFor(t, 'FFmpeg is gone', () => processGone(pid), 2000);
  if (gone) t.pass(`FFmpeg ended ${Date.now() - crashedAt} ms after its parent was killed`);
  t.ok(await waitFor(t, 'the SRT port can be bound again', () => udpPortFree(port), 2000), 'the SRT port is free for the next onair');
});

t.test('digital silence in the feed makes the input silent, and audible again', async (t) => {
  const file = await wavFile(t, [['tone', 1], ['silence', 3], ['tone', 4]]);
  const startedAt = Date.now();
  const { worker, changes } = startWorker(t, { id: 'file', url: file }, { extra: { silenceSeconds: 1 } });
  await waitUntil(t, 'frames flow', () => worker.stats.frameGroups > 0, 8000);
  const firstFrames = Date.now() - startedAt;
  t.notOk(worker.silent, 'the tone is not silence');
  await waitUntil(t, 'the input is silent', () => worker.silent, 8000);
  const silentAt = Date.now() - startedAt;
  await waitUntil(t, 'the input is audible again', () => !worker.silent, 6000);
  const audibleAt = Date.now() - startedAt;
  t.comment(`first frames at ${firstFrames} ms, silent at ${silentAt} ms, audible at ${audibleAt} ms (silence spans 1–4 s of the file)`);
  t.ok(audibleAt - silentAt >= 1000 && audibleAt - silentAt <= 3000, `silent for ${audibleAt - silentAt} ms: 3 s of silence less the 1 s it takes to report`);
  t.same(
    changes.map((change) => change.silent),
    [false, true, false],
    'onStateChange announced the start, the silence and its end, once each',
  );
  // At level+info FFmpeg prints a score of lines per start; only its two start-up warnings count.
  t.ok(worker.stats.ffmpegWarnings <= 2, `${worker.stats.ffmpegWarnings} warnings: info lines (stream mapping, silence reports) are not feed problems`);
  t.equal(worker.stats.encoderStarts, 1);
});
