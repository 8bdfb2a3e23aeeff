/**
 * The logger factory (src/logging/create-logger.ts): repeated warnings are rate-limited per
 * cause with a count (on a manual clock), secrets never reach a line, and lines are
 * human-readable on a terminal (a real pty, through util-linux `script`) and JSON otherwise.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { createLogger } from '../../src/logging/create-logger.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A destination that keeps every line written. */
function captured(): { stream: Writable; lines: () => string[]; records: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const lines = (): string[] => chunks.join('').split('\n').filter((line) => line !== '');
  return { stream, lines, records: () => lines().map((line) => JSON.parse(line) as Record<string, unknown>) };
}

function jsonLogger(clock = new ManualClock()) {
  const output = captured();
  const logger = createLogger({ level: 'info', destination: output.stream, pretty: false, clock, repeatWindowMs: 5000 });
  return { logger, clock, ...output };
}

t.test('a warning repeated 100 times within the window gives one line now and one with the count at its end', async (t) => {
  const { logger, clock, records } = jsonLogger();
  const origin = logger.child({ component: 'origin' });
  for (let request = 0; request < 100; request++) {
    // Each request has its own child logger (Fastify's reqId): still one cause.
    origin.child({ reqId: `req-${request}` }).warn({ url: `/fip/fip_hifi.m3u8?n=${request}` }, 'store unavailable');
    await clock.advance(10);
  }
  t.equal(records().length, 1, 'the first line is written at once, the other 99 held');
  t.equal(records()[0]!.url, '/fip/fip_hifi.m3u8?n=0');
  t.equal(records()[0]!.repeated, undefined);
  await clock.advance(4000);
  t.equal(records().length, 2, 'the window ends: one more line');
  t.match(records()[1], { msg: 'store unavailable', repeated: 99, url: '/fip/fip_hifi.m3u8?n=99' }, 'the last held line, with how many it stands for');
  await clock.advance(20_000);
  t.equal(records().length, 2, 'nothing more while the cause is quiet');
  origin.warn('store unavailable');
  t.equal(records().length, 3, 'after a quiet window the next line is written at once');
  t.equal(records()[2]!.repeated, undefined);
});

t.test('a flood gives one line per window, each with its count', async (t) => {
  const { logger, clock, records } = jsonLogger();
  const worker = logger.child({ channel: 'fip', input: 'main' });
  // 30 s of an FFmpeg that restarts 10 times a second.
  for (let tick = 0; tick < 300; tick++) {
    worker.warn({ code: 1, restartInMs: 100 }, 'input encoder stopped');
    await clock.advance(100);
  }
  await clock.advance(10_000);
  const lines = records();
  t.ok(lines.length >= 6 && lines.length <= 8, `${lines.length} lines for 300 (one per 5 s window)`);
  const total = lines.reduce((sum, line) => sum + ((line.repeated as number | undefined) ?? 1), 0);
  t.equal(total, 300, 'the counts add up to every line logged');
});

t.test('causes are told apart by level, message and bindings; info lines are never held', async (t) => {
  const { logger, records } = jsonLogger();
  for (let round = 0; round < 3; round++) {
    logger.child({ channel: 'fip', input: 'main' }).warn('input encoder stopped');
    logger.child({ channel: 'fip', input: 'backup' }).warn('input encoder stopped');
    logger.child({ channel: 'jazz', input: 'main' }).warn('input encoder stopped');
    logger.child({ channel: 'fip', input: 'main' }).error('input encoder stopped');
    logger.child({ channel: 'fip', input: 'main' }).warn('feed is digital silence');
    logger.info({ round }, 'input switch');
  }
  const lines = records();
  t.equal(lines.filter((line) => line.msg === 'input switch').length, 3, 'every info line');
  t.equal(lines.filter((line) => line.msg !== 'input switch').length, 5, 'one line per warning cause');
});

