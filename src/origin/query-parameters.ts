/**
 * The query parameters of public routes, read the way the cache key reads them (README, URL
 * layout: "Query parameters and the cache key"; deploy/varnish/default.vcl does the same).
 *
 * Known parameters:
 *   `_HLS_msn`, `_HLS_part`, `_HLS_skip`  LL-HLS delivery directives: they change the answer
 *   `token`                               signed channels: it changes the answer (tokens in the playlist)
 *   `_onair_sid`, `sid`                   listener session ids: counted, the answer is the same
 * Any other parameter is ignored: the answer is the one without it. The cache key is the
 * path with the parameters that change the answer (CACHE_KEY_PARAMETERS), so a random extra
 * parameter neither reaches another object nor defeats request coalescing.
 *
 * Names and values are matched as sent, never percent-decoded: `%5FHLS_msn` is an unknown
 * name (ignored), and `_HLS_msn=%31` is a malformed directive (400). Every valid value is
 * plain unreserved characters (RFC 3986 §2.3), so no decoding is ever needed, and a cache
 * that keys on the raw text (Varnish) always agrees with what the origin answered.
 */

/** The parameters that change an answer: the query part of the cache key (default.vcl lists the same). */
export const CACHE_KEY_PARAMETERS = ['_HLS_msn', '_HLS_part', '_HLS_skip', 'token'] as const;

/** A parameter sent once is a string, a repeated one an array (as Fastify's default parser gives them). */
export type LiteralQuery = Readonly<Record<string, string | string[] | undefined>>;

/** The parameters of a URL's query (everything after its first `?`), names and values as sent. */
export function literalQuery(url: string): LiteralQuery {
  const query: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  const start = url.indexOf('?');
  if (start === -1) return query;
  const hash = url.indexOf('#', start);
  const text = hash === -1 ? url.slice(start + 1) : url.slice(start + 1, hash);
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = equals === -1 ? pair : pair.slice(0, equals);
    const value = equals === -1 ? '' : pair.slice(equals + 1);
    const previous = query[name];
    if (previous === undefined) query[name] = value;
    else if (Array.isArray(previous)) previous.push(value);
    else query[name] = [previous, value];
  }
  return query;
}
