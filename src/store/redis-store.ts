/**
 * Redis store (ioredis): shared by the packagers and any number of origins, on a single
 * server, behind Sentinel or on a Cluster. Same contract as the memory store (see
 * store.ts); key layout in redis-keys.ts; Lua scripts in redis-scripts.ts; connection
 * handling (clients, retries, ready wait, error mapping) in redis-connection.ts.
 *
 * - `putSegment`: SET with a PX TTL, binary-safe; resolves once the bytes are readable.
 *   Fenced: one script that checks the lease token, then SETs.
 * - `publish`: one script that (when fenced) checks the lease token, replaces the
 *   channel's whole playlist hash (HSET of the new playlists first, then HDEL of the stale
 *   ones, so a publish Redis refuses for memory leaves the previous ones), writes the
 *   sequence state and PUBLISHes the channel id, so the notification is sent only if, and
 *   right after, the new playlists are committed (docs/architecture.md, Store: write order).
 * - `start`: refuses a Redis whose maxmemory-policy may evict keys (ONAIR_STORE_POLICY), on
 *   every master of a Cluster, unless `allowEvictingPolicy` (see redis-memory-policy.ts).
 * - Leases: `<counter>:<owner>` tokens with a PX TTL (see redis-scripts.ts). A token is
 *   compared whole, so a counter reset by lost data cannot revive an old token of
 *   another owner.
 * - Listener sets: one HyperLogLog per channel, rendition and time bucket, written by a
 *   script (PFADD in chunks, then PEXPIRE); counted by one PFCOUNT over every key asked for,
 *   which Redis merges into a union (the keys share the channel's slot).
 * - Recording records: one hash per channel (HSET/HGET/HVALS/HDEL), no TTL. Events: XADD
 *   to one stream, trimmed to about EVENTS_KEPT entries (MAXLEN ~), read with XREVRANGE.
 * - `subscribe`: a second connection (pub/sub needs its own; on a Cluster, to any one
 *   node, since PUBLISH reaches them all), created on first use; ioredis subscribes it
 *   again after a reconnect.
 *   Notifications published while it was disconnected are lost, as with any Redis pub/sub.
 */
import { Cluster, Redis } from 'ioredis';
import { isOnairError, OnairError } from '../errors.js';
import { playlistEtag } from './playlist-etag.js';
import {
  commandDeadlineMs,
  createClusterSubscriber,
  createRedisClient,
  isCluster,
  logConnectionEvents,
  quitClient,
  silentLogger,
  toStoreError,
  waitUntilReady,
  withDeadline,
  type RedisClient,
  type RedisConnectionLimits,
  type StoreLogger,
} from './redis-connection.js';
import { playlistBodyField, playlistEtagField, RedisKeys } from './redis-keys.js';
import { checkMemoryPolicy, type PolicyNode } from './redis-memory-policy.js';
import { ACQUIRE_LEASE, APPEND_EVENT_ONCE, APPEND_EVENT_ONCE_CHECK, FENCED_HSET, FENCED_SET, PUBLISH, RECORD_LISTENERS, RELEASE_LEASE, RENEW_LEASE, runScript, type LuaScript } from './redis-scripts.js';
import { parseRedisUrl } from './redis-url.js';
import {
  connectionCounts,
  connectionCountTtlMs,
  EVENTS_KEPT,
  leaseTtlMs,
  listenerTtlMs,
  type ContentKeyStore,
  type Lease,
  type PublishRequest,
  type Store,
  type StoredEvent,
  type StoredPlaylist,
  type StoreUpdateListener,
} from './store.js';

interface CommonOptions extends RedisConnectionLimits {
  /** First part of every key and of the updates channel (default `onair`). */
  keyPrefix?: string;
  logger?: StoreLogger;
  /** How long `start()` waits for Redis to be ready (default 5000). */
  readyTimeoutMs?: number;
  /** Start even when Redis's maxmemory-policy may evict keys (config `redis.allowEvictingPolicy`; default false). */
  allowEvictingPolicy?: boolean;
}

export interface RedisStoreUrlOptions extends CommonOptions {
  /** `redis://…`, `rediss://…`, `redis-sentinel://…` or `redis-cluster://…` (see redis-url.ts). */
  url: string;
}

export interface RedisStoreClientOptions extends CommonOptions {
  /** A client owned by the caller: the store uses it but never quits it. */
  client: RedisClient;
}

export type RedisStoreOptions = RedisStoreUrlOptions | RedisStoreClientOptions;

const DEFAULT_READY_TIMEOUT_MS = 5000;

interface ListenerEntry {
  /** Which announcements: publishes (`subscribe`) or now-playing changes (`subscribeNowPlaying`). */
  topic: 'publish' | 'now-playing';
  listener: StoreUpdateListener;
}

