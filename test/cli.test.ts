/**
 * The `onair` command as a broadcaster runs it (the built dist/src/cli.js, which
 * `npm test` builds first): check prints the resolved config or one error naming the
 * key path; start refuses a taken port before starting anything; SIGTERM stops the
 * process and its FFmpeg children; two `onair ingest` on one host, with the default admin
 * settings, both start, each with its own admin listener.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { verifyToken } from '../src/origin/signed-urls.js';
import { startOnairProcess } from './helpers/onair-process.js';
import { makeTestCa } from './helpers/test-certificates.js';
import { freeTcpPort, freeUdpPort } from './helpers/ports.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function configFile(t: Test, text: string): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'onair-cli-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'channels.yaml');
  await writeFile(path, text);
  return path;
}

function channelsYaml(options: { port: number; srtPort: number; bitrate?: string; store?: string; adminPort?: number }): string {
  return `store: ${options.store ?? 'memory'}
origin:
  host: 127.0.0.1
  port: ${options.port}
admin:
  port: ${options.adminPort ?? 0}
hls:
  segmentSeconds: 1
  windowSegments: 6
channels:
  - id: fip
    renditions:
      - { id: lofi,  bitrate: ${options.bitrate ?? '32k'} }
      - { id: hifi,  bitrate: 192k }
    inputs:
      - { id: main, url: "srt://127.0.0.1:${options.srtPort}?mode=listener", srt: { passphrase: onair-test-passphrase } }
`;
}

function childPids(pid: number): Promise<number[]> {
  return new Promise((resolve) => {
    const ps = spawn('ps', ['-o', 'pid=', '--ppid', String(pid)]);
    let out = '';
    ps.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    ps.on('exit', () => resolve(out.split('\n').map((line) => Number(line.trim())).filter((value) => value > 0)));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('check prints the resolved config of the issue file', async (t) => {
  const path = await configFile(t, channelsYaml({ port: 8080, srtPort: 9000, store: 'redis://127.0.0.1:6379/0' }));
  const result = await runCli(['check', '--config', path]);
  t.equal(result.code, 0, 'exits 0');
  t.match(result.stdout, /config is valid/);
  t.match(result.stdout, /bitrate: 32k/, 'bitrates are printed in the unit they were written in');
  t.match(result.stdout, /segmentSeconds: 1/);
  t.match(result.stdout, /hot standby: run a second `onair ingest`/, 'a Redis store can have a standby packager');
});

t.test('check says that the memory store has no hot standby', async (t) => {
  const path = await configFile(t, channelsYaml({ port: 8080, srtPort: 9000 }));
  const result = await runCli(['check', '--config', path]);
  t.equal(result.code, 0);
  t.match(result.stdout, /store: memory .* no hot standby/);
});

t.test('check shows no secret: passphrases, keys, tokens, webhook secrets and URL credentials are ***', async (t) => {
  const secrets = ['srt-passphrase-value', 'signing-key-value-of-32-characters-or-more', 'api-token-value-0123', 'ingest-token-value-0123', 'webhook-secret-value', 'redis-password-value', 'url-token-value'];
  const path = await configFile(
    t,
    `store: redis://default:redis-password-value@127.0.0.1:6379/0
signing: { key: signing-key-value-of-32-characters-or-more }
api: { tokens: [api-token-value-0123] }
listeners: { ingestTokens: [ingest-token-value-0123] }
recordings:
  webhook: { url: "https://cms.example/hook?token=url-token-value", secret: webhook-secret-value }
channels:
  - id: fip
    renditions: [{ id: hifi, bitrate: 192k }]
    inputs: [{ id: main, url: "srt://127.0.0.1:9000?mode=listener", srt: { passphrase: srt-passphrase-value } }]
`,
  );
  const result = await runCli(['check', '--config', path]);
  t.equal(result.code, 0);
  for (const secret of secrets) t.notOk(`${result.stdout}${result.stderr}`.includes(secret), `${secret} is not printed`);
  t.match(result.stdout, /passphrase: "\*\*\*"/);
  t.match(result.stdout, /redis:\/\/\*\*\*@127\.0\.0\.1:6379\/0/);
  t.match(result.stdout, /token=\*\*\*/);
  t.match(result.stdout, /mode=listener/, 'the rest of the config is shown');
});

