/**
 * What a progressive mount reads next from a rendition's media playlist
 * (docs/architecture.md, Progressive mounts). Pure: given the parsed playlist and where the mount stands, the list of
 * segments and parts to read, in order, so that every MSN is delivered once: whole segments
 * once they are complete, LL-HLS parts of the segment being made (for latency), and the rest
 * of a segment whose first parts were already delivered (its frames after those). A packager
 * takeover (a new run id in the names, the MSN going on) needs nothing special; only when the
 * mount's next MSN left the window (it fell behind, or the store lost its data) does it jump,
 * once, to the live edge. On an fMP4 channel each read names the EXT-X-MAP in force for it
 * (the last one listed at or before its segment), the init segment its samples need.
 */
import { parseSegmentUri } from '../../hls/published-names.js';
import type { MediaPlaylist } from '../../hls/playlist/index.js';

/** Where a mount stands: the next MSN to deliver, and how much of it was delivered already. */
export interface FollowPosition {
  msn: number;
  /** The run whose parts of `msn` were delivered (undefined when none was). */
  run?: number;
  /** Parts of `msn` delivered so far (LL-HLS); 0 when none. */
  parts: number;
  /** Frames of `msn` delivered so far (the parts'), skipped when the whole segment is read. */
  frames: number;
}

/** One read: a whole segment (`part` undefined) or one part; `skipFrames` of it were delivered already. */
export interface FollowRead {
  uri: string;
  msn: number;
  part?: number;
  skipFrames: number;
  durationSeconds: number;
  /** The URI of the EXT-X-MAP in force (fMP4), if the playlist lists one. */
  mapUri?: string;
}

export interface FollowPlan {
  reads: FollowRead[];
  /** The mount's next MSN was no longer listed: it goes on from the live edge. */
  jumped: boolean;
}

interface ListedUnit {
  msn: number;
  run: number | undefined;
  /** The complete segment's URI, or undefined for the segment being made. */
  uri: string | undefined;
  durationSeconds: number;
  parts: { uri: string; durationSeconds: number }[];
  mapUri: string | undefined;
}

/**
 * The reads after `position`; from scratch (no position, or a jump), the reads that end at the
 * live edge and cover at least `startSeconds` of audio (the burst a new listener gets).
 */
export function planReads(playlist: MediaPlaylist, position: FollowPosition | undefined, startSeconds: number): FollowPlan {
  const units = listedUnits(playlist);
  if (units.length === 0) return { reads: [], jumped: false };
  if (position === undefined) return { reads: fromLiveEdge(units, startSeconds), jumped: false };
  const first = units[0]!.msn;
  const last = units.at(-1)!.msn;
  if (position.msn > last) return { reads: [], jumped: false };
  if (position.msn < first) return { reads: fromLiveEdge(units, 0), jumped: true };
  const reads: FollowRead[] = [];
  for (const unit of units) {
    if (unit.msn < position.msn) continue;
    const current = unit.msn === position.msn;
    const delivered = current ? position : { msn: unit.msn, parts: 0, frames: 0 };
    // Parts of another run under this MSN can only follow a lost store: the segment is skipped.
    if (current && delivered.parts > 0 && delivered.run !== undefined && unit.run !== undefined && unit.run !== delivered.run) continue;
    reads.push(...readsOf(unit, delivered));
  }
  return { reads, jumped: false };
}

/** The reads that deliver what is left of `unit` after `delivered`. */
function readsOf(unit: ListedUnit, delivered: FollowPosition): FollowRead[] {
  const map = unit.mapUri === undefined ? {} : { mapUri: unit.mapUri };
  if (unit.uri !== undefined) {
    return [{ uri: unit.uri, msn: unit.msn, skipFrames: delivered.frames, durationSeconds: unit.durationSeconds, ...map }];
  }
  return unit.parts.slice(delivered.parts).map((part, index) => ({
    uri: part.uri,
    msn: unit.msn,
    part: delivered.parts + index,
    skipFrames: 0,
    durationSeconds: part.durationSeconds,
    ...map,
  }));
}

/** The complete segments back from the live edge that cover `seconds` (at least one), then the parts being made. */
function fromLiveEdge(units: ListedUnit[], seconds: number): FollowRead[] {
  const open = units.at(-1)!.uri === undefined ? units.at(-1)! : undefined;
  const complete = open ? units.slice(0, -1) : units;
  let covered = open ? open.parts.reduce((sum, part) => sum + part.durationSeconds, 0) : 0;
  let start = complete.length;
  while (start > 0) {
    start -= 1;
    covered += complete[start]!.durationSeconds;
    if (covered >= seconds) break;
  }
  const picked = complete.slice(start);
  const reads = picked.flatMap((unit) => readsOf(unit, { msn: unit.msn, parts: 0, frames: 0 }));
  if (open) reads.push(...readsOf(open, { msn: open.msn, parts: 0, frames: 0 }));
  return reads;
}

function listedUnits(playlist: MediaPlaylist): ListedUnit[] {
  const first = playlist.mediaSequence + (playlist.skip?.skippedSegments ?? 0);
  // An EXT-X-MAP applies to its segment and those after it, until the next (RFC 8216 §4.3.2.5).
  let mapUri: string | undefined;
  const units: ListedUnit[] = playlist.segments.map((segment, index) => {
    mapUri = segment.map?.uri ?? mapUri;
    return {
      msn: first + index,
      run: parseSegmentUri(segment.uri)?.run,
      uri: segment.uri,
      durationSeconds: segment.durationSeconds,
      parts: segment.parts.map((part) => ({ uri: part.uri, durationSeconds: part.durationSeconds })),
      mapUri,
    };
  });
  const partial = playlist.partialSegment;
  if (partial && partial.parts.length > 0) {
    units.push({
      msn: first + playlist.segments.length,
      run: parseSegmentUri(partial.parts[0]!.uri)?.run,
      uri: undefined,
      durationSeconds: partial.parts.reduce((sum, part) => sum + part.durationSeconds, 0),
      parts: partial.parts.map((part) => ({ uri: part.uri, durationSeconds: part.durationSeconds })),
      mapUri: partial.map?.uri ?? mapUri,
    });
  }
  return units;
}
