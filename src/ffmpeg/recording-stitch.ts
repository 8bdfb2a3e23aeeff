/**
 * FFmpeg's side of a recording (src/recording/recording-jobs.ts): a session's MPEG-TS
 * (or fMP4) segments stitched into one MP4/M4A without re-encoding, gaps (segment files lost, e.g. to
 * a full disk) filled with silence of the same length, chapters (the now playing of the
 * session, docs/architecture.md, Chapters in recordings) written from an ffmetadata file,
 * and the result measured with ffprobe.
 */
import { stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import { ffprobe, runFfmpeg } from './ffmpeg-process.js';
import { OnairError } from '../errors.js';

export interface StitchSpec {
  /** The segment files in order, absolute paths: one continuous MPEG-TS timeline (one packager run). */
  segmentPaths: readonly string[];
  /** fMP4 segments (`.m4s`): their run's init segment, absolute path; absent for MPEG-TS ones. */
  initPath?: string;
  /** Where FFmpeg's list of those paths is written. */
  listPath: string;
  /** The `.m4a` to write (replaced if it exists). */
  outputPath: string;
  /** An ffmetadata file (renderFfmetadata) whose chapters and tags the file gets. */
  metadataPath?: string;
}

/** One chapter of a stitched file: where it starts and ends in the session's audio, and its title. */
export interface StitchChapter {
  startSeconds: number;
  endSeconds: number;
  /** What players show, e.g. `Artist - Title`. */
  title: string;
}

export interface StitchOptions {
  /** Seconds of audio written so far, as FFmpeg reports them (about twice a second). */
  onProgress?: (writtenSeconds: number) => void;
  /** Aborting kills FFmpeg; the promise then rejects. */
  signal?: AbortSignal;
  logger?: Logger;
}

/** A session in order: runs of segment files that are there, and the gaps between them. */
export type StitchPiece = { segmentPaths: readonly string[]; initPath?: string } | { silenceSeconds: number };

/** The recorded rendition's audio, which the silence of a gap is encoded as. */
export interface StitchAudio {
  sampleRate: number;
  channels: number;
  /** Bits per second. */
  bitrate: number;
}

export interface SessionStitchSpec {
  pieces: readonly StitchPiece[];
  /** A directory of this attempt's own, for lists and pieces. */
  workDir: string;
  outputPath: string;
  audio: StitchAudio;
  /** The file's chapters, in order (none: no chapters). */
  chapters?: readonly StitchChapter[];
}

/**
 * FFmpeg's metadata file (ffmetadata, FFmpeg's "Metadata" format documentation) with one
 * [CHAPTER] per chapter. The time base is the sample rate's, so a chapter starts on the exact
 * sample (frame edge) the recorder put it on; `=`, `;`, `#`, `\` and newlines are escaped with
 * a backslash, as the format requires.
 */
export function renderFfmetadata(chapters: readonly StitchChapter[], sampleRate: number): string {
  const lines = [';FFMETADATA1'];
  for (const chapter of chapters) {
    lines.push('[CHAPTER]', `TIMEBASE=1/${sampleRate}`, `START=${Math.round(chapter.startSeconds * sampleRate)}`, `END=${Math.round(chapter.endSeconds * sampleRate)}`);
    lines.push(`title=${escapeFfmetadata(chapter.title)}`);
  }
  return `${lines.join('\n')}\n`;
}

export function escapeFfmetadata(text: string): string {
  return text.replace(/[=;#\\\n]/g, (character) => `\\${character}`);
}

/**
 * Stitches a session: one run of segments (no gap) is one remux (stitchSegments). With gaps,
 * each run is remuxed to an `.m4a` piece, each gap is encoded as silence of its exact length
 * (FFmpeg's anullsrc at the rendition's rate, channel count and bit rate, AAC-LC: a whole number
 * of frames, since segments are), and the pieces are joined by FFmpeg's concat demuxer without
 * re-encoding (one codec configuration throughout). Progress reports the final join.
 */
export async function stitchSession(spec: SessionStitchSpec, options: StitchOptions = {}): Promise<void> {
  let metadataPath: string | undefined;
  if (spec.chapters && spec.chapters.length > 0) {
    metadataPath = join(spec.workDir, 'chapters.ffmeta');
    await writeFile(metadataPath, renderFfmetadata(spec.chapters, spec.audio.sampleRate));
  }
  const [first] = spec.pieces;
  if (spec.pieces.length === 1 && first && 'segmentPaths' in first) {
    return stitchSegments({ segmentPaths: first.segmentPaths, initPath: first.initPath, listPath: join(spec.workDir, 'segments.txt'), outputPath: spec.outputPath, metadataPath }, options);
  }
  if (!spec.pieces.some((piece) => 'segmentPaths' in piece)) throw new RangeError('nothing to stitch: no segments');
  const piecePaths: string[] = [];
  for (const [index, piece] of spec.pieces.entries()) {
    const path = join(spec.workDir, `piece-${index}.m4a`);
    if ('segmentPaths' in piece) {
      await stitchSegments({ segmentPaths: piece.segmentPaths, initPath: piece.initPath, listPath: join(spec.workDir, `segments-${index}.txt`), outputPath: path }, { signal: options.signal, logger: options.logger });
    } else {
      await encodeSilence(path, piece.silenceSeconds, spec.audio, options);
    }
    piecePaths.push(path);
  }
  const listPath = join(spec.workDir, 'pieces.ffconcat');
  await writeFile(listPath, `ffconcat version 1.0\n${piecePaths.map((path) => `file '${path.replace(/'/g, "'\\''")}'`).join('\n')}\n`);
  await runToEnd(
    {
      input: listPath,
      inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', '-stats', '-f', 'concat', '-safe', '0'],
      ...metadataInput(metadataPath),
      outputOptions: ['-map', '0:a:0', ...metadataMapping(metadataPath), '-c', 'copy', '-movflags', '+faststart'],
      format: 'mp4',
      output: spec.outputPath,
    },
    'stitch',
    options,
  );
}

/** `seconds` of digital silence as AAC-LC in an `.m4a`, as the recorded rendition would carry it. */
async function encodeSilence(outputPath: string, seconds: number, audio: StitchAudio, options: StitchOptions): Promise<void> {
  const layout = audio.channels === 1 ? 'mono' : 'stereo';
  await runToEnd(
    {
      input: `anullsrc=r=${audio.sampleRate}:cl=${layout}`,
      inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi'],
      outputOptions: ['-t', seconds.toFixed(6), '-c:a', 'aac', '-b:a', String(audio.bitrate), '-ac', String(audio.channels)],
      format: 'mp4',
      output: outputPath,
    },
    'encode silence for',
    { signal: options.signal, logger: options.logger },
  );
}

/** Runs one FFmpeg job to its end; rejects with FFmpeg's last error lines. */
function runToEnd(job: Parameters<typeof runFfmpeg>[0], what: string, options: StitchOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => ffmpeg.kill('SIGKILL');
    const ffmpeg = runFfmpeg(
      {
        ...job,
        onProgress: (timemark) => {
          const seconds = timemarkSeconds(timemark);
          if (seconds !== undefined) options.onProgress?.(seconds);
        },
      },
      {
        onStderrLine: () => undefined,
        onExit: (exit) => {
          options.signal?.removeEventListener('abort', onAbort);
          if (exit.code === 0 && !options.signal?.aborted) resolve();
          else reject(new OnairError('ONAIR_FFMPEG_FAILED', options.signal?.aborted ? 'stitching was aborted' : `FFmpeg could not ${what} the recording: ${exit.reason ?? `exit ${exit.code ?? exit.signal}`}`));
        },
        logger: options.logger,
      },
    );
    // Before FFmpeg has spawned, the kill waits for it (ffmpeg-process.ts).
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Concatenates MPEG-TS segments (AAC in ADTS) into one MP4 (`.m4a`) without re-encoding.
 * The segments are cut from one packager run, so their bytes end to end are one transport
 * stream (PTS and continuity counters run on): FFmpeg reads them as such through its
 * `concatf:` protocol (a list file, so any number of segments fits), `-c copy` with
 * `aac_adtstoasc` (ADTS headers → the MP4 AudioSpecificConfig), and `+faststart` puts the
 * index first so a player can seek over HTTP at once. (The concat demuxer would treat each
 * segment as a file of its own, and loses frames at their edges.) fMP4 segments (CMAF chunks
 * of one run) after their init segment are, end to end, one fragmented MP4 file: the same list,
 * read as MP4, its raw AAC samples copied as they are
 * (docs/architecture.md, "Recordings of fMP4 channels"). Rejects with FFmpeg's last error lines when it fails.
 */
export async function stitchSegments(spec: StitchSpec, options: StitchOptions = {}): Promise<void> {
  if (spec.segmentPaths.length === 0) throw new RangeError('nothing to stitch: no segments');
  const paths = spec.initPath === undefined ? spec.segmentPaths : [spec.initPath, ...spec.segmentPaths];
  if (paths.some((path) => !isAbsolute(path) || /[\r\n]/.test(path))) {
    throw new RangeError('segment paths must be absolute, one per line');
  }
  await writeFile(spec.listPath, `${paths.join('\n')}\n`);
  const fmp4 = spec.initPath !== undefined;
  await runToEnd(
    {
      input: `concatf:${spec.listPath}`,
      // `-stats` with `-loglevel error` prints the progress lines alone, unprefixed, for fluent-ffmpeg to parse.
      inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', '-stats', '-f', fmp4 ? 'mp4' : 'mpegts'],
      ...metadataInput(spec.metadataPath),
      outputOptions: ['-map', '0:a:0', ...metadataMapping(spec.metadataPath), '-c', 'copy', ...(fmp4 ? [] : ['-bsf:a', 'aac_adtstoasc']), '-movflags', '+faststart'],
      format: 'mp4',
      output: spec.outputPath,
    },
    'stitch',
    options,
  );
}

/** The ffmetadata file as FFmpeg's second input, when there is one. */
function metadataInput(metadataPath: string | undefined): { extraInputs?: { input: string; options: string[] }[] } {
  return metadataPath ? { extraInputs: [{ input: metadataPath, options: ['-f', 'ffmetadata'] }] } : {};
}

/** Chapters and global tags from input 1 (the ffmetadata file); the audio stays a copy of input 0. */
function metadataMapping(metadataPath: string | undefined): string[] {
  return metadataPath ? ['-map_metadata', '1', '-map_chapters', '1'] : [];
}

/** `00:01:02.50` → 62.5; undefined for anything else (FFmpeg prints `N/A` before the first packet). */
function timemarkSeconds(timemark: string | undefined): number | undefined {
  const match = /^(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(timemark ?? '');
  if (!match || match[1] === '-') return undefined;
  return Number(match[2]) * 3600 + Number(match[3]) * 60 + Number(match[4]);
}

export interface ProbedMedia {
  /** The container's duration (ffprobe's format.duration). */
  durationSeconds: number;
  sizeBytes: number;
  /** Codec of the first audio stream, e.g. `aac`. */
  audioCodec: string | undefined;
}

/** Measures a media file with ffprobe. Rejects when ffprobe cannot read it or finds no duration. */
export async function probeMedia(path: string): Promise<ProbedMedia> {
  const { durationSeconds, audioCodec } = await ffprobe(path);
  if (!Number.isFinite(durationSeconds)) throw new OnairError('ONAIR_FFMPEG_FAILED', `ffprobe found no duration in ${path}`);
  return { durationSeconds, sizeBytes: (await stat(path)).size, audioCodec };
}
