/**
 * The one place that knows fluent-ffmpeg (archived upstream): swap this file for a
 * direct `child_process.spawn` and nothing else changes.
 *
 * One FFmpeg per input decodes the feed once and encodes every rendition as AAC-LC;
 * all renditions leave as audio streams of ONE MPEG-TS on stdout (stream i = rendition i),
 * which the input worker demuxes in Node. FFmpeg never segments and never writes playlists.
 * The same encoder options turn a clip (a jingle) into renditions once, for the safety
 * source. Recordings are stitched here too (`stitchSegments`: the recorded MPEG-TS segments
 * concatenated into one MP4/M4A without re-encoding) and measured (`probeMedia`, ffprobe).
 * Every FFmpeg runs under a parent-death signal (`ffmpegLaunchPath`), so none outlives a
 * crashed onair.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, lstatSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Readable } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import type { Logger } from 'pino';
import { OnairError } from '../errors.js';

export interface EncoderRendition {
  bitrate: number;
  audioChannels: number;
}

export interface EncoderSpec {
  /** Anything FFmpeg reads: srt://, udp://, http(s)://, a file path. */
  inputUrl: string;
  sampleRate: number;
  renditions: readonly EncoderRendition[];
  /** Read the input at its native rate (files standing in for a live feed). */
  realtime?: boolean;
  /** Loop a file input forever. */
  loop?: boolean;
  /** Report digital silence (below -60 dBFS) that lasts this long, through `onSilence`. */
  silenceSeconds?: number;
}

export interface EncoderExit {
  code: number | null;
  signal: string | null;
  /** FFmpeg's last warning/error lines, or why it could not start. */
  reason?: string;
}

export interface FfmpegProcess {
  pid(): number | undefined;
  kill(signal?: NodeJS.Signals): void;
}

export interface EncoderProcess extends FfmpegProcess {
  readonly stdout: Readable;
}

export interface EncoderHandlers {
  /** A line FFmpeg logged at warning level or above: a problem with the feed or the encoder. */
  onStderrLine(line: string): void;
  onExit(exit: EncoderExit): void;
  /** silencedetect (`EncoderSpec.silenceSeconds`): silence has lasted that long (true), or ended (false). */
  onSilence?(silent: boolean): void;
  /** Where the adapter reports a problem of its own set-up (once per process), e.g. no setpriv. */
  logger?: Logger;
}

/** silencedetect's threshold: AAC decoded from digital silence stays far below it, a quiet programme above. */
const SILENCE_NOISE_DB = -60;
/**
 * `encodeClip` gives up on FFmpeg after this long. AAC encoding runs at roughly 15–50× real
 * time per stream, so 10 minutes of a 192k rendition take up to ~45 s on a busy machine.
 */
const CLIP_TIMEOUT_MS = 300_000;
const CLIP_NICENESS = 10;

export function ffmpegInputOptions(spec: EncoderSpec): string[] {
  // Silence detection reports at info level; the level tag tells those lines from problems.
  const logging = spec.silenceSeconds !== undefined ? ['-loglevel', 'level+info', '-nostats'] : ['-loglevel', 'warning'];
  // A second of probing is plenty for an audio feed and keeps start and failover quick
  // (FFmpeg's default spends ~5 s on a live MPEG-TS before the first frame).
  const options = ['-nostdin', '-hide_banner', ...logging, '-analyzeduration', '1000000', '-probesize', '65536'];
  if (spec.realtime) options.push('-re');
  if (spec.loop) options.push('-stream_loop', '-1');
  return options;
}

export function ffmpegOutputOptions(spec: EncoderSpec): string[] {
  const options: string[] = [];
  spec.renditions.forEach(() => options.push('-map', '0:a:0'));
  options.push('-c:a', 'aac', '-profile:a', 'aac_low', '-ar', String(spec.sampleRate));
  spec.renditions.forEach((rendition, index) => {
    options.push(`-b:a:${index}`, String(rendition.bitrate), `-ac:a:${index}`, String(rendition.audioChannels));
  });
  // Fill timestamp gaps of a lossy feed with silence so the sample count stays honest.
  const resample = 'aresample=async=1';
  if (spec.silenceSeconds === undefined) {
    options.push('-af', resample);
  } else {
    // A filter chain runs per output stream: detect on the first one only, so every silence
    // is reported once. It sees the decoded input (the -ac downmix is appended after it).
    const detect = `silencedetect=noise=${SILENCE_NOISE_DB}dB:duration=${spec.silenceSeconds}`;
    spec.renditions.forEach((_, index) => options.push(`-filter:a:${index}`, index === 0 ? `${resample},${detect}` : resample));
  }
  // Hand packets over as they are made: latency matters more than write sizes here.
  options.push('-flush_packets', '1', '-muxdelay', '0', '-muxpreload', '0');
  return options;
}

