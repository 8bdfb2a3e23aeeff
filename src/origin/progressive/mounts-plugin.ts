/**
 * Icecast-style progressive mounts on the origin, as a Fastify plugin registered after the
 * origin plugin (docs/architecture.md, Progressive mounts). Routes:
 *   GET/HEAD /{channel}-{rendition}.aac   endless ADTS AAC (audio/aac)
 *   GET/HEAD /{channel}-{rendition}.mp3   endless MPEG audio (audio/mpeg), for MP3 renditions
 *   GET/HEAD /status-json.xsl             Icecast's JSON status (icecast-status.ts)
 * OPTIONS is CORS preflight (the origin's cors-headers.ts); other methods get 405.
 *
 * Every origin serves every mount from the store alone: one Mount per (channel, rendition)
 * per process follows the media playlist while it has listeners (mount.ts). A request with
 * `Icy-MetaData: 1` gets `icy-metaint` and the channel's now playing (NowPlayingStore, followed
 * through its own pub/sub channel) as StreamTitle. The body is delimited by the end of the
 * connection, as Icecast does (no chunked coding: some hardware players cannot read it).
 *
 * Bounds: at most `maxListeners` progressive listeners per process (then 503 + Retry-After,
 * ONAIR_MOUNT_FULL); a listener whose unsent bytes pass `maxBacklogBytes` is disconnected.
 * Exact counts: every `reportIntervalMs` this process writes its open connections per
 * rendition to the store (ConnectionCountStore, with a TTL of three intervals), and
 * `onairMounts.counts()` sums every origin's.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { systemClock, type Clock, type Timer } from '../../clock.js';
import { progressiveDefaults } from '../../config/config-schema.js';
import { OnairError } from '../../errors.js';
import { sendError, sendOnairError } from '../../http/error-replies.js';
import { DEFAULT_STORE_TIMEOUT_MS, readFromStore } from '../../http/store-read.js';
import { displayTitle, parseNowPlaying } from '../../media/now-playing.js';
import type { ConnectionCountStore, ContentKeyStore, NowPlayingStore, OriginStore } from '../../store/store.js';
import { StoreUpdates } from '../store-updates.js';
import { audioInfo, icecastStatus, type StatusSource } from './icecast-status.js';
import { Mount, type MountEncryption } from './mount.js';

export type MountCodec = 'aac' | 'mp3';

/** One rendition served as a mount, with what its headers announce. */
export interface MountDescription {
  channel: string;
  rendition: string;
  codec: MountCodec;
  /** Bits per second (icy-br is this in kb/s). */
  bitrate: number;
  sampleRate: number;
  audioChannels: number;
  icy?: { name?: string; description?: string; genre?: string; url?: string };
  /** An encrypted channel's: the mount decrypts its stored segments (docs/architecture.md, "Recordings and mounts of encrypted channels"). */
  encryption?: MountEncryption;
}

export type ProgressiveStore = Pick<OriginStore, 'getPlaylist' | 'getSegment' | 'subscribe'> &
  Pick<NowPlayingStore, 'getNowPlaying' | 'subscribeNowPlaying'> &
  ConnectionCountStore &
  Partial<Pick<ContentKeyStore, 'getContentKey'>>;

export interface ProgressiveOptions {
  store: ProgressiveStore;
  mounts: MountDescription[];
  /** `origin.progressive.*`; each defaults as in the config. */
  metaint?: number;
  burstSeconds?: number;
  maxBacklogBytes?: number;
  maxListeners?: number;
  storeTimeoutMs?: number;
  clock?: Clock;
  /** This process in the connection counts; default host name, pid and random digits. */
  originId?: string;
  /** How often this origin's counts are written to the store; default 5000 ms. */
  reportIntervalMs?: number;
  /** A mount keeps following this long after its last listener left; default 5000 ms. */
  idleGraceMs?: number;
  /** A following mount re-reads its playlist this often without a notification; default 1000 ms. */
  recheckMs?: number;
}

