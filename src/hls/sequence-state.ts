/**
 * The per-channel sequence state kept in the store next to the playlists
 * (docs/architecture.md, Sequence): the live window, the next media sequence number, the
 * discontinuity sequence and where the PTS timeline goes on. A restarted packager
 * reads it back and continues: MSN never moves back, no URI is reused.
 *
 * Neither rests on the store alone (docs/architecture.md, "Sequence"): every run names its
 * URIs with a run id of its own making (`newRunId`: its start time and random digits), and
 * a channel without stored state (new, or the store lost it) starts from an MSN derived
 * from the wall clock (`wallClockMsn`), ahead of any MSN a channel could have reached.
 */
import type { PlaylistSegment } from './playlist-writer.js';

export interface WindowSegment extends Omit<PlaylistSegment, 'uri' | 'parts'> {
  msn: number;
  /** Packager run that wrote it: part of the URI so a URI is never reused. */
  run: number;
  /** Bytes of this segment per rendition id (for BANDWIDTH measurement). */
  bytes: Record<string, number>;
  /** Durations of its parts in seconds (Low-Latency HLS channels only). */
  parts?: number[];
}

/** The parts already published of the segment being made (Low-Latency HLS). */
export interface OpenSegment {
  msn: number;
  run: number;
  discontinuity: boolean;
  /** PROGRAM-DATE-TIME of its first part: a successor that completes it needs it. */
  programDateTime: number;
  /** Part durations in seconds, in order. */
  parts: number[];
}

export interface RenditionBandwidth {
  /** Highest segment bit rate seen, bits per second. */
  peak: number;
  /** Sum of bits and seconds of all segments seen, for AVERAGE-BANDWIDTH. */
  bits: number;
  seconds: number;
}

export interface ChannelState {
  version: 1;
  targetDuration: number;
  nextMsn: number;
  discontinuitySequence: number;
  /** PTS (90 kHz, wrapped) the next segment starts at. */
  nextPts: number;
  window: WindowSegment[];
  bandwidth: Record<string, RenditionBandwidth>;
  /** Set between a part's publish and its segment's. */
  open?: OpenSegment;
  /** DVR window (`dvrSeconds`): the segments of the last dvrSeconds, oldest first, the live window included. */
  dvr?: DvrSegment[];
}

/** A segment as the DVR playlist lists it. */
export type DvrSegment = Pick<WindowSegment, 'msn' | 'run' | 'durationSeconds' | 'programDateTime' | 'discontinuity'>;

/** The state of a channel nothing is known about, starting at `firstMsn` (see `wallClockMsn`). */
export function emptyChannelState(targetDuration: number, firstPts: number, firstMsn = 0): ChannelState {
  return { version: 1, targetDuration, nextMsn: firstMsn, discontinuitySequence: 0, nextPts: firstPts, window: [], bandwidth: {} };
}

/** Whether `state` knows no segment at all: nothing published, listed, followed or seen. */
export function knowsNoSegment(state: ChannelState): boolean {
  return state.window.length === 0 && state.open === undefined && Object.keys(state.bandwidth).length === 0;
}

/** Origin of `wallClockMsn`: 2025-01-01T00:00:00Z. */
export const SEQUENCE_EPOCH_MS = Date.UTC(2025, 0, 1);
/** Pace of `wallClockMsn`: ten MSNs a second, five times the fastest channel (0.5-s segments). */
const WALL_CLOCK_MSN_PER_SECOND = 10;

/**
 * The MSN a channel without stored state starts from (a new channel, or a store that lost
 * its data): tenths of a second since SEQUENCE_EPOCH_MS, so it is ahead of any MSN served
 * before. A channel publishes one MSN per segment (0.5 s at the shortest), plus one per
 * restart that completes a predecessor's open Low-Latency segment, so one that started from
 * this value at t0 stays below it: the wall-clock MSN gains at least 8 MSNs a second on it,
 * and a restart takes longer than the tenth of a second a step lasts. (A pace of one MSN
 * per target duration would not do: segments last a target duration on average, so a channel
 * keeps pace with it and every restart puts it ahead.) Channels that started at MSN 0
 * (earlier versions) stay far below it. 0 for a clock before the epoch; below 2^31 until
 * 2031 and below 10^15 (the longest MSN a segment name takes) for 3 million years.
 */
export function wallClockMsn(nowMs: number): number {
  return Math.max(0, Math.floor(((nowMs - SEQUENCE_EPOCH_MS) * WALL_CLOCK_MSN_PER_SECOND) / 1000));
}

/** Random digits at the end of a run id: two runs started in the same millisecond still differ. */
export const RUN_RANDOM_RANGE = 1000;

/**
 * A packager run's id, part of every URI it writes (`{msn}-{run}.ts`): its start in Unix
 * milliseconds followed by three random digits (`random`, 0–999), e.g. `1767225600000417`.
 * Unique without the store: a restart, a standby or a store that lost its run counter cannot
 * reuse one. Below 2^53 until the year 2255.
 */
export function newRunId(nowMs: number, random: number): number {
  if (!Number.isInteger(random) || random < 0 || random >= RUN_RANDOM_RANGE) throw new RangeError(`run id random digits must be 0–999, got ${random}`);
  return Math.max(0, Math.floor(nowMs)) * RUN_RANDOM_RANGE + random;
}

/** Parses stored state; returns undefined when it is missing or not ours (the caller logs it). */
export function parseChannelState(text: string | null): ChannelState | undefined {
  if (!text) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isChannelState(value)) return undefined;
  return value;
}

function isChannelState(value: unknown): value is ChannelState {
  if (typeof value !== 'object' || value === null) return false;
  const state = value as Partial<ChannelState>;
  return (
    state.version === 1 &&
    Number.isSafeInteger(state.nextMsn) &&
    Number.isSafeInteger(state.discontinuitySequence) &&
    Number.isSafeInteger(state.targetDuration) &&
    Number.isSafeInteger(state.nextPts) &&
    Array.isArray(state.window) &&
    typeof state.bandwidth === 'object' &&
    state.bandwidth !== null
  );
}

// The names of segments and parts live in published-names.ts; re-exported for existing importers.
export { partName, segmentName, segmentUri } from './published-names.js';
