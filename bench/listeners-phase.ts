/**
 * One phase of bench:listeners: N simulated listeners arrive over the ramp, settle, and are
 * measured over a steady-state window, split across worker threads (listeners-worker.ts).
 * While they play, this thread samples the origin's load at the window's edges: requests that
 * reached it (Varnish's MAIN.backend_req, or the client's own count without Varnish) and the
 * CPU time of the onair process, plus Varnish's and the load generator's own CPU time.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { MASTER_PATH, type RunningVarnish } from './listeners-stack.js';
import { processCpuSeconds } from './system.js';
import { mergePhaseTallies, REQUEST_KINDS, type PhaseTally } from './listeners-stats.js';
import type { ListenersWorkerJob } from './listeners-worker.js';

const WORKER_URL = new URL('./listeners-worker.js', import.meta.url);
/** Time for the workers to start before the first listener arrives. */
const WORKER_BOOT_MS = 1000;

export interface PhasePlan {
  listeners: number;
  workers: number;
  /** Keep-alive connections per worker. */
  connections: number;
  /** Where the listeners connect: Varnish, or the origin itself. */
  port: number;
  originPid: number;
  varnish: RunningVarnish | undefined;
  rampMs: number;
  /** After the ramp, before the window: the last arrivals load their first segments. */
  settleMs: number;
  windowMs: number;
}

export interface PhaseResult {
  listeners: number;
  tally: PhaseTally;
  clientRequestsPerSecond: number;
  originRequestsPerSecond: number;
  originCpuMsPerSecond: number;
  varnishCpuMsPerSecond: number | undefined;
  /** This process (every worker thread), as a share of one core. */
  loadGeneratorCpuPercent: number;
  /** Segment and playlist bytes delivered to the listeners per second. */
  deliveredMegabytesPerSecond: number;
}

interface LoadSample {
  atMs: number;
  originCpuSeconds: number;
  varnishCpuSeconds: number;
  backendRequests: number;
  loadGeneratorCpuSeconds: number;
}

const now = (): number => performance.timeOrigin + performance.now();

export async function runPhase(plan: PhasePlan): Promise<PhaseResult> {
  const rampStartMs = now() + WORKER_BOOT_MS;
  const windowStartMs = rampStartMs + plan.rampMs + plan.settleMs;
  const windowEndMs = windowStartMs + plan.windowMs;
  const workerCount = Math.min(plan.workers, plan.listeners);
  const workers = Array.from({ length: workerCount }, (_, index) => {
    const job: ListenersWorkerJob = {
      host: '127.0.0.1',
      port: plan.port,
      masterPath: MASTER_PATH,
      firstListener: index,
      stride: workerCount,
      totalListeners: plan.listeners,
      rampStartMs,
      rampMs: plan.rampMs,
      windowStartMs,
      windowEndMs,
      connections: plan.connections,
    };
    return new Worker(WORKER_URL, { workerData: job });
  });
  try {
    const [tallies, [first, last]] = await Promise.all([Promise.all(workers.map(tallyOf)), sampleWindow(plan, windowStartMs, windowEndMs)]);
    return summarize(plan, mergePhaseTallies(tallies), first, last);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

function tallyOf(worker: Worker): Promise<PhaseTally> {
  return new Promise((resolve, reject) => {
    worker.once('message', (tally: PhaseTally) => resolve(tally));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`a load-generator worker exited (${code}) before reporting`)));
  });
}

async function sampleWindow(plan: PhasePlan, startMs: number, endMs: number): Promise<[LoadSample, LoadSample]> {
  await sleepUntil(startMs);
  const first = await sample(plan);
  await sleepUntil(endMs);
  return [first, await sample(plan)];
}

async function sample(plan: PhasePlan): Promise<LoadSample> {
  const atMs = now();
  const cpu = process.cpuUsage();
  return {
    atMs,
    originCpuSeconds: processCpuSeconds(plan.originPid),
    varnishCpuSeconds: plan.varnish?.cpuSeconds() ?? 0,
    loadGeneratorCpuSeconds: (cpu.user + cpu.system) / 1e6,
    backendRequests: (await plan.varnish?.backendRequests()) ?? 0,
  };
}

function summarize(plan: PhasePlan, tally: PhaseTally, first: LoadSample, last: LoadSample): PhaseResult {
  const seconds = (last.atMs - first.atMs) / 1000;
  const clientRequests = REQUEST_KINDS.reduce((sum, kind) => sum + tally.kinds[kind].windowRequests, 0);
  const deliveredBytes = REQUEST_KINDS.reduce((sum, kind) => sum + tally.kinds[kind].windowBytes, 0);
  const clientRequestsPerSecond = clientRequests / (plan.windowMs / 1000);
  return {
    listeners: plan.listeners,
    tally,
    clientRequestsPerSecond,
    originRequestsPerSecond: plan.varnish ? (last.backendRequests - first.backendRequests) / seconds : clientRequestsPerSecond,
    originCpuMsPerSecond: ((last.originCpuSeconds - first.originCpuSeconds) * 1000) / seconds,
    varnishCpuMsPerSecond: plan.varnish ? ((last.varnishCpuSeconds - first.varnishCpuSeconds) * 1000) / seconds : undefined,
    loadGeneratorCpuPercent: ((last.loadGeneratorCpuSeconds - first.loadGeneratorCpuSeconds) / seconds) * 100,
    deliveredMegabytesPerSecond: deliveredBytes / 1e6 / (plan.windowMs / 1000),
  };
}

function sleepUntil(wallMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(wallMs - now(), 0)));
}