export interface MountStatsSnapshot {
  channel: string;
  rendition: string;
  /** Open connections on this process. */
  listeners: number;
  jumps: number;
  /** Encrypted channels: segments and parts skipped because their key was missing or they did not decrypt. */
  undecryptable: number;
}

/** Decorated on the instance as `onairMounts`. */
export interface MountsControl {
  /** Replaces the served mounts (a config reload); listeners of removed mounts are disconnected. */
  setMounts(mounts: MountDescription[]): void;
  /** This process's listeners per mount, and totals, for metrics. */
  stats(): { mounts: MountStatsSnapshot[]; slowDisconnects: number; refused: number };
  /** channel → rendition → open progressive connections summed over every origin (from the store, cached ~1 s). */
  counts(): Promise<Record<string, Record<string, number>>>;
}

declare module 'fastify' {
  interface FastifyInstance {
    onairMounts: MountsControl;
  }
}

export const STATUS_PATH = '/status-json.xsl';
export const MOUNT_ROUTE = '/:mount';
const CONTENT_TYPES: Record<MountCodec, string> = { aac: 'audio/aac', mp3: 'audio/mpeg' };
const ICY_HEADERS = ['icy-br', 'icy-description', 'icy-genre', 'icy-metaint', 'icy-name', 'icy-pub', 'icy-url', 'ice-audio-info'];
const WRITE_METHODS = ['DELETE', 'PATCH', 'POST', 'PUT'];
const COUNTS_MAX_AGE_MS = 1000;
const DEFAULT_REPORT_INTERVAL_MS = 5000;
const DEFAULT_IDLE_GRACE_MS = 5000;
const DEFAULT_RECHECK_MS = 1000;
/** A report lives this many intervals: one lost write does not drop an origin's listeners. */
const REPORT_TTL_INTERVALS = 3;

/**
 * The renditions of a channel that have a progressive mount: its AAC and MP3 ones (Opus and
 * FLAC have no Icecast-style stream: docs/architecture.md, "Opus and FLAC renditions"). An
 * encrypted channel's mounts decrypt its stored segments ("Recordings and mounts of encrypted channels").
 */
export function mountedRenditions<R extends { codec?: string }>(channel: { renditions: readonly R[] }): R[] {
  return channel.renditions.filter((rendition) => rendition.codec !== 'opus' && rendition.codec !== 'flac');
}

/** `fip-hifi.aac` for channel fip, rendition hifi, AAC. */
export function mountName(mount: Pick<MountDescription, 'channel' | 'rendition' | 'codec'>): string {
  return `${mount.channel}-${mount.rendition}.${mount.codec}`;
}

interface ServedMount {
  description: MountDescription;
  mount: Mount;
  peak: number;
}

