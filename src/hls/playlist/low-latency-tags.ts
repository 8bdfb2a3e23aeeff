/**
 * The Low-Latency HLS tags (draft-pantos-hls-rfc8216bis): EXT-X-SERVER-CONTROL (§4.4.3.8),
 * EXT-X-PART-INF (§4.4.3.7), EXT-X-PART (§4.4.4.9), EXT-X-SKIP (§4.4.5.2),
 * EXT-X-PRELOAD-HINT (§4.4.5.3) and EXT-X-RENDITION-REPORT (§4.4.5.4): their structures,
 * and each tag's value read from and written to text.
 */
import { AttributeReader, formatAttributeList } from './attributes.js';
import { formatDecimal, formatDecimalInteger, formatFixedDecimal, formatQuotedString, withoutUndefined } from './values.js';

export interface ServerControl {
  /** CAN-BLOCK-RELOAD=YES: the server holds `_HLS_msn`/`_HLS_part` requests. */
  canBlockReload: boolean;
  /** CAN-SKIP-UNTIL: delta updates may skip segments older than this, in seconds. */
  canSkipUntilSeconds?: number;
  /** HOLD-BACK: how far from the end a player starts, in seconds. */
  holdBackSeconds?: number;
  /** PART-HOLD-BACK: the same, in seconds, for a player that plays parts. */
  partHoldBackSeconds?: number;
}

export interface PartInf {
  /** PART-TARGET: the longest part, in seconds. */
  partTargetSeconds: number;
}

export interface MediaPart {
  uri: string;
  durationSeconds: number;
  /** INDEPENDENT=YES: the part starts with a frame that decodes on its own. */
  independent: boolean;
}

export interface Skip {
  /** SKIPPED-SEGMENTS: how many segments the delta update leaves out at its start. */
  skippedSegments: number;
}

export interface PreloadHint {
  type: 'PART' | 'MAP';
  uri: string;
}

export interface RenditionReport {
  uri: string;
  lastMsn?: number;
  lastPart?: number;
}

export const SERVER_CONTROL = '#EXT-X-SERVER-CONTROL';
export const PART_INF = '#EXT-X-PART-INF';
export const PART = '#EXT-X-PART';
export const SKIP = '#EXT-X-SKIP';
export const PRELOAD_HINT = '#EXT-X-PRELOAD-HINT';
export const RENDITION_REPORT = '#EXT-X-RENDITION-REPORT';

export function parseServerControl(value: string): ServerControl {
  const attributes = AttributeReader.parse(value, SERVER_CONTROL);
  return withoutUndefined({
    canBlockReload: attributes.yesNo('CAN-BLOCK-RELOAD') ?? false,
    canSkipUntilSeconds: attributes.decimalFloat('CAN-SKIP-UNTIL'),
    holdBackSeconds: attributes.decimalFloat('HOLD-BACK'),
    partHoldBackSeconds: attributes.decimalFloat('PART-HOLD-BACK'),
  });
}

/**
 * CAN-SKIP-UNTIL and HOLD-BACK are whole target durations and written as they are (`12`);
 * PART-HOLD-BACK is a multiple of the part target and written like it, with 5 decimals.
 */
export function formatServerControl(control: ServerControl): string {
  const attributes: [string, string][] = [];
  if (control.canBlockReload) attributes.push(['CAN-BLOCK-RELOAD', 'YES']);
  if (control.canSkipUntilSeconds !== undefined) attributes.push(['CAN-SKIP-UNTIL', formatDecimal(control.canSkipUntilSeconds)]);
  if (control.holdBackSeconds !== undefined) attributes.push(['HOLD-BACK', formatDecimal(control.holdBackSeconds)]);
  if (control.partHoldBackSeconds !== undefined) attributes.push(['PART-HOLD-BACK', formatFixedDecimal(control.partHoldBackSeconds)]);
  return `${SERVER_CONTROL}:${formatAttributeList(attributes)}`;
}

export function parsePartInf(value: string): PartInf {
  const attributes = AttributeReader.parse(value, PART_INF);
  return { partTargetSeconds: attributes.required('PART-TARGET', attributes.decimalFloat) };
}

export function formatPartInf(partInf: PartInf): string {
  return `${PART_INF}:PART-TARGET=${formatFixedDecimal(partInf.partTargetSeconds)}`;
}

export function parsePart(value: string): MediaPart {
  const attributes = AttributeReader.parse(value, PART);
  return {
    uri: attributes.required('URI', attributes.quotedString),
    durationSeconds: attributes.required('DURATION', attributes.decimalFloat),
    independent: attributes.yesNo('INDEPENDENT') ?? false,
  };
}

export function formatPart(part: MediaPart): string {
  const attributes: [string, string][] = [
    ['DURATION', formatFixedDecimal(part.durationSeconds)],
    ['URI', formatQuotedString(part.uri)],
  ];
  if (part.independent) attributes.push(['INDEPENDENT', 'YES']);
  return `${PART}:${formatAttributeList(attributes)}`;
}

export function parseSkip(value: string): Skip {
  const attributes = AttributeReader.parse(value, SKIP);
  return { skippedSegments: attributes.required('SKIPPED-SEGMENTS', attributes.decimalInteger) };
}

export function formatSkip(skip: Skip): string {
  return `${SKIP}:SKIPPED-SEGMENTS=${formatDecimalInteger(skip.skippedSegments)}`;
}

/** Undefined for a hint of a TYPE this codec does not know (the tag is then ignored). */
export function parsePreloadHint(value: string): PreloadHint | undefined {
  const attributes = AttributeReader.parse(value, PRELOAD_HINT);
  const type = attributes.required('TYPE', attributes.enumerated);
  const uri = attributes.required('URI', attributes.quotedString);
  return type === 'PART' || type === 'MAP' ? { type, uri } : undefined;
}

export function formatPreloadHint(hint: PreloadHint): string {
  return `${PRELOAD_HINT}:${formatAttributeList([
    ['TYPE', hint.type],
    ['URI', formatQuotedString(hint.uri)],
  ])}`;
}

export function parseRenditionReport(value: string): RenditionReport {
  const attributes = AttributeReader.parse(value, RENDITION_REPORT);
  return withoutUndefined({
    uri: attributes.required('URI', attributes.quotedString),
    lastMsn: attributes.decimalInteger('LAST-MSN'),
    lastPart: attributes.decimalInteger('LAST-PART'),
  });
}

export function formatRenditionReport(report: RenditionReport): string {
  const attributes: [string, string][] = [['URI', formatQuotedString(report.uri)]];
  if (report.lastMsn !== undefined) attributes.push(['LAST-MSN', formatDecimalInteger(report.lastMsn)]);
  if (report.lastPart !== undefined) attributes.push(['LAST-PART', formatDecimalInteger(report.lastPart)]);
  return `${RENDITION_REPORT}:${formatAttributeList(attributes)}`;
}