t.test('check refuses an SRT listener without a passphrase, and warns about an input allowed to take any sender', async (t) => {
  const open = await configFile(t, channelsYaml({ port: 8080, srtPort: 9000 }).replace(', srt: { passphrase: onair-test-passphrase }', ''));
  const refused = await runCli(['check', '--config', open]);
  t.equal(refused.code, 2);
  t.match(refused.stderr, /^onair: channels\[0\]\.inputs\[0\]\.srt\.passphrase: an SRT listener accepts any caller/);
  const allowed = await configFile(
    t,
    channelsYaml({ port: 8080, srtPort: 9000 }) + '      - { id: backup, url: "udp://0.0.0.0:5000?pkt_size=1316&token=abc", allowUnauthenticated: true }\n',
  );
  const warned = await runCli(['check', '--config', allowed]);
  t.equal(warned.code, 0, 'allowed, with a warning');
  t.match(warned.stderr, /warning: channels\[0\]\.inputs\[1\] \(udp:\/\/0\.0\.0\.0:5000\?pkt_size=1316&token=\*\*\*\) accepts audio from any sender/);
  t.match(warned.stdout, /# warning: channels\[0\]\.inputs\[1\] .* accepts audio from any sender/);
  t.notMatch(warned.stderr, /inputs\[0\]/, 'the listener with a passphrase is not warned about');
});

t.test('check reads the TLS files as start-up does: a missing file or a key of another certificate is refused naming the key', async (t) => {
  const ca = await makeTestCa(t);
  const good = await ca.issue('good', '1A01');
  const other = await ca.issue('other', '1A02');
  const withTls = (section: 'origin' | 'admin', files: { certFile: string; keyFile: string }): string =>
    channelsYaml({ port: 8080, srtPort: 9000 }).replace(`${section}:\n`, `${section}:\n  tls: { certFile: ${files.certFile}, keyFile: ${files.keyFile} }\n`);
  const accepted = await runCli(['check', '--config', await configFile(t, withTls('origin', good))]);
  t.equal(accepted.code, 0, `a readable, matching pair passes (${accepted.stderr.trim()})`);
  const missing = await runCli(['check', '--config', await configFile(t, withTls('origin', { ...good, certFile: `${ca.dir}/absent.pem` }))]);
  t.equal(missing.code, 2, 'a missing certificate exits 2');
  t.match(missing.stderr, /origin\.tls\.certFile/, `named: ${missing.stderr.trim()}`);
  const mismatched = await runCli(['check', '--config', await configFile(t, withTls('admin', { certFile: good.certFile, keyFile: other.keyFile }))]);
  t.equal(mismatched.code, 2, "another certificate's key exits 2");
  t.match(mismatched.stderr, /admin\.tls\.keyFile/, `named: ${mismatched.stderr.trim()}`);
});

t.test('check with a bad bitrate exits non-zero naming the key path', async (t) => {
  const path = await configFile(t, channelsYaml({ port: 8080, srtPort: 9000, bitrate: 'loud' }));
  const result = await runCli(['check', '--config', path]);
  t.equal(result.code, 2, 'exits 2');
  t.match(result.stderr, /^onair: channels\[0\]\.renditions\[0\]\.bitrate: /, 'the message starts with the key path');
  t.equal(result.stderr.trim().split('\n').length, 1, 'one line: one clear error');
});

const SIGNING_KEY = 'onair-cli-test-signing-key-0123456789';

function signedChannelsYaml(): string {
  return `signing:
  key: ${SIGNING_KEY}
channels:
  - id: fip
    access: signed
    renditions: [{ id: hifi, bitrate: 192k }]
    inputs: [{ id: main, url: "srt://127.0.0.1:9000?mode=listener", srt: { passphrase: onair-test-passphrase } }]
  - id: jazz
    renditions: [{ id: hifi, bitrate: 192k }]
    inputs: [{ id: main, url: "srt://127.0.0.1:9001?mode=listener", srt: { passphrase: onair-test-passphrase } }]
`;
}

t.test('sign prints a master playlist path whose token the origin accepts for the whole channel', async (t) => {
  const path = await configFile(t, signedChannelsYaml());
  const before = Math.floor(Date.now() / 1000);
  const result = await runCli(['sign', '--config', path, '--channel', 'fip', '--ttl', '2h']);
  const after = Math.ceil(Date.now() / 1000);
  t.equal(result.code, 0, result.stderr);
  const match = /^\/fip\/fip\.m3u8\?token=(\S+)\n$/.exec(result.stdout);
  if (!match) return t.fail(`unexpected output ${JSON.stringify(result.stdout)}`);
  const token = match[1]!;
  const check = verifyToken(SIGNING_KEY, token, '/fip/hifi/100-1.ts', Date.now() / 1000);
  t.ok(check.ok, 'the token covers the segments of fip too');
  if (check.ok) t.ok(check.expiresAt >= before + 7200 && check.expiresAt <= after + 7200, 'expires after --ttl');
  t.same(verifyToken(SIGNING_KEY, token, '/jazz/jazz.m3u8', Date.now() / 1000), { ok: false, reason: 'wrong-path' });

  const fromEnvironment = await runCli(['sign', '--config', path, '--channel', 'fip'], { env: { ONAIR_SIGNING_KEY: `${SIGNING_KEY}-from-env` } });
  const envToken = /token=(\S+)/.exec(fromEnvironment.stdout)?.[1];
  t.ok(verifyToken(`${SIGNING_KEY}-from-env`, envToken, '/fip/fip.m3u8', Date.now() / 1000).ok, 'ONAIR_SIGNING_KEY overrides the file');
});

t.test('sign refuses an unknown or public channel and a bad --ttl, and is listed in the usage', async (t) => {
  const path = await configFile(t, signedChannelsYaml());
  for (const [args, message] of [
    [['--channel', 'rock'], /no channel "rock"/],
    [[], /--channel <id> is required/],
    [['--channel', 'jazz'], /channel "jazz" is public/],
    [['--channel', 'fip', '--ttl', 'soon'], /--ttl: expected a duration/],
    [['--channel', 'fip', '--ttl', '0'], /--ttl: expected a duration/],
  ] as const) {
    const result = await runCli(['sign', '--config', path, ...args]);
    t.equal(result.code, 1, args.join(' '));
    t.match(result.stderr, message, args.join(' '));
    t.equal(result.stdout, '', `${args.join(' ')}: nothing on stdout`);
  }
  const usage = await runCli(['--help']);
  t.match(usage.stdout, /^  sign /m);
});

t.test('start refuses a taken origin port before starting anything', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as { port: number }).port;
  const path = await configFile(t, channelsYaml({ port, srtPort: await freeUdpPort() }));
  const result = await runCli(['start', '--config', path]);
  t.equal(result.code, 1, 'exits non-zero');
  t.match(result.stderr, /origin\.port: 127\.0\.0\.1:\d+ is already in use/, 'names the key and the resource');
  t.notMatch(result.stderr, /ingest started/, 'nothing half-started');
});

