/**
 * MPEG-DASH on the origin port (docs/architecture.md, "MPEG-DASH manifests"), a Fastify plugin registered
 * after the origin plugin on the same instance:
 *   GET/HEAD /{ch}/{ch}.mpd        the live MPD of an fmp4 channel
 *   GET/HEAD /{ch}/{ch}_dvr.mpd    the MPD over its DVR window
 *   GET/HEAD /time                 the clock the MPDs' UTCTiming names (urn:mpeg:dash:utc:http-iso:2014)
 * MPDs come from the origin's playlist memory cache (`onairOrigin.playlist`, re-read on each
 * publish) and are answered like media playlists: the same Cache-Control (about TD/2), ETag and
 * If-None-Match, gzip with Vary; `application/dash+xml` (ISO/IEC 23009-1 Annex C). Segments and
 * init segments are the origin plugin's routes. A channel without an MPD (a `ts` channel, or
 * none published yet) gets the origin's JSON 404, with its short Cache-Control.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { systemClock, type Clock } from '../clock.js';
import { dvrMpdName, mpdName, UTC_TIMING_PATH } from '../dash/channel-mpd.js';
import { OnairError } from '../errors.js';
import { sendError } from '../http/error-replies.js';
import { acceptsGzip, ifNoneMatchMatches } from './http-conditions.js';
import { ID_PATTERN_SOURCE, isClock } from './origin-options.js';

export const DASH_CONTENT_TYPE = 'application/dash+xml';
/** The MPD route: a regular-expression parameter, so it wins over the playlist route's plain one. */
export const MPD_ROUTE = `/:channel/:manifest(^${ID_PATTERN_SOURCE}(?:_dvr)?\\.mpd$)`;

export interface DashOptions {
  /** The channels' target duration: MPDs get the media playlists' max-age, TD/2. */
  targetDurationSeconds: number;
  clock?: Clock;
}

interface MpdParams {
  channel: string;
  manifest: string;
}

async function registerDash(fastify: FastifyInstance, options: DashOptions): Promise<void> {
  if (!(options.targetDurationSeconds > 0)) throw new OnairError('ONAIR_CONFIG_INVALID', 'dash: targetDurationSeconds must be positive');
  if (options.clock !== undefined && !isClock(options.clock)) throw new OnairError('ONAIR_CONFIG_INVALID', 'dash: clock must have now()');
  const clock = options.clock ?? systemClock;
  const cacheControl = `public, max-age=${Math.max(1, Math.floor(options.targetDurationSeconds / 2))}`;

  fastify.route({
    method: ['GET', 'HEAD'],
    url: UTC_TIMING_PATH,
    handler: async (request, reply) => {
      // ISO 8601 in UTC with milliseconds; never cached: it is a clock (DASH-IF IOP §4.7.2).
      return reply.header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(new Date(clock.now()).toISOString());
    },
  });

  fastify.route<{ Params: MpdParams }>({
    method: ['GET', 'HEAD'],
    url: MPD_ROUTE,
    handler: async (request, reply) => {
      const { channel, manifest } = request.params;
      if (manifest !== mpdName(channel) && manifest !== dvrMpdName(channel)) return sendError(reply, 404, 'unknown channel or MPD');
      const cached = await fastify.onairOrigin.playlist(channel, manifest);
      if (!cached) return sendError(reply, 404, 'MPD not available (fmp4 channels only, once a segment is out)');
      const gzipped = cached.gzip !== null && acceptsGzip(request.headers['accept-encoding']) ? cached.gzip : null;
      reply
        .header('cache-control', cacheControl)
        .header('vary', 'Accept-Encoding')
        .header('etag', gzipped ? cached.gzipEtag : cached.etag);
      if (ifNoneMatchMatches(request.headers['if-none-match'], [cached.etag, cached.gzipEtag])) return reply.code(304).send();
      const body = gzipped ?? cached.body;
      reply.header('content-type', DASH_CONTENT_TYPE);
      if (gzipped) reply.header('content-encoding', 'gzip');
      if (request.method === 'HEAD') return reply.header('content-length', body.byteLength).send();
      return reply.send(body);
    },
  });
}

export const dashPlugin = fp(registerDash, { name: 'onair-dash', fastify: '5.x', dependencies: ['onair-origin'] });
