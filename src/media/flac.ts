/**
 * FLAC framing (RFC 9639): the frame header parser (§9.1, with its CRC-8), a reader that cuts
 * FFmpeg's FLAC elementary stream (MPEG-TS private data, several frames per PES, no length
 * field) into whole frames with PTS, the STREAMINFO block and `dfLa` box of an fMP4 init
 * segment ("Encapsulation of FLAC in ISO Base Media File Format" §3.3.2), and a frame of
 * digital silence for the safety source. docs/architecture.md, "Opus and FLAC renditions".
 *
 * A frame is where a header starts and ends where the next one starts; it is only taken when
 * its CRC-16 footer (§9.3) checks, so a sync pattern inside a frame's data does not cut it.
 */
import type { AacFrame } from './adts.js';
import { EMPTY_BYTES, concatBytes } from './bytes.js';
import { ptsAdd, samplesToTicks } from './pts.js';

/** The frames' `objectType` in a frame group: FLAC is no MPEG-4 audio object type. */
export const FLAC_OBJECT_TYPE = 0;
/** Frames the encoder is asked for (`-frame_size 1024`): one AAC frame group each. */
export const FLAC_BLOCK_SIZE = 1024;

export interface FlacFrameHeader {
  /** 0xFFF8: fixed block size (the header counts frames); 0xFFF9: variable (it counts samples). */
  variableBlockSize: boolean;
  blockSize: number;
  sampleRate: number;
  channelCount: number;
  bitsPerSample: number;
  /** Header bytes including the CRC-8. */
  headerLength: number;
}

/** Sample rate codes 1–11 (§9.1.2); 0 means "from STREAMINFO" (not accepted: a frame must say). */
const SAMPLE_RATES = [0, 88200, 176400, 192000, 8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000];
/** Sample size codes (§9.1.4): 0 from STREAMINFO, 3 reserved. */
const SAMPLE_SIZES = [0, 8, 12, 0, 16, 20, 24, 32];
const MIN_HEADER_BYTES = 6;

/** CRC-8, polynomial x^8 + x^2 + x + 1 (0x07), initial 0 (§9.1.8). */
const CRC8_TABLE = crcTable(0x07, 8);
/** CRC-16, polynomial x^16 + x^15 + x^2 + 1 (0x8005), initial 0 (§9.3). */
const CRC16_TABLE = crcTable(0x8005, 16);

function crcTable(polynomial: number, width: 8 | 16): Uint16Array {
  const table = new Uint16Array(256);
  const top = 1 << (width - 1);
  const mask = (1 << width) - 1;
  for (let byte = 0; byte < 256; byte += 1) {
    let crc = byte << (width - 8);
    for (let bit = 0; bit < 8; bit += 1) crc = crc & top ? ((crc << 1) ^ polynomial) & mask : (crc << 1) & mask;
    table[byte] = crc;
  }
  return table;
}

export function flacCrc8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let index = start; index < end; index += 1) crc = CRC8_TABLE[crc ^ bytes[index]!]!;
  return crc;
}

function crc16Step(crc: number, byte: number): number {
  return ((crc << 8) & 0xffff) ^ CRC16_TABLE[(crc >> 8) ^ byte]!;
}

export function flacCrc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let index = start; index < end; index += 1) crc = crc16Step(crc, bytes[index]!);
  return crc;
}

/** The frame header at `offset` (its CRC-8 checked), or null if the bytes there are not a whole one. */
export function parseFlacFrameHeader(bytes: Uint8Array, offset: number): FlacFrameHeader | null {
  if (offset < 0 || bytes.length - offset < MIN_HEADER_BYTES) return null;
  // Sync code 0b11111111111110 (14 bits), a reserved 0, the blocking strategy bit.
  if (bytes[offset] !== 0xff || (bytes[offset + 1]! & 0xfe) !== 0xf8) return null;
  const variableBlockSize = (bytes[offset + 1]! & 0x1) === 1;
  const blockSizeCode = bytes[offset + 2]! >> 4;
  const sampleRateCode = bytes[offset + 2]! & 0xf;
  const channelCode = bytes[offset + 3]! >> 4;
  const sampleSizeCode = (bytes[offset + 3]! >> 1) & 0x7;
  if (blockSizeCode === 0 || sampleRateCode === 0 || sampleRateCode === 15 || channelCode > 10 || SAMPLE_SIZES[sampleSizeCode] === 0 || (bytes[offset + 3]! & 0x1) !== 0) return null;
  // The coded frame or sample number (§9.1.5): UTF-8-like, 1 to 7 bytes.
  let position = offset + 4;
  const lead = bytes[position]!;
  const extra = lead < 0x80 ? 0 : lead >= 0xfe ? 6 : lead >= 0xfc ? 5 : lead >= 0xf8 ? 4 : lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : -1;
  if (extra < 0 || (!variableBlockSize && extra > 5)) return null;
  position += 1;
  for (let index = 0; index < extra; index += 1, position += 1) {
    if (position >= bytes.length || (bytes[position]! & 0xc0) !== 0x80) return null;
  }
  let blockSize: number;
  if (blockSizeCode === 1) blockSize = 192;
  else if (blockSizeCode <= 5) blockSize = 576 << (blockSizeCode - 2);
  else if (blockSizeCode === 6 || blockSizeCode === 7) {
    const width = blockSizeCode === 6 ? 1 : 2;
    if (position + width > bytes.length) return null;
    blockSize = (width === 1 ? bytes[position]! : (bytes[position]! << 8) | bytes[position + 1]!) + 1;
    position += width;
  } else blockSize = 256 << (blockSizeCode - 8);
  let sampleRate = SAMPLE_RATES[sampleRateCode] ?? 0;
  if (sampleRateCode >= 12) {
    const width = sampleRateCode === 12 ? 1 : 2;
    if (position + width > bytes.length) return null;
    const value = width === 1 ? bytes[position]! : (bytes[position]! << 8) | bytes[position + 1]!;
    sampleRate = sampleRateCode === 12 ? value * 1000 : sampleRateCode === 13 ? value : value * 10;
    position += width;
  }
  if (position >= bytes.length || sampleRate === 0 || flacCrc8(bytes, offset, position) !== bytes[position]) return null;
  return {
    variableBlockSize,
    blockSize,
    sampleRate,
    // 0–7: that many channels plus one, independent; 8–10: left/side, side/right, mid/side stereo.
    channelCount: channelCode <= 7 ? channelCode + 1 : 2,
    bitsPerSample: SAMPLE_SIZES[sampleSizeCode]!,
    headerLength: position + 1 - offset,
  };
}

