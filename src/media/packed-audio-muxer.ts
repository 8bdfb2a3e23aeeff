/**
 * HLS packed audio (RFC 8216 §3.4) for MP3 renditions: every segment, and every LL-HLS
 * part, is an ID3v2.4 tag holding the PRIV frame `com.apple.streaming.transportStreamTimestamp`
 * (the 33-bit PTS of its first MP3 frame, Apple's "HLS timed metadata" spec §3), followed by
 * the raw MP3 frames. Parts joined end to end are still a valid packed audio stream: a tag
 * before each part's frames.
 *
 * An MP3 rendition's slot in a frame group is a chunk (src/ingest/rendition-aligner.ts): the
 * whole MP3 frames that start within the group's 1024 samples, so its PTS is the group's and
 * the first frame starts up to a group later. The muxer counts the MP3 samples it wrote and
 * stamps the next segment with that count while it falls inside the first chunk's group,
 * so consecutive segments carry a continuous MP3 timeline; when it does not (an input switch
 * moved the MP3 grid, or the first segment), it takes the group's PTS.
 * docs/architecture.md, "MP3 renditions".
 */
import { parseMpegAudioHeader } from './mpeg-audio.js';
import type { Muxer, MuxerFactory, TimedFrame } from './muxer.js';
import { ptsAdd, ptsDelta, samplesToTicks, wrapPts } from './pts.js';
import { mpegTsMuxers } from './ts-muxer.js';

const OWNER = 'com.apple.streaming.transportStreamTimestamp';
const ID3_HEADER_BYTES = 10;
const FRAME_HEADER_BYTES = 10;
/** The PRIV body: the owner, a NUL, then the timestamp as 8 bytes. */
const PRIV_BODY_BYTES = OWNER.length + 1 + 8;
/** The whole tag: 73 bytes. */
export const TIMESTAMP_TAG_BYTES = ID3_HEADER_BYTES + FRAME_HEADER_BYTES + PRIV_BODY_BYTES;

/** A 28-bit "synchsafe" integer (ID3v2.4 §6.2): 7 bits per byte, top bits clear. */
function writeSynchsafe(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, ((value & 0xfe00000) << 3) | ((value & 0x1fc000) << 2) | ((value & 0x3f80) << 1) | (value & 0x7f));
}

/** The ID3v2.4 tag carrying a packed audio segment's timestamp (wrapped to 33 bits). */
export function transportStreamTimestampTag(pts: number): Uint8Array {
  const tag = new Uint8Array(TIMESTAMP_TAG_BYTES);
  const view = new DataView(tag.buffer);
  // Tag header (ID3v2.4 §3.1): "ID3", version 4.0, no flags, size of what follows.
  tag.set([0x49, 0x44, 0x33, 0x04, 0x00, 0x00]);
  writeSynchsafe(view, 6, FRAME_HEADER_BYTES + PRIV_BODY_BYTES);
  // Frame header (§4.1): "PRIV", size of the body, no flags.
  tag.set([0x50, 0x52, 0x49, 0x56], ID3_HEADER_BYTES);
  writeSynchsafe(view, ID3_HEADER_BYTES + 4, PRIV_BODY_BYTES);
  let offset = ID3_HEADER_BYTES + FRAME_HEADER_BYTES;
  for (let index = 0; index < OWNER.length; index++) tag[offset++] = OWNER.charCodeAt(index);
  tag[offset++] = 0;
  // The timestamp: big-endian, 8 bytes, the upper 31 bits zero.
  const wrapped = wrapPts(pts);
  view.setUint32(offset, Math.floor(wrapped / 2 ** 32));
  view.setUint32(offset + 4, wrapped % 2 ** 32);
  return tag;
}

/** The PTS in a packed audio segment's leading timestamp tag, or undefined if it has none. */
export function readTransportStreamTimestamp(segment: Uint8Array): number | undefined {
  if (segment.length < TIMESTAMP_TAG_BYTES || segment[0] !== 0x49 || segment[1] !== 0x44 || segment[2] !== 0x33) return undefined;
  const owner = String.fromCharCode(...segment.subarray(ID3_HEADER_BYTES + FRAME_HEADER_BYTES, ID3_HEADER_BYTES + FRAME_HEADER_BYTES + OWNER.length));
  if (owner !== OWNER) return undefined;
  const view = new DataView(segment.buffer, segment.byteOffset, segment.byteLength);
  const offset = TIMESTAMP_TAG_BYTES - 8;
  return (view.getUint32(offset) & 0x1) * 2 ** 32 + view.getUint32(offset + 4);
}

export class PackedAudioMuxer implements Muxer {
  /** The MP3 timeline so far: where it was anchored and the samples written since. */
  private anchorPts: number | undefined;
  private samplesSinceAnchor = 0;
  private sampleRate = 0;

  muxSegment(chunks: readonly TimedFrame[]): Uint8Array {
    const first = chunks.find((chunk) => chunk.data.length > 0);
    const audioBytes = chunks.reduce((total, chunk) => total + chunk.data.length, 0);
    const segment = new Uint8Array(TIMESTAMP_TAG_BYTES + audioBytes);
    segment.set(transportStreamTimestampTag(first ? this.timestampOf(first) : this.expectedPts() ?? chunks[0]?.pts ?? 0));
    let offset = TIMESTAMP_TAG_BYTES;
    for (const chunk of chunks) {
      segment.set(chunk.data, offset);
      this.countSamples(chunk.data);
      offset += chunk.data.length;
    }
    return segment;
  }

  /** The PTS of the MP3 frame after the last one written, if the timeline has begun. */
  private expectedPts(): number | undefined {
    return this.anchorPts === undefined ? undefined : ptsAdd(this.anchorPts, samplesToTicks(this.samplesSinceAnchor, this.sampleRate));
  }

  /** The first chunk's first frame: where the counted timeline says, if that is inside the chunk's group; else the group's PTS. */
  private timestampOf(chunk: TimedFrame): number {
    const expected = this.expectedPts();
    // A tick either side for the rounding of both timelines.
    const span = (chunk.durationTicks ?? 0) + 1;
    if (expected !== undefined && ptsDelta(chunk.pts, expected) >= -1 && ptsDelta(chunk.pts, expected) < span) return expected;
    this.anchorPts = chunk.pts;
    this.samplesSinceAnchor = 0;
    return chunk.pts;
  }

  private countSamples(frames: Uint8Array): void {
    for (let offset = 0; offset < frames.length; ) {
      const header = parseMpegAudioHeader(frames, offset);
      if (!header) return; // not produced by the reader: nothing more to count
      this.sampleRate = header.sampleRate;
      this.samplesSinceAnchor += header.samples;
      offset += header.frameLength;
    }
  }
}

/** The muxer of each rendition by its codec: MP3 renditions as packed audio, AAC ones as MPEG-TS. */
export const codecMuxers: MuxerFactory = (rendition, timing) =>
  rendition.codec === 'mp3' ? new PackedAudioMuxer() : mpegTsMuxers(rendition, timing);
