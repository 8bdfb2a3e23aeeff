/**
 * Pairs the renditions of one encoder into frame groups: group n holds frame n of every
 * AAC rendition, i.e. the same 1024 input samples encoded at each bit rate. FFmpeg encodes
 * all renditions from one decode, so their frames share PTS; the aligner matches them by
 * PTS (±half a frame), drops frames that have no partner (a rendition starting late, a
 * lost PES) and counts what it drops. Pure: no I/O, no timers.
 *
 * MP3 renditions (docs/architecture.md, "MP3 renditions") have 1152-sample frames on the same
 * PTS line; the AAC renditions stay the clock. An MP3 rendition's slot in group n is a chunk
 * (mpeg-audio.ts `mp3Chunk`): the MP3 frames whose PTS falls within the group's span, back
 * to back, stamped with the group's PTS. A chunk is final once a later MP3 frame is queued,
 * so a group waits for that; before the first MP3 frame, AAC groups are dropped, and MP3
 * frames that fall before the group being made are dropped: each MP3 frame goes out once.
 *
 * Opus and FLAC renditions (docs/architecture.md, "Opus and FLAC renditions"): an Opus rendition
 * (960-sample packets) is chunked exactly as MP3 is; a FLAC rendition (1024-sample frames, the
 * encoder told so) is matched 1:1 by PTS like an AAC one, so it is part of the clock.
 */
import type { AacFrame } from '../media/adts.js';
import { mp3Chunk, type MpegAudioFrame } from '../media/mpeg-audio.js';
import { opusChunk, type OpusUnit } from '../media/opus.js';
import { ptsDelta } from '../media/pts.js';

export type RenditionCodec = 'aac' | 'mp3' | 'opus' | 'flac';

/** A frame of any rendition's reader: ADTS AAC, MP3, an Opus access unit, a FLAC frame (shaped as AAC). */
type AnyFrame = AacFrame | MpegAudioFrame | OpusUnit;

/** Codecs whose frames are 1024 samples, matched 1:1 (the clock), and those chunked per group. */
const CLOCK_CODECS: readonly RenditionCodec[] = ['aac', 'flac'];
const CHUNKED_CODECS: readonly RenditionCodec[] = ['mp3', 'opus'];

export interface AlignerStats {
  groups: number;
  droppedFrames: number;
}

/** A frame whose PTS is unwrapped to a monotonic number on its rendition's own line. */
interface QueuedFrame<Frame> {
  frame: Frame;
  position: number;
}

/** Beyond this many unmatched frames (≈ 10 s at 48 kHz) a rendition is considered stuck. */
const MAX_QUEUED_FRAMES = 470;
const SAMPLES_PER_GROUP = 1024;

export class RenditionAligner {
  readonly stats: AlignerStats = { groups: 0, droppedFrames: 0 };
  readonly renditionCount: number;
  private readonly codecs: readonly RenditionCodec[];
  private readonly queues: QueuedFrame<AnyFrame>[][];
  private readonly lastPts: (number | undefined)[];
  private readonly positions: number[];
  /** The clock renditions (AAC, FLAC) and the chunked ones (MP3, Opus). */
  private readonly aacIndexes: number[];
  private readonly mp3Indexes: number[];
  /** Channel count of each chunked rendition, from its frames (an empty chunk says it too). */
  private readonly mp3Channels: number[];
  /** The unwrapped positions of different renditions share an origin: the first PTS seen. */
  private origin: number | undefined;
  /** A group has carried MP3 frames since the last reset: before that, groups wait for the MP3 line to start. */
  private mp3Started = false;
  /** Flushing: a queued MP3 frame is final without a later one. */
  private ending = false;

  /** `renditions`: each rendition's codec in order, or a count of AAC renditions. */
  constructor(renditions: number | readonly RenditionCodec[]) {
    this.codecs = typeof renditions === 'number' ? Array.from({ length: renditions }, () => 'aac' as const) : [...renditions];
    this.renditionCount = this.codecs.length;
    this.queues = this.codecs.map(() => []);
    this.lastPts = this.codecs.map(() => undefined);
    this.positions = this.codecs.map(() => 0);
    this.mp3Channels = this.codecs.map(() => 0);
    this.aacIndexes = this.indexesOf(CLOCK_CODECS);
    this.mp3Indexes = this.indexesOf(CHUNKED_CODECS);
  }

