/**
 * The one error the playlist parser throws: the text is not a playlist this codec can read
 * (RFC 8216 §4 syntax, or a required tag missing). An OnairError with code
 * ONAIR_PLAYLIST_INVALID (src/errors.ts) that also carries the line.
 */
import { OnairError } from '../../errors.js';

export const PLAYLIST_INVALID = 'ONAIR_PLAYLIST_INVALID';

export class PlaylistParseError extends OnairError {
  /** 1-based line of the text the error is about, when it is about one. */
  readonly line: number | undefined;

  constructor(message: string, line?: number) {
    super(PLAYLIST_INVALID, line === undefined ? message : `line ${line}: ${message}`);
    this.name = 'PlaylistParseError';
    this.line = line;
  }

  /** The same error, placed at `line` (tag parsers do not know their line). */
  atLine(line: number): PlaylistParseError {
    return this.line === undefined ? new PlaylistParseError(this.message, line) : this;
  }
}
