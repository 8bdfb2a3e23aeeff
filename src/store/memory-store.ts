/**
 * Embedded in-process store: the default for one-process setups and the demo.
 * Same contract as the Redis store (see store.ts), including segment and listener-set TTLs,
 * which a sweep timer enforces so memory stays flat over hours, and leases, which expire by
 * the same `now()` clock. Listener sets are exact (`Set`s of client ids) where Redis
 * estimates. Every method checks the fence and writes in one synchronous step, so no other
 * call can come in between (the in-process counterpart of a Lua script).
 */
import { EventEmitter } from 'node:events';
import { OnairError } from '../errors.js';
import { playlistEtag } from './playlist-etag.js';
import {
  connectionCounts,
  connectionCountTtlMs,
  contentKeyId,
  EVENTS_KEPT,
  leaseTtlMs,
  listenerBucket,
  listenerTtlMs,
  type ContentKeyStore,
  type Lease,
  type PublishRequest,
  type Store,
  type StoredEvent,
  type StoredPlaylist,
  type StoreUpdateListener,
} from './store.js';

interface ExpiringSegment {
  bytes: Uint8Array;
  expiresAt: number;
}

/** The client ids of one rendition in one time bucket. */
interface ExpiringListenerSet {
  clientIds: Set<string>;
  expiresAt: number;
}

interface HeldLease {
  token: string;
  owner: string;
  expiresAt: number;
}

interface MemoryChannel {
  playlists: Map<string, StoredPlaylist>;
  state: string | null;
  segments: Map<string, ExpiringSegment>;
  /** `<rendition>/<bucket>` → listener set. */
  listeners: Map<string, ExpiringListenerSet>;
  lease: HeldLease | null;
  /** Lease acquisitions so far: the first part of every token, as in the Redis store. */
  leaseCount: number;
  status: string | null;
  /** Recording records by session id. */
  recordings: Map<string, string>;
  /** Event ids of appendEventOnce, by key. */
  announced: Map<string, string>;
  nowPlaying: string | null;
  /** origin → its last connection-count report. */
  connections: Map<string, { counts: Record<string, number>; expiresAt: number }>;
  /** Content keys by key id (encrypted channels). */
  contentKeys: Map<number, ExpiringSegment>;
}

const SWEEP_INTERVAL_MS = 1000;

