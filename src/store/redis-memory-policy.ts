/**
 * Redis's memory policy, checked when the Redis store starts (docs/architecture.md, Store).
 *
 * onair's sequence state, playlists, status and recording records have no TTL; segments,
 * parts, leases and listener sets have one. When Redis reaches `maxmemory`:
 * - `allkeys-*` evicts any key: the sequence state (the next run starts a new sequence) and
 *   the playlists (players get 404s);
 * - `volatile-*` evicts keys that have a TTL: segments a playlist still lists (a listed
 *   segment answers 404, which hls.js does not retry) and leases (`volatile-ttl` takes the
 *   shortest TTL first: the lease, so leadership flaps between standbys);
 * - `noeviction` refuses writes instead: the packager retries and queues up to a window, the
 *   playlists already published stay as they are (see the publish script), and publishing
 *   resumes once memory frees.
 * So only `noeviction` is accepted, unless the operator sets `redis.allowEvictingPolicy`.
 * Every master of a Cluster is checked; behind Sentinel, the master the client reaches.
 */
import { OnairError } from '../errors.js';
import type { StoreLogger } from './redis-connection.js';

/** The one policy that never evicts onair's keys. */
export const NON_EVICTING_POLICY = 'noeviction';

/** A Redis node the check asks: its address (for messages, without credentials) and its `INFO memory`. */
export interface PolicyNode {
  address: string;
  infoMemory(): Promise<string>;
}

export interface MemoryPolicyCheck {
  /** Run on an evicting policy anyway (logged as a warning). */
  allowEvicting: boolean;
  logger: StoreLogger;
}

/** `maxmemory_policy` and `maxmemory` from an `INFO memory` reply; undefined when absent. */
export function memorySettingsOf(info: string): { policy: string; maxmemory: number | undefined } | undefined {
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy === undefined) return undefined;
  const maxmemory = /^maxmemory:(\d+)/m.exec(info)?.[1];
  return { policy, maxmemory: maxmemory === undefined ? undefined : Number(maxmemory) };
}

/**
 * Asks each node for its memory policy; throws ONAIR_STORE_POLICY on the first one that may
 * evict, unless `allowEvicting`. A node that does not tell (INFO refused or renamed, as some
 * managed services do) is logged and passed: the check is a guard, not a gate on unknowns.
 */
export async function checkMemoryPolicy(nodes: readonly PolicyNode[], check: MemoryPolicyCheck): Promise<void> {
  for (const node of nodes) {
    const at = node.address;
    let settings: ReturnType<typeof memorySettingsOf>;
    try {
      settings = memorySettingsOf(await node.infoMemory());
    } catch (error) {
      check.logger.warn({ err: error, url: at }, 'cannot read maxmemory-policy (INFO memory refused); make sure it is noeviction');
      continue;
    }
    if (settings === undefined) {
      check.logger.warn({ url: at }, 'INFO memory has no maxmemory_policy; make sure it is noeviction');
      continue;
    }
    if (settings.policy === NON_EVICTING_POLICY) continue;
    if (check.allowEvicting) {
      check.logger.warn(
        { url: at, maxmemoryPolicy: settings.policy, maxmemory: settings.maxmemory },
        'Redis may evict onair keys (redis.allowEvictingPolicy is set): playlists, state and listed segments can vanish when memory is full',
      );
      continue;
    }
    throw new OnairError(
      'ONAIR_STORE_POLICY',
      `Redis maxmemory-policy is ${settings.policy}: when memory is full Redis would evict onair's sequence state, ` +
        `playlists or listed segments. Set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf), ` +
        `or set redis.allowEvictingPolicy: true to run anyway`,
      { where: at },
    );
  }
}
