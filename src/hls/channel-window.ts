/**
 * The sliding window's arithmetic, pure: the next sequence state from the state, a new
 * segment and the limits (live window, DVR window, discontinuity sequence, bandwidth),
 * program date time that never goes back, segment TTLs, and the decisions about queued
 * segments (which overflow to drop, which a takeover finds already aired). No I/O, no
 * timers, no clock: the publisher (segment-publisher.ts) applies what these return.
 * docs/architecture.md, "Sequence".
 */
import { knowsNoSegment, type ChannelState, type DvrSegment, type OpenSegment, type WindowSegment } from './sequence-state.js';

/** Minimum live window (Apple HLS authoring spec; docs/architecture.md, "Sequence"): 6 segments and 3 × TD. */
export const MIN_WINDOW_SEGMENTS = 6;

export interface WindowLimits {
  /** Segments the live playlists list (see `windowSize`). */
  windowSize: number;
  /** Seconds the DVR playlists cover; 0 for none. */
  dvrSeconds: number;
}

/** Segments in the live window: as configured, but never fewer than 6 nor than 3 target durations. */
export function windowSize(windowSegments: number, segmentSeconds: number, targetDuration: number): number {
  return Math.max(windowSegments, MIN_WINDOW_SEGMENTS, Math.ceil((3 * targetDuration) / segmentSeconds));
}

/** The state after `entry` joins the window (the oldest segments slide out); `endPts` is where the next segment starts. */
export function stateWith(state: ChannelState, entry: WindowSegment, endPts: number, limits: WindowLimits): ChannelState {
  const window = [...state.window, entry];
  let discontinuitySequence = state.discontinuitySequence;
  while (window.length > limits.windowSize) {
    const leaving = window.shift()!;
    // RFC 8216 §6.2.2: removing a segment with a discontinuity tag increments the sequence.
    if (leaving.discontinuity) discontinuitySequence += 1;
  }
  const bandwidth = { ...state.bandwidth };
  for (const [rendition, size] of Object.entries(entry.bytes)) {
    const bits = size * 8;
    const previous = bandwidth[rendition] ?? { peak: 0, bits: 0, seconds: 0 };
    bandwidth[rendition] = {
      peak: Math.max(previous.peak, bits / entry.durationSeconds),
      bits: previous.bits + bits,
      seconds: previous.seconds + entry.durationSeconds,
    };
  }
  const dvr = dvrWith(state.dvr, entry, window.length, limits.dvrSeconds);
  return { ...state, nextMsn: entry.msn + 1, nextPts: endPts, window, discontinuitySequence, bandwidth, open: undefined, dvr };
}

/**
 * The DVR window after `entry` joins `previous`: the last dvrSeconds of segments, and never
 * fewer than the live window holds (`liveSegments`, so the live window is always its tail).
 * Undefined when the DVR is off.
 */
export function dvrWith(previous: readonly DvrSegment[] | undefined, entry: WindowSegment, liveSegments: number, dvrSeconds: number): DvrSegment[] | undefined {
  if (dvrSeconds <= 0) return undefined;
  const { msn, run, durationSeconds, programDateTime, discontinuity } = entry;
  // After a store that lost its state, the DVR restarts with the new window (no MSN gap inside it).
  const kept = (previous ?? []).filter((segment) => segment.msn < msn);
  const joined = { msn, run, durationSeconds, programDateTime, discontinuity };
  const dvr = kept.at(-1)?.msn === msn - 1 ? [...kept, joined] : [joined];
  let seconds = dvr.reduce((sum, segment) => sum + segment.durationSeconds, 0);
  while (dvr.length > liveSegments && seconds - dvr[0]!.durationSeconds >= dvrSeconds) seconds -= dvr.shift()!.durationSeconds;
  return dvr;
}

/** Program date time for a segment stamped `stamp`: never before the end of the window's last segment, across restarts and takeovers, even if a wall clock went back. */
export function monotonicPdt(window: readonly WindowSegment[], stamp: number): number {
  const last = window.at(-1);
  if (!last) return stamp;
  const lastEnd = last.programDateTime + last.durationSeconds * 1000;
  // Within a millisecond is the same instant (float sums of frame durations).
  return stamp < lastEnd - 1 ? lastEnd : stamp;
}

