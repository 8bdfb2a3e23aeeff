/**
 * `npm run bench:listeners -- --listeners N [--via varnish]`: N simulated hls.js listeners
 * (listeners-player.ts) play a live channel of a real onair, directly or through Varnish with
 * the shipped VCL, and the origin's load is measured. Prints client and origin requests per
 * second, the origin's CPU time per second, p50/p99 latency of playlists and segments, errors
 * and stalls. Target (issue): 10,000 listeners through Varnish with zero errors and zero
 * stalls, and the origin's load at 10,000 listeners at most 2 × its load at 100. Reported,
 * never asserted.
 *
 * Method:
 * 1. listeners-stack.ts starts onair (`start`, memory store, one channel, 32k + 96k, 4 s
 *    segments) fed by an FFmpeg test tone over SRT, waits until the playlists list 4 segments,
 *    and with `--via varnish` starts varnishd in front of it.
 * 2. Each phase (listeners-phase.ts): the listeners arrive evenly over `--ramp` seconds, get two
 *    target durations to settle, then are measured over `--duration` seconds. The baseline phase
 *    (`--baseline`, 100 listeners) runs first, then N, against the same processes; `--runs R`
 *    repeats the pair and the table shows medians (errors and stalls are summed).
 * 3. Origin load: requests that reached the origin per second (Varnish's MAIN.backend_req; the
 *    client's own count when direct) and the onair process's CPU time per second (/proc; its
 *    FFmpeg encoder is a separate process and not counted). Latency: from a request's start to
 *    its last byte, including the wait for a pooled connection.
 * 4. The load generator's own health is printed (event-loop utilization and delay per worker
 *    thread, CPU), so a stall is never blamed on the server when the generator was saturated.
 * 5. Connections: one worker thread per 5,000 listeners (at most one per core), each with a pool
 *    of `--connections` keep-alive connections that its listeners share, as listeners behind a
 *    CDN share its connections to Varnish (2 × 128 at 10,000 listeners, far below ulimit -n).
 *
 *   node dist/bench/listeners.js --listeners N [--via direct|varnish] [--baseline 100]
 *     [--duration 30] [--ramp 10] [--runs 1] [--workers W] [--connections 128]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { runPhase, type PhaseResult } from './listeners-phase.js';
import { LIVE_SYNC_DURATION_COUNT } from './listeners-player.js';
import { BenchStack, RENDITIONS, VARNISHD_PATH, type RunningVarnish } from './listeners-stack.js';
import { failureCount, latencyPercentile, REQUEST_KINDS, type PhaseTally } from './listeners-stats.js';
import { formatTable, median } from './report.js';

const SEGMENT_SECONDS = 4;
const ORIGIN_LOAD_RATIO_TARGET = 2;
/** One worker thread per this many listeners, at most one per core. */
const LISTENERS_PER_WORKER = 5000;
/** A generator thread this busy, or this late, may have caused stalls itself. */
const SATURATED_LOOP_UTILIZATION = 0.9;
const SATURATED_LAG_MS = 100;

type Via = 'direct' | 'varnish';