export function startEncoder(spec: EncoderSpec, handlers: EncoderHandlers): EncoderProcess {
  const command = newCommand(spec.inputUrl, handlers.logger)
    .inputOptions(ffmpegInputOptions(spec))
    .outputOptions(ffmpegOutputOptions(spec))
    .format('mpegts');
  const handle = supervise(command, handlers);
  const stdout = command.pipe() as Readable;
  // fluent-ffmpeg reports the outcome through 'error'/'end'; the stream errors are the same event.
  stdout.on('error', () => undefined);
  return { ...handle, stdout };
}

export interface ClipSpec {
  /** An audio file (or anything else FFmpeg reads). */
  path: string;
  /** Read at most this much of it. */
  maxSeconds: number;
  sampleRate: number;
  renditions: readonly EncoderRendition[];
}

/**
 * Encodes a clip as fast as FFmpeg can, with the live encoder's output options: MPEG-TS
 * with one AAC stream per rendition, returned whole. FFmpeg runs at a lower priority (nice
 * 10) so live encoders keep up meanwhile. Rejects (ONAIR_INPUT_FAILED) when FFmpeg cannot
 * read or encode the file, or takes longer than `timeoutMs`.
 */
export function encodeClip(spec: ClipSpec, options: { logger?: Logger; timeoutMs?: number } = {}): Promise<Uint8Array> {
  const command = newCommand(spec.path, options.logger)
    .renice(CLIP_NICENESS)
    .inputOptions(['-nostdin', '-hide_banner', '-loglevel', 'error', '-t', String(spec.maxSeconds)])
    .outputOptions(ffmpegOutputOptions({ inputUrl: spec.path, sampleRate: spec.sampleRate, renditions: spec.renditions }))
    .format('mpegts');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let exit: EncoderExit | undefined;
    let outputEnded = false;
    // fluent-ffmpeg reports the exit without waiting for stdout to be drained: wait for both.
    const settle = (): void => {
      if (!exit || (exit.code === 0 && !outputEnded)) return;
      clearTimeout(timer);
      if (exit.code === 0) resolve(Buffer.concat(chunks));
      else reject(new OnairError('ONAIR_INPUT_FAILED', `FFmpeg could not encode ${spec.path}: ${exit.reason ?? `exit ${exit.code ?? exit.signal}`}`));
    };
    const handle = supervise(command, {
      onStderrLine: () => undefined,
      onExit: (result) => {
        exit = result;
        settle();
      },
    });
    const timer = setTimeout(() => handle.kill('SIGKILL'), options.timeoutMs ?? CLIP_TIMEOUT_MS);
    const stdout = command.pipe() as Readable;
    stdout.on('error', () => undefined);
    stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    stdout.on('end', () => {
      outputEnded = true;
      settle();
    });
  });
}

export interface StitchSpec {
  /** The segment files in order, absolute paths: one continuous MPEG-TS timeline (one packager run). */
  segmentPaths: readonly string[];
  /** Where FFmpeg's list of those paths is written. */
  listPath: string;
  /** The `.m4a` to write (replaced if it exists). */
  outputPath: string;
}

export interface StitchOptions {
  /** Seconds of audio written so far, as FFmpeg reports them (about twice a second). */
  onProgress?: (writtenSeconds: number) => void;
  /** Aborting kills FFmpeg; the promise then rejects. */
  signal?: AbortSignal;
  logger?: Logger;
}

/**
 * Concatenates MPEG-TS segments (AAC in ADTS) into one MP4 (`.m4a`) without re-encoding.
 * The segments are cut from one packager run, so their bytes end to end are one transport
 * stream (PTS and continuity counters run on): FFmpeg reads them as such through its
 * `concatf:` protocol (a list file, so any number of segments fits), `-c copy` with
 * `aac_adtstoasc` (ADTS headers → the MP4 AudioSpecificConfig), and `+faststart` puts the
 * index first so a player can seek over HTTP at once. (The concat demuxer would treat each
 * segment as a file of its own, and loses frames at their edges.) Rejects with FFmpeg's
 * last error lines when it fails.
 */
