/**
 * What a delivery container does with one rendition's timed frames: turn a run of
 * consecutive frames into the bytes of a segment or, for Low-Latency HLS, of a part. The
 * packager cuts the timeline (src/hls/segmenter.ts) and never looks inside the bytes, so a
 * new container (fMP4/CMAF next) is one more implementation of `Muxer`, chosen through a
 * `MuxerFactory`, not a branch in the packager (docs/architecture.md, "Layers").
 *
 * MPEG-TS (src/media/ts-muxer.ts) is the first implementation; MP3 renditions are packed
 * audio (src/media/packed-audio-muxer.ts).
 *
 * Timed metadata (the channel's now playing at a point of the timeline) reaches every muxer
 * the same way, as what it means rather than as bytes: each container renders it its own way
 * (MPEG-TS: an ID3 PES; fMP4: an `emsg`; packed audio: the ID3 tag at the segment's head) or
 * leaves it out (docs/architecture.md, "Timed metadata").
 */
import type { CbcsProtection } from './cbcs.js';
import type { NowPlaying } from './now-playing.js';

/** One coded audio frame with its place on the 90 kHz timeline. */
export interface TimedFrame {
  /** The frame as the encoder delivered it (for AAC, a whole ADTS frame, header included). */
  data: Uint8Array;
  /** 90 kHz; wrapped mod 2^33 when written. */
  pts: number;
  /** The frame's duration in 90 kHz ticks, if the caller knows it (saves re-reading the frame's header). */
  durationTicks?: number;
}

/** The now playing from `pts` on (90 kHz, wrapped mod 2^33 when written). */
export interface TimedMetadata {
  pts: number;
  nowPlaying: NowPlaying;
}

export interface Muxer {
  /**
   * The bytes of one segment, or of one part of a Low-Latency HLS segment: `frames` are
   * consecutive and share the rendition. Parts muxed one after the other must play when
   * joined end to end, since a segment made of parts is exactly its parts' bytes in order.
   * A muxer may carry state from one call to the next (MPEG-TS continuity counters).
   * `metadata`, in PTS order, falls within the frames' span; a container without a way to
   * carry it ignores it.
   */
  muxSegment(frames: readonly TimedFrame[], metadata?: readonly TimedMetadata[]): Uint8Array;
  /**
   * The initialization segment (EXT-X-MAP) that every segment of this rendition needs,
   * for containers that have one (fMP4); absent for self-contained segments (MPEG-TS). With a
   * cbcs protection, the protected one (src/media/cbcs.ts).
   */
  initSegment?(protection?: CbcsProtection): Uint8Array;
}

/**
 * Makes the muxer of one rendition; called once per rendition when a packager is built, with
 * the channel's nominal segment length (MPEG-TS sizes its PES and PCR lead by it) and its
 * codec (`aac` when absent).
 */
export type MuxerFactory = (rendition: { id: string; codec?: string; sampleRate?: number; channelCount?: number; bitDepth?: number }, timing?: { segmentSeconds: number }) => Muxer;

/** A segment made of parts: the parts' bytes end to end. */
export function joinParts(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
