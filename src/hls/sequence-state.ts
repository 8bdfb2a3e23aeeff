/**
 * The per-channel sequence state kept in the store next to the playlists
 * (docs/architecture.md, Sequence): the live window, the next media sequence number, the
 * discontinuity sequence and where the PTS timeline goes on. A restarted packager
 * reads it back and continues: MSN never moves back, no URI is reused.
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

export function emptyChannelState(targetDuration: number, firstPts: number): ChannelState {
  return { version: 1, targetDuration, nextMsn: 0, discontinuitySequence: 0, nextPts: firstPts, window: [], bandwidth: {} };
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