export async function stitchSegments(spec: StitchSpec, options: StitchOptions = {}): Promise<void> {
  if (spec.segmentPaths.length === 0) throw new RangeError('nothing to stitch: no segments');
  if (spec.segmentPaths.some((path) => !isAbsolute(path) || /[\r\n]/.test(path))) {
    throw new RangeError('segment paths must be absolute, one per line');
  }
  await writeFile(spec.listPath, `${spec.segmentPaths.join('\n')}\n`);
  // `-stats` with `-loglevel error` prints the progress lines alone, unprefixed, for fluent-ffmpeg to parse.
  const command = newCommand(`concatf:${spec.listPath}`, options.logger)
    .inputOptions(['-nostdin', '-hide_banner', '-loglevel', 'error', '-stats', '-f', 'mpegts'])
    .outputOptions(['-map', '0:a:0', '-c', 'copy', '-bsf:a', 'aac_adtstoasc', '-movflags', '+faststart'])
    .format('mp4')
    .output(spec.outputPath);
  command.on('progress', (progress: { timemark?: string }) => {
    const seconds = timemarkSeconds(progress.timemark);
    if (seconds !== undefined) options.onProgress?.(seconds);
  });
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => handle.kill('SIGKILL');
    const handle = supervise(command, {
      onStderrLine: () => undefined,
      onExit: (exit) => {
        options.signal?.removeEventListener('abort', onAbort);
        if (exit.code === 0 && !options.signal?.aborted) resolve();
        else reject(new Error(options.signal?.aborted ? 'stitching was aborted' : `FFmpeg could not stitch: ${exit.reason ?? `exit ${exit.code ?? exit.signal}`}`));
      },
    });
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    command.run();
  });
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
  const data = await new Promise<ffmpeg.FfprobeData>((resolve, reject) => {
    ffmpeg.ffprobe(path, (error: Error | null, probed: ffmpeg.FfprobeData) => (error ? reject(error) : resolve(probed)));
  });
  const durationSeconds = Number(data.format.duration);
  if (!Number.isFinite(durationSeconds)) throw new Error(`ffprobe found no duration in ${path}`);
  return {
    durationSeconds,
    sizeBytes: (await stat(path)).size,
    audioCodec: data.streams.find((stream) => stream.codec_type === 'audio')?.codec_name,
  };
}

export type FfmpegLogLine = { kind: 'problem' } | { kind: 'silence'; silent: boolean } | { kind: 'info' };

/**
 * What a stderr line means. With `-loglevel level+…` FFmpeg tags each line with its level
 * (`[srt @ 0x…] [warning] …`); only warning and worse are problems. An untagged line comes
 * from `-loglevel warning`, which prints nothing below warning.
 */
export function readFfmpegLogLine(line: string): FfmpegLogLine {
  const silence = /^\[silencedetect @ [^\]]*\] (?:\[info\] )?silence_(start|end):/.exec(line);
  if (silence) return { kind: 'silence', silent: silence[1] === 'start' };
  const level = /^(?:\[[^\]]*\] )?\[(panic|fatal|error|warning|info|verbose|debug|trace)\] /.exec(line)?.[1];
  return level === undefined || ['panic', 'fatal', 'error', 'warning'].includes(level) ? { kind: 'problem' } : { kind: 'info' };
}

/**
 * Wires a command's events to the handlers: problem lines and silence events from stderr,
 * and exactly one exit report (fluent-ffmpeg may emit both 'error' and a stream error), with
 * FFmpeg's last problem lines as the reason. A kill before FFmpeg has spawned is delivered
 * as soon as it has.
 */
function supervise(command: ffmpeg.FfmpegCommand, handlers: EncoderHandlers): FfmpegProcess {
  const recentLines: string[] = [];
  let exited = false;
  let pendingSignal: NodeJS.Signals | undefined;
  const exit = (result: EncoderExit): void => {
    if (exited) return;
    exited = true;
    handlers.onExit(result);
  };
  command.on('start', () => {
    if (pendingSignal) command.kill(pendingSignal);
  });
  command.on('stderr', (line: string) => {
    if (line.trim() === '') return;
    const meaning = readFfmpegLogLine(line);
    if (meaning.kind === 'silence') handlers.onSilence?.(meaning.silent);
    if (meaning.kind !== 'problem') return;
    recentLines.push(line);
    if (recentLines.length > 5) recentLines.shift();
    handlers.onStderrLine(line);
  });
  command.on('error', (error: Error) => {
    const child = processOf(command);
    exit({
      code: child?.exitCode ?? null,
      signal: child?.signalCode ?? null,
      reason: recentLines.length > 0 ? recentLines.join(' | ') : error.message,
    });
  });
  command.on('end', () => {
    const child = processOf(command);
    exit({ code: child?.exitCode ?? 0, signal: child?.signalCode ?? null });
  });
  return {
    pid: () => processOf(command)?.pid,
    kill: (signal = 'SIGTERM') => {
      if (exited) return;
      if (processOf(command)) command.kill(signal);
      else pendingSignal = signal;
    },
  };
}

interface FfmpegChild {
  pid?: number;
  exitCode: number | null;
  signalCode: NodeJS.Signals | null;
}

function processOf(command: ffmpeg.FfmpegCommand): FfmpegChild | undefined {
  return (command as unknown as { ffmpegProc?: FfmpegChild }).ffmpegProc;
}

export interface TestSignalSpec {
  /** Where to push the signal, e.g. `srt://127.0.0.1:9000?mode=caller`. */
  outputUrl: string;
  /** Tone frequency in Hz; a short beep at 4× the frequency marks every second. */
  frequency?: number;
  /** Stop after this many seconds (default: run until killed). */
  durationSeconds?: number;
}

