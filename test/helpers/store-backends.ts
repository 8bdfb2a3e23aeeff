/**
 * The store implementations the contract suite (test/store/store-contract.test.ts) runs
 * against: the embedded MemoryStore, and the RedisStore on a private redis-server, a
 * three-node Cluster and a Sentinel setup, all started here on free loopback ports and
 * stopped when the test file ends. (It lives in test/helpers because `npx tap test/store`
 * would run any .ts file in that folder as a test.)
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Test } from 'tap';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/store.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedisSentinel } from './redis-sentinel.js';
import { startRedisServer } from './redis-server.js';

/** Stores opened by one harness see the same data, like origins sharing one store. */
export interface StoreHarness {
  /** A started store, closed at the end of the test. */
  open(): Promise<Store>;
  /** Another store instance over the same data (another origin), or `store` itself when embedded. */
  openPeer(store: Store): Promise<Store>;
  /** Lets `ms` pass for segment and lease TTLs. */
  elapse(ms: number): Promise<void>;
  /**
   * Loses every piece of data, as a Redis restarted without persistence (FLUSHALL) or a
   * restarted process for the embedded store; resolves with the store to go on with.
   */
  loseData(store: Store): Promise<Store>;
}

export interface Backend {
  name: string;
  harness(t: Test): StoreHarness;
}

/** Starts the servers the Redis backends need; `t` (the file's top level) stops them at the end. */
export async function startBackends(t: Test): Promise<Backend[]> {
  const [server, cluster, sentinel] = await Promise.all([startRedisServer(), startRedisCluster(), startRedisSentinel()]);
  t.teardown(() => Promise.all([server.stop(), cluster.stop(), sentinel.stop()]));
  return [
    memoryBackend,
    redisBackend('redis', server.url, [server.port]),
    redisBackend('redis cluster', cluster.url, cluster.ports),
    redisBackend('redis sentinel', sentinel.url, [sentinel.master.port]),
  ];
}

const memoryBackend: Backend = {
  name: 'memory',
  harness(t) {
    // A fake clock: TTLs expire without waiting, deterministically.
    let clock = Date.now();
    const open = async (): Promise<Store> => {
      const store = new MemoryStore({ now: () => clock });
      await store.start();
      t.teardown(() => store.close());
      return store;
    };
    return {
      open,
      async openPeer(store) {
        return store;
      },
      async elapse(ms) {
        clock += ms;
      },
      // The embedded store's data is lost with its process: a new one starts empty.
      loseData: () => open(),
    };
  },
};

/** `dataPorts`: the servers holding the data (every Cluster master), for FLUSHALL. */
function redisBackend(name: string, url: string, dataPorts: readonly number[]): Backend {
  return {
    name,
    harness(t) {
      // A unique prefix per test: tests never see each other's keys.
      const keyPrefix = `test-${randomUUID().slice(0, 8)}`;
      const open = async (): Promise<Store> => {
        const store = new RedisStore({ url, keyPrefix });
        t.teardown(() => store.close());
        await store.start();
        return store;
      };
      return {
        open,
        openPeer: open,
        elapse: (ms) => sleep(ms),
        async loseData(store) {
          await Promise.all(dataPorts.map((port) => flushAll(port)));
          return store;
        },
      };
    },
  };
}

async function flushAll(port: number): Promise<void> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    await client.flushall();
  } finally {
    client.disconnect();
  }
}
