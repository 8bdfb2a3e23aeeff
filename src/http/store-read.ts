/**
 * Every store read made to answer an HTTP request (origin, recordings, control API) goes
 * through `readFromStore`: any rejection, and a read that takes longer than the timeout,
 * becomes OnairError ONAIR_STORE_UNAVAILABLE, which is answered with 503 + Retry-After
 * (docs/architecture.md, Failure model: "store down").
 */
import { systemClock, type Clock } from '../clock.js';
import { isOnairError, OnairError } from '../errors.js';

/** How long a request waits for the store before it is answered with 503. */
export const DEFAULT_STORE_TIMEOUT_MS = 2000;

/** `timeoutMs` counts on `clock` (the origin's, so tests move it instead of waiting). */
export function readFromStore<T>(what: string, read: () => Promise<T>, timeoutMs: number, clock: Clock = systemClock): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      reject(new OnairError('ONAIR_STORE_UNAVAILABLE', `no answer within ${timeoutMs} ms`, { where: what }));
    }, timeoutMs);
    let pending: Promise<T>;
    try {
      pending = read();
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (error: unknown) => {
        timer.cancel();
        reject(asStoreUnavailable(what, error));
      },
    );
  });
}

function asStoreUnavailable(what: string, error: unknown): OnairError {
  if (isOnairError(error, 'ONAIR_STORE_UNAVAILABLE')) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new OnairError('ONAIR_STORE_UNAVAILABLE', reason, { where: what, cause: error });
}
