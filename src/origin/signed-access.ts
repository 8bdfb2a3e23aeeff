/**
 * Protected channels (`channels[].access: signed`) as a Fastify plugin, registered after the
 * origin plugin on the same instance (see origin-server.ts). Tokens are signed-urls.ts's.
 *
 * - onRequest: a GET or HEAD of a signed channel needs a `token` query parameter that covers
 *   its path and has not expired; otherwise 403 with the origin's JSON error body and a stable
 *   code (`token_missing`, `token_malformed`, `token_expired`, `token_forged`,
 *   `token_wrong_path`), `Cache-Control: no-store` (a refusal is about one token, never about
 *   the resource). A store outage still answers 503 as usual, but only to a valid token.
 *   A channel's progressive mounts (`/fip-hifi.aac`) are its media too: the channel's token
 *   covers them, checked as `/fip/fip-hifi.aac` (`?token=` on the mount URL; a car radio or
 *   Icecast client keeps the query string).
 * - onSend: a signed channel's playlists carry the request's token on every relative URI, and
 *   its MPDs on every SegmentTemplate URL (media, initialization), so players need nothing
 *   special (a verified token has URL-safe characters only, so nothing else can enter the
 *   playlist or the MPD). A gzip-coded playlist is decoded, rewritten and compressed
 *   again, once per (path, playlist version and coding, token): the result is kept in a
 *   byte-bounded LRU (`cacheBytes`, least recently used out first; a variant larger than
 *   the whole budget is not kept), so a token's repeated reloads cost a lookup. ETags and 304s stay the origin's: one ETag per playlist version and coding, which
 *   names one body per URL because the token is part of the URL. HEAD drops Content-Length,
 *   which would count the body without tokens (RFC 9110 §9.3.2 allows leaving it out).
 * - Cache-Control stays public (shared caches must key on the whole query string, as
 *   deploy/varnish does), with max-age capped at the token's remaining lifetime: no cache
 *   keeps a signed answer longer than the token that fetched it is valid.
 *
 * Other responses, public channels included, cost one Set lookup per request and are untouched.
 */
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, onRequestHookHandler, onSendHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { systemClock, type Clock } from '../clock.js';
import { OnairError } from '../errors.js';
import { sendError } from '../http/error-replies.js';
import { CONTENT_KEY_NAME_PREFIX } from '../hls/published-names.js';
import { isClock } from './origin-options.js';
import { PLAYLIST_CONTENT_TYPE, PLAYLIST_ROUTE, SEGMENT_ROUTE } from './origin-plugin.js';
import { DASH_CONTENT_TYPE, MPD_ROUTE } from './dash-plugin.js';
import { literalQuery } from './query-parameters.js';
import { MOUNT_ROUTE } from './progressive/mounts-plugin.js';
import { addTokenToMpd, addTokenToPlaylist, channelPathPrefix, signPath, TOKEN_PARAMETER, verifyToken } from './signed-urls.js';
import { ByteLru, type LruStats } from './byte-lru.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export interface SignedAccessOptions {
  /** `signing.key`; without it no token is accepted, so signed channels answer 403 only. */
  key: string | undefined;
  /** Ids of the channels with `access: signed`. Called on every request: return a prebuilt Set. */
  signedChannels: () => Set<string>;
  /** Token expiry and the max-age cap are judged on it; default the system clock (tests move a manual one). */
  clock?: Clock;
  /** Bytes of signed playlist variants kept in memory (keys included); default 16 MiB, 0: none. */
  cacheBytes?: number;
  /** The channel a progressive mount path (`/fip-hifi.aac`) belongs to, if any: its token covers the mount. */
  channelOfMount?: (mountPath: string) => string | undefined;
  /** `signing.keyTokenSeconds`: key URIs of signed playlists get short-lived key tokens (KeyTokens); absent: the request's token. */
  keyTokenSeconds?: number;
}

export const DEFAULT_SIGNED_PLAYLIST_CACHE_BYTES = 16 * 1024 * 1024;

/** A request's accepted token: added to its playlist's URIs, and bounds how long caches keep its answer. */
export interface GrantedToken {
  token: string;
  /** Unix seconds. */
  expiresAt: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by onair-signed-access on a request of a signed channel whose token was accepted. */
    grantedToken: GrantedToken | null;
  }
}

const MAX_AGE = /max-age=(\d+)/;

/** The origin's routes of a channel's playlists, parts and segments (origin-plugin.ts), and its MPDs (dash-plugin.ts). */
const MEDIA_ROUTES = new Set([PLAYLIST_ROUTE, SEGMENT_ROUTE, MPD_ROUTE]);
/** The recordings' routes (recording/recordings-plugin.ts): a channel's token covers them. */
const RECORDINGS_PREFIX = '/recordings/';

/**
 * A channel's token covers its recordings: `/recordings/fip/x.m4a` is checked as `/fip/x.m4a`
 * and the listing `/recordings/fip.json` as `/fip/`. (An encoded path stays encoded, and
 * verifyToken refuses it, like any encoded path of a signed channel.)
 */
