/** Passes every call to an inner store; tests extend it to observe or break the parts they need. */
import type { Lease, PublishRequest, Store, StoredEvent, StoredPlaylist, StoreUpdateListener } from '../../src/store/store.js';

export class DelegatingStore implements Store {
  readonly kind = 'memory' as const;
  constructor(readonly inner: Store) {}
  start(): Promise<void> {
    return this.inner.start();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  putSegment(channel: string, rendition: string, name: string, bytes: Uint8Array, ttlSeconds: number, fence?: string): Promise<void> {
    return this.inner.putSegment(channel, rendition, name, bytes, ttlSeconds, fence);
  }
  getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null> {
    return this.inner.getSegment(channel, rendition, name);
  }
  publish(request: PublishRequest): Promise<void> {
    return this.inner.publish(request);
  }
  getPlaylist(channel: string, name: string): Promise<StoredPlaylist | null> {
    return this.inner.getPlaylist(channel, name);
  }
  getState(channel: string): Promise<string | null> {
    return this.inner.getState(channel);
  }
  acquireLease(channel: string, owner: string, ttlMs: number): Promise<Lease | null> {
    return this.inner.acquireLease(channel, owner, ttlMs);
  }
  renewLease(lease: Lease, ttlMs: number): Promise<boolean> {
    return this.inner.renewLease(lease, ttlMs);
  }
  releaseLease(lease: Lease): Promise<void> {
    return this.inner.releaseLease(lease);
  }
  putStatus(channel: string, status: string, fence?: string): Promise<void> {
    return this.inner.putStatus(channel, status, fence);
  }
  getStatus(channel: string): Promise<string | null> {
    return this.inner.getStatus(channel);
  }
  recordListeners(channel: string, rendition: string, bucket: number, clientIds: string[], ttlMs: number): Promise<void> {
    return this.inner.recordListeners(channel, rendition, bucket, clientIds, ttlMs);
  }
  countListeners(channel: string, renditions: string[], buckets: number[]): Promise<number> {
    return this.inner.countListeners(channel, renditions, buckets);
  }
  putNowPlaying(channel: string, nowPlaying: string): Promise<void> {
    return this.inner.putNowPlaying(channel, nowPlaying);
  }
  getNowPlaying(channel: string): Promise<string | null> {
    return this.inner.getNowPlaying(channel);
  }
  subscribeNowPlaying(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    return this.inner.subscribeNowPlaying(listener);
  }
  putConnectionCounts(origin: string, channel: string, counts: Record<string, number>, ttlMs: number): Promise<void> {
    return this.inner.putConnectionCounts(origin, channel, counts, ttlMs);
  }
  getConnectionCounts(channel: string): Promise<Record<string, number>> {
    return this.inner.getConnectionCounts(channel);
  }
  putRecording(channel: string, session: string, record: string, fence?: string): Promise<void> {
    return this.inner.putRecording(channel, session, record, fence);
  }
  getRecording(channel: string, session: string): Promise<string | null> {
    return this.inner.getRecording(channel, session);
  }
  listRecordings(channel: string): Promise<string[]> {
    return this.inner.listRecordings(channel);
  }
  deleteRecording(channel: string, session: string): Promise<void> {
    return this.inner.deleteRecording(channel, session);
  }
  appendEvent(fields: Record<string, string>): Promise<string> {
    return this.inner.appendEvent(fields);
  }

  appendEventOnce(channel: string, key: string, fields: Record<string, string>, fence?: string): Promise<string> {
    return this.inner.appendEventOnce(channel, key, fields, fence);
  }
  readEvents(count: number): Promise<StoredEvent[]> {
    return this.inner.readEvents(count);
  }
  subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    return this.inner.subscribe(listener);
  }
}
