/**
 * A dynamic MPEG-DASH MPD (ISO/IEC 23009-1; DASH-IF IOP live profile) as text, from a typed
 * description: pure, no I/O, no clock (docs/architecture.md, "MPEG-DASH manifests"). The caller
 * (channel-mpd.ts) builds the description from the same window the HLS media playlists list;
 * this module only serializes it, in the element order the MPD schema requires.
 *
 * Timing model (ISO/IEC 23009-1 §5.3.9.5.3): a segment with timeline time `t` (timescale
 * units) is presented at availabilityStartTime + Period@start + (t − presentationTimeOffset) /
 * timescale. With availabilityStartTime at the Unix epoch, Period@start is the wall-clock
 * time (seconds) of the period's first listed segment and presentationTimeOffset its `t`.
 */

/** `urn:mpeg:dash:profile:isoff-live:2011` plus the CMAF profile (ISO/IEC 23009-1 §8.12). */
export const MPD_PROFILES = 'urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019';
/** UTCTiming by an HTTP GET answering an ISO 8601 time (ISO/IEC 23009-1 §5.8.5.7). */
export const UTC_TIMING_HTTP_ISO = 'urn:mpeg:dash:utc:http-iso:2014';
export const MPD_NAMESPACE = 'urn:mpeg:dash:schema:mpd:2011';
/** The `cenc:` namespace of cenc:default_KID (ISO/IEC 23001-7 §11.2), declared only by MPDs that use it. */
const CENC_NAMESPACE = 'urn:mpeg:cenc:2013';
/** ContentProtection@schemeIdUri of the common encryption scheme (ISO/IEC 23009-1 §5.8.5.2) and of W3C ClearKey. */
const MP4_PROTECTION_SCHEME = 'urn:mpeg:dash:mp4protection:2011';
const CLEARKEY_SCHEME = 'urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e';
/**
 * The `dashif:` namespace of dashif:Laurl, the license server URL of a ContentProtection (DASH-IF
 * IOP, Content Protection Information Exchange): dash.js reads `dashif:Laurl` by its prefix, shaka-player by this namespace.
 */
const DASHIF_NAMESPACE = 'https://dashif.org/CPS';

export interface MpdRepresentation {
  id: string;
  /** Bits per second (the peak measured, like HLS BANDWIDTH). */
  bandwidth: number;
}

/** One AdaptationSet: the renditions of one codec. */
export interface MpdAdaptationSet {
  /** RFC 6381 codecs string, e.g. `mp4a.40.2`. */
  codecs: string;
  /** ISO 639 language (`lang`), when known. */
  language?: string;
  representations: MpdRepresentation[];
}

/** One entry of a SegmentTimeline, in timescale units. */
export interface MpdTimelineSegment {
  time: number;
  duration: number;
}

export interface MpdPeriod {
  /** Stable across MPD updates while the period is listed. */
  id: string;
  /** Seconds from availabilityStartTime. */
  startSeconds: number;
  /** The `t` presented at Period@start. */
  presentationTimeOffset: number;
  /** $Number$ of the first listed segment (the HLS MSN). */
  startNumber: number;
  /** SegmentTemplate@initialization and @media (relative to the MPD, with $RepresentationID$, $Number$). */
  initialization: string;
  media: string;
  /**
   * An `encryption: cbcs` channel's period (docs/architecture.md, "Content encryption"): the KID of its
   * key as a UUID, written as cenc:default_KID of mp4protection `cbcs`, beside ClearKey's ContentProtection.
   */
  defaultKid?: string;
  /** Consecutive segments: each `time` is the previous one's time + duration. */
  segments: MpdTimelineSegment[];
}

export interface Mpd {
  /** Wall-clock milliseconds. */
  availabilityStartTime: number;
  publishTime: number;
  minimumUpdatePeriodSeconds: number;
  minBufferTimeSeconds: number;
  suggestedPresentationDelaySeconds: number;
  timeShiftBufferDepthSeconds: number;
  /** The SegmentTemplate timescale: the sample rate. */
  timescale: number;
  audioSamplingRate: number;
  adaptationSets: MpdAdaptationSet[];
  periods: MpdPeriod[];
  /** UTCTiming@value (http-iso). */
  utcTimingUrl: string;
  /**
   * The ClearKey license URL of encrypted periods, written as dashif:Laurl inside ClearKey's
   * ContentProtection (docs/architecture.md, "Player page and encrypted channels"); none: no Laurl.
   */
  clearKeyLicenseUrl?: string;
}

