/**
 * Builds the store a config names: `memory` (embedded) or a Redis URL: redis://, rediss://,
 * redis-sentinel:// or redis-cluster:// (see redis-url.ts).
 */
import type { Logger } from 'pino';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import type { Store } from './store.js';

export interface StoreOptions {
  /** Redis only: start even when its maxmemory-policy may evict keys (config `redis.allowEvictingPolicy`). */
  allowEvictingPolicy?: boolean;
}

export function createStore(url: string, logger: Logger, options: StoreOptions = {}): Store {
  if (url === 'memory') return new MemoryStore();
  return new RedisStore({ url, logger: logger.child({ component: 'store' }), allowEvictingPolicy: options.allowEvictingPolicy });
}
