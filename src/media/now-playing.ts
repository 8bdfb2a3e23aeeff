/**
 * A channel's "now playing": what one update (the control API, Icecast's admin endpoint, a
 * source client, a pulled stream's StreamTitle) sets once and every format shows: ICY
 * StreamTitle on progressive mounts, ID3 in HLS segments, /channels.json and the player page,
 * chapter marks in recordings (docs/architecture.md, Now playing). Pure: the store keeps it as
 * the JSON `serializeNowPlaying` writes; callers turn a `NowPlayingProblem` into their error.
 */

export interface NowPlaying {
  title: string;
  artist?: string;
  album?: string;
  artworkUrl?: string;
  durationSeconds?: number;
  /** When it was set (ms since the epoch). */
  setAt: number;
}

/** Longest title, artist or album kept (characters); longer text is truncated, not refused. */
export const MAX_NOW_PLAYING_TEXT = 256;
/** Longest artwork URL kept; a longer one is refused (a truncated URL is a wrong URL). */
export const MAX_ARTWORK_URL = 1024;
/** Durations above a day are refused: no track is that long. */
export const MAX_DURATION_SECONDS = 86_400;

export interface NowPlayingProblem {
  /** The field at fault, e.g. `title`. */
  field: string;
  message: string;
}

// C0 and C1 controls and DEL; tabs and newlines become spaces first.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/** Strips control characters (a StreamTitle or ID3 frame must never carry them) and truncates to `max` characters. */
export function cleanText(text: string, max: number = MAX_NOW_PLAYING_TEXT): string {
  const cleaned = text.replace(/[\t\r\n]+/g, ' ').replace(CONTROL_CHARACTERS, '').trim();
  const characters = [...cleaned];
  return characters.length <= max ? cleaned : characters.slice(0, max).join('');
}

/**
 * Checks and cleans an update (`{ title, artist?, album?, artworkUrl?, durationSeconds? }`)
 * from any client: a `NowPlaying`, or the problem to answer with 400.
 */
export function nowPlayingFrom(input: unknown, setAt: number): NowPlaying | NowPlayingProblem {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { field: '', message: 'expected an object with a title' };
  const fields = input as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!['title', 'artist', 'album', 'artworkUrl', 'durationSeconds'].includes(key)) return { field: key, message: 'unknown field' };
  }
  const texts: Partial<Record<'title' | 'artist' | 'album', string>> = {};
  for (const key of ['title', 'artist', 'album'] as const) {
    const value = fields[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') return { field: key, message: 'expected a string' };
    const cleaned = cleanText(value);
    if (cleaned !== '') texts[key] = cleaned;
  }
  if (texts.title === undefined) return { field: 'title', message: 'expected a non-empty title' };
  const nowPlaying: NowPlaying = { title: texts.title, setAt };
  if (texts.artist !== undefined) nowPlaying.artist = texts.artist;
  if (texts.album !== undefined) nowPlaying.album = texts.album;
  const artworkUrl = fields['artworkUrl'];
  if (artworkUrl !== undefined) {
    if (typeof artworkUrl !== 'string' || artworkUrl.length > MAX_ARTWORK_URL || !isWebUrl(artworkUrl)) {
      return { field: 'artworkUrl', message: `expected an http(s) URL of at most ${MAX_ARTWORK_URL} characters` };
    }
    nowPlaying.artworkUrl = artworkUrl;
  }
  const duration = fields['durationSeconds'];
  if (duration !== undefined) {
    if (typeof duration !== 'number' || !Number.isFinite(duration) || duration <= 0 || duration > MAX_DURATION_SECONDS) {
      return { field: 'durationSeconds', message: `expected a number of seconds between 0 and ${MAX_DURATION_SECONDS}` };
    }
    nowPlaying.durationSeconds = duration;
  }
  return nowPlaying;
}

export function isNowPlayingProblem(value: NowPlaying | NowPlayingProblem): value is NowPlayingProblem {
  return 'message' in value;
}

/**
 * The now playing from one Icecast-style song string (`Artist - Title`, as automation systems
 * and source clients send it): split at the first ` - `, or all title when there is none.
 */
export function nowPlayingFromSong(song: string, setAt: number): NowPlaying | NowPlayingProblem {
  const cleaned = cleanText(song, MAX_NOW_PLAYING_TEXT * 2 + 3);
  const separator = cleaned.indexOf(' - ');
  if (separator > 0) {
    return nowPlayingFrom({ artist: cleaned.slice(0, separator), title: cleaned.slice(separator + 3) }, setAt);
  }
  return nowPlayingFrom({ title: cleaned }, setAt);
}

/** What ICY StreamTitle and one-line displays show: `Artist - Title`, or the title alone. */
export function displayTitle(nowPlaying: Pick<NowPlaying, 'title' | 'artist'>): string {
  return nowPlaying.artist === undefined ? nowPlaying.title : `${nowPlaying.artist} - ${nowPlaying.title}`;
}

export function serializeNowPlaying(nowPlaying: NowPlaying): string {
  return JSON.stringify(nowPlaying);
}

/** Reads what `serializeNowPlaying` wrote; null for anything else (the store is trusted, but not blindly). */
export function parseNowPlaying(json: string | null): NowPlaying | null {
  if (json === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { setAt, ...update } = value as Record<string, unknown>;
  if (typeof setAt !== 'number') return null;
  const nowPlaying = nowPlayingFrom(update, setAt);
  return isNowPlayingProblem(nowPlaying) ? null : nowPlaying;
}

function isWebUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const protocol = new URL(text).protocol;
  return protocol === 'http:' || protocol === 'https:';
}
