/**
 * MPEG audio (ISO/IEC 11172-3 §2.4.2.3, 13818-3 for the half rates; MPEG 2.5 as LAME writes
 * it): frame headers and whole frames, and the ID3v2 tags (id3.org, ID3v2.4 §3.1) that lead an
 * HLS packed-audio segment (RFC 8216 §3.4: an ID3 PRIV transportStreamTimestamp tag, then
 * raw frames). Pure; bad bytes are skipped and counted, nothing throws on input.
 */

export interface MpegAudioHeader {
  /** 1, 2 or 2.5 (MPEG-2.5, LAME's lowest rates). */
  version: 1 | 2 | 2.5;
  layer: 1 | 2 | 3;
  bitrate: number;
  sampleRate: number;
  channelCount: number;
  /** Whole frame, header included. */
  frameLength: number;
  /** PCM samples per channel the frame decodes to. */
  samples: number;
}

export interface MpegAudioFrame {
  data: Uint8Array;
  sampleRate: number;
  samples: number;
}

const HEADER_BYTES = 4;
const ID3_HEADER_BYTES = 10;
/** kb/s by [version 1 ? 0 : 1][layer - 1][bitrate_index] (11172-3 Table 2.4.2.3; 13818-3 Table 2.4.2.3). */
const BITRATES_KBPS = [
  [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  ],
  [
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  ],
];
const SAMPLE_RATES: Record<number, number[]> = { 1: [44100, 48000, 32000], 2: [22050, 24000, 16000], 2.5: [11025, 12000, 8000] };

/** Parses the 4-byte header at `offset`, or null when the bytes there cannot be one (free format included). */
export function parseMpegAudioHeader(bytes: Uint8Array, offset: number): MpegAudioHeader | null {
  if (bytes.length - offset < HEADER_BYTES) return null;
  const b1 = bytes[offset + 1]!;
  const b2 = bytes[offset + 2]!;
  if (bytes[offset] !== 0xff || (b1 & 0xe0) !== 0xe0) return null; // 11-bit frame sync
  const versionBits = (b1 >> 3) & 0x3;
  const layerBits = (b1 >> 1) & 0x3;
  if (versionBits === 1 || layerBits === 0) return null; // reserved
  const version = versionBits === 3 ? 1 : versionBits === 2 ? 2 : 2.5;
  const layer = (4 - layerBits) as 1 | 2 | 3;
  const bitrateIndex = b2 >> 4;
  const rateIndex = (b2 >> 2) & 0x3;
  if (bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) return null; // free format, bad, reserved
  const padding = (b2 >> 1) & 0x1;
  const bitrate = BITRATES_KBPS[version === 1 ? 0 : 1]![layer - 1]![bitrateIndex]! * 1000;
  const sampleRate = SAMPLE_RATES[version]![rateIndex]!;
  const channelCount = bytes[offset + 3]! >> 6 === 3 ? 1 : 2;
  let frameLength: number;
  let samples: number;
  if (layer === 1) {
    samples = 384;
    frameLength = (Math.floor((12 * bitrate) / sampleRate) + padding) * 4;
  } else {
    // Layer III of MPEG-2/2.5 has one granule per frame: half the samples.
    samples = layer === 3 && version !== 1 ? 576 : 1152;
    frameLength = Math.floor(((samples / 8) * bitrate) / sampleRate) + padding;
  }
  return { version, layer, bitrate, sampleRate, channelCount, frameLength, samples };
}

/**
 * Where the audio starts after the ID3v2 tags at `offset` (any number of them, each `ID3`,
 * version, flags, a 28-bit syncsafe size, and a footer when flagged); `offset` if there is none.
 */
export function skipId3Tags(bytes: Uint8Array, offset = 0): number {
  let position = offset;
  while (
    bytes.length - position >= ID3_HEADER_BYTES &&
    bytes[position] === 0x49 && bytes[position + 1] === 0x44 && bytes[position + 2] === 0x33 && // "ID3"
    bytes[position + 3]! < 0xff && bytes[position + 4]! < 0xff &&
    ((bytes[position + 6]! | bytes[position + 7]! | bytes[position + 8]! | bytes[position + 9]!) & 0x80) === 0
  ) {
    const size = (bytes[position + 6]! << 21) | (bytes[position + 7]! << 14) | (bytes[position + 8]! << 7) | bytes[position + 9]!;
    const footer = (bytes[position + 5]! & 0x10) !== 0 ? ID3_HEADER_BYTES : 0;
    position = Math.min(bytes.length, position + ID3_HEADER_BYTES + size + footer);
  }
  return position;
}

/**
 * The whole MPEG audio frames of `bytes` (views, no copy), after any ID3v2 tags. A frame is
 * taken when the next one follows right after it with the same version, layer and rate (or
 * it ends the bytes exactly); anything else is skipped byte by byte and counted.
 */
export function splitMpegAudioFrames(bytes: Uint8Array): { frames: MpegAudioFrame[]; skippedBytes: number } {
  const frames: MpegAudioFrame[] = [];
  let skippedBytes = 0;
  let position = skipId3Tags(bytes);
  let previous: MpegAudioHeader | undefined;
  while (bytes.length - position >= HEADER_BYTES) {
    const header = parseMpegAudioHeader(bytes, position);
    const end = header ? position + header.frameLength : 0;
    const confirmed =
      header !== null &&
      end <= bytes.length &&
      (end === bytes.length || (previous !== undefined && sameStream(previous, header) && end + HEADER_BYTES > bytes.length) || followedBySameStream(bytes, end, header));
    if (!header || !confirmed) {
      skippedBytes += 1;
      position += 1;
      continue;
    }
    frames.push({ data: bytes.subarray(position, end), sampleRate: header.sampleRate, samples: header.samples });
    previous = header;
    position = end;
  }
  skippedBytes += bytes.length - position;
  return { frames, skippedBytes };
}

function followedBySameStream(bytes: Uint8Array, offset: number, header: MpegAudioHeader): boolean {
  const next = parseMpegAudioHeader(bytes, offset);
  return next !== null && sameStream(header, next);
}

function sameStream(a: MpegAudioHeader, b: MpegAudioHeader): boolean {
  return a.version === b.version && a.layer === b.layer && a.sampleRate === b.sampleRate;
}
