/**
 * Reads an ID3v2.4 tag the way a player does, written apart from src/media/id3.ts so the
 * tests check the writer against the spec's layout, not against itself: header 'ID3' 4 0,
 * syncsafe sizes, frames of a four-character id, text after the encoding byte (UTF-8 or
 * ISO-8859-1), TXXX as description, 0, value.
 */

export interface ReadId3Frame {
  id: string;
  text: string;
  /** TXXX only. */
  description?: string;
}

export function readSyncsafe(bytes: Uint8Array, offset: number): number {
  for (let index = 0; index < 4; index++) if (bytes[offset + index]! & 0x80) throw new Error(`byte ${offset + index} of a syncsafe integer has its top bit set`);
  return (bytes[offset]! << 21) | (bytes[offset + 1]! << 14) | (bytes[offset + 2]! << 7) | bytes[offset + 3]!;
}

/** The frames of the tag at the start of `bytes`; throws on anything that is not a well-formed ID3v2.4 tag. */
export function readId3Tag(bytes: Uint8Array): ReadId3Frame[] {
  if (String.fromCharCode(...bytes.subarray(0, 3)) !== 'ID3' || bytes[3] !== 4 || bytes[4] !== 0) throw new Error('not an ID3v2.4 tag');
  if (bytes[5] !== 0) throw new Error(`unexpected tag flags ${bytes[5]}`);
  const end = 10 + readSyncsafe(bytes, 6);
  if (end > bytes.length) throw new Error(`tag size ${end} runs past the ${bytes.length} bytes`);
  const frames: ReadId3Frame[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let offset = 10;
  while (offset + 10 <= end && bytes[offset] !== 0) {
    const id = String.fromCharCode(...bytes.subarray(offset, offset + 4));
    const size = readSyncsafe(bytes, offset + 4);
    const body = bytes.subarray(offset + 10, offset + 10 + size);
    if (body.length !== size) throw new Error(`frame ${id} runs past the tag`);
    const decode = (part: Uint8Array): string => (body[0] === 3 ? decoder.decode(part) : String.fromCharCode(...part));
    if (id === 'TXXX') {
      const zero = body.indexOf(0, 1);
      frames.push({ id, description: decode(body.subarray(1, zero)), text: decode(body.subarray(zero + 1)) });
    } else {
      frames.push({ id, text: decode(body.subarray(1)) });
    }
    offset += 10 + size;
  }
  if (offset !== end) throw new Error(`frames end at ${offset}, the tag at ${end}`);
  return frames;
}

/** title, artist, album, artworkUrl (TXXX artworkUrl) and length (TLEN) of a now-playing tag. */
export function readNowPlayingTag(bytes: Uint8Array): Record<string, string> {
  const fields: Record<string, string> = {};
  const names: Record<string, string> = { TIT2: 'title', TPE1: 'artist', TALB: 'album', TLEN: 'lengthMs' };
  for (const frame of readId3Tag(bytes)) {
    if (frame.id === 'TXXX') fields[frame.description!] = frame.text;
    else fields[names[frame.id] ?? frame.id] = frame.text;
  }
  return fields;
}
