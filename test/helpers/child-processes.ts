/**
 * Servers a test starts (redis-server nodes, Sentinel, varnishd) and the scratch directory
 * they share: SIGKILLed and removed if the test process exits without teardown; `stop()`
 * ends them politely (SIGTERM, SIGKILL after a grace) and removes the directory, once.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const STOP_GRACE_MS = 2000;

/** Sends `signal` and waits for the exit, SIGKILLing after a grace; at once if it already exited. */
export async function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

export class ScratchProcesses {
  /** The running children; a caller may take them out (splice) to restart them. */
  readonly children: ChildProcess[] = [];
  readonly dir: string;
  private stopped = false;
  private readonly killOnExit = (): void => {
    for (const child of this.children) child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  };

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    process.once('exit', this.killOnExit);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.off('exit', this.killOnExit);
    await Promise.all(this.children.splice(0).map((child) => killAndWait(child, 'SIGTERM')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
