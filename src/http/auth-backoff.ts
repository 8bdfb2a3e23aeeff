/**
 * Online guessing of a password (a source mount's, the Icecast admin endpoint's) slowed down
 * per client address (docs/architecture.md, Icecast inputs): wrong attempts are answered at
 * once, as Icecast does, but the `freeFailures`-th one locks the address out for 1 s, and each
 * further one for twice as long as the last (2 s, 4 s … up to `maxLockMs`); a
 * locked-out address is refused before its credentials are even looked at (429 with
 * Retry-After), whether they are right or not, so that a lock-out cannot be probed. A success
 * forgets the address. Memory is bounded: at most `maxAddresses` entries (the least recently
 * failed is forgotten first), each forgotten `forgetAfterMs` after its last failure.
 * Addresses are counted by clientKey (an IPv6 client by its /64).
 */
import { systemClock, type Clock } from '../clock.js';
import { clientKey } from './client-address.js';

export interface AuthBackoffOptions {
  clock?: Clock;
  /** The wrong attempt of an address that locks it out for the first time (default the 5th). */
  freeFailures?: number;
  /** The first lock-out (default 1 s); each further failure doubles it. */
  baseLockMs?: number;
  /** The longest lock-out (default 60 s). */
  maxLockMs?: number;
  /** Addresses remembered at most (default 4096). */
  maxAddresses?: number;
  /** An address with no failure for this long starts again from zero (default 10 min). */
  forgetAfterMs?: number;
}

/** What a locked-out client is told. */
export const TOO_MANY_FAILURES = 'Too many failed logins; try again later';

interface FailureRecord {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
}

export class AuthFailureBackoff {
  private readonly clock: Clock;
  private readonly freeFailures: number;
  private readonly baseLockMs: number;
  private readonly maxLockMs: number;
  private readonly maxAddresses: number;
  private readonly forgetAfterMs: number;
  /** Client key → its failures, in order of the last failure (a Map keeps insertion order). */
  private readonly records = new Map<string, FailureRecord>();

  constructor(options: AuthBackoffOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.freeFailures = options.freeFailures ?? 5;
    this.baseLockMs = options.baseLockMs ?? 1_000;
    this.maxLockMs = options.maxLockMs ?? 60_000;
    this.maxAddresses = options.maxAddresses ?? 4_096;
    this.forgetAfterMs = options.forgetAfterMs ?? 600_000;
  }

  /** Addresses remembered now (for tests and metrics). */
  get size(): number {
    return this.records.size;
  }

  /** How long `address` is still locked out, in ms; 0 when it may try. */
  lockedForMs(address: string | undefined): number {
    const record = this.current(clientKey(address));
    return record ? Math.max(0, record.lockedUntil - this.clock.now()) : 0;
  }

  /** One wrong attempt of `address`. */
  failed(address: string | undefined): void {
    const key = clientKey(address);
    const now = this.clock.now();
    const record = this.current(key) ?? { failures: 0, lastFailure: now, lockedUntil: 0 };
    record.failures += 1;
    record.lastFailure = now;
    const over = record.failures - this.freeFailures;
    if (over >= 0) record.lockedUntil = now + Math.min(this.maxLockMs, this.baseLockMs * 2 ** Math.min(over, 30));
    // Re-inserted last: the first entry is always the least recently failed one.
    this.records.delete(key);
    this.records.set(key, record);
    while (this.records.size > this.maxAddresses) this.records.delete(this.records.keys().next().value!);
  }

  /** `address` got in: its failures are forgotten. */
  succeeded(address: string | undefined): void {
    this.records.delete(clientKey(address));
  }

  /** The record of `key`, dropped when it has expired. */
  private current(key: string): FailureRecord | undefined {
    const record = this.records.get(key);
    if (!record) return undefined;
    const now = this.clock.now();
    if (now - record.lastFailure < this.forgetAfterMs || record.lockedUntil > now) return record;
    this.records.delete(key);
    return undefined;
  }
}
