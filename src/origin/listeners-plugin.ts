/**
 * Live listener counts (listener-counter.ts has the definition and the window), as a Fastify
 * plugin registered after the origin plugin:
 *   - every GET of a media playlist `/{ch}/{ch}_{rendition}.m3u8` answered 200 or 304 is
 *     counted (master playlists are not: fetching one is not listening);
 *   GET  /listeners.json       `{ channels: { fip: { total, renditions: { hifi: n }, progressive: { total, renditions } } } }`
 *                              (`progressive`: open connections to the Icecast-style mounts, exact, every origin)
 *   POST /ingest/access-log    CDN/Varnish access-log lines, counted the same way, for
 *                              listeners the origin never sees behind a cache (below).
 * Counts live in the store, so every origin reports the same numbers. `total` counts a
 * listener once even if it switched renditions within the window, so it can be less than
 * the sum of the renditions. `fastify.onairListeners.counts()` gives the same structure to
 * other modules (metrics), cached for about a second so scrapes don't each read the store.
 * The two routes are for operators: with `serveAdminRoutes: false` they are left off this
 * instance and `onairListeners.adminRoutes` registers them on another (onair's admin listener).
 *
 * Access-log ingest: a body of JSON lines (`application/x-ndjson`, `application/jsonl` or
 * `text/plain`), up to 4 MiB, one request per line:
 *   {"client":"203.0.113.7","ua":"VLC/3.0.20","path":"/fip/fip_hifi.m3u8","time":"2026-05-01T12:00:00.250Z","status":200}
 * `client` (required) is the client's IP, or any stable client id; `ua` (optional) its
 * User-Agent; with the IP and User-Agent the id is the one the origin derives, so a listener
 * seen both ways counts once. A session id in the path's query wins, as on the origin.
 * `time` is ISO 8601 or epoch milliseconds; `status` (optional) must be 200 or 304 to count.
 * Lines for other paths, other statuses or times outside the window are ignored; a line
 * that is not such an object fails the whole batch with 400 naming its line number (nothing
 * is counted, so the shipper can fix and resend). Answers 202 `{ accepted, ignored }`.
 * Access needs `Authorization: Bearer <token>` with one of `ingestTokens` (401 without a
 * token, 403 with another; checked in constant time as for the control API, see
 * src/http/bearer-auth.ts); with no token configured the endpoint does not exist (404).
 * Each client address may POST `ingestRequestsPerMinute` times a minute (@fastify/rate-limit,
 * before the token is checked); more get 429 ONAIR_RATE_LIMITED with Retry-After.
 *
 * Session ids are client-chosen: per client address (src/http/client-address.ts clientKey; a log
 * line's `client`) at most `sessionIdsPerClient` distinct ones count per bucket
 * (SessionIdLimiter); past that, the request counts by IP and User-Agent.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { systemClock, type Clock } from '../clock.js';
import { OnairError } from '../errors.js';
import { BearerTokens } from '../http/bearer-auth.js';
import { JSON_CONTENT_TYPE, sendError } from '../http/error-replies.js';
import { DEFAULT_STORE_TIMEOUT_MS, readFromStore } from '../http/store-read.js';
import type { ConnectionCountStore, ListenerStore } from '../store/store.js';
import { clientKey } from '../http/client-address.js';
import { isClock, renditionOfMediaPlaylist, type OriginChannel } from './origin-options.js';
import {
  DEFAULT_FLUSH_INTERVAL_MS,
  DEFAULT_SESSION_IDS_PER_CLIENT,
  ClientIdMemo,
  ListenerCounter,
  ListenerWindow,
  SessionIdLimiter,
  sessionIdOf,
} from './listener-counter.js';
import { literalQuery } from './query-parameters.js';

export interface ListenersOptions {
  /** With getConnectionCounts and `progressive`, the counts carry each channel's progressive listeners too. */
  store: ListenerStore & Partial<Pick<ConnectionCountStore, 'getConnectionCounts'>>;
  /** Add each channel's progressive (Icecast-style) listeners, from the store's connection counts; default false. */
  progressive?: boolean;
  /** EXT-X-TARGETDURATION in whole seconds: the length of a counting bucket. */
  targetDurationSeconds: number;
  /** The served channels, read again every second (e.g. `() => app.onairOrigin.channels()`). */
  channels: () => OriginChannel[];
  /** Bearer tokens accepted by the ingest endpoint, at least 16 characters each; none disables it. */
  ingestTokens?: string[];
  /** How often counted ids are written to the store; default 1000 ms. */
  flushIntervalMs?: number;
  /** How long `counts()` answers from memory; default 1000 ms. */
  countsMaxAgeMs?: number;
  /** A store read slower than this answers 503; default 2000 ms. */
  storeTimeoutMs?: number;
  /** The counting window, flush timer, cache ages and store timeout run on it; default the system clock. */
  clock?: Clock;
  /** Serve /listeners.json and the ingest endpoint on this instance (default); false: only through `onairListeners.adminRoutes`. */
  serveAdminRoutes?: boolean;
  /** Distinct session ids counted per client address and bucket; default 64. */
  sessionIdsPerClient?: number;
  /** POSTs to the ingest endpoint per minute and client address; default 600. */
  ingestRequestsPerMinute?: number;
}

