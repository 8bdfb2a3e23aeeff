/**
 * MPEG audio Layer III ("MP3") framing (ISO/IEC 11172-3 §2.4.1.3 header, §2.4.1.7 side
 * information; ISO/IEC 13818-3 for the MPEG-2 low sampling rates; "MPEG-2.5" for the
 * lowest): header parser, a streaming reader that cuts a byte stream into whole frames with
 * PTS (resynchronising on garbage), and a builder of a frame of digital silence.
 * docs/architecture.md, "MP3 renditions".
 */
import type { AacFrame } from './adts.js';
import { frameChunk } from './frame-chunk.js';
import { SyncFrameReader, type SyncFrameFormat } from './sync-frame-reader.js';

const HEADER_BYTES = 4;
/** MPEG-4 audio object type of MPEG-1/2 Layer III (ISO/IEC 14496-3 Table 1.17): `mp4a.40.34`. */
export const MP3_OBJECT_TYPE = 34;

/** The version field (2 bits): 00 MPEG-2.5, 01 reserved, 10 MPEG-2, 11 MPEG-1. */
export type MpegVersion = 1 | 2 | 2.5;
const VERSIONS: (MpegVersion | undefined)[] = [2.5, undefined, 2, 1];
/** sampling_frequency (2 bits) → Hz per version; 3 is reserved. */
const SAMPLE_RATES: Record<MpegVersion, readonly number[]> = {
  1: [44100, 48000, 32000],
  2: [22050, 24000, 16000],
  2.5: [11025, 12000, 8000],
};
/** bitrate_index (4 bits) → kbit/s for Layer III; 0 is "free format" (not supported), 15 is forbidden. */
const MPEG1_BITRATES = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MPEG2_BITRATES = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
/** mode (2 bits): 00 stereo, 01 joint stereo, 10 dual channel, 11 single channel. */
const MODE_SINGLE_CHANNEL = 3;

export interface MpegAudioHeader {
  version: MpegVersion;
  /** protection_bit 0: a 16-bit CRC follows the header. */
  hasCrc: boolean;
  /** bit/s */
  bitrate: number;
  bitrateIndex: number;
  sampleRate: number;
  padding: boolean;
  /** 0 stereo, 1 joint stereo, 2 dual channel, 3 single channel. */
  mode: number;
  channelCount: 1 | 2;
  /** 1152 for MPEG-1, 576 for MPEG-2 and 2.5. */
  samples: number;
  /** Whole frame including the header. */
  frameLength: number;
  /** Bytes of side information after the header (and CRC). */
  sideInfoLength: number;
}

export interface MpegAudioFrame {
  /** The whole frame including its header. May be a view into the pushed chunk. */
  data: Uint8Array;
  sampleRate: number;
  channelCount: number;
  samples: number;
  pts?: number;
}

function bitrateTable(version: MpegVersion): readonly number[] {
  return version === 1 ? MPEG1_BITRATES : MPEG2_BITRATES;
}

/** Parses the Layer III header at `offset`, or returns null if the bytes there cannot be one. */
export function parseMpegAudioHeader(bytes: Uint8Array, offset: number): MpegAudioHeader | null {
  if (offset < 0 || bytes.length - offset < HEADER_BYTES) return null;
  const word = ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
  // syncword (11 bits) all ones, then version (2), layer (2): 01 is Layer III.
  if (word >>> 21 !== 0x7ff || ((word >>> 17) & 0x3) !== 0x1) return null;
  const version = VERSIONS[(word >>> 19) & 0x3];
  const bitrateIndex = (word >>> 12) & 0xf;
  const sampleRateIndex = (word >>> 10) & 0x3;
  // The emphasis value 2 is reserved.
  if (version === undefined || bitrateIndex === 0 || bitrateIndex === 15 || sampleRateIndex === 3 || (word & 0x3) === 2) return null;
  const bitrate = bitrateTable(version)[bitrateIndex]! * 1000;
  const sampleRate = SAMPLE_RATES[version][sampleRateIndex]!;
  const padding = ((word >>> 9) & 0x1) === 1;
  const mode = (word >>> 6) & 0x3;
  const channelCount = mode === MODE_SINGLE_CHANNEL ? 1 : 2;
  const samples = version === 1 ? 1152 : 576;
  const hasCrc = ((word >>> 16) & 0x1) === 0;
  // Slots of one byte: samples / 8 × bitrate / sampleRate, plus one when padded (11172-3 §2.4.3.1).
  const frameLength = Math.floor(((samples / 8) * bitrate) / sampleRate) + (padding ? 1 : 0);
  // Side information: 17/32 bytes (MPEG-1 mono/stereo), 9/17 bytes (MPEG-2 and 2.5).
  const sideInfoLength = version === 1 ? (channelCount === 1 ? 17 : 32) : channelCount === 1 ? 9 : 17;
  if (frameLength < HEADER_BYTES + (hasCrc ? 2 : 0) + sideInfoLength) return null;
  return { version, hasCrc, bitrate, bitrateIndex, sampleRate, padding, mode, channelCount, samples, frameLength, sideInfoLength };
}

