/**
 * Live listener counting: who is listening, shared by every origin through the store.
 *
 * A listener is a distinct client session that fetched a media playlist of a channel (200
 * or 304) in the counting window. The session is the id a player sends (`_onair_sid` or
 * `sid` in the query), else a hash of the client's IP and User-Agent (`listenerClientId`).
 * Every id is a fixed 16 characters whatever the client sent (a 4 KB User-Agent included),
 * and nothing keyed by raw client input is kept. Session ids are client-chosen, so each
 * client address gets at most `sessionIdsPerClient` distinct ones per bucket
 * (SessionIdLimiter); past that its requests count by IP and User-Agent.
 *
 * Window: time is cut into buckets one target duration (TD) long, bucket = floor(t / TD).
 * At time `now` the count is the union of the previous and the current bucket, so a fetch
 * is counted from the moment it happens until the end of the bucket after its own: at
 * least 1 TD and at most 2 TD later. A player reloads a live media playlist about once per
 * TD (RFC 8216 §6.3.4), so it stays counted while it plays and is gone 2 TD after it stops.
 *
 * `ListenerCounter` gathers client ids per (channel, rendition, bucket) in memory and writes
 * each set to the store with one call per flush (about every second): requests never wait
 * for the store. Pending ids are bounded (`maxPendingIds`, 100,000 by default: about 10 MB,
 * see PENDING_ID_BYTES); when full, new ids are dropped until the next flush (at most a flush
 * interval later) and the number dropped is logged. Batches the store refuses are dropped
 * and logged too, never an error for a request. The window and the flush timer run on the
 * injected clock.
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
export const DEFAULT_SESSION_IDS_PER_CLIENT = 64;
/** Distinct session ids tracked per bucket over every address (about 10 MB): past it, sessions count by IP and User-Agent. */
export const DEFAULT_MAX_TRACKED_SESSION_IDS = 100_000;
/**
 * Memory of one pending or tracked id, measured (test/origin/listener-counter.test.ts): a
 * 16-character string and its Set slot. Bounds: maxPendingIds × this, and the same for
 * tracked session ids.
 */
export const PENDING_ID_BYTES = 100;

/**
 * The client id of a listener: its session id when it sent a valid one, else a hash of its
 * IP and User-Agent. Hashed either way, so no raw address or session id reaches the store.
 */
export function listenerClientId(sessionId: string | undefined, ip: string, userAgent: string | undefined): string {
  // About a microsecond: the origin asks ClientIdMemo, which hashes only identities it has not
  // seen lately (and long ones, which it never keeps).
  const hash = createHash('sha256');
  if (sessionId === undefined) hash.update('ip:').update(ip).update('\nua:').update(userAgent ?? '');
  else hash.update('sid:').update(sessionId);
  return hash.digest('base64url').slice(0, CLIENT_ID_LENGTH);
}

/**
 * Recent client ids by (session id | IP and User-Agent), so a listener's reloads (one every
 * few seconds) cost a Map lookup, not a SHA-256 (docs/architecture.md, "Origin cost per request").
 * Bounded: identities longer than MAX_MEMO_KEY_CHARACTERS are hashed every time
 * (a client makes its User-Agent as large as it likes) and at most 2 × maxEntries are kept,
 * in two generations: when the newer one is full, the older is dropped, so the ids still
 * in use survive and a flood of new identities only evicts.
 */
export class ClientIdMemo {
  private newer = new Map<string, string>();
  private older = new Map<string, string>();

  constructor(private readonly maxEntries: number = DEFAULT_CLIENT_ID_MEMO_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError('ClientIdMemo: maxEntries must be an integer ≥ 1');
  }

  /** Ids kept right now (both generations). */
  get size(): number {
    return this.newer.size + this.older.size;
  }

  /** listenerClientId(sessionId, ip, userAgent), from memory when it was asked lately. */
  clientId(sessionId: string | undefined, ip: string, userAgent: string | undefined): string {
    const key = sessionId === undefined ? `ip:${ip}\nua:${userAgent ?? ''}` : `sid:${sessionId}`;
    if (key.length > MAX_MEMO_KEY_CHARACTERS) return listenerClientId(sessionId, ip, userAgent);
    let id = this.newer.get(key);
    if (id !== undefined) return id;
    id = this.older.get(key) ?? listenerClientId(sessionId, ip, userAgent);
    if (this.newer.size >= this.maxEntries) {
      this.older = this.newer;
      this.newer = new Map();
    }
    this.newer.set(key, id);
    return id;
  }
}

/** About 2 × 2048 × (256 two-byte characters + the id + Map slots) ≈ 3 MB at most. */
export const DEFAULT_CLIENT_ID_MEMO_ENTRIES = 2048;
const MAX_MEMO_KEY_CHARACTERS = 256;

/** The first valid session id of the query (see SESSION_ID_PARAMETERS), if any. */
export function sessionIdOf(query: Readonly<Record<string, unknown>>): string | undefined {
  for (const name of SESSION_ID_PARAMETERS) {
    const value = query[name];
    if (typeof value === 'string' && SESSION_ID_PATTERN.test(value)) return value;
  }
  return undefined;
}

/**
 * Client-chosen session ids, bounded per client address and in all (see the header). Ids are
 * tracked per counting bucket and forgotten when the bucket changes, so memory is at most
 * `maxTracked` ids (× PENDING_ID_BYTES) plus one entry per address that sent one.
 */
export class SessionIdLimiter {
  private readonly perClient = new Map<string, Set<string>>();
  private tracked = 0;
  private bucket = -1;
  /** Session ids not admitted since start (counted by IP and User-Agent instead). */
  refused = 0;

  constructor(
    private readonly window: ListenerWindow,
    private readonly maxPerClient: number = DEFAULT_SESSION_IDS_PER_CLIENT,
    private readonly maxTracked: number = DEFAULT_MAX_TRACKED_SESSION_IDS,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Whether `client` (an address key) may count as the session whose client id is `sessionId` now. */
  admit(client: string, sessionId: string): boolean {
    const bucket = this.window.bucketOf(this.clock.now());
    if (bucket !== this.bucket) {
      this.perClient.clear();
      this.tracked = 0;
      this.bucket = bucket;
    }
    let sessions = this.perClient.get(client);
    if (sessions?.has(sessionId)) return true;
    if ((sessions?.size ?? 0) >= this.maxPerClient || this.tracked >= this.maxTracked) {
      this.refused += 1;
      return false;
    }
    if (!sessions) {
      sessions = new Set();
      this.perClient.set(client, sessions);
    }
    sessions.add(sessionId);
    this.tracked += 1;
    return true;
  }
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
  /** The set record() added to last, while it is in `pending`. */
  private lastSet: PendingSet | undefined;
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
  record(channel: string, rendition: string, clientId: string, timeMs?: number): boolean {
    const now = this.clock.now();
    const bucket = this.window.bucketToRecord(timeMs ?? now, now);
    if (bucket === null) return false;
    // The set of the last call is most often this one's: no key string, no lookup
    // (docs/architecture.md, "Origin cost per request").
    let set = this.lastSet;
    if (set === undefined || set.bucket !== bucket || set.channel !== channel || set.rendition !== rendition) {
      const key = `${channel}/${rendition}/${bucket}`;
      set = this.pending.get(key);
      if (!set) {
        set = { channel, rendition, bucket, clientIds: new Set() };
        this.pending.set(key, set);
      }
      this.lastSet = set;
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
    this.lastSet = undefined;
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
