/**
 * `npm run bench:origin -- --workers N` (docs/architecture.md, "The origin on every core"):
 * the media playlist served by onair's origin in 1 and in N node:cluster workers
 * (origin-worker.js --workers, the supervisor `onair origin --workers` uses), by an empty
 * Fastify route in the same cluster shape (the same bytes and headers, onair's ETag included,
 * nothing else: the ceiling of a Fastify server here), and by nginx with 1 and N workers. wrk (one thread, 200 connections,
 * keep-alive) loads each in turn, `runs` rounds alternating the order; medians are printed
 * with the ratios onair/Fastify (target ≥ 0.95), onair/nginx, and the scaling N/1 (target near
 * N). Requests per CPU-second of the serving process tree measure the scaling wrk cannot show:
 * wrk needs a core of its own, so req/s cannot double on two cores, but with linear scaling
 * each request costs the same CPU in N workers as in one (the ratio N/1 stays at 1.00). The load generator shares the cores with the servers: on a small shared machine the
 * figures are noisy and wrk takes part of the CPU the workers would use. Reported, never asserted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headersToMirror, nginxVersion, startNginx, type RunningNginx } from './origin-nginx.js';
import type { OriginWorkerReady } from './origin-worker.js';
import { formatTable, median } from './report.js';
import { firstJsonLine, processTreeCpuSeconds } from './system.js';
import { runWrk } from './wrk.js';

const WORKER_PATH = fileURLToPath(new URL('./origin-worker.js', import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const FASTIFY_TARGET = 0.95;

type Server = 'onair' | 'fastify' | 'nginx';
const SERVERS: Server[] = ['onair', 'fastify', 'nginx'];

export interface WorkersBenchOptions {
  workers: number;
  runs: number;
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
}

interface Running {
  port: number;
  /** The process whose tree serves (the primary, or nginx's master). */
  pid: number;
  stop(): Promise<void>;
  ready?: OriginWorkerReady;
}

