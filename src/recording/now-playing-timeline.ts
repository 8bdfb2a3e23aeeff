/**
 * Puts now-playing changes on the packager's timeline, for the chapters of recordings
 * (docs/architecture.md, Chapters in recordings). Pure: the recorder tells it when a change
 * was announced and when each segment was published (its own wall clock, in ms), and it says,
 * per segment, what was playing at the segment's start and which changes fall inside it,
 * at which frame.
 *
 * A change belongs to the audio being packaged when it was announced: the live edge. Segment
 * k is filled between the publication of segment k−1 and its own, so a change announced at
 * time t in that span lies at the same fraction of segment k's audio, rounded to a frame edge.
 * That is the sample timeline (EXTINF), not the wall clock: a session's offsets add up the
 * segments' exact durations, and neither clock drift nor a slow publish moves them off the
 * audio. A change announced before the span (read late) starts the segment.
 */

/** What a chapter shows: the now playing's text (src/media/now-playing.ts). */
export interface ChapterText {
  title: string;
  artist?: string;
  album?: string;
}

/** A change inside a segment: seconds from the segment's start (a frame edge) and its text. */
export interface SegmentChange {
  offsetSeconds: number;
  text: ChapterText;
}

export interface SegmentNowPlaying {
  /** What was playing when the segment started (undefined: nothing known yet). */
  atStart: ChapterText | undefined;
  /** Changes inside the segment, in order, each different from the one before. */
  changes: SegmentChange[];
}

/** Changes waiting for their segment; more (a client flooding updates) drop the oldest. */
export const MAX_PENDING_CHANGES = 64;

interface PendingChange {
  at: number;
  text: ChapterText;
}

export class NowPlayingTimeline {
  private current: ChapterText | undefined;
  private pending: PendingChange[] = [];
  private lastSegmentAt: number | undefined;

  /** The now playing became `text`, announced at wall-clock `at` (ms). */
  changed(text: ChapterText, at: number): void {
    this.pending.push({ at, text: { ...text } });
    if (this.pending.length > MAX_PENDING_CHANGES) this.pending.shift();
  }

  /** The timeline breaks (another packager led meanwhile): the next segment's span is its own duration. */
  interrupt(): void {
    this.lastSegmentAt = undefined;
  }

  /**
   * A segment of `durationSeconds` (`frameSeconds` per frame) was published at wall-clock
   * `at`: what played at its start, and the changes announced while it was being filled.
   */
  segment(at: number, durationSeconds: number, frameSeconds: number): SegmentNowPlaying {
    const frames = Math.max(1, Math.round(durationSeconds / frameSeconds));
    const spanMs = durationSeconds * 1000;
    const start = this.lastSegmentAt !== undefined && at - this.lastSegmentAt > 0 ? this.lastSegmentAt : at - spanMs;
    const filledMs = at - start;
    this.lastSegmentAt = at;
    const atStart = this.current;
    const due = this.pending.filter((change) => change.at <= at);
    this.pending = this.pending.filter((change) => change.at > at);
    const byFrame = new Map<number, ChapterText>();
    for (const change of due) {
      const fraction = Math.min(1, Math.max(0, (change.at - start) / filledMs));
      // The last frame at most: a change at the very end of the span starts the next segment's audio, nearly.
      byFrame.set(Math.min(frames - 1, Math.round(fraction * frames)), change.text);
    }
    const changes: SegmentChange[] = [];
    let previous = atStart;
    for (const [frame, text] of [...byFrame].sort(([a], [b]) => a - b)) {
      if (previous && sameText(previous, text)) continue;
      changes.push({ offsetSeconds: frame * frameSeconds, text });
      previous = text;
    }
    this.current = previous;
    return { atStart, changes };
  }
}

export function sameText(a: ChapterText, b: ChapterText): boolean {
  return a.title === b.title && a.artist === b.artist && a.album === b.album;
}