export class RedisStore implements Store, ContentKeyStore {
  readonly kind = 'redis' as const;
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly keys: RedisKeys;
  private readonly logger: StoreLogger;
  private readonly readyTimeoutMs: number;
  private readonly allowEvictingPolicy: boolean;
  private readonly limits: RedisConnectionLimits;
  /** Set for a Cluster client, whose offline queue has no timeout of its own. */
  private readonly deadlineMs: number | undefined;
  /** Where errors point to: the URL without credentials. */
  private readonly where: string;
  private readonly listeners = new Set<ListenerEntry>();
  private subscriber: Promise<Redis> | undefined;
  private closing: Promise<void> | undefined;

  /** Throws ONAIR_STORE_URL_INVALID for a malformed URL; does not connect before `start()`. */
  constructor(options: RedisStoreOptions | RedisClient) {
    const normalized: RedisStoreOptions = options instanceof Redis || options instanceof Cluster ? { client: options } : options;
    this.keys = new RedisKeys(normalized.keyPrefix);
    this.logger = normalized.logger ?? silentLogger;
    this.readyTimeoutMs = normalized.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.allowEvictingPolicy = normalized.allowEvictingPolicy ?? false;
    this.limits = { commandTimeoutMs: normalized.commandTimeoutMs, maxRetryDelayMs: normalized.maxRetryDelayMs };
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
    this.deadlineMs = isCluster(this.client) ? commandDeadlineMs(normalized) : undefined;
  }

