/**
 * `npm run bench:origin`: onair's origin against nginx serving the same media playlist and the
 * same 4 s segment on loopback, one serving process each, loaded by the same tool (wrk, one
 * thread, bench/wrk.ts) in the same run of this script. Prints req/s and p99 latency for both and
 * the ratios onair/nginx. Targets (issue 4): onair ≥ 0.8 × nginx req/s for playlists and for
 * segments, and p99 < 20 ms, at 200 concurrent connections. Reported, never asserted.
 *
 * Method:
 * 1. origin-worker.js (a child process) builds a live channel as the packager writes it,
 *    serves it with buildOrigin from a MemoryStore, and writes the same bytes to a scratch
 *    directory (tmpfs when there is one).
 * 2. One GET of each resource from onair gives the headers nginx must add to match
 *    (Cache-Control, Vary, CORS); nginx is started on those files (origin-nginx.ts). One GET
 *    of each from nginx checks that both send byte-identical bodies with the same Content-Type
 *    and Cache-Control.
 * 3. A warm-up per resource and server (JIT, caches, open-file cache), then for each resource
 *    `runs` rounds of one wrk run per server, alternating which server goes first.
 *    Requests carry no Accept-Encoding, so neither side compresses. Both servers run the whole
 *    time; only the one under load is busy.
 * 4. Figures are medians over the runs: req/s and p99 latency as wrk reports them. Socket
 *    errors (timeouts included) and non-2xx/3xx responses are summed and printed. The CPU time the serving process used during each run
 *    (from /proc) gives CPU µs per request, which does not depend on who else used the cores.
 *
 * The load generator shares the machine's cores with the server under test, the same for both
 * sides; its own CPU use is printed so a saturated generator can be told from a saturated server.
 *
 *   node dist/bench/origin.js [--quick] [--runs N] [--duration S] [--connections N] [--profile DIR]
 *
 * --profile DIR runs the onair worker under `node --cpu-prof` and leaves its .cpuprofile in DIR.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { firstJsonLine, processCpuSeconds } from './system.js';
import { runWrk, WRK_PATH } from './wrk.js';
import { headersToMirror, NGINX_PATH, nginxAvailable, nginxVersion, startNginx, type RunningNginx } from './origin-nginx.js';
import type { OriginWorkerReady } from './origin-worker.js';
import { formatTable, median } from './report.js';
import { runWorkersBench } from './origin-workers.js';

const WORKER_PATH = fileURLToPath(new URL('./origin-worker.js', import.meta.url));
const RATIO_TARGET = 0.8;
const P99_TARGET_MS = 20;
const WORKER_READY_TIMEOUT_MS = 10_000;
/** A process using this much of one core is taken to be the bottleneck of a run. */
const SATURATED_PERCENT = 90;

type Server = 'onair' | 'nginx';
type Resource = 'playlist' | 'segment';
const RESOURCES: Resource[] = ['playlist', 'segment'];

interface BenchOptions {
  runs: number;
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  profileDirectory: string | undefined;
  /** `--workers N`: onair, an empty Fastify route and nginx in 1 and N workers (origin-workers.ts). */
  workers: number | undefined;
}

interface Target {
  server: Server;
  port: number;
  /** The serving process, for its CPU time. */
  pid: number;
}

interface RunResult {
  requestsPerSecond: number;
  p99Ms: number;
  requests: number;
  errors: number;
  non2xx: number;
  /** CPU seconds of the serving process per request, and as a share of one core. */
  cpuMicrosPerRequest: number;
  serverCpuPercent: number;
  /** CPU of this process (the load generator) as a share of one core. */
  loadCpuPercent: number;
}

