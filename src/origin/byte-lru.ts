/**
 * A cache bounded in bytes, least recently used out first, whose misses load once per key at
 * a time: callers that ask while a load is under way share it. The origin's segment cache and
 * the signed-playlist variants are both one (docs/architecture.md, Origin).
 */
export interface LruStats {
  hits: number;
  misses: number;
}

export class ByteLru<V> {
  readonly stats: LruStats = { hits: 0, misses: 0 };
  /** Map iteration order is insertion order: the first key is the least recently used. */
  private readonly entries = new Map<string, V>();
  /** Loads under way, by key: one per key, shared by its callers. */
  private readonly pending = new Map<string, Promise<unknown>>();
  private totalBytes = 0;

  /** `sizeOf` is what an entry counts against `maxBytes` (its key included, where keys can be large). */
  constructor(
    private readonly maxBytes: number,
    private readonly sizeOf: (key: string, value: V) => number,
  ) {}

  get sizeBytes(): number {
    return this.totalBytes;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * The value under `key` (now the most recently used), else `load()`'s, kept when it fits and
   * is not null. `count: false` for a prefetch, which is not a request.
   */
  get<R extends V | null>(key: string, load: () => Promise<R>, count = true): Promise<V | R> {
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      if (count) this.stats.hits += 1;
      this.entries.delete(key);
      this.entries.set(key, cached);
      return Promise.resolve(cached);
    }
    if (count) this.stats.misses += 1;
    // A key is always loaded the same way by its owner, so a shared load has this call's type.
    const inFlight = this.pending.get(key) as Promise<R> | undefined;
    if (inFlight) return inFlight;
    const promise = load().then((value) => {
      if (value !== null) this.remember(key, value as V);
      return value;
    });
    this.pending.set(key, promise);
    const forget = (): void => {
      this.pending.delete(key);
    };
    promise.then(forget, forget);
    return promise;
  }

  /** Drops the entries whose key starts with `prefix`. */
  dropPrefix(prefix: string): void {
    for (const [key, value] of this.entries) {
      if (!key.startsWith(prefix)) continue;
      this.entries.delete(key);
      this.totalBytes -= this.sizeOf(key, value);
    }
  }

  private remember(key: string, value: V): void {
    const bytes = this.sizeOf(key, value);
    if (bytes > this.maxBytes || this.entries.has(key)) return;
    this.entries.set(key, value);
    this.totalBytes += bytes;
    for (const [oldestKey, oldest] of this.entries) {
      if (this.totalBytes <= this.maxBytes) break;
      this.entries.delete(oldestKey);
      this.totalBytes -= this.sizeOf(oldestKey, oldest);
    }
  }
}
