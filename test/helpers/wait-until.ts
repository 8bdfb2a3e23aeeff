/** Bounded polling for in-process conditions: fails the test (instead of hanging) on timeout. */
import type { Test } from 'tap';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitUntil(t: Test, what: string, predicate: () => boolean, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting until ${what}`);
      return;
    }
    await sleep(5);
  }
}
