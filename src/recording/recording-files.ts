/**
 * What a recording is on disk, under `recordings.dir`:
 *
 *   {dir}/{channel}/{session}/{msn}.ts        the recorded segments (MPEG-TS, one rendition)
 *   {dir}/{channel}/{session}/{msn}.m4s       … of a `container: fmp4` channel (CMAF chunks), and
 *   {dir}/{channel}/{session}/init-{run}.mp4  the init segment of each packager run they come from
 *   {dir}/{channel}/{session}/index.jsonl     the session's index, append-only JSON lines
 *   {dir}/{channel}/{session}/stitch-{nonce}/ one stitch attempt's work: FFmpeg's lists, pieces and
 *                                             the file being stitched (each attempt its own, so the
 *                                             two packagers of a standby pair never write one file)
 *   {dir}/{channel}/{session}.m4a             the stitched file, once the job has made and checked it
 *   {dir}/{channel}/{session}.cue             its cue sheet, when the session has chapters (cue-sheet.ts)
 *
 * A segment file is written before its index line, so a crash loses at most the segment in
 * flight, and a torn last line is skipped when read; an fMP4 init segment is written before the
 * first segment line that names it (docs/architecture.md, "Recordings of fMP4 channels"). A write that fails (a full disk) leaves
 * no partial segment file. The stitched file is fsynced, renamed into place and its directory
 * fsynced before the job records it (publishFile), and the index is fsynced with its end line,
 * so a power loss never leaves a record that says done over an empty file. Index lines:
 *
 *   {"type":"session","channel":"fip","session":"…","rendition":"hifi","trigger":"auto","startedAt":…}
 *   {"type":"segment","msn":12,"durationSeconds":1.002667,"programDateTime":…,"fallback":false}
 *   {"type":"segment","msn":13,…,"initRun":1767225600000417}      fMP4: `13.m4s`, needs `init-{initRun}.mp4`
 *   {"type":"chapter","offsetSeconds":754.005333,"title":"…","artist":"…"}
 *   {"type":"end","lastMsn":40,"reason":"input-lost","endedAt":…}
 *
 * `fallback`: the safety source was on air for the whole segment (the input was gone). Segments
 * after `lastMsn` (a tail of fallback audio) are not part of the session. A session's segments
 * are one continuous timeline of one packager run (session-recorder.ts ends a session where it breaks).
 *
 * A chapter line is a now-playing change (docs/architecture.md, Chapters in recordings): its offset
 * is seconds of the session's audio (the sum of the EXTINF before it, plus where in its segment it
 * came), on a frame edge. It is appended in the same write as the line of the segment it falls in,
 * so it is exactly as durable as that segment's line.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { EndReason, SessionTrigger } from './recording-record.js';
import { isSessionId } from './recording-record.js';

export interface SessionHeader {
  type: 'session';
  channel: string;
  session: string;
  rendition: string;
  trigger: SessionTrigger;
  startedAt: number;
}

export interface RecordedSegment {
  type: 'segment';
  msn: number;
  durationSeconds: number;
  programDateTime: number;
  fallback: boolean;
  /**
   * fMP4 channels only: the packager run whose init segment (`init-{run}.mp4`, beside the
   * segments) this `{msn}.m4s` needs. Absent: an MPEG-TS segment, `{msn}.ts`.
   */
  initRun?: number;
}

/** A now-playing change of the session, as a chapter starts there. */
export interface RecordedChapter {
  type: 'chapter';
  /** Seconds of the session's audio before it (on a frame edge). */
  offsetSeconds: number;
  title: string;
  artist?: string;
  album?: string;
}

export interface SessionEnd {
  type: 'end';
  /** The last segment of the session; undefined when none was kept. */
  lastMsn: number | undefined;
  reason: EndReason;
  endedAt: number;
}

export interface SessionIndex {
  header: SessionHeader;
  /** Every segment line, in order (including a tail after `end.lastMsn`). */
  lines: RecordedSegment[];
  /** Every chapter line, in the order written. */
  chapters: RecordedChapter[];
  end?: SessionEnd;
}

const INDEX_FILE = 'index.jsonl';

export class RecordingFiles {
  /** The recordings directory, absolute. */
  readonly root: string;

  constructor(directory: string) {
    this.root = resolve(directory);
  }

  sessionDir(channel: string, session: string): string {
    return join(this.channelDir(channel), session);
  }

  /** The stitched file, `{channel}/{session}.m4a` under the root. */
  filePath(channel: string, session: string): string {
    return join(this.channelDir(channel), `${session}.m4a`);
  }

  /** Its cue sheet, `{channel}/{session}.cue` under the root. */
  cuePath(channel: string, session: string): string {
    return join(this.channelDir(channel), `${session}.cue`);
  }

