/**
 * Live listener counting: who is listening, shared by every origin through the store.
 *
 * A listener is a distinct client session that fetched a media playlist of a channel (200
 * or 304) in the counting window. The session is the id a player sends (`_onair_sid` or
 * `sid` in the query), else a hash of the client's IP and User-Agent (`listenerClientId`).
 *
 * Window: time is cut into buckets one target duration (TD) long, bucket = floor(t / TD).
 * At time `now` the count is the union of the previous and the current bucket, so a fetch
 * is counted from the moment it happens until the end of the bucket after its own: at
 * least 1 TD and at most 2 TD later. A player reloads a live media playlist about once per
 * TD (RFC 8216 §6.3.4), so it stays counted while it plays and is gone 2 TD after it stops.
 *
 * `ListenerCounter` gathers client ids per (channel, rendition, bucket) in memory and writes
 * each set to the store with one call per flush (about every second): requests never wait
 * for the store. Pending ids are bounded (`maxPendingIds`); ids over the bound, and batches
 * the store refuses, are dropped and logged, never an error for a request. The window and
 * the flush timer run on the injected clock.
 */
import { createHash } from 'node:crypto';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { ListenerStore } from '../store/store.js';

/** Query parameters a player may use to name its session, in order of preference. */
export const SESSION_ID_PARAMETERS = ['_onair_sid', 'sid'] as const;
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Characters of the base64url SHA-256 kept as a client id: 96 bits, no collision among listeners. */
const CLIENT_ID_LENGTH = 16;

/** A fetch stamped up to this far in the future (clock skew of a CDN edge) counts as now. */
const FUTURE_TOLERANCE_MS = 5000;
/** A listener set lives 3 buckets: written up to the end of the next bucket, counted until then, plus a margin. */
const SET_LIFETIME_BUCKETS = 3;

export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
export const DEFAULT_MAX_PENDING_IDS = 100_000;

/**
 * The client id of a listener: its session id when it sent a valid one, else a hash of its
 * IP and User-Agent. Hashed either way, so no raw address or session id reaches the store.
 */
export function listenerClientId(sessionId: string | undefined, ip: string, userAgent: string | undefined): string {
  const identity = sessionId === undefined ? `ip:${ip}\nua:${userAgent ?? ''}` : `sid:${sessionId}`;
  let id = recentIds.get(identity);
  if (id === undefined) {
    id = createHash('sha256').update(identity).digest('base64url').slice(0, CLIENT_ID_LENGTH);
    // A listener polls every target duration: most requests repeat a recent identity. Bounded:
    // emptied when full, which costs one hash per listener again.
    if (recentIds.size >= RECENT_IDS_MAX) recentIds.clear();
    recentIds.set(identity, id);
  }
  return id;
}

/** Hashes of recent identities (1–2 µs each to compute, a Map lookup to find again). */
const recentIds = new Map<string, string>();
const RECENT_IDS_MAX = 200_000;

/** The first valid session id of the query (see SESSION_ID_PARAMETERS), if any. */
export function sessionIdOf(query: Readonly<Record<string, unknown>>): string | undefined {
  for (const name of SESSION_ID_PARAMETERS) {
    const value = query[name];
    if (typeof value === 'string' && SESSION_ID_PATTERN.test(value)) return value;
  }
  return undefined;
}

/** The counting window (see the header): buckets of one target duration. */
export class ListenerWindow {
  readonly bucketMs: number;
  /** TTL of a listener set in the store. */
  readonly setTtlMs: number;

  constructor(targetDurationSeconds: number) {
    this.bucketMs = targetDurationSeconds * 1000;
    this.setTtlMs = SET_LIFETIME_BUCKETS * this.bucketMs;
  }

  bucketOf(timeMs: number): number {
    return Math.floor(timeMs / this.bucketMs);
  }

  /** The buckets whose union is the count at `nowMs`: the previous and the current one. */
  countedBuckets(nowMs: number): number[] {
    const current = this.bucketOf(nowMs);
    return current > 0 ? [current - 1, current] : [current];
  }

  /**
   * The bucket a fetch at `timeMs` goes to, seen at `nowMs`; null when it would not be
   * counted any more (older than the previous bucket) or lies too far in the future.
   */
  bucketToRecord(timeMs: number, nowMs: number): number | null {
    if (!Number.isFinite(timeMs) || timeMs > nowMs + FUTURE_TOLERANCE_MS) return null;
    const bucket = this.bucketOf(Math.min(timeMs, nowMs));
    return bucket >= this.bucketOf(nowMs) - 1 && bucket >= 0 ? bucket : null;
  }
}