export function recordingPathUnderChannel(path: string): string {
  const rest = path.slice(RECORDINGS_PREFIX.length);
  return rest.endsWith('.json') && !rest.includes('/') ? `/${rest.slice(0, -'.json'.length)}/` : `/${rest}`;
}

async function registerSignedAccess(fastify: FastifyInstance, options: SignedAccessOptions): Promise<void> {
  const { key, signedChannels, clock, cacheBytes, channelOfMount, keyTokenSeconds } = validateOptions(options);
  const variants = new SignedVariants(cacheBytes);
  const keyTokens = key !== undefined && keyTokenSeconds !== undefined ? new KeyTokens(key, keyTokenSeconds) : undefined;
  const nowSeconds = (): number => clock.now() / 1000;
  fastify.decorateRequest('grantedToken', null);

  const checkToken: onRequestHookHandler = (request, reply, done) => {
    // No signed channel (the usual case): nothing to check, and no route lookup per request
    // (docs/architecture.md, "Origin cost per request").
    const signed = signedChannels();
    if (signed.size === 0 || (request.method !== 'GET' && request.method !== 'HEAD')) return done();
    // Only the channel's media (its playlists, segments, MPDs, mounts and recordings) are protected:
    // not, say, the control API's /api/channels/:channel.
    const route = request.routeOptions.url ?? '';
    const recording = route.startsWith(RECORDINGS_PREFIX);
    const mount = route === MOUNT_ROUTE ? (request.params as { mount?: string }).mount : undefined;
    if (!recording && mount === undefined && !MEDIA_ROUTES.has(route)) return done();
    // The routed channel, as the origin decodes it: `/%66ip/…` is fip too.
    const channel = mount === undefined ? (request.params as { channel?: string }).channel : channelOfMount?.(`/${mount}`);
    if (channel === undefined || !signed.has(channel)) return done();

    const queryStart = request.url.indexOf('?');
    const requested = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
    const path = recording ? recordingPathUnderChannel(requested) : mount !== undefined ? `${channelPathPrefix(channel)}${mount}` : requested;
    // As sent, never percent-decoded: the cache key reads it so too (query-parameters.ts).
    const token = literalQuery(request.url)[TOKEN_PARAMETER];
    const check = verifyToken(key ?? '', token, path, nowSeconds());
    if (!check.ok) {
      sendError(reply, 403, `a valid token is needed for channel ${channel} (${check.reason})`, {
        error: `token_${check.reason.replace('-', '_')}`,
        headers: { 'cache-control': 'no-store' },
      });
      return;
    }
    request.grantedToken = { token: token as string, expiresAt: check.expiresAt };
    done();
  };

  const signResponse: onSendHookHandler = (request, reply, payload, done) => {
    const granted = request.grantedToken;
    if (granted === null) return done(null, payload);
    capMaxAge(reply, granted.expiresAt - nowSeconds());
    const addToken = reply.statusCode === 200 ? TOKEN_ADDERS.get(reply.getHeader('content-type')) : undefined;
    if (addToken === undefined) return done(null, payload);
    if (request.method === 'HEAD') {
      // No body to rewrite: the origin's length would count the playlist without tokens.
      reply.removeHeader('content-length');
      return done(null, payload);
    }
    const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : (payload as Buffer);
    const gzipped = reply.getHeader('content-encoding') === 'gzip';
    const etag = reply.getHeader('etag');
    const queryStart = request.url.indexOf('?');
    const path = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
    const channel = (request.params as { channel?: string }).channel;
    const keyToken = keyTokens && addToken === addTokenToPlaylist && channel !== undefined ? keyTokens.of(channel, granted, nowSeconds()) : granted.token;
    // One ETag names one body of one path (origin-plugin.ts); without one, nothing is kept.
    const variantKey = typeof etag === 'string' ? `${path}\n${etag}\n${granted.token}\n${keyToken}` : undefined;
    variants.get(variantKey, () => addTokenToBody(body, gzipped, (text) => addToken(text, granted.token, keyToken))).then(
      (signed) => done(null, signed),
      (error: Error) => done(error),
    );
  };

  fastify.addHook('onRequest', checkToken);
  fastify.addHook('onSend', signResponse);
}

function validateOptions(options: SignedAccessOptions): SignedAccessOptions & { clock: Clock; cacheBytes: number } {
  const { key, signedChannels, clock = systemClock, cacheBytes = DEFAULT_SIGNED_PLAYLIST_CACHE_BYTES, channelOfMount, keyTokenSeconds } = options ?? {};
  if (typeof signedChannels !== 'function') {
    throw new OnairError('ONAIR_CONFIG_INVALID', 'expected a function returning the Set of signed channel ids', { where: 'signedChannels' });
  }
  if (key !== undefined && (typeof key !== 'string' || key.length === 0)) {
    throw new OnairError('ONAIR_CONFIG_INVALID', 'expected the signing key as a non-empty string', { where: 'signing.key' });
  }
  if (key === undefined && signedChannels().size > 0) {
    throw new OnairError('ONAIR_CONFIG_INVALID', 'a signed channel needs signing.key (or ONAIR_SIGNING_KEY)', { where: 'signing.key' });
  }
  if (!isClock(clock)) throw new OnairError('ONAIR_CONFIG_INVALID', 'expected a Clock with now() and setTimeout()', { where: 'clock' });
  if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) {
    throw new OnairError('ONAIR_CONFIG_INVALID', 'expected a number of bytes ≥ 0', { where: 'origin.limits.signedPlaylistCacheBytes' });
  }
  if (keyTokenSeconds !== undefined && (!Number.isSafeInteger(keyTokenSeconds) || keyTokenSeconds < 1)) {
    throw new OnairError('ONAIR_CONFIG_INVALID', 'expected whole seconds ≥ 1', { where: 'signing.keyTokenSeconds' });
  }
  return { key, signedChannels, clock, cacheBytes, channelOfMount, keyTokenSeconds };
}

