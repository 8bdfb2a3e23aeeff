/**
 * The HLS origin as a Fastify plugin (docs/architecture.md, Origin). Routes:
 *   GET/HEAD /{ch}/{ch}.m3u8               master playlist
 *   GET/HEAD /{ch}/{ch}_{rendition}.m3u8   media playlist (LL-HLS: `_HLS_msn`, `_HLS_part`, `_HLS_skip`)
 *   GET/HEAD /{ch}/{ch}_{rendition}_dvr.m3u8  DVR playlist (channels with dvrSeconds)
 *   GET/HEAD /{ch}/{rendition}/{msn}-{run}.ts  segment (immutable; Range supported)
 *   GET/HEAD /{ch}/{rendition}/{msn}-{run}.{part}.ts  LL-HLS part (held while it is the preload hint)
 *   (`.mp3` in place of `.ts` for an MP3 rendition's packed audio, `audio/mpeg`)
 *   (`.m4s` in place of `.ts` on an fMP4 channel, `audio/mp4`)
 *   GET/HEAD /{ch}/{rendition}/init-{run}.mp4  fMP4 init segment (EXT-X-MAP; immutable like segments)
 *   GET/HEAD /healthz                      200 while the store answers, else 503
 * Cache-Control follows the table in docs/architecture.md, Origin; ETag/If-None-Match (RFC
 * 9110 §13), Range (RFC 9110 §14), gzip with Vary for playlists, CORS for web players.
 * Playlists and segments are served from memory (origin-cache.ts); the store is read on a
 * miss only. Low-Latency requests wait for the store's publish notifications
 * (blocking-reload.ts). Hold timers, cache ages and store timeouts run on the `clock` option.
 * Held requests are capped in all and per client address (client-limits.ts): over a cap a
 * request gets 503 + Retry-After (ONAIR_ORIGIN_BUSY) at once instead of being held. Query
 * parameters are read as sent (query-parameters.ts): unknown ones are ignored.
 *
 * The plugin owns the instance's 404 and error handlers and registers CORS (cors-headers.ts), so it is
 * meant for an instance of its own (see origin-server.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { sleepOn, type Clock } from '../clock.js';
import {
  deltaPlaylistName,
  masterPlaylistName,
  MEDIA_FILE_NAME_PATTERN,
  mediaPlaylistName,
  parseSegmentName,
  PLAYLIST_NAME_PATTERN,
} from '../hls/published-names.js';
import { OnairError } from '../errors.js';
import { originErrorHandler, sendError, sendOnairError } from '../http/error-replies.js';
import { readFromStore } from '../http/store-read.js';
import { readDirectives, UpdateWaiters } from './blocking-reload.js';
import { clientKey } from '../http/client-address.js';
import { HeldRequestLimits } from './client-limits.js';
import { corsHeadersPlugin } from './cors-headers.js';
import { ifNoneMatchMatches, ifRangeAllowsPartial, acceptsGzip, decideRange } from './http-conditions.js';
import type { RangeDecision } from './http-conditions.js';
import { PlaylistCache, SegmentCache, type CacheStats, type CachedPlaylist } from './origin-cache.js';
import { ID_PATTERN_SOURCE, renditionOfMediaPlaylist, resolveOriginOptions, validateChannels } from './origin-options.js';
import type { OriginChannel, OriginOptions } from './origin-options.js';
import type { HotPlaylist } from './hot-answers.js';
import { lists, tooFarAhead } from './playlist-position.js';
import { literalQuery } from './query-parameters.js';
import { StoreUpdates } from './store-updates.js';

export type { OriginChannel, OriginOptions } from './origin-options.js';

export const PLAYLIST_CONTENT_TYPE = 'application/vnd.apple.mpegurl';
export const SEGMENT_CONTENT_TYPE = 'video/mp2t';
/** Packed MP3 audio segments and parts (`.mp3`, RFC 8216 §3.4): docs/architecture.md, "MP3 renditions". */
export const MP3_SEGMENT_CONTENT_TYPE = 'audio/mpeg';
/**
 * fMP4 segments, parts (`.m4s`) and init segments (`.mp4`) of an audio-only channel: ISO BMFF
 * with no video track is `audio/mp4` (RFC 4337 §2); docs/architecture.md, "Fragmented MP4 channels".
 */
