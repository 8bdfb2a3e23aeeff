/**
 * Shared MPEG-TS field codecs (ISO/IEC 13818-1): the 188-byte packet header (§2.4.3.2),
 * the 33-bit PTS/DTS fields of a PES header (§2.4.3.7) and the PCR of an adaptation field
 * (§2.4.3.5). Used by the demuxer, the muxer and segment verifiers.
 */

export const TS_PACKET_SIZE = 188;
export const TS_SYNC_BYTE = 0x47;
export const PAT_PID = 0x0000;
export const NULL_PID = 0x1fff;

export interface TsPacketInfo {
  pid: number;
  cc: number;
  /** payload_unit_start_indicator */
  pusi: boolean;
  /** adaptation_field_control is 1 or 3: the packet carries payload and counts for continuity. */
  hasPayload: boolean;
  /** Adaptation field present with discontinuity_indicator set (§2.4.3.4). */
  discontinuity: boolean;
  /** Adaptation field present with the PCR flag (§2.4.3.4); the 33-bit base, in 90 kHz. */
  pcr?: number;
}

/** Header fields of the packet at `offset`, or null when there is no sync byte there. */
export function readPacketInfo(bytes: Uint8Array, offset = 0): TsPacketInfo | null {
  if (bytes.length - offset < TS_PACKET_SIZE || bytes[offset] !== TS_SYNC_BYTE) return null;
  const pid = ((bytes[offset + 1] & 0x1f) << 8) | bytes[offset + 2];
  const control = bytes[offset + 3];
  const adaptationFieldControl = (control >> 4) & 0x3;
  const info: TsPacketInfo = {
    pid,
    cc: control & 0xf,
    pusi: (bytes[offset + 1] & 0x40) !== 0,
    hasPayload: (adaptationFieldControl & 0x1) !== 0,
    discontinuity: false,
  };
  const adaptationLength = adaptationFieldControl & 0x2 ? bytes[offset + 4] : 0;
  if (adaptationLength > 0) {
    const flags = bytes[offset + 5];
    info.discontinuity = (flags & 0x80) !== 0;
    if (flags & 0x10 && adaptationLength >= 7) info.pcr = readPcrBase(bytes, offset + 6);
  }
  return info;
}

/** Header fields of every whole packet in an aligned buffer (a segment); stops at the first bad sync. */
export function scanTsPackets(bytes: Uint8Array): TsPacketInfo[] {
  const packets: TsPacketInfo[] = [];
  for (let offset = 0; offset + TS_PACKET_SIZE <= bytes.length; offset += TS_PACKET_SIZE) {
    const info = readPacketInfo(bytes, offset);
    if (info === null) break;
    packets.push(info);
  }
  return packets;
}

/**
 * Reads a 5-byte PTS/DTS field: 4-bit prefix, PTS[32..30], marker, PTS[29..15], marker,
 * PTS[14..0], marker.
 */
export function readTimestamp(bytes: Uint8Array, offset: number): number {
  const high = (bytes[offset] >> 1) & 0x7;
  const middle = (bytes[offset + 1] << 7) | (bytes[offset + 2] >> 1);
  const low = (bytes[offset + 3] << 7) | (bytes[offset + 4] >> 1);
  return high * 2 ** 30 + middle * 2 ** 15 + low;
}

/** Writes a 5-byte PTS/DTS field with the given 4-bit prefix (0b0010 for "PTS only"). */
export function writeTimestamp(view: DataView, offset: number, prefix: number, timestamp: number): void {
  const high = Math.floor(timestamp / 2 ** 30) & 0x7;
  const middle = Math.floor(timestamp / 2 ** 15) & 0x7fff;
  const low = timestamp & 0x7fff;
  view.setUint8(offset, (prefix << 4) | (high << 1) | 1);
  view.setUint16(offset + 1, (middle << 1) | 1);
  view.setUint16(offset + 3, (low << 1) | 1);
}

/** program_clock_reference_base (33 bits) of a 6-byte PCR field. */
export function readPcrBase(bytes: Uint8Array, offset: number): number {
  const upper = ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
  return upper * 2 + (bytes[offset + 4] >> 7);
}

/** Writes a 6-byte PCR: base (33 bits), 6 reserved bits set to 1, extension (9 bits). */
export function writePcr(view: DataView, offset: number, base: number, extension = 0): void {
  view.setUint32(offset, Math.floor(base / 2));
  view.setUint16(offset + 4, ((base % 2) << 15) | 0x7e00 | (extension & 0x1ff));
}
