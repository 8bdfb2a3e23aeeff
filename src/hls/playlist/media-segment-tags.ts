/**
 * The media segment tags (RFC 8216 §4.3.2): EXTINF (§4.3.2.1), EXT-X-DISCONTINUITY
 * (§4.3.2.3), EXT-X-KEY (§4.3.2.4), EXT-X-MAP (§4.3.2.5) and EXT-X-PROGRAM-DATE-TIME (§4.3.2.6), with the segment's parts
 * (EXT-X-PART, low-latency-tags.ts) and its URI line: a segment's structure and its lines.
 */
import { AttributeReader } from './attributes.js';
import { formatPart, type MediaPart } from './low-latency-tags.js';
import { PlaylistParseError } from './playlist-parse-error.js';
import { formatDateTime, formatFixedDecimal, formatQuotedString, formatUriLine, readDecimalFloat } from './values.js';

/** EXT-X-MAP (§4.3.2.5): the init segment of this segment and those after it, until the next one. */
export interface MediaInitSection {
  uri: string;
}

/**
 * EXT-X-KEY (§4.3.2.4) with METHOD=AES-128, or SAMPLE-AES with KEYFORMAT="identity" or
 * "org.w3.clearkey" (CMAF cbcs of fMP4 segments): how this segment and those after it are
 * encrypted, until the next one.
 */
export interface MediaKey {
  method: 'AES-128' | 'SAMPLE-AES';
  uri: string;
  /** KEYFORMAT (SAMPLE-AES keys): `identity`, or `org.w3.clearkey` (EME ClearKey, its URI a data: URI of the KID). */
  keyFormat?: MediaKeyFormat;
  /** KEYFORMATVERSIONS, e.g. `1` (written with the ClearKey format). */
  keyFormatVersions?: string;
  /** The IV, 32 hexadecimal digits (written `0x…`). */
  iv: string;
  /**
   * The same key in other KEYFORMATs: their EXT-X-KEY tags follow this one. Tags of different
   * KEYFORMATs may apply to the same segments when they yield the same key (RFC 8216 §4.3.2.4); a player uses one it supports.
   */
  otherFormats?: MediaKey[];
}

export type MediaKeyFormat = 'identity' | 'org.w3.clearkey';
const KEY_FORMATS: readonly string[] = ['identity', 'org.w3.clearkey'] satisfies readonly MediaKeyFormat[];

export interface MediaSegment {
  uri: string;
  /** EXTINF duration in seconds; the title is not kept. */
  durationSeconds: number;
  /** EXT-X-DISCONTINUITY before it: the segment starts a new timeline. */
  discontinuity: boolean;
  /** EXT-X-KEY before it (after any EXT-X-DISCONTINUITY): it and those after it are encrypted so. */
  key?: MediaKey;
  /** EXT-X-MAP before it (after any EXT-X-DISCONTINUITY): it and those after it need this init segment. */
  map?: MediaInitSection;
  /** EXT-X-PROGRAM-DATE-TIME of its first sample, ms since the epoch. */
  programDateTime?: number;
  /** Its parts (Low-Latency HLS), listed before its EXTINF. */
  parts: MediaPart[];
}

/** The segment being made: what is listed after the last complete segment (Low-Latency HLS). */
export interface PartialSegment {
  discontinuity: boolean;
  key?: MediaKey;
  map?: MediaInitSection;
  programDateTime?: number;
  parts: MediaPart[];
}

export const EXTINF = '#EXTINF';
export const DISCONTINUITY = '#EXT-X-DISCONTINUITY';
export const PROGRAM_DATE_TIME = '#EXT-X-PROGRAM-DATE-TIME';
export const MAP = '#EXT-X-MAP';
export const KEY = '#EXT-X-KEY';

const IV = /^0[xX]([0-9A-Fa-f]{32})$/;

/** `METHOD=AES-128|SAMPLE-AES,URI="…",IV=0x…[,KEYFORMAT=…]`: what onair writes; anything else is refused (onair reads back its own playlists). */
export function parseKey(value: string): MediaKey {
  const attributes = AttributeReader.parse(value, KEY);
  const method = attributes.required('METHOD', attributes.enumerated);
  if (method !== 'AES-128' && method !== 'SAMPLE-AES') throw new PlaylistParseError(`${KEY}: METHOD=${method} is not supported`);
  const iv = IV.exec(attributes.required('IV', attributes.enumerated));
  if (!iv) throw new PlaylistParseError(`${KEY}: IV: expected 0x and 32 hexadecimal digits`);
  const keyFormat = attributes.quotedString('KEYFORMAT');
  if (keyFormat !== undefined && !KEY_FORMATS.includes(keyFormat)) throw new PlaylistParseError(`${KEY}: KEYFORMAT="${keyFormat}" is not supported`);
  const keyFormatVersions = attributes.quotedString('KEYFORMATVERSIONS');
  return {
    method,
    uri: attributes.required('URI', attributes.quotedString),
    iv: iv[1]!.toLowerCase(),
    ...(keyFormat ? { keyFormat: keyFormat as MediaKeyFormat } : {}),
    ...(keyFormatVersions !== undefined ? { keyFormatVersions } : {}),
  };
}

/** The key's EXT-X-KEY tag, then those of its other formats. */
export function formatKey(key: MediaKey): string[] {
  return [key, ...(key.otherFormats ?? [])].map(formatKeyTag);
}

