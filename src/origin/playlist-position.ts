/**
 * Where a Low-Latency HLS media playlist's live edge is, read once per playlist version
 * from its text: what blocking reloads (`_HLS_msn`/`_HLS_part`) and preload-hinted part
 * requests wait for. The origin needs no channel settings for it: a playlist with
 * EXT-X-PART-INF is a low-latency one. The playlist codec reads the text; this module
 * only counts what it lists.
 */
import { parseSegmentName } from '../hls/published-names.js';
import { parseMediaPlaylist, PlaylistParseError, type MediaPlaylist } from '../hls/playlist/index.js';

export interface PartAddress {
  msn: number;
  part: number;
}

export interface PlaylistPosition {
  targetDurationSeconds: number;
  partTargetSeconds: number;
  /** MSN of the last complete segment, -1 before the first. */
  lastSegmentMsn: number;
  /** Parts listed after the last complete segment (those of the segment being made). */
  openParts: number;
  /** The part EXT-X-PRELOAD-HINT names, with the packager run in its URI. */
  hint: (PartAddress & { run: number }) | undefined;
}

/** Undefined for a playlist without parts (not low-latency), or one the codec cannot read. */
export function readPlaylistPosition(body: string): PlaylistPosition | undefined {
  let playlist: MediaPlaylist;
  try {
    playlist = parseMediaPlaylist(body);
  } catch (error) {
    if (error instanceof PlaylistParseError) return undefined;
    throw error;
  }
  const partTargetSeconds = playlist.partInf?.partTargetSeconds ?? 0;
  if (!(partTargetSeconds > 0)) return undefined;
  const listedSegments = (playlist.skip?.skippedSegments ?? 0) + playlist.segments.length;
  return {
    targetDurationSeconds: playlist.targetDuration,
    partTargetSeconds,
    lastSegmentMsn: playlist.mediaSequence + listedSegments - 1,
    openParts: playlist.partialSegment?.parts.length ?? 0,
    hint: hintedPart(playlist),
  };
}

/** The part the EXT-X-PRELOAD-HINT names, when its URI is one of our part URIs. */
function hintedPart(playlist: MediaPlaylist): PlaylistPosition['hint'] {
  const uri = playlist.preloadHints.find((hint) => hint.type === 'PART')?.uri;
  const address = uri === undefined ? undefined : parseSegmentName(uri.slice(uri.lastIndexOf('/') + 1));
  return address?.part === undefined ? undefined : { msn: address.msn, run: address.run, part: address.part };
}

/** Whether the playlist lists segment `msn` (complete), or its part `part` when given. */
export function lists(position: PlaylistPosition, msn: number, part?: number): boolean {
  if (msn <= position.lastSegmentMsn) return true;
  return part !== undefined && msn === position.lastSegmentMsn + 1 && part < position.openParts;
}

/**
 * Whether a request for segment `msn` (or its part `part`) looks further ahead than
 * rfc8216bis §6.2.5.2 lets a client ask: more than two segments past the last one, or
 * a part past the last one by the Advance Part Limit (3, or 3 / PART-TARGET when parts
 * are shorter than a second).
 */
export function tooFarAhead(position: PlaylistPosition, msn: number, part?: number): boolean {
  const last = position.lastSegmentMsn;
  if (msn > last + 2) return true;
  if (part === undefined) return false;
  const limit = position.partTargetSeconds < 1 ? Math.floor(3 / position.partTargetSeconds) : 3;
  if (msn === last + 1) return part >= position.openParts + limit;
  if (msn === last + 2) return part >= limit;
  return false;
}