export interface ChannelListeners {
  /** Distinct listeners of the channel, whatever rendition they fetched. */
  total: number;
  renditions: Record<string, number>;
  /**
   * Progressive (Icecast-style) listeners: open connections to the channel's mounts, exact,
   * summed over every origin (src/origin/progressive/). Not part of `total`, which counts
   * HLS listeners. Absent without progressive mounts.
   */
  progressive?: { total: number; renditions: Record<string, number> };
}

export interface ListenerCounts {
  channels: Record<string, ChannelListeners>;
}

/** Decorated on the instance as `onairListeners`. */
export interface ListenersControl {
  /** Current counts of every served channel; rejects with ONAIR_STORE_UNAVAILABLE when the store does not answer. */
  counts(): Promise<ListenerCounts>;
  /** Writes the ids counted so far to the store now, instead of at the next flush. */
  flush(): Promise<void>;
  /**
   * Counts a 200 answer to `path` (no query) outside Fastify (hot-answers.ts), as the onSend
   * hook would; false, counting nothing, when the connection does not hold this client's id yet.
   */
  countAnswer(request: IncomingMessage, path: string): boolean;
  /** GET /listeners.json and POST /ingest/access-log, as a plugin to register on another instance (the admin listener). */
  adminRoutes: (admin: FastifyInstance) => Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    onairListeners: ListenersControl;
  }
}

export const INGEST_PATH = '/ingest/access-log';
const INGEST_BODY_LIMIT_BYTES = 4 * 1024 * 1024;
const INGEST_CONTENT_TYPES = ['application/x-ndjson', 'application/jsonl'];
const MIN_TOKEN_LENGTH = 16;
const CHANNELS_REFRESH_MS = 1000;
/**
 * Playlist paths remembered per channel refresh: a valid one is at most 1 + 32 + 1 + 70
 * characters (origin-plugin.ts, MAX_PARAM_LENGTH), so at most about 1024 × 128 × 2 bytes.
 */
const MAX_REMEMBERED_PATHS = 1024;
const MAX_REMEMBERED_PATH_LENGTH = 128;
const DEFAULT_COUNTS_MAX_AGE_MS = 1000;
const DEFAULT_INGEST_REQUESTS_PER_MINUTE = 600;
const MAX_CLIENT_LENGTH = 256;
const MAX_USER_AGENT_LENGTH = 1024;
const MAX_PATH_LENGTH = 2048;
/** Where a relative log path is resolved, to read its path and query; never contacted. */
const PATH_BASE = 'http://access-log.invalid';

type ChannelIndex = Map<string, Set<string>>;

/** A connection's last counted client: the id, and the headers it was computed from. */
interface ConnectionClient {
  forwardedFor: string | string[] | undefined;
  userAgent: string | undefined;
  id: string;
}
const CONNECTION_CLIENT = Symbol('onair.connectionClient');
type ClientSocket = Socket & { [CONNECTION_CLIENT]?: ConnectionClient };

