/**
 * `npm run bench:icecast -- --listeners N`: N concurrent progressive listeners of a 128 kb/s AAC
 * mount against onair's origin and against icecast2 relaying the same mount, on this machine, in
 * the same run, with the same load client. Prints for both: CPU per 1,000 listeners (of the
 * serving process over the steady state, from /proc/<pid>/stat), the ratio onair/icecast2, RSS per
 * listener, connect-to-first-audio p50/p99, and dropped listeners. Target (issue 13): the ratio is
 * at most 1.0 and 5,000 listeners run on this 2-core machine with no drops. Reported, never
 * asserted.
 *
 * Method (docs/architecture.md, "Icecast relay tests and benchmark"):
 * 1. icecast-stack.ts starts a redis-server, `onair ingest` (a tone over SRT, one 128k
 *    rendition) and `onair origin`, then icecast2 relaying the origin's /fip-hifi.aac. Both
 *    servers run the whole time; only the one under load has listeners.
 * 2. A phase: the server's idle CPU is sampled for a few seconds; the listeners connect evenly
 *    over `--ramp` seconds from worker threads (icecast-worker.ts: raw sockets, an Icecast-style
 *    GET with `Icy-MetaData: 1`, bytes counted, nothing decoded), settle for `--settle` seconds,
 *    and are measured over `--duration` seconds: the server process's CPU time and RSS at the
 *    window's edges, bytes per listener, connect-to-first-audio. Then every listener hangs up.
 * 3. `--runs R` repeats the pair, alternating which server goes first; the table shows medians
 *    (drops and start failures are summed). CPU per 1,000 listeners is the process's CPU over the
 *    window, as a share of one core, × 1000 / N (its idle CPU included, printed beside). RSS per
 *    listener is (RSS at the window's end − RSS before the phase) / N.
 * 4. A listener is dropped when the server closes its connection (or it fails) after its first
 *    audio; it is behind when it received less than 90 % of the median listener's bytes in the
 *    window (a server that cannot keep up shows here before it drops anyone).
 * 5. The load generator's own CPU and event-loop utilization are printed, so a saturated client
 *    is never blamed on a server.
 *
 *   node dist/bench/icecast.js --listeners N [--runs 3] [--duration 30] [--ramp 10] [--settle 5]
 *     [--workers W] [--metadata yes|no] [--profile DIR]
 *
 * --profile DIR runs `onair origin` under `node --cpu-prof` and leaves its .cpuprofile in DIR.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { ICECAST_PATH, icecastUnavailable } from './icecast-server.js';
import { IcecastBenchStack, MOUNT_PATH, RENDITION } from './icecast-stack.js';
import type { IcecastTally, IcecastWorkerJob } from './icecast-worker.js';
import { formatTable, median } from './report.js';
import { processCpuSeconds, sleep } from './system.js';

const WORKER_URL = new URL('./icecast-worker.js', import.meta.url);
const SEGMENT_SECONDS = 2;
const RATIO_TARGET = 1.0;
const LISTENERS_TARGET = 5000;
/** One worker thread per this many listeners, at most one per core. */
const LISTENERS_PER_WORKER = 2500;
const WORKER_BOOT_MS = 1000;
const IDLE_SAMPLE_MS = 3000;
/** After a phase: time for the server to notice its listeners are gone. */
const COOL_DOWN_MS = 3000;
const BEHIND_SHARE = 0.9;

type Server = 'onair' | 'icecast2';
const SERVERS: Server[] = ['onair', 'icecast2'];

interface BenchOptions {
  listeners: number;
  runs: number;
  durationSeconds: number;
  rampSeconds: number;
  settleSeconds: number;
  workers: number;
  metadata: boolean;
  profileDirectory: string | undefined;
}

interface Target {
  server: Server;
  port: number;
  pid: number;
}

