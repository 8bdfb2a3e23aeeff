/**
 * POST /auth/playback on the origin port (docs/architecture.md, "Entitlement tokens"): a player
 * (or the service's app backend) trades the identity provider's JWT for playback URLs of exactly
 * the channels it entitles, signed for the signed channels (src/origin/signed-urls.ts), plain for
 * the public ones. On only with `entitlements` in the config; without, the path is the origin's 404.
 *
 * - The JWT comes as `Authorization: Bearer <jwt>` (RFC 6750 §2.1; it wins) or as a JSON body
 *   `{"token":"<jwt>"}` (at most 16 KiB, else 413). playback-auth-token.ts verifies it.
 * - 200: `{ expiresAt, expires, channels: [{ id, access, hls, dash, mounts }] }`, no-store. The
 *   URLs' tokens expire `urlTtl` from now, rounded up to a whole minute, so players asking in
 *   the same minute share tokens, and so cached playlists.
 * - A refused JWT: 401 with its ONAIR_JWT_* reply name and `WWW-Authenticate: Bearer
 *   error="invalid_token"` (RFC 6750 §3); the keys unavailable: 503 + Retry-After. Never cached.
 * - Bounded: requests per minute and client address (@fastify/rate-limit, counted before the
 *   body is read), the body limit, the JWT length, and the JWKS fetch (playback-auth-token.ts).
 * - Browsers: CORS with a preflight that allows POST, Authorization and Content-Type.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { systemClock, type Clock } from '../clock.js';
import type { OnairConfig } from '../config/config-schema.js';
import { ERRORS, isOnairError, OnairError } from '../errors.js';
import { JSON_CONTENT_TYPE, sendError } from '../http/error-replies.js';
import { channelPlayback, entitledChannels, type EntitlementRules, type PlaybackChannel } from './playback-auth-entitlements.js';
import { createPlaybackTokenVerifier, type PlaybackTokenVerifier } from './playback-auth-token.js';
import { mountedRenditions, mountName } from './progressive/mounts-plugin.js';

export const PLAYBACK_AUTH_PATH = '/auth/playback';
/** A JWT is a few kB; a body past this gets 413 before it is parsed. */
export const PLAYBACK_AUTH_BODY_LIMIT_BYTES = 16 * 1024;
/** Token expiries are rounded up to this, so requests in the same minute get the same URLs. */
const EXPIRY_ROUNDING_SECONDS = 60;
const BEARER = /^Bearer +([^\s]+) *$/i;

export interface PlaybackAuthOptions extends EntitlementRules {
  verifier: PlaybackTokenVerifier;
  /** The channels as configured now (follows reloads). */
  channels: () => PlaybackChannel[];
  /** `signing.key`: signs the URLs of signed channels. */
  signingKey: string | undefined;
  /** How long the returned URLs' tokens stay valid. */
  urlTtlSeconds: number;
  /** Base of the returned URLs (`https://cdn.example`); default: absolute paths on this origin. */
  publicUrl?: string;
  requestsPerMinute: number;
  clock?: Clock;
}

async function registerPlaybackAuth(fastify: FastifyInstance, options: PlaybackAuthOptions): Promise<void> {
  const { verifier, channels, signingKey, urlTtlSeconds, requestsPerMinute, clock = systemClock } = options;
  const rules: EntitlementRules = { channelsClaim: options.channelsClaim, tierClaim: options.tierClaim, tiers: options.tiers };
  const baseUrl = (options.publicUrl ?? '').replace(/\/+$/, '');

  // In a context of its own: the limiter counts this route only.
  await fastify.register(async (scope) => {
    await scope.register(rateLimit, {
      global: false,
      max: requestsPerMinute,
      timeWindow: 60_000,
      errorResponseBuilder: (request, context) =>
        new OnairError('ONAIR_RATE_LIMITED', `at most ${context.max} playback authorizations a minute per client address; retry in ${context.after}`),
    });
    // An instance hook, before the body is read: guessing tokens is limited too.
    scope.addHook('onRequest', scope.rateLimit());

    // The preflight of a browser's POST with Authorization: cors-headers.ts answers it with these methods.
    scope.options(PLAYBACK_AUTH_PATH, { config: { cors: { methods: ['POST', 'OPTIONS'] } } }, async (request, reply) => reply.code(204).send());

    scope.post(PLAYBACK_AUTH_PATH, { bodyLimit: PLAYBACK_AUTH_BODY_LIMIT_BYTES }, async (request, reply) => {
      try {
        const claims = await verifier.verify(tokenOf(request.headers.authorization, request.body));
        const granted = entitledChannels(claims, rules, channels());
        const expiresAt = Math.ceil((clock.now() / 1000 + urlTtlSeconds) / EXPIRY_ROUNDING_SECONDS) * EXPIRY_ROUNDING_SECONDS;
        const body = {
          expiresAt,
          expires: new Date(expiresAt * 1000).toISOString(),
          channels: granted.map((channel) => channelPlayback(channel, { key: signingKey, expiresAt }, baseUrl)),
        };
        return reply.header('cache-control', 'no-store').header('content-type', JSON_CONTENT_TYPE).send(JSON.stringify(body));
      } catch (error) {
        if (!isOnairError(error)) throw error;
        if (error.code === 'ONAIR_JWKS_UNAVAILABLE') request.log.warn({ err: error.cause ?? error }, 'identity provider keys unavailable');
        return sendRefusal(reply, error);
      }
    });
  });
}

