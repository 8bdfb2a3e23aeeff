/**
 * Icecast's metadata update, `GET /admin/metadata?mode=updinfo&mount=/m&song=Artist%20-%20Title`,
 * as automation systems, Liquidsoap and source clients (BUTT, Mixxx) send it, to the origin
 * (src/origin/icecast-admin.ts) or to a source input's listener (src/ingest/icecast-source.ts),
 * and Icecast's XML replies (docs/architecture.md, Icecast admin endpoint).
 *
 * The query is read from the raw request target: percent-escapes become bytes, then text in
 * the `charset` the client names (UTF-8 when none), so that invalid UTF-8 is refused rather
 * than silently replaced. `song` is `Artist - Title`; without it, `title` and `artist` (some
 * tools send those) are taken. Pure apart from TextDecoder.
 */
import { OnairError } from '../errors.js';
import { isNowPlayingProblem, nowPlayingFrom, nowPlayingFromSong, type NowPlaying } from '../media/now-playing.js';

/** Longest request target read (path and query, in bytes as sent); longer is refused. */
export const MAX_METADATA_REQUEST_LENGTH = 4096;

export interface MetadataUpdate {
  /** The mount named, e.g. `/fip-hifi.aac`; '' when absent. */
  mount: string;
  nowPlaying: NowPlaying;
}

/** The parameters of a raw query string (`a=b&c=%C3%A9`) as bytes: `+` is a space, bad escapes stay as sent. */
export function rawQueryParameters(requestTarget: string): Map<string, Uint8Array> {
  const parameters = new Map<string, Uint8Array>();
  const question = requestTarget.indexOf('?');
  if (question < 0) return parameters;
  for (const pair of requestTarget.slice(question + 1).split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = new TextDecoder().decode(percentDecode(equals < 0 ? pair : pair.slice(0, equals)));
    // The first of a repeated parameter counts, as in Icecast.
    if (!parameters.has(name)) parameters.set(name, percentDecode(equals < 0 ? '' : pair.slice(equals + 1)));
  }
  return parameters;
}

function percentDecode(text: string): Uint8Array {
  const bytes: number[] = [];
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 0x2b) bytes.push(0x20);
    else if (code === 0x25 && /^[0-9a-fA-F]{2}$/.test(text.slice(index + 1, index + 3))) {
      bytes.push(Number.parseInt(text.slice(index + 1, index + 3), 16));
      index += 2;
    } else if (code < 0x80) bytes.push(code);
    else bytes.push(...new TextEncoder().encode(text[index]!));
  }
  return Uint8Array.from(bytes);
}

/**
 * Reads an updinfo request's query: the mount and the now playing it sets. Throws OnairError
 * ONAIR_NOW_PLAYING_INVALID (the parameter named) for another mode, no song nor title, an
 * unknown charset or a too long request, and ONAIR_TEXT_ENCODING for text that is not valid in
 * its charset.
 */
export function metadataUpdateFrom(requestTarget: string, setAt: number): MetadataUpdate {
  if (requestTarget.length > MAX_METADATA_REQUEST_LENGTH) {
    throw new OnairError('ONAIR_NOW_PLAYING_INVALID', `at most ${MAX_METADATA_REQUEST_LENGTH} bytes of request`, { where: 'song' });
  }
  const parameters = rawQueryParameters(requestTarget);
  const charset = parameters.has('charset') ? new TextDecoder().decode(parameters.get('charset')) : 'utf-8';
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset, { fatal: true });
  } catch {
    throw new OnairError('ONAIR_NOW_PLAYING_INVALID', 'unknown charset', { where: 'charset' });
  }
  const text = (name: string): string | undefined => {
    const bytes = parameters.get(name);
    if (bytes === undefined) return undefined;
    try {
      return decoder.decode(bytes);
    } catch {
      throw new OnairError('ONAIR_TEXT_ENCODING', `not valid ${charset}`, { where: name });
    }
  };
  const mode = text('mode');
  if (mode !== 'updinfo') throw new OnairError('ONAIR_NOW_PLAYING_INVALID', 'only mode=updinfo is supported', { where: 'mode' });
  const mount = text('mount') ?? '';
  const song = text('song');
  const title = text('title');
  const artist = text('artist');
  const nowPlaying =
    song !== undefined ? nowPlayingFromSong(song, setAt) : nowPlayingFrom({ title: title ?? '', ...(artist !== undefined ? { artist } : {}) }, setAt);
  if (isNowPlayingProblem(nowPlaying)) {
    throw new OnairError('ONAIR_NOW_PLAYING_INVALID', nowPlaying.message, { where: song !== undefined ? 'song' : nowPlaying.field });
  }
  return { mount, nowPlaying };
}

export const ICECAST_XML_CONTENT_TYPE = 'text/xml; charset=utf-8';

/** Icecast's admin reply: `<iceresponse>` with a message and 1 (done) or 0 (refused). */
export function icecastResponse(message: string, done: boolean): string {
  const escaped = message.replace(/[<>&"']/g, (character) => `&#${character.charCodeAt(0)};`);
  return `<?xml version="1.0"?>\n<iceresponse><message>${escaped}</message><return>${done ? 1 : 0}</return></iceresponse>\n`;
}

export const METADATA_UPDATED = icecastResponse('Metadata update successful', true);