export class MemoryStore implements Store, ContentKeyStore {
  readonly kind = 'memory' as const;
  private readonly channels = new Map<string, MemoryChannel>();
  private readonly updates = new EventEmitter();
  private readonly nowPlayingUpdates = new EventEmitter();
  private readonly events: StoredEvent[] = [];
  /** Ids as Redis streams make them: `<ms>-<seq>`, increasing even within one millisecond. */
  private lastEventMs = 0;
  private lastEventSeq = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
    this.updates.setMaxListeners(0);
    this.nowPlayingUpdates.setMaxListeners(0);
  }

  async start(): Promise<void> {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => this.sweepExpired(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.updates.removeAllListeners();
    this.nowPlayingUpdates.removeAllListeners();
  }

  async putSegment(
    channel: string,
    rendition: string,
    name: string,
    bytes: Uint8Array,
    ttlSeconds: number,
    fence?: string,
  ): Promise<void> {
    this.checkFence(channel, fence);
    this.channel(channel).segments.set(segmentKey(rendition, name), {
      bytes,
      expiresAt: this.now() + ttlSeconds * 1000,
    });
  }

  async getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null> {
    const segment = this.channels.get(channel)?.segments.get(segmentKey(rendition, name));
    if (!segment || segment.expiresAt <= this.now()) return null;
    return segment.bytes;
  }

  async publish(request: PublishRequest): Promise<void> {
    this.checkFence(request.channel, request.fence);
    const channel = this.channel(request.channel);
    // Build the new map first and swap it in: readers see all old or all new playlists, and a
    // publish that fails (fenced above) leaves the previous ones, as the Redis script does.
    // Nothing here is refused for memory: the embedded store has no maxmemory.
    const playlists = new Map<string, StoredPlaylist>();
    for (const [name, body] of Object.entries(request.playlists)) {
      playlists.set(name, { body, etag: playlistEtag(body) });
    }
    channel.playlists = playlists;
    channel.state = request.state;
    this.updates.emit('update', request.channel);
  }

  async getPlaylist(channel: string, name: string): Promise<StoredPlaylist | null> {
    return this.channels.get(channel)?.playlists.get(name) ?? null;
  }

  async getState(channel: string): Promise<string | null> {
    return this.channels.get(channel)?.state ?? null;
  }

  async acquireLease(channel: string, owner: string, ttlMs: number): Promise<Lease | null> {
    if (owner === '') throw new RangeError('a lease owner must be non-empty');
    const expiresAt = this.now() + leaseTtlMs(ttlMs);
    const entry = this.channel(channel);
    const current = this.currentLease(channel);
    if (current) {
      if (current.owner !== owner) return null;
      current.expiresAt = expiresAt;
      return { channel, token: current.token };
    }
    entry.leaseCount += 1;
    entry.lease = { token: `${entry.leaseCount}:${owner}`, owner, expiresAt };
    return { channel, token: entry.lease.token };
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<boolean> {
    const expiresAt = this.now() + leaseTtlMs(ttlMs);
    const current = this.currentLease(lease.channel);
    if (current?.token !== lease.token) return false;
    current.expiresAt = expiresAt;
    return true;
  }

  async releaseLease(lease: Lease): Promise<void> {
    if (this.currentLease(lease.channel)?.token === lease.token) this.channel(lease.channel).lease = null;
  }

  async putStatus(channel: string, status: string, fence?: string): Promise<void> {
    this.checkFence(channel, fence);
    this.channel(channel).status = status;
  }

  async getStatus(channel: string): Promise<string | null> {
    return this.channels.get(channel)?.status ?? null;
  }

  async putNowPlaying(channel: string, nowPlaying: string): Promise<void> {
    this.channel(channel).nowPlaying = nowPlaying;
    this.nowPlayingUpdates.emit('update', channel);
  }

  async getNowPlaying(channel: string): Promise<string | null> {
    return this.channels.get(channel)?.nowPlaying ?? null;
  }

  async subscribeNowPlaying(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    this.nowPlayingUpdates.on('update', listener);
    return async () => {
      this.nowPlayingUpdates.off('update', listener);
    };
  }

  async putConnectionCounts(origin: string, channel: string, counts: Record<string, number>, ttlMs: number): Promise<void> {
    const expiresAt = this.now() + connectionCountTtlMs(ttlMs);
    this.channel(channel).connections.set(origin, { counts: { ...connectionCounts(counts) }, expiresAt });
  }

  async getConnectionCounts(channel: string): Promise<Record<string, number>> {
    const totals: Record<string, number> = {};
    const now = this.now();
    for (const report of this.channels.get(channel)?.connections.values() ?? []) {
      if (report.expiresAt <= now) continue;
      for (const [rendition, count] of Object.entries(report.counts)) totals[rendition] = (totals[rendition] ?? 0) + count;
    }
    return totals;
  }

  async recordListeners(channel: string, rendition: string, bucket: number, clientIds: string[], ttlMs: number): Promise<void> {
    const key = listenerSetKey(rendition, bucket);
    const expiresAt = this.now() + listenerTtlMs(ttlMs);
    if (clientIds.length === 0) return;
    const sets = this.channel(channel).listeners;
    let set = sets.get(key);
    if (!set || set.expiresAt <= this.now()) {
      set = { clientIds: new Set(), expiresAt };
      sets.set(key, set);
    }
    for (const clientId of clientIds) set.clientIds.add(clientId);
    set.expiresAt = expiresAt;
  }

  async countListeners(channel: string, renditions: string[], buckets: number[]): Promise<number> {
    const keys = renditions.flatMap((rendition) => buckets.map((bucket) => listenerSetKey(rendition, bucket)));
    const sets = this.channels.get(channel)?.listeners ?? new Map<string, ExpiringListenerSet>();
    const union = new Set<string>();
    const now = this.now();
    for (const key of keys) {
      const set = sets.get(key);
      if (set && set.expiresAt > now) {
        for (const clientId of set.clientIds) union.add(clientId);
      }
    }
    return union.size;
  }

  async putRecording(channel: string, session: string, record: string, fence?: string): Promise<void> {
    this.checkFence(channel, fence);
    this.channel(channel).recordings.set(session, record);
  }

  async getRecording(channel: string, session: string): Promise<string | null> {
    return this.channels.get(channel)?.recordings.get(session) ?? null;
  }

  async listRecordings(channel: string): Promise<string[]> {
    return [...(this.channels.get(channel)?.recordings.values() ?? [])];
  }

  async deleteRecording(channel: string, session: string): Promise<void> {
    this.channels.get(channel)?.recordings.delete(session);
    this.channels.get(channel)?.announced.delete(session);
  }

  async appendEventOnce(channel: string, key: string, fields: Record<string, string>, fence?: string): Promise<string> {
    this.checkFence(channel, fence);
    const announced = this.channel(channel).announced;
    const existing = announced.get(key);
    if (existing !== undefined) return existing;
    const id = await this.appendEvent(fields);
    announced.set(key, id);
    return id;
  }

  async appendEvent(fields: Record<string, string>): Promise<string> {
    if (Object.keys(fields).length === 0) throw new RangeError('an event needs at least one field');
    const now = Math.max(this.now(), this.lastEventMs);
    this.lastEventSeq = now === this.lastEventMs ? this.lastEventSeq + 1 : 0;
    this.lastEventMs = now;
    const id = `${now}-${this.lastEventSeq}`;
    this.events.push({ id, fields: { ...fields } });
    if (this.events.length > EVENTS_KEPT) this.events.splice(0, this.events.length - EVENTS_KEPT);
    return id;
  }

  async readEvents(count: number): Promise<StoredEvent[]> {
    return count > 0 ? this.events.slice(-count).map((event) => ({ id: event.id, fields: { ...event.fields } })) : [];
  }

  async subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    this.updates.on('update', listener);
    return async () => {
      this.updates.off('update', listener);
    };
  }

  async putContentKey(channel: string, keyId: number, key: Uint8Array, ttlSeconds: number): Promise<Uint8Array> {
    const keys = this.channel(channel).contentKeys;
    const stored = keys.get(contentKeyId(keyId));
    if (stored && stored.expiresAt > this.now()) return stored.bytes;
    keys.set(keyId, { bytes: Uint8Array.from(key), expiresAt: this.now() + ttlSeconds * 1000 });
    return keys.get(keyId)!.bytes;
  }

  async getContentKey(channel: string, keyId: number): Promise<Uint8Array | null> {
    const stored = this.channels.get(channel)?.contentKeys.get(contentKeyId(keyId));
    return stored && stored.expiresAt > this.now() ? stored.bytes : null;
  }

  /** Number of segments held, expired or not (for memory-flatness tests). */
  segmentCount(): number {
    let count = 0;
    for (const channel of this.channels.values()) count += channel.segments.size;
    return count;
  }

  sweepExpired(): void {
    const now = this.now();
    for (const channel of this.channels.values()) {
      for (const [key, segment] of channel.segments) {
        if (segment.expiresAt <= now) channel.segments.delete(key);
      }
      for (const [keyId, key] of channel.contentKeys) {
        if (key.expiresAt <= now) channel.contentKeys.delete(keyId);
      }
      for (const [origin, report] of channel.connections) {
        if (report.expiresAt <= now) channel.connections.delete(origin);
      }
      for (const [key, set] of channel.listeners) {
        if (set.expiresAt <= now) channel.listeners.delete(key);
      }
    }
  }

  /** The channel's lease unless it has expired by `now()`. */
  private currentLease(channel: string): HeldLease | null {
    const lease = this.channels.get(channel)?.lease ?? null;
    return lease && lease.expiresAt > this.now() ? lease : null;
  }

  /** Throws ONAIR_FENCED for a fenced write whose token is not the channel's current lease. */
  private checkFence(channel: string, fence: string | undefined): void {
    if (fence === undefined || this.currentLease(channel)?.token === fence) return;
    throw new OnairError('ONAIR_FENCED', 'the lease token is not current: another packager leads', { where: channel });
  }

  private channel(id: string): MemoryChannel {
    let channel = this.channels.get(id);
    if (!channel) {
      channel = { playlists: new Map(), state: null, segments: new Map(), listeners: new Map(), lease: null, leaseCount: 0, status: null, recordings: new Map(), announced: new Map(), nowPlaying: null, connections: new Map(), contentKeys: new Map() };
      this.channels.set(id, channel);
    }
    return channel;
  }
}

function segmentKey(rendition: string, name: string): string {
  return `${rendition}/${name}`;
}

function listenerSetKey(rendition: string, bucket: number): string {
  return `${rendition}/${listenerBucket(bucket)}`;
}
