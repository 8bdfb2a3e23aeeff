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
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { systemClock, type Clock } from '../clock.js';
import { ERRORS, OnairError } from '../errors.js';
import { sendError } from '../http/error-replies.js';
import { readFromStore } from '../http/store-read.js';
import { parseContentKeyName } from '../hls/published-names.js';
import { hasContentKeys } from '../store/store.js';
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

export interface ContentKeysOptions {
  /** Reads the keys; a store without them (a test's fake) has no key to give. */
  store: object;
  /** `signing.key`: the tokens are checked with it; none: every key request is refused. */
  signingKey: string | undefined;
  /** Ids of the channels with `encryption`. Called on every key request: return a prebuilt Set. */
  encryptedChannels: () => Set<string>;
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
  fastify.route<{ Params: KeyParams }>({
    method: ['GET', 'HEAD'],
    url: CONTENT_KEY_ROUTE,
    handler: async (request, reply) => {
      const { channel } = request.params;
      const keyId = parseContentKeyName(`key-${request.params.keyId}.key`);
      if (keyId === undefined || !encryptedChannels().has(channel) || !hasContentKeys(store)) {
        return refuse(reply, new OnairError('ONAIR_KEY_NOT_FOUND', 'no such key', { where: channel }));
      }
      const queryStart = request.url.indexOf('?');
      const path = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
      const check = verifyToken(signingKey ?? '', literalQuery(request.url)[TOKEN_PARAMETER], path, clock.now() / 1000);
      if (!check.ok) {
        return refuse(reply, new OnairError('ONAIR_KEY_FORBIDDEN', `a valid token of channel ${channel} is needed (${check.reason})`, { where: channel }));
      }
      const bytes = await readFromStore(`content key ${channel}/${keyId}`, () => store.getContentKey(channel, keyId), storeTimeoutMs, clock);
      if (!bytes) return refuse(reply, new OnairError('ONAIR_KEY_NOT_FOUND', 'no such key (expired, or not made yet)', { where: channel }));
      reply.header('cache-control', CONTENT_KEY_CACHE_CONTROL).header('content-type', CONTENT_KEY_CONTENT_TYPE);
      if (request.method === 'HEAD') return reply.header('content-length', bytes.byteLength).send();
      return reply.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
  });
}

/** A refusal is about this request (its token, this moment): never kept by any cache. */
function refuse(reply: FastifyReply, error: OnairError): FastifyReply {
  const { status, reply: name } = ERRORS[error.code];
  return sendError(reply, status, error.message, { error: name, headers: { 'cache-control': 'no-store' } });
}

export const contentKeysPlugin = fp(registerContentKeys, { name: 'onair-content-keys', fastify: '5.x', dependencies: ['onair-origin'] });
export default contentKeysPlugin;