interface BenchOptions {
  listeners: number;
  via: Via;
  baseline: number;
  durationSeconds: number;
  rampSeconds: number;
  runs: number;
  workers: number | undefined;
  connections: number;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      listeners: { type: 'string' },
      via: { type: 'string', default: 'direct' },
      baseline: { type: 'string', default: '100' },
      duration: { type: 'string', default: '30' },
      ramp: { type: 'string', default: '10' },
      runs: { type: 'string', default: '1' },
      workers: { type: 'string' },
      connections: { type: 'string', default: '128' },
    },
  });
  const integer = (name: string, text: string | undefined, minimum: number): number => {
    if (text === undefined) throw new Error(`--${name} N is required`);
    const value = Number(text);
    if (!Number.isInteger(value) || value < minimum) throw new Error(`--${name}: expected an integer ≥ ${minimum}, got "${text}"`);
    return value;
  };
  if (values.via !== 'direct' && values.via !== 'varnish') throw new Error(`--via: expected direct or varnish, got "${values.via}"`);
  return {
    listeners: integer('listeners', values.listeners, 1),
    via: values.via,
    baseline: integer('baseline', values.baseline, 0),
    durationSeconds: integer('duration', values.duration, 1),
    rampSeconds: integer('ramp', values.ramp, 0),
    runs: integer('runs', values.runs, 1),
    workers: values.workers === undefined ? undefined : integer('workers', values.workers, 1),
    connections: integer('connections', values.connections, 1),
  };
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function workersFor(listeners: number, requested: number | undefined): number {
  return requested ?? Math.max(1, Math.min(cpus().length, Math.ceil(listeners / LISTENERS_PER_WORKER)));
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options.via === 'varnish' && !existsSync(VARNISHD_PATH)) {
    throw new Error(`varnishd is not installed (${VARNISHD_PATH} is missing); install it with: apt-get install varnish`);
  }
  const started = performance.now();
  const stack = new BenchStack();
  // Ctrl-C: exit, and the stack's exit hook SIGKILLs onair and varnishd (FFmpeg dies with its parent).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`bench:listeners: ${signal}, stopping`);
      process.exit(130);
    });
  }
  try {
    progress('starting onair with a test tone; waiting for the playlists to list 4 segments...');
    const origin = await stack.startOrigin({ segmentSeconds: SEGMENT_SECONDS, minimumSegments: LIVE_SYNC_DURATION_COUNT + 1 });
    let varnish: RunningVarnish | undefined;
    if (options.via === 'varnish') varnish = await stack.startVarnish(origin.port);
    const port = varnish?.port ?? origin.port;

    const sizes = options.baseline > 0 && options.baseline < options.listeners ? [options.baseline, options.listeners] : [options.listeners];
    const results = new Map<number, PhaseResult[]>(sizes.map((size) => [size, []]));
    for (let run = 1; run <= options.runs; run++) {
      for (const listeners of sizes) {
        const workers = workersFor(listeners, options.workers);
        progress(`run ${run}/${options.runs}: ${listeners} listeners via ${options.via}, ${workers} worker thread(s)...`);
        const result = await runPhase({
          listeners,
          workers,
          connections: options.connections,
          port,
          originPid: origin.pid,
          varnish,
          rampMs: options.rampSeconds * 1000,
          settleMs: 2 * SEGMENT_SECONDS * 1000,
          windowMs: options.durationSeconds * 1000,
        });
        results.get(listeners)!.push(result);
        progress(`  ${summaryLine(result)}`);
      }
    }
    printReport(options, sizes, results, (performance.now() - started) / 1000);
  } finally {
    await stack.stop();
  }
}

function errorsOf(tally: PhaseTally): number {
  return REQUEST_KINDS.reduce((sum, kind) => sum + failureCount(tally.kinds[kind]), 0);
}

function summaryLine(result: PhaseResult): string {
  return (
    `${result.clientRequestsPerSecond.toFixed(0)} client req/s, ${result.originRequestsPerSecond.toFixed(1)} origin req/s, ` +
    `${errorsOf(result.tally)} errors, ${result.tally.stalls} stalls, ${result.tally.listenersPlaying}/${result.listeners} playing`
  );
}

function milliseconds(value: number): string {
  if (Number.isNaN(value)) return '–';
  return value < 10 ? `${value.toFixed(1)} ms` : `${value.toFixed(0)} ms`;
}