  /** Where earlier releases stitched (before per-attempt work directories); removed with the session. */
  partialFilePath(channel: string, session: string): string {
    return `${this.filePath(channel, session)}.part`;
  }

  /** Creates a new, private work directory for one stitch attempt of the session. */
  async createWorkDir(channel: string, session: string): Promise<string> {
    const directory = join(this.sessionDir(channel, session), `stitch-${randomBytes(6).toString('hex')}`);
    await mkdir(directory, { recursive: true });
    return directory;
  }

  /** A recorded segment's file: `{msn}.m4s` for an fMP4 one (with `initRun`), else `{msn}.ts`. */
  segmentFile(segment: Pick<RecordedSegment, 'msn' | 'initRun'>): string {
    return segment.initRun === undefined ? `${segment.msn}.ts` : `${segment.msn}.m4s`;
  }

  /** An fMP4 run's init segment in the session directory: `init-{run}.mp4`. */
  initFile(run: number): string {
    return `init-${run}.mp4`;
  }

  /**
   * Stores an fMP4 run's init segment in the session (before any segment line names it),
   * replacing one of the same run. A failed write (ENOSPC) removes what it left.
   */
  async addInit(channel: string, session: string, run: number, bytes: Uint8Array): Promise<void> {
    const path = join(this.sessionDir(channel, session), this.initFile(run));
    try {
      await writeFile(path, bytes);
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    }
  }