/** The JWT of a request: the Authorization header's bearer token, else the JSON body's `token`. */
function tokenOf(authorization: string | undefined, body: unknown): string {
  if (authorization !== undefined && authorization !== '') {
    const bearer = BEARER.exec(authorization);
    if (!bearer) throw new OnairError('ONAIR_JWT_MISSING', 'expected Authorization: Bearer <JWT>');
    return bearer[1]!;
  }
  const token = typeof body === 'object' && body !== null ? (body as { token?: unknown }).token : undefined;
  if (typeof token !== 'string' || token === '') throw new OnairError('ONAIR_JWT_MISSING', 'expected Authorization: Bearer <JWT> or a JSON body {"token":"<JWT>"}');
  return token;
}

/** A refusal through the error table, never cached; a 401 says how to authenticate (RFC 6750 §3). */
function sendRefusal(reply: FastifyReply, error: OnairError): FastifyReply {
  const { status, reply: name } = ERRORS[error.code];
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (status === 401) headers['www-authenticate'] = `Bearer error="invalid_token", error_description="${name}"`;
  return sendError(reply, status, error.message, { error: name, headers });
}

/** The config's channels as the endpoint sees them: access, container, and the mounts' paths. */
export function playbackChannelsOf(config: OnairConfig): PlaybackChannel[] {
  return config.channels.map((channel) => ({
    id: channel.id,
    access: channel.access,
    container: channel.container,
    mounts: mountedRenditions(channel).map((rendition) => `/${mountName({ channel: channel.id, rendition: rendition.id, codec: rendition.codec === 'mp3' ? 'mp3' : 'aac' })}`),
  }));
}

/** The endpoint's options from `entitlements` (the key file is read and checked here), or undefined when it is off. */
export async function playbackAuthOptionsOf(config: OnairConfig, channels: () => PlaybackChannel[], clock?: Clock): Promise<PlaybackAuthOptions | undefined> {
  const settings = config.entitlements;
  if (!settings) return undefined;
  const verifier = await createPlaybackTokenVerifier({
    issuer: settings.issuer,
    audience: settings.audience,
    algorithms: settings.algorithms,
    clockToleranceSeconds: settings.clockTolerance,
    jwksUrl: settings.jwksUrl,
    publicKeyFile: settings.publicKeyFile,
    jwks: { timeoutMs: settings.jwks.timeoutMs, cooldownSeconds: settings.jwks.cooldown, cacheMaxAgeSeconds: settings.jwks.cacheMaxAge },
    clock,
  });
  return {
    verifier,
    channels,
    signingKey: config.signing.key,
    channelsClaim: settings.channelsClaim,
    tierClaim: settings.tierClaim,
    tiers: settings.tiers,
    urlTtlSeconds: settings.urlTtl,
    publicUrl: settings.publicUrl,
    requestsPerMinute: settings.requestsPerMinute,
    clock,
  };
}

export const playbackAuthPlugin = fp(registerPlaybackAuth, { name: 'onair-playback-auth', fastify: '5.x', dependencies: ['onair-origin'] });
export default playbackAuthPlugin;
