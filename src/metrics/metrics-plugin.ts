/**
 * `GET /metrics` (Prometheus text format), served on the admin listener (src/onair.ts), and
 * the per-request origin metrics (`countRequests`, registered on the origin): an onResponse
 * hook counts each answer by kind of resource and status and observes its duration. The
 * kind comes from the matched route and the file name, not the raw URL, so label values
 * stay few whatever clients request.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { PLAYLIST_ROUTE, SEGMENT_ROUTE } from '../origin/origin-plugin.js';
import type { OnairMetrics } from './onair-metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Set where `countRequests` is on: counts one answer (route kind, status, seconds). */
    onairCountRequest?: (route: string, status: number, seconds: number) => void;
  }
}

export interface MetricsPluginOptions {
  metrics: OnairMetrics;
  /** Serve GET /metrics on this instance (the admin listener); the origin does not. */
  serveMetrics: boolean;
  /** Count this instance's answers as origin requests (the origin); the admin listener does not. */
  countRequests: boolean;
  /** What GET /metrics serves; default `metrics.registry` (the primary of `--workers` sums its workers'). */
  exposition?: MetricsExposition;
}

/** A Prometheus text exposition: a prom-client Registry, or the cluster primary's aggregate. */
export interface MetricsExposition {
  metrics(): Promise<string>;
  readonly contentType: string;
}

async function registerMetrics(fastify: FastifyInstance, options: MetricsPluginOptions): Promise<void> {
  const { metrics } = options;
  if (options.serveMetrics) {
    const exposition: MetricsExposition = options.exposition ?? metrics.registry;
    fastify.get('/metrics', async (request, reply) => {
      const text = await exposition.metrics();
      return reply.header('content-type', exposition.contentType).header('cache-control', 'no-store').send(text);
    });
  }
  if (!options.countRequests) return;
  // Counted in plain numbers (request-metrics.ts): prom-client would hash the labels on every
  // call. Callback style: no promise per request.
  const countRequest = (route: string, status: number, seconds: number): void => metrics.requests.count(route, status, seconds);
  // The origin's hot answers never reach Fastify's hooks: they count through this (src/origin/hot-answers.ts).
  fastify.decorate('onairCountRequest', countRequest);
  fastify.addHook('onResponse', (request, reply, done) => {
    countRequest(routeKind(request), reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}

/** `master`, `media`, `segment`, `part`, `healthz`, `player` or `other`. */
export function routeKind(request: FastifyRequest): string {
  const route = request.routeOptions.url;
  const params = request.params as Record<string, string | undefined>;
  if (route === PLAYLIST_ROUTE) return params.playlist === `${params.channel}.m3u8` ? 'master' : 'media';
  if (route === SEGMENT_ROUTE) return (params.segment?.split('.').length ?? 0) > 2 ? 'part' : 'segment';
  if (route === '/healthz') return 'healthz';
  if (route === '/' || route?.startsWith('/_player') || route === '/channels.json') return 'player';
  return 'other';
}

export const metricsPlugin = fp(registerMetrics, { name: 'onair-metrics', fastify: '5.x' });
