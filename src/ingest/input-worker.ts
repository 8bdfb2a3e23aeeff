/**
 * One contribution input of a channel: runs its FFmpeg encoder (through the adapter),
 * demuxes the MPEG-TS it writes, parses ADTS per rendition, aligns the renditions into
 * frame groups and hands them on. A feed that sends garbage or stops is logged with
 * channel and input id and counted; FFmpeg is restarted with capped, jittered backoff.
 * Nothing a feed sends can throw out of here.
 */
import type { Logger } from 'pino';
import type { ChannelConfig, InputConfig } from '../config/config-schema.js';
import { AdtsReader, type AacFrame } from '../media/adts.js';
import { TsDemuxer } from '../media/ts-demuxer.js';
import { startEncoder as startFfmpegEncoder, type EncoderExit, type EncoderProcess, type EncoderSpec } from './ffmpeg-adapter.js';
import { RenditionAligner } from './rendition-aligner.js';

/** ISO/IEC 13818-1 stream_type for ADTS AAC. */
const STREAM_TYPE_ADTS_AAC = 0x0f;
const BACKOFF_INITIAL_MS = 500;
const BACKOFF_MAX_MS = 10_000;
/** A run that lasted this long was healthy: the next failure starts the backoff again. */
const HEALTHY_RUN_MS = 30_000;
const GARBAGE_LOG_INTERVAL_MS = 5_000;

export interface InputStats {
  encoderStarts: number;
  encoderRestarts: number;
  bytesReceived: number;
  frameGroups: number;
  /** Bad bytes seen: TS resyncs, continuity errors, ADTS resyncs, unmatched frames. */
  garbageEvents: number;
  ffmpegWarnings: number;
  lastFrameAt: number | undefined;
}

export interface InputWorkerOptions {
  channel: ChannelConfig;
  input: InputConfig;
  logger: Logger;
  onFrameGroups: (groups: AacFrame[][]) => void;
  startEncoder?: typeof startFfmpegEncoder;
  now?: () => number;
}

export class InputWorker {
  readonly stats: InputStats = {
    encoderStarts: 0,
    encoderRestarts: 0,
    bytesReceived: 0,
    frameGroups: 0,
    garbageEvents: 0,
    ffmpegWarnings: 0,
    lastFrameAt: undefined,
  };
  readonly inputId: string;
  private readonly options: InputWorkerOptions;
  private readonly logger: Logger;
  private readonly now: () => number;
  private encoder: EncoderProcess | undefined;
  private encoderExited: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private runStartedAt = 0;
  private lastGarbageLog = 0;
  private stopping = false;

  constructor(options: InputWorkerOptions) {
    this.options = options;
    this.inputId = options.input.id;
    this.now = options.now ?? Date.now;
    this.logger = options.logger.child({ channel: options.channel.id, input: options.input.id });
  }

  start(): void {
    this.stopping = false;
    this.launch();
  }