  async start(): Promise<void> {
    if (this.closing) throw new OnairError('ONAIR_STORE_UNAVAILABLE', 'the store is closed', { where: this.where });
    // A failed start() stops the retries below; a second start() tries again.
    if (this.ownsClient && this.client.status === 'end') this.client.connect().catch(() => {});
    try {
      await waitUntilReady(this.client, this.readyTimeoutMs, this.where);
      await this.run('INFO memory', () => this.checkMemoryPolicy());
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

  async putSegment(
    channel: string,
    rendition: string,
    name: string,
    bytes: Uint8Array,
    ttlSeconds: number,
    fence?: string,
  ): Promise<void> {
    if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) {
      throw new RangeError(`segment TTL must be a positive number of seconds, got ${ttlSeconds}`);
    }
    const key = this.keys.segment(channel, rendition, name);
    const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const ttlMs = Math.ceil(ttlSeconds * 1000);
    if (fence === undefined) {
      await this.run('SET segment', () => this.client.set(key, value, 'PX', ttlMs));
    } else {
      await this.script('SET segment', FENCED_SET, [this.keys.lease(channel), key], [fence, value, ttlMs]);
    }
  }

  async getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null> {
    const key = this.keys.segment(channel, rendition, name);
    return this.run('GET segment', () => this.client.getBuffer(key));
  }

  async publish(request: PublishRequest): Promise<void> {
    const { channel, fence } = request;
    const fields: string[] = [];
    for (const [name, body] of Object.entries(request.playlists)) {
      fields.push(playlistBodyField(name), body, playlistEtagField(name), playlistEtag(body));
    }
    const keys = [this.keys.lease(channel), this.keys.playlists(channel), this.keys.state(channel)];
    const args = [fence === undefined ? '0' : '1', fence ?? '', request.state, this.keys.updates(), channel, ...fields];
    await this.script('publish', PUBLISH, keys, args);
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

  async acquireLease(channel: string, owner: string, ttlMs: number): Promise<Lease | null> {
    if (owner === '') throw new RangeError('a lease owner must be non-empty');
    const keys = [this.keys.lease(channel), this.keys.fence(channel)];
    const token = await this.script('acquire lease', ACQUIRE_LEASE, keys, [owner, leaseTtlMs(ttlMs)]);
    return typeof token === 'string' ? { channel, token } : null;
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<boolean> {
    const keys = [this.keys.lease(lease.channel)];
    return (await this.script('renew lease', RENEW_LEASE, keys, [lease.token, leaseTtlMs(ttlMs)])) === 1;
  }

  async releaseLease(lease: Lease): Promise<void> {
    await this.script('release lease', RELEASE_LEASE, [this.keys.lease(lease.channel)], [lease.token]);
  }

  async putStatus(channel: string, status: string, fence?: string): Promise<void> {
    const key = this.keys.status(channel);
    if (fence === undefined) {
      await this.run('SET status', () => this.client.set(key, status));
    } else {
      await this.script('SET status', FENCED_SET, [this.keys.lease(channel), key], [fence, status, 0]);
    }
  }

  async getStatus(channel: string): Promise<string | null> {
    const key = this.keys.status(channel);
    return this.run('GET status', () => this.client.get(key));
  }

  async putNowPlaying(channel: string, nowPlaying: string): Promise<void> {
    const key = this.keys.nowPlaying(channel);
    await this.run('SET now playing', () => this.client.set(key, nowPlaying));
    await this.run('PUBLISH now playing', () => this.client.publish(this.keys.nowPlayingUpdates(), channel));
  }

  async putContentKey(channel: string, keyId: number, key: Uint8Array, ttlSeconds: number): Promise<Uint8Array> {
    if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) throw new RangeError(`content key TTL must be a positive number of seconds, got ${ttlSeconds}`);
    const redisKey = this.keys.contentKey(channel, keyId);
    const value = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
    try {
      // NX: the first writer's key stays; then read back whichever that is.
      await this.run('SET content key', () => this.client.set(redisKey, value, 'PX', Math.ceil(ttlSeconds * 1000), 'NX'));
      const stored = await this.run('GET content key', () => this.client.getBuffer(redisKey));
      return stored ?? value;
    } catch (error) {
      // ioredis hangs the failed command, key bytes included, on its error: none of it may reach a log.
      throw isOnairError(error) ? new OnairError(error.code, error.message) : new OnairError('ONAIR_STORE_UNAVAILABLE', 'Redis SET content key failed', { where: this.where });
    }
  }

  async getContentKey(channel: string, keyId: number): Promise<Uint8Array | null> {
    const redisKey = this.keys.contentKey(channel, keyId);
    return this.run('GET content key', () => this.client.getBuffer(redisKey));
  }

  async getNowPlaying(channel: string): Promise<string | null> {
    const key = this.keys.nowPlaying(channel);
    return this.run('GET now playing', () => this.client.get(key));
  }

  async subscribeNowPlaying(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    return this.addListener('now-playing', listener);
  }

  async putConnectionCounts(origin: string, channel: string, counts: Record<string, number>, ttlMs: number): Promise<void> {
    const key = this.keys.connections(channel);
    const expiresAt = Date.now() + connectionCountTtlMs(ttlMs);
    const report = `${expiresAt}|${JSON.stringify(connectionCounts(counts))}`;
    await this.run('HSET connections', () => this.client.hset(key, origin, report));
  }

  async getConnectionCounts(channel: string): Promise<Record<string, number>> {
    const key = this.keys.connections(channel);
    const reports = await this.run('HGETALL connections', () => this.client.hgetall(key));
    const totals: Record<string, number> = {};
    const now = Date.now();
    const expired: string[] = [];
    for (const [origin, report] of Object.entries(reports)) {
      const separator = report.indexOf('|');
      const expiresAt = Number(report.slice(0, separator));
      if (!(expiresAt > now)) {
        expired.push(origin);
        continue;
      }
      const counts = JSON.parse(report.slice(separator + 1)) as Record<string, number>;
      for (const [rendition, count] of Object.entries(counts)) totals[rendition] = (totals[rendition] ?? 0) + count;
    }
    // An origin that stopped reporting is forgotten by the next reader (the hash stays small).
    if (expired.length > 0) await this.run('HDEL connections', () => this.client.hdel(key, ...expired));
    return totals;
  }

  async recordListeners(channel: string, rendition: string, bucket: number, clientIds: string[], ttlMs: number): Promise<void> {
    const key = this.keys.listeners(channel, rendition, bucket);
    const ttl = listenerTtlMs(ttlMs);
    if (clientIds.length === 0) return;
    await this.script('PFADD listeners', RECORD_LISTENERS, [key], [ttl, ...clientIds]);
  }

  async countListeners(channel: string, renditions: string[], buckets: number[]): Promise<number> {
    const keys = renditions.flatMap((rendition) => buckets.map((bucket) => this.keys.listeners(channel, rendition, bucket)));
    if (keys.length === 0) return 0;
    return this.run('PFCOUNT listeners', () => this.client.pfcount(keys));
  }

  async putRecording(channel: string, session: string, record: string, fence?: string): Promise<void> {
    const key = this.keys.recordings(channel);
    if (fence === undefined) await this.run('HSET recording', () => this.client.hset(key, session, record));
    else await this.script('HSET recording', FENCED_HSET, [this.keys.lease(channel), key], [fence, session, record]);
  }

  async getRecording(channel: string, session: string): Promise<string | null> {
    const key = this.keys.recordings(channel);
    return this.run('HGET recording', () => this.client.hget(key, session));
  }

  async listRecordings(channel: string): Promise<string[]> {
    const key = this.keys.recordings(channel);
    return this.run('HVALS recordings', () => this.client.hvals(key));
  }

  async deleteRecording(channel: string, session: string): Promise<void> {
    const key = this.keys.recordings(channel);
    const announced = this.keys.announced(channel);
    await this.run('HDEL recording', () => this.client.multi().hdel(key, session).hdel(announced, session).exec());
  }

  async appendEventOnce(channel: string, key: string, fields: Record<string, string>, fence?: string): Promise<string> {
    const values = Object.entries(fields).flat();
    if (values.length === 0) throw new RangeError('an event needs at least one field');
    const lease = this.keys.lease(channel);
    const announced = this.keys.announced(channel);
    if (!isCluster(this.client)) {
      const keys = [lease, announced, this.keys.events()];
      return String(await this.script('XADD event once', APPEND_EVENT_ONCE, keys, [fence === undefined ? '0' : '1', fence ?? '', key, EVENTS_KEPT, ...values]));
    }
    // Cluster: the stream is on another slot than the channel. The lease is checked and the key
    // looked up first (one script on the channel's slot), then the event is appended and its id kept.
    const before = await this.script('HGET announced', APPEND_EVENT_ONCE_CHECK, [lease, announced], [fence === undefined ? '0' : '1', fence ?? '', key]);
    if (typeof before === 'string') return before;
    const id = await this.appendEvent(fields);
    await this.run('HSETNX announced', () => this.client.hsetnx(announced, key, id));
    return (await this.run('HGET announced', () => this.client.hget(announced, key))) ?? id;
  }

  async appendEvent(fields: Record<string, string>): Promise<string> {
    const key = this.keys.events();
    const values = Object.entries(fields).flat();
    if (values.length === 0) throw new RangeError('an event needs at least one field');
    const id = await this.run('XADD event', () => this.client.xadd(key, 'MAXLEN', '~', EVENTS_KEPT, '*', ...values));
    return id!;
  }

  async readEvents(count: number): Promise<StoredEvent[]> {
    if (!(count > 0)) return [];
    const key = this.keys.events();
    const entries = await this.run('XREVRANGE events', () => this.client.xrevrange(key, '+', '-', 'COUNT', Math.ceil(count)));
    return entries.reverse().map(([id, values]) => {
      const fields: Record<string, string> = {};
      for (let index = 0; index + 1 < values.length; index += 2) fields[values[index]!] = values[index + 1]!;
      return { id, fields };
    });
  }

  async subscribe(listener: StoreUpdateListener): Promise<() => Promise<void>> {
    return this.addListener('publish', listener);
  }

  private async addListener(topic: ListenerEntry['topic'], listener: StoreUpdateListener): Promise<() => Promise<void>> {
    await this.connectSubscriber();
    if (this.closing) throw new OnairError('ONAIR_STORE_UNAVAILABLE', 'the store is closed', { where: this.where });
    // An entry per call, so the same function subscribed twice is called twice, like EventEmitter.
    const entry: ListenerEntry = { topic, listener };
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
    // duplicate() copies the options: lazyConnect, retries, Sentinel. A Cluster gets a plain
    // connection to one of its nodes (see createClusterSubscriber).
    const subscriber = isCluster(this.client) ? createClusterSubscriber(this.client, this.limits, this.where) : this.client.duplicate();
    logConnectionEvents(subscriber, this.logger, { role: 'subscriber', url: this.where });
    const updates = this.keys.updates();
    const nowPlayingUpdates = this.keys.nowPlayingUpdates();
    subscriber.on('message', (redisChannel: string, channel: string) => {
      if (redisChannel === updates) this.notify('publish', channel);
      if (redisChannel === nowPlayingUpdates) this.notify('now-playing', channel);
    });
    try {
      await waitUntilReady(subscriber, this.readyTimeoutMs, this.where);
      await this.bounded('SUBSCRIBE', subscriber.subscribe(updates, nowPlayingUpdates));
    } catch (error) {
      subscriber.disconnect();
      throw toStoreError(error, 'SUBSCRIBE', this.where);
    }
    return subscriber;
  }

  private notify(topic: ListenerEntry['topic'], channel: string): void {
    for (const { topic: wanted, listener } of [...this.listeners]) {
      if (wanted !== topic) continue;
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

  /** Every master of a Cluster, or the one server (behind Sentinel: the master) must not evict. */
  private checkMemoryPolicy(): Promise<void> {
    const client = this.client;
    const nodes: PolicyNode[] = isCluster(client)
      ? client.nodes('master').map((node) => ({ address: `${node.options.host}:${node.options.port}`, infoMemory: () => node.info('memory') }))
      : [{ address: this.where, infoMemory: () => client.info('memory') }];
    return checkMemoryPolicy(nodes, { allowEvicting: this.allowEvictingPolicy, logger: this.logger });
  }

  private script(operation: string, lua: LuaScript, keys: string[], args: (string | Buffer | number)[]): Promise<unknown> {
    return this.run(operation, () => runScript(this.client, lua, keys, args));
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await this.bounded(operation, command());
    } catch (error) {
      throw toStoreError(error, operation, this.where);
    }
  }

  private bounded<T>(operation: string, command: Promise<T>): Promise<T> {
    return this.deadlineMs === undefined ? command : withDeadline(command, this.deadlineMs, operation, this.where);
  }
}
