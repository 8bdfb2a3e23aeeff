/**
 * The store contract shared by the packager (writer) and the origins (readers).
 *
 * Two implementations behave the same: `memory-store.ts` (embedded, one process) and
 * `redis-store.ts` (ioredis; shared by many origins). Invariants (DESIGN.md, Store):
 * - segment bytes are written before the playlist that lists them (`putSegment` resolves
 *   only once the bytes are readable);
 * - `publish` replaces every playlist of a channel and its sequence state in one atomic
 *   step, then notifies subscribers;
 * - segments expire after the TTL the writer gives, so memory stays flat over hours.
 */

export interface StoredPlaylist {
  body: string;
  /** Strong validator, the same on every origin that reads this store. */
  etag: string;
}

export interface PublishRequest {
  channel: string;
  /** Playlist file name → text, e.g. `fip.m3u8`, `fip_hifi.m3u8`. Replaces all of them at once. */
  playlists: Record<string, string>;
  /** Serialized sequence state of the channel (opaque JSON for the store). */
  state: string;
}

export type StoreUpdateListener = (channel: string) => void;

export interface Store {
  readonly kind: 'memory' | 'redis';
  /** Connects (Redis) and waits until ready; throws ONAIR_STORE_UNAVAILABLE when it cannot. */
  start(): Promise<void>;
  /** Releases connections and timers; never closes a client it does not own. */
  close(): Promise<void>;

  putSegment(channel: string, rendition: string, name: string, bytes: Uint8Array, ttlSeconds: number): Promise<void>;
  getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null>;

  publish(request: PublishRequest): Promise<void>;
  getPlaylist(channel: string, name: string): Promise<StoredPlaylist | null>;
  getState(channel: string): Promise<string | null>;

  /** Increments and returns the channel's packager run counter (1 on first use). */
  nextRun(channel: string): Promise<number>;

  /** Calls `listener(channel)` after each publish, from any writer sharing this store. */
  subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>>;
}