  /** Stops FFmpeg (SIGTERM, then SIGKILL after `graceMs`) and waits for it to exit. */
  async close(graceMs = 2000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const encoder = this.encoder;
    const exited = this.encoderExited;
    if (!encoder || !exited) return;
    encoder.kill('SIGTERM');
    const killTimer = setTimeout(() => encoder.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(killTimer);
  }

  private launch(): void {
    const spec = encoderSpecFor(this.options.channel, this.options.input);
    const demuxer = new TsDemuxer();
    const aligner = new RenditionAligner(this.options.channel.renditions.length);
    const readers = new Map<number, { index: number; reader: AdtsReader }>();
    let resolveExit!: () => void;
    this.encoderExited = new Promise((resolve) => (resolveExit = resolve));
    this.stats.encoderStarts += 1;
    this.runStartedAt = this.now();
    let garbageSeen = 0;

    const encoder = (this.options.startEncoder ?? startFfmpegEncoder)(spec, {
      onStderrLine: (line) => {
        if (line.trim() === '' || this.stopping) return;
        this.stats.ffmpegWarnings += 1;
        this.logger.warn({ ffmpeg: line }, 'ffmpeg reported a problem with the feed');
      },
      onExit: (exit) => {
        resolveExit();
        this.onEncoderExit(exit);
      },
    });
    this.encoder = encoder;

    encoder.stdout.on('data', (chunk: Buffer) => {
      this.stats.bytesReceived += chunk.byteLength;
      const groups: AacFrame[][] = [];
      for (const event of demuxer.push(chunk)) {
        if (event.kind === 'pmt') {
          readers.clear();
          const audio = event.streams.filter((stream) => stream.streamType === STREAM_TYPE_ADTS_AAC);
          audio.forEach((stream, index) => readers.set(stream.pid, { index, reader: new AdtsReader() }));
          if (audio.length !== this.options.channel.renditions.length) {
            this.logger.error({ streams: audio.length }, 'encoder output has an unexpected number of AAC streams');
          }
          continue;
        }
        const target = readers.get(event.pid);
        if (!target) continue;
        const frames = target.reader.push(event.payload, event.pts);
        groups.push(...aligner.push(target.index, frames));
      }
      if (groups.length > 0) {
        this.stats.frameGroups += groups.length;
        this.stats.lastFrameAt = this.now();
        this.options.onFrameGroups(groups);
      }
      const garbage = countGarbage(demuxer, readers, aligner);
      if (garbage > garbageSeen) {
        this.stats.garbageEvents += garbage - garbageSeen;
        garbageSeen = garbage;
        this.logGarbage();
      }
    });
  }

  private logGarbage(): void {
    const now = this.now();
    if (now - this.lastGarbageLog < GARBAGE_LOG_INTERVAL_MS) return;
    this.lastGarbageLog = now;
    this.logger.warn({ garbageEvents: this.stats.garbageEvents }, 'feed delivered bytes that are not clean MPEG-TS/ADTS; skipped');
  }

  private onEncoderExit(exit: EncoderExit): void {
    this.encoder = undefined;
    if (this.stopping) return;
    const ranFor = this.now() - this.runStartedAt;
    this.failures = ranFor >= HEALTHY_RUN_MS ? 1 : this.failures + 1;
    const delay = backoffDelay(this.failures);
    this.logger.warn({ code: exit.code, signal: exit.signal, reason: exit.reason, restartInMs: delay }, 'input encoder stopped');
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.stats.encoderRestarts += 1;
      this.launch();
    }, delay);
  }
}

/** Exponential backoff with ±25 % jitter, capped at 10 s. */
export function backoffDelay(failures: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.max(0, failures - 1));
  return Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + random() * 0.5)));
}

function countGarbage(demuxer: TsDemuxer, readers: Map<number, { reader: AdtsReader }>, aligner: RenditionAligner): number {
  let total = demuxer.stats.resyncs + demuxer.stats.continuityErrors + aligner.stats.droppedFrames;
  for (const { reader } of readers.values()) total += reader.stats.resyncs;
  return total;
}

/** What FFmpeg is asked to do for this input. SRT options become URL options (FFmpeg's srt protocol). */
export function encoderSpecFor(channel: ChannelConfig, input: InputConfig): EncoderSpec {
  const isFile = input.url.startsWith('/') || input.url.startsWith('file:');
  return {
    inputUrl: inputUrlWithOptions(input),
    sampleRate: channel.sampleRate,
    renditions: channel.renditions.map((rendition) => ({
      bitrate: rendition.bitrate,
      audioChannels: rendition.audioChannels ?? channel.audioChannels,
    })),
    realtime: isFile,
    loop: isFile,
  };
}

export function inputUrlWithOptions(input: InputConfig): string {
  if (!input.url.startsWith('srt://') || !input.srt) return input.url;
  // FFmpeg reads SRT options from the query verbatim (no URL-decoding), so they are appended
  // as they are; the config schema only lets through values that need no escaping.
  const options: string[] = [];
  // FFmpeg's srt latency is in microseconds; the config speaks milliseconds.
  if (input.srt.latency !== undefined) options.push(`latency=${input.srt.latency * 1000}`);
  if (input.srt.passphrase !== undefined) options.push(`passphrase=${input.srt.passphrase}`);
  if (input.srt.streamid !== undefined) options.push(`streamid=${input.srt.streamid}`);
  if (options.length === 0) return input.url;
  return `${input.url}${input.url.includes('?') ? '&' : '?'}${options.join('&')}`;
}
