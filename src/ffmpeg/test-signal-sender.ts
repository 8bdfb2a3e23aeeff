/**
 * The test signal, a contribution-feed stand-in (the demo's, and the tests'): FFmpeg
 * generates a tone, encodes it as AAC in MPEG-TS and sends it in real time, exactly as a
 * studio encoder would push SRT. `TestSignalSender` keeps one running: when the SRT
 * connection drops (the listener restarted, not up yet), it calls again with capped
 * backoff until closed.
 */
import type { Logger } from 'pino';
import { runFfmpeg, type FfmpegHandlers, type FfmpegProcess } from './ffmpeg-process.js';
import { backoffDelay } from './restart-backoff.js';

export interface TestSignalSpec {
  /** Where to push the signal, e.g. `srt://127.0.0.1:9000?mode=caller`. */
  outputUrl: string;
  /** Tone frequency in Hz; a short beep at 4× the frequency marks every second. */
  frequency?: number;
  /** Stop after this many seconds (default: run until killed). */
  durationSeconds?: number;
}

/** Starts one FFmpeg sending the tone to `outputUrl`. */
export function startTestSignal(spec: TestSignalSpec, handlers: FfmpegHandlers): FfmpegProcess {
  const frequency = spec.frequency ?? 440;
  const duration = spec.durationSeconds !== undefined ? `:duration=${spec.durationSeconds}` : '';
  return runFfmpeg(
    {
      input: `sine=frequency=${frequency}:beep_factor=4:sample_rate=48000${duration}`,
      inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi'],
      outputOptions: ['-ac', '2', '-c:a', 'aac', '-b:a', '256k', '-f', 'mpegts'],
      output: spec.outputUrl,
    },
    handlers,
  );
}

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
