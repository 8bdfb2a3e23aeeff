/**
 * Cuts a channel's frame timeline (aligned frame groups: one frame per rendition, the same
 * samples) into segments and, for Low-Latency HLS, parts, on the boundaries the segment
 * schedule sets. It knows no container: each cut hands over the frames of every rendition
 * with their PTS, durations, part boundaries, the discontinuity flag and the program date
 * time, and a muxer (src/media/muxer.ts) makes the bytes.
 *
 * It also carries the channel's now playing as timed metadata on the same timeline: an
 * event at the first frame pushed after a change, and again at the first frame of every
 * segment (so the first part of a Low-Latency HLS segment), so a player that joins late
 * has it (docs/architecture.md, "Timed metadata").
 *
 * Timeline (docs/architecture.md, "Timeline"): PTS of frame n = start + n·1024·90000/sampleRate,
 * wrapped at 2^33; the wall clock, read once at this run's first frame, only stamps
 * EXT-X-PROGRAM-DATE-TIME.
 */
import type { AacFrame } from '../media/adts.js';
import type { TimedFrame, TimedMetadata } from '../media/muxer.js';
import type { NowPlaying } from '../media/now-playing.js';
import { samplesToTicks } from '../media/pts.js';
import { SAMPLES_PER_FRAME, type SegmentSchedule } from './segment-schedule.js';

/** Consecutive frames of every rendition: `frames[i]` is rendition i's, timed. */
export interface FrameRun {
  frames: TimedFrame[][];
  durationSeconds: number;
  /** The now playing events within these frames, in PTS order (the same for every rendition). */
  metadata: TimedMetadata[];
}

/** A Low-Latency HLS part: the frames since the previous part of its segment. */
export interface PartCut extends FrameRun {
  /** 0-based within its segment. */
  index: number;
}

export interface SegmentCut {
  /** The whole segment's frames; undefined for Low-Latency HLS, whose segments are their parts end to end. */
  frames: TimedFrame[][] | undefined;
  /** Its now playing events; undefined for Low-Latency HLS (its parts carry them). */
  metadata: TimedMetadata[] | undefined;
  durationSeconds: number;
  /** Wall-clock time (ms) of its first sample: this run's first frame's arrival plus the audio before it. */
  programDateTime: number;
  /** Whether it starts a new timeline for the player (EXT-X-DISCONTINUITY). */
  discontinuity: boolean;
  /** PTS right after its last frame: where the next segment starts. */
  endPts: number;
}

/** Where the segment being filled starts: what a part published ahead of its segment is listed with. */
export interface OpenSegmentStart {
  discontinuity: boolean;
  programDateTime: number;
}

export interface SegmenterOptions {
  schedule: SegmentSchedule;
  renditionCount: number;
  /** Parts per segment for Low-Latency HLS; undefined for whole segments only. */
  partCount: number | undefined;
  /** Reads the wall clock (ms), once per run. */
  now: () => number;
  /** Called with each part as soon as its last frame arrives, before the segment it ends (if any). */
  onPart: (part: PartCut) => void;
  onSegment: (segment: SegmentCut) => void;
}

export class Segmenter {
  private readonly options: SegmenterOptions;
  private readonly frameTicks: number;
  /** Frames of the segment being filled, per rendition index. */
  private current: AacFrame[][] = [];
  /** Low-Latency HLS: the current segment's part ends (frame offsets), and how many of its parts are cut. */
  private partEnds: number[] = [];
  private partsCut = 0;
  /** Frames since this run's timeline start, and segments cut in this run. */
  private runFrames = 0;
  private runSegments = 0;
  private runStartPts = 0;
  private wallClockAnchor: number | undefined;
  private nextIsDiscontinuity = false;
  /** What is on air now, whether it changed since the last frame, and its events in the current segment (frame offsets). */
  private nowPlaying: NowPlaying | undefined;
  private nowPlayingChanged = false;
  private metadataEvents: { frame: number; nowPlaying: NowPlaying }[] = [];

  constructor(options: SegmenterOptions) {
    this.options = options;
    this.frameTicks = (SAMPLES_PER_FRAME * 90_000) / options.schedule.sampleRate;
  }

  /** Starts this run's timeline at `startPts`; frames pushed before are not expected. */
  start(startPts: number): void {
    this.runStartPts = startPts;
    this.startSegment();
  }

  /** Adds one frame group (one frame per rendition), cutting a part or a segment when the schedule says so. */
  push(frames: readonly AacFrame[]): void {
    this.wallClockAnchor ??= this.options.now();
    const offset = this.current[0]!.length;
    if (this.nowPlaying !== undefined && (offset === 0 || this.nowPlayingChanged)) this.metadataEvents.push({ frame: offset, nowPlaying: this.nowPlaying });
    this.nowPlayingChanged = false;
    frames.forEach((frame, index) => this.current[index]!.push(frame));
    this.runFrames += 1;
    if (this.runFrames === this.options.schedule.endFrame(this.runSegments)) this.cutSegment();
    else if (this.current[0]!.length === this.partEnds[this.partsCut]) this.cutPart();
  }

