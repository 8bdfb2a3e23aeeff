/**
 * ISO base media file format boxes (ISO/IEC 14496-12), written as bytes: the small pure
 * builders the fMP4/CMAF muxer (src/media/fmp4-muxer.ts) assembles into init segments and
 * fragments. Every builder returns a whole box (32-bit size, four-character type, body);
 * nothing here knows about codecs beyond the MPEG-4 descriptors of `esds` (ISO/IEC 14496-1
 * §7.2.6). docs/architecture.md, "CMAF container".
 */

/** A box's body is a run of parts: bytes, or a number written as an unsigned integer of `bytes` width. */
export type BoxPart = Uint8Array | { uint: number; bytes: 1 | 2 | 3 | 4 | 8 } | { int32: number };

const BOX_HEADER_BYTES = 8;
const FULL_BOX_HEADER_BYTES = 12;

export function u8(value: number): BoxPart {
  return { uint: value, bytes: 1 };
}
export function u16(value: number): BoxPart {
  return { uint: value, bytes: 2 };
}
export function u24(value: number): BoxPart {
  return { uint: value, bytes: 3 };
}
export function u32(value: number): BoxPart {
  return { uint: value, bytes: 4 };
}
export function u64(value: number): BoxPart {
  return { uint: value, bytes: 8 };
}
/** Four ASCII characters (a box type or a brand). */
export function fourCc(text: string): Uint8Array {
  if (text.length !== 4) throw new RangeError(`a four-character code needs 4 characters, got "${text}"`);
  return Uint8Array.from(text, (character) => character.charCodeAt(0));
}
/** Four ASCII characters as the big-endian 32-bit number a box header holds (for writing a header in place). */
export function fourCcCode(text: string): number {
  const bytes = fourCc(text);
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}
/** A NUL-terminated UTF-8 string (hdlr name, emsg scheme and value). */
export function cString(text: string): Uint8Array {
  const encoded = new TextEncoder().encode(text);
  const bytes = new Uint8Array(encoded.length + 1);
  bytes.set(encoded);
  return bytes;
}
/** `count` zero bytes (reserved fields). */
export function zeros(count: number): Uint8Array {
  return new Uint8Array(count);
}

function partLength(part: BoxPart): number {
  if (part instanceof Uint8Array) return part.length;
  return 'int32' in part ? 4 : part.bytes;
}

function writePart(target: Uint8Array, view: DataView, offset: number, part: BoxPart): number {
  if (part instanceof Uint8Array) {
    target.set(part, offset);
    return offset + part.length;
  }
  if ('int32' in part) {
    view.setInt32(offset, part.int32);
    return offset + 4;
  }
  const { uint, bytes } = part;
  if (!Number.isSafeInteger(uint) || uint < 0 || (bytes < 8 && uint >= 2 ** (8 * bytes))) throw new RangeError(`${uint} does not fit in ${bytes} unsigned bytes`);
  if (bytes === 8) {
    view.setUint32(offset, Math.floor(uint / 2 ** 32));
    view.setUint32(offset + 4, uint % 2 ** 32);
  } else if (bytes === 4) view.setUint32(offset, uint);
  else if (bytes === 3) {
    view.setUint8(offset, uint >>> 16);
    view.setUint16(offset + 1, uint & 0xffff);
  } else if (bytes === 2) view.setUint16(offset, uint);
  else view.setUint8(offset, uint);
  return offset + bytes;
}

function assemble(headerBytes: number, parts: readonly BoxPart[], header: (view: DataView, size: number) => void): Uint8Array {
  const size = parts.reduce((total, part) => total + partLength(part), headerBytes);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  header(view, size);
  let offset = headerBytes;
  for (const part of parts) offset = writePart(bytes, view, offset, part);
  return bytes;
}

/** A box (14496-12 §4.2): size, type, body. */
export function box(type: string, ...body: BoxPart[]): Uint8Array {
  const typeBytes = fourCc(type);
  return assemble(BOX_HEADER_BYTES, body, (view, size) => {
    view.setUint32(0, size);
    new Uint8Array(view.buffer).set(typeBytes, 4);
  });
}

/** A full box (14496-12 §4.2): a box whose body starts with version (8 bits) and flags (24 bits). */
export function fullBox(type: string, version: number, flags: number, ...body: BoxPart[]): Uint8Array {
  const typeBytes = fourCc(type);
  return assemble(FULL_BOX_HEADER_BYTES, body, (view, size) => {
    view.setUint32(0, size);
    new Uint8Array(view.buffer).set(typeBytes, 4);
    view.setUint32(8, ((version << 24) | (flags & 0xffffff)) >>> 0);
  });
}

/**
 * An MPEG-4 descriptor (ISO/IEC 14496-1 §7.2.2.3, expandable class): tag, size in 7-bit
 * groups with a continuation bit (one byte below 128), body.
 */
export function descriptor(tag: number, ...body: BoxPart[]): Uint8Array {
  const length = body.reduce((total, part) => total + partLength(part), 0);
  const sizeBytes: number[] = [length & 0x7f];
  for (let rest = length >>> 7; rest > 0; rest >>>= 7) sizeBytes.unshift(0x80 | (rest & 0x7f));
  return box0(Uint8Array.of(tag, ...sizeBytes), body);
}

/** The header bytes then the parts, with no size or type of its own. */
function box0(head: Uint8Array, body: readonly BoxPart[]): Uint8Array {
  return assemble(head.length, body, (view) => new Uint8Array(view.buffer).set(head, 0));
}

/** The 3×3 unity transformation matrix of mvhd and tkhd (14496-12 §8.2.2.3), 16.16 and 2.30 fixed point. */
export const UNITY_MATRIX: Uint8Array = (() => {
  const matrix = new Uint8Array(36);
  const view = new DataView(matrix.buffer);
  view.setUint32(0, 0x00010000);
  view.setUint32(16, 0x00010000);
  view.setUint32(32, 0x40000000);
  return matrix;
})();

/** The ISO 639-2/T code packed as three 5-bit letters (14496-12 §8.4.2.3): 'und' is 0x55C4. */
export function packedLanguage(code: string): number {
  if (!/^[a-z]{3}$/.test(code)) throw new RangeError(`a language is three lowercase letters, got "${code}"`);
  return [...code].reduce((packed, letter) => (packed << 5) | (letter.charCodeAt(0) - 0x60), 0);
}