/** The client id the request's connection holds, while its X-Forwarded-For and User-Agent are those it was computed from. */
function heldClientId(request: IncomingMessage): string | undefined {
  const last = (request.socket as ClientSocket | null)?.[CONNECTION_CLIENT];
  const headers = request.headers;
  return last !== undefined && last.forwardedFor === headers['x-forwarded-for'] && last.userAgent === headers['user-agent'] ? last.id : undefined;
}

async function registerListeners(fastify: FastifyInstance, rawOptions: ListenersOptions): Promise<void> {
  const options = validateOptions(rawOptions);
  const { store, clock } = options;
  const now = (): number => clock.now();
  const window = new ListenerWindow(options.targetDurationSeconds);
  const counter = new ListenerCounter({ store, window, logger: fastify.log, flushIntervalMs: options.flushIntervalMs, clock });
  const sessions = new SessionIdLimiter(window, options.sessionIdsPerClient, undefined, clock);
  /** The client id of a request or log line: its session id while its address may use one more, else IP and User-Agent. */
  const clientIds = new ClientIdMemo();
  const clientIdOf = (sessionId: string | undefined, ip: string, userAgent: string | undefined): string => {
    if (sessionId !== undefined) {
      const id = clientIds.clientId(sessionId, ip, userAgent);
      if (sessions.admit(clientKey(ip), id)) return id;
    }
    return clientIds.clientId(undefined, ip, userAgent);
  };
  const ingestTokens = new BearerTokens(options.ingestTokens);
  const ingestEnabled = options.ingestTokens.length > 0;

  let index: ChannelIndex = new Map();
  let indexedAt = -Infinity;
  /** Paths answered lately → their media playlist (or null), for the index of now; bounded, emptied with it. */
  let playlistOfPath = new Map<string, { channel: string; rendition: string } | null>();
  const channelIndex = (): ChannelIndex => {
    if (now() - indexedAt >= CHANNELS_REFRESH_MS) {
      index = new Map(options.channels().map((channel) => [channel.id, new Set(channel.renditions)]));
      indexedAt = now();
      playlistOfPath = new Map();
    }
    return index;
  };
  const mediaPlaylistOfPath = (path: string): { channel: string; rendition: string } | null => {
    const channels = channelIndex();
    let found = playlistOfPath.get(path);
    if (found === undefined) {
      found = mediaPlaylistOf(channels, path);
      if (playlistOfPath.size < MAX_REMEMBERED_PATHS && path.length <= MAX_REMEMBERED_PATH_LENGTH) playlistOfPath.set(path, found);
    }
    return found;
  };

  counter.start();
  fastify.addHook('onClose', async () => {
    await counter.close();
  });

  /**
   * The client id of a counted request. Without a session id, a connection's client is the
   * same as long as its X-Forwarded-For and User-Agent are (its peer address never changes):
   * the last id is kept on the socket, so a player's reloads on a keep-alive connection cost
   * two string comparisons, no allocation and no `request.ip` through the trusted proxies
   * (docs/architecture.md, "Origin cost per request"). One entry per open connection.
   */
  const clientIdOfRequest = (request: FastifyRequest, queryAt: number): string => {
    const userAgent = request.headers['user-agent'];
    const sessionId = queryAt < 0 ? undefined : sessionIdOf(literalQuery(request.url));
    if (sessionId !== undefined) return clientIdOf(sessionId, request.ip, userAgent);
    const held = heldClientId(request.raw);
    if (held !== undefined) return held;
    const id = clientIdOf(undefined, request.ip, userAgent);
    const socket = request.raw.socket as ClientSocket | null;
    if (socket) socket[CONNECTION_CLIENT] = { forwardedFor: request.headers['x-forwarded-for'], userAgent, id };
    return id;
  };

  // Counted as the answer is sent, its status final (onSend runs after the error handler too):
  // an onResponse hook would make Fastify add `finish` and `error` listeners and two
  // timestamps to every answer (docs/architecture.md, "Origin cost per request").
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (request.method === 'GET' && (reply.statusCode === 200 || reply.statusCode === 304)) {
      const url = request.url;
      const queryAt = url.indexOf('?');
      const found = mediaPlaylistOfPath(queryAt < 0 ? url : url.slice(0, queryAt));
      if (found) counter.record(found.channel, found.rendition, clientIdOfRequest(request, queryAt));
    }
    done(null, payload);
  });

  let cached: { counts: ListenerCounts; readAt: number } | undefined;
  let reading: Promise<ListenerCounts> | undefined;
  const readCounts = async (): Promise<ListenerCounts> => {
    const buckets = window.countedBuckets(now());
    const channels = await Promise.all(
      [...channelIndex()].map(async ([channel, renditionSet]) => {
        const renditions = [...renditionSet];
        const [total, ...perRendition] = await Promise.all([
          store.countListeners(channel, renditions, buckets),
          ...renditions.map((rendition) => store.countListeners(channel, [rendition], buckets)),
        ]);
        const byRendition = Object.fromEntries(renditions.map((rendition, i) => [rendition, perRendition[i]]));
        const listeners: ChannelListeners = { total, renditions: byRendition };
        if (options.progressive && store.getConnectionCounts) listeners.progressive = progressiveOf(renditions, await store.getConnectionCounts(channel));
        return [channel, listeners] as const;
      }),
    );
    return { channels: Object.fromEntries(channels) };
  };
  const countAnswer = (request: IncomingMessage, path: string): boolean => {
    const found = mediaPlaylistOfPath(path);
    if (!found) return true;
    const held = heldClientId(request);
    if (held === undefined) return false;
    counter.record(found.channel, found.rendition, held);
    return true;
  };
  const control: Omit<ListenersControl, 'adminRoutes'> = {
    countAnswer,
    counts() {
      if (cached && now() - cached.readAt < options.countsMaxAgeMs) return Promise.resolve(cached.counts);
      reading ??= readFromStore('listener counts', readCounts, options.storeTimeoutMs, clock)
        .then((counts) => {
          cached = { counts, readAt: now() };
          return counts;
        })
        .finally(() => {
          reading = undefined;
        });
      return reading;
    },
    flush: () => counter.flush(),
  };
  // The counts and the access-log ingest are for operators: onair serves them on its admin
  // listener (src/onair.ts), registering `adminRoutes` there instead of here.
  const adminRoutes = async (admin: FastifyInstance): Promise<void> => {
    admin.get('/listeners.json', async (request, reply) => {
      const counts = await control.counts();
      return reply.header('cache-control', 'no-store').header('content-type', JSON_CONTENT_TYPE).send(JSON.stringify(counts));
    });

    // In a context of its own, so the JSON-lines parsers serve this route only.
    await admin.register(async (ingest) => {
      // An instance hook: it runs before the route's token check, so guessing tokens is limited too.
      await ingest.register(rateLimit, {
        global: false,
        max: options.ingestRequestsPerMinute,
        timeWindow: 60_000,
        errorResponseBuilder: (request, context) =>
          new OnairError('ONAIR_RATE_LIMITED', `at most ${context.max} access-log posts a minute per client address; retry in ${context.after}`),
      });
      ingest.addHook('onRequest', ingest.rateLimit());
      ingest.addContentTypeParser(INGEST_CONTENT_TYPES, { parseAs: 'string' }, (request, body, done) => done(null, body));
      ingest.post(INGEST_PATH, {
        bodyLimit: INGEST_BODY_LIMIT_BYTES,
        // Checked before the body is read: an unauthorized client cannot make us parse 4 MiB.
        onRequest: async (request, reply) => authorize(request, reply, ingestEnabled ? ingestTokens : null),
        handler: async (request, reply) => {
          if (typeof request.body !== 'string') return sendError(reply, 415, 'expected JSON lines (application/x-ndjson)');
          const parsed = parseAccessLog(request.body);
          if ('badLine' in parsed) return sendBadLine(reply, parsed.badLine, parsed.reason);
          let accepted = 0;
          const channels = channelIndex();
          for (const line of parsed.lines) {
            if (countAccessLogLine(counter, clientIdOf, channels, line)) accepted += 1;
          }
          const ignored = parsed.lines.length - accepted;
          return reply.code(202).header('cache-control', 'no-store').send({ accepted, ignored });
        },
      });
    });
  };
  fastify.decorate('onairListeners', { ...control, adminRoutes });
  if (rawOptions.serveAdminRoutes ?? true) await fastify.register(adminRoutes);
}

