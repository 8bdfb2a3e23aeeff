/**
 * A session's chapters (docs/architecture.md, Chapters in recordings): from the chapter lines
 * of its index to the chapters of its file, and its cue sheet. Pure.
 *
 * Cue sheet: the CDRWIN format most players and splitters read (foobar2000, cuetools,
 * shntool): one FILE, then per chapter `TRACK nn AUDIO` with TITLE, PERFORMER and
 * `INDEX 01 mm:ss:ff` (ff: 1/75 s; minutes go past 99). The format has no escape for `"`
 * (it becomes `'`), some readers take `\"` for a quote inside the string (a backslash before
 * the closing quote is dropped), and it allows 99 tracks: the chapters after the 99th are in
 * the `.m4a` only, and a REM line says how many.
 */
import type { RecordedChapter } from './recording-files.js';
import { sameText, type ChapterText } from './now-playing-timeline.js';

/** A chapter of the stitched file. */
export interface SessionChapter extends ChapterText {
  startSeconds: number;
  endSeconds: number;
}

/** Tracks a cue sheet may hold (the CD's limit, which readers enforce). */
export const MAX_CUE_TRACKS = 99;
/** Cue frames per second. */
const CUE_FRAMES_PER_SECOND = 75;
/** Offsets are sums of frame durations: closer than this is the same point. */
const SAME_POINT_SECONDS = 1e-6;

/**
 * The chapters of a session of `totalSeconds` (its kept segments): in offset order, the last
 * of several at one offset, none past the end (a dropped tail's), none repeating the one
 * before, each ending where the next starts (the last at the end).
 */
export function sessionChapters(recorded: readonly RecordedChapter[], totalSeconds: number): SessionChapter[] {
  const sorted = recorded
    .map((chapter, order) => ({ chapter, order }))
    .filter(({ chapter }) => Number.isFinite(chapter.offsetSeconds) && chapter.offsetSeconds >= 0 && chapter.offsetSeconds < totalSeconds - SAME_POINT_SECONDS)
    .sort((a, b) => a.chapter.offsetSeconds - b.chapter.offsetSeconds || a.order - b.order)
    .map(({ chapter }) => chapter);
  const starts: RecordedChapter[] = [];
  for (const chapter of sorted) {
    const last = starts.at(-1);
    if (last && chapter.offsetSeconds - last.offsetSeconds < SAME_POINT_SECONDS) starts[starts.length - 1] = chapter;
    else starts.push(chapter);
  }
  const chapters: SessionChapter[] = [];
  for (const chapter of starts) {
    const previous = chapters.at(-1);
    if (previous && sameText(previous, chapter)) continue;
    if (previous) previous.endSeconds = chapter.offsetSeconds;
    chapters.push({ ...textOf(chapter), startSeconds: chapter.offsetSeconds, endSeconds: totalSeconds });
  }
  return chapters;
}

/** What players show for a chapter: `Artist - Title`, or the title alone. */
export function chapterTitle(chapter: ChapterText): string {
  return chapter.artist === undefined ? chapter.title : `${chapter.artist} - ${chapter.title}`;
}

export interface CueSheetOptions {
  /** The audio file's name beside the cue sheet, e.g. `20261121T231500Z.m4a`. */
  fileName: string;
  /** The sheet's performer and title: the channel and the session. */
  channel: string;
  session: string;
}

/** The cue sheet of `chapters` (at least one) for the file `fileName`. */
export function renderCueSheet(chapters: readonly SessionChapter[], options: CueSheetOptions): string {
  const lines = ['REM COMMENT "onair"', `PERFORMER ${cueString(options.channel)}`, `TITLE ${cueString(`${options.channel} ${options.session}`)}`];
  if (chapters.length > MAX_CUE_TRACKS) lines.push(`REM COMMENT ${cueString(`${chapters.length - MAX_CUE_TRACKS} more chapters in the .m4a`)}`);
  // WAVE: the type readers expect for any audio file (the format predates MP4).
  lines.push(`FILE ${cueString(options.fileName)} WAVE`);
  for (const [index, chapter] of chapters.slice(0, MAX_CUE_TRACKS).entries()) {
    lines.push(`  TRACK ${String(index + 1).padStart(2, '0')} AUDIO`, `    TITLE ${cueString(chapter.title)}`);
    if (chapter.artist !== undefined) lines.push(`    PERFORMER ${cueString(chapter.artist)}`);
    lines.push(`    INDEX 01 ${cueTime(chapter.startSeconds)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A quoted cue string: no quotes, controls or line breaks inside, no backslash before the closing quote. */
export function cueString(text: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/"/g, "'").replace(/\\+$/, '');
  return `"${cleaned}"`;
}

/** `mm:ss:ff` (75 frames a second; minutes unbounded), to the nearest frame. */
export function cueTime(seconds: number): string {
  const frames = Math.round(seconds * CUE_FRAMES_PER_SECOND);
  const minutes = Math.floor(frames / (60 * CUE_FRAMES_PER_SECOND));
  const rest = frames - minutes * 60 * CUE_FRAMES_PER_SECOND;
  const two = (value: number): string => String(value).padStart(2, '0');
  return `${two(minutes)}:${two(Math.floor(rest / CUE_FRAMES_PER_SECOND))}:${two(rest % CUE_FRAMES_PER_SECOND)}`;
}

function textOf(chapter: ChapterText): ChapterText {
  return { title: chapter.title, ...(chapter.artist !== undefined ? { artist: chapter.artist } : {}), ...(chapter.album !== undefined ? { album: chapter.album } : {}) };
}
