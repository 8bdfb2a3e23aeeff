/**
 * The elementary audio frames of one published segment or part, for progressive mounts
 * (docs/architecture.md, Progressive mounts): an MPEG-TS segment (ISO/IEC 13818-1) gives the
 * frames of its first audio stream (ADTS AAC, stream type 0x0F, or MPEG audio, 0x03/0x04); a
 * packed-audio segment (RFC 8216 §3.4: ID3v2 tags, then raw frames) gives its MPEG audio
 * frames. Pure; bad bytes are counted in `skippedBytes`, nothing throws on input.
 */
import { AdtsReader } from './adts.js';
import { splitMpegAudioFrames } from './mpeg-audio.js';
import { TsDemuxer } from './ts-demuxer.js';

export interface AudioFrame {
  /** The whole frame (an ADTS frame with its header, or an MPEG audio frame). */
  data: Uint8Array;
  /** PCM samples per channel: 1024 for AAC-LC, 1152 or 576 for MP3. */
  samples: number;
  sampleRate: number;
}

export type SegmentContainer = 'ts' | 'packed-audio';

export interface SegmentAudio {
  frames: AudioFrame[];
  skippedBytes: number;
}

const STREAM_TYPE_ADTS = 0x0f;
const STREAM_TYPES_MPEG_AUDIO = new Set([0x03, 0x04]);

/** `.ts` names are MPEG-TS; `.aac`, `.mp3`, `.ac3`… (RFC 8216 §3.4) are packed audio. */
export function containerOfName(name: string): SegmentContainer {
  return name.endsWith('.ts') ? 'ts' : 'packed-audio';
}

export function segmentAudio(bytes: Uint8Array, container: SegmentContainer): SegmentAudio {
  return container === 'ts' ? tsAudio(bytes) : splitMpegAudioFrames(bytes);
}

function tsAudio(bytes: Uint8Array): SegmentAudio {
  const demuxer = new TsDemuxer();
  const events = [...demuxer.push(bytes), ...demuxer.flush()];
  let audio: { pid: number; adts: boolean } | undefined;
  const payloads: Uint8Array[] = [];
  for (const event of events) {
    if (event.kind === 'pmt') {
      const stream = event.streams.find((candidate) => candidate.streamType === STREAM_TYPE_ADTS || STREAM_TYPES_MPEG_AUDIO.has(candidate.streamType));
      if (audio === undefined && stream) audio = { pid: stream.pid, adts: stream.streamType === STREAM_TYPE_ADTS };
    } else if (audio !== undefined && event.pid === audio.pid) {
      payloads.push(event.payload);
    }
  }
  const skippedByDemuxer = demuxer.stats.skippedBytes;
  if (audio === undefined) return { frames: [], skippedBytes: bytes.length };
  if (!audio.adts) {
    const joined = joinAll(payloads);
    const split = splitMpegAudioFrames(joined);
    return { frames: split.frames, skippedBytes: skippedByDemuxer + split.skippedBytes };
  }
  const reader = new AdtsReader();
  const frames: AudioFrame[] = [];
  for (const payload of payloads) {
    for (const frame of reader.push(payload)) frames.push({ data: frame.data, samples: frame.samples, sampleRate: frame.sampleRate });
  }
  return { frames, skippedBytes: skippedByDemuxer + reader.stats.skippedBytes };
}

function joinAll(pieces: Uint8Array[]): Uint8Array {
  const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const piece of pieces) {
    joined.set(piece, offset);
    offset += piece.length;
  }
  return joined;
}