/** The MPD as XML text (UTF-8, LF line ends). */
export function renderMpd(mpd: Mpd): string {
  const longest = Math.max(0, ...mpd.periods.flatMap((period) => period.segments.map((segment) => segment.duration)));
  const encrypted = mpd.periods.some((period) => period.defaultKid !== undefined);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<MPD${attributes({
      xmlns: MPD_NAMESPACE,
      'xmlns:cenc': encrypted ? CENC_NAMESPACE : undefined,
      'xmlns:dashif': encrypted && mpd.clearKeyLicenseUrl !== undefined ? DASHIF_NAMESPACE : undefined,
      profiles: MPD_PROFILES,
      type: 'dynamic',
      availabilityStartTime: isoDateTime(mpd.availabilityStartTime),
      publishTime: isoDateTime(mpd.publishTime),
      minimumUpdatePeriod: isoDuration(mpd.minimumUpdatePeriodSeconds),
      minBufferTime: isoDuration(mpd.minBufferTimeSeconds),
      timeShiftBufferDepth: isoDuration(mpd.timeShiftBufferDepthSeconds),
      suggestedPresentationDelay: isoDuration(mpd.suggestedPresentationDelaySeconds),
      maxSegmentDuration: isoDuration(longest / mpd.timescale),
    })}>`,
  ];
  for (const period of mpd.periods) lines.push(...renderPeriod(mpd, period));
  lines.push(`  <UTCTiming${attributes({ schemeIdUri: UTC_TIMING_HTTP_ISO, value: mpd.utcTimingUrl })}/>`, '</MPD>', '');
  return lines.join('\n');
}

function renderPeriod(mpd: Mpd, period: MpdPeriod): string[] {
  const lines = [`  <Period${attributes({ id: period.id, start: isoDuration(period.startSeconds) })}>`];
  mpd.adaptationSets.forEach((set, index) => {
    lines.push(
      `    <AdaptationSet${attributes({
        id: index,
        contentType: 'audio',
        mimeType: 'audio/mp4',
        codecs: set.codecs,
        audioSamplingRate: mpd.audioSamplingRate,
        lang: set.language,
        segmentAlignment: 'true',
        startWithSAP: 1,
      })}>`,
      ...(period.defaultKid === undefined
        ? []
        : [
            `      <ContentProtection${attributes({ schemeIdUri: MP4_PROTECTION_SCHEME, value: 'cbcs', 'cenc:default_KID': period.defaultKid })}/>`,
            ...(mpd.clearKeyLicenseUrl === undefined
              ? [`      <ContentProtection${attributes({ schemeIdUri: CLEARKEY_SCHEME, value: 'ClearKey1.0' })}/>`]
              : [
                  `      <ContentProtection${attributes({ schemeIdUri: CLEARKEY_SCHEME, value: 'ClearKey1.0' })}>`,
                  `        <dashif:Laurl>${escapeXml(mpd.clearKeyLicenseUrl)}</dashif:Laurl>`,
                  '      </ContentProtection>',
                ]),
          ]),
      `      <SegmentTemplate${attributes({
        timescale: mpd.timescale,
        presentationTimeOffset: period.presentationTimeOffset,
        startNumber: period.startNumber,
        initialization: period.initialization,
        media: period.media,
      })}>`,
      '        <SegmentTimeline>',
      ...timelineEntries(period.segments).map((entry) => `          <S${attributes(entry)}/>`),
      '        </SegmentTimeline>',
      '      </SegmentTemplate>',
      ...set.representations.map((representation) => `      <Representation${attributes({ id: representation.id, bandwidth: Math.round(representation.bandwidth) })}/>`),
      '    </AdaptationSet>',
    );
  });
  lines.push('  </Period>');
  return lines;
}

/**
 * SegmentTimeline `S` elements (ISO/IEC 23009-1 §5.3.9.6): `t` on the first only (the others
 * follow on), `r` counting repeats of the same duration.
 */
export function timelineEntries(segments: readonly MpdTimelineSegment[]): { t?: number; d: number; r?: number }[] {
  const entries: { t?: number; d: number; r?: number }[] = [];
  let expected: number | undefined;
  for (const { time, duration } of segments) {
    const last = entries.at(-1);
    if (last && time === expected && duration === last.d) last.r = (last.r ?? 0) + 1;
    else entries.push(time === expected ? { d: duration } : { t: time, d: duration });
    expected = time + duration;
  }
  return entries;
}

/** ` name="value"` for each defined attribute, XML-escaped. */
function attributes(values: Record<string, string | number | undefined>): string {
  return Object.entries(values)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([name, value]) => ` ${name}="${escapeXml(String(value))}"`)
    .join('');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** xs:dateTime in UTC with milliseconds: `2026-12-04T23:00:00.000Z`. */
export function isoDateTime(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}

/** xs:duration in seconds, at most 6 decimals, no trailing zeros: `PT4S`, `PT3.989333S`. */
export function isoDuration(seconds: number): string {
  const fixed = (Math.round(seconds * 1e6) / 1e6).toFixed(6).replace(/\.?0+$/, '');
  return `PT${fixed}S`;
}