interface PhaseResult {
  server: Server;
  cpuPercent: number;
  idleCpuPercent: number;
  rssPerListenerKb: number;
  firstAudioP50Ms: number;
  firstAudioP99Ms: number;
  playing: number;
  dropped: Record<string, number>;
  failedToStart: Record<string, number>;
  behind: number;
  medianKbps: number;
  loadCpuPercent: number;
  loadLoopUtilization: number;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      listeners: { type: 'string' },
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '30' },
      ramp: { type: 'string', default: '10' },
      settle: { type: 'string', default: '5' },
      workers: { type: 'string' },
      metadata: { type: 'string', default: 'yes' },
      profile: { type: 'string' },
    },
  });
  const integer = (name: string, text: string | undefined, minimum: number): number => {
    if (text === undefined) throw new Error(`--${name} N is required`);
    const value = Number(text);
    if (!Number.isInteger(value) || value < minimum) throw new Error(`--${name}: expected an integer ≥ ${minimum}, got "${text}"`);
    return value;
  };
  if (values.metadata !== 'yes' && values.metadata !== 'no') throw new Error(`--metadata: expected yes or no, got "${values.metadata}"`);
  const listeners = integer('listeners', values.listeners, 1);
  return {
    listeners,
    runs: integer('runs', values.runs, 1),
    durationSeconds: integer('duration', values.duration, 1),
    rampSeconds: integer('ramp', values.ramp, 0),
    settleSeconds: integer('settle', values.settle, 0),
    workers: values.workers === undefined ? Math.max(1, Math.min(cpus().length, Math.ceil(listeners / LISTENERS_PER_WORKER))) : integer('workers', values.workers, 1),
    metadata: values.metadata === 'yes',
    profileDirectory: values.profile === undefined ? undefined : resolve(values.profile),
  };
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const unavailable = icecastUnavailable();
  if (unavailable) throw new Error(unavailable);
  const started = performance.now();
  const stack = new IcecastBenchStack();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`bench:icecast: ${signal}, stopping`);
      process.exit(130);
    });
  }
  try {
    progress('starting redis-server, onair ingest (a tone over SRT) and onair origin; waiting for the mount...');
    const origin = await stack.startOnair({ segmentSeconds: SEGMENT_SECONDS, maxListeners: options.listeners + 16, profileDirectory: options.profileDirectory });
    progress(`starting icecast2 (${ICECAST_PATH}) relaying ${MOUNT_PATH}...`);
    const icecast = await stack.startIcecastRelay(origin.port, options.listeners + 16);
    const targets: Record<Server, Target> = {
      onair: { server: 'onair', port: origin.port, pid: origin.pid },
      icecast2: { server: 'icecast2', port: icecast.port, pid: icecast.pid },
    };
    const results: PhaseResult[] = [];
    for (let run = 0; run < options.runs; run++) {
      const order = run % 2 === 0 ? SERVERS : [...SERVERS].reverse();
      for (const server of order) {
        progress(`run ${run + 1}/${options.runs}: ${options.listeners} listeners on ${server}...`);
        const result = await runPhase(targets[server], options);
        results.push(result);
        progress(`  ${describePhase(result, options.listeners)}`);
      }
    }
    await stack.stop();
    printReport(options, results, (performance.now() - started) / 1000);
  } finally {
    await stack.stop();
  }
}

