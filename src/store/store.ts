/**
 * The store contract shared by the packager (writer) and the origins (readers), cut into
 * role interfaces named for their consumer: each component takes the narrow one it uses
 * (`OriginStore`, `SegmentPublishStore`, `LeaseStore`, `ChannelStatusStore`, `ListenerStore`,
 * `RecordingStore`, `EventStore`), and `Store` is all of them plus the lifecycle.
 *
 * Two implementations behave the same: `memory-store.ts` (embedded, one process) and
 * `redis-store.ts` (ioredis; shared by many origins). Invariants (docs/architecture.md, Store):
 * - segment bytes are written before the playlist that lists them (`putSegment` resolves
 *   only once the bytes are readable);
 * - `publish` replaces every playlist of a channel and its sequence state in one atomic
 *   step, then notifies subscribers;
 * - segments expire after the TTL the writer gives, so memory stays flat over hours;
 * - listener sets (distinct client ids per channel, rendition and time bucket, see
 *   src/origin/listener-counter.ts) expire the same way: exact sets in memory, HyperLogLogs
 *   in Redis (about 0.81 % standard error);
 * - recording records (one JSON per recorded session, see src/recording/recording-record.ts)
 *   never expire: they are the durable state of sessions and their stitch jobs;
 * - events (e.g. `recording.ready`) go to one bounded, append-only stream shared by every
 *   channel (Redis: a stream, XADD with an approximate MAXLEN).
 */

export interface StoredPlaylist {
  body: string;
  /** Strong validator, the same on every origin that reads this store. */
  etag: string;
}

export interface PublishRequest {
  channel: string;
  /** Lease token of the writer (see `acquireLease`); the write is refused with ONAIR_FENCED unless it is current. */
  fence?: string;
  /** Playlist file name → text, e.g. `fip.m3u8`, `fip_hifi.m3u8`. Replaces all of them at once. */
  playlists: Record<string, string>;
  /** Serialized sequence state of the channel (opaque JSON for the store). */
  state: string;
}

/**
 * A packager's lease on a channel (hot standby, docs/architecture.md, Store): exactly one writer per
 * channel. `token` is opaque, unique per acquisition (a counter and the owner), and is
 * checked by every fenced write in the same atomic step as the write itself.
 */
export interface Lease {
  channel: string;
  token: string;
}

export type StoreUpdateListener = (channel: string) => void;

/** An event of the events stream: its id (`<ms>-<seq>`, increasing) and its fields. */
export interface StoredEvent {
  id: string;
  fields: Record<string, string>;
}

/** The events stream keeps about this many entries; older ones are trimmed. */
export const EVENTS_KEPT = 10_000;

/** Connecting and closing: the owner of a store (onair.ts, the CLI commands) calls these, not its users. */
export interface StoreLifecycle {
  readonly kind: 'memory' | 'redis';
  /** Connects (Redis) and waits until ready; throws ONAIR_STORE_UNAVAILABLE when it cannot. */
  start(): Promise<void>;
  /** Releases connections and timers; never closes a client it does not own. */
  close(): Promise<void>;
}

/** What the origin reads: playlists, segments and parts, the sequence state, and publish notifications. */
export interface OriginStore {
  getPlaylist(channel: string, name: string): Promise<StoredPlaylist | null>;
  getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null>;
  getState(channel: string): Promise<string | null>;
  /** Calls `listener(channel)` after each publish, from any writer sharing this store. */
  subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>>;
}

/**
 * What a packager's publisher writes: segments and parts, then the playlists and state that
 * list them. It reads back its state (takeover) and a predecessor's parts. (Its run id is its
 * own: see src/hls/sequence-state.ts.)
 */
export interface SegmentPublishStore extends Pick<OriginStore, 'getSegment' | 'getState'> {
  /** With `fence`, refused with ONAIR_FENCED (and nothing written) unless that lease token is current. */
  putSegment(channel: string, rendition: string, name: string, bytes: Uint8Array, ttlSeconds: number, fence?: string): Promise<void>;
  publish(request: PublishRequest): Promise<void>;
}

