/**
 * What a channel has cut and muxed but not yet stored: whole segments, oldest first, and
 * (Low-Latency HLS) the parts of the segment being filled. The queue is bounded by the live
 * window: while the store is down the oldest segments go, and their successor carries a
 * discontinuity. The segment whose writes are under way, or whose parts players have seen,
 * is never dropped from under them. The drop decisions are channel-window.ts's; the
 * publisher (segment-publisher.ts) drains the queue. docs/architecture.md, "Failure model".
 */
import { alreadyAiredCount, overflowDropIndex } from './channel-window.js';
import type { WindowSegment } from './sequence-state.js';

/** A part muxed for every rendition (Low-Latency HLS). */
export interface PendingPart {
  durationSeconds: number;
  payloads: Map<string, Uint8Array>;
  /** The MSN its bytes were stored under, once they are: a takeover may renumber the segment. */
  storedAs?: number;
}

/** A segment waiting for its bytes to reach the store. */
export interface QueuedSegment {
  /** The MSN is given when the segment is stored: dropped segments must leave no gap. */
  entry: Omit<WindowSegment, 'msn'>;
  /** PTS right after this segment, persisted so a restart continues the timeline. */
  endPts: number;
  payloads: Map<string, Uint8Array>;
  /** When it was queued (its last frame's arrival). */
  cutAt: number;
  /** Its parts (Low-Latency HLS); the segment's bytes are theirs, end to end. */
  parts: PendingPart[];
}

export class SegmentQueue {
  private readonly segments: QueuedSegment[] = [];
  private parts: PendingPart[] = [];
  /** The segment whose store writes are under way. */
  inFlight: QueuedSegment | undefined;

  constructor(private readonly windowSize: number) {}

  get length(): number {
    return this.segments.length;
  }

  /** The oldest queued segment. */
  head(): QueuedSegment | undefined {
    return this.segments[0];
  }

  /** The parts cut so far of the segment being filled. */
  get openParts(): readonly PendingPart[] {
    return this.parts;
  }

  addPart(part: PendingPart): void {
    this.parts.push(part);
  }

  /** The oldest part of the segment being filled that is not stored yet. */
  nextUnstoredPart(): PendingPart | undefined {
    return this.parts.find((candidate) => candidate.storedAs === undefined);
  }

  /** Whether players may have seen a part of the segment being filled. */
  hasStoredOpenPart(): boolean {
    return this.parts.some((part) => part.storedAs !== undefined);
  }

  /**
   * Queues a segment, which takes the parts cut for it; beyond a window's worth the oldest
   * droppable one goes. Returns how many were dropped.
   */
  push(segment: Omit<QueuedSegment, 'parts'>): number {
    this.segments.push({ ...segment, parts: this.parts });
    this.parts = [];
    let dropped = 0;
    for (;;) {
      const first = this.segments[0]!;
      const headLocked = first === this.inFlight || first.parts.some((part) => part.storedAs !== undefined);
      const index = overflowDropIndex(this.segments.length, this.windowSize, headLocked);
      if (index === undefined) return dropped;
      this.segments.splice(index, 1);
      this.segments[index]!.entry.discontinuity = true;
      dropped += 1;
    }
  }

  /** Takes a stored segment off the queue. */
  remove(segment: QueuedSegment): void {
    this.segments.splice(this.segments.indexOf(segment), 1);
  }

  /** Drops the queued segments whose audio mostly precedes the end of `window`; returns how many. */
  dropAlreadyAired(window: readonly WindowSegment[]): number {
    if (this.segments[0] === this.inFlight) return 0;
    const count = alreadyAiredCount(
      window,
      this.segments.map((segment) => segment.entry),
    );
    this.segments.splice(0, count);
    return count;
  }

  /** Flags the next segment to be published as a new timeline; false when none is queued (the one being filled is next). */
  flagNextDiscontinuity(): boolean {
    const next = this.segments.find((segment) => segment !== this.inFlight);
    if (next) next.entry.discontinuity = true;
    return next !== undefined;
  }
}