function printReport(options: BenchOptions, sizes: number[], results: Map<number, PhaseResult[]>, elapsedSeconds: number): void {
  const load: string[][] = [];
  const health: string[][] = [];
  const failures: string[] = [];
  const saturated: string[] = [];
  for (const size of sizes) {
    const runs = results.get(size)!;
    const med = (pick: (result: PhaseResult) => number): number => median(runs.map(pick));
    const sum = (pick: (result: PhaseResult) => number): number => runs.reduce((total, result) => total + pick(result), 0);
    const percentile = (kind: 'playlist' | 'segment', p: number): string =>
      milliseconds(med((result) => latencyPercentile(result.tally.kinds[kind].windowLatency, p)));
    load.push([
      size.toLocaleString('en-US'),
      options.via,
      med((result) => result.clientRequestsPerSecond).toFixed(0),
      med((result) => result.originRequestsPerSecond).toFixed(options.via === 'varnish' ? 2 : 0),
      med((result) => result.originCpuMsPerSecond).toFixed(0),
      `${percentile('playlist', 50)} / ${percentile('playlist', 99)}`,
      `${percentile('segment', 50)} / ${percentile('segment', 99)}`,
      sum((result) => errorsOf(result.tally)).toString(),
      sum((result) => result.tally.stalls).toString(),
    ]);
    const worstLoop = (pick: (loop: PhaseTally['loadGenerators'][number]) => number): number =>
      med((result) => Math.max(...result.tally.loadGenerators.map(pick)));
    health.push([
      size.toLocaleString('en-US'),
      `${Math.min(...runs.map((result) => result.tally.listenersPlaying))}/${size}`,
      milliseconds(med((result) => latencyPercentile(result.tally.startupLatency, 50))),
      med((result) => result.deliveredMegabytesPerSecond).toFixed(1),
      options.via === 'varnish' ? med((result) => result.varnishCpuMsPerSecond ?? 0).toFixed(0) : '–',
      med((result) => result.loadGeneratorCpuPercent).toFixed(0),
      worstLoop((loop) => loop.loopUtilization).toFixed(2),
      `${milliseconds(worstLoop((loop) => loop.lagP99Ms))} / ${milliseconds(worstLoop((loop) => loop.lagMaxMs))}`,
      `${sum((result) => result.tally.stalledMs / 1000).toFixed(1)} s`,
      sum((result) => result.tally.resyncs).toString(),
    ]);
    for (const kind of REQUEST_KINDS) {
      const causes = new Map<string, number>();
      for (const result of runs) for (const [cause, count] of Object.entries(result.tally.kinds[kind].failures)) causes.set(cause, (causes.get(cause) ?? 0) + count);
      if (causes.size > 0) failures.push(`  ${size} listeners, ${kind}: ${[...causes].map(([cause, count]) => `${cause} × ${count}`).join(', ')}`);
    }
    if (runs.some((result) => result.tally.loadGenerators.some((loop) => loop.loopUtilization >= SATURATED_LOOP_UTILIZATION || loop.lagP99Ms >= SATURATED_LAG_MS))) {
      saturated.push(size.toLocaleString('en-US'));
    }
  }

  const lines = [
    `bench:listeners: simulated hls.js listeners of one live channel (${RENDITIONS.map((rendition) => rendition.bitrate).join(' + ')}, ${SEGMENT_SECONDS} s segments, split evenly), via ${options.via}`,
    `each phase: arrivals over ${options.rampSeconds} s, ${2 * SEGMENT_SECONDS} s to settle, then a ${options.durationSeconds} s window; ${options.runs} run(s), medians (errors, stalls summed)`,
    `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}; node ${process.version}${options.via === 'varnish' ? `; ${varnishVersion()}` : ''}; ${options.connections} keep-alive connections per worker thread`,
    '',
    ...formatTable(['listeners', 'via', 'client req/s', 'origin req/s', 'origin CPU ms/s', 'playlist p50 / p99', 'segment p50 / p99', 'errors', 'stalls'], load),
    '',
    ...formatTable(['listeners', 'playing (worst run)', 'startup p50', 'MB/s to listeners', 'varnish CPU ms/s', 'load gen CPU %', 'loop busy (max)', 'loop lag p99 / max', 'stalled', 'resyncs'], health),
    '',
    'origin req/s = requests reaching onair (Varnish MAIN.backend_req; the client count when direct); origin CPU = the onair process',
    '  (packager + origin, not its FFmpeg); latency = request start to last byte, pool wait included; errors = non-2xx, network',
    '  errors, timeouts over the whole phase; stall = a playhead reaching the end of its buffer after playback started.',
    ...(failures.length > 0 ? ['errors by cause:', ...failures] : []),
    ...(saturated.length > 0
      ? [`load generator saturated at ${saturated.join(', ')} listeners (a worker loop ≥ ${SATURATED_LOOP_UTILIZATION * 100} % busy or lagging ≥ ${SATURATED_LAG_MS} ms): stalls and latencies there may be its own`]
      : []),
    ...verdict(options, sizes, results),
    `(${elapsedSeconds.toFixed(0)} s in total)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function verdict(options: BenchOptions, sizes: number[], results: Map<number, PhaseResult[]>): string[] {
  const lines: string[] = [];
  const main = results.get(options.listeners)!;
  const clean = main.every((result) => errorsOf(result.tally) === 0 && result.tally.stalls === 0);
  lines.push(`${options.listeners} listeners: ${clean ? 'zero errors and zero stalls' : 'errors or stalls (see above)'}.`);
  if (sizes.length === 2) {
    const base = results.get(sizes[0]!)!;
    const ratio = (pick: (result: PhaseResult) => number): number => median(main.map(pick)) / median(base.map(pick));
    const requestRatio = ratio((result) => result.originRequestsPerSecond);
    const cpuRatio = ratio((result) => result.originCpuMsPerSecond);
    const met = requestRatio <= ORIGIN_LOAD_RATIO_TARGET && cpuRatio <= ORIGIN_LOAD_RATIO_TARGET;
    const judgement =
      options.via === 'varnish'
        ? `(target ≤ ${ORIGIN_LOAD_RATIO_TARGET}): ${met ? 'met' : 'missed'}`
        : `(the ≤ ${ORIGIN_LOAD_RATIO_TARGET} target is for --via varnish: without a cache every request reaches the origin)`;
    lines.push(
      `origin load at ${options.listeners} vs ${sizes[0]} listeners: ${requestRatio.toFixed(2)} × the requests/s, ${cpuRatio.toFixed(2)} × the CPU ms/s ${judgement}.`,
    );
  }
  return lines;
}

/** `varnishd -V` prints its version on stderr. */
function varnishVersion(): string {
  const { stdout, stderr } = spawnSync(VARNISHD_PATH, ['-V'], { encoding: 'utf8' });
  return /varnish-[\d.]+/.exec(`${stdout}${stderr}`)?.[0] ?? 'varnish';
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:listeners: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
