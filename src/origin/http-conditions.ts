/**
 * Pure parsers for the request headers the origin honours: Range / If-Range (RFC 9110 §14),
 * If-None-Match (RFC 9110 §13.1.2) and Accept-Encoding (RFC 9110 §12.5.3).
 * No I/O: each takes header text and returns a decision.
 */

export type RangeDecision =
  /** No usable Range: send the full representation with 200 (RFC 9110 §14.2 lets us ignore it). */
  | { kind: 'full' }
  /** One satisfiable range, inclusive byte offsets already clamped to the representation. */
  | { kind: 'partial'; start: number; end: number }
  /** Syntactically valid but no byte of it exists: 416 with `Content-Range: bytes *\/size`. */
  | { kind: 'unsatisfiable' };

/** Longer Range headers are not one simple range; ignore them rather than parse attacker input. */
const MAX_RANGE_HEADER_LENGTH = 100;
// One byte-range-spec or suffix-range-spec; the range unit is case-insensitive (§14.1).
const SINGLE_BYTE_RANGE = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i;

/**
 * Decides how to answer `Range` for a representation of `size` bytes. Multiple ranges and
 * malformed headers are ignored (full 200), as RFC 9110 §14.2 allows.
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined || header.length > MAX_RANGE_HEADER_LENGTH) return { kind: 'full' };
  const match = SINGLE_BYTE_RANGE.exec(header);
  if (!match) return { kind: 'full' };
  const [, first, last] = match;
  if (first === '' && last === '') return { kind: 'full' };

  if (first === '') {
    // suffix-range-spec `-n`: the last n bytes; n = 0 selects nothing (§14.1.3).
    const suffixLength = Number(last);
    if (suffixLength === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffixLength), end: size - 1 };
  }

  const start = Number(first);
  const end = last === '' ? size - 1 : Number(last);
  // last-pos < first-pos makes the spec invalid (§14.1.1): ignore the header.
  if (last !== '' && end < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

/**
 * If-Range (§13.1.5): the range applies only when the validator is our strong ETag. A date
 * (we send no Last-Modified) or another tag means "send everything".
 */
export function ifRangeAllowsPartial(header: string | undefined, etag: string): boolean {
  if (header === undefined) return true;
  return header.trim() === etag;
}

/**
 * If-None-Match (§13.1.2) uses the weak comparison: `W/` prefixes are ignored. `*` matches any
 * existing representation. `etags` lists every tag the current version goes by.
 */
export function ifNoneMatchMatches(header: string | undefined, etags: readonly string[]): boolean {
  if (header === undefined) return false;
  const trimmed = header.trim();
  if (trimmed === '*') return true;
  const current = etags.map(opaqueTag);
  return trimmed.split(',').some((candidate) => current.includes(opaqueTag(candidate.trim())));
}

function opaqueTag(etag: string): string {
  return etag.startsWith('W/') ? etag.slice(2) : etag;
}

/**
 * Whether Accept-Encoding allows gzip: an explicit `gzip` (or its alias `x-gzip`, §8.4.1.3)
 * with q > 0 wins, otherwise `*` with q > 0. Absent header: identity only.
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  // Players send the same header on every request: the last answer is kept
  // (docs/architecture.md, "Origin cost per request").
  if (header === lastAcceptEncoding) return lastAcceptsGzip;
  const accepts = parseAcceptsGzip(header);
  lastAcceptEncoding = header;
  lastAcceptsGzip = accepts;
  return accepts;
}

let lastAcceptEncoding: string | undefined;
let lastAcceptsGzip = false;

function parseAcceptsGzip(header: string): boolean {
  let wildcard: number | undefined;
  for (const item of header.split(',')) {
    const [coding, ...parameters] = item.split(';');
    const name = coding.trim().toLowerCase();
    const quality = qualityOf(parameters);
    if (name === 'gzip' || name === 'x-gzip') return quality > 0;
    if (name === '*') wildcard = quality;
  }
  return wildcard !== undefined && wildcard > 0;
}

function qualityOf(parameters: string[]): number {
  for (const parameter of parameters) {
    const [key, value] = parameter.split('=');
    if (key.trim().toLowerCase() === 'q') {
      const quality = Number(value?.trim());
      return Number.isFinite(quality) ? quality : 0;
    }
  }
  return 1;
}
