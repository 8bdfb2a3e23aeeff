/**
 * Builds the store a config names: `memory` (embedded) or a Redis URL: redis://, rediss://,
 * redis-sentinel:// or redis-cluster:// (see redis-url.ts).
 */
import type { Logger } from 'pino';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import type { Store } from './store.js';

export function createStore(url: string, logger: Logger): Store {
  if (url === 'memory') return new MemoryStore();
  return new RedisStore({ url, logger: logger.child({ component: 'store' }) });
}