function sameStream(a: FlacFrameHeader, b: FlacFrameHeader): boolean {
  return a.variableBlockSize === b.variableBlockSize && a.sampleRate === b.sampleRate && a.channelCount === b.channelCount && a.bitsPerSample === b.bitsPerSample;
}

export interface FlacReaderStats {
  frames: number;
  skippedBytes: number;
  resyncs: number;
}

/** The most bytes held while a frame's end is not found (a 1024-sample frame of 8 channels at 32 bits is under 40 KB). */
const MAX_CARRY_BYTES = 256 * 1024;

/**
 * Cuts a FLAC elementary stream into frames shaped like AAC frames (`samples` is the block
 * size). A frame ends at the next header of the same stream whose preceding bytes' CRC-16
 * checks, or at the end of the bytes pushed when they check there (FFmpeg writes whole frames
 * per PES); otherwise it waits for more. The first frame starting in a chunk pushed with a PTS
 * gets it (13818-1 §2.4.3.7), later ones that PTS plus their sample offset. Bytes that hold
 * no checked frame are skipped and counted; nothing throws.
 */
export class FlacReader {
  readonly stats: FlacReaderStats = { frames: 0, skippedBytes: 0, resyncs: 0 };
  private carry: Uint8Array = EMPTY_BYTES;
  private anchorPts: number | undefined;
  private samplesSinceAnchor = 0;
  private skipping = false;

  push(chunk: Uint8Array, pts?: number): AacFrame[] {
    const chunkStart = this.carry.length;
    const data = chunkStart === 0 ? chunk : concatBytes(this.carry, chunk);
    let ptsToApply = pts;
    const frames: AacFrame[] = [];
    let position = 0;
    while (position < data.length) {
      const header = parseFlacFrameHeader(data, position);
      if (!header) {
        // A header cut by the end of the bytes at hand (at most 16 bytes long): wait for the rest.
        if (data[position] === 0xff && data.length - position < 16) break;
        position = this.skip(data, position);
        continue;
      }
      const end = this.frameEnd(data, position, header);
      if (end === undefined) break;
      if (typeof end === 'object') {
        position = this.skip(data, position, end.bad);
        continue;
      }
      if (ptsToApply !== undefined && position >= chunkStart) {
        this.anchorPts = ptsToApply;
        this.samplesSinceAnchor = 0;
        ptsToApply = undefined;
      }
      const frame: AacFrame = { data: data.subarray(position, end), sampleRate: header.sampleRate, channelCount: header.channelCount, objectType: FLAC_OBJECT_TYPE, samples: header.blockSize };
      if (this.anchorPts !== undefined) {
        frame.pts = ptsAdd(this.anchorPts, samplesToTicks(this.samplesSinceAnchor, header.sampleRate));
        this.samplesSinceAnchor += header.blockSize;
      }
      frames.push(frame);
      this.stats.frames += 1;
      this.skipping = false;
      position = end;
    }
    this.carry = position >= data.length ? EMPTY_BYTES : data.slice(position);
    if (this.carry.length > MAX_CARRY_BYTES) {
      // No frame ends anywhere in this much: drop the candidate and look further on next time.
      this.skip(this.carry, 0, this.carry.length);
      this.carry = EMPTY_BYTES;
    }
    return frames;
  }

  /** Forgets buffered bytes and PTS state (a new input); stats keep counting. */
  reset(): void {
    this.carry = EMPTY_BYTES;
    this.anchorPts = undefined;
    this.samplesSinceAnchor = 0;
    this.skipping = false;
  }

