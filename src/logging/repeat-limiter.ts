/**
 * One line per cause per window: the first line of a cause is written at once; the ones that
 * follow within `windowMs` are counted, and when the window ends the last of them is written
 * once, carrying the count (`repeated: 118`). A cause that keeps repeating gives one line per
 * window; one that stops is forgotten a window later. Time comes from the injected clock.
 */
import type { Clock, Timer } from '../clock.js';

interface CauseState {
  /** Lines until then are held back. */
  until: number;
  /** Lines held back since the last one written. */
  held: number;
  /** Writes the last held line with its count. */
  writeLast?: (repeated: number) => void;
  timer?: Timer;
}

/** Causes remembered at most; past this, lines are written unlimited rather than memory grown. */
const MAX_CAUSES = 10_000;

export class RepeatLimiter {
  private readonly causes = new Map<string, CauseState>();

  constructor(
    private readonly clock: Clock,
    readonly windowMs: number,
  ) {}

  /**
   * `write(1)` now when the cause has not been written within the window; otherwise the line
   * is held, and the window's end calls the last held line's `write(count)`.
   */
  submit(cause: string, write: (repeated: number) => void): void {
    const now = this.clock.now();
    const state = this.causes.get(cause);
    if (state && (state.timer || state.until > now)) {
      state.held += 1;
      state.writeLast = write;
      state.timer ??= this.clock.setTimeout(() => this.endWindow(cause), Math.max(0, state.until - now));
      return;
    }
    if (this.causes.size >= MAX_CAUSES) this.forgetQuiet(now);
    if (this.causes.size < MAX_CAUSES) this.causes.set(cause, { until: now + this.windowMs, held: 0 });
    write(1);
  }

  /** Causes currently remembered (for tests and bounds). */
  get size(): number {
    return this.causes.size;
  }

  private endWindow(cause: string): void {
    const state = this.causes.get(cause);
    if (!state) return;
    state.timer = undefined;
    if (state.held === 0 || !state.writeLast) {
      this.causes.delete(cause);
      return;
    }
    const { held, writeLast } = state;
    state.held = 0;
    state.writeLast = undefined;
    state.until = this.clock.now() + this.windowMs;
    // Keep the window open: a flood gives one line per window, a pause lets the next line through.
    state.timer = this.clock.setTimeout(() => this.endWindow(cause), this.windowMs);
    writeLast(held);
  }

  private forgetQuiet(now: number): void {
    for (const [cause, state] of this.causes) {
      if (!state.timer && state.until <= now) this.causes.delete(cause);
    }
  }
}
