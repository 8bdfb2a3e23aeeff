/**
 * How long to wait before starting an FFmpeg again after it stopped: exponential in the
 * failures in a row, with jitter so that encoders failing together do not restart together.
 */

const BACKOFF_INITIAL_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/** Exponential backoff with ±25 % jitter, capped at 10 s. */
export function backoffDelay(failures: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.max(0, failures - 1));
  return Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + random() * 0.5)));
}