t.test('secrets never reach a line: secret fields, URLs, error messages and the message itself', async (t) => {
  const { logger, records, lines } = jsonLogger();
  const error = new Error('ffmpeg exited: srt://127.0.0.1:9000?mode=listener&passphrase=correct-horse-battery: I/O error');
  logger.error(
    {
      url: '/fip/fip_hifi.m3u8?token=1735689600.s3cr3t-token',
      ffmpeg: 'rtmp://live.example/app?key=stream-key-123: Connection refused',
      reason: 'http://source:icecast-password@icecast.example/fip.aac: 401',
      srt: { passphrase: 'another-passphrase' },
      signing: { key: 'signing-key-of-at-least-32-characters' },
      tokens: ['api-token-0123456789'],
      err: error,
    },
    'could not open redis://default:redis-password@redis.example:6379',
  );
  logger.child({ store: 'redis://default:redis-password@redis.example:6379' }).warn({ secret: 'webhook-secret' }, 'other');
  const text = lines().join('\n');
  for (const secret of ['s3cr3t-token', 'correct-horse-battery', 'stream-key-123', 'icecast-password', 'another-passphrase', 'signing-key-of', 'api-token', 'redis-password', 'webhook-secret']) {
    t.notOk(text.includes(secret), `${secret} is not in the log`);
  }
  const [line] = records();
  t.match(line, {
    url: '/fip/fip_hifi.m3u8?token=***',
    ffmpeg: 'rtmp://live.example/app?key=*** Connection refused',
    reason: 'http://***@icecast.example/fip.aac: 401',
    srt: { passphrase: '***' },
    signing: { key: '***' },
    tokens: '***',
    msg: 'could not open redis://***@redis.example:6379',
  });
  t.match((line!.err as { message: string }).message, /passphrase=\*\*\* I\/O error/, 'the error message is redacted');
  t.match((line!.err as { stack: string }).stack, /passphrase=\*\*\*/, 'and its stack');
});

t.test('pretty lines are human-readable text, JSON lines are JSON', async (t) => {
  const pretty = captured();
  createLogger({ level: 'info', destination: pretty.stream, pretty: true }).info({ channel: 'fip' }, 'origin listening');
  const [line] = pretty.lines();
  t.match(line, /INFO.*origin listening/);
  t.throws(() => JSON.parse(line!), 'not JSON');
  t.match(pretty.lines().join('\n'), /channel: "fip"/);
  const json = captured();
  createLogger({ level: 'info', destination: json.stream, pretty: false }).info({ channel: 'fip' }, 'origin listening');
  t.match(JSON.parse(json.lines()[0]!), { level: 30, channel: 'fip', msg: 'origin listening' });
});

/** Runs a Node program that logs one line through the factory, with stderr a pty (`script`) or a pipe. */
async function logOneLine(t: Test, terminal: boolean): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'onair-logger-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const factory = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'logging', 'create-logger.ts')).href;
  const program = join(directory, 'log-one-line.mjs');
  await writeFile(program, `import { createLogger } from ${JSON.stringify(factory)};\ncreateLogger({ level: 'info' }).warn({ channel: 'fip' }, 'hello from onair');\n`);
  const node = [process.execPath, '--import', import.meta.resolve('@tapjs/typescript/import'), program];
  const env = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', NO_COLOR: '1' };
  const [command, args] = terminal ? ['script', ['-qec', node.map((part) => `'${part}'`).join(' '), '/dev/null']] : [node[0]!, node.slice(1)];
  return new Promise((resolve, reject) => {
    const child = spawn(command as string, args as string[], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(output);
    });
  });
}

t.test('a process whose stderr is a terminal writes readable lines; piped, it writes JSON', async (t) => {
  const onTerminal = await logOneLine(t, true);
  t.match(onTerminal, /WARN.*hello from onair/, 'a readable line on the terminal');
  t.notMatch(onTerminal, /"msg":/, 'not JSON');
  const piped = await logOneLine(t, false);
  t.match(JSON.parse(piped.trim()), { level: 40, channel: 'fip', msg: 'hello from onair' }, 'JSON through a pipe');
});
