/**
 * Where segments end on the sample-count timeline (docs/architecture.md, "Timeline").
 *
 * Boundaries fall on AAC frame edges (1024 samples) nearest to k × segmentSeconds, so
 * segment lengths alternate by at most one frame and never drift from the nominal
 * duration: at 48 kHz and 4 s, segments hold 187 or 188 frames (3.989 s or 4.011 s).
 */

export const SAMPLES_PER_FRAME = 1024;

export class SegmentSchedule {
  readonly framesPerSecond: number;

  constructor(
    readonly segmentSeconds: number,
    readonly sampleRate: number,
  ) {
    this.framesPerSecond = sampleRate / SAMPLES_PER_FRAME;
  }

  /** Frame index (from the timeline start) at which segment `index` ends, exclusive. */
  endFrame(index: number): number {
    return Math.max(index + 1, Math.round((index + 1) * this.segmentSeconds * this.framesPerSecond));
  }

  /** Frames in segment `index`. */
  frameCount(index: number): number {
    return this.endFrame(index) - (index === 0 ? 0 : this.endFrame(index - 1));
  }

  /** The longest segment this schedule makes, in frames. */
  maxFrameCount(): number {
    return Math.ceil(this.segmentSeconds * this.framesPerSecond);
  }

  /** EXT-X-TARGETDURATION: an integer ≥ every EXTINF rounded to the nearest integer (RFC 8216 §4.3.3.1). */
  targetDuration(): number {
    const longest = (this.maxFrameCount() * SAMPLES_PER_FRAME) / this.sampleRate;
    return Math.max(1, Math.round(longest));
  }

  /**
   * Low-Latency HLS parts: each segment is split into `partCount` parts of whole frames,
   * as even as frame edges allow, so no part is shorter than 85 % of the longest
   * (rfc8216bis §4.4.4.9). Returns the frame offsets within segment `index` at which
   * its parts end; the last one is the segment's length.
   */
  partEnds(index: number, partCount: number): number[] {
    const frames = this.frameCount(index);
    const parts = Math.min(partCount, frames);
    return Array.from({ length: parts }, (_, part) => Math.round(((part + 1) * frames) / parts));
  }

  /** How many parts a segment gets for a nominal part duration. */
  partCount(partSeconds: number): number {
    return Math.max(1, Math.round(this.segmentSeconds / partSeconds));
  }

  /** EXT-X-PART-INF PART-TARGET: the longest part this schedule makes, in seconds. */
  partTargetSeconds(partCount: number): number {
    return this.frameSeconds(Math.ceil(this.maxFrameCount() / partCount));
  }

  frameSeconds(frames: number): number {
    return (frames * SAMPLES_PER_FRAME) / this.sampleRate;
  }
}
