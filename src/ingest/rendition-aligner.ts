/**
 * Pairs the renditions of one encoder into frame groups: group n holds frame n of every
 * rendition, i.e. the same 1024 input samples encoded at each bit rate. FFmpeg encodes
 * all renditions from one decode, so their frames share PTS; the aligner matches them by
 * PTS (±half a frame), drops frames that have no partner (a rendition starting late, a
 * lost PES) and counts what it drops. Pure: no I/O, no timers.
 */
import type { AacFrame } from '../media/adts.js';
import { ptsDelta } from '../media/pts.js';

export interface AlignerStats {
  groups: number;
  droppedFrames: number;
}

/** A frame whose PTS is unwrapped to a monotonic number on its rendition's own line. */
interface QueuedFrame {
  frame: AacFrame;
  position: number;
}

/** Beyond this many unmatched frames (≈ 10 s at 48 kHz) a rendition is considered stuck. */
const MAX_QUEUED_FRAMES = 470;

export class RenditionAligner {
  readonly stats: AlignerStats = { groups: 0, droppedFrames: 0 };
  private readonly queues: QueuedFrame[][];
  private readonly lastPts: (number | undefined)[];
  private readonly positions: number[];
  /** The unwrapped positions of different renditions share an origin: the first PTS seen. */
  private origin: number | undefined;

  constructor(readonly renditionCount: number) {
    this.queues = Array.from({ length: renditionCount }, () => []);
    this.lastPts = Array.from({ length: renditionCount }, () => undefined);
    this.positions = Array.from({ length: renditionCount }, () => 0);
  }

  /** Adds frames of rendition `index` (frames must carry a PTS) and returns the groups now complete. */
  push(index: number, frames: readonly AacFrame[]): AacFrame[][] {
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

  /** Forgets everything (a new encoder process starts a new PTS line). */
  reset(): void {
    for (const queue of this.queues) queue.length = 0;
    this.lastPts.fill(undefined);
    this.positions.fill(0);
    this.origin = undefined;
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
    while (this.queues.every((queue) => queue.length > 0)) {
      const heads = this.queues.map((queue) => queue[0]!);
      const latest = Math.max(...heads.map((head) => head.position));
      const halfFrame = (1024 * 90000) / heads[0]!.frame.sampleRate / 2;
      let dropped = false;
      this.queues.forEach((queue, index) => {
        if (heads[index]!.position < latest - halfFrame) {
          queue.shift();
          this.stats.droppedFrames += 1;
          dropped = true;
        }
      });
      if (dropped) continue;
      groups.push(this.queues.map((queue) => queue.shift()!.frame));
      this.stats.groups += 1;
    }
    return groups;
  }
}