  async createSession(header: SessionHeader): Promise<void> {
    const directory = this.sessionDir(header.channel, header.session);
    await mkdir(directory, { recursive: true });
    try {
      await writeFile(join(directory, INDEX_FILE), `${JSON.stringify(header)}\n`, { flag: 'wx' });
    } catch (error) {
      // A full disk: no session directory without its index is left behind.
      if (isDiskFull(error)) await rm(directory, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Stores a segment's bytes, then its index line with the lines of the chapters that start in
   * it (one append). A failed write (ENOSPC) removes what it left of the segment.
   */
  async addSegment(channel: string, session: string, segment: RecordedSegment, bytes: Uint8Array, chapters: readonly RecordedChapter[] = []): Promise<void> {
    const directory = this.sessionDir(channel, session);
    const path = join(directory, this.segmentFile(segment));
    try {
      await writeFile(path, bytes);
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    }
    await appendFile(join(directory, INDEX_FILE), [segment, ...chapters].map((line) => `${JSON.stringify(line)}\n`).join(''));
  }

  /**
   * Appends a segment's index line (and its chapters') without a file: a gap of its length,
   * which the stitch fills with silence (an encrypted segment whose key was missing).
   */
  async addGap(channel: string, session: string, segment: RecordedSegment, chapters: readonly RecordedChapter[] = []): Promise<void> {
    const directory = this.sessionDir(channel, session);
    await rm(join(directory, this.segmentFile(segment)), { force: true });
    await appendFile(join(directory, INDEX_FILE), [segment, ...chapters].map((line) => `${JSON.stringify(line)}\n`).join(''));
  }

  /**
   * Puts a file read back from the bucket into the session directory (a pulled index, segment
   * or init segment; docs/architecture.md, "Mirrored segments"): written aside, then renamed, so
   * a cut pull never leaves a partial file under the real name.
   */
  async placeFile(channel: string, session: string, name: string, bytes: Uint8Array): Promise<void> {
    const directory = this.sessionDir(channel, session);
    await mkdir(directory, { recursive: true });
    const aside = join(directory, `.${name}.${randomBytes(4).toString('hex')}`);
    try {
      await writeFile(aside, bytes);
      await rename(aside, join(directory, name));
    } catch (error) {
      await rm(aside, { force: true });
      throw error;
    }
  }

  /** The index's name in a session directory. */
  get indexFile(): string {
    return INDEX_FILE;
  }

  /** Appends the end line and fsyncs the index: the session's extent survives a power loss. */
  async endSession(channel: string, session: string, end: SessionEnd): Promise<void> {
    const path = join(this.sessionDir(channel, session), INDEX_FILE);
    await appendFile(path, `${JSON.stringify(end)}\n`);
    await syncFile(path);
  }

  /** The session's index, or undefined when it has none (never recorded here, or removed). */
  async readIndex(channel: string, session: string): Promise<SessionIndex | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.sessionDir(channel, session), INDEX_FILE), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return parseSessionIndex(text);
  }

  /** Sessions with a directory under the channel, sorted (that is, in time order). */
  async sessionsOnDisk(channel: string): Promise<string[]> {
    try {
      const entries = await readdir(this.channelDir(channel), { withFileTypes: true });
      return entries.filter((entry) => entry.isDirectory() && isSessionId(entry.name)).map((entry) => entry.name).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async exists(path: string): Promise<boolean> {
    return stat(path).then(
      () => true,
      () => false,
    );
  }

  /** Removes segment files (a bare MSN is an MPEG-TS one); init segments stay (deleteInits). */
  async deleteSegments(channel: string, session: string, segments: readonly (number | Pick<RecordedSegment, 'msn' | 'initRun'>)[]): Promise<void> {
    const directory = this.sessionDir(channel, session);
    const names = segments.map((segment) => this.segmentFile(typeof segment === 'number' ? { msn: segment } : segment));
    await Promise.all(names.map((name) => rm(join(directory, name), { force: true })));
  }

  /** Removes the init segments the fMP4 ones among `segments` need (once none of them is needed any more). */
  async deleteInits(channel: string, session: string, segments: readonly Pick<RecordedSegment, 'initRun'>[]): Promise<void> {
    const directory = this.sessionDir(channel, session);
    const runs = new Set(segments.flatMap((segment) => (segment.initRun === undefined ? [] : [segment.initRun])));
    await Promise.all([...runs].map((run) => rm(join(directory, this.initFile(run)), { force: true })));
  }

  /**
   * Moves a checked stitch result (the `.m4a`, or the cue sheet with `target`) into place,
   * durably: the file is fsynced, renamed (atomic on one file system) and the directory
   * fsynced, so the name and the bytes are on disk before anyone records the session as stitched.
   */
  async publishFile(channel: string, session: string, stitchedPath: string, target = this.filePath(channel, session)): Promise<void> {
    await syncFile(stitchedPath);
    await rename(stitchedPath, target);
    await syncDirectory(dirname(target));
  }

  /** Bytes the session takes on disk: its file, segments, index and work directories. */
  async sessionBytes(channel: string, session: string): Promise<number> {
    return (await treeBytes(this.sessionDir(channel, session))) + (await treeBytes(this.filePath(channel, session))) + (await treeBytes(this.cuePath(channel, session)));
  }

  /** Removes everything of a session: its segments, index and files. */
  async removeSession(channel: string, session: string): Promise<void> {
    await rm(this.sessionDir(channel, session), { recursive: true, force: true });
    await rm(this.filePath(channel, session), { force: true });
    await rm(this.cuePath(channel, session), { force: true });
    await rm(this.partialFilePath(channel, session), { force: true });
  }

  private channelDir(channel: string): string {
    return join(this.root, channel);
  }
}

/** True for the errors of a full disk (or a full quota). */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  // FFmpeg reports it in its words (strerror).
  return error instanceof Error && /No space left on device|Disk quota exceeded/.test(error.message);
}

/** fsync(2) of a file's data and metadata. */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync(2) of a directory: the names created or renamed in it are on disk. */
export async function syncDirectory(path: string): Promise<void> {
  await syncFile(path);
}

/** Total size of a file, or of a directory's files (recursively); 0 when absent. */
async function treeBytes(path: string): Promise<number> {
  let info;
  try {
    info = await stat(path);
  } catch {
    return 0;
  }
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const entry of await readdir(path).catch(() => [] as string[])) total += await treeBytes(join(path, entry));
  return total;
}

/** Parses index text; a line that is not JSON (torn by a crash) is skipped. */
export function parseSessionIndex(text: string): SessionIndex | undefined {
  let header: SessionHeader | undefined;
  const lines: RecordedSegment[] = [];
  const chapters: RecordedChapter[] = [];
  let end: SessionEnd | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: { type?: string };
    try {
      value = JSON.parse(line) as { type?: string };
    } catch {
      continue;
    }
    if (value.type === 'session') header ??= value as SessionHeader;
    else if (value.type === 'segment') lines.push(value as RecordedSegment);
    else if (value.type === 'chapter') chapters.push(value as RecordedChapter);
    else if (value.type === 'end') end = value as SessionEnd;
  }
  return header ? { header, lines, chapters, end } : undefined;
}

/**
 * The segments that make the session: up to its end's `lastMsn` once ended; while it is
 * still open (or was interrupted), everything indexed.
 */
export function sessionSegments(index: SessionIndex): RecordedSegment[] {
  if (!index.end) return index.lines;
  const last = index.end.lastMsn;
  return last === undefined ? [] : index.lines.filter((segment) => segment.msn <= last);
}

/**
 * Where a session ends when it stops now: after its last segment, except that an automatic
 * session drops a tail of fallback audio (the input was gone; `endAfterSeconds` of silence
 * is not the programme). A gap the input came back from stays: it is the silence that aired.
 */
export function lastKeptMsn(lines: readonly RecordedSegment[], trigger: SessionTrigger): number | undefined {
  if (trigger === 'manual') return lines.at(-1)?.msn;
  for (let index = lines.length - 1; index >= 0; index--) {
    if (!lines[index]!.fallback) return lines[index]!.msn;
  }
  return undefined;
}
