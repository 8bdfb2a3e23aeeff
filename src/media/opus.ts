/**
 * Opus framing: the access units of Opus in MPEG-TS (each behind an `opus_control_header`:
 * prefix 0x3FF, trim and extension flags, the size as a run of 0xFF bytes plus a last one, as
 * FFmpeg's MPEG-TS muxer writes it), the packet duration from the TOC byte (RFC 6716 §3.1), a
 * chunk of them per AAC frame group, the `dOps` box of an fMP4 init segment ("Encapsulation of
 * Opus in ISO Base Media File Format" §4.3.2) and a packet of digital silence for the safety
 * source. docs/architecture.md, "Opus and FLAC renditions".
 */
import type { AacFrame } from './adts.js';
import { frameChunk } from './frame-chunk.js';
import { SyncFrameReader, type SyncFrameFormat } from './sync-frame-reader.js';

/** Opus decodes at 48 kHz whatever the input (RFC 7845 §5.1): the only rate an Opus rendition runs at. */
export const OPUS_SAMPLE_RATE = 48000;
/** The chunks' `objectType` in a frame group: Opus is no MPEG-4 audio object type. */
export const OPUS_OBJECT_TYPE = 1000;
/** libopus's encoder delay at 48 kHz (its lookahead, 6.5 ms): what FFmpeg writes as the first unit's start_trim and as PreSkip. */
export const LIBOPUS_PRE_SKIP = 312;
/** The longest control header: prefix (2), a size of up to 1275 bytes (6), start_trim (2), end_trim (2). */
const MAX_CONTROL_HEADER_BYTES = 12;

export interface OpusUnitHeader {
  /** The whole access unit: control header and packet. */
  frameLength: number;
  /** Control header bytes before the packet. */
  headerLength: number;
  sampleRate: number;
  /** Samples per channel the packet decodes to (48 kHz). */
  samples: number;
  /** The TOC's stereo flag. */
  channelCount: 1 | 2;
}

/** Samples (48 kHz) of one frame per TOC configuration (RFC 6716 §3.1, Table 2): SILK 10/20/40/60 ms, hybrid 10/20, CELT 2.5/5/10/20. */
function frameSamples(config: number): number {
  if (config < 12) return [480, 960, 1920, 2880][config & 0x3]!;
  if (config < 16) return [480, 960][config & 0x1]!;
  return [120, 240, 480, 960][config & 0x3]!;
}

/** Samples per channel (48 kHz) a packet decodes to, from its TOC byte (and the frame count byte of code 3), or 0 if it has none. */
export function opusPacketSamples(packet: Uint8Array, offset = 0, end = packet.length): number {
  if (end - offset < 1) return 0;
  const toc = packet[offset]!;
  const code = toc & 0x3;
  const frames = code === 0 ? 1 : code < 3 ? 2 : end - offset >= 2 ? packet[offset + 1]! & 0x3f : 0;
  const samples = frames * frameSamples(toc >> 3);
  // A packet lasts at most 120 ms (§3.2.5).
  return samples <= 5760 ? samples : 0;
}

/** The access unit at `offset` (control header and the TOC byte at hand), or null if the bytes there cannot be one. */
export function parseOpusUnitHeader(bytes: Uint8Array, offset: number): OpusUnitHeader | null {
  if (offset < 0 || bytes.length - offset < 3) return null;
  // control_header_prefix (11 bits, 0x3FF), start_trim_flag, end_trim_flag, control_extension_flag, reserved (2).
  if (bytes[offset] !== 0x7f || (bytes[offset + 1]! & 0xe0) !== 0xe0) return null;
  const flags = bytes[offset + 1]!;
  let position = offset + 2;
  let size = 0;
  for (;;) {
    if (position >= bytes.length) return null;
    const byte = bytes[position]!;
    position += 1;
    size += byte;
    if (byte !== 0xff) break;
  }
  if (flags & 0x10) position += 2; // start_trim (3 reserved bits, 13 bits)
  if (flags & 0x08) position += 2; // end_trim
  if (flags & 0x04) {
    if (position >= bytes.length) return null;
    position += 1 + bytes[position]!; // control_extension_length, then that many bytes
  }
  if (size === 0 || position >= bytes.length) return null;
  const samples = opusPacketSamples(bytes, position, Math.min(bytes.length, position + size));
  if (samples === 0) return null;
  return { frameLength: position - offset + size, headerLength: position - offset, sampleRate: OPUS_SAMPLE_RATE, samples, channelCount: bytes[position]! & 0x4 ? 2 : 1 };
}

