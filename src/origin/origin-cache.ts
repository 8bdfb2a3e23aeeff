/**
 * The origin's hot cache (docs/architecture.md, Origin: "steady state serves from memory").
 *
 * - PlaylistCache: one entry per (channel, playlist name) holding the body, the store's ETag,
 *   the gzip variant and the low-latency live edge, computed once per playlist version. When
 *   the store reports a publish for a channel, its cached playlists are read again at once,
 *   so requests are answered from memory. Entries also expire after a max age: short until
 *   the origin is subscribed to notifications, a safety net against a lost one after.
 * - SegmentCache: segments are immutable, so they stay until evicted by a byte-bounded LRU.
 *   A miss (null) is never cached: the segment may appear a moment later.
 *
 * Both share one store read between concurrent requests for the same uncached item. Ages
 * count on the injected clock (the origin's).
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { systemClock, type Clock } from '../clock.js';
import type { StoredPlaylist } from '../store/store.js';
import { readPlaylistPosition, type PlaylistPosition } from './playlist-position.js';
import { ByteLru } from './byte-lru.js';

const gzipAsync = promisify(gzip);

export interface CachedPlaylist {
  body: Buffer;
  /** The store's strong ETag for the identity body. */
  etag: string;
  /** gzip-coded body, or null when gzip would not make it smaller. */
  gzip: Buffer | null;
  /** The strong ETag of the gzip coding (another representation, RFC 9110 §8.8.3). */
  gzipEtag: string;
  /** Low-Latency HLS media playlists only: the live edge. */
  position: PlaylistPosition | undefined;
  /** The URI of the last segment a media playlist lists (`hifi/1234-3.ts`), for prefetching it. */
  newestSegmentUri: string | undefined;
}

interface PlaylistEntry extends CachedPlaylist {
  loadedAt: number;
}

interface PendingPlaylist {
  generation: number;
  promise: Promise<CachedPlaylist | null>;
}

export type PlaylistLoader = (channel: string, name: string) => Promise<StoredPlaylist | null>;

/** Requests answered from memory, and those that had to read the store (or join a read). */
export interface CacheStats {
  hits: number;
  misses: number;
}

export class PlaylistCache {
  readonly stats: CacheStats = { hits: 0, misses: 0 };
  private readonly entries = new Map<string, PlaylistEntry>();
  private readonly pending = new Map<string, PendingPlaylist>();
  /** Bumped per channel on every invalidation, so a read that started before it is not kept. */
  private readonly generations = new Map<string, number>();

  private maxAgeMs: number;

  /**
   * `maxAgeMs` applies until `subscribed()` is called, `subscribedMaxAgeMs` after: with
   * notifications, an entry only expires in case one was lost. Ages are read on `clock`.
   */
  constructor(
    private readonly load: PlaylistLoader,
    unsubscribedMaxAgeMs: number,
    private readonly subscribedMaxAgeMs: number = unsubscribedMaxAgeMs,
    private readonly clock: Clock = systemClock,
  ) {
    this.maxAgeMs = unsubscribedMaxAgeMs;
  }

  /** Notifications flow from now on: every cached playlist is read again once (some may have been missed). */
  subscribed(): void {
    this.maxAgeMs = this.subscribedMaxAgeMs;
    this.invalidateAll();
  }

  /** The playlist from memory, or read from the store when older than the max age (or `maxAgeMs`, if shorter). */
  get(channel: string, name: string, maxAgeMs = this.maxAgeMs): Promise<CachedPlaylist | null> {
    const entry = this.entries.get(entryKey(channel, name));
    if (entry && this.clock.now() - entry.loadedAt < Math.min(maxAgeMs, this.maxAgeMs)) {
      this.stats.hits += 1;
      return Promise.resolve(entry);
    }
    this.stats.misses += 1;
    return this.read(channel, name, entry);
  }

  /** The playlist from memory when get() would answer it without the store (counted as a hit), else undefined. */
  fresh(channel: string, name: string): CachedPlaylist | undefined {
    const entry = this.entries.get(entryKey(channel, name));
    if (entry === undefined || this.clock.now() - entry.loadedAt >= this.maxAgeMs) return undefined;
    this.stats.hits += 1;
    return entry;
  }

  /** Reads the store, sharing a read already under way for the same version. */
  private read(channel: string, name: string, entry: PlaylistEntry | undefined): Promise<CachedPlaylist | null> {
    const key = entryKey(channel, name);
    const generation = this.generations.get(channel) ?? 0;
    const inFlight = this.pending.get(key);
    if (inFlight && inFlight.generation === generation) return inFlight.promise;

    const promise = this.fetch(key, channel, name, generation, entry);
    this.pending.set(key, { generation, promise });
    const forget = (): void => {
      if (this.pending.get(key)?.promise === promise) this.pending.delete(key);
    };
    promise.then(forget, forget);
    return promise;
  }

