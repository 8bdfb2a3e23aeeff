/**
 * The one place that knows fluent-ffmpeg (archived upstream): swap this file for a
 * direct `child_process.spawn` and nothing else changes.
 *
 * It starts FFmpeg for a job (input, options, format, and an output or stdout) and supervises
 * it: problem lines and silence reports from stderr, progress, and exactly one exit report
 * with FFmpeg's last problem lines as the reason. It also runs ffprobe. Every FFmpeg runs
 * under a parent-death signal (ffmpeg-launcher.ts), so none outlives a crashed onair.
 * What the jobs are lives beside it: live-encoder.ts, clip-encoder.ts, recording-stitch.ts,
 * test-signal-sender.ts.
 */
import { PassThrough, type Readable } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import type { Logger } from 'pino';
import { ffmpegLaunchPath } from './ffmpeg-launcher.js';
import { readFfmpegLogLine } from './ffmpeg-log.js';

export interface FfmpegExit {
  code: number | null;
  signal: string | null;
  /** FFmpeg's last warning/error lines, or why it could not start. */
  reason?: string;
}

export interface FfmpegProcess {
  pid(): number | undefined;
  kill(signal?: NodeJS.Signals): void;
}

export interface FfmpegHandlers {
  /** A line FFmpeg logged at warning level or above: a problem with the feed or the encoder. */
  onStderrLine(line: string): void;
  onExit(exit: FfmpegExit): void;
  /** silencedetect: silence has lasted its duration (true), or ended (false). */
  onSilence?(silent: boolean): void;
  /** Where a problem of the set-up itself is reported (once per process), e.g. no setpriv. */
  logger?: Logger;
}

export interface FfmpegJob {
  /** What FFmpeg reads: a URL, a path, a lavfi graph, `concatf:…`, or a stream piped to its stdin (`pipe:0`). */
  input: string | Readable;
  inputOptions: readonly string[];
  /** More inputs after the first, each with its own options (e.g. an ffmetadata file of chapters). */
  extraInputs?: readonly { input: string; options: readonly string[] }[];
  outputOptions: readonly string[];
  /** The output container (`-f`), unless the output options name it. */
  format?: string;
  /** Run at this niceness (lower priority), so live encoders keep up meanwhile. */
  niceness?: number;
  /** FFmpeg's progress reports: the time mark written so far, e.g. `00:01:02.50` (`N/A` before the first packet). */
  onProgress?: (timemark: string | undefined) => void;
}

/** Starts FFmpeg writing its output to stdout, returned as a stream. */
export function pipeFfmpeg(job: FfmpegJob, handlers: FfmpegHandlers): FfmpegProcess & { readonly stdout: Readable } {
  const command = commandFor(job, handlers.logger);
  const handle = supervise(command, handlers);
  // fluent-ffmpeg reports "Output stream closed" 20 ms after its output stream closes unless
  // FFmpeg's exit came first, which under load it may not: a clean exit then reads as a
  // failure. A stream that is not destroyed at its end never closes by itself, so the exit
  // report is FFmpeg's own; a reader that destroys it early still stops FFmpeg.
  const stdout = command.pipe(new PassThrough({ autoDestroy: false })) as Readable;
  // fluent-ffmpeg reports the outcome through 'error'/'end'; the stream errors are the same event.
  stdout.on('error', () => undefined);
  return { ...handle, stdout };
}

/** Starts FFmpeg writing its output to `output` (a file or a URL). */
export function runFfmpeg(job: FfmpegJob & { output: string }, handlers: FfmpegHandlers): FfmpegProcess {
  const command = commandFor(job, handlers.logger).output(job.output);
  const handle = supervise(command, handlers);
  command.run();
  return handle;
}

export interface ProbedStreams {
  /** The container's duration (ffprobe's format.duration); NaN when it has none. */
  durationSeconds: number;
  /** Codec of the first audio stream, e.g. `aac`. */
  audioCodec: string | undefined;
}

/** Runs ffprobe on a file. Rejects when ffprobe cannot read it. */
export async function ffprobe(path: string): Promise<ProbedStreams> {
  const data = await new Promise<ffmpeg.FfprobeData>((resolve, reject) => {
    ffmpeg.ffprobe(path, (error: Error | null, probed: ffmpeg.FfprobeData) => (error ? reject(error) : resolve(probed)));
  });
  return {
    durationSeconds: Number(data.format.duration),
    audioCodec: data.streams.find((stream) => stream.codec_type === 'audio')?.codec_name,
  };
}

function commandFor(job: FfmpegJob, logger: Logger | undefined): ffmpeg.FfmpegCommand {
  const command = ffmpeg(job.input).setFfmpegPath(ffmpegLaunchPath(logger));
  if (job.niceness !== undefined) command.renice(job.niceness);
  command.inputOptions([...job.inputOptions]);
  for (const extra of job.extraInputs ?? []) command.input(extra.input).inputOptions([...extra.options]);
  command.outputOptions([...job.outputOptions]);
  if (job.format !== undefined) command.format(job.format);
  const { onProgress } = job;
  if (onProgress) command.on('progress', (progress: { timemark?: string }) => onProgress(progress.timemark));
  return command;
}

/**
 * Wires a command's events to the handlers: problem lines and silence events from stderr,
 * and exactly one exit report (fluent-ffmpeg may emit both 'error' and a stream error), with
 * FFmpeg's last problem lines as the reason. A kill before FFmpeg has spawned is delivered
 * as soon as it has.
 */
function supervise(command: ffmpeg.FfmpegCommand, handlers: FfmpegHandlers): FfmpegProcess {
  const recentLines: string[] = [];
  let exited = false;
  let pendingSignal: NodeJS.Signals | undefined;
  const exit = (result: FfmpegExit): void => {
    if (exited) return;
    exited = true;
    handlers.onExit(result);
  };
  // fluent-ffmpeg forgets its process before it reports the exit: keep our own reference.
  let child: FfmpegChild | undefined;
  command.on('start', () => {
    child = processOf(command);
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
    exit({
      code: child?.exitCode ?? null,
      signal: child?.signalCode ?? null,
      reason: recentLines.length > 0 ? recentLines.join(' | ') : error.message,
    });
  });
  command.on('end', () => {
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