t.test('start serves the channel and SIGTERM stops it with its FFmpeg children', async (t) => {
  const port = await freeTcpPort();
  const path = await configFile(t, channelsYaml({ port, srtPort: await freeUdpPort() }));
  const child: ChildProcess = spawn(process.execPath, [CLI, 'start', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  // Preflight runs `ffmpeg -protocols` as a child too: count children once the ingest has started.
  for (let attempt = 0; attempt < 60 && !stderr.includes('"msg":"ingest started"'); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  let encoders: number[] = [];
  for (let attempt = 0; attempt < 60 && encoders.length === 0; attempt++) {
    encoders = await childPids(child.pid!);
    if (encoders.length === 0) await new Promise((resolve) => setTimeout(resolve, 250));
  }
  t.equal(encoders.length, 1, 'one FFmpeg encoder runs for the one input');
  const master = await fetch(`http://127.0.0.1:${port}/fip/fip.m3u8`);
  t.equal(master.status, 404, 'the origin answers (no audio yet, so no playlist: 404)');
  t.equal(master.headers.get('cache-control'), 'public, max-age=1', 'a miss is cacheable for a second at most');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 after SIGTERM');
  t.notOk(encoders.some(isAlive), 'the FFmpeg child is gone');
  t.match(stderr, /"msg":"stopping"/);
});

t.test('start refuses a taken admin port, naming admin.port, before starting anything', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const adminPort = (blocker.address() as { port: number }).port;
  const path = await configFile(t, channelsYaml({ port: await freeTcpPort(), srtPort: await freeUdpPort(), adminPort }));
  const result = await runCli(['start', '--config', path]);
  t.equal(result.code, 1, 'exits non-zero');
  t.match(result.stderr, /admin\.port: 127\.0\.0\.1:\d+ is already in use/, 'names the key and the address');
  t.notMatch(result.stderr, /origin listening|ingest started/, 'nothing half-started');
});

/** The URL an onair process logged for its admin listener (pino JSON lines). */
function adminUrlOf(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"admin listening')) continue;
    return (JSON.parse(line) as { url: string }).url;
  }
  return undefined;
}

t.test('two ingests on one host with the default admin settings both start, each scrapeable on its own port', async (t) => {
  // No admin or metrics keys: the defaults under test (the first free port from 9464).
  const config = async (): Promise<object> => ({
    store: 'memory',
    hls: { segmentSeconds: 1 },
    channels: [{ id: 'fip', renditions: [{ id: 'lofi', bitrate: '32k' }], inputs: [{ id: 'main', url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { passphrase: 'onair-test-passphrase' } }] }],
  });
  const first = await startOnairProcess(t, { role: 'ingest', config: await config(), readyPattern: /"msg":"ingest started"/ });
  const second = await startOnairProcess(t, { role: 'ingest', config: await config(), readyPattern: /"msg":"ingest started"/ });
  const urls = [adminUrlOf(first.output()), adminUrlOf(second.output())];
  t.ok(urls.every((url) => url !== undefined), `both log where their admin listener is: ${urls.join(', ')}`);
  t.not(urls[0], urls[1], 'on two ports');
  for (const url of urls) {
    t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'on loopback');
    const response = await fetch(`${url}/metrics`);
    t.equal(response.status, 200, `${url}/metrics answers`);
    t.match(await response.text(), /onair_segments_published_total/);
  }
  t.match(second.output(), /"msg":"admin listening/, 'the second says where it listens');
});

t.test('origin --workers refuses a bad count, another command, and the memory store, before starting anything', async (t) => {
  const memory = await configFile(t, channelsYaml({ port: await freeTcpPort(), srtPort: await freeUdpPort() }));
  const redis = await configFile(t, channelsYaml({ port: await freeTcpPort(), srtPort: await freeUdpPort(), store: 'redis://127.0.0.1:1/0' }));
  const cases: [string[], RegExp][] = [
    [['origin', '--config', memory, '--workers', '2'], /--workers: expected a Redis store/],
    [['origin', '--config', redis, '--workers', '0'], /--workers: expected a number of workers between 1 and 64/],
    [['origin', '--config', redis, '--workers', 'many'], /--workers: expected a number of workers/],
    [['start', '--config', redis, '--workers', '2'], /--workers: only `onair origin` runs workers/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(args);
    t.equal(result.code, 2, args.join(' '));
    t.match(result.stderr, message);
  }
});
