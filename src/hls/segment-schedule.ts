/**
 * Where segments end on the sample-count timeline (DESIGN.md, Timeline).
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

  frameSeconds(frames: number): number {
    return (frames * SAMPLES_PER_FRAME) / this.sampleRate;
  }
}