type Cell = Record<Server, RunResult[]>;

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string', default: '200' },
      profile: { type: 'string' },
      workers: { type: 'string' },
    },
  });
  const positive = (name: string, text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a positive integer, got "${text}"`);
    return value;
  };
  return {
    runs: positive('runs', values.runs ?? (values.quick ? '1' : '3')),
    durationSeconds: positive('duration', values.duration ?? (values.quick ? '3' : '10')),
    warmupSeconds: values.quick ? 1 : 2,
    connections: positive('connections', values.connections),
    profileDirectory: values.profile === undefined ? undefined : resolve(values.profile),
    workers: values.workers === undefined ? undefined : positive('workers', values.workers),
  };
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

// Children are killed however this process ends: in `finally` on the normal path (gracefully,
// so a --cpu-prof profile gets written), and with SIGKILL on exit or on Ctrl-C otherwise.
const children = new Set<ChildProcess>();
function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`bench:origin: ${signal}, stopping the servers`);
    process.exit(130);
  });
}

async function startOnairWorker(contentDirectory: string, profileDirectory: string | undefined): Promise<{ ready: OriginWorkerReady; stop(): Promise<void> }> {
  const nodeArgs = profileDirectory ? ['--cpu-prof', '--cpu-prof-dir', profileDirectory] : [];
  // stdin stays an open pipe: the worker exits when it closes, should this process die first.
  const child = spawn(process.execPath, [...nodeArgs, WORKER_PATH, '--content-dir', contentDirectory], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  track(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const ready = await firstJsonLine<OriginWorkerReady>(child, 'origin-worker', WORKER_READY_TIMEOUT_MS).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { ready, stop };
}

interface Fetched {
  status: number;
  headers: Headers;
  body: Buffer;
}

async function get(port: number, path: string): Promise<Fetched> {
  // fetch would send Accept-Encoding: gzip; the bench compares identity bodies.
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { 'accept-encoding': 'identity' } });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** Both servers must send the same bytes with the same Content-Type and Cache-Control. */
function checkSame(resource: Resource, onair: Fetched, nginx: Fetched): string {
  if (onair.status !== 200 || nginx.status !== 200) throw new Error(`${resource}: status onair ${onair.status}, nginx ${nginx.status}`);
  if (!onair.body.equals(nginx.body)) throw new Error(`${resource}: onair and nginx send different bodies (${onair.body.length} vs ${nginx.body.length} bytes)`);
  for (const name of ['content-type', 'cache-control']) {
    if (onair.headers.get(name) !== nginx.headers.get(name)) {
      throw new Error(`${resource}: ${name} differs: onair "${onair.headers.get(name)}", nginx "${nginx.headers.get(name)}"`);
    }
  }
  return `${resource}: ${onair.body.length} bytes, ${onair.headers.get('content-type')}, cache-control "${onair.headers.get('cache-control')}"`;
}

/** user + system CPU seconds of a process so far (fields 14 and 15 of /proc/<pid>/stat). */

async function load(target: Target, path: string, options: { connections: number; durationSeconds: number }): Promise<RunResult> {
  const serverCpuBefore = processCpuSeconds(target.pid);
  const wallBefore = performance.now();
  const result = await runWrk(`http://127.0.0.1:${target.port}${path}`, options);
  const wallSeconds = (performance.now() - wallBefore) / 1000;
  const serverCpu = processCpuSeconds(target.pid) - serverCpuBefore;
  const requests = result.requests;
  return {
    requestsPerSecond: result.requestsPerSecond,
    p99Ms: result.p99Ms,
    requests,
    errors: result.socketErrors,
    non2xx: result.non2xx,
    cpuMicrosPerRequest: requests > 0 ? (serverCpu * 1e6) / requests : Number.NaN,
    serverCpuPercent: (serverCpu / wallSeconds) * 100,
    loadCpuPercent: result.cpuPercent,
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!nginxAvailable() || !existsSync(WRK_PATH)) {
    process.stderr.write(`bench:origin: nginx and wrk are needed (${NGINX_PATH}, ${WRK_PATH}). Install them with:\n  sudo apt-get install -y --no-install-recommends nginx wrk   (or: npm run bench:origin, which runs the setup)\n`);
    process.exitCode = 1;
    return;
  }
  if (options.workers !== undefined) return runWorkersBench({ ...options, workers: options.workers });
  const started = performance.now();
  const scratch = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'onair-bench-origin-'));
  const contentDirectory = join(scratch, 'www');
  let worker: Awaited<ReturnType<typeof startOnairWorker>> | undefined;
  let nginx: RunningNginx | undefined;
  try {
    worker = await startOnairWorker(contentDirectory, options.profileDirectory);
    const { ready } = worker;
    const paths: Record<Resource, string> = { playlist: ready.playlistPath, segment: ready.segmentPath };

    const onairPlaylist = await get(ready.port, paths.playlist);
    const onairSegment = await get(ready.port, paths.segment);
    nginx = await startNginx({
      scratch: join(scratch, 'nginx'),
      root: contentDirectory,
      locations: [
        { suffix: '.m3u8', contentType: onairPlaylist.headers.get('content-type') ?? '', headers: headersToMirror(onairPlaylist.headers) },
        { suffix: '.ts', contentType: onairSegment.headers.get('content-type') ?? '', headers: headersToMirror(onairSegment.headers) },
      ],
    });
    track(nginx.process);
    const sameness = [
      checkSame('playlist', onairPlaylist, await get(nginx.port, paths.playlist)),
      checkSame('segment', onairSegment, await get(nginx.port, paths.segment)),
    ];
    sameness.forEach((line) => progress(`same on both: ${line}`));

    const targets: Record<Server, Target> = {
      onair: { server: 'onair', port: ready.port, pid: ready.pid },
      nginx: { server: 'nginx', port: nginx.port, pid: nginx.pid },
    };
    const results = {} as Record<Resource, Cell>;
    for (const resource of RESOURCES) {
      for (const server of ['onair', 'nginx'] as const) {
        await load(targets[server], paths[resource], { connections: options.connections, durationSeconds: options.warmupSeconds });
      }
      const cell: Cell = { onair: [], nginx: [] };
      for (let run = 0; run < options.runs; run++) {
        // Alternate which server goes first, so neither always follows the other's load.
        const order: Server[] = run % 2 === 0 ? ['onair', 'nginx'] : ['nginx', 'onair'];
        for (const server of order) {
          cell[server].push(await load(targets[server], paths[resource], options));
        }
        const last = (server: Server): string => {
          const result = cell[server][run]!;
          return `${server} ${result.requestsPerSecond.toFixed(0)} req/s, p99 ${result.p99Ms} ms`;
        };
        progress(`${resource} run ${run + 1}/${options.runs}: ${last('onair')}; ${last('nginx')}`);
      }
      results[resource] = cell;
    }

    printReport(options, results, {
      facts: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}; node ${process.version}; ${nginxVersion()}; wrk, one thread`,
      sameness,
      elapsedSeconds: (performance.now() - started) / 1000,
    });
  } finally {
    await nginx?.stop();
    await worker?.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

function printReport(options: BenchOptions, results: Record<Resource, Cell>, context: { facts: string; sameness: string[]; elapsedSeconds: number }): void {
  const rates: string[][] = [];
  const cpu: string[][] = [];
  const throughput: string[] = [];
  const latency: string[] = [];
  let allMet = true;
  for (const resource of RESOURCES) {
    const cell = results[resource];
    const med = (server: Server, pick: (run: RunResult) => number): number => median(cell[server].map(pick));
    const sum = (server: Server, pick: (run: RunResult) => number): number => cell[server].reduce((total, run) => total + pick(run), 0);
    const onairRate = med('onair', (run) => run.requestsPerSecond);
    const nginxRate = med('nginx', (run) => run.requestsPerSecond);
    const ratio = onairRate / nginxRate;
    const onairP99 = med('onair', (run) => run.p99Ms);
    const nginxP99 = med('nginx', (run) => run.p99Ms);
    rates.push([resource, onairRate.toFixed(0), nginxRate.toFixed(0), ratio.toFixed(2), `${onairP99.toFixed(0)} ms`, `${nginxP99.toFixed(0)} ms`]);
    const failures = (server: Server): string =>
      `${sum(server, (run) => run.errors)}/${sum(server, (run) => run.non2xx)}`;
    const onairCpuPerRequest = med('onair', (run) => run.cpuMicrosPerRequest);
    const nginxCpuPerRequest = med('nginx', (run) => run.cpuMicrosPerRequest);
    cpu.push([
      resource,
      onairCpuPerRequest.toFixed(1),
      nginxCpuPerRequest.toFixed(1),
      (onairCpuPerRequest / nginxCpuPerRequest).toFixed(2),
      med('onair', (run) => run.serverCpuPercent).toFixed(0),
      med('nginx', (run) => run.serverCpuPercent).toFixed(0),
      `${med('onair', (run) => run.loadCpuPercent).toFixed(0)} / ${med('nginx', (run) => run.loadCpuPercent).toFixed(0)}`,
      `${limit(cell.onair)} / ${limit(cell.nginx)}`,
      failures('onair'),
      failures('nginx'),
    ]);
    const rateMet = ratio >= RATIO_TARGET;
    const p99Met = onairP99 < P99_TARGET_MS;
    allMet &&= rateMet && p99Met;
    throughput.push(`${resource} ${rateMet ? 'met' : 'missed'} (${ratio.toFixed(2)})`);
    latency.push(`${resource} ${p99Met ? 'met' : 'missed'} (${onairP99.toFixed(0)} ms)`);
  }

  const lines = [
    `onair origin vs nginx on loopback: the same media playlist and 4 s segment, ${options.connections} connections, keep-alive, no Accept-Encoding`,
    `median of ${options.runs} run(s) of ${options.durationSeconds} s per server and resource, alternating, after a ${options.warmupSeconds} s warm-up; one serving process each`,
    context.facts,
    ...context.sameness.map((line) => `  ${line}`),
    '',
    ...formatTable(['resource', 'onair req/s', 'nginx req/s', 'ratio onair/nginx', 'onair p99', 'nginx p99'], rates),
    '',
    ...formatTable(
      ['resource', 'onair CPU µs/req', 'nginx CPU µs/req', 'ratio', 'onair CPU %', 'nginx CPU %', 'load gen CPU % (onair / nginx runs)', 'bound by (onair / nginx)', 'onair socket err/non-2xx', 'nginx socket err/non-2xx'],
      cpu,
    ),
    '',
    'req/s and p99 latency as wrk reports them (one thread; its CPU % is printed);',
    '  CPU = user + system time of the serving process during the run (/proc), % of one core; errors etc. are summed over the runs.',
    '  Both the server and the load generator (wrk) share the machine\'s cores; CPU µs/req does not depend on that.',
    `  bound by: "server" when the serving process used ≥ ${SATURATED_PERCENT} % of a core, "load gen" when wrk did and the server`,
    '  did not: then req/s and p99 describe wrk, not the server, and CPU µs/req is the figure to compare.',
    `verdict, throughput (ratio ≥ ${RATIO_TARGET}): ${throughput.join('; ')}.`,
    `verdict, latency (onair p99 < ${P99_TARGET_MS} ms at ${options.connections} connections): ${latency.join('; ')}.`,
    allMet ? 'all targets met.' : 'not every target is met (reported, not asserted).',
    `(${context.elapsedSeconds.toFixed(0)} s in total)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** What limited a server's runs: its own core, the load generator's, or neither (median CPU %). */
function limit(runs: RunResult[]): string {
  if (median(runs.map((run) => run.serverCpuPercent)) >= SATURATED_PERCENT) return 'server';
  if (median(runs.map((run) => run.loadCpuPercent)) >= SATURATED_PERCENT) return 'load gen';
  return 'neither';
}



main().catch((error: unknown) => {
  process.stderr.write(`bench:origin: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
