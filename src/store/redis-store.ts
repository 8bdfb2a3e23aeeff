/**
 * Redis store (ioredis): shared by the packager and any number of origins. Same contract
 * as the memory store (see store.ts); key layout in redis-keys.ts; connection handling
 * (retries, ready wait, error mapping) in redis-connection.ts.
 *
 * - `putSegment`: SET with a PX TTL, binary-safe; resolves once the bytes are readable.
 * - `publish`: one MULTI/EXEC that replaces the channel's whole playlist hash (DEL + HSET),
 *   writes the sequence state and PUBLISHes the channel id, so the notification is sent
 *   only if, and right after, the new playlists are committed (DESIGN.md, Store: write order).
 * - `subscribe`: a second connection (pub/sub needs its own), created on first use; ioredis
 *   subscribes it again after a reconnect. Notifications published while it was
 *   disconnected are lost, as with any Redis pub/sub.
 */
import { Redis } from 'ioredis';
import { OnairError } from '../errors.js';
import { playlistEtag } from './playlist-etag.js';
import {
  createRedisClient,
  logConnectionEvents,
  parseRedisUrl,
  silentLogger,
  toStoreError,
  waitUntilReady,
  type RedisConnectionLimits,
  type StoreLogger,
} from './redis-connection.js';
import { playlistBodyField, playlistEtagField, RedisKeys } from './redis-keys.js';
import type { PublishRequest, Store, StoredPlaylist, StoreUpdateListener } from './store.js';

interface CommonOptions {
  /** First part of every key and of the updates channel (default `onair`). */
  keyPrefix?: string;
  logger?: StoreLogger;
  /** How long `start()` waits for Redis to be ready (default 5000). */
  readyTimeoutMs?: number;
}