/** Open progressive connections per served rendition (0 for one nobody reported) and their sum. */
function progressiveOf(renditions: string[], counts: Record<string, number>): { total: number; renditions: Record<string, number> } {
  const byRendition = Object.fromEntries(renditions.map((rendition) => [rendition, counts[rendition] ?? 0]));
  return { total: Object.values(byRendition).reduce((sum, count) => sum + count, 0), renditions: byRendition };
}

/** `/fip/fip_hifi.m3u8` (or its DVR playlist `fip_hifi_dvr.m3u8`) → fip, hifi, for served channels and renditions only. */
function mediaPlaylistOf(channels: ChannelIndex, path: string): { channel: string; rendition: string } | null {
  const parts = path.split('/');
  if (parts.length !== 3 || parts[0] !== '') return null;
  const [, channel, file] = parts;
  const renditions = channels.get(channel);
  const rendition = renditions && renditionOfMediaPlaylist(renditions, channel, file);
  return rendition ? { channel, rendition } : null;
}

/** 404 when ingest is off (`tokens` null), else 401/403 unless a configured bearer token comes (constant time). */
async function authorize(request: FastifyRequest, reply: FastifyReply, tokens: BearerTokens | null): Promise<FastifyReply | undefined> {
  if (!tokens) return sendError(reply, 404, 'no such resource');
  const verdict = tokens.check(request.headers.authorization);
  if (verdict === 'missing') {
    return sendError(reply, 401, 'a bearer token is required', { headers: { 'www-authenticate': 'Bearer realm="onair ingest"' } });
  }
  if (verdict === 'forbidden') return sendError(reply, 403, 'the bearer token is not accepted');
  return undefined;
}

