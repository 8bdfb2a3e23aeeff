/**
 * ICY in-stream metadata, the SHOUTcast/Icecast convention (docs/architecture.md, Progressive mounts).
 * A client that sends `Icy-MetaData: 1` gets `icy-metaint: N` and, after every N
 * audio bytes, one metadata block: a length byte L, then L × 16 bytes of text
 * (`StreamTitle='…';`) padded with NULs. L = 0 (one zero byte) means "unchanged".
 * Pure: builds blocks and interleaves them into audio chunks of any size.
 */

/** A metadata block's length byte counts units of 16 bytes. */
export const ICY_BLOCK_UNIT = 16;
/** The length byte is at most 255: 4080 bytes of text. */
export const MAX_ICY_TEXT_BYTES = 255 * ICY_BLOCK_UNIT;
/** The metaint Icecast and SHOUTcast use. */
export const DEFAULT_METAINT = 16000;

/** The one-byte block a client reads as "no change". */
export const EMPTY_ICY_BLOCK: Uint8Array = Uint8Array.of(0);

const STREAM_TITLE_OVERHEAD = "StreamTitle='';".length;
const encoder = new TextEncoder();

/**
 * The title as it goes between the quotes of `StreamTitle='…';`. Players find the end of the
 * value at `';`, so a single quote inside would cut it short: it becomes the typographic
 * apostrophe (’). NULs, which would end the block early, are removed.
 */
export function icyTitleText(title: string): string {
  // eslint-disable-next-line no-control-regex
  return title.replace(/'/g, '\u2019').replace(/\u0000/g, '');
}

/**
 * The block carrying `StreamTitle='<title>';` (UTF-8), NUL-padded to a multiple of 16 bytes.
 * A title too long for one block (4080 bytes) is cut on a character boundary.
 */
export function icyMetadataBlock(title: string): Uint8Array {
  const characters = [...icyTitleText(title)];
  let text = encoder.encode(`StreamTitle='${characters.join('')}';`);
  if (text.length > MAX_ICY_TEXT_BYTES) {
    // Keep the characters that fit whole.
    let budget = MAX_ICY_TEXT_BYTES - STREAM_TITLE_OVERHEAD;
    let kept = 0;
    for (; kept < characters.length; kept++) {
      const size = encoder.encode(characters[kept]!).length;
      if (size > budget) break;
      budget -= size;
    }
    text = encoder.encode(`StreamTitle='${characters.slice(0, kept).join('')}';`);
  }
  const units = Math.ceil(text.length / ICY_BLOCK_UNIT);
  const block = new Uint8Array(1 + units * ICY_BLOCK_UNIT);
  block[0] = units;
  block.set(text, 1);
  return block;
}

/**
 * Puts a metadata block after every `metaint` audio bytes of one listener's stream, whatever
 * the sizes of the chunks pushed. The first block carries the title known at that moment (or is
 * empty when there is none); later blocks carry a title only when it changed since the last one
 * sent, so a change is on the wire within `metaint` audio bytes.
 */
export class IcyInterleaver {
  private untilBlock: number;
  private title: string | undefined;
  private sentTitle: string | undefined;

  constructor(
    readonly metaint: number,
    title?: string,
  ) {
    if (!Number.isSafeInteger(metaint) || metaint < 1) throw new RangeError(`metaint must be a positive integer, got ${metaint}`);
    this.untilBlock = metaint;
    this.title = title;
  }

  /** The title the next block announces if it differs from the last one sent. */
  setTitle(title: string | undefined): void {
    this.title = title;
  }

  /** `chunk` cut at the block positions, with the blocks in between: views of `chunk`, no copy. */
  interleave(chunk: Uint8Array): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    let offset = 0;
    while (chunk.length - offset >= this.untilBlock) {
      pieces.push(chunk.subarray(offset, offset + this.untilBlock));
      offset += this.untilBlock;
      pieces.push(this.nextBlock());
      this.untilBlock = this.metaint;
    }
    if (offset < chunk.length) {
      pieces.push(offset === 0 ? chunk : chunk.subarray(offset));
      this.untilBlock -= chunk.length - offset;
    }
    return pieces;
  }

  private nextBlock(): Uint8Array {
    if (this.title === undefined || this.title === this.sentTitle) return EMPTY_ICY_BLOCK;
    this.sentTitle = this.title;
    return icyMetadataBlock(this.title);
  }
}
