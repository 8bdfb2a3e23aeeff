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
  /**
   * fMP4: the URI of the init segment it needs. EXT-X-MAP is written before the first segment
   * listed, and again where the init changes or a discontinuity starts (RFC 8216 §4.3.2.5).
   */
  initUri?: string;
  /**
   * AES-128: the key it is encrypted with. EXT-X-KEY is written before the first segment listed,
   * and again where the key changes (rotation) or a discontinuity starts (docs/architecture.md, "Content encryption").
   */
  key?: m3u8.MediaKey;
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
  /** fMP4: the init segment the segment being made needs. */
  openInitUri?: string;
  /** AES-128: the key the segment being made (its parts) is encrypted with. */
  openKey?: m3u8.MediaKey;
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
/** A media playlist with EXT-X-MAP (and no EXT-X-I-FRAMES-ONLY) needs version 6 (RFC 8216 §7). */
export const INIT_SECTION_PLAYLIST_VERSION = 6;
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
  const maps = new InitSections();
  const keys = new KeyTags();
  const segments = playlist.segments.slice(skipped).map((segment) => describeSegment(segment, maps, keys));
  const described: m3u8.MediaPlaylist = {
    version: lowLatency ? LOW_LATENCY_PLAYLIST_VERSION : maps.written ? INIT_SECTION_PLAYLIST_VERSION : PLAYLIST_VERSION,
    targetDuration,
    mediaSequence: playlist.mediaSequence,
    discontinuitySequence: playlist.discontinuitySequence,
    segments,
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
    const map = maps.before(lowLatency.openInitUri, lowLatency.openDiscontinuity);
    if (map) described.partialSegment.map = map;
    const key = keys.before(lowLatency.openKey, lowLatency.openDiscontinuity);
    if (key) described.partialSegment.key = key;
  }
  described.preloadHints = [{ type: 'PART', uri: lowLatency.preloadHintUri }];
  described.renditionReports = lowLatency.renditionReports.map((report) => ({ ...report }));
  return described;
}

function describeSegment(segment: PlaylistSegment, maps: InitSections, keys: KeyTags): m3u8.MediaSegment {
  const described: m3u8.MediaSegment = {
    uri: segment.uri,
    durationSeconds: segment.durationSeconds,
    discontinuity: segment.discontinuity,
    programDateTime: segment.programDateTime,
    parts: (segment.parts ?? []).map(describePart),
  };
  const map = maps.before(segment.initUri, segment.discontinuity);
  if (map) described.map = map;
  const key = keys.before(segment.key, segment.discontinuity);
  if (key) described.key = key;
  return described;
}

/**
 * Where EXT-X-KEY goes, as EXT-X-MAP: before the first segment listed (a delta update's too),
 * where the key changes, and after every discontinuity.
 */
class KeyTags {
  private current: m3u8.MediaKey | undefined;

  before(key: m3u8.MediaKey | undefined, discontinuity: boolean): m3u8.MediaKey | undefined {
    const same = key !== undefined && this.current !== undefined && key.uri === this.current.uri && key.iv === this.current.iv;
    if (key === undefined || (same && !discontinuity)) return undefined;
    this.current = key;
    return key;
  }
}

/**
 * Where EXT-X-MAP goes, in listing order: before the first segment listed (a delta update's
 * too: the skipped ones' tags are gone with them), where the init changes (a new packager
 * run) and after every discontinuity, so a player that resets there never lacks it.
 */
class InitSections {
  written = false;
  private current: string | undefined;

  before(initUri: string | undefined, discontinuity: boolean): m3u8.MediaInitSection | undefined {
    if (initUri === undefined || (initUri === this.current && !discontinuity)) return undefined;
    this.current = initUri;
    this.written = true;
    return { uri: initUri };
  }
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