  /**
   * Where the frame starting at `start` ends: the first following header of the same stream
   * with a CRC-16 that checks over the bytes before it, else the end of `data` if it checks
   * there; undefined while not found; `{ bad }` when two more headers follow and the CRC never
   * checked (a damaged frame: resume at the first of them).
   */
  private frameEnd(data: Uint8Array, start: number, header: FlacFrameHeader): number | { bad: number } | undefined {
    // CRC-16 run over the frame so far: zero right after a frame's own CRC-16 (no final XOR).
    let crc = 0;
    let firstHeader: number | undefined;
    for (let index = start; index < data.length; index += 1) {
      if (index > start + header.headerLength && data[index] === 0xff) {
        const next = parseFlacFrameHeader(data, index);
        if (next && sameStream(next, header)) {
          if (crc === 0) return index;
          if (firstHeader !== undefined) return { bad: firstHeader };
          firstHeader = index;
        }
      }
      crc = crc16Step(crc, data[index]!);
    }
    return crc === 0 ? data.length : undefined;
  }

  /** Skips from `position` to the next byte that could start a header (or to `until`); returns where to resume. */
  private skip(data: Uint8Array, position: number, until?: number): number {
    const next = until ?? data.indexOf(0xff, position + 1);
    const resumeAt = next < 0 ? data.length : next;
    if (!this.skipping) this.stats.resyncs += 1;
    this.skipping = true;
    this.stats.skippedBytes += resumeAt - position;
    return resumeAt;
  }
}

export interface FlacStreamFormat {
  sampleRate: number;
  channelCount: number;
  bitsPerSample: number;
}

/**
 * The STREAMINFO metadata block (§8.2) with its block header (last-metadata-block flag set,
 * type 0, length 34): fixed block size FLAC_BLOCK_SIZE, frame sizes and total samples
 * unknown (0, a live stream), MD5 unknown (zeros).
 */
export function flacStreamInfo(format: FlacStreamFormat): Uint8Array {
  const block = new Uint8Array(4 + 34);
  const view = new DataView(block.buffer);
  view.setUint32(0, (0x80 << 24) | 34); // last block, STREAMINFO, 34 bytes
  view.setUint16(4, FLAC_BLOCK_SIZE); // minimum block size
  view.setUint16(6, FLAC_BLOCK_SIZE); // maximum block size
  // minimum and maximum frame size (24 bits each): 0, unknown.
  // sample rate (20 bits), channels − 1 (3), bits per sample − 1 (5), total samples (36 bits: 0).
  view.setUint32(14, ((format.sampleRate << 12) | ((format.channelCount - 1) << 9) | ((format.bitsPerSample - 1) << 4)) >>> 0);
  return block;
}

/** The `dfLa` box body after version and flags: the STREAMINFO block, the only metadata block (the FLAC-in-ISOBMFF spec §3.3.2). */
export function flacSpecificBoxBody(format: FlacStreamFormat): Uint8Array {
  return flacStreamInfo(format);
}

/** Sample rate → the frame header's code (§9.1.2), 0 when the header cannot name it. */
function sampleRateCode(sampleRate: number): number {
  const code = SAMPLE_RATES.indexOf(sampleRate);
  return code > 0 ? code : 0;
}

/**
 * One frame of digital silence, FLAC_BLOCK_SIZE samples (for the safety source): a header
 * (fixed block size, frame number 0: decoders do not follow the numbers, and every input run
 * starts them again anyway), one CONSTANT subframe of value 0 per channel (§9.2: a zero
 * padding bit, type 0b000000, no wasted bits, then the value in bitsPerSample bits), byte
 * alignment and the CRC-16.
 */
export function silentFlacFrame(format: FlacStreamFormat): AacFrame {
  const rateCode = sampleRateCode(format.sampleRate);
  if (rateCode === 0) throw new RangeError(`a FLAC frame header cannot name ${format.sampleRate} Hz`);
  const sizeCode = SAMPLE_SIZES.indexOf(format.bitsPerSample);
  if (sizeCode <= 0 || format.channelCount < 1 || format.channelCount > 8) throw new RangeError('unsupported FLAC format');
  // Block size code 0b1010: 256 × 2^(10 − 8) = 1024.
  const header = Uint8Array.of(0xff, 0xf8, (0b1010 << 4) | rateCode, ((format.channelCount - 1) << 4) | (sizeCode << 1), 0x00, 0);
  header[5] = flacCrc8(header, 0, 5);
  const subframesBits = format.channelCount * (8 + format.bitsPerSample);
  const body = new Uint8Array(Math.ceil(subframesBits / 8)); // every subframe header and value is zero bits
  const frame = new Uint8Array(header.length + body.length + 2);
  frame.set(header);
  frame.set(body, header.length);
  const crc = flacCrc16(frame, 0, frame.length - 2);
  frame[frame.length - 2] = crc >> 8;
  frame[frame.length - 1] = crc & 0xff;
  return { data: frame, sampleRate: format.sampleRate, channelCount: format.channelCount, objectType: FLAC_OBJECT_TYPE, samples: FLAC_BLOCK_SIZE };
}