export interface RedisStoreUrlOptions extends CommonOptions, RedisConnectionLimits {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…`. */
  url: string;
}

export interface RedisStoreClientOptions extends CommonOptions {
  /** A client owned by the caller: the store uses it but never quits it. */
  client: Redis;
}

export type RedisStoreOptions = RedisStoreUrlOptions | RedisStoreClientOptions;

const DEFAULT_READY_TIMEOUT_MS = 5000;

interface ListenerEntry {
  listener: StoreUpdateListener;
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly keys: RedisKeys;
  private readonly logger: StoreLogger;
  private readonly readyTimeoutMs: number;
  /** Where errors point to: the URL without credentials. */
  private readonly where: string;
  private readonly listeners = new Set<ListenerEntry>();
  private subscriber: Promise<Redis> | undefined;
  private closing: Promise<void> | undefined;

  /** Throws ONAIR_STORE_URL_INVALID for a malformed URL; does not connect before `start()`. */
  constructor(options: RedisStoreOptions | Redis) {
    const normalized: RedisStoreOptions = options instanceof Redis ? { client: options } : options;
    this.keys = new RedisKeys(normalized.keyPrefix);
    this.logger = normalized.logger ?? silentLogger;
    this.readyTimeoutMs = normalized.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    if ('client' in normalized) {
      this.client = normalized.client;
      this.ownsClient = false;
      this.where = 'store.redis';
    } else {
      const target = parseRedisUrl(normalized.url);
      this.client = createRedisClient(target, normalized);
      this.ownsClient = true;
      this.where = target.safeUrl;
      logConnectionEvents(this.client, this.logger, { role: 'commands', url: target.safeUrl });
    }
  }

  async start(): Promise<void> {
    if (this.closing) throw new OnairError('ONAIR_STORE_UNAVAILABLE', 'the store is closed', { where: this.where });
    // A failed start() stops the retries below; a second start() tries again.
    if (this.ownsClient && this.client.status === 'end') this.client.connect().catch(() => {});
    try {
      await waitUntilReady(this.client, this.readyTimeoutMs, this.where);
    } catch (error) {
      // Leave no reconnect timer behind a failed start: the caller may just exit.
      if (this.ownsClient) this.client.disconnect();
      throw error;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.closeConnections();
    return this.closing;
  }

  async putSegment(channel: string, rendition: string, name: string, bytes: Uint8Array, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) {
      throw new RangeError(`segment TTL must be a positive number of seconds, got ${ttlSeconds}`);
    }
    const key = this.keys.segment(channel, rendition, name);
    const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const ttlMs = Math.ceil(ttlSeconds * 1000);
    await this.run('SET segment', () => this.client.set(key, value, 'PX', ttlMs));
  }

  async getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null> {
    const key = this.keys.segment(channel, rendition, name);
    return this.run('GET segment', () => this.client.getBuffer(key));
  }

  async publish(request: PublishRequest): Promise<void> {
    const playlistsKey = this.keys.playlists(request.channel);
    const stateKey = this.keys.state(request.channel);
    const fields: Record<string, string> = {};
    for (const [name, body] of Object.entries(request.playlists)) {
      fields[playlistBodyField(name)] = body;
      fields[playlistEtagField(name)] = playlistEtag(body);
    }
    const transaction = this.client.multi().del(playlistsKey);
    if (Object.keys(fields).length > 0) transaction.hset(playlistsKey, fields);
    transaction.set(stateKey, request.state).publish(this.keys.updates(), request.channel);
    const results = await this.run('MULTI publish', () => transaction.exec());
    if (results === null) {
      throw new OnairError('ONAIR_STORE_UNAVAILABLE', 'Redis publish transaction was aborted', { where: this.where });
    }
    for (const [error] of results) {
      if (error) throw toStoreError(error, 'MULTI publish', this.where);
    }
  }

  async getPlaylist(channel: string, name: string): Promise<StoredPlaylist | null> {
    const key = this.keys.playlists(channel);
    const [body, etag] = await this.run('HMGET playlist', () =>
      this.client.hmget(key, playlistBodyField(name), playlistEtagField(name)),
    );
    if (body === null) return null;
    return { body, etag: etag ?? playlistEtag(body) };
  }

  async getState(channel: string): Promise<string | null> {
    const key = this.keys.state(channel);
    return this.run('GET state', () => this.client.get(key));
  }

  async nextRun(channel: string): Promise<number> {
    const key = this.keys.run(channel);
    return this.run('INCR run', () => this.client.incr(key));
  }

  async subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    await this.connectSubscriber();
    if (this.closing) throw new OnairError('ONAIR_STORE_UNAVAILABLE', 'the store is closed', { where: this.where });
    // An entry per call, so the same function subscribed twice is called twice, like EventEmitter.
    const entry: ListenerEntry = { listener };
    this.listeners.add(entry);
    return async () => {
      this.listeners.delete(entry);
    };
  }

  private connectSubscriber(): Promise<Redis> {
    if (this.closing) {
      return Promise.reject(new OnairError('ONAIR_STORE_UNAVAILABLE', 'the store is closed', { where: this.where }));
    }
    this.subscriber ??= this.openSubscriber().catch((error: unknown) => {
      this.subscriber = undefined;
      throw error;
    });
    return this.subscriber;
  }

  /** The subscriber stays subscribed until close(); listeners come and go locally. */
  private async openSubscriber(): Promise<Redis> {
    const subscriber = this.client.duplicate();
    logConnectionEvents(subscriber, this.logger, { role: 'subscriber', url: this.where });
    const updates = this.keys.updates();
    subscriber.on('message', (redisChannel: string, channel: string) => {
      if (redisChannel === updates) this.notify(channel);
    });
    try {
      await waitUntilReady(subscriber, this.readyTimeoutMs, this.where);
      await subscriber.subscribe(updates);
    } catch (error) {
      subscriber.disconnect();
      throw toStoreError(error, 'SUBSCRIBE', this.where);
    }
    return subscriber;
  }

  private notify(channel: string): void {
    for (const { listener } of [...this.listeners]) {
      try {
        listener(channel);
      } catch (error) {
        this.logger.error({ err: error, channel }, 'store update listener threw');
      }
    }
  }

  private async closeConnections(): Promise<void> {
    this.listeners.clear();
    const subscriber = await this.subscriber?.catch(() => undefined);
    this.subscriber = undefined;
    if (subscriber) await quitClient(subscriber);
    if (this.ownsClient) await quitClient(this.client);
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw toStoreError(error, operation, this.where);
    }
  }
}

/** QUIT when connected (lets pending replies arrive), otherwise drop the socket and retries. */
async function quitClient(client: Redis): Promise<void> {
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

function hasEnded(client: Redis): boolean {
  return client.status === 'end';
}
