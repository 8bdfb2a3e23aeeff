/**
 * Our live playlists (RFC 8216 §4.3, Apple HLS authoring spec for live audio): what a
 * window of segments becomes as playlist structures, marshalled by the codec
 * (./playlist/). Pure: state in, text out. The sliding window never carries
 * EXT-X-PLAYLIST-TYPE (§4.3.3.5); every segment carries EXT-X-PROGRAM-DATE-TIME (§4.3.2.6).
 */
import * as m3u8 from './playlist/index.js';


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
  return m3u8.marshalMediaPlaylist(describeMediaPlaylist(playlist));
}

/** The codec structure of a live media playlist (the VOD playlist of a recording builds on it). */
export function describeMediaPlaylist(playlist: MediaPlaylist): m3u8.MediaPlaylist {
  const lowLatency = playlist.lowLatency;
  const { targetDuration } = playlist;
  const skipped = lowLatency?.skippedSegments ?? 0;
  const described: m3u8.MediaPlaylist = {
    version: lowLatency ? LOW_LATENCY_PLAYLIST_VERSION : PLAYLIST_VERSION,
    targetDuration,
    mediaSequence: playlist.mediaSequence,
    discontinuitySequence: playlist.discontinuitySequence,
    segments: playlist.segments.slice(skipped).map(describeSegment),
    preloadHints: [],
    renditionReports: [],
    endList: false,
  };
  if (skipped > 0) described.skip = { skippedSegments: skipped };
  if (!lowLatency) return described;
  const partTargetSeconds = lowLatency.partTargetSeconds;
  described.serverControl = {
    canBlockReload: true,
    canSkipUntilSeconds: SKIP_UNTIL_TARGET_DURATIONS * targetDuration,
    holdBackSeconds: HOLD_BACK_TARGET_DURATIONS * targetDuration,
    partHoldBackSeconds: PART_HOLD_BACK_PARTS * partTargetSeconds,
  };
  described.partInf = { partTargetSeconds };
  if (lowLatency.openParts.length > 0) {
    described.partialSegment = { discontinuity: lowLatency.openDiscontinuity, parts: lowLatency.openParts.map(describePart) };
  }
  described.preloadHints = [{ type: 'PART', uri: lowLatency.preloadHintUri }];
  described.renditionReports = lowLatency.renditionReports.map((report) => ({ ...report }));
  return described;
}

function describeSegment(segment: PlaylistSegment): m3u8.MediaSegment {
  return {
    uri: segment.uri,
    durationSeconds: segment.durationSeconds,
    discontinuity: segment.discontinuity,
    programDateTime: segment.programDateTime,
    parts: (segment.parts ?? []).map(describePart),
  };
}

/** Every part is independent: each AAC frame decodes on its own. */
function describePart(part: PlaylistPart): m3u8.MediaPart {
  return { uri: part.uri, durationSeconds: part.durationSeconds, independent: true };
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
  return m3u8.marshalMasterPlaylist({
    version: PLAYLIST_VERSION,
    independentSegments: true,
    variants: variants.map((variant) => ({
      uri: variant.uri,
      bandwidth: Math.ceil(variant.bandwidth),
      averageBandwidth: Math.ceil(variant.averageBandwidth),
      codecs: variant.codecs,
    })),
  });
}