  /** Adds frames of rendition `index` (frames must carry a PTS) and returns the groups now complete. */
  push(index: number, frames: readonly AnyFrame[]): AacFrame[][] {
    const queue = this.queues[index];
    if (!queue) return [];
    for (const frame of frames) {
      if (frame.pts === undefined) {
        this.stats.droppedFrames += 1;
        continue;
      }
      queue.push({ frame, position: this.unwrap(index, frame.pts) });
    }
    while (queue.length > MAX_QUEUED_FRAMES) {
      queue.shift();
      this.stats.droppedFrames += 1;
    }
    return this.drain();
  }

  /** The end of the stream: the groups whose MP3 chunks waited for a later frame that will not come. */
  flush(): AacFrame[][] {
    this.ending = true;
    try {
      return this.drain();
    } finally {
      this.ending = false;
    }
  }

  /** Forgets everything (a new encoder process starts a new PTS line). */
  reset(): void {
    for (const queue of this.queues) queue.length = 0;
    this.lastPts.fill(undefined);
    this.positions.fill(0);
    this.origin = undefined;
    this.mp3Started = false;
  }

  private indexesOf(codecs: readonly RenditionCodec[]): number[] {
    return this.codecs.flatMap((each, index) => (codecs.includes(each) ? [index] : []));
  }

  private unwrap(index: number, pts: number): number {
    const last = this.lastPts[index];
    if (last === undefined) {
      this.origin ??= pts;
      this.positions[index] = ptsDelta(this.origin, pts);
    } else {
      this.positions[index]! += ptsDelta(last, pts);
    }
    this.lastPts[index] = pts;
    return this.positions[index]!;
  }

  private drain(): AacFrame[][] {
    const groups: AacFrame[][] = [];
    while (this.aacIndexes.every((index) => this.queues[index]!.length > 0)) {
      const heads = this.aacIndexes.map((index) => this.queues[index]![0]!);
      const latest = Math.max(...heads.map((head) => head.position));
      const sampleRate = heads[0]!.frame.sampleRate;
      const groupTicks = (SAMPLES_PER_GROUP * 90000) / sampleRate;
      let dropped = false;
      this.aacIndexes.forEach((index, head) => {
        if (heads[head]!.position < latest - groupTicks / 2) {
          this.queues[index]!.shift();
          this.stats.droppedFrames += 1;
          dropped = true;
        }
      });
      if (dropped) continue;
      const start = heads[0]!.position;
      const end = start + groupTicks;
      const mp3 = this.mp3Slots(start, end);
      if (mp3 === 'wait') break;
      if (mp3 === 'not-started') {
        for (const index of this.aacIndexes) this.queues[index]!.shift();
        this.stats.droppedFrames += this.aacIndexes.length;
        continue;
      }
      const group: AacFrame[] = new Array(this.renditionCount);
      for (const index of this.aacIndexes) group[index] = this.queues[index]!.shift()!.frame as AacFrame;
      for (const [index, frames] of mp3) {
        group[index] =
          this.codecs[index] === 'opus'
            ? opusChunk(frames as OpusUnit[], this.mp3Channels[index]!, heads[0]!.frame.pts)
            : mp3Chunk(frames as MpegAudioFrame[], sampleRate, this.mp3Channels[index]!, heads[0]!.frame.pts);
      }
      groups.push(group);
      this.stats.groups += 1;
    }
    return groups;
  }

  /**
   * The MP3 frames of the group spanning [start, end) per MP3 rendition; 'wait' while a
   * chunk is not final (no later frame queued yet); 'not-started' when the MP3 line begins
   * after this group.
   */
  private mp3Slots(start: number, end: number): Map<number, (MpegAudioFrame | OpusUnit)[]> | 'wait' | 'not-started' {
    let laterStart = false;
    for (const index of this.mp3Indexes) {
      const queue = this.queues[index]!;
      // Frames before this group (before the first group, or after AAC frames were dropped) are stale.
      while (queue.length > 0 && queue[0]!.position < start - (end - start) / 2) {
        queue.shift();
        this.stats.droppedFrames += 1;
      }
      if (queue.length === 0 || (!this.ending && queue.at(-1)!.position < end)) return 'wait';
      if (queue[0]!.position >= end) laterStart = true;
    }
    if (laterStart && !this.mp3Started) return 'not-started';
    if (this.mp3Indexes.length > 0) this.mp3Started = true;
    const slots = new Map<number, (MpegAudioFrame | OpusUnit)[]>();
    for (const index of this.mp3Indexes) {
      const queue = this.queues[index]!;
      const frames: (MpegAudioFrame | OpusUnit)[] = [];
      while (queue.length > 0 && queue[0]!.position < end) frames.push(queue.shift()!.frame as MpegAudioFrame | OpusUnit);
      if (frames[0]) this.mp3Channels[index] = frames[0].channelCount;
      slots.set(index, frames);
    }
    return slots;
  }
}