async function startCluster(workers: number, extra: string[]): Promise<Running> {
  const child: ChildProcess = spawn(process.execPath, [WORKER_PATH, '--workers', String(workers), ...extra], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  process.once('exit', () => child.kill('SIGKILL'));
  const ready = await firstJsonLine<OriginWorkerReady>(child, 'origin-worker --workers', READY_TIMEOUT_MS);
  return { port: ready.port, pid: ready.pid, stop, ready };
}

export async function runWorkersBench(options: WorkersBenchOptions): Promise<void> {
  const counts = [...new Set([1, options.workers])];
  const scratch = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'onair-bench-workers-'));
  // nginx's workers under a master run as another user (nobody when started as root): they
  // must read the content, or every answer is a 403 (mkdtemp makes the directory 0700).
  await chmod(scratch, 0o755);
  const running: Running[] = [];
  const results = new Map<string, number[]>();
  const cpuPerRequest = new Map<string, number[]>();
  try {
    const targets = new Map<string, Running>();
    for (const count of counts) {
      const onair = await startCluster(count, ['--content-dir', join(scratch, `www-${count}`)]);
      running.push(onair);
      const path = onair.ready!.playlistPath;
      const sample = await fetch(`http://127.0.0.1:${onair.port}${path}`, { headers: { 'accept-encoding': 'identity' } });
      await sample.arrayBuffer();
      // The empty route sends onair's headers too (and its ETag), so only the work behind them differs.
      const headers = { ...headersToMirror(sample.headers), 'content-type': sample.headers.get('content-type') ?? '', etag: sample.headers.get('etag') ?? '' };
      const fastify = await startCluster(count, ['--empty', '--headers', JSON.stringify(headers)]);
      running.push(fastify);
      const nginx: RunningNginx = await startNginx({
        scratch: join(scratch, `nginx-${count}`),
        root: join(scratch, `www-${count}`),
        workers: count,
        locations: [{ suffix: '.m3u8', contentType: sample.headers.get('content-type') ?? '', headers: headersToMirror(sample.headers) }],
      });
      running.push({ port: nginx.port, pid: nginx.pid, stop: () => nginx.stop() });
      targets.set(`onair ${count}`, onair);
      targets.set(`fastify ${count}`, fastify);
      targets.set(`nginx ${count}`, { port: nginx.port, pid: nginx.pid, stop: () => nginx.stop() });
    }
    const path = running[0]!.ready!.playlistPath;
    for (const target of targets.values()) await runWrk(`http://127.0.0.1:${target.port}${path}`, { connections: options.connections, durationSeconds: options.warmupSeconds });
    const names = [...targets.keys()];
    for (let run = 0; run < options.runs; run++) {
      const order = run % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const target = targets.get(name)!;
        const cpuBefore = processTreeCpuSeconds(target.pid);
        const result = await runWrk(`http://127.0.0.1:${target.port}${path}`, { connections: options.connections, durationSeconds: options.durationSeconds });
        const micros = ((processTreeCpuSeconds(target.pid) - cpuBefore) * 1e6) / Math.max(1, result.requests);
        results.set(name, [...(results.get(name) ?? []), result.requestsPerSecond]);
        cpuPerRequest.set(name, [...(cpuPerRequest.get(name) ?? []), micros]);
        const failures = result.socketErrors + result.non2xx > 0 ? `, ${result.socketErrors} socket errors, ${result.non2xx} non-2xx` : '';
        process.stderr.write(`run ${run + 1}/${options.runs} ${name}: ${result.requestsPerSecond.toFixed(0)} req/s, ${micros.toFixed(1)} CPU µs/req${failures}\n`);
      }
    }
  } finally {
    for (const server of running.reverse()) await server.stop().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
  const rate = (server: Server, count: number): number => median(results.get(`${server} ${count}`) ?? [Number.NaN]);
  const cpu = (server: Server, count: number): number => median(cpuPerRequest.get(`${server} ${count}`) ?? [Number.NaN]);
  const rows = counts.map((count) => [
    String(count),
    ...SERVERS.map((server) => rate(server, count).toFixed(0)),
    (rate('onair', count) / rate('fastify', count)).toFixed(2),
    (rate('onair', count) / rate('nginx', count)).toFixed(2),
    ...SERVERS.map((server) => cpu(server, count).toFixed(1)),
    ...SERVERS.map((server) => (1e6 / cpu(server, count)).toFixed(0)),
  ]);
  // Requests per CPU-second of the serving processes: flat from 1 to N workers when scaling is
  // linear (each worker as efficient as one alone), whatever share of the cores wrk takes.
  const efficiency = SERVERS.map((server) => `${server} ${(cpu(server, 1) / cpu(server, options.workers)).toFixed(2)}`).join(', ');
  const scaling = SERVERS.map((server) => `${server} ${(rate(server, options.workers) / rate(server, 1)).toFixed(2)}`).join(', ');
  const ratios = counts.map((count) => rate('onair', count) / rate('fastify', count));
  const verdicts = counts.map((count, i) => `${count} worker(s) ${ratios[i]! >= FASTIFY_TARGET ? 'meets' : 'misses'} ${FASTIFY_TARGET} (${ratios[i]!.toFixed(2)})`).join(', ');
  // Cores the serving tree kept busy: a server near one core per worker is the bottleneck; well below, wrk is.
  const busy = counts.map((count) => `${count}: ${SERVERS.map((server) => `${server} ${((rate(server, count) * cpu(server, count)) / 1e6).toFixed(2)}`).join(', ')}`).join('; ');
  const lines = [
    `media playlist, ${options.connections} connections, keep-alive, wrk one thread; median req/s of ${options.runs} run(s) of ${options.durationSeconds} s, alternating order`,
    `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}; node ${process.version}; ${nginxVersion()}; cluster scheduling ${process.env.NODE_CLUSTER_SCHED_POLICY ?? 'rr (default)'}`,
    '',
    ...formatTable(['workers', 'onair req/s', 'empty Fastify req/s', 'nginx req/s', 'onair/Fastify', 'onair/nginx', 'onair CPU µs/req', 'Fastify CPU µs/req', 'nginx CPU µs/req', 'onair req/CPU-s', 'Fastify req/CPU-s', 'nginx req/CPU-s'], rows),
    '',
    `scaling 1 → ${options.workers} workers: ${scaling} (req/s: wrk takes part of the cores, so it cannot reach ${options.workers})`,
    `requests per CPU-second, ${options.workers} workers / 1: ${efficiency} (1.00 is linear scaling: each worker as efficient as one alone)`,
    `cores busy serving (req/s × CPU per request) with ${busy}`,
    `verdict: onair/Fastify at ${verdicts}; reported, not asserted.`,
    'wrk shares the cores with the servers; on a shared machine the figures are noisy (medians).',
    'CPU µs/req: user + system time of the serving process tree (primary and workers; nginx master and workers) per request.',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