export const FMP4_CONTENT_TYPE = 'audio/mp4';
/** Response headers a web page may read from the origin's answers (CORS). */
export const ORIGIN_EXPOSED_HEADERS = ['Content-Length', 'Content-Range', 'ETag', 'Age'];
const SEGMENT_CACHE_CONTROL = 'public, max-age=31536000, immutable';
const ALLOWED_METHODS = 'GET, HEAD, OPTIONS';
const WRITE_METHODS = ['DELETE', 'PATCH', 'POST', 'PUT'];

/** Longest path parameter a valid URL has: `{32}_{32}.m3u8` is 70 characters. */
export const MAX_PARAM_LENGTH = 80;
/** The routes of a channel's playlists and of its segments and parts (other plugins match on them). */
export const PLAYLIST_ROUTE = '/:channel/:playlist';
export const SEGMENT_ROUTE = '/:channel/:rendition/:segment';
/** Playlist names whose kind is remembered (about 1024 × 170 characters at most). */
const MAX_REMEMBERED_PLAYLIST_NAMES = 1024;
/** A held request re-reads the playlist at least this often, in case a notification was lost. */
const RECHECK_MS = 500;
/** Held longer than this many target durations, a request gets 503 (rfc8216bis §6.2.5.2). */
const HOLD_TARGET_DURATIONS = 3;

/** Decorated on the instance as `onairOrigin`. */
export interface OriginControl {
  /** Replaces the served channels; throws ONAIR_CONFIG_INVALID for a bad list. */
  setChannels(channels: OriginChannel[]): void;
  channels(): OriginChannel[];
  /** A stored manifest of a served channel from the playlist memory cache (re-read on publish), null when absent: the DASH MPDs (dash-plugin.ts). */
  playlist(channel: string, name: string): Promise<CachedPlaylist | null>;
  /**
   * The answer of the playlist route's synchronous path, for hot-answers.ts: the cached, fresh
   * version of a served playlist without LL-HLS parts and its Cache-Control; undefined when
   * the route must decide (unknown name, a version to read, a Low-Latency playlist).
   */
  hotPlaylist(channel: string, name: string): HotPlaylist | undefined;
  /** Memory-cache hits and misses, the LL-HLS requests held right now and those refused so far (for metrics). */
  stats(): { playlistCache: CacheStats; segmentCache: CacheStats; heldRequests: number; heldRequestsRefused: number };
}

declare module 'fastify' {
  interface FastifyInstance {
    onairOrigin: OriginControl;
  }
}

interface PlaylistParams {
  channel: string;
  playlist: string;
}

interface SegmentParams {
  channel: string;
  rendition: string;
  segment: string;
}

const NO_RANGE: RangeDecision = { kind: 'full' };