async function registerMounts(fastify: FastifyInstance, options: ProgressiveOptions): Promise<void> {
  const defaults = progressiveDefaults();
  const clock = options.clock ?? systemClock;
  const store = options.store;
  const metaint = options.metaint ?? defaults.metaint;
  const maxListeners = options.maxListeners ?? defaults.maxListeners;
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const reportIntervalMs = options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS;
  const originId = options.originId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const serverStartMs = clock.now();
  const serverId = `onair ${onairVersion()}`;
  let slowDisconnects = 0;
  let refused = 0;
  let listening = 0;

  /** Mount name → mount; rebuilt on setMounts, keeping the Mount of a rendition that stays. */
  let served = new Map<string, ServedMount>();
  const titles = new Map<string, string | undefined>();
  const newMount = (description: MountDescription): Mount =>
    new Mount({
      channel: description.channel,
      rendition: description.rendition,
      store,
      ...(description.encryption ? { encryption: description.encryption } : {}),
      burstSeconds: options.burstSeconds ?? defaults.burstSeconds,
      maxBacklogBytes: options.maxBacklogBytes ?? defaults.maxBacklogBytes,
      idleGraceMs: options.idleGraceMs ?? DEFAULT_IDLE_GRACE_MS,
      storeTimeoutMs,
      recheckMs: options.recheckMs ?? DEFAULT_RECHECK_MS,
      clock,
      logger: fastify.log,
      onSlowListener: () => {
        slowDisconnects += 1;
      },
    });
  const setMounts = (mounts: MountDescription[]): void => {
    const next = new Map<string, ServedMount>();
    for (const description of mounts) {
      const name = mountName(description);
      // The config refuses two renditions with one mount name (reportAmbiguousMounts); a
      // caller that skipped it still gets the first one served.
      if (next.has(name)) {
        fastify.log.warn({ mount: name }, 'two renditions give the same mount name: the first one is served');
        continue;
      }
      // A mount whose encryption changed (a reload) is made anew: it decrypts with the new settings.
      const previous = served.get(name);
      const kept = previous && JSON.stringify(previous.description.encryption) === JSON.stringify(description.encryption) ? previous : undefined;
      const mount = kept?.mount ?? newMount(description);
      mount.setTitle(titles.get(description.channel));
      next.set(name, { description, mount, peak: kept?.peak ?? 0 });
    }
    for (const [name, old] of served) if (next.get(name)?.mount !== old.mount) old.mount.close();
    served = next;
    const channels = new Set(mounts.map((mount) => mount.channel));
    for (const channel of titles.keys()) if (!channels.has(channel)) titles.delete(channel);
  };
  setMounts(options.mounts);
  const mountsOf = (channel: string): Mount[] => [...served.values()].filter((entry) => entry.description.channel === channel).map((entry) => entry.mount);

  // Publish notifications: the mounts of the channel read what is new.
  const updates = new StoreUpdates(
    store,
    (channel) => {
      for (const mount of mountsOf(channel)) mount.notify();
    },
    () => {
      for (const { mount } of served.values()) mount.notify();
    },
    fastify.log,
    clock,
  );
  // Now playing: the channel's mounts change StreamTitle at their next metadata block.
  const loadTitle = async (channel: string): Promise<void> => {
    const nowPlaying = parseNowPlaying(await readFromStore(`now playing ${channel}`, () => store.getNowPlaying(channel), storeTimeoutMs, clock));
    const title = nowPlaying ? displayTitle(nowPlaying) : undefined;
    titles.set(channel, title);
    for (const mount of mountsOf(channel)) mount.setTitle(title);
  };
  const refreshTitle = (channel: string): void => {
    if (!mountsOf(channel).length) return;
    loadTitle(channel).catch((error: unknown) => fastify.log.warn({ err: error, channel }, 'now playing could not be read'));
  };
  const nowPlayingUpdates = new StoreUpdates(
    { subscribe: (listener) => store.subscribeNowPlaying(listener) },
    refreshTitle,
    () => {
      for (const channel of new Set([...served.values()].map((entry) => entry.description.channel))) refreshTitle(channel);
    },
    fastify.log,
    clock,
  );
  await Promise.all([updates.start(), nowPlayingUpdates.start()]);

  // This origin's exact counts, written every few seconds with a TTL.
  let reportTimer: Timer | undefined;
  let closing = false;
  const report = async (): Promise<void> => {
    const byChannel = new Map<string, Record<string, number>>();
    for (const { description, mount } of served.values()) {
      const counts = byChannel.get(description.channel) ?? {};
      counts[description.rendition] = (counts[description.rendition] ?? 0) + mount.listenerCount;
      byChannel.set(description.channel, counts);
    }
    await Promise.all(
      [...byChannel].map(([channel, counts]) =>
        store.putConnectionCounts(originId, channel, counts, REPORT_TTL_INTERVALS * reportIntervalMs).catch((error: unknown) => {
          fastify.log.warn({ err: error, channel }, 'progressive listener counts could not be written');
        }),
      ),
    );
  };
  const scheduleReport = (): void => {
    if (closing) return;
    reportTimer = clock.setTimeout(() => void report().finally(scheduleReport), reportIntervalMs);
  };
  void report().finally(scheduleReport);

  fastify.addHook('onClose', async () => {
    closing = true;
    reportTimer?.cancel();
    for (const { mount } of served.values()) mount.close();
    // Gone from the counts at once, rather than after the TTL.
    await report();
    await Promise.all([updates.close(), nowPlayingUpdates.close()]);
  });

  let cachedCounts: { counts: Record<string, Record<string, number>>; readAt: number } | undefined;
  const counts = async (): Promise<Record<string, Record<string, number>>> => {
    if (cachedCounts && clock.now() - cachedCounts.readAt < COUNTS_MAX_AGE_MS) return cachedCounts.counts;
    const channels = [...new Set([...served.values()].map((entry) => entry.description.channel))];
    const read = await readFromStore(
      'progressive listener counts',
      () => Promise.all(channels.map(async (channel) => [channel, await store.getConnectionCounts(channel)] as const)),
      storeTimeoutMs,
      clock,
    );
    cachedCounts = { counts: Object.fromEntries(read), readAt: clock.now() };
    return cachedCounts.counts;
  };

  fastify.decorate('onairMounts', {
    setMounts,
    stats() {
      const mounts = [...served.values()].map(({ description, mount }) => ({
        channel: description.channel,
        rendition: description.rendition,
        listeners: mount.listenerCount,
        jumps: mount.stats.jumps,
        undecryptable: mount.stats.undecryptable,
      }));
      return { mounts, slowDisconnects, refused };
    },
    counts,
  } satisfies MountsControl);

  fastify.route<{ Params: { mount: string } }>({
    method: ['GET', 'HEAD'],
    url: MOUNT_ROUTE,
    handler: async (request, reply) => {
      const entry = served.get(request.params.mount);
      if (!entry) return sendError(reply, 404, 'no such resource');
      const { description, mount } = entry;
      if (listening >= maxListeners) {
        refused += 1;
        return sendOnairError(reply, new OnairError('ONAIR_MOUNT_FULL', 'this origin serves as many progressive listeners as it may; retry shortly'));
      }
      // The place is taken now, so that requests waiting for the store cannot pass the cap together,
      // and given back exactly once: by the connection's end, whenever it comes (a client that hangs
      // up while the store is read must not keep it), or at once when no listener is attached.
      listening += 1;
      let released = false;
      const free = (): void => {
        if (released) return;
        released = true;
        listening -= 1;
      };
      reply.raw.once('close', free);
      let attached = false;
      try {
        if (!titles.has(description.channel)) await loadTitle(description.channel).catch(() => titles.set(description.channel, undefined));
        await mount.wake();
        if (reply.raw.destroyed) {
          // Gone while we waited: nothing to answer, nobody to attach.
          mount.release();
          reply.hijack();
          return reply;
        }
        if (!mount.onAir) {
          mount.release();
          return sendError(reply, 404, 'the mount is not on air');
        }
        attached = request.method === 'GET';
      } finally {
        if (!attached) free();
      }
      const icy = request.headers['icy-metadata'] === '1';
      const headers = mountHeaders(request, reply, description, icy ? metaint : undefined);
      reply.hijack();
      const response = reply.raw;
      // Delimited by the end of the connection, as Icecast's answers: neither Content-Length nor chunked coding.
      response.removeHeader('transfer-encoding');
      response.removeHeader('content-length');
      response.writeHead(200, headers);
      if (request.method === 'HEAD') {
        mount.release();
        response.end();
        return reply;
      }
      const listener = mount.attach(response, icy ? metaint : undefined);
      entry.peak = Math.max(entry.peak, mount.listenerCount);
      response.once('close', () => {
        free();
        listener.close();
        mount.detach(listener);
      });
      return reply;
    },
  });

  // Not the origin's: 405 on a mount, 404 on anything else.
  fastify.route<{ Params: { mount: string } }>({
    method: WRITE_METHODS,
    url: MOUNT_ROUTE,
    handler: async (request, reply) =>
      served.has(request.params.mount)
        ? sendError(reply, 405, `${request.method} is not allowed`, { headers: { allow: 'GET, HEAD, OPTIONS' } })
        : sendError(reply, 404, 'no such resource'),
  });

  fastify.route({
    method: ['GET', 'HEAD'],
    url: STATUS_PATH,
    handler: async (request, reply) => {
      const everywhere = await counts().catch(() => undefined);
      const sources: StatusSource[] = [...served.entries()].map(([name, entry]) => {
        const { description, mount } = entry;
        const listeners = everywhere?.[description.channel]?.[description.rendition] ?? mount.listenerCount;
        entry.peak = Math.max(entry.peak, listeners);
        const identity = icyIdentity(request, description);
        return {
          mount: `/${name}`,
          listeners,
          listenerPeak: entry.peak,
          ...identity,
          contentType: CONTENT_TYPES[description.codec],
          bitrateKbps: Math.round(description.bitrate / 1000),
          sampleRate: description.sampleRate,
          audioChannels: description.audioChannels,
          ...(titles.get(description.channel) !== undefined ? { title: titles.get(description.channel) } : {}),
          streamStartMs: serverStartMs,
        };
      });
      const status = icecastStatus({ host: request.hostname, baseUrl: baseUrlOf(request), serverId, serverStartMs, sources });
      return reply
        .header('content-type', 'application/json; charset=utf-8')
        .header('cache-control', 'no-cache, no-store')
        .send(JSON.stringify(status));
    },
  });
}

