/**
 * The supervisor of `onair origin --workers N`
 * (docs/architecture.md, "The origin on every core"): the primary process forks N workers (node:cluster), each running the whole origin
 * on the same port, and keeps N running.
 *
 * - Start: resolves once every worker listens; a worker that exits first fails the start
 *   (ONAIR_WORKER_FAILED) and the others are stopped, so nothing half-starts.
 * - A worker that exits later (a crash, a kill) is replaced after a back-off: 250 ms, then
 *   doubling for each quick exit in a row of that slot, up to 30 s; a worker that ran at
 *   least STABLE_MS starts its slot's sequence again.
 * - Stop: SIGTERM to every worker (each closes as `onair origin` does), SIGKILL after the
 *   grace; resolves once all have exited. Workers also end when the primary dies however it
 *   dies: node:cluster exits a worker whose IPC channel to the primary closes.
 *
 * Which worker takes a connection: node:cluster's round-robin (the primary accepts and hands
 * the socket over; Node's default on Linux). NODE_CLUSTER_SCHED_POLICY=none lets the kernel
 * pick instead (the README's benchmark compares both). Node 20 has no `reusePort`.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { systemClock, type Clock, type Timer } from '../clock.js';
import { OnairError } from '../errors.js';

export const FIRST_RESTART_DELAY_MS = 250;
export const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that ran this long before exiting is replaced after the first delay again. */
export const STABLE_MS = 30_000;
const DEFAULT_STOP_GRACE_MS = 10_000;

/** The workers of `origin.workers` / `--workers`: a number, or `auto` (available cores). */
export function workerCount(workers: number | 'auto', cores: number = availableParallelism()): number {
  return workers === 'auto' ? Math.max(1, cores) : workers;
}

/** The back-off of one worker slot (see the header). */
export class RestartBackoff {
  private quickExits = 0;

  /** The delay before replacing a worker that ran `ranMs`. */
  next(ranMs: number): number {
    if (ranMs >= STABLE_MS) this.quickExits = 0;
    const delay = Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** Math.min(this.quickExits, 16));
    this.quickExits += 1;
    return delay;
  }
}

/** What the supervisor needs of a worker process (node:cluster's Worker has it). */
export interface ClusterWorker {
  readonly id: number;
  readonly process: { readonly pid?: number; kill(signal?: NodeJS.Signals): boolean };
  on(event: 'listening', listener: () => void): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  once(event: 'exit', listener: (code: number | null, signal: string | null) => void): unknown;
  send(message: object): boolean;
  isConnected(): boolean;
}

/** pino-compatible subset the supervisor logs through. */
export interface ClusterLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface OriginClusterOptions {
  workers: number;
  logger: ClusterLogger;
  /** Forks one worker; default node:cluster's fork with `env`. */
  fork?: () => ClusterWorker;
  /** Added to each worker's environment (with the default fork). */
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** SIGTERM → SIGKILL at stop; default 10 s. */
  stopGraceMs?: number;
}

interface Slot {
  index: number;
  worker: ClusterWorker | undefined;
  startedAt: number;
  backoff: RestartBackoff;
  restartTimer: Timer | undefined;
}

export class OriginCluster {
  private readonly slots: Slot[];
  private readonly fork: () => ClusterWorker;
  private readonly clock: Clock;
  private readonly logger: ClusterLogger;
  private readonly stopGraceMs: number;
  private readonly exits = new Set<Promise<void>>();
  private readonly messageListeners = new Set<(worker: ClusterWorker, message: unknown) => void>();
  private stopping = false;
  /** Set once every first worker listened: from then on, any exit is replaced. */
  private started = false;
  /** Workers replaced since start. */
  restarts = 0;

  constructor(options: OriginClusterOptions) {
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.fork = options.fork ?? (() => cluster.fork(options.env) as Worker as ClusterWorker);
    this.slots = Array.from({ length: options.workers }, (_, index) => ({ index, worker: undefined, startedAt: 0, backoff: new RestartBackoff(), restartTimer: undefined }));
  }

  /** Forks every worker; resolves once all listen, rejects (everything stopped) if one exits first. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.slots.map((slot) => this.launch(slot)));
      this.started = true;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** The workers running now. */
  workers(): ClusterWorker[] {
    return this.slots.flatMap((slot) => (slot.worker ? [slot.worker] : []));
  }

  /** Calls `listener` with every message a worker sends (the ones of any later replacement too). */
  onMessage(listener: (worker: ClusterWorker, message: unknown) => void): void {
    this.messageListeners.add(listener);
  }

  /** SIGTERM to every worker, SIGKILL to those still running after the grace; no more restarts. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) slot.restartTimer?.cancel();
    const running = this.workers();
    for (const worker of running) worker.process.kill('SIGTERM');
    const killer = this.clock.setTimeout(() => {
      for (const worker of this.workers()) worker.process.kill('SIGKILL');
    }, this.stopGraceMs);
    await Promise.all([...this.exits]);
    killer.cancel();
  }

  /** Forks the slot's worker; resolves when it listens, rejects if it exits before. */
  private launch(slot: Slot): Promise<void> {
    const worker = this.fork();
    slot.worker = worker;
    slot.startedAt = this.clock.now();
    let listening = false;
    return new Promise<void>((resolve, reject) => {
      worker.on('listening', () => {
        if (listening) return;
        listening = true;
        this.logger.info({ worker: worker.id, workerPid: worker.process.pid }, 'origin worker listening');
        resolve();
      });
      worker.on('message', (message) => {
        for (const listener of this.messageListeners) listener(worker, message);
      });
      const exited = new Promise<void>((settle) => {
        worker.once('exit', (code, signal) => {
          this.exits.delete(exited);
          settle();
          if (slot.worker === worker) slot.worker = undefined;
          if (!listening) {
            reject(new OnairError('ONAIR_WORKER_FAILED', `origin worker ${worker.id} exited (${signal ?? `code ${code}`}) before it listened`));
          }
          if (this.stopping || !this.started) return;
          this.replaceLater(slot, code, signal);
        });
      });
      this.exits.add(exited);
    });
  }

  private replaceLater(slot: Slot, code: number | null, signal: string | null): void {
    const ranMs = this.clock.now() - slot.startedAt;
    const delayMs = slot.backoff.next(ranMs);
    this.logger.error({ code: 'ONAIR_WORKER_FAILED', exitCode: code, signal, ranMs, restartInMs: delayMs }, 'origin worker exited; replacing it');
    slot.restartTimer = this.clock.setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.stopping) return;
      this.restarts += 1;
      // A replacement that exits before listening is replaced again, later.
      this.launch(slot).catch(() => undefined);
    }, delayMs);
  }
}