  /**
   * A publish happened for `channel`: the playlists cached for it are read again now, so
   * that requests keep being answered from memory. Resolves with the refreshed playlists
   * by name (null: gone or unreadable) once they are read (never rejects).
   */
  async invalidate(channel: string): Promise<Map<string, CachedPlaylist | null>> {
    this.generations.set(channel, (this.generations.get(channel) ?? 0) + 1);
    const prefix = entryKey(channel, '');
    const stale: [string, PlaylistEntry][] = [];
    for (const [key, entry] of this.entries) {
      if (!key.startsWith(prefix)) continue;
      this.entries.delete(key);
      stale.push([key.slice(prefix.length), entry]);
    }
    // The stale entry goes along: an unchanged version keeps its buffers (no gzip again).
    const fresh = await Promise.all(stale.map(([name, entry]) => this.read(channel, name, entry).catch(() => null)));
    return new Map(stale.map(([name], index) => [name, fresh[index]!]));
  }

  invalidateAll(): void {
    const channels = new Set([...this.generations.keys(), ...[...this.entries.keys()].map(channelOf)]);
    for (const channel of channels) void this.invalidate(channel);
  }

  /** Drops a channel's entries without reading them again (it left the configuration). */
  forget(channel: string): void {
    this.generations.set(channel, (this.generations.get(channel) ?? 0) + 1);
    const prefix = entryKey(channel, '');
    for (const key of this.entries.keys()) {
      if (key.startsWith(prefix)) this.entries.delete(key);
    }
  }

  private async fetch(
    key: string,
    channel: string,
    name: string,
    generation: number,
    expired: PlaylistEntry | undefined,
  ): Promise<CachedPlaylist | null> {
    const loadedAt = this.clock.now();
    const stored = await this.load(channel, name);
    if (!stored) return null;
    // Same version as the expired entry: keep its buffers, gzip runs once per version.
    const entry: PlaylistEntry =
      expired && expired.etag === stored.etag
        ? { ...expired, loadedAt }
        : { ...(await encodePlaylist(stored)), loadedAt };
    if ((this.generations.get(channel) ?? 0) === generation) this.entries.set(key, entry);
    return entry;
  }
}

async function encodePlaylist(stored: StoredPlaylist): Promise<CachedPlaylist> {
  const body = Buffer.from(stored.body, 'utf8');
  const gzipped = await gzipAsync(body);
  return {
    body,
    etag: stored.etag,
    gzip: gzipped.length < body.length ? gzipped : null,
    gzipEtag: gzipVariantEtag(stored.etag),
    position: readPlaylistPosition(stored.body),
    newestSegmentUri: newestSegmentUri(stored.body),
  };
}

/** The last URI line ending in `.ts`, `.mp3` or `.m4s` (parts, hints and EXT-X-MAP are in tag attributes, not URI lines). */
function newestSegmentUri(body: string): string | undefined {
  let end = -1;
  let extension = '';
  for (const candidate of ['.ts', '.mp3', '.m4s']) {
    const at = body.lastIndexOf(`${candidate}\n`);
    if (at > end) [end, extension] = [at, candidate];
  }
  if (end === -1) return undefined;
  const uri = body.slice(body.lastIndexOf('\n', end) + 1, end + extension.length);
  return uri.startsWith('#') ? undefined : uri;
}

/** The store's tag with `-gz` appended inside the quotes. */
function gzipVariantEtag(etag: string): string {
  return etag.endsWith('"') ? `${etag.slice(0, -1)}-gz"` : `"${etag}-gz"`;
}

export type SegmentLoader = () => Promise<Uint8Array | null>;

export class SegmentCache {
  private readonly lru: ByteLru<Buffer>;

  constructor(maxBytes: number) {
    this.lru = new ByteLru(maxBytes, (_, buffer) => buffer.byteLength);
  }

  get stats(): CacheStats {
    return this.lru.stats;
  }

  get(key: string, load: SegmentLoader): Promise<Buffer | null> {
    return this.lru.get(key, () => asBuffer(load()));
  }

  /** Loads a segment before anyone asks (a new one was just published); not a request, not counted. */
  prefetch(key: string, load: SegmentLoader): void {
    if (this.lru.has(key)) return;
    this.lru.get(key, () => asBuffer(load()), false).catch(() => null);
  }

  /** Drops the segments whose key starts with `prefix` (a channel that left the configuration). */
  dropPrefix(prefix: string): void {
    this.lru.dropPrefix(prefix);
  }

  get sizeBytes(): number {
    return this.lru.sizeBytes;
  }
}

/** The store's bytes as a Buffer over the same memory (no copy). */
async function asBuffer(loading: Promise<Uint8Array | null>): Promise<Buffer | null> {
  const bytes = await loading;
  return bytes && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// Channel ids never contain a slash, so `channel/` is an unambiguous prefix.
function entryKey(channel: string, name: string): string {
  return `${channel}/${name}`;
}

function channelOf(key: string): string {
  return key.slice(0, key.indexOf('/'));
}
