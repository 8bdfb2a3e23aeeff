/**
 * The little of HLS playlist parsing a simulated listener needs (RFC 8216 §4.3): the variant
 * URIs of a master playlist, and the target duration, media sequence and segments (EXTINF and
 * URI) of a media playlist. URIs are resolved once, at parse time, to paths on the same host.
 * No I/O; parsed playlists are frozen so that listeners can share them.
 */

export interface MediaSegment {
  msn: number;
  durationSeconds: number;
  /** Absolute path (and query) on the server that served the playlist. */
  path: string;
}

export interface MediaPlaylist {
  targetDurationSeconds: number;
  segments: readonly MediaSegment[];
  /** MSN of the last segment, or firstMsn - 1 when the playlist lists none. */
  lastMsn: number;
  /** Sum of the EXTINF durations: where the live edge is on the playlist's own timeline. */
  totalSeconds: number;
}

/** The absolute paths of a master playlist's variant streams (§4.3.4.2), in listing order. */
export function parseMasterPlaylist(text: string, playlistPath: string): string[] {
  const lines = text.split('\n');
  const variants: string[] = [];
  for (let index = 0; index < lines.length; index++) {
    if (!lines[index]!.startsWith('#EXT-X-STREAM-INF:')) continue;
    const uri = nextUri(lines, index + 1);
    if (uri !== undefined) variants.push(resolvePath(uri, playlistPath));
  }
  if (variants.length === 0) throw new Error(`master playlist ${playlistPath} lists no variant stream`);
  return variants;
}

export function parseMediaPlaylist(text: string, playlistPath: string): MediaPlaylist {
  let targetDurationSeconds = Number.NaN;
  let msn = 0;
  let pendingDuration: number | undefined;
  const segments: MediaSegment[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '') continue;
    if (line.startsWith('#EXT-X-TARGETDURATION:')) targetDurationSeconds = Number(afterColon(line));
    else if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) msn = Number(afterColon(line));
    else if (line.startsWith('#EXTINF:')) pendingDuration = Number.parseFloat(afterColon(line));
    else if (!line.startsWith('#') && pendingDuration !== undefined) {
      segments.push(Object.freeze({ msn, durationSeconds: pendingDuration, path: resolvePath(line, playlistPath) }));
      msn += 1;
      pendingDuration = undefined;
    }
  }
  if (!(targetDurationSeconds > 0)) throw new Error(`media playlist ${playlistPath} has no EXT-X-TARGETDURATION`);
  const totalSeconds = segments.reduce((sum, segment) => sum + segment.durationSeconds, 0);
  return Object.freeze({ targetDurationSeconds, segments: Object.freeze(segments), lastMsn: msn - 1, totalSeconds });
}

function afterColon(line: string): string {
  return line.slice(line.indexOf(':') + 1);
}

function nextUri(lines: string[], from: number): string | undefined {
  for (let index = from; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line !== '' && !line.startsWith('#')) return line;
  }
  return undefined;
}

/** A URI relative to the playlist (§4.1), or absolute, as a path on the same host. */
function resolvePath(uri: string, playlistPath: string): string {
  const resolved = new URL(uri, `http://origin${playlistPath}`);
  return resolved.pathname + resolved.search;
}
