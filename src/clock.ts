/**
 * The wall clock and timers, injected. Components that stamp times, hold requests or
 * retry take a `Clock` in their options (default `systemClock`), so unit tests move a
 * manual clock (test/helpers/manual-clock.ts) instead of sleeping. The media timeline
 * never reads it: the sample count is the clock there (docs/architecture.md, "Timeline").
 */
export interface Timer {
  /** Cancels the callback if it has not run yet; safe to call twice. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch, as Date.now(). */
  now(): number;
  /** Runs `callback` once after `delayMs` of this clock's time. */
  setTimeout(callback: () => void, delayMs: number): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, delayMs) {
    const handle = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Resolves after `delayMs` of `clock` time, or when `signal` aborts (then early, never rejecting). */
export function sleepOn(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    const onAbort = (): void => {
      timer.cancel();
      resolve();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
