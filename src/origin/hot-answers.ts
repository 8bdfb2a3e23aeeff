/**
 * Hot playlist answers: the origin's most frequent request, a player's or a cache's reload of a
 * cached live playlist, answered on the plain-HTTP listener before Fastify builds a request
 * for it (docs/architecture.md, "Hot playlist answers"). Only a request whose answer is
 * certain is taken: a GET of `/{ch}/{name}` with no query, no If-None-Match, a Host header,
 * an unsigned channel, a fresh cached version without LL-HLS parts, and a client whose
 * listener id its connection already holds. Anything else returns false and Fastify answers
 * it as before, so every error, hold, token check and 304 stays on the routes. The answer's
 * status, headers and body are the playlist route's own (test/origin/hot-answers.test.ts
 * compares them), and it is counted as the route counts it: the listener counter, the
 * request metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { acceptsGzip } from './http-conditions.js';
import type { CachedPlaylist } from './origin-cache.js';

/** What the origin plugin serves for a playlist name right now, when nothing else must decide. */
export interface HotPlaylist {
  cached: CachedPlaylist;
  cacheControl: string;
  kind: 'master' | 'media';
}

export interface HotAnswerParts {
  /** The cached, fresh playlist without LL-HLS parts (origin-plugin.ts), else undefined. */
  playlist(channel: string, name: string): HotPlaylist | undefined;
  /** True for a channel whose URIs need a token (signed-access.ts checks those). */
  signed(channel: string): boolean;
  /** True while the overload guard would answer 503 (origin-server.ts). */
  overloaded(): boolean;
  /** Counts a listener's playlist request (listeners-plugin.ts); false when it cannot without Fastify's request. */
  countListener(request: IncomingMessage, path: string): boolean;
  /** The request metrics (metrics-plugin.ts), when the instance counts requests. */
  countRequest?: (route: string, status: number, seconds: number) => void;
  /** The CORS headers every answer carries (cors-headers.ts). */
  corsHeaders: readonly [string, string, string, string];
  contentType: string;
}

const SLASH = 0x2f;
const PERCENT = '%';

export class HotAnswers {
  /** Requests answered here since start. */
  answered = 0;
  private closing = false;

  constructor(private readonly parts: HotAnswerParts) {}

  /** From the server's close on, Fastify answers everything (its 503 while closing). */
  close(): void {
    this.closing = true;
  }

  /** Answers `request` and returns true, or returns false having written nothing. */
  answer(request: IncomingMessage, response: ServerResponse): boolean {
    if (this.closing || request.method !== 'GET') return false;
    const url = request.url;
    if (url === undefined || url.charCodeAt(0) !== SLASH || url.includes('?') || url.includes(PERCENT)) return false;
    const headers = request.headers;
    if (headers.host === undefined || headers['if-none-match'] !== undefined) return false;
    const slash = url.indexOf('/', 1);
    if (slash < 2 || slash === url.length - 1 || url.indexOf('/', slash + 1) !== -1) return false;
    const channel = url.slice(1, slash);
    const parts = this.parts;
    if (parts.signed(channel)) return false;
    const hot = parts.playlist(channel, url.slice(slash + 1));
    if (hot === undefined || parts.overloaded()) return false;
    const started = parts.countRequest ? performance.now() : 0;
    if (!parts.countListener(request, url)) return false;

    const { cached } = hot;
    const gzipped = cached.gzip !== null && acceptsGzip(headers['accept-encoding']) ? cached.gzip : null;
    const body = gzipped ?? cached.body;
    const [allowOrigin, origin, exposeHeaders, exposed] = parts.corsHeaders;
    const head = [
      allowOrigin, origin,
      exposeHeaders, exposed,
      'cache-control', hot.cacheControl,
      'vary', 'Accept-Encoding',
      'etag', gzipped ? cached.gzipEtag : cached.etag,
      'content-type', parts.contentType,
    ];
    if (gzipped) head.push('content-encoding', 'gzip');
    head.push('content-length', String(body.byteLength));
    response.writeHead(200, head);
    response.end(body);
    this.answered += 1;
    parts.countRequest?.(hot.kind, 200, (performance.now() - started) / 1000);
    return true;
  }
}