  /**
   * Sets what is on air from the next frame pushed on (undefined: nothing more to repeat).
   * The event lands on that frame: within a frame of the change reaching the packager.
   */
  setNowPlaying(nowPlaying: NowPlaying | undefined): void {
    this.nowPlaying = nowPlaying;
    this.nowPlayingChanged = nowPlaying !== undefined;
  }

  /** Marks whether the next segment starts a new timeline for the player (by default: it does). */
  markDiscontinuity(discontinuity = true): void {
    this.nextIsDiscontinuity = discontinuity;
  }

  /** Ends the segment being filled now, short (Low-Latency HLS close: the parts players saw keep their MSN). */
  cutNow(): void {
    this.cutSegment();
  }

  /** Where the segment being filled starts (its first frame has arrived). */
  openSegmentStart(): OpenSegmentStart {
    return { discontinuity: this.nextIsDiscontinuity, programDateTime: this.programDateTime(this.runFrames - this.current[0]!.length) };
  }

  /** Audio time ahead (+) or behind (−) the wall clock `now` since this run's first frame, in seconds. */
  timelineDriftSeconds(now: number): number | undefined {
    if (this.wallClockAnchor === undefined) return undefined;
    return this.options.schedule.frameSeconds(this.runFrames) - (now - this.wallClockAnchor) / 1000;
  }

  /** Resets the per-segment state for the next segment on the schedule. */
  private startSegment(): void {
    this.current = Array.from({ length: this.options.renditionCount }, () => []);
    this.partsCut = 0;
    this.metadataEvents = [];
    const { partCount, schedule } = this.options;
    this.partEnds = partCount === undefined ? [] : schedule.partEnds(this.runSegments, partCount);
  }

  /** PTS of frame `frame` of the current segment, on the unwrapped timeline (src/media/pts.ts). */
  private framePts(frame: number): number {
    const segmentStart = this.runFrames - this.current[0]!.length;
    return this.runStartPts + samplesToTicks((segmentStart + frame) * SAMPLES_PER_FRAME, this.options.schedule.sampleRate);
  }

  /** Frames [from, to) of the current segment, timed, for every rendition. */
  private timedFrames(from: number, to: number): TimedFrame[][] {
    const sampleRate = this.options.schedule.sampleRate;
    const startPts = this.framePts(from);
    return this.current.map((frames) =>
      frames.slice(from, to).map((frame, frameIndex) => ({
        data: frame.data,
        pts: startPts + samplesToTicks(frameIndex * SAMPLES_PER_FRAME, sampleRate),
        durationTicks: this.frameTicks,
      })),
    );
  }

  /** The now playing events on frames [from, to) of the current segment, timed. */
  private timedMetadata(from: number, to: number): TimedMetadata[] {
    return this.metadataEvents.filter((event) => event.frame >= from && event.frame < to).map((event) => ({ pts: this.framePts(event.frame), nowPlaying: event.nowPlaying }));
  }

  /** Low-Latency HLS: the frames since the last part become the next part. */
  private cutPart(): void {
    const from = this.partsCut === 0 ? 0 : this.partEnds[this.partsCut - 1]!;
    const to = this.current[0]!.length;
    const index = this.partsCut;
    this.partsCut += 1;
    this.options.onPart({
      index,
      durationSeconds: this.options.schedule.frameSeconds(to - from),
      frames: this.timedFrames(from, to),
      metadata: this.timedMetadata(from, to),
    });
  }

  private cutSegment(): void {
    const frameCount = this.current[0]!.length;
    const startFrame = this.runFrames - frameCount;
    const lowLatency = this.options.partCount !== undefined;
    // The last part ends the segment; a segment cut early (close) may have no frames after its last part.
    if (lowLatency && (frameCount > (this.partEnds[this.partsCut - 1] ?? 0) || this.partsCut === 0)) this.cutPart();
    const segment: SegmentCut = {
      frames: lowLatency ? undefined : this.timedFrames(0, frameCount),
      metadata: lowLatency ? undefined : this.timedMetadata(0, frameCount),
      durationSeconds: this.options.schedule.frameSeconds(frameCount),
      programDateTime: this.programDateTime(startFrame),
      discontinuity: this.nextIsDiscontinuity,
      endPts: this.framePts(frameCount),
    };
    this.nextIsDiscontinuity = false;
    this.runSegments += 1;
    this.startSegment();
    this.options.onSegment(segment);
  }

  private programDateTime(startFrame: number): number {
    return this.wallClockAnchor! + this.options.schedule.frameSeconds(startFrame) * 1000;
  }
}
