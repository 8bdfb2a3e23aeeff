/**
 * Low-Latency HLS delivery directives (draft-pantos-hls-rfc8216bis §6.2.5): reading
 * `_HLS_msn`, `_HLS_part` and `_HLS_skip` from a playlist request, and holding requests
 * until the store publishes what they wait for.
 */
import { systemClock, type Clock } from '../clock.js';

export interface DeliveryDirectives {
  /** Hold the request until the playlist lists this segment (or its part `part`). */
  msn?: number;
  part?: number;
  /** `_HLS_skip=YES` (or `v2`, which without date ranges is the same): a delta update. */
  skip: boolean;
}

export type DirectivesResult = { ok: true; directives: DeliveryDirectives } | { ok: false; message: string };

const DECIMAL = /^(0|[1-9][0-9]{0,14})$/;

/** Reads the directives from a parsed query string; other keys are ignored (cache busters and the like). */
export function readDirectives(query: Record<string, unknown>): DirectivesResult {
  const msn = decimalParameter(query, '_HLS_msn');
  const part = decimalParameter(query, '_HLS_part');
  if (msn === null || part === null) return { ok: false, message: '_HLS_msn and _HLS_part must be one non-negative decimal integer each' };
  if (part !== undefined && msn === undefined) return { ok: false, message: '_HLS_part needs _HLS_msn' };
  const skip = query._HLS_skip;
  if (skip !== undefined && skip !== 'YES' && skip !== 'v2') return { ok: false, message: '_HLS_skip must be YES or v2' };
  return { ok: true, directives: { msn, part, skip: skip !== undefined } };
}

/** undefined when absent, null when malformed (repeated, signed, too large, not a number). */
function decimalParameter(query: Record<string, unknown>, name: string): number | undefined | null {
  const value = query[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' && DECIMAL.test(value) ? Number(value) : null;
}

/**
 * Requests held until a channel's next publish. A waiter wakes at the next update of its
 * channel or after its own delay, whichever comes first, so a lost notification costs
 * a re-check, not a stuck request.
 */
export class UpdateWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Delays count on `clock` (the origin's). */
  constructor(private readonly clock: Clock = systemClock) {}

  /** Resolves at the next `wake(channel)` or after `delayMs`. */
  next(channel: string, delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.waiting.get(channel);
      if (!waiters) {
        waiters = new Set();
        this.waiting.set(channel, waiters);
      }
      const done = (): void => {
        timer.cancel();
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(channel) === waiters) this.waiting.delete(channel);
        resolve();
      };
      const timer = this.clock.setTimeout(done, delayMs);
      waiters.add(done);
    });
  }

  wake(channel: string): void {
    for (const done of [...(this.waiting.get(channel) ?? [])]) done();
  }

  wakeAll(): void {
    for (const channel of [...this.waiting.keys()]) this.wake(channel);
  }
}
