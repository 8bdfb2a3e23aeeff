/**
 * `npm run bench:soak -- --minutes N`: onair for N minutes on a real redis-server, two
 * channels fed by FFmpeg test tones over SRT (`fip`: three renditions; `fip-ll`: Low-Latency
 * HLS with a DVR window), a verifying listener on every rendition of both, and samples of the
 * onair process's RSS and V8 heap and of Redis's used memory. Memory must be flat once the DVR
 * window has filled, with zero violations (docs/architecture.md, "Store": TTLs keep memory flat).
 * It prints the samples, the slope of each series after the fill (MB per hour), and the
 * verifier's findings; it asserts nothing (figures go to the README).
 *
 *   node dist/bench/soak.js [--minutes 60] [--sample-seconds 30] [--dvr-seconds 600] [--samples-file samples.json]
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { resolveConfig } from '../src/config/load-config.js';
import { TestSignalSender } from '../src/ffmpeg/test-signal-sender.js';
import { HlsVerifier, type VerifierReport } from '../test/helpers/hls-verifier.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { sleep } from '../test/helpers/wait-until.js';
import { formatTable, median } from './report.js';
import { freeTcpPort, freeUdpPort } from './system.js';

const CLI_PATH = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const RENDITIONS = [
  { id: 'lofi', bitrate: '32k' },
  { id: 'midfi', bitrate: '96k' },
  { id: 'hifi', bitrate: '192k' },
];
const CHANNELS = ['fip', 'fip-ll'] as const;
const SRT_PASSPHRASE = 'soak-bench-passphrase';
const MB = 1024 * 1024;

interface SoakOptions {
  minutes: number;
  sampleSeconds: number;
  dvrSeconds: number;
  /** Where to write every sample as JSON (`--samples-file`), for plotting. */
  samplesFile: string | undefined;
}

interface Sample {
  atSeconds: number;
  rssBytes: number;
  heapUsedBytes: number | undefined;
  redisUsedBytes: number;
}

function parseOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: { minutes: { type: 'string' }, 'sample-seconds': { type: 'string' }, 'dvr-seconds': { type: 'string' }, 'samples-file': { type: 'string' } },
  });
  const number = (value: string | undefined, fallback: number, name: string): number => {
    const parsed = value === undefined ? fallback : Number(value);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${name}: expected a positive number, got "${value}"`);
    return parsed;
  };
  const minutes = number(values.minutes, 60, 'minutes');
  return {
    minutes,
    sampleSeconds: number(values['sample-seconds'], 30, 'sample-seconds'),
    // The DVR window must fill well before the end, or "flat after the fill" means nothing.
    dvrSeconds: number(values['dvr-seconds'], Math.min(600, Math.floor((minutes * 60) / 6)), 'dvr-seconds'),
    samplesFile: values['samples-file'],
  };
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

async function heapUsedOf(metricsUrl: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
    const match = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([\d.e+]+)/m.exec(text);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function redisUsedOf(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

/** Least-squares slope of `values` over `seconds`, per hour. */
function slopePerHour(seconds: number[], values: number[]): number {
  const n = seconds.length;
  if (n < 2) return 0;
  const meanX = seconds.reduce((sum, x) => sum + x, 0) / n;
  const meanY = values.reduce((sum, y) => sum + y, 0) / n;
  let numerator = 0;
  let denominator = 0;
  for (let index = 0; index < n; index++) {
    numerator += (seconds[index]! - meanX) * (values[index]! - meanY);
    denominator += (seconds[index]! - meanX) ** 2;
  }
  return denominator === 0 ? 0 : (numerator / denominator) * 3600;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const directory = await mkdtemp(join(tmpdir(), 'onair-soak-'));
  const originPort = await freeTcpPort();
  const adminPort = await freeTcpPort();
  const srtPorts = [await freeUdpPort(), await freeUdpPort()];
  // The tests' private redis-server: a free port, no persistence, noeviction (Redis's default).
  const redisServer = await startRedisServer();
  const redis = new Redis({ port: redisServer.port, host: '127.0.0.1' });
  const config = {
    store: `${redisServer.url}/0`,
    origin: { host: '127.0.0.1', port: originPort },
    admin: { host: '127.0.0.1', port: adminPort },
    hls: { segmentSeconds: 4, windowSegments: 6 },
    channels: CHANNELS.map((id, index) => ({
      id,
      renditions: RENDITIONS,
      inputs: [{ id: 'main', url: `srt://127.0.0.1:${srtPorts[index]}?mode=listener&passphrase=${SRT_PASSPHRASE}` }],
      ...(id === 'fip-ll' ? { lowLatency: true, partSeconds: '1s', dvrSeconds: `${options.dvrSeconds}s` } : {}),
    })),
  };
  // Builds before the admin listener serve /metrics on the origin port: leave the key out there.
  if (!acceptsConfig(config)) delete (config as Partial<typeof config>).admin;
  const configPath = join(directory, 'soak.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const onair = spawn(process.execPath, [CLI_PATH, 'start', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ONAIR_LOG_LEVEL: 'warn' } });
  let onairLog = '';
  onair.stderr!.setEncoding('utf8').on('data', (text: string) => (onairLog = (onairLog + text).slice(-20_000)));
  const logger = pino({ level: 'warn' });
  const senders = CHANNELS.map(
    (_, index) =>
      new TestSignalSender({
        outputUrl: `srt://127.0.0.1:${srtPorts[index]}?mode=caller&passphrase=${SRT_PASSPHRASE}`,
        logger,
        initialDelayMs: 1000,
        frequency: index === 0 ? 440 : 660,
      }),
  );
  senders.forEach((sender) => sender.start());

  const base = `http://127.0.0.1:${originPort}`;
  const metricsUrl = await findMetricsUrl([`http://127.0.0.1:${adminPort}/metrics`, `${base}/metrics`]);
  progress(`bench:soak: onair pid ${onair.pid}, origin ${base}, metrics ${metricsUrl ?? 'not found'}, redis :${redisServer.port}, ${options.minutes} min, DVR ${options.dvrSeconds} s`);
  await waitForPlaylists(base);
  const verifiers = CHANNELS.map((channel) => new HlsVerifier({ baseUrl: base, channel, renditions: RENDITIONS.map((r) => r.id), pollIntervalMs: 1000 }));
  verifiers.forEach((verifier) => verifier.start());

  const samples: Sample[] = [];
  // Ctrl-C ends the soak early, with its report, and stops everything it started.
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => (interrupted = true));
  const started = performance.now();
  const endAt = started + options.minutes * 60_000;
  try {
    while (performance.now() < endAt && !interrupted) {
      if (onair.exitCode !== null) throw new Error(`onair exited (${onair.exitCode}) during the soak:\n${onairLog.slice(-3000)}`);
      samples.push({
        atSeconds: (performance.now() - started) / 1000,
        rssBytes: rssOf(onair.pid!),
        heapUsedBytes: metricsUrl ? await heapUsedOf(metricsUrl) : undefined,
        redisUsedBytes: await redisUsedOf(redis),
      });
      const last = samples.at(-1)!;
      if (samples.length % 10 === 1) {
        progress(`  ${(last.atSeconds / 60).toFixed(1)} min: RSS ${(last.rssBytes / MB).toFixed(1)} MB, heap ${((last.heapUsedBytes ?? 0) / MB).toFixed(1)} MB, Redis ${(last.redisUsedBytes / MB).toFixed(1)} MB`);
      }
      for (let waited = 0; waited < options.sampleSeconds * 1000 && !interrupted && performance.now() < endAt; waited += 250) await sleep(250);
    }
  } finally {
    const reports = await Promise.all(verifiers.map((verifier) => verifier.stop()));
    await Promise.all(senders.map((sender) => sender.close()));
    onair.kill('SIGTERM');
    await new Promise((resolve) => onair.once('exit', resolve));
    redis.disconnect();
    await redisServer.stop();
    await rm(directory, { recursive: true, force: true });
    printReport(options, samples, reports);
  }
}