/**
 * RFC 8216 §6.2.2: a segment stays available for its duration plus the longest playlist's
 * duration after it leaves the playlist. It is in the playlist for a window, so the TTL
 * covers two windows plus two target durations, and a margin for slow clients. With a DVR
 * window, the DVR playlist is the longest playlist: it sets the TTL.
 */
export function segmentTtlSeconds(limits: WindowLimits, targetDuration: number): number {
  const windowSeconds = Math.max(limits.windowSize * targetDuration, limits.dvrSeconds);
  return Math.ceil(2 * windowSeconds + 2 * targetDuration + 30);
}

/** When a queued segment's audio starts and how long it lasts. */
export type TimedSegment = Pick<WindowSegment, 'programDateTime' | 'durationSeconds'>;

/**
 * How many segments at the head of `queued` a takeover drops because their audio mostly
 * precedes the end of the stored window (the predecessor already aired it).
 */
export function alreadyAiredCount(window: readonly WindowSegment[], queued: readonly TimedSegment[]): number {
  const last = window.at(-1);
  if (!last) return 0;
  const airedUntil = last.programDateTime + last.durationSeconds * 1000;
  let count = 0;
  for (const { programDateTime, durationSeconds } of queued) {
    const end = programDateTime + durationSeconds * 1000;
    if (end - airedUntil > (durationSeconds * 1000) / 2) break;
    count += 1;
  }
  return count;
}

/**
 * While the store is unreachable segments queue; beyond a window's worth the oldest go,
 * since they could never be listed anyway. Returns the index of the queued segment to drop
 * now (its successor then starts a new timeline), or undefined when the queue fits. The head
 * is kept when it is `headLocked`: its writes are under way, or players have seen its parts.
 */
export function overflowDropIndex(queueLength: number, windowSize: number, headLocked: boolean): number | undefined {
  if (queueLength <= windowSize) return undefined;
  return headLocked ? 1 : 0;
}

/**
 * The state a takeover goes on from, when the stored state is not this run's own last
 * publish: the predecessor's (when it is at least as far as ours, or we know no segment
 * yet), or, when the store lost its data or went back, ours a window past the highest MSN
 * seen (a leader may have published MSNs this packager never saw: none may be given to
 * another URI) and never below `wallClockMsn`, the start of a channel without state
 * (sequence-state.ts), which is ahead of any MSN served before. A packager that knows no
 * segment and finds no stored state starts the channel afresh at `wallClockMsn` (or later).
 * `storeLost` says the store lost or went back; MSN never decreases either way.
 */
export function takeoverState(
  current: ChannelState,
  stored: ChannelState | undefined,
  limits: Pick<WindowLimits, 'windowSize'>,
  targetDuration: number,
  wallClockMsn: number,
): { state: ChannelState; storeLost: boolean } {
  const knowsNothing = knowsNoSegment(current);
  if (stored && (stored.nextMsn >= current.nextMsn || knowsNothing)) return { state: { ...stored, targetDuration }, storeLost: false };
  if (!stored && knowsNothing) return { state: { ...current, targetDuration, nextMsn: Math.max(current.nextMsn, wallClockMsn) }, storeLost: false };
  const nextMsn = Math.max(current.nextMsn + limits.windowSize, wallClockMsn);
  return { state: { ...current, targetDuration, nextMsn, window: [], open: undefined }, storeLost: true };
}

/**
 * The window entry of a predecessor's open segment completed from its stored parts
 * (`bytes` per rendition), and where the timeline goes on after it.
 */
export function completedOpenSegment(open: OpenSegment, bytes: Record<string, number>, nextPts: number): { entry: WindowSegment; endPts: number } {
  const durationSeconds = open.parts.reduce((sum, duration) => sum + duration, 0);
  const entry: WindowSegment = {
    msn: open.msn,
    run: open.run,
    durationSeconds,
    programDateTime: open.programDateTime,
    discontinuity: open.discontinuity,
    bytes,
    parts: open.parts,
  };
  return { entry, endPts: nextPts + Math.round(durationSeconds * 90_000) };
}