/** The channel leases of hot-standby packagers (channel leadership). */
export interface LeaseStore {
  /**
   * Takes the channel's lease for `owner` for `ttlMs` when nobody holds it (or `owner`
   * already does: then it is extended and the same token returned). Returns null when
   * another owner holds it.
   */
  acquireLease(channel: string, owner: string, ttlMs: number): Promise<Lease | null>;
  /** Extends the lease if it is still current; false when it was lost (expired, taken over). */
  renewLease(lease: Lease, ttlMs: number): Promise<boolean>;
  /** Gives the lease up if it is still current (a clean shutdown hands over at once). */
  releaseLease(lease: Lease): Promise<void>;
}

/** A channel's live status: written by the ingest service that leads it, read by the control API. */
export interface ChannelStatusStore {
  /** The channel's live status (JSON: active input, leader…), for the API and metrics; fenced like publish. */
  putStatus(channel: string, status: string, fence?: string): Promise<void>;
  getStatus(channel: string): Promise<string | null>;
}

/** Listener sets, written by every origin's listener counter and counted for /listeners.json. */
export interface ListenerStore {
  /**
   * Adds client ids to the listener set of `rendition` for time bucket `bucket` (a
   * non-negative integer: time / bucket length). The set expires `ttlMs` after its last
   * write. Adding an id that is already there changes nothing.
   */
  recordListeners(channel: string, rendition: string, bucket: number, clientIds: string[], ttlMs: number): Promise<void>;
  /**
   * Distinct client ids in the union of the sets of `renditions` × `buckets` that have not
   * expired: one rendition for its own count, all of a channel's for its total (a player
   * that switched rendition counts once). Exact in memory, an estimate in Redis.
   */
  countListeners(channel: string, renditions: string[], buckets: number[]): Promise<number>;
}

/**
 * A channel's now playing (JSON, see src/metadata/now-playing.ts): set through the API, the
 * Icecast admin endpoint or a source client; read by the packager (ID3 in segments), every
 * origin's progressive mounts (ICY StreamTitle) and /channels.json. It never expires, so it
 * survives restarts and takeovers, and is not fenced: whoever is allowed to set it, may.
 */
export interface NowPlayingStore {
  /** Replaces the channel's now playing, then notifies `subscribeNowPlaying` listeners everywhere. */
  putNowPlaying(channel: string, nowPlaying: string): Promise<void>;
  getNowPlaying(channel: string): Promise<string | null>;
  /** Calls `listener(channel)` after each `putNowPlaying`, from any writer sharing this store. */
  subscribeNowPlaying(listener: StoreUpdateListener): Promise<() => Promise<void>>;
}

/**
 * Exact counts of open connections (progressive listeners), reported by every origin for
 * itself and summed across origins: an origin that stops reporting drops out after its TTL.
 */
export interface ConnectionCountStore {
  /**
   * Replaces origin `origin`'s counts for `channel` (rendition → open connections); the report
   * expires `ttlMs` after this write unless it is written again.
   */
  putConnectionCounts(origin: string, channel: string, counts: Record<string, number>, ttlMs: number): Promise<void>;
  /** rendition → the sum over the origins whose report has not expired (renditions nobody reported are absent). */
  getConnectionCounts(channel: string): Promise<Record<string, number>>;
}

/**
 * The content keys of encrypted channels (docs/architecture.md, "Content encryption"): 16 bytes
 * per key period, written by the packager that first needs one, read by every origin's key
 * route. They expire with the TTL the writer gives, like segments.
 */
export interface ContentKeyStore {
  /**
   * Stores `key` as the channel's key `keyId` unless one is stored already, and resolves to
   * the stored key: this one, or the one a writer stored before (two writers agree on one).
   */
  putContentKey(channel: string, keyId: number, key: Uint8Array, ttlSeconds: number): Promise<Uint8Array>;
  getContentKey(channel: string, keyId: number): Promise<Uint8Array | null>;
}

