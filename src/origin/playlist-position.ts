/**
 * Where a Low-Latency HLS media playlist's live edge is, read once per playlist version
 * from its text: what blocking reloads (`_HLS_msn`/`_HLS_part`) and preload-hinted part
 * requests wait for. The origin needs no channel settings for it: a playlist with
 * EXT-X-PART-INF is a low-latency one.
 */

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

const HINTED_PART = /URI="[^"]*?(\d+)-(\d+)\.(\d+)\.ts"/;

/** Undefined for a playlist without parts (not low-latency). */
export function readPlaylistPosition(body: string): PlaylistPosition | undefined {
  let partTargetSeconds: number | undefined;
  let targetDurationSeconds = 0;
  let mediaSequence = 0;
  let segments = 0;
  let partsSinceSegment = 0;
  let hint: PlaylistPosition['hint'];
  for (const line of body.split('\n')) {
    if (line.startsWith('#EXT-X-PART:')) partsSinceSegment += 1;
    else if (line.startsWith('#EXT-X-PART-INF:')) partTargetSeconds = Number(/PART-TARGET=([\d.]+)/.exec(line)?.[1]);
    else if (line.startsWith('#EXT-X-TARGETDURATION:')) targetDurationSeconds = Number(line.slice('#EXT-X-TARGETDURATION:'.length));
    else if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) mediaSequence = Number(line.slice('#EXT-X-MEDIA-SEQUENCE:'.length));
    else if (line.startsWith('#EXT-X-SKIP:')) segments += Number(/SKIPPED-SEGMENTS=(\d+)/.exec(line)?.[1] ?? 0);
    else if (line.startsWith('#EXT-X-PRELOAD-HINT:')) {
      const match = HINTED_PART.exec(line);
      if (match) hint = { msn: Number(match[1]), run: Number(match[2]), part: Number(match[3]) };
    } else if (line !== '' && !line.startsWith('#')) {
      segments += 1;
      partsSinceSegment = 0;
    }
  }
  if (!(partTargetSeconds! > 0)) return undefined;
  return {
    targetDurationSeconds,
    partTargetSeconds: partTargetSeconds!,
    lastSegmentMsn: mediaSequence + segments - 1,
    openParts: partsSinceSegment,
    hint,
  };
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
