/**
 * The live encoder: one FFmpeg per input decodes the feed once and encodes every rendition
 * as AAC-LC; all renditions leave as audio streams of ONE MPEG-TS on stdout (stream i =
 * rendition i), which the input worker (src/ingest/input-worker.ts) demuxes in Node. FFmpeg
 * never segments and never writes playlists.
 */
import type { Readable } from 'node:stream';
import { ffmpegInputOptions, ffmpegOutputOptions, type EncoderSpec } from './encoder-arguments.js';
import { pipeFfmpeg, type FfmpegHandlers, type FfmpegProcess } from './ffmpeg-process.js';

export interface EncoderProcess extends FfmpegProcess {
  readonly stdout: Readable;
}

/** With `stdin`, FFmpeg reads that stream (`spec.inputUrl` is then `pipe:0`): audio onair receives itself. */
export function startEncoder(spec: EncoderSpec, handlers: FfmpegHandlers, stdin?: Readable): EncoderProcess {
  return pipeFfmpeg(
    { input: stdin ?? spec.inputUrl, inputOptions: ffmpegInputOptions(spec), outputOptions: ffmpegOutputOptions(spec), format: 'mpegts' },
    handlers,
  );
}