/** The answer's headers: the CORS ones the origin's hooks set, and the mount's own. */
function mountHeaders(request: FastifyRequest, reply: FastifyReply, description: MountDescription, metaint: number | undefined): Record<string, string | number> {
  const headers: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (typeof value === 'string' || typeof value === 'number') headers[name] = value;
  }
  const identity = icyIdentity(request, description);
  Object.assign(headers, {
    'content-type': CONTENT_TYPES[description.codec],
    'cache-control': 'no-cache, no-store',
    pragma: 'no-cache',
    expires: 'Mon, 26 Jul 1997 05:00:00 GMT',
    // HTTP/2 has no Connection header (RFC 9113 §8.2.2): the stream's end delimits the body there.
    ...(request.raw.httpVersionMajor === 1 ? { connection: 'close' } : {}),
    'x-content-type-options': 'nosniff',
    'access-control-allow-origin': '*',
    'access-control-expose-headers': ICY_HEADERS.join(', '),
    'icy-name': headerSafe(identity.name),
    'icy-description': headerSafe(identity.description),
    'icy-genre': headerSafe(identity.genre),
    'icy-url': headerSafe(identity.url),
    'icy-br': Math.round(description.bitrate / 1000),
    'icy-pub': 0,
    'ice-audio-info': audioInfo({ audioChannels: description.audioChannels, sampleRate: description.sampleRate, bitrateKbps: Math.round(description.bitrate / 1000) }),
  });
  if (metaint !== undefined) headers['icy-metaint'] = metaint;
  return headers;
}