/**
 * A contribution-feed stand-in: FFmpeg generates a tone, encodes it as AAC in MPEG-TS
 * and sends it in real time, exactly as a studio encoder would push SRT.
 */
export function startTestSignal(spec: TestSignalSpec, handlers: EncoderHandlers): FfmpegProcess {
  const frequency = spec.frequency ?? 440;
  const duration = spec.durationSeconds !== undefined ? `:duration=${spec.durationSeconds}` : '';
  const command = newCommand(`sine=frequency=${frequency}:beep_factor=4:sample_rate=48000${duration}`, handlers.logger)
    .inputOptions(['-nostdin', '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi'])
    .outputOptions(['-ac', '2', '-c:a', 'aac', '-b:a', '256k', '-f', 'mpegts'])
    .output(spec.outputUrl);
  const handle = supervise(command, handlers);
  command.run();
  return handle;
}

function newCommand(input: string, logger: Logger | undefined): ffmpeg.FfmpegCommand {
  return ffmpeg(input).setFfmpegPath(ffmpegLaunchPath(logger));
}

// ---------------------------------------------------------------------------------------
// No orphans: FFmpeg dies with onair. An SRT listener waiting for its caller never writes,
// so a dead parent's closed pipe (SIGPIPE) would not end it; the kernel's parent-death
// signal (prctl PR_SET_PDEATHSIG, set by util-linux setpriv, kept across exec) does, even
// when onair is SIGKILLed. fluent-ffmpeg spawns one path, so that path is a tiny wrapper.

let launcher: { path: string; problem?: string } | undefined;
let launcherProblemLogged = false;

/** What fluent-ffmpeg spawns: the setpriv wrapper around FFmpeg, or FFmpeg itself if that cannot be had. */
export function ffmpegLaunchPath(logger?: Logger): string {
  launcher ??= resolveLauncher();
  if (launcher.problem && logger && !launcherProblemLogged) {
    launcherProblemLogged = true;
    logger.warn({ ffmpeg: launcher.path }, `${launcher.problem}; FFmpeg runs directly and may outlive a crashed onair`);
  }
  return launcher.path;
}

/** The real binary is `FFMPEG_PATH` if set (as fluent-ffmpeg itself reads it), else `ffmpeg` on the PATH. */
function resolveLauncher(): { path: string; problem?: string } {
  const fromEnv = process.env.FFMPEG_PATH;
  const binary = (fromEnv && isExecutable(fromEnv) ? fromEnv : findOnPath('ffmpeg')) ?? 'ffmpeg';
  if (binary === 'ffmpeg') return { path: binary }; // not installed: let the spawn error say so
  const setpriv = findOnPath('setpriv');
  if (!setpriv) return { path: binary, problem: 'setpriv (util-linux) not found' };
  if (spawnSync(setpriv, ['--pdeathsig', 'KILL', '--', 'true'], { timeout: 5000 }).status !== 0) {
    return { path: binary, problem: `${setpriv} cannot set a parent-death signal` };
  }
  const script = `#!/bin/sh\n# onair: FFmpeg gets SIGKILL when its parent dies.\nexec ${shellQuote(setpriv)} --pdeathsig KILL -- ${shellQuote(binary)} "$@"\n`;
  try {
    const path = writeWrapper(script);
    return isExecutable(path) ? { path } : { path: binary, problem: `${path} cannot be executed (noexec ${tmpdir()}?)` };
  } catch (error) {
    return { path: binary, problem: `cannot write the FFmpeg wrapper in ${tmpdir()} (${(error as Error).message})` };
  }
}

/** Writes the script under a name made from its content; an existing copy is reused only if it is ours and intact. */
function writeWrapper(script: string): string {
  const hash = createHash('sha256').update(script).digest('hex').slice(0, 16);
  const path = join(tmpdir(), `onair-ffmpeg-${hash}.sh`);
  try {
    const stat = lstatSync(path);
    const ours = stat.isFile() && stat.uid === process.getuid?.() && (stat.mode & 0o022) === 0;
    if (ours && readFileSync(path, 'utf8') === script) return path;
  } catch {
    // not there yet
  }
  const temporary = `${path}.${process.pid}.${Date.now()}`;
  writeFileSync(temporary, script, { mode: 0o755, flag: 'wx' });
  try {
    renameSync(temporary, path); // atomic: a concurrent onair never runs a half-written script
    return path;
  } catch {
    return temporary; // someone else's file holds the name (shared /tmp): use our own copy
  }
}

function findOnPath(name: string): string | undefined {
  for (const directory of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (directory === '') continue;
    const candidate = join(directory, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** access(X_OK) also fails on a noexec mount (Linux). */
function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