function formatKeyTag(key: MediaKey): string {
  if (!/^[0-9a-f]{32}$/.test(key.iv)) throw new RangeError(`EXT-X-KEY IV: expected 32 lowercase hexadecimal digits, got ${JSON.stringify(key.iv)}`);
  const keyFormat = key.keyFormat === undefined ? '' : `,KEYFORMAT=${formatQuotedString(key.keyFormat)}`;
  const versions = key.keyFormatVersions === undefined ? '' : `,KEYFORMATVERSIONS=${formatQuotedString(key.keyFormatVersions)}`;
  return `${KEY}:METHOD=${key.method},URI=${formatQuotedString(key.uri)},IV=0x${key.iv}${keyFormat}${versions}`;
}

/** `URI="…"`; a BYTERANGE is refused: onair writes whole init segments and reads back only its own playlists. */
export function parseMap(value: string): MediaInitSection {
  const attributes = AttributeReader.parse(value, MAP);
  if (attributes.quotedString('BYTERANGE') !== undefined) throw new PlaylistParseError(`${MAP}: BYTERANGE is not supported`);
  return { uri: attributes.required('URI', attributes.quotedString) };
}

export function formatMap(map: MediaInitSection): string {
  return `${MAP}:URI=${formatQuotedString(map.uri)}`;
}

/** `<duration>,[<title>]`: the duration in seconds. */
export function parseExtinf(value: string): number {
  const comma = value.indexOf(',');
  return readDecimalFloat(comma === -1 ? value : value.slice(0, comma), EXTINF);
}

export function formatSegment(segment: MediaSegment): string[] {
  const lines = segmentHead(segment);
  lines.push(`${EXTINF}:${formatFixedDecimal(segment.durationSeconds)},`, formatUriLine(segment.uri));
  return lines;
}

export function formatPartialSegment(partial: PartialSegment): string[] {
  return segmentHead(partial);
}

/**
 * The tag stays while its segment is listed, even as the first one: the discontinuity
 * sequence counts only tags that have left the playlist (§6.2.2).
 */
function segmentHead(segment: PartialSegment): string[] {
  const lines: string[] = [];
  if (segment.discontinuity) lines.push(DISCONTINUITY);
  if (segment.key) lines.push(...formatKey(segment.key));
  if (segment.map) lines.push(formatMap(segment.map));
  if (segment.programDateTime !== undefined) lines.push(`${PROGRAM_DATE_TIME}:${formatDateTime(segment.programDateTime)}`);
  for (const part of segment.parts) lines.push(formatPart(part));
  return lines;
}

/** Collects the tags of the segment being read until its URI line closes it. */
export class SegmentBuilder {
  private discontinuity = false;
  private key: MediaKey | undefined;
  private map: MediaInitSection | undefined;
  private programDateTime: number | undefined;
  private durationSeconds: number | undefined;
  private parts: MediaPart[] = [];

  markDiscontinuity(): void {
    this.discontinuity = true;
  }

  /** A second tag before the same segment, of another KEYFORMAT, is the same key in that format. */
  setKey(key: MediaKey): void {
    if (this.key === undefined) {
      this.key = key;
      return;
    }
    const formats = [this.key, ...(this.key.otherFormats ?? [])].map((known) => known.keyFormat ?? 'identity');
    if (formats.includes(key.keyFormat ?? 'identity')) throw new PlaylistParseError(`${KEY}: two tags of KEYFORMAT "${key.keyFormat ?? 'identity'}" before one segment`);
    this.key = { ...this.key, otherFormats: [...(this.key.otherFormats ?? []), key] };
  }

  setMap(map: MediaInitSection): void {
    this.map = map;
  }

  setProgramDateTime(ms: number): void {
    this.programDateTime = ms;
  }

  setDuration(seconds: number): void {
    this.durationSeconds = seconds;
  }

  addPart(part: MediaPart): void {
    this.parts.push(part);
  }

  /** The URI line: the segment is complete. */
  close(uri: string): MediaSegment {
    if (this.durationSeconds === undefined) throw new PlaylistParseError(`URI line "${uri}" without EXTINF`);
    const segment: MediaSegment = { uri, durationSeconds: this.durationSeconds, discontinuity: this.discontinuity, parts: this.parts };
    if (this.key) segment.key = this.key;
    if (this.map) segment.map = this.map;
    if (this.programDateTime !== undefined) segment.programDateTime = this.programDateTime;
    this.reset();
    return segment;
  }

  /** At the end of the playlist: what is listed of a segment without its URI line yet. */
  partial(): PartialSegment | undefined {
    if (this.durationSeconds !== undefined) throw new PlaylistParseError('EXTINF without a URI line');
    if (!this.discontinuity && !this.key && !this.map && this.programDateTime === undefined && this.parts.length === 0) return undefined;
    const partial: PartialSegment = { discontinuity: this.discontinuity, parts: this.parts };
    if (this.key) partial.key = this.key;
    if (this.map) partial.map = this.map;
    if (this.programDateTime !== undefined) partial.programDateTime = this.programDateTime;
    return partial;
  }

  private reset(): void {
    this.discontinuity = false;
    this.key = undefined;
    this.map = undefined;
    this.programDateTime = undefined;
    this.durationSeconds = undefined;
    this.parts = [];
  }
}
