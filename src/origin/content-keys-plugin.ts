/**
 * The key route of encrypted channels (`encryption: aes-128` or `cbcs`, docs/architecture.md, "Content encryption"):
 * `GET /{ch}/key-{id}.key` answers the 16 bytes of content key `id`, only to a
 * request whose `token` (signed-urls.ts) covers the key's path and has not expired: the token
 * the channel's playlists need, which onair-signed-access adds to every EXT-X-KEY URI of them.
 *
 * - No valid token: 403 ONAIR_KEY_FORBIDDEN (with the token's refusal reason in the message);
 *   a channel that is not encrypted, or a key the store no longer has: 404 ONAIR_KEY_NOT_FOUND.
 *   Both with `Cache-Control: no-store`.
 * - A key: `application/octet-stream`, `Cache-Control: private, no-store`: no shared cache keeps
 *   it (deploy/varnish passes such answers through), and nothing logs or counts its bytes.
 *
 * And the ClearKey license route of `encryption: cbcs` channels (docs/architecture.md, "ClearKey playlists and licenses"):
 * `POST /{ch}/clearkey?token=…` takes the W3C license request an EME player's ClearKey CDM makes
 * and answers the JSON Web Key set of the KIDs it names (clearkey-license.ts), under the same
 * token as the key route, checked before the body is read; the body is at most 4 KiB of any
 * content type (hls.js sends none). A body that is no license request: 400
 * ONAIR_LICENSE_REQUEST_INVALID; none of its KIDs among the channel's listed key periods (or
 * their keys gone): 404 ONAIR_KEY_NOT_FOUND. The answer is `private, no-store` like a key.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { systemClock, type Clock } from '../clock.js';
import { ERRORS, OnairError } from '../errors.js';
import { JSON_CONTENT_TYPE, sendError } from '../http/error-replies.js';
import { readFromStore } from '../http/store-read.js';
import { parseContentKeyName } from '../hls/published-names.js';
import { parseChannelState } from '../hls/sequence-state.js';
import { hasContentKeys } from '../store/store.js';
import { LICENSE_BODY_LIMIT_BYTES, licenseResponse, matchKeyPeriods, parseLicenseRequest } from './clearkey-license.js';
import { literalQuery } from './query-parameters.js';
import { TOKEN_PARAMETER, verifyToken } from './signed-urls.js';

/**
 * `key-{id}.key` (published-names.ts): a static prefix and suffix around a regular-expression
 * parameter, so it wins over the playlist route's plain one and stays apart from the MPD
 * route's (the router keys routes by their shape without the expressions).
 */
export const CONTENT_KEY_ROUTE = '/:channel/key-:keyId(^(?:0|[1-9][0-9]{0,14})$).key';
export const CONTENT_KEY_CONTENT_TYPE = 'application/octet-stream';
export const CONTENT_KEY_CACHE_CONTROL = 'private, no-store';
/** The ClearKey license route of cbcs channels: a static suffix, apart from the playlist and key routes. */
export const CLEARKEY_LICENSE_ROUTE = '/:channel/clearkey';

export interface ContentKeysOptions {
  /** Reads the keys; a store without them (a test's fake) has no key to give. */
  store: object;
  /** `signing.key`: the tokens are checked with it; none: every key request is refused. */
  signingKey: string | undefined;
  /** Ids of the channels with `encryption`. Called on every key request: return a prebuilt Set. */
  encryptedChannels: () => Set<string>;
  /** The `encryption: cbcs` channels and their `keyRotationSegments`, for the ClearKey license route; none: every license request is a 404. */
  cbcsChannels?: () => ReadonlyMap<string, number>;
  storeTimeoutMs: number;
  clock?: Clock;
}

interface KeyParams {
  channel: string;
  keyId: string;
}

