/**
 * The elementary audio frames of one published segment or part, for progressive mounts
 * (docs/architecture.md, Progressive mounts): an MPEG-TS segment (ISO/IEC 13818-1) gives the
 * frames of its first audio stream (ADTS AAC, stream type 0x0F, or MPEG audio, 0x03/0x04); a
 * packed-audio segment (RFC 8216 §3.4: ID3v2 tags, then raw frames) gives its MPEG audio
 * frames; an fMP4 (CMAF) segment or part gives its track's samples (src/media/fmp4-demux.ts,
 * read with the track of its EXT-X-MAP init segment): AAC access units each behind an ADTS
 * header rebuilt from the init's AudioSpecificConfig, MP3 samples as they are (whole frames);
 * docs/architecture.md, "Progressive mounts on fMP4 channels".
 * Pure; bad bytes are counted in `skippedBytes`, nothing throws on input.
 */
import { AdtsReader, buildAdtsHeader } from './adts.js';
import { fragmentSamples, type Fmp4Track } from './fmp4-demux.js';
import { parseMpegAudioHeader } from './mpeg-audio.js';
import { splitMpegAudioFrames } from './packed-audio-frames.js';
import { TsDemuxer } from './ts-demuxer.js';

export interface AudioFrame {
  /** The whole frame (an ADTS frame with its header, or an MPEG audio frame). */
  data: Uint8Array;
  /** PCM samples per channel: 1024 for AAC-LC, 1152 or 576 for MP3. */
  samples: number;
  sampleRate: number;
}

export type SegmentContainer = 'ts' | 'packed-audio' | 'fmp4';

export interface SegmentAudio {
  frames: AudioFrame[];
  skippedBytes: number;
}

const STREAM_TYPE_ADTS = 0x0f;
const STREAM_TYPES_MPEG_AUDIO = new Set([0x03, 0x04]);

/** `.ts` names are MPEG-TS; `.m4s` fMP4 (CMAF); `.aac`, `.mp3`, `.ac3`… (RFC 8216 §3.4) are packed audio. */
export function containerOfName(name: string): SegmentContainer {
  if (name.endsWith('.ts')) return 'ts';
  return name.endsWith('.m4s') ? 'fmp4' : 'packed-audio';
}

/** `track`: the fMP4 segment's track (its init segment's); without one an fMP4 segment gives no frames. */
export function segmentAudio(bytes: Uint8Array, container: SegmentContainer, track?: Fmp4Track): SegmentAudio {
  if (container === 'fmp4') return track ? fmp4Audio(bytes, track) : { frames: [], skippedBytes: bytes.length };
  return container === 'ts' ? tsAudio(bytes) : splitMpegAudioFrames(bytes);
}

/** The largest ADTS payload: a 13-bit frame length less the 7-byte header. */
const MAX_ADTS_PAYLOAD = 0x1fff - 7;

function fmp4Audio(bytes: Uint8Array, track: Fmp4Track): SegmentAudio {
  const { samples, skippedBytes } = fragmentSamples(bytes, track);
  const frames: AudioFrame[] = [];
  let skipped = skippedBytes;
  for (const sample of samples) {
    const frame = track.codec === 'aac' ? adtsFrameOf(sample.data, track) : mp3FrameOf(sample.data);
    if (frame) frames.push(frame);
    else skipped += sample.data.length;
  }
  return { frames, skippedBytes: skipped };
}

/** A raw AAC access unit behind the ADTS header its track's config says; undefined when ADTS cannot carry it. */
function adtsFrameOf(unit: Uint8Array, track: Fmp4Track): AudioFrame | undefined {
  if (!track.adts || unit.length > MAX_ADTS_PAYLOAD) return undefined;
  let header: Uint8Array;
  try {
    header = buildAdtsHeader({ sampleRate: track.sampleRate, channelCount: track.channelCount, objectType: track.adts.objectType, payloadLength: unit.length });
  } catch {
    return undefined; // a track ADTS cannot say (parseInitSegment should not give one): no frame, never a throw
  }
  const data = new Uint8Array(header.length + unit.length);
  data.set(header);
  data.set(unit, header.length);
  return { data, samples: 1024, sampleRate: track.sampleRate };
}

/** An MP3 sample is one whole frame: its own header says its rate and length. */
function mp3FrameOf(sample: Uint8Array): AudioFrame | undefined {
  const header = parseMpegAudioHeader(sample, 0);
  if (!header || header.frameLength > sample.length) return undefined;
  return { data: sample.subarray(0, header.frameLength), samples: header.samples, sampleRate: header.sampleRate };
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
