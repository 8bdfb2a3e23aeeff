/**
 * A clock the test moves by hand: `advance(ms)` runs, in time order, every timer that falls
 * due, letting promise callbacks settle between them, so code under test that awaits a timer
 * goes on as it would in real time, without the test sleeping.
 */
import type { Clock, Timer } from '../../src/clock.js';

interface Scheduled {
  at: number;
  order: number;
  callback: () => void;
  cancelled: boolean;
}

/** Lets pending promise callbacks (and one macrotask turn) run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class ManualClock implements Clock {
  private current: number;
  private order = 0;
  private readonly timers: Scheduled[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, delayMs: number): Timer {
    const scheduled: Scheduled = { at: this.current + Math.max(0, delayMs), order: this.order++, callback, cancelled: false };
    this.timers.push(scheduled);
    return { cancel: () => (scheduled.cancelled = true) };
  }

  /** Timers not yet run nor cancelled. */
  get pendingTimers(): number {
    return this.timers.filter((timer) => !timer.cancelled).length;
  }

  /** Moves time forward by `ms`, running each timer at its due time, oldest first. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await settle();
    for (;;) {
      const due = this.timers
        .filter((timer) => !timer.cancelled && timer.at <= target)
        .sort((a, b) => a.at - b.at || a.order - b.order)[0];
      if (!due) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.current = Math.max(this.current, due.at);
      due.callback();
      await settle();
    }
    this.current = target;
    await settle();
  }
}
