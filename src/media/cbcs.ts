/**
 * CMAF `cbcs` sample encryption of fMP4 audio (ISO/IEC 23001-7 §10.4, the scheme of Apple's
 * SAMPLE-AES for fMP4 and of CMAF): every sample's whole 16-byte blocks are AES-128-CBC
 * encrypted from the track's constant IV (restarted at each sample), its trailing partial block
 * stays clear. Audio uses no pattern (tenc crypt 0 / skip 0: every whole block) and no
 * subsamples, with a constant IV in `tenc` (Per_Sample_IV_Size 0), so a sample has no
 * auxiliary information and fragments carry no senc/saiz/saio: encryption keeps every byte
 * where it was, and a chunk is encrypted in place, after muxing (the moof is unchanged).
 *
 * The init segment of a protected track (fmp4-muxer.ts initSegmentFor with a protection)
 * describes it with an `enca` sample entry whose `sinf` holds frma (the original format),
 * schm (`cbcs`, version 1.0) and schi/tenc (default_KID, the constant IV), and a ClearKey
 * `pssh` (W3C "Common SystemID and PSSH Box Format", version 1 with the KID) in moov.
 *
 * Pure: the AES-128-CBC block cipher is passed in (node:crypto stays out of src/media).
 * docs/architecture.md, "Content encryption".
 */
import { box, fourCc, fourCcCode, fullBox, u32, u8 } from './mp4-boxes.js';

/** AES-128-CBC, no padding, of whole 16-byte blocks from `iv` (the key is the caller's): returns as many bytes. */
export type CbcBlockCipher = (blocks: Uint8Array, iv: Uint8Array) => Uint8Array;

/** What the init segment says about a cbcs-protected track: its key's id and the constant IV. */
export interface CbcsProtection {
  /** 16 bytes: tenc's default_KID, the pssh's KID, DASH's cenc:default_KID. */
  keyId: Uint8Array;
  /** 16 bytes: tenc's default_constant_IV. */
  constantIv: Uint8Array;
}

export const CBCS_BLOCK_BYTES = 16;
/** The W3C Common PSSH SystemID (ClearKey): 1077efec-c0b2-4d02-ace3-3c1e52e2fb4b. */
export const CLEARKEY_SYSTEM_ID = Uint8Array.from([0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b]);

function checkSixteen(name: string, bytes: Uint8Array): void {
  if (bytes.length !== CBCS_BLOCK_BYTES) throw new RangeError(`${name} needs 16 bytes, got ${bytes.length}`);
}

/** tenc version 1 (23001-7 §8.2): pattern 0/0 (every whole block), protected, Per_Sample_IV_Size 0, the KID, a 16-byte constant IV. */
export function tencBox(protection: CbcsProtection): Uint8Array {
  checkSixteen('the key id', protection.keyId);
  checkSixteen('the constant IV', protection.constantIv);
  return fullBox('tenc', 1, 0, u8(0), u8(0), u8(1), u8(0), protection.keyId, u8(CBCS_BLOCK_BYTES), protection.constantIv);
}

/** sinf (14496-12 §8.12): frma (the clear sample entry's type), schm cbcs 1.0, schi/tenc. */
export function sinfBox(originalFormat: string, protection: CbcsProtection): Uint8Array {
  return box('sinf', box('frma', fourCc(originalFormat)), fullBox('schm', 0, 0, fourCc('cbcs'), u32(0x00010000)), box('schi', tencBox(protection)));
}

/** A version 1 pssh of the ClearKey system naming `keyIds`, with no data. */
export function clearKeyPsshBox(keyIds: readonly Uint8Array[]): Uint8Array {
  for (const keyId of keyIds) checkSixteen('the key id', keyId);
  return fullBox('pssh', 1, 0, CLEARKEY_SYSTEM_ID, u32(keyIds.length), ...keyIds, u32(0));
}

/** Encrypts (or, with a decrypting cipher, decrypts) one sample in place: its whole blocks, from `iv`; the partial tail stays as it is. */
export function cryptSampleCbcs(sample: Uint8Array, iv: Uint8Array, cipher: CbcBlockCipher): void {
  const whole = sample.length - (sample.length % CBCS_BLOCK_BYTES);
  if (whole === 0) return;
  const out = cipher(sample.subarray(0, whole), iv);
  if (out.length !== whole) throw new RangeError(`the cipher returned ${out.length} bytes for ${whole}`);
  sample.set(out, 0);
}

