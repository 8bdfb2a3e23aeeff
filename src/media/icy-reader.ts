/**
 * Reads a stream an Icecast or SHOUTcast server sent with ICY metadata (asked for with
 * `Icy-MetaData: 1`, answered with `icy-metaint: N`): after every N audio bytes comes one
 * length byte L, then L × 16 bytes of metadata text (`StreamTitle='Artist - Title';StreamUrl='…';`,
 * zero-padded). `IcyReader` splits the audio from the blocks across any chunk boundaries
 * and reports each StreamTitle; `streamTitleOf` reads one block. Pure: no I/O.
 * (docs/architecture.md, Icecast inputs.)
 */

export interface IcyChunk {
  /** Audio bytes, metadata removed (views into the pushed chunks). */
  audio: Uint8Array[];
  /** StreamTitle of each metadata block that carried one, in order. */
  titles: string[];
}

/** The longest block: one length byte counts 16-byte units. */
export const MAX_ICY_BLOCK_BYTES = 255 * 16;

export class IcyReader {
  private readonly metaint: number;
  /** Audio bytes still to come before the next length byte. */
  private audioLeft: number;
  /** The block being read, when inside one. */
  private block: Uint8Array | undefined;
  private blockFilled = 0;
  /** Metadata blocks seen so far (empty ones included). */
  blocks = 0;

  constructor(metaint: number) {
    if (!Number.isInteger(metaint) || metaint < 1) throw new RangeError(`icy-metaint must be a positive integer, not ${metaint}`);
    this.metaint = metaint;
    this.audioLeft = metaint;
  }

  push(chunk: Uint8Array): IcyChunk {
    const result: IcyChunk = { audio: [], titles: [] };
    let offset = 0;
    while (offset < chunk.length) {
      if (this.block !== undefined) {
        const take = Math.min(this.block.length - this.blockFilled, chunk.length - offset);
        this.block.set(chunk.subarray(offset, offset + take), this.blockFilled);
        this.blockFilled += take;
        offset += take;
        if (this.blockFilled === this.block.length) this.endBlock(this.block, result);
      } else if (this.audioLeft > 0) {
        const take = Math.min(this.audioLeft, chunk.length - offset);
        result.audio.push(chunk.subarray(offset, offset + take));
        this.audioLeft -= take;
        offset += take;
      } else {
        const length = chunk[offset]! * 16;
        offset += 1;
        this.blocks += 1;
        if (length === 0) this.audioLeft = this.metaint;
        else {
          this.block = new Uint8Array(length);
          this.blockFilled = 0;
        }
      }
    }
    return result;
  }

  private endBlock(block: Uint8Array, result: IcyChunk): void {
    this.block = undefined;
    this.audioLeft = this.metaint;
    const title = streamTitleOf(block);
    if (title !== undefined) result.titles.push(title);
  }
}

/**
 * The StreamTitle of one metadata block, or undefined when it has none. Text is UTF-8, or
 * Latin-1 when it is not valid UTF-8 (older servers). A title may itself contain `'`: it ends
 * at the first `';` (or the block's end).
 */
export function streamTitleOf(block: Uint8Array): string | undefined {
  let end = block.indexOf(0);
  if (end < 0) end = block.length;
  const bytes = block.subarray(0, end);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    text = new TextDecoder('latin1').decode(bytes);
  }
  const start = text.indexOf("StreamTitle='");
  if (start < 0) return undefined;
  const valueStart = start + "StreamTitle='".length;
  const close = text.indexOf("';", valueStart);
  const value = close < 0 ? text.slice(valueStart).replace(/'$/, '') : text.slice(valueStart, close);
  return value;
}
