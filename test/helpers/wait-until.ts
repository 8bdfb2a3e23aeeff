/** Bounded polling for in-process conditions: fails the test (instead of hanging) on timeout. */
import type { Test } from 'tap';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` (sync, or async such as an HTTP check) until it holds, for at most `timeoutMs`. */
export async function waitUntil(t: Test, what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting until ${what}`);
      return;
    }
    await sleep(5);
  }
}

/** Retries `attempt` until it resolves, for at most `timeoutMs`; returns its value and how long it took. */
export async function eventually<T>(timeoutMs: number, attempt: () => Promise<T>): Promise<{ value: T; elapsedMs: number }> {
  const started = Date.now();
  for (;;) {
    try {
      return { value: await attempt(), elapsedMs: Date.now() - started };
    } catch (error) {
      if (Date.now() - started > timeoutMs) throw error;
      await sleep(100);
    }
  }
}

/** Awaits `promise`, expecting a rejection; returns the error and how long the rejection took. */
export async function rejection(promise: Promise<unknown>): Promise<{ error: unknown; elapsedMs: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    return { error, elapsedMs: Date.now() - started };
  }
  throw new Error('expected a rejection');
}

/**
 * `promise`'s value, or `onTimeout()`'s once `timeoutMs` have passed, whichever comes first. The
 * timer is cleared when the race ends: a pending one would hold the test process open that long
 * after its last test (a plain `Promise.race` with `sleep` keeps it until the sleep ends).
 */
export async function within<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => T | Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => Promise.resolve().then(onTimeout).then(resolve, reject), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
