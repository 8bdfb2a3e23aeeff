/**
 * The MPEG audio frames of an HLS packed-audio segment (RFC 8216 §3.4: ID3v2 tags, id3.org
 * ID3v2.4 §3.1, then raw frames), as progressive mounts read them
 * (docs/architecture.md, Progressive mounts). Frame headers are src/media/mpeg-audio.ts's (Layer III, what onair
 * writes). Pure; bad bytes are skipped and counted, nothing throws on input.
 */
import { parseMpegAudioHeader, type MpegAudioFrame, type MpegAudioHeader } from './mpeg-audio.js';

const HEADER_BYTES = 4;
const ID3_HEADER_BYTES = 10;

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
    frames.push({ data: bytes.subarray(position, end), sampleRate: header.sampleRate, channelCount: header.channelCount, samples: header.samples });
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
  return a.version === b.version && a.sampleRate === b.sampleRate;
}
