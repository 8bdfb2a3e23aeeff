/**
 * Icecast's admin metadata endpoint on the origin port, so automation systems and Liquidsoap
 * scripts that update an Icecast work unchanged (docs/architecture.md, Icecast admin endpoint):
 *   GET /admin/metadata?mount=/fip-hifi.aac&mode=updinfo&song=Artist%20-%20Title[&charset=…]
 * with HTTP Basic auth (`origin.icecastAdmin`). It sets the now playing of the channel whose
 * progressive mount (`/{channel}-{rendition}.aac` or `.mp3`) is named, and answers Icecast's
 * XML. Credentials are checked first and in constant time: a wrong or missing password gets
 * the same 401 whether the mount exists or not. Without `origin.icecastAdmin` the path is a
 * plain 404, as if not there. The request is bounded (MAX_METADATA_REQUEST_LENGTH). An address
 * that keeps guessing the password is locked out with 429 + Retry-After
 * (src/http/auth-backoff.ts), counted by the client IP as the origin sees it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { isOnairError, OnairError, ERRORS } from '../errors.js';
import type { Clock } from '../clock.js';
import { AuthFailureBackoff, TOO_MANY_FAILURES } from '../http/auth-backoff.js';
import { BasicAuthCheck, ICECAST_CHALLENGE, type BasicCredentials } from '../http/basic-auth.js';
import { sendError } from '../http/error-replies.js';
import { icecastResponse, ICECAST_XML_CONTENT_TYPE, metadataUpdateFrom, METADATA_UPDATED } from '../http/icecast-metadata.js';
import { readFromStore } from '../http/store-read.js';
import { serializeNowPlaying } from '../media/now-playing.js';
import type { NowPlayingStore } from '../store/store.js';
import type { OriginChannel } from './origin-options.js';

export interface IcecastAdminOptions {
  /** `origin.icecastAdmin` and where updates go; absent: the endpoint is off (404). */
  admin?: { credentials: BasicCredentials; store: Pick<NowPlayingStore, 'putNowPlaying'> };
  channels: () => OriginChannel[];
  storeTimeoutMs: number;
  /** Times the lock-outs of addresses that guess the password (default: the system clock). */
  clock?: Clock;
}

/** The progressive mount names of a rendition: Icecast mounts are paths. */
const MOUNT_EXTENSIONS = ['.aac', '.mp3'];

/** The channel a mount belongs to (`/fip-hifi.aac` → `fip`), or undefined. */
export function channelOfMount(mount: string, channels: readonly OriginChannel[]): string | undefined {
  for (const channel of channels) {
    for (const rendition of channel.renditions) {
      if (MOUNT_EXTENSIONS.some((extension) => mount === `/${channel.id}-${rendition}${extension}`)) return channel.id;
    }
  }
  return undefined;
}

export async function icecastAdmin(fastify: FastifyInstance, options: IcecastAdminOptions): Promise<void> {
  const admin = options.admin;
  const check = admin ? new BasicAuthCheck(admin.credentials) : undefined;
  const backoff = new AuthFailureBackoff({ clock: options.clock });

  const xml = (reply: FastifyReply, status: number, body: string): FastifyReply =>
    reply.code(status).header('content-type', ICECAST_XML_CONTENT_TYPE).header('cache-control', 'no-store').send(body);
  const refuse = (reply: FastifyReply, error: OnairError): FastifyReply => xml(reply, ERRORS[error.code].status, icecastResponse(error.message, false));

  fastify.get('/admin/metadata', async (request, reply) => {
    if (!check || !admin) return sendError(reply, 404, 'no such resource');
    const lockedMs = backoff.lockedForMs(request.ip);
    if (lockedMs > 0) {
      reply.header('retry-after', String(Math.ceil(lockedMs / 1000)));
      return refuse(reply, new OnairError('ONAIR_AUTH_THROTTLED', TOO_MANY_FAILURES));
    }
    if (!check.check(request.headers.authorization)) {
      backoff.failed(request.ip);
      reply.header('www-authenticate', ICECAST_CHALLENGE);
      return refuse(reply, new OnairError('ONAIR_ICECAST_UNAUTHORIZED', 'You need to authenticate'));
    }
    backoff.succeeded(request.ip);
    try {
      const update = metadataUpdateFrom(request.url, Date.now());
      const channel = channelOfMount(update.mount, options.channels());
      if (channel === undefined) throw new OnairError('ONAIR_MOUNT_UNKNOWN', 'Source does not exist');
      await readFromStore(`now playing ${channel}`, () => admin.store.putNowPlaying(channel, serializeNowPlaying(update.nowPlaying)), options.storeTimeoutMs);
      request.log.info({ channel, mount: update.mount }, 'now playing set through the Icecast admin endpoint');
      return xml(reply, 200, METADATA_UPDATED);
    } catch (error) {
      if (isOnairError(error) && error.statusCode < 500) return refuse(reply, error);
      throw error;
    }
  });
}
