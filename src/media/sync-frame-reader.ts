/**
 * A streaming reader for audio framed by sync words (ADTS AAC, MPEG audio): cuts a byte
 * stream into whole frames with PTS, resynchronising on garbage instead of throwing. The
 * format (header parser, what "the same stream" means, how a frame is described) is given
 * by a `SyncFrameFormat`; adts.ts and mpeg-audio.ts hold the two in use.
 */
import { EMPTY_BYTES, concatBytes } from './bytes.js';
import { ptsAdd, samplesToTicks } from './pts.js';

/** What the reader needs of a parsed header. */
export interface SyncFrameHeader {
  /** Whole frame including the header. */
  frameLength: number;
  sampleRate: number;
  /** Samples per channel the frame decodes to. */
  samples: number;
}

export interface SyncFrameFormat<Header extends SyncFrameHeader, Frame> {
  /** The fewest bytes `parse` needs. */
  headerBytes: number;
  /** The header at `offset`, or null if the bytes there cannot be one. */
  parse(bytes: Uint8Array, offset: number): Header | null;
  /** Whether two headers belong to one stream (a header right after a frame of the same stream is trusted). */
  sameStream(a: Header, b: Header): boolean;
  /** The frame (without PTS) for the bytes `data` that `header` describes. */
  frame(data: Uint8Array, header: Header): Frame;
}

export interface SyncFrameReaderStats {
  frames: number;
  skippedBytes: number;
  resyncs: number;
}

/** The next byte that could start a sync word (both formats start with 0xFF), or the end of the buffer. */
function nextSyncCandidate(data: Uint8Array, from: number): number {
  const next = data.indexOf(0xff, from);
  return next < 0 ? data.length : next;
}

/**
 * Frames may be split across pushes. The first frame that starts inside a chunk pushed with
 * a PTS gets that PTS (the PES rule of 13818-1 §2.4.3.7); later frames get it plus their
 * sample offset, exactly.
 *
 * A header right after an accepted frame of the same stream is trusted. Any other candidate
 * (stream start, after garbage) is accepted only if the next frame also starts with a
 * matching header, or if it ends exactly where the buffered bytes end.
 */
export class SyncFrameReader<Header extends SyncFrameHeader, Frame extends { pts?: number }> {
  readonly stats: SyncFrameReaderStats = { frames: 0, skippedBytes: 0, resyncs: 0 };
  private carry: Uint8Array = EMPTY_BYTES;
  private previous: Header | undefined;
  private skipping = false;
  private anchorPts: number | undefined;
  private anchorRate = 0;
  private samplesSinceAnchor = 0;

  constructor(private readonly format: SyncFrameFormat<Header, Frame>) {}

  push(chunk: Uint8Array, pts?: number): Frame[] {
    const chunkStart = this.carry.length;
    const data = chunkStart === 0 ? chunk : concatBytes(this.carry, chunk);
    let ptsToApply = pts;
    const frames: Frame[] = [];
    let position = 0;
    while (data.length - position >= this.format.headerBytes) {
      const header = this.format.parse(data, position);
      const verdict = header ? this.judge(data, position, header) : 'reject';
      if (verdict === 'wait') break;
      if (verdict !== 'accept' || !header) {
        const resumeAt = typeof verdict === 'number' ? verdict : nextSyncCandidate(data, position + 1);
        this.skip(resumeAt - position);
        position = resumeAt;
        continue;
      }
      if (ptsToApply !== undefined && position >= chunkStart) {
        this.anchor(ptsToApply, header.sampleRate);
        ptsToApply = undefined;
      }
      frames.push(this.frameAt(data, position, header));
      position += header.frameLength;
    }
    this.carry = position >= data.length ? EMPTY_BYTES : data.slice(position);
    return frames;
  }

  /** Forgets buffered bytes, sync and PTS state (for a new input); stats keep counting. */
  reset(): void {
    this.carry = EMPTY_BYTES;
    this.previous = undefined;
    this.skipping = false;
    this.anchorPts = undefined;
    this.samplesSinceAnchor = 0;
  }

  /**
   * Whether a candidate frame is confirmed: it ends exactly where the buffered bytes end, or
   * the next frame starts right after it, of the same stream.
   */
  private confirms(data: Uint8Array, position: number, header: Header): boolean | 'unknown' {
    const end = position + header.frameLength;
    if (end === data.length) return true;
    if (end + this.format.headerBytes > data.length) return 'unknown';
    const following = this.format.parse(data, end);
    return following !== null && this.format.sameStream(following, header);
  }

  /** 'accept', 'wait' for more bytes, 'reject', or the position of a better, confirmed candidate. */
  private judge(data: Uint8Array, position: number, header: Header): 'accept' | 'reject' | 'wait' | number {
    const trusted = !this.skipping && this.previous !== undefined && this.format.sameStream(this.previous, header);
    if (trusted) return position + header.frameLength <= data.length ? 'accept' : 'wait';
    const confirmation = this.confirms(data, position, header);
    if (confirmation !== 'unknown') return confirmation ? 'accept' : 'reject';
    // Not decidable yet. If a confirmed frame starts further on, this candidate was a false
    // sync (a real frame does not hide a confirmed pair of headers); otherwise wait.
    for (let next = nextSyncCandidate(data, position + 1); next < data.length; next = nextSyncCandidate(data, next + 1)) {
      const later = this.format.parse(data, next);
      if (later && this.confirms(data, next, later) === true) return next;
    }
    return 'wait';
  }

  private skip(byteCount: number): void {
    if (!this.skipping) this.stats.resyncs += 1;
    this.skipping = true;
    this.stats.skippedBytes += byteCount;
  }

  private anchor(pts: number, sampleRate: number): void {
    this.anchorPts = pts;
    this.anchorRate = sampleRate;
    this.samplesSinceAnchor = 0;
  }

  private frameAt(data: Uint8Array, position: number, header: Header): Frame {
    if (this.anchorPts !== undefined && this.anchorRate !== header.sampleRate) {
      this.anchor(ptsAdd(this.anchorPts, samplesToTicks(this.samplesSinceAnchor, this.anchorRate)), header.sampleRate);
    }
    const frame = this.format.frame(data.subarray(position, position + header.frameLength), header);
    if (this.anchorPts !== undefined) {
      frame.pts = ptsAdd(this.anchorPts, samplesToTicks(this.samplesSinceAnchor, header.sampleRate));
      this.samplesSinceAnchor += header.samples;
    }
    this.previous = header;
    this.skipping = false;
    this.stats.frames += 1;
    return frame;
  }
}