/** `public, max-age=31536000, immutable` with 300 s of token left → `public, max-age=300, immutable`. */
function capMaxAge(reply: FastifyReply, tokenSecondsLeft: number): void {
  const cacheControl = reply.getHeader('cache-control');
  if (typeof cacheControl !== 'string') return;
  const current = MAX_AGE.exec(cacheControl);
  if (!current) return;
  const remainingSeconds = Math.max(0, Math.floor(tokenSecondsLeft));
  if (remainingSeconds < Number(current[1])) reply.header('cache-control', cacheControl.replace(MAX_AGE, `max-age=${remainingSeconds}`));
}

/** The bodies that name URLs, by Content-Type: HLS playlists, and DASH MPDs (segment templates). */
const TOKEN_ADDERS = new Map<unknown, (text: string, token: string, keyToken: string) => string>([
  [PLAYLIST_CONTENT_TYPE, addTokenToPlaylist],
  [DASH_CONTENT_TYPE, addTokenToMpd],
]);

async function addTokenToBody(body: Buffer, gzipped: boolean, addTokens: (text: string) => string): Promise<Buffer> {
  const text = (gzipped ? await gunzipAsync(body) : body).toString('utf8');
  const signed = Buffer.from(addTokens(text), 'utf8');
  return gzipped ? gzipAsync(signed) : signed;
}

/** Channels whose key token of the current minute is kept: the served ones are fewer. */
const MAX_KEY_TOKEN_CHANNELS = 1024;
const KEY_TOKEN_MINUTE_SECONDS = 60;

/**
 * `signing.keyTokenSeconds` (docs/architecture.md, "Short-lived key tokens"): a signed playlist's
 * key URIs carry a token for `/{ch}/key-` only, expiring `seconds` after the end of the current
 * minute, so a player's key URIs stay the same for a minute (hls.js loads a key once per URI)
 * and a leaked key URL opens nothing else and soon nothing at all. A request token that expires
 * first is used instead: a key token never outlives the token it was minted with.
 */
export class KeyTokens {
  private minute = -1;
  private readonly tokens = new Map<string, string>();

  constructor(
    private readonly key: string,
    private readonly seconds: number,
  ) {}

  of(channel: string, granted: GrantedToken, nowSeconds: number): string {
    const minute = Math.floor(nowSeconds / KEY_TOKEN_MINUTE_SECONDS);
    if (minute !== this.minute) {
      this.tokens.clear();
      this.minute = minute;
    }
    const expiresAt = (minute + 1) * KEY_TOKEN_MINUTE_SECONDS + this.seconds;
    if (granted.expiresAt <= expiresAt) return granted.token;
    let token = this.tokens.get(channel);
    if (token === undefined) {
      token = signPath({ key: this.key, pathPrefix: `${channelPathPrefix(channel)}${CONTENT_KEY_NAME_PREFIX}`, expiresAt });
      if (this.tokens.size < MAX_KEY_TOKEN_CHANNELS) this.tokens.set(channel, token);
    }
    return token;
  }
}

/**
 * Signed playlist variants by (path, ETag, token), bounded in bytes: body plus key, least
 * recently used out first. Concurrent misses for one key share one rewrite.
 */
export class SignedVariants {
  private readonly lru: ByteLru<Buffer>;

  constructor(private readonly maxBytes: number) {
    this.lru = new ByteLru(maxBytes, entryBytes);
  }

  get stats(): LruStats {
    return this.lru.stats;
  }

  get sizeBytes(): number {
    return this.lru.sizeBytes;
  }

  /** The variant under `key`, else `make()`'s (kept when it fits); no key: made, never kept. */
  get(key: string | undefined, make: () => Promise<Buffer>): Promise<Buffer> {
    if (key === undefined || this.maxBytes === 0) return make();
    return this.lru.get(key, make);
  }
}

/** A key's characters are one byte each (paths, ETags and tokens are ASCII), two in V8 at worst: count two. */
function entryBytes(key: string, variant: Buffer): number {
  return variant.byteLength + 2 * key.length;
}

export const signedAccessPlugin = fp(registerSignedAccess, { name: 'onair-signed-access', fastify: '5.x', dependencies: ['onair-origin'] });
export default signedAccessPlugin;