interface AccessLogLine {
  client: string;
  ua: string | undefined;
  path: string;
  timeMs: number;
  status: number | undefined;
}

type ParsedAccessLog = { lines: AccessLogLine[] } | { badLine: number; reason: string };

/** Parses every line first, so a bad line refuses the whole batch before anything is counted. */
function parseAccessLog(body: string): ParsedAccessLog {
  const lines: AccessLogLine[] = [];
  const texts = body.split('\n');
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i].trim();
    if (text === '') continue;
    const line = parseAccessLogLine(text);
    if (typeof line === 'string') return { badLine: i + 1, reason: line };
    lines.push(line);
  }
  return { lines };
}

/** The line, or why it is not one. */
function parseAccessLogLine(text: string): AccessLogLine | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const { client, ua, path, time, status } = value as Record<string, unknown>;
  if (typeof client !== 'string' || client === '' || client.length > MAX_CLIENT_LENGTH) {
    return `"client" must be a string of 1–${MAX_CLIENT_LENGTH} characters`;
  }
  if (ua !== undefined && (typeof ua !== 'string' || ua.length > MAX_USER_AGENT_LENGTH)) {
    return `"ua" must be a string of at most ${MAX_USER_AGENT_LENGTH} characters`;
  }
  if (typeof path !== 'string' || path === '' || path.length > MAX_PATH_LENGTH) {
    return `"path" must be a string of 1–${MAX_PATH_LENGTH} characters`;
  }
  const timeMs = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : NaN;
  if (!Number.isFinite(timeMs)) return '"time" must be an ISO 8601 date or epoch milliseconds';
  if (status !== undefined && !Number.isInteger(status)) return '"status" must be an integer';
  return { client, ua, path, timeMs, status: status as number | undefined };
}

