/**
 * Embedded in-process store: the default for one-process setups and the demo.
 * Same contract as the Redis store (see store.ts), including segment TTLs, which a
 * sweep timer enforces so memory stays flat over hours.
 */
import { EventEmitter } from 'node:events';
import { playlistEtag } from './playlist-etag.js';
import type { PublishRequest, Store, StoredPlaylist, StoreUpdateListener } from './store.js';

interface ExpiringSegment {
  bytes: Uint8Array;
  expiresAt: number;
}

interface MemoryChannel {
  playlists: Map<string, StoredPlaylist>;
  state: string | null;
  run: number;
  segments: Map<string, ExpiringSegment>;
}

const SWEEP_INTERVAL_MS = 1000;

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly channels = new Map<string, MemoryChannel>();
  private readonly updates = new EventEmitter();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
    this.updates.setMaxListeners(0);
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
  }

  async putSegment(channel: string, rendition: string, name: string, bytes: Uint8Array, ttlSeconds: number): Promise<void> {
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
    const channel = this.channel(request.channel);
    // Build the new map first and swap it in: readers see all old or all new playlists.
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

  async nextRun(channel: string): Promise<number> {
    const entry = this.channel(channel);
    entry.run += 1;
    return entry.run;
  }

  async subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    this.updates.on('update', listener);
    return async () => {
      this.updates.off('update', listener);
    };
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
    }
  }

  private channel(id: string): MemoryChannel {
    let channel = this.channels.get(id);
    if (!channel) {
      channel = { playlists: new Map(), state: null, run: 0, segments: new Map() };
      this.channels.set(id, channel);
    }
    return channel;
  }
}

function segmentKey(rendition: string, name: string): string {
  return `${rendition}/${name}`;
}
