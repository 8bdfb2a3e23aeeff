/**
 * Redis connection handling in one place: URL parsing, client options (retry strategy,
 * fail-fast limits), the bounded ready wait, outage logging and the mapping of "Redis is
 * unreachable" failures to ONAIR_STORE_UNAVAILABLE (which the origin answers with 503).
 *
 * A command issued during an outage fails within `commandTimeoutMs` at most (ioredis arms
 * the timer even while the command waits in the offline queue), or sooner when the retry
 * count reaches `maxRetriesPerRequest`. Reconnection goes on in the background with a
 * capped backoff, so the same client recovers on its own when Redis is back.
 */
import { Redis, ReplyError, type RedisOptions } from 'ioredis';
import { OnairError } from '../errors.js';

/** pino-compatible subset used by the store. */
export interface StoreLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** The URL without credentials, safe to log. */
  safeUrl: string;
}

export interface RedisConnectionLimits {
  /** Longest a command may wait for a reply, queued or sent (default 2000). */
  commandTimeoutMs?: number;
  /** Cap of the reconnect backoff (default 1000): Redis back up → working again within this. */
  maxRetryDelayMs?: number;
}

const DEFAULT_PORT = 6379;
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const DEFAULT_MAX_RETRY_DELAY_MS = 1000;
const FIRST_RETRY_DELAY_MS = 50;
const RETRY_JITTER_MS = 100;
/** Offline-queued commands fail after this many reconnect attempts (see ioredis docs). */
const MAX_RETRIES_PER_REQUEST = 2;

/** Reply errors that mean "not available right now" rather than "bad command". */
const TRANSIENT_REPLY_PREFIXES = ['LOADING', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'BUSY', 'NOREPLICAS'];

export const silentLogger: StoreLogger = { info() {}, warn() {}, error() {} };

/** Parses `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). */
export function parseRedisUrl(url: string): RedisTarget {
  const invalid = (reason: string): OnairError =>
    new OnairError('ONAIR_STORE_URL_INVALID', `${reason}; expected redis://host:port/db or rediss://host:port/db`, {
      where: 'store.url',
    });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw invalid(`unsupported scheme ${parsed.protocol}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw invalid('missing host');
  if (parsed.search !== '' || parsed.hash !== '') throw invalid('query strings and fragments are not supported');
  const port = parsed.port === '' ? DEFAULT_PORT : Number(parsed.port);
  if (!Number.isInteger(port) || port < 1) throw invalid(`invalid port ${parsed.port}`);
  const dbText = parsed.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,5}$/.test(dbText)) throw invalid(`invalid database number ${JSON.stringify(dbText)}`);
  const db = dbText === '' ? 0 : Number(dbText);
  const username = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
  const password = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  const tls = parsed.protocol === 'rediss:';
  const safeHost = host.includes(':') ? `[${host}]` : host;
  return { host, port, db, username, password, tls, safeUrl: `${parsed.protocol}//${safeHost}:${port}/${db}` };
}

/** Creates a client that does not connect until `waitUntilReady` (lazyConnect). */
export function createRedisClient(target: RedisTarget, limits: RedisConnectionLimits = {}): Redis {
  const maxRetryDelayMs = limits.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
  const options: RedisOptions = {
    host: target.host,
    port: target.port,
    db: target.db,
    username: target.username,
    password: target.password,
    tls: target.tls ? {} : undefined,
    lazyConnect: true,
    // Never give up reconnecting: a store outage must heal without a restart (DESIGN.md, Failure model).
    retryStrategy: (attempt) =>
      Math.min(FIRST_RETRY_DELAY_MS * 2 ** Math.min(attempt - 1, 16), maxRetryDelayMs) +
      Math.floor(Math.random() * RETRY_JITTER_MS),
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    commandTimeout: limits.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: 5000,
    autoResubscribe: true,
  };
  return new Redis(options);
}

/**
 * Resolves once `client` is ready; rejects with ONAIR_STORE_UNAVAILABLE after `timeoutMs`.
 * The client keeps retrying meanwhile, so Redis coming up late within the window is fine.
 */
export async function waitUntilReady(client: Redis, timeoutMs: number, where: string): Promise<void> {
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
export function logConnectionEvents(client: Redis, logger: StoreLogger, context: { role: string; url: string }): void {
  let down = false;
  let lastError: Error | undefined;
  client.on('error', (error: Error) => {
    lastError = error;
  });
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

/**
 * Maps a failed command to a domain error: unreachable/timeouts/transient server states
 * become ONAIR_STORE_UNAVAILABLE; a genuine reply error (a bug, e.g. WRONGTYPE) is
 * returned unchanged so it surfaces as a server fault.
 */
export function toStoreError(error: unknown, operation: string, where: string): Error {
  if (error instanceof OnairError) return error;
  if (error instanceof ReplyError && !isTransientReply(error as Error)) return error as Error;
  const reason = error instanceof Error ? error.message : String(error);
  return new OnairError('ONAIR_STORE_UNAVAILABLE', `Redis ${operation} failed: ${reason}`, { where, cause: error });
}

function isTransientReply(error: Error): boolean {
  return TRANSIENT_REPLY_PREFIXES.some((prefix) => error.message.startsWith(prefix));
}