async function registerContentKeys(fastify: FastifyInstance, options: ContentKeysOptions): Promise<void> {
  const { store, signingKey, encryptedChannels, storeTimeoutMs } = options;
  const clock = options.clock ?? systemClock;
  /** The key and license routes' one check: the request's own token (as sent) for its path, of this channel. */
  const tokenRefusal = (url: string, channel: string): OnairError | undefined => {
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const check = verifyToken(signingKey ?? '', literalQuery(url)[TOKEN_PARAMETER], path, clock.now() / 1000);
    return check.ok ? undefined : new OnairError('ONAIR_KEY_FORBIDDEN', `a valid token of channel ${channel} is needed (${check.reason})`, { where: channel });
  };
  fastify.route<{ Params: KeyParams }>({
    method: ['GET', 'HEAD'],
    url: CONTENT_KEY_ROUTE,
    handler: async (request, reply) => {
      const { channel } = request.params;
      const keyId = parseContentKeyName(`key-${request.params.keyId}.key`);
      if (keyId === undefined || !encryptedChannels().has(channel) || !hasContentKeys(store)) {
        return refuse(reply, new OnairError('ONAIR_KEY_NOT_FOUND', 'no such key', { where: channel }));
      }
      const forbidden = tokenRefusal(request.url, channel);
      if (forbidden) return refuse(reply, forbidden);
      const bytes = await readFromStore(`content key ${channel}/${keyId}`, () => store.getContentKey(channel, keyId), storeTimeoutMs, clock);
      if (!bytes) return refuse(reply, new OnairError('ONAIR_KEY_NOT_FOUND', 'no such key (expired, or not made yet)', { where: channel }));
      reply.header('cache-control', CONTENT_KEY_CACHE_CONTROL).header('content-type', CONTENT_KEY_CONTENT_TYPE);
      if (request.method === 'HEAD') return reply.header('content-length', bytes.byteLength).send();
      return reply.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
  });

  const cbcsChannels = options.cbcsChannels ?? (() => NO_CBCS_CHANNELS);
  // In a context of its own: its body parser (any content type, as bytes) is this route's only.
  await fastify.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => done(null, body));
    scope.post<{ Params: { channel: string }; Body: Buffer }>(CLEARKEY_LICENSE_ROUTE, {
      bodyLimit: LICENSE_BODY_LIMIT_BYTES,
      // Before the body is read: without the token, nothing is parsed.
      onRequest: async (request, reply) => {
        const { channel } = request.params;
        if (!cbcsChannels().has(channel) || !hasContentKeys(store)) {
          return refuse(reply, new OnairError('ONAIR_KEY_NOT_FOUND', 'no ClearKey license here: the channel is not cbcs-encrypted', { where: channel }));
        }
        const forbidden = tokenRefusal(request.url, channel);
        return forbidden ? refuse(reply, forbidden) : undefined;
      },
      handler: async (request, reply) => {
        const { channel } = request.params;
        // Looked up again: a config reload may come between the hook and the handler.
        const rotation = cbcsChannels().get(channel);
        if (rotation === undefined || !hasContentKeys(store) || !hasState(store)) {
          return refuse(reply, new OnairError('ONAIR_KEY_NOT_FOUND', 'no ClearKey license here: the channel is not cbcs-encrypted', { where: channel }));
        }
        const parsed = parseLicenseRequest(request.body);
        if ('problem' in parsed) return refuse(reply, new OnairError('ONAIR_LICENSE_REQUEST_INVALID', parsed.problem, { where: channel }));
        const state = parseChannelState(await readFromStore(`state ${channel}`, () => store.getState(channel), storeTimeoutMs, clock));
        const periods = state ? matchKeyPeriods(channel, state, rotation, parsed.kids) : new Map<string, number>();
        const keys: { kid: string; key: Uint8Array }[] = [];
        for (const [kid, keyId] of periods) {
          const key = await readFromStore(`content key ${channel}/${keyId}`, () => store.getContentKey(channel, keyId), storeTimeoutMs, clock);
          if (key) keys.push({ kid, key });
        }
        if (keys.length === 0) return refuse(reply, new OnairError('ONAIR_KEY_NOT_FOUND', 'none of the requested KIDs names a key of this channel now', { where: channel }));
        return reply.header('cache-control', CONTENT_KEY_CACHE_CONTROL).header('content-type', JSON_CONTENT_TYPE).send(licenseResponse(keys));
      },
    });
  });
}

const NO_CBCS_CHANNELS: ReadonlyMap<string, number> = new Map();

function hasState<S extends object>(store: S): store is S & { getState(channel: string): Promise<string | null> } {
  return typeof (store as { getState?: unknown }).getState === 'function';
}

/** A refusal is about this request (its token, this moment): never kept by any cache. */
function refuse(reply: FastifyReply, error: OnairError): FastifyReply {
  const { status, reply: name } = ERRORS[error.code];
  return sendError(reply, status, error.message, { error: name, headers: { 'cache-control': 'no-store' } });
}

export const contentKeysPlugin = fp(registerContentKeys, { name: 'onair-content-keys', fastify: '5.x', dependencies: ['onair-origin'] });
export default contentKeysPlugin;
