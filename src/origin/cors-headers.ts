/**
 * CORS for web players on every origin answer (docs/architecture.md, "Origin cost per request"):
 * the answers @fastify/cors gave with the origin's options (origin `*`, exposed
 * headers, preflight without strict mode), from one callback hook and precomputed values.
 *
 * - Every request: `Access-Control-Allow-Origin: *` and `Access-Control-Expose-Headers`, set
 *   in onRequest, so 4xx/5xx answers carry them too.
 * - OPTIONS (a preflight, with or without Origin): those two, `Access-Control-Allow-Methods`,
 *   `Vary: Access-Control-Request-Headers`, the requested headers echoed in
 *   `Access-Control-Allow-Headers`, `Access-Control-Max-Age`, then 204 with
 *   `Content-Length: 0`. A route may change the methods a preflight announces with
 *   `config: { cors: { methods } }` (POST /auth/playback does), or turn CORS off for its
 *   preflight with `config: { cors: false }`.
 * Only a preflight reads the matched route's options: Fastify builds that object anew on each
 * read, which is what made @fastify/cors cost about 2 µs on every playlist request.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

export interface CorsHeadersOptions {
  /** Methods a preflight announces (a route's `config.cors.methods` replaces them). */
  methods: readonly string[];
  /** Response headers a web page may read. */
  exposedHeaders: readonly string[];
  /** How long a browser may keep a preflight's answer, in seconds. */
  maxAgeSeconds: number;
}

interface RouteCors {
  methods?: string | readonly string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on a preflight this plugin answered (the OPTIONS catch-all route reads it). */
    corsPreflightEnabled: boolean;
  }
}

const ALLOW_ORIGIN = '*';

/** The two headers every non-preflight answer carries, as name/value pairs (hot-answers.ts writes them so). */
export function corsHeaderPairs(exposedHeaders: readonly string[]): [string, string, string, string] {
  return ['access-control-allow-origin', ALLOW_ORIGIN, 'access-control-expose-headers', exposedHeaders.join(', ')];
}

async function registerCorsHeaders(fastify: FastifyInstance, options: CorsHeadersOptions): Promise<void> {
  const exposedHeaders = options.exposedHeaders.join(', ');
  const methods = options.methods.join(', ');
  const maxAge = String(options.maxAgeSeconds);
  fastify.decorateRequest('corsPreflightEnabled', false);

  const answerPreflight = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const routeCors = request.routeOptions.config as { cors?: RouteCors | false } | undefined;
    if (routeCors?.cors === false) return false;
    reply.header('access-control-allow-origin', ALLOW_ORIGIN).header('access-control-expose-headers', exposedHeaders);
    request.corsPreflightEnabled = true;
    const routeMethods = routeCors?.cors?.methods;
    reply.header('access-control-allow-methods', routeMethods === undefined ? methods : typeof routeMethods === 'string' ? routeMethods : routeMethods.join(', '));
    addToVary(reply, 'Access-Control-Request-Headers');
    const requestedHeaders = request.headers['access-control-request-headers'];
    if (requestedHeaders !== undefined) reply.header('access-control-allow-headers', requestedHeaders);
    reply.header('access-control-max-age', maxAge);
    // Safari needs Content-Length: 0 on a 204, or it waits for a body.
    reply.code(204).header('content-length', '0').send();
    return true;
  };

  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.raw.method === 'OPTIONS') {
      if (!answerPreflight(request, reply)) done();
      return;
    }
    reply.header('access-control-allow-origin', ALLOW_ORIGIN).header('access-control-expose-headers', exposedHeaders);
    done();
  });

  // Any path accepts OPTIONS, so a preflight is routed (and answered by the hook above).
  fastify.options('*', { schema: { hide: true } }, (request, reply) => {
    if (!request.corsPreflightEnabled) {
      reply.callNotFound();
      return;
    }
    reply.send();
  });
}

/** Adds a field name to Vary unless it is listed already or Vary is `*` (RFC 9110 §12.5.5). */
function addToVary(reply: FastifyReply, fieldName: string): void {
  const current = reply.getHeader('vary');
  if (current === undefined || current === '') {
    reply.header('vary', fieldName);
    return;
  }
  const text = Array.isArray(current) ? current.join(', ') : String(current);
  const listed = text.split(',').map((name) => name.trim().toLowerCase());
  if (listed.includes('*') || listed.includes(fieldName.toLowerCase())) return;
  reply.header('vary', `${text}, ${fieldName}`);
}

export const corsHeadersPlugin = fp(registerCorsHeaders, { name: 'onair-cors-headers', fastify: '5.x' });
