/**
 * Signed URLs of protected channels (`channels[].access: signed`): a token grants GET/HEAD on
 * every path under a prefix until an expiry, and a verifier needs nothing but the key.
 *
 * Token: `<expiresAt>~<prefix>~<signature>`, in the `token` query parameter. Every character is
 * unreserved (RFC 3986 §2.3), so the token goes into a URL as is and no re-encoding changes it.
 *   expiresAt  Unix time in whole seconds, decimal; the token is valid while now < expiresAt
 *   prefix     base64url without padding (RFC 4648 §5) of the path prefix: `L2ZpcC8` is `/fip/`
 *   signature  base64url without padding of HMAC-SHA256(key, "<expiresAt>~<prefix>"): the
 *              token up to its last `~`, exactly as it appears in the URL (43 characters)
 * The prefix is a plain string prefix of the request path: `/fip/` covers every playlist, part
 * and segment of the channel fip, and nothing of `/fip2/`. deploy/varnish/signed.vcl checks the
 * same token at the edge.
 *
 * verifyToken never throws: it takes whatever the query parser produced (nothing, a string,
 * an array for a repeated parameter) and compares signatures in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TOKEN_PARAMETER = 'token';

export interface SignPathOptions {
  /** The HMAC key (`signing.key`). */
  key: string;
  /** Absolute path prefix the token covers, e.g. `/fip/` (see channelPathPrefix). */
  pathPrefix: string;
  /** Unix time in seconds (not milliseconds) from which the token is refused. */
  expiresAt: number;
}

export type TokenRefusal = 'missing' | 'malformed' | 'expired' | 'forged' | 'wrong-path';

export type TokenCheck = { ok: true; expiresAt: number } | { ok: false; reason: TokenRefusal };

/** Prefixes are plain paths: unreserved characters and slashes, up to 256 of them. */
const PATH_PREFIX_PATTERN = /^\/[A-Za-z0-9._~/-]{0,255}$/;
/** Up to 11 digits: seconds until the year 5138, and a millisecond timestamp (13 digits) is refused. */
const MAX_EXPIRES_AT = 99_999_999_999;
/** A 256-character prefix is 342 base64url characters; anything longer is not a token. */
const MAX_TOKEN_LENGTH = 11 + 1 + 342 + 1 + 43;
const TOKEN_PATTERN = /^([1-9][0-9]{0,10})~([A-Za-z0-9_-]{2,342})~([A-Za-z0-9_-]{43})$/;
/** Dot segments, doubled or back slashes and percent-encoding: a proxy may rewrite them into another path. */
const AMBIGUOUS_PATH = /(^|\/)\.\.?(\/|$)|\/\/|\\|%/;

/** The prefix of every URL of a channel: `/fip/`. */
export function channelPathPrefix(channel: string): string {
  return `/${channel}/`;
}

/** Throws a RangeError for an empty key, a prefix that is not a plain absolute path, or an expiry that is not Unix seconds. */
export function signPath({ key, pathPrefix, expiresAt }: SignPathOptions): string {
  if (typeof key !== 'string' || key.length === 0) throw new RangeError('signPath: expected a non-empty key');
  if (!PATH_PREFIX_PATTERN.test(pathPrefix) || AMBIGUOUS_PATH.test(pathPrefix)) {
    throw new RangeError(`signPath: expected an absolute path prefix of letters, digits, . _ ~ - and /, got ${JSON.stringify(pathPrefix)}`);
  }
  if (!Number.isInteger(expiresAt) || expiresAt < 1 || expiresAt > MAX_EXPIRES_AT) {
    throw new RangeError(`signPath: expected expiresAt in whole Unix seconds, got ${expiresAt}`);
  }
  const signed = `${expiresAt}~${Buffer.from(pathPrefix, 'utf8').toString('base64url')}`;
  return `${signed}~${signature(key, signed)}`;
}

/**
 * Checks `token` (the parsed `token` query parameter: undefined, a string, or an array when
 * repeated) for `requestPath` (the URL path without its query) at `nowSeconds` (Unix seconds).
 * The signature is checked before anything it covers, so an unsigned token learns nothing.
 */
export function verifyToken(key: string, token: unknown, requestPath: string, nowSeconds: number): TokenCheck {
  if (token === undefined || token === '') return refuse('missing');
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return refuse('malformed');
  const parts = TOKEN_PATTERN.exec(token);
  if (!parts) return refuse('malformed');
  const [, expiresAtText, encodedPrefix, givenSignature] = parts as unknown as [string, string, string, string];

  // Without a key nothing can be signed, so nothing is accepted.
  if (typeof key !== 'string' || key.length === 0) return refuse('forged');
  const expected = Buffer.from(signature(key, `${expiresAtText}~${encodedPrefix}`), 'latin1');
  if (!timingSafeEqual(expected, Buffer.from(givenSignature, 'latin1'))) return refuse('forged');

  const expiresAt = Number(expiresAtText);
  if (!(nowSeconds < expiresAt)) return refuse('expired');
  const pathPrefix = Buffer.from(encodedPrefix, 'base64url').toString('utf8');
  if (typeof requestPath !== 'string' || !requestPath.startsWith(pathPrefix) || AMBIGUOUS_PATH.test(requestPath)) {
    return refuse('wrong-path');
  }
  return { ok: true, expiresAt };
}

