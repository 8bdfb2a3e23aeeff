/**
 * The one place that knows fluent-ffmpeg (archived upstream): swap this file for a
 * direct `child_process.spawn` and nothing else changes.
 *
 * One FFmpeg per input decodes the feed once and encodes every rendition as AAC-LC;
 * all renditions leave as audio streams of ONE MPEG-TS on stdout (stream i = rendition i),
 * which the input worker demuxes in Node. FFmpeg never segments and never writes playlists.
 */
import type { Readable } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';

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
}

export interface EncoderExit {
  code: number | null;
  signal: string | null;
  /** FFmpeg's last error lines, or why it could not start. */
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
  onStderrLine(line: string): void;
  onExit(exit: EncoderExit): void;
}

export function ffmpegInputOptions(spec: EncoderSpec): string[] {
  // A second of probing is plenty for an audio feed and keeps start and failover quick
  // (FFmpeg's default spends ~5 s on a live MPEG-TS before the first frame).
  const options = ['-nostdin', '-hide_banner', '-loglevel', 'warning', '-analyzeduration', '1000000', '-probesize', '65536'];
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
  options.push('-af', 'aresample=async=1');
  // Hand packets over as they are made: latency matters more than write sizes here.
  options.push('-flush_packets', '1', '-muxdelay', '0', '-muxpreload', '0');
  return options;
}

export function startEncoder(spec: EncoderSpec, handlers: EncoderHandlers): EncoderProcess {
  const command = ffmpeg(spec.inputUrl)
    .inputOptions(ffmpegInputOptions(spec))
    .outputOptions(ffmpegOutputOptions(spec))
    .format('mpegts');
  const handle = supervise(command, handlers);
  const stdout = command.pipe() as Readable;
  // fluent-ffmpeg reports the outcome through 'error'/'end'; the stream errors are the same event.
  stdout.on('error', () => undefined);
  return { ...handle, stdout };
}

/**
 * Wires a command's events to the handlers: every stderr line, and exactly one exit report
 * (fluent-ffmpeg may emit both 'error' and a stream error), with FFmpeg's last lines as the reason.
 */
function supervise(command: ffmpeg.FfmpegCommand, handlers: EncoderHandlers): FfmpegProcess {
  const recentLines: string[] = [];
  let exited = false;
  const exit = (result: EncoderExit): void => {
    if (exited) return;
    exited = true;
    handlers.onExit(result);
  };
  command.on('stderr', (line: string) => {
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
      if (!exited) command.kill(signal);
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
  const command = ffmpeg(`sine=frequency=${frequency}:beep_factor=4:sample_rate=48000${duration}`)
    .inputOptions(['-nostdin', '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi'])
    .outputOptions(['-ac', '2', '-c:a', 'aac', '-b:a', '256k', '-f', 'mpegts'])
    .output(spec.outputUrl);
  const handle = supervise(command, handlers);
  command.run();
  return handle;
}
