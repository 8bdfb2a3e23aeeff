/**
 * ID3v2.4 tags, the payload of timed metadata in HLS (Apple, "Timed Metadata for HTTP Live
 * Streaming": an ID3 tag per metadata PES in MPEG-TS; the same tag goes in a packed-audio
 * segment's head or an fMP4 `emsg`). Pure: bytes in, bytes out.
 * docs/architecture.md, "Timed metadata".
 *
 * The layout follows id3.org's "ID3 tag version 2.4.0 - Main Structure": a 10-byte header
 * ('ID3', version 4.0, flags, a syncsafe size, §3.1), then frames, each a 10-byte header (a
 * four-character id, a syncsafe size, two flag bytes, §4.1) and a body. Text frames (§4.2 of
 * "Native Frames") start with the encoding byte, here always 3 (UTF-8, §4), and carry one
 * string without a terminator; TXXX (§4.2.6) carries a description, a 0 byte, then the value.
 * No padding, footer, unsynchronisation or extended header: readers need none of them.
 */
import type { NowPlaying } from './now-playing.js';

/** A text information frame (TIT2, TPE1, TALB, TLEN, …) or, with a description, a TXXX. */
export type Id3Frame = { id: string; text: string } | { id: 'TXXX'; description: string; text: string };

/** The TXXX description under which the artwork URL travels (no native ID3 frame holds a picture URL). */
export const ARTWORK_URL_DESCRIPTION = 'artworkUrl';

const HEADER_BYTES = 10;
/** Text encoding byte: $03 is UTF-8 (ID3v2.4 Main Structure §4). */
const ENCODING_UTF8 = 3;
/** A syncsafe integer holds 28 bits (§6.2). */
const MAX_SYNCSAFE = 0x0fff_ffff;

const utf8 = new TextEncoder();

/**
 * The frames that carry a now playing: TIT2 (title), TPE1 (artist), TALB (album), TLEN
 * (length in milliseconds), and the artwork URL as TXXX `artworkUrl`.
 */
export function nowPlayingFrames(nowPlaying: NowPlaying): Id3Frame[] {
  const frames: Id3Frame[] = [{ id: 'TIT2', text: nowPlaying.title }];
  if (nowPlaying.artist !== undefined) frames.push({ id: 'TPE1', text: nowPlaying.artist });
  if (nowPlaying.album !== undefined) frames.push({ id: 'TALB', text: nowPlaying.album });
  if (nowPlaying.durationSeconds !== undefined) frames.push({ id: 'TLEN', text: String(Math.round(nowPlaying.durationSeconds * 1000)) });
  if (nowPlaying.artworkUrl !== undefined) frames.push({ id: 'TXXX', description: ARTWORK_URL_DESCRIPTION, text: nowPlaying.artworkUrl });
  return frames;
}

/** The ID3v2.4 tag of a now playing (see nowPlayingFrames). */
export function nowPlayingId3Tag(nowPlaying: NowPlaying): Uint8Array {
  return buildId3Tag(nowPlayingFrames(nowPlaying));
}

/** An ID3v2.4 tag holding `frames`, in order, UTF-8 text. */
export function buildId3Tag(frames: readonly Id3Frame[]): Uint8Array {
  const bodies = frames.map((frame) => {
    if (!/^[A-Z0-9]{4}$/.test(frame.id)) throw new RangeError(`"${frame.id}" is not an ID3v2.4 frame id`);
    const text = utf8.encode(frame.text);
    // TXXX: the description and its 0 terminator come before the value.
    const description = 'description' in frame ? utf8.encode(frame.description) : undefined;
    const head = description === undefined ? 1 : 1 + description.length + 1;
    const body = new Uint8Array(head + text.length);
    body[0] = ENCODING_UTF8;
    if (description !== undefined) body.set(description, 1); // its terminator is the 0 already there
    body.set(text, head);
    return { id: frame.id, body };
  });
  const size = bodies.reduce((sum, frame) => sum + HEADER_BYTES + frame.body.length, 0);
  const tag = new Uint8Array(HEADER_BYTES + size);
  const view = new DataView(tag.buffer);
  tag.set([0x49, 0x44, 0x33, 4, 0, 0]); // 'ID3', version 2.4.0, flags: none
  view.setUint32(6, syncsafe(size));
  let offset = HEADER_BYTES;
  for (const { id, body } of bodies) {
    for (let index = 0; index < 4; index++) tag[offset + index] = id.charCodeAt(index);
    view.setUint32(offset + 4, syncsafe(body.length)); // ID3v2.4 frame sizes are syncsafe too (§4.1)
    view.setUint16(offset + 8, 0); // frame flags: none
    tag.set(body, offset + HEADER_BYTES);
    offset += HEADER_BYTES + body.length;
  }
  return tag;
}

/** `value` as a syncsafe integer: 7 bits per byte, the top bit of each byte 0 (§6.2). */
export function syncsafe(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_SYNCSAFE) throw new RangeError(`${value} does not fit a syncsafe integer`);
  return ((value & 0x0fe0_0000) << 3) | ((value & 0x001f_c000) << 2) | ((value & 0x0000_3f80) << 1) | (value & 0x7f);
}

