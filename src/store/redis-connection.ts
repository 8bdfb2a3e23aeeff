/**
 * Redis connection handling in one place: client creation for a single server, Sentinel
 * and Cluster (retry strategy, fail-fast limits), the bounded ready wait, outage logging
 * and the mapping of failures to domain errors: "Redis is unreachable" becomes
 * ONAIR_STORE_UNAVAILABLE (which the origin answers with 503), a fenced write refused by a
 * script becomes ONAIR_FENCED. URL parsing is in redis-url.ts.
 *
 * A command issued during an outage fails within `commandTimeoutMs` at most, or sooner
 * when the retry count reaches `maxRetriesPerRequest`. On a single server or Sentinel
 * ioredis arms that timer even while the command waits in the offline queue; a Cluster
 * client does not time out its own offline queue, so the store adds a deadline of its own
 * (`commandDeadlineMs`). Reconnection goes on in the background with a capped backoff, so
 * the same client recovers on its own when Redis is back. Pub/sub on a Cluster goes over
 * a plain connection to one node (`createClusterSubscriber`), not ioredis' Cluster
 * subscriber, which reconnects in a tight loop while the nodes are down.
 */
import { createConnection, type Socket } from 'node:net';
import { AbstractConnector, Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import { OnairError } from '../errors.js';
import type { RedisAddress, RedisTarget } from './redis-url.js';

/** A client of any deployment: a single server or Sentinel (`Redis`), or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/** pino-compatible subset used by the store. */
export interface StoreLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface RedisConnectionLimits {
  /** Longest a command may wait for a reply, queued or sent (default 2000). */
  commandTimeoutMs?: number;
  /** Cap of the reconnect backoff (default 1000): Redis back up → working again within this. */
  maxRetryDelayMs?: number;
}

/** First word of the error reply a script sends when a fenced write carries a stale token. */
export const FENCED_REPLY = 'FENCED';

const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const DEFAULT_MAX_RETRY_DELAY_MS = 1000;
const CONNECT_TIMEOUT_MS = 5000;
const FIRST_RETRY_DELAY_MS = 50;
const RETRY_JITTER_MS = 100;
/** Offline-queued commands fail after this many reconnect attempts (see ioredis docs). */
const MAX_RETRIES_PER_REQUEST = 2;
/** Slack over commandTimeout for the Cluster deadline, so ioredis' own timeout wins when armed. */
const CLUSTER_DEADLINE_SLACK_MS = 100;

/** The error reply of a write refused because maxmemory is reached (noeviction). */
const OUT_OF_MEMORY_REPLY = 'OOM ';

/** Reply errors that mean "not available right now" rather than "bad command". */
const TRANSIENT_REPLY_PREFIXES = ['LOADING', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'BUSY', 'NOREPLICAS'];

export const silentLogger: StoreLogger = { info() {}, warn() {}, error() {} };

/** Creates a client for `target` that does not connect until `waitUntilReady` (lazyConnect). */
export function createRedisClient(target: RedisTarget, limits: RedisConnectionLimits = {}): RedisClient {
  const { perConnection, retryDelay } = connectionOptions(limits, target);
  switch (target.mode) {
    case 'standalone':
      return new Redis({
        ...perConnection,
        host: target.host,
        port: target.port,
        db: target.db,
        tls: target.tls ? {} : undefined,
        lazyConnect: true,
        retryStrategy: retryDelay,
      });
    case 'sentinel':
      return new Redis({
        ...perConnection,
        sentinels: target.sentinels,
        name: target.masterName,
        db: target.db,
        lazyConnect: true,
        // The master's address is asked of the Sentinels again on every reconnect.
        retryStrategy: retryDelay,
        sentinelRetryStrategy: retryDelay,
        sentinelCommandTimeout: perConnection.commandTimeout,
      });
    case 'cluster': {
      const options: ClusterOptions = {
        lazyConnect: true,
        clusterRetryStrategy: retryDelay,
        enableOfflineQueue: true,
        slotsRefreshTimeout: perConnection.commandTimeout,
        redisOptions: perConnection,
      };
      return new Cluster(target.nodes, options);
    }
  }
}

/**
 * A pub/sub connection for a Cluster, lazyConnect like the others. ioredis' own Cluster
 * subscriber picks another node at once, without any backoff, each time its connection
 * ends: with every node down that is a tight reconnect loop keeping a core busy for the
 * whole outage. A plain PUBLISH reaches every node of a Cluster, so one ordinary
 * connection to any node hears every update; this one moves on to the next known node on
 * each reconnect, with the same backoff and limits as the other clients.
 */
export function createClusterSubscriber(cluster: Cluster, limits: RedisConnectionLimits, where: string): Redis {
  const credentials = { username: cluster.options.redisOptions?.username, password: cluster.options.redisOptions?.password };
  const { perConnection, retryDelay } = connectionOptions(limits, credentials);
  const known = new Map<string, RedisAddress>();
  const currentNodes = (): RedisAddress[] => {
    for (const node of cluster.nodes('all')) {
      const { host = '127.0.0.1', port = 6379 } = node.options;
      known.set(`${host}:${port}`, { host, port });
    }
    return [...known.values()];
  };
  if (currentNodes().length === 0) {
    throw new OnairError('ONAIR_STORE_UNAVAILABLE', 'the Redis Cluster has no known node to subscribe on', { where });
  }
  return new Redis({
    ...perConnection,
    lazyConnect: true,
    retryStrategy: retryDelay,
    Connector: rotatingConnector(currentNodes),
  });
}

function connectionOptions(limits: RedisConnectionLimits, credentials: { username?: string; password?: string }) {
  const maxRetryDelayMs = limits.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
  // Never give up reconnecting: a store outage must heal without a restart (docs/architecture.md, Failure model).
  const retryDelay = (attempt: number): number =>
    Math.min(FIRST_RETRY_DELAY_MS * 2 ** Math.min(Math.max(attempt, 1) - 1, 16), maxRetryDelayMs) +
    Math.floor(Math.random() * RETRY_JITTER_MS);
  const perConnection = {
    username: credentials.username,
    password: credentials.password,
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    commandTimeout: limits.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    autoResubscribe: true,
  } satisfies RedisOptions;
  return { perConnection, retryDelay };
}

/** An ioredis connector that connects to the next of `addresses()` on every (re)connect. */
function rotatingConnector(addresses: () => RedisAddress[]) {
  let next = 0;
  return class RotatingConnector extends AbstractConnector {
    constructor(options: unknown) {
      super((options as RedisOptions).disconnectTimeout ?? 2000);
    }

    connect(): Promise<Socket> {
      const list = addresses();
      const address = list[next++ % list.length];
      this.connecting = true;
      // Like ioredis' StandaloneConnector: connect on the next tick unless disconnected meanwhile.
      return new Promise((resolve, reject) => {
        process.nextTick(() => {
          if (!this.connecting) {
            reject(new Error('Connection is closed.'));
            return;
          }
          const stream = createConnection(address);
          stream.once('error', (error) => {
            this.firstError = error;
          });
          this.stream = stream;
          resolve(stream);
        });
      });
    }
  };
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/** How long the store lets a Cluster command run before failing it (see the header). */
export function commandDeadlineMs(limits: RedisConnectionLimits): number {
  return (limits.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS) + CLUSTER_DEADLINE_SLACK_MS;
}

/** Rejects with ONAIR_STORE_UNAVAILABLE when `command` has not settled within `timeoutMs`. */
export async function withDeadline<T>(command: Promise<T>, timeoutMs: number, operation: string, where: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new OnairError('ONAIR_STORE_UNAVAILABLE', `Redis ${operation} timed out after ${timeoutMs} ms`, { where })),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([command, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves once `client` is ready; rejects with ONAIR_STORE_UNAVAILABLE after `timeoutMs`.
 * The client keeps retrying meanwhile, so Redis coming up late within the window is fine.
 */
export async function waitUntilReady(client: RedisClient, timeoutMs: number, where: string): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'end') {
    throw new OnairError('ONAIR_STORE_UNAVAILABLE', 'the Redis client is closed', { where });
  }
  let lastError: unknown;
  await new Promise<void>((resolve, reject) => {
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const onError = (error: unknown): void => {
      lastError = error;
    };
    const onEnd = (): void => {
      cleanup();
      reject(new OnairError('ONAIR_STORE_UNAVAILABLE', 'the Redis client closed before it was ready', { where, cause: lastError }));
    };
    const timer = setTimeout(() => {
      cleanup();
      const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
      reject(new OnairError('ONAIR_STORE_UNAVAILABLE', `Redis not ready after ${timeoutMs} ms${reason}`, { where, cause: lastError }));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
    // The rejection of connect() reports only the first attempt; the events above see all of them.
    if (client.status === 'wait') client.connect().catch(() => {});
  });
}

/**
 * Logs one warning when a client loses Redis and one info line when it is back, instead
 * of one line per reconnect attempt. Also keeps ioredis from printing unhandled errors.
 */
export function logConnectionEvents(client: RedisClient, logger: StoreLogger, context: { role: string; url: string }): void {
  let down = false;
  let lastError: Error | undefined;
  const remember = (error: Error): void => {
    lastError = error;
  };
  client.on('error', remember);
  // A Cluster reports a failing node on 'node error' and keeps 'error' for the whole cluster.
  if (isCluster(client)) client.on('node error', remember);
  // 'reconnecting' fires when a retry is scheduled, never after a deliberate quit().
  client.on('reconnecting', () => {
    if (down) return;
    down = true;
    logger.warn({ ...context, err: lastError }, 'redis unreachable; retrying');
  });
  client.on('ready', () => {
    if (down) logger.info(context, 'redis connection restored');
    down = false;
    lastError = undefined;
  });
}

/** QUIT when connected (lets pending replies arrive), otherwise drop the sockets and retries. */
export async function quitClient(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    try {
      await client.quit();
    } catch {
      // The connection went away meanwhile; disconnect() below finishes the job.
    }
  }
  // Read the status afresh: quit() may or may not have ended the connection yet.
  if (!hasEnded(client)) client.disconnect();
}

function hasEnded(client: RedisClient): boolean {
  return client.status === 'end';
}

/**
 * Maps a failed command to a domain error: a fencing refusal becomes ONAIR_FENCED, a write
 * refused for memory (maxmemory under noeviction) ONAIR_STORE_FULL;
 * unreachable/timeouts/transient server states become ONAIR_STORE_UNAVAILABLE; any other
 * reply error (a bug, e.g. WRONGTYPE) is returned unchanged so it surfaces as a server fault.
 */
export function toStoreError(error: unknown, operation: string, where: string): Error {
  if (error instanceof OnairError) return error;
  if (error instanceof ReplyError) {
    const message = (error as Error).message;
    if (message.startsWith(`${FENCED_REPLY} `) || message === FENCED_REPLY) {
      return new OnairError('ONAIR_FENCED', `Redis ${operation} refused: ${message}`, { where, cause: error });
    }
    if (message.startsWith(OUT_OF_MEMORY_REPLY)) {
      return new OnairError('ONAIR_STORE_FULL', `Redis ${operation} refused: ${message}`, { where, cause: error });
    }
    if (!isTransientReply(message)) return error as Error;
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new OnairError('ONAIR_STORE_UNAVAILABLE', `Redis ${operation} failed: ${reason}`, { where, cause: error });
}

function isTransientReply(message: string): boolean {
  return TRANSIENT_REPLY_PREFIXES.some((prefix) => message.startsWith(prefix));
}
