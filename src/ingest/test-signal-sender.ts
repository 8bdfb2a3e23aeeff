/**
 * Keeps a test-tone sender running (the demo's stand-in for a studio encoder): when
 * the SRT connection drops (the listener restarted, not up yet), it calls again with
 * capped backoff until closed.
 */
import type { Logger } from 'pino';
import { startTestSignal, type FfmpegProcess } from './ffmpeg-adapter.js';
import { backoffDelay } from './input-worker.js';

export interface TestSignalSenderOptions {
  outputUrl: string;
  frequency?: number;
  logger?: Logger;
  /** Wait before the first call, so the listener can bind (ms). */
  initialDelayMs?: number;
}

export class TestSignalSender {
  private process: FfmpegProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = true;
  starts = 0;

  constructor(private readonly options: TestSignalSenderOptions) {}

  start(): void {
    this.stopped = false;
    this.timer = setTimeout(() => this.launch(), this.options.initialDelayMs ?? 0);
  }

  /** Stops the sender (SIGKILL: a dead studio link, not a polite goodbye) and waits for it to exit. */
  async close(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.process?.kill(signal);
    await this.exited;
  }

  pid(): number | undefined {
    return this.process?.pid();
  }

  private launch(): void {
    if (this.stopped) return;
    this.starts += 1;
    let resolveExit!: () => void;
    this.exited = new Promise((resolve) => (resolveExit = resolve));
    const startedAt = Date.now();
    this.process = startTestSignal(
      { outputUrl: this.options.outputUrl, frequency: this.options.frequency },
      {
        onStderrLine: (line) => {
          if (line.trim() !== '') this.options.logger?.debug({ ffmpeg: line }, 'test signal sender');
        },
        onExit: (exit) => {
          this.process = undefined;
          resolveExit();
          if (this.stopped) return;
          this.failures = Date.now() - startedAt > 10_000 ? 1 : this.failures + 1;
          const delay = Math.min(backoffDelay(this.failures), 2000);
          this.options.logger?.info({ reason: exit.reason, retryInMs: delay }, 'test signal sender stopped; calling again');
          this.timer = setTimeout(() => this.launch(), delay);
        },
      },
    );
  }
}