/** An MPEG audio stream: one version, sample rate and channel count throughout (the bit rate may vary: VBR). */
export const MPEG_AUDIO_FORMAT: SyncFrameFormat<MpegAudioHeader, MpegAudioFrame> = {
  headerBytes: HEADER_BYTES,
  parse: parseMpegAudioHeader,
  sameStream: (a, b) => a.version === b.version && a.sampleRate === b.sampleRate && a.channelCount === b.channelCount,
  frame: (data, header) => ({ data, sampleRate: header.sampleRate, channelCount: header.channelCount, samples: header.samples }),
};

/** Cuts a byte stream into MP3 frames with PTS (src/media/sync-frame-reader.ts says how). */
export class MpegAudioReader extends SyncFrameReader<MpegAudioHeader, MpegAudioFrame> {
  constructor() {
    super(MPEG_AUDIO_FORMAT);
  }
}

/** The MPEG version that carries a sample rate, or undefined if Layer III cannot. */
function versionFor(sampleRate: number): MpegVersion | undefined {
  return ([1, 2, 2.5] as const).find((version) => SAMPLE_RATES[version].includes(sampleRate));
}

/** Samples per Layer III frame at this rate (1152 for 32–48 kHz, 576 below); undefined if no version carries it. */
export function mp3FrameSamples(sampleRate: number): number | undefined {
  const version = versionFor(sampleRate);
  return version === undefined ? undefined : version === 1 ? 1152 : 576;
}

/** The bit rates (bit/s) Layer III can signal at this sample rate. */
export function mp3Bitrates(sampleRate: number): number[] {
  const version = versionFor(sampleRate);
  return version === undefined ? [] : bitrateTable(version).slice(1).map((kbps) => kbps * 1000);
}

/**
 * One Layer III frame of digital silence: a header (no CRC, no padding, at the allowed bit
 * rate nearest `bitrate`), side information all zero, and zero main data. Zero side
 * information means main_data_begin 0 (no bit reservoir), part2_3_length 0 and big_values 0
 * in every granule and channel (11172-3 §2.4.1.7): no scale factors and no Huffman data, so
 * every spectral value is zero and the frame decodes to silence on its own.
 */
export function silentMp3Frame(sampleRate: number, channelCount: 1 | 2, bitrate: number): MpegAudioFrame {
  const version = versionFor(sampleRate);
  if (version === undefined) throw new RangeError(`MPEG audio Layer III cannot carry ${sampleRate} Hz`);
  const rates = bitrateTable(version);
  let bitrateIndex = 1;
  rates.forEach((kbps, index) => {
    if (index > 0 && Math.abs(kbps * 1000 - bitrate) < Math.abs(rates[bitrateIndex]! * 1000 - bitrate)) bitrateIndex = index;
  });
  const versionBits = VERSIONS.indexOf(version);
  const sampleRateIndex = SAMPLE_RATES[version].indexOf(sampleRate);
  const mode = channelCount === 1 ? MODE_SINGLE_CHANNEL : 0;
  // sync (11), version (2), layer 01 (2), protection_bit 1 (no CRC), bitrate_index (4),
  // sampling_frequency (2), padding 0, private 0, mode (2), mode_extension 0, copyright 0,
  // original 0, emphasis 0.
  const word = ((0x7ff << 21) | (versionBits << 19) | (0x1 << 17) | (0x1 << 16) | (bitrateIndex << 12) | (sampleRateIndex << 10) | (mode << 6)) >>> 0;
  const samples = version === 1 ? 1152 : 576;
  const frameLength = Math.floor(((samples / 8) * rates[bitrateIndex]! * 1000) / sampleRate);
  const data = new Uint8Array(frameLength);
  new DataView(data.buffer).setUint32(0, word);
  return { data, sampleRate, channelCount, samples };
}

/**
 * An MP3 rendition's slot in a frame group (src/ingest/rendition-aligner.ts): the whole MP3
 * frames that start within the group's 1024 samples (none, one, or two), back to back, shaped
 * like the group's AAC frames so the selector, segmenter and packager carry it unchanged.
 * Its `objectType` is MP3_OBJECT_TYPE and its `samples` the group's 1024, whatever it holds.
 */
export function mp3Chunk(frames: readonly MpegAudioFrame[], sampleRate: number, channelCount: number, pts?: number): AacFrame {
  return frameChunk(frames, sampleRate, channelCount, MP3_OBJECT_TYPE, pts);
}