const MOOF = fourCcCode('moof');
const MDAT = fourCcCode('mdat');
const TRAF = fourCcCode('traf');
const TFHD = fourCcCode('tfhd');
const TRUN = fourCcCode('trun');
const TFHD_BASE_DATA_OFFSET = 0x000001;
const TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002;
const TFHD_DEFAULT_SAMPLE_DURATION = 0x000008;
const TFHD_DEFAULT_SAMPLE_SIZE = 0x000010;
const TFHD_DEFAULT_SAMPLE_FLAGS = 0x000020;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
const TRUN_DATA_OFFSET = 0x000001;
const TRUN_FIRST_SAMPLE_FLAGS = 0x000004;
const TRUN_SAMPLE_DURATION = 0x000100;
const TRUN_SAMPLE_SIZE = 0x000200;
const TRUN_SAMPLE_FLAGS = 0x000400;
const TRUN_SAMPLE_CTO = 0x000800;

function boxAt(view: DataView, offset: number, end: number): { size: number; type: number } {
  if (offset + 8 > end) throw new RangeError(`a box header at ${offset} runs past ${end}`);
  const size = view.getUint32(offset);
  if (size < 8 || offset + size > end) throw new RangeError(`a box at ${offset} has size ${size} (past ${end}, or 64-bit)`);
  return { size, type: view.getUint32(offset + 4) };
}

/** The samples (offset, size) of one traf, from the moof at `moofStart` (default-base-is-moof, as the muxer writes). */
function trafSamples(view: DataView, moofStart: number, start: number, end: number, samples: [number, number][]): void {
  let defaultSize: number | undefined;
  let baseIsMoof = false;
  for (let at = start; at < end;) {
    const { size, type } = boxAt(view, at, end);
    const flags = view.getUint32(at + 8) & 0xffffff;
    if (type === TFHD) {
      if (flags & TFHD_BASE_DATA_OFFSET) throw new RangeError('tfhd with an explicit base data offset is not written here');
      baseIsMoof = (flags & TFHD_DEFAULT_BASE_IS_MOOF) !== 0;
      let field = at + 16;
      if (flags & TFHD_SAMPLE_DESCRIPTION_INDEX) field += 4;
      if (flags & TFHD_DEFAULT_SAMPLE_DURATION) field += 4;
      if (flags & TFHD_DEFAULT_SAMPLE_SIZE) defaultSize = view.getUint32(field);
      if (flags & TFHD_DEFAULT_SAMPLE_SIZE) field += 4;
      if (flags & TFHD_DEFAULT_SAMPLE_FLAGS) field += 4;
    } else if (type === TRUN) {
      if (!baseIsMoof || !(flags & TRUN_DATA_OFFSET)) throw new RangeError('a trun needs a data offset from a default-base-is-moof tfhd');
      const count = view.getUint32(at + 12);
      let offset = moofStart + view.getInt32(at + 16);
      let field = at + 20 + (flags & TRUN_FIRST_SAMPLE_FLAGS ? 4 : 0);
      for (let index = 0; index < count; index += 1) {
        if (flags & TRUN_SAMPLE_DURATION) field += 4;
        let sampleSize = defaultSize;
        if (flags & TRUN_SAMPLE_SIZE) {
          sampleSize = view.getUint32(field);
          field += 4;
        }
        if (flags & TRUN_SAMPLE_FLAGS) field += 4;
        if (flags & TRUN_SAMPLE_CTO) field += 4;
        if (sampleSize === undefined) throw new RangeError('a trun sample has no size');
        samples.push([offset, sampleSize]);
        offset += sampleSize;
      }
      if (field > at + size) throw new RangeError('a trun runs past its box');
    }
    at += size;
  }
}

/**
 * A copy of the CMAF chunk `chunk` (optional emsg boxes, then moof + mdat pairs, as
 * `Fmp4Muxer.muxSegment` writes) with every sample's whole blocks run through `cipher` from
 * `iv`: encryption with an encrypting cipher, decryption with a decrypting one. Throws when a
 * sample lies outside the mdat that follows its moof.
 */
export function cryptChunkCbcs(chunk: Uint8Array, iv: Uint8Array, cipher: CbcBlockCipher): Uint8Array {
  checkSixteen('the IV', iv);
  // A copy (a Buffer's slice() would be a view: the caller's clear bytes must stay clear).
  const out = new Uint8Array(chunk.length);
  out.set(chunk);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const samples: [number, number][] = [];
  let moofStart: number | undefined;
  for (let at = 0; at < out.length;) {
    const { size, type } = boxAt(view, at, out.length);
    if (type === MOOF) {
      moofStart = at;
      samples.length = 0;
      for (let child = at + 8; child < at + size;) {
        const inner = boxAt(view, child, at + size);
        if (inner.type === TRAF) trafSamples(view, at, child + 8, child + inner.size, samples);
        child += inner.size;
      }
    } else if (type === MDAT) {
      if (moofStart === undefined) throw new RangeError('an mdat with no moof before it');
      for (const [offset, sampleSize] of samples) {
        if (offset < at + 8 || offset + sampleSize > at + size) throw new RangeError(`a sample at ${offset} (${sampleSize} bytes) is outside its mdat`);
        cryptSampleCbcs(out.subarray(offset, offset + sampleSize), iv, cipher);
      }
      moofStart = undefined;
      samples.length = 0;
    }
    at += size;
  }
  return out;
}