async function registerOrigin(fastify: FastifyInstance, rawOptions: OriginOptions): Promise<void> {
  const options = resolveOriginOptions(rawOptions);
  const { store, storeTimeoutMs, clock } = options;
  const targetDuration = options.targetDurationSeconds;
  const masterCacheControl = `public, max-age=${3 * targetDuration}`;
  const mediaCacheControl = `public, max-age=${Math.max(1, Math.floor(targetDuration / 2))}`;
  // A blocking reload's answer lists at least what its query asked for, whenever it is
  // served: a cache may keep it until no player asks for that part any more.
  const blockingCacheControl = `public, max-age=${6 * targetDuration}`;

  let channels = indexChannels(options.channels);
  /** Playlist names asked lately → their kind, for the channels of now (docs/architecture.md, "Origin cost per request"). */
  // By channel, then name: no key string is built per request.
  let kinds = new Map<string, Map<string, PlaylistKind | null>>();
  let rememberedKinds = 0;
  const kindOf = (channel: string, playlist: string): PlaylistKind | null => {
    let ofChannel = kinds.get(channel);
    let kind = ofChannel?.get(playlist);
    if (kind === undefined) {
      kind = playlistKind(channels, channel, playlist);
      // Both names are at most MAX_PARAM_LENGTH characters (the router refuses longer ones).
      if (rememberedKinds < MAX_REMEMBERED_PLAYLIST_NAMES) {
        if (ofChannel === undefined) {
          ofChannel = new Map();
          kinds.set(channel, ofChannel);
        }
        ofChannel.set(playlist, kind);
        rememberedKinds += 1;
      }
    }
    return kind;
  };
  const playlists = new PlaylistCache(
    (channel, name) =>
      readFromStore(`playlist ${channel}/${name}`, () => store.getPlaylist(channel, name), storeTimeoutMs, clock),
    options.playlistCacheMaxAgeMs,
    Math.max(options.playlistCacheMaxAgeMs, 500 * targetDuration),
    clock,
  );
  const segments = new SegmentCache(options.segmentCacheBytes);
  const waiters = new UpdateWaiters(clock);
  /** LL-HLS requests held right now (blocking reloads and hinted parts), capped in all and per client. */
  const held = new HeldRequestLimits(options.heldRequests, options.heldRequestsPerClient);

  const updates = new StoreUpdates(
    store,
    (channel) =>
      void playlists.invalidate(channel).then((refreshed) => {
        waiters.wake(channel);
        prefetchNewest(channel, refreshed);
      }),
    () => {
      playlists.subscribed();
      waiters.wakeAll();
    },
    fastify.log,
    clock,
  );
  // Wait for the first subscription attempt, but not longer than a store read may take:
  // a store that is down must not keep the origin from starting (it answers 503 meanwhile).
  await firstOf(updates.start(), storeTimeoutMs, clock);
  fastify.addHook('onClose', async () => {
    await updates.close();
  });

  function hotPlaylist(channel: string, name: string): HotPlaylist | undefined {
    const kind = kindOf(channel, name);
    if (kind === null) return undefined;
    const cached = playlists.fresh(channel, name);
    if (cached === undefined || cached.position) return undefined;
    return { cached, kind, cacheControl: kind === 'master' ? masterCacheControl : mediaCacheControl };
  }

  fastify.decorate('onairOrigin', {
    setChannels(next: OriginChannel[]): void {
      const validated = validateChannels(next);
      const previous = channels;
      channels = indexChannels(validated);
      kinds = new Map();
      rememberedKinds = 0;
      for (const id of previous.keys()) {
        if (channels.has(id)) continue;
        playlists.forget(id);
        segments.dropPrefix(`${id}/`);
      }
    },
    channels(): OriginChannel[] {
      return [...channels].map(([id, renditions]) => ({ id, renditions: [...renditions] }));
    },
    playlist(channel: string, name: string): Promise<CachedPlaylist | null> {
      return channels.has(channel) ? playlists.get(channel, name) : Promise.resolve(null);
    },
    hotPlaylist,
    stats() {
      return { playlistCache: playlists.stats, segmentCache: segments.stats, heldRequests: held.held, heldRequestsRefused: held.refused };
    },
  } satisfies OriginControl);

  await fastify.register(corsHeadersPlugin, {
    methods: ['GET', 'HEAD', 'OPTIONS'],
    exposedHeaders: ORIGIN_EXPOSED_HEADERS,
    maxAgeSeconds: 86400,
  });

  fastify.setErrorHandler(originErrorHandler);
  fastify.setNotFoundHandler((request, reply) => sendError(reply, 404, 'no such resource'));

  fastify.route({
    method: ['GET', 'HEAD'],
    url: '/healthz',
    handler: async (request, reply) => {
      const [probeChannel] = channels.keys();
      await readFromStore('health probe', () => store.getState(probeChannel ?? 'healthz'), storeTimeoutMs, clock);
      return reply.header('cache-control', 'no-store').send({ status: 'ok' });
    },
  });

  fastify.route<{ Params: PlaylistParams }>({
    method: ['GET', 'HEAD'],
    url: PLAYLIST_ROUTE,
    schema: { params: paramsSchema({ channel: `^${ID_PATTERN_SOURCE}$`, playlist: PLAYLIST_NAME_PATTERN }) },
    // A cached playlist without LL-HLS parts is answered at once, without a promise
    // (docs/architecture.md, "Origin cost per request"); anything else takes answerPlaylist's path.
    handler: (request, reply) => {
      const { channel, playlist } = request.params;
      const hot = hotPlaylist(channel, playlist);
      if (hot === undefined) return answerPlaylist(request, reply, kindOf(channel, playlist));
      sendPlaylist(request, reply, hot.cached, hot.cacheControl);
      return undefined;
    },
  });

  async function answerPlaylist(request: FastifyRequest<{ Params: PlaylistParams }>, reply: FastifyReply, kind: PlaylistKind | null): Promise<FastifyReply> {
    const { channel, playlist } = request.params;
    if (!kind) return sendError(reply, 404, 'unknown channel or rendition');
    let cached = await playlists.get(channel, playlist);
    if (!cached) return sendError(reply, 404, 'playlist not available yet');
    let cacheControl = kind === 'master' ? masterCacheControl : mediaCacheControl;

    // Low-Latency HLS delivery directives; a playlist without parts ignores them (§6.2.5).
    if (cached.position) {
      const read = readDirectives(literalQuery(request.url));
      if (!read.ok) return sendError(reply, 400, read.message);
      const { msn, part, skip } = read.directives;
      if (msn !== undefined) {
        if (tooFarAhead(cached.position, msn, part)) return sendError(reply, 400, `_HLS_msn/_HLS_part ask too far past the live edge`);
        const held = await holdUntilListed(request.ip, channel, playlist, cached, msn, part);
        if (held === 'busy') return sendBusy(reply);
        if (held === 'gone') return sendError(reply, 404, 'playlist not available');
        if (held === 'timeout') return sendError(reply, 503, 'not published within 3 target durations', { error: 'not_ready' });
        cached = held;
        cacheControl = blockingCacheControl;
      }
      if (skip) {
        // The delta is read apart from the full playlist: it answers only if it lists what was waited for.
        const delta = await playlists.get(channel, deltaPlaylistName(playlist));
        if (delta?.position && (msn === undefined || lists(delta.position, msn, part))) cached = delta;
      }
    }
    return sendPlaylist(request, reply, cached, cacheControl);
  }

  fastify.route<{ Params: SegmentParams }>({
    method: ['GET', 'HEAD'],
    url: SEGMENT_ROUTE,
    schema: {
      params: paramsSchema({
        channel: `^${ID_PATTERN_SOURCE}$`,
        rendition: `^${ID_PATTERN_SOURCE}$`,
        segment: MEDIA_FILE_NAME_PATTERN,
      }),
    },
    handler: async (request, reply) => {
      const { channel, rendition, segment } = request.params;
      if (!channels.get(channel)?.has(rendition)) return sendError(reply, 404, 'unknown channel or rendition');
      const load = (): Promise<Buffer | null> => loadSegment(channel, rendition, segment);
      let bytes = await load();
      if (!bytes) {
        const held = await holdUntilPublished(request.ip, channel, rendition, segment);
        if (held === 'busy') return sendBusy(reply);
        if (held === 'timeout') return sendError(reply, 503, 'not published within 3 target durations', { error: 'not_ready' });
        if (held === 'listed') bytes = await load();
      }
      if (!bytes) return sendError(reply, 404, 'segment not available');

      // A segment URI is never reused (docs/architecture.md, Sequence), so the URI itself is a strong validator.
      const etag = `"${channel}/${rendition}/${segment.slice(0, segment.lastIndexOf('.'))}"`;
      reply.header('cache-control', SEGMENT_CACHE_CONTROL).header('etag', etag).header('accept-ranges', 'bytes');
      if (ifNoneMatchMatches(request.headers['if-none-match'], [etag])) return reply.code(304).send();

      // Range is defined for GET only (RFC 9110 §14.2); HEAD describes the full segment.
      const range =
        request.method === 'GET' && ifRangeAllowsPartial(headerText(request.headers['if-range']), etag)
          ? decideRange(request.headers.range, bytes.byteLength)
          : NO_RANGE;
      if (range.kind === 'unsatisfiable') {
        return sendError(reply, 416, 'range not satisfiable', {
          headers: { 'content-range': `bytes */${bytes.byteLength}` },
        });
      }
      reply.header('content-type', segmentContentType(segment));
      if (range.kind === 'full') return sendBody(request, reply, bytes);
      reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${bytes.byteLength}`);
      return sendBody(request, reply, bytes.subarray(range.start, range.end + 1));
    },
  });

  const loadSegment = (channel: string, rendition: string, segment: string): Promise<Buffer | null> =>
    segments.get(`${channel}/${rendition}/${segment}`, () => readSegment(channel, rendition, segment));
  const readSegment = (channel: string, rendition: string, segment: string): Promise<Uint8Array | null> =>
    readFromStore(`segment ${channel}/${rendition}/${segment}`, () => store.getSegment(channel, rendition, segment), storeTimeoutMs, clock);

  /**
   * After a publish, the newest segment of every media playlist that is being requested
   * goes into memory right away: the requests that follow the playlist never wait for the
   * store, nor meet it down (a store that stalls right after a publish).
   */
  function prefetchNewest(channel: string, refreshed: Map<string, CachedPlaylist | null>): void {
    for (const playlist of refreshed.values()) {
      const uri = playlist?.newestSegmentUri;
      const slash = uri?.indexOf('/') ?? -1;
      if (uri === undefined || slash === -1) continue;
      const rendition = uri.slice(0, slash);
      const segment = uri.slice(slash + 1);
      segments.prefetch(`${channel}/${rendition}/${segment}`, () => readSegment(channel, rendition, segment));
    }
  }

  /**
   * Holds a blocking playlist reload until the playlist lists segment `msn` (or its part
   * `part`), for at most 3 target durations.
   */
  async function holdUntilListed(
    client: string,
    channel: string,
    name: string,
    current: CachedPlaylist,
    msn: number,
    part: number | undefined,
  ): Promise<CachedPlaylist | 'timeout' | 'gone' | 'busy'> {
    if (lists(current.position!, msn, part)) return current;
    let cached = current;
    const deadline = clock.now() + HOLD_TARGET_DURATIONS * current.position!.targetDurationSeconds * 1000;
    const release = held.acquire(clientKey(client));
    if (!release) return 'busy';
    try {
      while (!lists(cached.position!, msn, part)) {
        const remaining = deadline - clock.now();
        if (remaining <= 0) return 'timeout';
        await waiters.next(channel, Math.min(remaining, RECHECK_MS));
        // Woken by a publish the entry is fresh; woken by the timer (a notification lost?) it is read again.
        const next = await playlists.get(channel, name, RECHECK_MS);
        if (!next?.position) return 'gone';
        cached = next;
      }
      return cached;
    } finally {
      release();
    }
  }

  /**
   * A segment or part that is not stored yet: if it is the one the playlist's preload hint
   * names (or one just after it, same packager run), hold the request until the playlist
   * lists it (rfc8216bis §6.2.6: a hinted resource blocks until ready, never 404s).
   * `listed` means: read the store again; `absent` means: it will not come.
   */
  async function holdUntilPublished(client: string, channel: string, rendition: string, segment: string): Promise<'listed' | 'absent' | 'timeout' | 'busy'> {
    const address = parseSegmentName(segment);
    if (!address) return 'absent';
    const { msn, run, part } = address;
    const name = mediaPlaylistName(channel, rendition);
    let position = (await playlists.get(channel, name))?.position;
    if (!position?.hint || position.hint.run !== run || tooFarAhead(position, msn, part)) return 'absent';
    if (lists(position, msn, part)) return 'listed';
    const deadline = clock.now() + HOLD_TARGET_DURATIONS * position.targetDurationSeconds * 1000;
    const release = held.acquire(clientKey(client));
    if (!release) return 'busy';
    try {
      while (!lists(position, msn, part)) {
        const remaining = deadline - clock.now();
        if (remaining <= 0) return 'timeout';
        await waiters.next(channel, Math.min(remaining, RECHECK_MS));
        position = (await playlists.get(channel, name, RECHECK_MS))?.position;
        // Another run leads now (a takeover): this one's hinted parts will never be published.
        if (!position?.hint || position.hint.run !== run) return 'absent';
      }
      return 'listed';
    } finally {
      release();
    }
  }

  // Writes are not part of the origin: 405 before any body is read.
  const methodNotAllowed = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    sendError(reply, 405, `${request.method} is not allowed`, { headers: { allow: ALLOWED_METHODS } });
  for (const url of ['/healthz', PLAYLIST_ROUTE, SEGMENT_ROUTE]) {
    fastify.route({ method: WRITE_METHODS, url, onRequest: methodNotAllowed, handler: methodNotAllowed });
  }
}

/**
 * 503 + Retry-After, not cacheable (sendError): the client holds as many requests as it may,
 * or the origin does. Not logged: a client over its cap would otherwise write the log.
 */
function sendBusy(reply: FastifyReply): FastifyReply {
  return sendOnairError(reply, new OnairError('ONAIR_ORIGIN_BUSY', 'too many requests held for this client address or in all; retry shortly'));
}

/** By the name's extension: `.mp3` packed audio, `.m4s`/`.mp4` fMP4, else MPEG-TS. */
export function segmentContentType(name: string): string {
  if (name.endsWith('.mp3')) return MP3_SEGMENT_CONTENT_TYPE;
  if (name.endsWith('.m4s') || name.endsWith('.mp4')) return FMP4_CONTENT_TYPE;
  return SEGMENT_CONTENT_TYPE;
}

/** Repeated header lines read as one comma-separated value (RFC 9110 §5.3). */
function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A playlist version's answer: the coding the client accepts, its ETag, 304 when the client has it. */
function sendPlaylist(request: FastifyRequest, reply: FastifyReply, cached: CachedPlaylist, cacheControl: string): FastifyReply {
  const gzipped = cached.gzip !== null && acceptsGzip(request.headers['accept-encoding']) ? cached.gzip : null;
  const gzipEtag = cached.gzipEtag;
  reply
    .header('cache-control', cacheControl)
    .header('vary', 'Accept-Encoding')
    .header('etag', gzipped ? gzipEtag : cached.etag);
  // Either coding of the current version validates a cached copy (RFC 9110 §13.1.2).
  if (ifNoneMatchMatches(request.headers['if-none-match'], [cached.etag, gzipEtag])) {
    return reply.code(304).send();
  }
  const body = gzipped ?? cached.body;
  reply.header('content-type', PLAYLIST_CONTENT_TYPE);
  if (gzipped) reply.header('content-encoding', 'gzip');
  return sendBody(request, reply, body);
}

/** HEAD gets the same headers as GET, Content-Length included, and no body. */
function sendBody(request: FastifyRequest, reply: FastifyReply, body: Buffer): FastifyReply {
  if (request.method === 'HEAD') return reply.header('content-length', body.byteLength).send();
  return reply.send(body);
}

type PlaylistKind = 'master' | 'media';

function playlistKind(channels: ChannelIndex, channel: string, playlist: string): PlaylistKind | null {
  const renditions = channels.get(channel);
  if (!renditions) return null;
  if (playlist === masterPlaylistName(channel)) return 'master';
  return renditionOfMediaPlaylist(renditions, channel, playlist) === undefined ? null : 'media';
}

type ChannelIndex = Map<string, Set<string>>;

function indexChannels(channels: OriginChannel[]): ChannelIndex {
  return new Map(channels.map((channel) => [channel.id, new Set(channel.renditions)]));
}

function paramsSchema(patterns: Record<string, string>): object {
  const properties = Object.fromEntries(
    Object.entries(patterns).map(([name, pattern]) => [name, { type: 'string', pattern }]),
  );
  return { type: 'object', required: Object.keys(patterns), properties };
}

async function firstOf(promise: Promise<void>, timeoutMs: number, clock: Clock): Promise<void> {
  const abort = new AbortController();
  try {
    await Promise.race([promise, sleepOn(clock, timeoutMs, abort.signal)]);
  } finally {
    abort.abort();
  }
}

export const originPlugin = fp(registerOrigin, { name: 'onair-origin', fastify: '5.x' });
export default originPlugin;