async function runPhase(target: Target, options: BenchOptions): Promise<PhaseResult> {
  const idleStart = { at: performance.now(), cpu: processCpuSeconds(target.pid) };
  await sleep(IDLE_SAMPLE_MS);
  const idleCpuPercent = ((processCpuSeconds(target.pid) - idleStart.cpu) / ((performance.now() - idleStart.at) / 1000)) * 100;
  const rssBefore = rssBytes(target.pid);

  const now = performance.timeOrigin + performance.now();
  const rampStartMs = now + WORKER_BOOT_MS;
  const windowStartMs = rampStartMs + options.rampSeconds * 1000 + options.settleSeconds * 1000;
  const windowEndMs = windowStartMs + options.durationSeconds * 1000;
  const workerCount = Math.min(options.workers, options.listeners);
  const workers = Array.from({ length: workerCount }, (_, index) => {
    const job: IcecastWorkerJob = {
      host: '127.0.0.1',
      port: target.port,
      path: MOUNT_PATH,
      metadata: options.metadata,
      firstListener: index,
      stride: workerCount,
      totalListeners: options.listeners,
      rampStartMs,
      rampMs: options.rampSeconds * 1000,
      windowStartMs,
      windowEndMs,
    };
    return new Worker(WORKER_URL, { workerData: job });
  });
  try {
    const [tallies, window] = await Promise.all([Promise.all(workers.map(tallyOf)), sampleWindow(target.pid, windowStartMs, windowEndMs)]);
    await sleep(COOL_DOWN_MS);
    return summarize(target.server, options, tallies, window, idleCpuPercent, rssBefore);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

interface WindowSample {
  seconds: number;
  serverCpuSeconds: number;
  loadCpuSeconds: number;
  rssAtEnd: number;
}

async function sampleWindow(pid: number, startMs: number, endMs: number): Promise<WindowSample> {
  await sleepUntil(startMs);
  const first = { at: performance.now(), cpu: processCpuSeconds(pid), load: ownCpuSeconds() };
  await sleepUntil(endMs);
  const rssAtEnd = rssBytes(pid);
  return {
    seconds: (performance.now() - first.at) / 1000,
    serverCpuSeconds: processCpuSeconds(pid) - first.cpu,
    loadCpuSeconds: ownCpuSeconds() - first.load,
    rssAtEnd,
  };
}

function summarize(server: Server, options: BenchOptions, tallies: IcecastTally[], window: WindowSample, idleCpuPercent: number, rssBefore: number): PhaseResult {
  const firstAudio = tallies.flatMap((tally) => tally.firstAudioMs).sort((a, b) => a - b);
  const windowBytes = tallies.flatMap((tally) => tally.windowBytes);
  const medianBytes = windowBytes.length > 0 ? median(windowBytes) : 0;
  const sum = (pick: (tally: IcecastTally) => Record<string, number>): Record<string, number> => {
    const total: Record<string, number> = {};
    for (const tally of tallies) for (const [cause, count] of Object.entries(pick(tally))) total[cause] = (total[cause] ?? 0) + count;
    return total;
  };
  return {
    server,
    cpuPercent: (window.serverCpuSeconds / window.seconds) * 100,
    idleCpuPercent,
    rssPerListenerKb: (window.rssAtEnd - rssBefore) / 1024 / options.listeners,
    firstAudioP50Ms: percentile(firstAudio, 50),
    firstAudioP99Ms: percentile(firstAudio, 99),
    playing: tallies.reduce((total, tally) => total + tally.playing, 0),
    dropped: sum((tally) => tally.dropped),
    failedToStart: sum((tally) => tally.failedToStart),
    behind: windowBytes.filter((bytes) => bytes < BEHIND_SHARE * medianBytes).length,
    medianKbps: (medianBytes * 8) / 1000 / options.durationSeconds,
    loadCpuPercent: (window.loadCpuSeconds / window.seconds) * 100,
    loadLoopUtilization: Math.max(...tallies.map((tally) => tally.loopUtilization)),
  };
}

function cpuPer1000(result: PhaseResult, listeners: number): number {
  return (result.cpuPercent * 1000) / listeners;
}

const countOf = (counts: Record<string, number>): number => Object.values(counts).reduce((sum, count) => sum + count, 0);
const describeCounts = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .map(([cause, count]) => `${count} ${cause}`)
    .join(', ') || 'none';

function describePhase(result: PhaseResult, listeners: number): string {
  return (
    `${result.playing}/${listeners} playing, CPU ${result.cpuPercent.toFixed(1)} % of a core (idle ${result.idleCpuPercent.toFixed(1)} %), ` +
    `${cpuPer1000(result, listeners).toFixed(2)} % per 1,000, RSS ${result.rssPerListenerKb.toFixed(1)} KiB/listener, first audio p99 ${result.firstAudioP99Ms.toFixed(0)} ms, ` +
    `dropped ${countOf(result.dropped)}, failed to start ${countOf(result.failedToStart)}, behind ${result.behind}, median ${result.medianKbps.toFixed(1)} kb/s; ` +
    `load client ${result.loadCpuPercent.toFixed(0)} % CPU, loop ${(result.loadLoopUtilization * 100).toFixed(0)} %`
  );
}

function printReport(options: BenchOptions, results: PhaseResult[], elapsedSeconds: number): void {
  const of = (server: Server): PhaseResult[] => results.filter((result) => result.server === server);
  const med = (server: Server, pick: (result: PhaseResult) => number): number => median(of(server).map(pick));
  const cpu = (server: Server): number => med(server, (result) => cpuPer1000(result, options.listeners));
  const ratio = cpu('onair') / cpu('icecast2');
  const lines = [
    `bench:icecast: ${options.listeners} progressive listeners of ${MOUNT_PATH} (AAC ${RENDITION.bitrate}, Icy-MetaData ${options.metadata ? '1' : 'off'}), ` +
      `${options.runs} run(s) per server, ${options.durationSeconds} s window after a ${options.rampSeconds} s ramp and ${options.settleSeconds} s settle, ` +
      `${options.workers} load thread(s), ${cpus().length} cores, ${elapsedSeconds.toFixed(0)} s in all`,
    '',
    ...formatTable(
      ['server', 'CPU % of a core', 'idle CPU %', 'CPU % per 1,000 listeners', 'RSS KiB / listener', 'first audio p50 / p99', 'dropped', 'failed to start', 'behind', 'median kb/s', 'load client CPU %'],
      SERVERS.map((server) => [
        server,
        med(server, (result) => result.cpuPercent).toFixed(1),
        med(server, (result) => result.idleCpuPercent).toFixed(1),
        cpu(server).toFixed(2),
        med(server, (result) => result.rssPerListenerKb).toFixed(1),
        `${med(server, (result) => result.firstAudioP50Ms).toFixed(0)} / ${med(server, (result) => result.firstAudioP99Ms).toFixed(0)} ms`,
        String(of(server).reduce((total, result) => total + countOf(result.dropped), 0)),
        String(of(server).reduce((total, result) => total + countOf(result.failedToStart), 0)),
        String(of(server).reduce((total, result) => total + result.behind, 0)),
        med(server, (result) => result.medianKbps).toFixed(1),
        med(server, (result) => result.loadCpuPercent).toFixed(0),
      ]),
    ),
    '',
    `CPU per listener, onair / icecast2: ${ratio.toFixed(2)} (target ≤ ${RATIO_TARGET.toFixed(1)}): ${ratio <= RATIO_TARGET ? 'met' : `missed by ${((ratio / RATIO_TARGET - 1) * 100).toFixed(0)} %`}`,
  ];
  for (const server of SERVERS) {
    const drops = of(server).reduce((total, result) => total + countOf(result.dropped) + countOf(result.failedToStart), 0);
    const causes = of(server).map((result) => `${describeCounts(result.dropped)} / ${describeCounts(result.failedToStart)}`);
    lines.push(`${server}: ${drops === 0 ? 'no listener dropped or refused' : `dropped / failed to start per run: ${causes.join('; ')}`}`);
  }
  if (options.listeners >= LISTENERS_TARGET) {
    const onairLost = of('onair').reduce((total, result) => total + countOf(result.dropped) + countOf(result.failedToStart) + result.behind, 0);
    lines.push(`${options.listeners} listeners on onair with no drop (target ${LISTENERS_TARGET}): ${onairLost === 0 ? 'met' : 'missed'}`);
  } else {
    lines.push(`(the listener target is ${LISTENERS_TARGET}: run with --listeners ${LISTENERS_TARGET} to check it)`);
  }
  if (options.profileDirectory) lines.push(`onair origin CPU profile: ${options.profileDirectory}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function tallyOf(worker: Worker): Promise<IcecastTally> {
  return new Promise((resolve, reject) => {
    worker.once('message', (tally: IcecastTally) => resolve(tally));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`a load-generator worker exited (${code}) before reporting`)));
  });
}

/** Resident set size of a process from /proc/<pid>/status (VmRSS), in bytes; 0 once it is gone. */
function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}


function sleepUntil(wallMs: number): Promise<void> {
  return sleep(Math.max(wallMs - (performance.timeOrigin + performance.now()), 0));
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:icecast failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
