/**
 * The line structure every playlist shares (RFC 8216 §4.1): `#EXTM3U` first, then lines
 * ended by LF or CR LF that are tags (`#EXT…`), comments (other `#` lines, ignored),
 * URIs, or blank (ignored). A tag splits into its name and its value at the first colon.
 */
import { PlaylistParseError } from './playlist-parse-error.js';

export const HEADER = '#EXTM3U';
export const VERSION = '#EXT-X-VERSION';

export type PlaylistLine =
  | { kind: 'tag'; name: string; value: string; number: number }
  | { kind: 'uri'; uri: string; number: number };

/** The tag and URI lines after the header; throws PlaylistParseError when the header is missing. */
export function readPlaylistLines(text: string): PlaylistLine[] {
  const raw = text.split(/\r?\n|\r/);
  if (raw[0] !== HEADER) throw new PlaylistParseError(`the first line is not ${HEADER}`, 1);
  const lines: PlaylistLine[] = [];
  for (let index = 1; index < raw.length; index++) {
    const line = raw[index]!;
    const number = index + 1;
    if (line.trim() === '') continue;
    if (!line.startsWith('#')) {
      lines.push({ kind: 'uri', uri: line, number });
    } else if (line.startsWith('#EXT')) {
      const colon = line.indexOf(':');
      lines.push(
        colon === -1 ? { kind: 'tag', name: line, value: '', number } : { kind: 'tag', name: line.slice(0, colon), value: line.slice(colon + 1), number },
      );
    }
  }
  return lines;
}

/** Joins lines with LF and ends the text with one. */
export function joinPlaylistLines(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}

/** Tags that may appear once per playlist (§4.3.1, §4.3.3): a second one is an error. */
export class OnceTags {
  private readonly seen = new Set<string>();

  check(name: string): void {
    if (this.seen.has(name)) throw new PlaylistParseError(`${name} appears twice`);
    this.seen.add(name);
  }
}