/** Counts a parsed line as the origin would count the request; false when it is ignored. */
function countAccessLogLine(
  counter: ListenerCounter,
  clientIdOf: (sessionId: string | undefined, ip: string, userAgent: string | undefined) => string,
  channels: ChannelIndex,
  line: AccessLogLine,
): boolean {
  if (line.status !== undefined && line.status !== 200 && line.status !== 304) return false;
  let url: URL;
  try {
    url = new URL(line.path, PATH_BASE);
  } catch {
    return false;
  }
  const found = mediaPlaylistOf(channels, url.pathname);
  if (!found) return false;
  const clientId = clientIdOf(sessionIdOf(literalQuery(url.search)), line.client, line.ua);
  return counter.record(found.channel, found.rendition, clientId, line.timeMs);
}

/** 400 with the number (1-based) of the first bad line, for the shipper's log. */
function sendBadLine(reply: FastifyReply, line: number, reason: string): FastifyReply {
  return reply
    .code(400)
    .header('content-type', JSON_CONTENT_TYPE)
    .header('cache-control', 'no-store')
    .send(JSON.stringify({ error: 'bad_request', message: `line ${line}: ${reason}`, line }));
}

interface ResolvedListenersOptions {
  store: ListenersOptions['store'];
  progressive: boolean;
  targetDurationSeconds: number;
  channels: () => OriginChannel[];
  ingestTokens: string[];
  flushIntervalMs: number;
  countsMaxAgeMs: number;
  storeTimeoutMs: number;
  clock: Clock;
  sessionIdsPerClient: number;
  ingestRequestsPerMinute: number;
}

/** Checks the options once at registration; a bad one throws ONAIR_CONFIG_INVALID naming its key. */
function validateOptions(options: ListenersOptions): ResolvedListenersOptions {
  const { store, channels, clock = systemClock, ingestTokens = [] } = options;
  if (typeof store?.recordListeners !== 'function' || typeof store.countListeners !== 'function') {
    throw invalid('store', 'expected a Store with recordListeners and countListeners');
  }
  if (typeof channels !== 'function') throw invalid('channels', 'expected a function returning the served channels');
  if (!isClock(clock)) throw invalid('clock', 'expected a Clock with now() and setTimeout()');
  if (!Array.isArray(ingestTokens)) throw invalid('ingestTokens', 'expected an array of tokens');
  ingestTokens.forEach((token: unknown, i) => {
    if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
      throw invalid(`ingestTokens[${i}]`, `expected at least ${MIN_TOKEN_LENGTH} characters without spaces`);
    }
  });
  return {
    store,
    progressive: options.progressive === true,
    channels,
    ingestTokens,
    targetDurationSeconds: integerOption(options, 'targetDurationSeconds', undefined, 1),
    flushIntervalMs: integerOption(options, 'flushIntervalMs', DEFAULT_FLUSH_INTERVAL_MS, 1),
    countsMaxAgeMs: integerOption(options, 'countsMaxAgeMs', DEFAULT_COUNTS_MAX_AGE_MS, 0),
    storeTimeoutMs: integerOption(options, 'storeTimeoutMs', DEFAULT_STORE_TIMEOUT_MS, 1),
    clock,
    sessionIdsPerClient: integerOption(options, 'sessionIdsPerClient', DEFAULT_SESSION_IDS_PER_CLIENT, 1),
    ingestRequestsPerMinute: integerOption(options, 'ingestRequestsPerMinute', DEFAULT_INGEST_REQUESTS_PER_MINUTE, 1),
  };
}

function integerOption(options: ListenersOptions, key: keyof ListenersOptions, fallback: number | undefined, minimum: number): number {
  const value = options[key];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw invalid(key, `expected an integer ≥ ${minimum}`);
  }
  return value;
}

function invalid(where: string, message: string): OnairError {
  return new OnairError('ONAIR_CONFIG_INVALID', `listeners options: ${message}`, { where });
}

export const listenersPlugin = fp(registerListeners, { name: 'onair-listeners', fastify: '5.x', dependencies: ['onair-origin'] });
export default listenersPlugin;