function acceptsConfig(config: object): boolean {
  try {
    resolveConfig(config, {});
    return true;
  } catch {
    return false;
  }
}

async function findMetricsUrl(candidates: string[]): Promise<string | undefined> {
  for (let attempt = 0; attempt < 60; attempt++) {
    for (const url of candidates) {
      if ((await heapUsedOf(url)) !== undefined) return url;
    }
    await sleep(500);
  }
  return undefined;
}

async function waitForPlaylists(base: string): Promise<void> {
  for (let attempt = 0; attempt < 120; attempt++) {
    const ready = await Promise.all(
      CHANNELS.map(async (channel) => {
        try {
          const response = await fetch(`${base}/${channel}/${channel}_hifi.m3u8`, { signal: AbortSignal.timeout(2000) });
          return response.ok && (await response.text()).includes('#EXTINF');
        } catch {
          return false;
        }
      }),
    );
    if (ready.every(Boolean)) return;
    await sleep(500);
  }
  throw new Error('no playlist with a segment within 60 s');
}

function printReport(options: SoakOptions, samples: Sample[], reports: VerifierReport[]): void {
  // Flat is judged once the store holds all it ever will: segments live 2 × DVR + 2 × TD + 30 s
  // (docs/architecture.md, "Store"), so Redis fills for that long; a minute more for margin.
  const filledAt = 2 * options.dvrSeconds + 2 * 4 + 30 + 60;
  const after = samples.filter((sample) => sample.atSeconds >= filledAt);
  const series = [
    { name: 'onair RSS', values: (list: Sample[]) => list.map((sample) => sample.rssBytes) },
    { name: 'onair V8 heap used', values: (list: Sample[]) => list.map((sample) => sample.heapUsedBytes ?? Number.NaN) },
    { name: 'Redis used_memory', values: (list: Sample[]) => list.map((sample) => sample.redisUsedBytes) },
  ];
  const rows = series.map(({ name, values }) => {
    const all = values(samples);
    const flat = values(after);
    const firstQuarter = flat.slice(0, Math.max(1, Math.floor(flat.length / 4)));
    const lastQuarter = flat.slice(-Math.max(1, Math.floor(flat.length / 4)));
    return [
      name,
      (all[0]! / MB).toFixed(1),
      flat.length > 0 ? (median(firstQuarter) / MB).toFixed(1) : '–',
      flat.length > 0 ? (median(lastQuarter) / MB).toFixed(1) : '–',
      (Math.max(...all.filter(Number.isFinite)) / MB).toFixed(1),
      flat.length > 1 ? (slopePerHour(after.map((sample) => sample.atSeconds), flat) / MB).toFixed(2) : '–',
    ];
  });
  const violations = reports.flatMap((report, index) => report.errors.map((error) => `${CHANNELS[index]}: ${error}`));
  const segmentsChecked = reports.map((report, index) => `${CHANNELS[index]} ${Object.values(report.segments).reduce((sum, list) => sum + list.length, 0)}`);
  const lines = [
    `onair soak: ${options.minutes} min on redis-server, channels fip (3 renditions) and fip-ll (LL-HLS, 1 s parts, DVR ${options.dvrSeconds} s), 4 s segments`,
    `${samples.length} samples every ${options.sampleSeconds} s; "after fill" = from ${filledAt} s (the segment TTL of the DVR channel + 1 min) to the end`,
    '',
    ...formatTable(['series', 'start MB', 'after fill, first quarter MB', 'after fill, last quarter MB', 'max MB', 'slope after fill MB/h'], rows),
    '',
    `verifying listener: ${violations.length} violation(s); segments checked: ${segmentsChecked.join(', ')}; `
      + `longest gap between new segments ${Math.max(...reports.map((report) => report.maxNewSegmentGapMs))} ms`,
    ...violations.slice(0, 20).map((violation) => `  ${violation}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (options.samplesFile) writeFileSync(options.samplesFile, JSON.stringify(samples));
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:soak: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exitCode = 1;
});