/**
 * Adds `token` to every relative URI of a playlist (RFC 8216 §4.1): URI lines, and `URI="…"`
 * attributes of tags (EXT-X-STREAM-INF's variants are URI lines; EXT-X-MEDIA, EXT-X-PART,
 * EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT, EXT-X-MAP carry attributes). Absolute URIs
 * (another host) are left alone: a token is for this origin only. EXT-X-KEY's URI takes
 * `keyToken` (a short-lived key token, docs/architecture.md, "Short-lived key tokens"), by default `token`.
 */
export function addTokenToPlaylist(playlist: string, token: string, keyToken: string = token): string {
  const addToken = (uri: string): string => (isRelativeReference(uri) ? withToken(uri, token) : uri);
  const addKeyToken = (uri: string): string => (isRelativeReference(uri) ? withToken(uri, keyToken) : uri);
  return playlist
    .split('\n')
    .map((line) => {
      if (line.startsWith('#EXT-X-KEY:')) return withTokenInAttributes(line, addKeyToken);
      if (line.startsWith('#')) return line.startsWith('#EXT') && line.includes('URI="') ? withTokenInAttributes(line, addToken) : line;
      const uri = line.trimEnd();
      return uri === '' ? line : addToken(uri) + line.slice(uri.length);
    })
    .join('\n');
}

/**
 * Adds `token` to the segment URLs of a DASH MPD (docs/architecture.md, "MPEG-DASH manifests";
 * ISO/IEC 23009-1 §5.3.9.4): the `media`, `initialization` and `index` attributes of every
 * SegmentTemplate, after a `?` or, when the template has a query already, after `&amp;` (the
 * text is XML). A token has no `$`, so
 * `$Number$` and `$RepresentationID$` stay the only template identifiers, nor any XML special
 * character. BaseURL is left alone: a base URL's query is not kept when a template resolves
 * against it (RFC 3986 §5.2.2), and the templates carry the token anyway; UTCTiming, Location
 * and absolute URLs (another host) are left alone too, but for the dashif:Laurl
 * onair writes (DASHIF_LAURL).
 */
export function addTokenToMpd(mpd: string, token: string): string {
  const templated = mpd.replace(SEGMENT_TEMPLATE_TAG, (tag: string) =>
    tag.replace(TAG_ATTRIBUTE, (match: string, name: string, quote: string, value: string) =>
      TEMPLATE_URL_ATTRIBUTES.has(name) && value !== '' && isRelativeReference(value)
        ? `${match.slice(0, -1)}${value.includes('?') ? '&amp;' : '?'}${TOKEN_PARAMETER}=${token}${quote}`
        : match,
    ),
  );
  return templated.replace(DASHIF_LAURL, (match: string, url: string) => `<dashif:Laurl>${url}${url.includes('?') ? '&amp;' : '?'}${TOKEN_PARAMETER}=${token}</dashif:Laurl>`);
}

/**
 * A cbcs channel's ClearKey license URL (`mpdLicenseBaseUrl`): absolute, but onair's own public
 * address written by onair's packager, so it takes the token too.
 * docs/architecture.md, "Player page and encrypted channels".
 */
const DASHIF_LAURL = /<dashif:Laurl>([^<]+)<\/dashif:Laurl>/g;

// A SegmentTemplate start tag, its attributes matched whole so that a quoted `>` does not end it.
const SEGMENT_TEMPLATE_TAG = /<SegmentTemplate(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*\/?>/g;
// Each attribute of that tag, matched whole, so that `media="` inside another attribute's value is not taken for one.
const TAG_ATTRIBUTE = /\s([^\s=/>]+)\s*=\s*(["'])((?:(?!\2)[^])*)\2/g;
const TEMPLATE_URL_ATTRIBUTES = new Set(['media', 'initialization', 'index']);

function signature(key: string, signed: string): string {
  return createHmac('sha256', key).update(signed, 'utf8').digest('base64url');
}

function refuse(reason: TokenRefusal): TokenCheck {
  return { ok: false, reason };
}

// A URI attribute (RFC 8216 §4.2: after the tag's `:` or a `,`), or any other quoted string,
// matched whole so that `,URI="` inside another attribute's value is not taken for one.
const URI_ATTRIBUTE_OR_QUOTED_STRING = /([:,])URI="([^"]*)"|"[^"]*"/g;

function withTokenInAttributes(line: string, addToken: (uri: string) => string): string {
  return line.replace(URI_ATTRIBUTE_OR_QUOTED_STRING, (match: string, boundary: string | undefined, uri: string | undefined) =>
    boundary === undefined ? match : `${boundary}URI="${addToken(uri!)}"`,
  );
}

function withToken(uri: string, token: string): string {
  return `${uri}${uri.includes('?') ? '&' : '?'}${TOKEN_PARAMETER}=${token}`;
}

/** Not `scheme:` nor `//host`: a path relative to the playlist or to this origin (RFC 3986 §4.2). */
function isRelativeReference(uri: string): boolean {
  return !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri) && !uri.startsWith('//');
}