/**
 * The inverse of encryption (`cryptChunkCbcs` with an encrypting cipher): a copy of the stored
 * chunk `chunk` with every sample's whole blocks decrypted by `decrypt` from `iv`, the clear
 * chunk the muxer wrote (docs/architecture.md, "Recordings and mounts of encrypted channels").
 * Throws as cryptChunkCbcs does.
 */
export function decryptChunkCbcs(chunk: Uint8Array, iv: Uint8Array, decrypt: CbcBlockCipher): Uint8Array {
  return cryptChunkCbcs(chunk, iv, decrypt);
}

/** Boxes walked down to the sample entries; stsd's body starts with version/flags and entry_count. */
const INIT_CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl']);
const STSD_FIELDS = 8;
/** SampleEntry (6 reserved + data_reference_index) and AudioSampleEntry's fields before its child boxes (14496-12 §8.5.2, §12.2.3). */
const AUDIO_SAMPLE_ENTRY_FIELDS = 28;

function typeText(view: DataView, offset: number): string {
  return String.fromCharCode(view.getUint8(offset + 4), view.getUint8(offset + 5), view.getUint8(offset + 6), view.getUint8(offset + 7));
}

/** The boxes of `bytes` from `start` to `end`, each cleared of its protection. */
function clearBoxes(bytes: Uint8Array, view: DataView, start: number, end: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = start; at < end;) {
    const { size } = boxAt(view, at, end);
    const type = typeText(view, at);
    if (type === 'pssh') {
      // The protection system's data: a clear file has none.
    } else if (INIT_CONTAINERS.has(type)) {
      out.push(box(type, ...clearBoxes(bytes, view, at + 8, at + size)));
    } else if (type === 'stsd') {
      const entries = clearEntries(bytes, view, at + 8 + STSD_FIELDS, at + size);
      out.push(box('stsd', bytes.subarray(at + 8, at + 8 + STSD_FIELDS), ...entries));
    } else {
      out.push(bytes.subarray(at, at + size));
    }
    at += size;
  }
  return out;
}

/** stsd's sample entries: an `enca` becomes the entry its frma names (`mp4a`) without its sinf; others stay. */
function clearEntries(bytes: Uint8Array, view: DataView, start: number, end: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = start; at < end;) {
    const { size } = boxAt(view, at, end);
    if (typeText(view, at) !== 'enca') {
      out.push(bytes.subarray(at, at + size));
      at += size;
      continue;
    }
    const fieldsEnd = at + 8 + AUDIO_SAMPLE_ENTRY_FIELDS;
    if (fieldsEnd > at + size) throw new RangeError(`an enca sample entry at ${at} is too short`);
    const children: Uint8Array[] = [];
    let original: string | undefined;
    for (let child = fieldsEnd; child < at + size;) {
      const inner = boxAt(view, child, at + size);
      if (typeText(view, child) === 'sinf') {
        for (let part = child + 8; part < child + inner.size;) {
          const sinfChild = boxAt(view, part, child + inner.size);
          if (typeText(view, part) === 'frma' && sinfChild.size >= 12) original = typeText(view, part + 4);
          part += sinfChild.size;
        }
      } else {
        children.push(bytes.subarray(child, child + inner.size));
      }
      child += inner.size;
    }
    if (original === undefined) throw new RangeError(`the enca sample entry at ${at} has no sinf/frma naming its original format`);
    out.push(box(original, bytes.subarray(at + 8, fieldsEnd), ...children));
    at += size;
  }
  return out;
}

/**
 * The clear init segment of a cbcs-protected one (the inverse of initSegmentFor's protection):
 * every `enca` sample entry becomes the entry its `frma` names (`mp4a`), without its `sinf`,
 * and moov loses its `pssh` boxes; the rest is copied as it is, sizes rewritten. So
 * `clearInitSegment(initSegmentFor(format, protection))` is `initSegmentFor(format)` byte for
 * byte, and a clear init comes back unchanged (a copy). Throws RangeError on malformed boxes.
 */
export function clearInitSegment(init: Uint8Array): Uint8Array {
  const view = new DataView(init.buffer, init.byteOffset, init.byteLength);
  const boxes = clearBoxes(init, view, 0, init.length);
  const out = new Uint8Array(boxes.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of boxes) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** 16 bytes as a UUID's text (`1077efec-c0b2-…`): DASH's cenc:default_KID. */
export function uuidText(bytes: Uint8Array): string {
  checkSixteen('a UUID', bytes);
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