/** The station identity of a mount: its channel's `icy` block, with defaults. */
function icyIdentity(request: FastifyRequest, description: MountDescription): { name: string; description: string; genre: string; url: string } {
  return {
    name: description.icy?.name ?? description.channel,
    description: description.icy?.description ?? 'Unspecified description',
    genre: description.icy?.genre ?? 'various',
    // The player page of this origin, as the client reached it.
    url: description.icy?.url ?? `${baseUrlOf(request)}/`,
  };
}

function baseUrlOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

/** Header values go out as UTF-8 bytes (as Icecast sends them), without control characters. */
function headerSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return Buffer.from(text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ''), 'utf8').toString('latin1');
}

let version: string | undefined;
/** onair's version from its package.json (found walking up from this file), for `server_id`. */
function onairVersion(): string {
  if (version !== undefined) return version;
  version = 'unknown';
  for (let directory = import.meta.dirname; ; directory = dirname(directory)) {
    try {
      const manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'onair' && typeof manifest.version === 'string') version = manifest.version;
      if (manifest.name === 'onair') break;
    } catch {
      // not here: go up
    }
    if (dirname(directory) === directory) break;
  }
  return version;
}

export const mountsPlugin = fp(registerMounts, { name: 'onair-mounts', fastify: '5.x', dependencies: ['onair-origin'] });
export default mountsPlugin;
