/**
 * The supervisor of `onair origin --workers` (src/origin/origin-cluster.ts) on a manual clock,
 * with workers that are small event emitters: the exits a real worker shows only by crashing
 * (repeatedly, at chosen moments) are emitted here. Real processes: test/e2e/origin-workers.test.ts.
 */
import { EventEmitter } from 'node:events';
import t from 'tap';
import { OnairError } from '../../src/errors.js';
import { FIRST_RESTART_DELAY_MS, MAX_RESTART_DELAY_MS, OriginCluster, RestartBackoff, STABLE_MS, workerCount, type ClusterWorker } from '../../src/origin/origin-cluster.js';
import { ManualClock, settle } from '../helpers/manual-clock.js';

class FakeWorker extends EventEmitter {
  readonly signals: string[] = [];
  readonly process = {
    pid: 1000,
    kill: (signal: NodeJS.Signals = 'SIGTERM'): boolean => {
      this.signals.push(signal);
      return true;
    },
  };
  constructor(readonly id: number) {
    super();
  }
  send(): boolean {
    return true;
  }
  isConnected(): boolean {
    return true;
  }
  exit(code: number | null, signal: string | null = null): void {
    this.emit('exit', code, signal);
  }
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function harness(workers: number): { cluster: OriginCluster; forked: FakeWorker[]; clock: ManualClock } {
  const clock = new ManualClock();
  const forked: FakeWorker[] = [];
  const cluster = new OriginCluster({
    workers,
    logger: silent,
    clock,
    stopGraceMs: 5000,
    fork: () => {
      const worker = new FakeWorker(forked.length + 1);
      forked.push(worker);
      return worker as unknown as ClusterWorker;
    },
  });
  return { cluster, forked, clock };
}

t.test('auto is one worker per core; a number is taken as it is', async (t) => {
  t.equal(workerCount('auto', 8), 8);
  t.equal(workerCount('auto', 0), 1);
  t.equal(workerCount(3, 8), 3);
});

t.test('the back-off doubles for quick exits in a row, is capped, and starts again after a stable run', async (t) => {
  const backoff = new RestartBackoff();
  const delays = Array.from({ length: 10 }, () => backoff.next(100));
  t.same(delays.slice(0, 4), [FIRST_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2, FIRST_RESTART_DELAY_MS * 4, FIRST_RESTART_DELAY_MS * 8]);
  t.equal(Math.max(...delays), MAX_RESTART_DELAY_MS);
  t.equal(backoff.next(STABLE_MS), FIRST_RESTART_DELAY_MS, 'a worker that ran long is replaced quickly again');
});

t.test('start resolves once every worker listens; a worker that dies later is replaced after the back-off, again and again', async (t) => {
  const { cluster, forked, clock } = harness(2);
  const started = cluster.start();
  t.equal(forked.length, 2);
  forked.forEach((worker) => worker.emit('listening'));
  await started;
  forked[0]!.exit(null, 'SIGKILL');
  t.equal(cluster.workers().length, 1);
  await clock.advance(FIRST_RESTART_DELAY_MS - 1);
  t.equal(forked.length, 2, 'not before the delay');
  await clock.advance(1);
  t.equal(forked.length, 3, 'replaced');
  // The replacement crashes before it listens: replaced again, twice as late.
  forked[2]!.exit(1);
  await clock.advance(FIRST_RESTART_DELAY_MS * 2 - 1);
  t.equal(forked.length, 3);
  await clock.advance(1);
  t.equal(forked.length, 4);
  forked[3]!.emit('listening');
  t.equal(cluster.workers().length, 2);
  t.equal(cluster.restarts, 2);
});

t.test('a worker that exits before it listens fails the start, and the others are stopped', async (t) => {
  const { cluster, forked, clock } = harness(2);
  const started = cluster.start();
  forked[0]!.emit('listening');
  forked[1]!.exit(2);
  const stopped = started.catch((error: unknown) => error);
  await settle();
  t.same(forked[0]!.signals, ['SIGTERM'], 'the listening worker is told to stop');
  forked[0]!.exit(0);
  const error = await stopped;
  t.ok(error instanceof OnairError && error.code === 'ONAIR_WORKER_FAILED');
  await clock.advance(60_000);
  t.equal(forked.length, 2, 'nothing is restarted');
});

t.test('stop sends SIGTERM, SIGKILL after the grace to a worker that stays, cancels pending restarts, and waits for every exit', async (t) => {
  const { cluster, forked, clock } = harness(2);
  const started = cluster.start();
  forked.forEach((worker) => worker.emit('listening'));
  await started;
  forked[0]!.exit(null, 'SIGSEGV');
  let stopped = false;
  const stopping = cluster.stop().then(() => (stopped = true));
  t.same(forked[1]!.signals, ['SIGTERM']);
  await clock.advance(4999);
  t.notOk(stopped);
  t.same(forked[1]!.signals, ['SIGTERM'], 'no SIGKILL within the grace');
  await clock.advance(1);
  t.same(forked[1]!.signals, ['SIGTERM', 'SIGKILL']);
  forked[1]!.exit(null, 'SIGKILL');
  await stopping;
  t.ok(stopped);
  await clock.advance(60_000);
  t.equal(forked.length, 2, 'the pending restart was cancelled');
});