/** Whether a store keeps content keys (the memory and Redis stores do; a test's narrow fake may not). */
export function hasContentKeys<S extends object>(store: S): store is S & ContentKeyStore {
  const candidate = store as Partial<ContentKeyStore>;
  return typeof candidate.putContentKey === 'function' && typeof candidate.getContentKey === 'function';
}

/** The records of recorded sessions (the recording catalog). */
export interface RecordingStore {
  /**
   * Writes (creates or replaces) the record of recorded session `session` (JSON). With
   * `fence`, refused with ONAIR_FENCED (nothing written) unless that lease token is current:
   * the stitch jobs of a standby pair write through the channel's lease.
   */
  putRecording(channel: string, session: string, record: string, fence?: string): Promise<void>;
  getRecording(channel: string, session: string): Promise<string | null>;
  /** Every recording record of the channel, in no particular order. */
  listRecordings(channel: string): Promise<string[]>;
  deleteRecording(channel: string, session: string): Promise<void>;
}

/** The events stream (announcements such as `recording.ready`). */
export interface EventStore {
  /** Appends an event to the events stream; returns its id. */
  appendEvent(fields: Record<string, string>): Promise<string>;
  /**
   * Appends the event of `key` (e.g. a recorded session) once per channel: a later call with
   * the same channel and key appends nothing and returns the first event's id. With `fence`,
   * refused with ONAIR_FENCED unless that lease token is current, checked in the same atomic
   * step as the append (on a Redis Cluster, where the stream is on another slot, just before).
   * The key is forgotten with the channel's recording of the same id (`deleteRecording`).
   */
  appendEventOnce(channel: string, key: string, fields: Record<string, string>, fence?: string): Promise<string>;
  /** The newest `count` events, oldest first. */
  readEvents(count: number): Promise<StoredEvent[]>;
}

/** Every role at once: what MemoryStore and RedisStore implement, and what their owner holds. */
export interface Store
  extends StoreLifecycle,
    OriginStore,
    SegmentPublishStore,
    LeaseStore,
    ChannelStatusStore,
    ListenerStore,
    RecordingStore,
    EventStore,
    NowPlayingStore,
    ConnectionCountStore {}

/** Validates a lease TTL for `acquireLease`/`renewLease`: whole milliseconds, at least 1. */
export function leaseTtlMs(ttlMs: number): number {
  return positiveTtlMs('lease', ttlMs);
}

/** Validates the TTL of a listener set for `recordListeners`: whole milliseconds, at least 1. */
export function listenerTtlMs(ttlMs: number): number {
  return positiveTtlMs('listener set', ttlMs);
}

function positiveTtlMs(what: string, ttlMs: number): number {
  if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) {
    throw new RangeError(`${what} TTL must be a positive number of milliseconds, got ${ttlMs}`);
  }
  return Math.ceil(ttlMs);
}

/** Validates one origin's connection counts for `putConnectionCounts`: non-negative safe integers. */
export function connectionCounts(counts: Record<string, number>): Record<string, number> {
  for (const [rendition, count] of Object.entries(counts)) {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new RangeError(`a connection count must be a non-negative integer, got ${count} for ${rendition}`);
    }
  }
  return counts;
}

/** Validates a connection-count report's TTL for `putConnectionCounts`: whole milliseconds, at least 1. */
export function connectionCountTtlMs(ttlMs: number): number {
  return positiveTtlMs('connection count', ttlMs);
}

/** Validates a content key id for `putContentKey`/`getContentKey`: a non-negative safe integer. */
export function contentKeyId(keyId: number): number {
  if (!Number.isSafeInteger(keyId) || keyId < 0) throw new RangeError(`a content key id must be a non-negative integer, got ${keyId}`);
  return keyId;
}

/** Validates a listener time bucket for `recordListeners`/`countListeners`: a non-negative safe integer. */
export function listenerBucket(bucket: number): number {
  if (!Number.isSafeInteger(bucket) || bucket < 0) {
    throw new RangeError(`a listener bucket must be a non-negative integer, got ${bucket}`);
  }
  return bucket;
}