/** pino-compatible subset the counter logs through. */
export interface CounterLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
}

export interface ListenerCounterOptions {
  store: Pick<ListenerStore, 'recordListeners'>;
  window: ListenerWindow;
  logger: CounterLogger;
  /** Default 1000. */
  flushIntervalMs?: number;
  /** Distinct ids held between flushes, over every set; default 100,000. */
  maxPendingIds?: number;
  /** Stamps fetches and runs the flush timer; default the system clock. */
  clock?: Clock;
}

interface PendingSet {
  channel: string;
  rendition: string;
  bucket: number;
  clientIds: Set<string>;
}

export class ListenerCounter {
  private readonly store: Pick<ListenerStore, 'recordListeners'>;
  private readonly window: ListenerWindow;
  private readonly logger: CounterLogger;
  private readonly flushIntervalMs: number;
  private readonly maxPendingIds: number;
  private readonly clock: Clock;
  private pending = new Map<string, PendingSet>();
  private pendingIds = 0;
  private droppedIds = 0;
  private flushing: Promise<void> | undefined;
  /** Ids lost since the store started failing; undefined while it works. */
  private lostSinceFailure: number | undefined;
  private timer: Timer | undefined;

  constructor(options: ListenerCounterOptions) {
    this.store = options.store;
    this.window = options.window;
    this.logger = options.logger;
    this.flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.maxPendingIds = options.maxPendingIds ?? DEFAULT_MAX_PENDING_IDS;
    this.clock = options.clock ?? systemClock;
  }

  /** Flushes every flush interval until close(). */
  start(): void {
    if (this.timer) return;
    this.scheduleTick();
  }

  private scheduleTick(): void {
    this.timer = this.clock.setTimeout(() => {
      // A flush still running (a slow store) is not queued behind: the next tick takes it all.
      if (!this.flushing) void this.flush();
      this.scheduleTick();
    }, this.flushIntervalMs);
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    await this.flush();
  }

  /**
   * Counts a media playlist fetch at `timeMs` (default now) by `clientId`. Returns false,
   * recording nothing, when that time is outside the window (see ListenerWindow.bucketToRecord).
   */
  record(channel: string, rendition: string, clientId: string, timeMs: number = this.clock.now()): boolean {
    const bucket = this.window.bucketToRecord(timeMs, this.clock.now());
    if (bucket === null) return false;
    const key = `${channel}/${rendition}/${bucket}`;
    let set = this.pending.get(key);
    if (!set) {
      set = { channel, rendition, bucket, clientIds: new Set() };
      this.pending.set(key, set);
    }
    if (set.clientIds.has(clientId)) return true;
    if (this.pendingIds >= this.maxPendingIds) {
      this.droppedIds += 1;
      return true;
    }
    set.clientIds.add(clientId);
    this.pendingIds += 1;
    return true;
  }

  /** Writes the pending sets, one store call each; resolves once written (or logged as lost). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0 && this.droppedIds === 0) return;
    const sets = [...this.pending.values()];
    const dropped = this.droppedIds;
    this.pending = new Map();
    this.pendingIds = 0;
    this.droppedIds = 0;
    this.flushing = this.write(sets, dropped).finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async write(sets: PendingSet[], dropped: number): Promise<void> {
    if (dropped > 0) {
      this.logger.warn({ droppedIds: dropped, maxPendingIds: this.maxPendingIds }, 'listener ids dropped: too many pending');
    }
    const results = await Promise.allSettled(
      sets.map((set) => this.store.recordListeners(set.channel, set.rendition, set.bucket, [...set.clientIds], this.window.setTtlMs)),
    );
    let lostIds = 0;
    let firstError: unknown;
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') return;
      lostIds += sets[index].clientIds.size;
      firstError ??= result.reason;
    });
    // One warning when the store starts failing and one line when it works again, not one per flush.
    if (lostIds > 0) {
      if (this.lostSinceFailure === undefined) {
        this.logger.warn({ err: firstError, lostIds }, 'listener counts not written: the store failed');
      }
      this.lostSinceFailure = (this.lostSinceFailure ?? 0) + lostIds;
    } else if (this.lostSinceFailure !== undefined && sets.length > 0) {
      this.logger.info({ lostIds: this.lostSinceFailure }, 'listener counts written again');
      this.lostSinceFailure = undefined;
    }
  }
}
