/**
 * Encodes a clip (a jingle, the safety source's fallback file) into the channel's renditions
 * once, with the live encoder's output options, for src/ingest/safety-source.ts.
 */
import type { Logger } from 'pino';
import { OnairError } from '../errors.js';
import { ffmpegOutputOptions, type EncoderRendition } from './encoder-arguments.js';
import { pipeFfmpeg, type FfmpegExit } from './ffmpeg-process.js';

/**
 * `encodeClip` gives up on FFmpeg after this long. AAC encoding runs at roughly 15–50× real
 * time per stream, so 10 minutes of a 192k rendition take up to ~45 s on a busy machine.
 */
const CLIP_TIMEOUT_MS = 300_000;
const CLIP_NICENESS = 10;

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
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let exit: FfmpegExit | undefined;
    let outputEnded = false;
    // fluent-ffmpeg reports the exit without waiting for stdout to be drained: wait for both.
    const settle = (): void => {
      if (!exit || (exit.code === 0 && !outputEnded)) return;
      clearTimeout(timer);
      if (exit.code === 0) resolve(Buffer.concat(chunks));
      else reject(new OnairError('ONAIR_INPUT_FAILED', `FFmpeg could not encode ${spec.path}: ${exit.reason ?? `exit ${exit.code ?? exit.signal}`}`));
    };
    const encoder = pipeFfmpeg(
      {
        input: spec.path,
        niceness: CLIP_NICENESS,
        inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', '-t', String(spec.maxSeconds)],
        outputOptions: ffmpegOutputOptions({ inputUrl: spec.path, sampleRate: spec.sampleRate, renditions: spec.renditions }),
        format: 'mpegts',
      },
      {
        onStderrLine: () => undefined,
        onExit: (result) => {
          exit = result;
          settle();
        },
        logger: options.logger,
      },
    );
    const timer = setTimeout(() => encoder.kill('SIGKILL'), options.timeoutMs ?? CLIP_TIMEOUT_MS);
    encoder.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    encoder.stdout.on('end', () => {
      outputEnded = true;
      settle();
    });
  });
}
