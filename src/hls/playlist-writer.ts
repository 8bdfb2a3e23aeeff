/**
 * Playlist serialization (RFC 8216 §4.3, Apple HLS authoring spec for live audio).
 * Pure: state in, text out. The sliding window never carries EXT-X-PLAYLIST-TYPE
 * (§4.3.3.5); every segment carries EXT-X-PROGRAM-DATE-TIME (§4.3.2.6).
 */

export interface PlaylistSegment {
  /** URI relative to the media playlist, e.g. `hifi/1234-3.ts`. */
  uri: string;
  /** Exact audio duration in seconds (frames × 1024 / sample rate). */
  durationSeconds: number;
  /** Wall-clock time of the segment's first sample, ms since the epoch. */
  programDateTime: number;
  /** True when this segment starts a new timeline (EXT-X-DISCONTINUITY before it). */
  discontinuity: boolean;
  /** Its partial segments, listed while it is near the live edge (Low-Latency HLS). */
  parts?: readonly PlaylistPart[];
}

export interface PlaylistPart {
  uri: string;
  durationSeconds: number;
}

/** What a Low-Latency HLS media playlist adds (draft-pantos-hls-rfc8216bis §4.4.3.7–4.4.5.2). */
export interface LowLatencyPlaylist {
  /** EXT-X-PART-INF PART-TARGET: the longest part, in seconds. */
  partTargetSeconds: number;
  /** Parts of the segment being made, after the last complete segment. */
  openParts: readonly PlaylistPart[];
  /** The segment being made starts a new timeline. */
  openDiscontinuity: boolean;
  /** EXT-X-PRELOAD-HINT: the next part's URI. */
  preloadHintUri: string;
  /** EXT-X-RENDITION-REPORT for each other rendition of the channel. */
  renditionReports: readonly { uri: string; lastMsn: number; lastPart: number }[];
  /** Delta update (`_HLS_skip=YES`): the first this many segments are replaced by EXT-X-SKIP. */
  skippedSegments?: number;
}

export interface MediaPlaylist {
  targetDuration: number;
  mediaSequence: number;
  discontinuitySequence: number;
  segments: readonly PlaylistSegment[];
  lowLatency?: LowLatencyPlaylist;
}

export interface MasterVariant {
  uri: string;
  /** Peak segment bit rate in bits per second (§4.3.4.2: BANDWIDTH). */
  bandwidth: number;
  averageBandwidth: number;
  codecs: string;
}

/** Version 3 is what we use: floating-point EXTINF (§7). */
export const PLAYLIST_VERSION = 3;
/** Low-Latency media playlists: EXT-X-SKIP needs version 9 (rfc8216bis §4.4.5.2), in full and delta playlists alike. */
export const LOW_LATENCY_PLAYLIST_VERSION = 9;
/** HOLD-BACK, and the oldest a segment's parts stay listed, in target durations (rfc8216bis §4.4.3.8, §6.2.2). */
export const HOLD_BACK_TARGET_DURATIONS = 3;
/** CAN-SKIP-UNTIL in target durations: the minimum rfc8216bis allows (§4.4.3.8). */
export const SKIP_UNTIL_TARGET_DURATIONS = 6;
/** PART-HOLD-BACK in part targets (rfc8216bis §4.4.3.8: at least three). */
export const PART_HOLD_BACK_PARTS = 3;
export const AAC_LC_CODECS = 'mp4a.40.2';

export function renderMediaPlaylist(playlist: MediaPlaylist): string {
  const lowLatency = playlist.lowLatency;
  const { targetDuration } = playlist;
  const lines = [
    '#EXTM3U',
    `#EXT-X-VERSION:${lowLatency ? LOW_LATENCY_PLAYLIST_VERSION : PLAYLIST_VERSION}`,
    `#EXT-X-TARGETDURATION:${targetDuration}`,
  ];
  if (lowLatency) {
    const partTarget = lowLatency.partTargetSeconds;
    lines.push(
      `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=${SKIP_UNTIL_TARGET_DURATIONS * targetDuration},` +
        `HOLD-BACK=${HOLD_BACK_TARGET_DURATIONS * targetDuration},PART-HOLD-BACK=${formatDuration(PART_HOLD_BACK_PARTS * partTarget)}`,
      `#EXT-X-PART-INF:PART-TARGET=${formatDuration(partTarget)}`,
    );
  }
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${playlist.mediaSequence}`, `#EXT-X-DISCONTINUITY-SEQUENCE:${playlist.discontinuitySequence}`);
  const skipped = lowLatency?.skippedSegments ?? 0;
  if (skipped > 0) lines.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped}`);
  for (const segment of playlist.segments.slice(skipped)) {
    // The tag stays while its segment is in the window, even as the first one: the
    // discontinuity sequence only counts tags that have left (§6.2.2), so a player's
    // discontinuity count for each segment never changes between reloads.
    if (segment.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(segment.programDateTime).toISOString()}`);
    for (const part of segment.parts ?? []) lines.push(partLine(part));
    lines.push(`#EXTINF:${formatDuration(segment.durationSeconds)},`);
    lines.push(segment.uri);
  }
  if (lowLatency) {
    if (lowLatency.openDiscontinuity && lowLatency.openParts.length > 0) lines.push('#EXT-X-DISCONTINUITY');
    for (const part of lowLatency.openParts) lines.push(partLine(part));
    lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${lowLatency.preloadHintUri}"`);
    for (const report of lowLatency.renditionReports) {
      lines.push(`#EXT-X-RENDITION-REPORT:URI="${report.uri}",LAST-MSN=${report.lastMsn},LAST-PART=${report.lastPart}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Every part is independent: each AAC frame decodes on its own. */
function partLine(part: PlaylistPart): string {
  return `#EXT-X-PART:DURATION=${formatDuration(part.durationSeconds)},URI="${part.uri}",INDEPENDENT=YES`;
}

/**
 * How many leading segments a delta update may skip (rfc8216bis §6.2.5.1): those that
 * start more than CAN-SKIP-UNTIL before the end of the playlist.
 */
export function skippableSegments(segments: readonly PlaylistSegment[], targetDuration: number, openSeconds: number): number {
  let remaining = segments.reduce((sum, segment) => sum + segment.durationSeconds, openSeconds);
  let skippable = 0;
  for (const segment of segments) {
    if (remaining <= SKIP_UNTIL_TARGET_DURATIONS * targetDuration) break;
    remaining -= segment.durationSeconds;
    skippable += 1;
  }
  return skippable;
}

export function renderMasterPlaylist(variants: readonly MasterVariant[]): string {
  const lines = ['#EXTM3U', `#EXT-X-VERSION:${PLAYLIST_VERSION}`, '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const variant of variants) {
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${Math.ceil(variant.bandwidth)},AVERAGE-BANDWIDTH=${Math.ceil(variant.averageBandwidth)},CODECS="${variant.codecs}"`,
    );
    lines.push(variant.uri);
  }
  return `${lines.join('\n')}\n`;
}

/** EXTINF with 5 decimals: exact to 10 µs, and never a rounded-up 4.0 that lies. */
function formatDuration(seconds: number): string {
  return seconds.toFixed(5);
}
