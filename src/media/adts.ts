/**
 * ADTS framing of AAC (ISO/IEC 13818-7 §6.2 / ISO/IEC 14496-3 §1.A.2.2, adts_frame):
 * header parser and builder, and a streaming reader that cuts a byte stream into whole
 * ADTS frames with PTS, resynchronising on garbage instead of throwing.
 */
import { SyncFrameReader, type SyncFrameFormat, type SyncFrameReaderStats } from './sync-frame-reader.js';

/** sampling_frequency_index → Hz (14496-3 Table 1.18); 13 and 14 are reserved, 15 is not allowed in ADTS. */
const SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
/** channel_configuration → channel count (14496-3 Table 1.19); 0 means "defined in a PCE". */
const CHANNEL_COUNTS = [0, 1, 2, 3, 4, 5, 6, 8];
const FIXED_HEADER_BYTES = 7;
const MAX_FRAME_LENGTH = 0x1fff;
const SAMPLES_PER_RAW_DATA_BLOCK = 1024;

export interface AdtsHeader {
  /** ID bit: 0 = MPEG-4, 1 = MPEG-2. */
  mpegVersion: 2 | 4;
  /** Audio object type = profile + 1; 2 is AAC-LC. */
  objectType: number;
  samplingIndex: number;
  sampleRate: number;
  channelConfiguration: number;
  channelCount: number;
  protectionAbsent: boolean;
  /** 7 without CRC, 9 with CRC (plus 2 per extra raw data block). */
  headerLength: number;
  /** Whole frame including the header. */
  frameLength: number;
  bufferFullness: number;
  rawDataBlocks: number;
  /** 1024 per raw data block. */
  samples: number;
}

export interface AacFrame {
  /** The whole ADTS frame including its header. May be a view into the pushed chunk. */
  data: Uint8Array;
  sampleRate: number;
  channelCount: number;
  /** 2 = AAC-LC. */
  objectType: number;
  /** 1024 (FFmpeg writes one raw data block per frame); 1024 × blocks otherwise. */
  samples: number;
  pts?: number;
}

export type AdtsReaderStats = SyncFrameReaderStats;

/** sampling_frequency_index for a rate, or -1 when ADTS cannot carry it. */
export function sampleRateIndex(sampleRate: number): number {
  return SAMPLE_RATES.indexOf(sampleRate);
}

/** Parses the header at `offset`, or returns null if the bytes there cannot be an ADTS header. */
export function parseAdtsHeader(bytes: Uint8Array, offset: number): AdtsHeader | null {
  if (offset < 0 || bytes.length - offset < FIXED_HEADER_BYTES) return null;
  // Read bytes directly: this runs for every frame, and a DataView per call is garbage.
  const first = (bytes[offset]! << 8) | bytes[offset + 1]!;
  // syncword (12 bits) = 0xFFF, then ID (1), layer (2) which must be 00, protection_absent (1).
  if ((first & 0xfff6) !== 0xfff0) return null;
  const protectionAbsent = (first & 0x1) === 1;
  const second = bytes[offset + 2]!;
  const objectType = (second >> 6) + 1; // profile_ObjectType (2)
  const samplingIndex = (second >> 2) & 0xf; // sampling_frequency_index (4), then private_bit (1)
  if (samplingIndex >= SAMPLE_RATES.length) return null;
  // channel_configuration (3) straddles bytes 2 and 3; then original/copy, home,
  // copyright_identification_bit/start (1 each), frame_length (13), buffer fullness (11),
  // number_of_raw_data_blocks_in_frame (2): a 32-bit big-endian word from byte 3.
  const rest = ((bytes[offset + 3]! << 24) | (bytes[offset + 4]! << 16) | (bytes[offset + 5]! << 8) | bytes[offset + 6]!) >>> 0;
  const channelConfiguration = ((second & 0x1) << 2) | (rest >>> 30);
  const frameLength = (rest >>> 13) & MAX_FRAME_LENGTH;
  const bufferFullness = (rest >>> 2) & 0x7ff;
  const rawDataBlocks = (rest & 0x3) + 1;
  // adts_error_check: raw_data_block_position per extra block, then crc_check (16 bits each).
  const headerLength = protectionAbsent ? FIXED_HEADER_BYTES : FIXED_HEADER_BYTES + 2 * rawDataBlocks;
  if (frameLength < headerLength) return null;
  return {
    mpegVersion: first & 0x8 ? 2 : 4,
    objectType,
    samplingIndex,
    sampleRate: SAMPLE_RATES[samplingIndex],
    channelConfiguration,
    channelCount: CHANNEL_COUNTS[channelConfiguration],
    protectionAbsent,
    headerLength,
    frameLength,
    bufferFullness,
    rawDataBlocks,
    samples: rawDataBlocks * SAMPLES_PER_RAW_DATA_BLOCK,
  };
}

/** A 7-byte MPEG-4 ADTS header without CRC, one raw data block, buffer fullness 0x7FF (VBR). */
export function buildAdtsHeader(options: {
  sampleRate: number;
  channelCount: number;
  objectType: number;
  payloadLength: number;
}): Uint8Array {
  const samplingIndex = sampleRateIndex(options.sampleRate);
  const channelConfiguration = CHANNEL_COUNTS.indexOf(options.channelCount);
  const frameLength = FIXED_HEADER_BYTES + options.payloadLength;
  if (samplingIndex < 0) throw new RangeError(`ADTS cannot carry ${options.sampleRate} Hz`);
  if (channelConfiguration <= 0) throw new RangeError(`ADTS cannot carry ${options.channelCount} channels`);
  if (options.objectType < 1 || options.objectType > 4) throw new RangeError(`ADTS cannot carry object type ${options.objectType}`);
  if (!Number.isInteger(options.payloadLength) || options.payloadLength < 0 || frameLength > MAX_FRAME_LENGTH) {
    throw new RangeError(`ADTS payload of ${options.payloadLength} bytes does not fit`);
  }
  const header = new Uint8Array(FIXED_HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint16(0, 0xfff1); // syncword, ID 0 (MPEG-4), layer 00, protection_absent 1
  view.setUint8(2, ((options.objectType - 1) << 6) | (samplingIndex << 2) | (channelConfiguration >> 2));
  view.setUint32(3, (((channelConfiguration & 0x3) << 30) | (frameLength << 13) | (0x7ff << 2)) >>> 0);
  return header;
}

/** An ADTS stream: one format (MPEG version, object type, rate, channels) throughout. */
export const ADTS_FORMAT: SyncFrameFormat<AdtsHeader, AacFrame> = {
  headerBytes: FIXED_HEADER_BYTES,
  parse: parseAdtsHeader,
  sameStream: (a, b) =>
    a.mpegVersion === b.mpegVersion && a.objectType === b.objectType && a.samplingIndex === b.samplingIndex && a.channelConfiguration === b.channelConfiguration,
  frame: (data, header) => ({
    data,
    sampleRate: header.sampleRate,
    channelCount: header.channelCount,
    objectType: header.objectType,
    samples: header.samples,
  }),
};

/** Cuts a byte stream into ADTS frames with PTS (src/media/sync-frame-reader.ts says how). */
export class AdtsReader extends SyncFrameReader<AdtsHeader, AacFrame> {
  constructor() {
    super(ADTS_FORMAT);
  }
}