export interface OpusUnit {
  /** The whole access unit, control header included (it delimits the unit in a chunk). */
  data: Uint8Array;
  sampleRate: number;
  channelCount: number;
  samples: number;
  pts?: number;
}

const OPUS_FORMAT: SyncFrameFormat<OpusUnitHeader, OpusUnit> = {
  headerBytes: MAX_CONTROL_HEADER_BYTES,
  parse: parseOpusUnitHeader,
  // Packets of one stream may change mode, bandwidth and frame size: any unit follows any.
  sameStream: () => true,
  frame: (data, header) => ({ data, sampleRate: header.sampleRate, channelCount: header.channelCount, samples: header.samples }),
};

/** Cuts an Opus-in-MPEG-TS elementary stream into access units with PTS (src/media/sync-frame-reader.ts says how). */
export class OpusReader extends SyncFrameReader<OpusUnitHeader, OpusUnit> {
  constructor() {
    super(OPUS_FORMAT);
  }
}

/** An Opus rendition's slot in a frame group: its access units that start within the group, back to back (frame-chunk.ts). */
export function opusChunk(units: readonly OpusUnit[], channelCount: number, pts?: number): AacFrame {
  return frameChunk(units, OPUS_SAMPLE_RATE, channelCount, OPUS_OBJECT_TYPE, pts);
}

/**
 * Calls `each` with the packet (a view, control header stripped) and its samples of every
 * access unit of a chunk, in order; stops at the first byte that is not a whole unit.
 */
export function forEachOpusPacket(chunk: Uint8Array, each: (packet: Uint8Array, samples: number) => void): void {
  for (let offset = 0; offset < chunk.length; ) {
    const header = parseOpusUnitHeader(chunk, offset);
    if (!header || offset + header.frameLength > chunk.length) return;
    each(chunk.subarray(offset + header.headerLength, offset + header.frameLength), header.samples);
    offset += header.frameLength;
  }
}

/**
 * One access unit of digital silence, 20 ms: a CELT-only fullband packet (TOC config 31, code 0,
 * the stereo flag as asked) whose two bytes 0xFF 0xFE decode to silence, behind a control header.
 */
export function silentOpusUnit(channelCount: 1 | 2): OpusUnit {
  const packet = Uint8Array.of(0xf8 | (channelCount === 2 ? 0x4 : 0), 0xff, 0xfe);
  return { data: Uint8Array.of(0x7f, 0xe0, packet.length, ...packet), sampleRate: OPUS_SAMPLE_RATE, channelCount, samples: 960 };
}

/**
 * The `dOps` box body after its header (Opus in ISOBMFF §4.3.2): Version 0, OutputChannelCount,
 * PreSkip, InputSampleRate, OutputGain 0, ChannelMappingFamily 0 (mono or stereo, no table).
 */
export function opusSpecificBoxBody(channelCount: number, preSkip: number, inputSampleRate: number): Uint8Array {
  const body = new Uint8Array(11);
  const view = new DataView(body.buffer);
  view.setUint8(0, 0);
  view.setUint8(1, channelCount);
  view.setUint16(2, preSkip);
  view.setUint32(4, inputSampleRate);
  view.setInt16(8, 0);
  view.setUint8(10, 0);
  return body;
}
