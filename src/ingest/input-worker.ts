/**
 * One contribution input of a channel: runs its FFmpeg encoder (src/ffmpeg/live-encoder.ts),
 * demuxes the MPEG-TS it writes, parses ADTS (or MPEG audio for MP3) per rendition, aligns the renditions into
 * frame groups and hands them on. A feed that sends garbage or stops is logged with
 * channel and input id and counted. FFmpeg is supervised: one that exits is restarted with
 * capped, jittered backoff; one that hangs (no output for `stallTimeoutMs` once it has
 * produced some, or none within `startTimeoutMs` of its start unless it is an SRT listener
 * waiting for its caller) is killed and restarted the same way. With `silenceSeconds`,
 * FFmpeg's silencedetect tells when the feed is digital silence (`silent`).
 * A fed input (an Icecast source mount, a pulled ICY stream: input-feed.ts) gets its audio
 * from its feed before each run and pipes it into FFmpeg's stdin; the titles the feed learns
 * go to `onNowPlaying`. While a source mount waits for its client no FFmpeg runs, so the input
 * is unhealthy; when the client leaves, the worker waits for the next one at once.
 * Nothing a feed sends can throw out of here.
 */
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { Logger } from 'pino';
import { acceptsAnySender, srtListenerAddress, type ChannelConfig, type InputConfig } from '../config/config-schema.js';
import { redactText, redactUrl } from '../logging/redact.js';
import { AdtsReader, type AacFrame } from '../media/adts.js';
import { FlacReader } from '../media/flac.js';
import { MpegAudioReader } from '../media/mpeg-audio.js';
import { OpusReader } from '../media/opus.js';
import { TsDemuxer, type DemuxEvent } from '../media/ts-demuxer.js';
import type { EncoderSpec } from '../ffmpeg/encoder-arguments.js';
import type { FfmpegExit } from '../ffmpeg/ffmpeg-process.js';
import { startEncoder as startFfmpegEncoder, type EncoderProcess } from '../ffmpeg/live-encoder.js';
import { backoffDelay } from '../ffmpeg/restart-backoff.js';
import { PassThrough } from 'node:stream';
import type { NowPlaying } from '../media/now-playing.js';
import { feedForInput } from './feed-for-input.js';
import type { FeedStream, InputFeed } from './input-feed.js';
import { RenditionAligner, type RenditionCodec } from './rendition-aligner.js';

/**
 * ISO/IEC 13818-1 stream_type (Table 2-34) of each rendition codec: ADTS AAC; MPEG-1 or MPEG-2 audio (FFmpeg writes MP3 below
 * 32 kHz as the latter); Opus and FLAC as PES private data (0x06; FFmpeg adds an `Opus` registration descriptor, FLAC has none).
 */
const STREAM_TYPES: Record<RenditionCodec, readonly number[]> = { aac: [0x0f], mp3: [0x03, 0x04], opus: [0x06], flac: [0x06] };
const AUDIO_STREAM_TYPES = new Set(Object.values(STREAM_TYPES).flat());

/** The frame reader of a rendition's elementary stream, by codec. */
function readerFor(codec: RenditionCodec): AdtsReader | MpegAudioReader | OpusReader | FlacReader {
  switch (codec) {
    case 'mp3':
      return new MpegAudioReader();
    case 'opus':
      return new OpusReader();
    case 'flac':
      return new FlacReader();
    default:
      return new AdtsReader();
  }
}
/** A run that lasted this long was healthy: the next failure starts the backoff again. */
const HEALTHY_RUN_MS = 30_000;
const GARBAGE_LOG_INTERVAL_MS = 5_000;
const STALL_TIMEOUT_MS = 5_000;
const START_TIMEOUT_MS = 15_000;

export interface InputStats {
  encoderStarts: number;
  encoderRestarts: number;
  /** Encoders killed by the watchdog: no output within the start or stall timeout. */
  hangKills: number;
  bytesReceived: number;
  frameGroups: number;
  /** Bad bytes seen: TS resyncs, continuity errors, ADTS resyncs, unmatched frames. */
  garbageEvents: number;
  ffmpegWarnings: number;
  /** Times FFmpeg reported the feed went silent (silencedetect, with `silenceSeconds`). */
  silenceDetections: number;
  lastFrameAt: number | undefined;
}

export interface InputWorkerOptions {
  channel: ChannelConfig;
  input: InputConfig;
  logger: Logger;
  onFrameGroups: (groups: AacFrame[][]) => void;
  /** Called when the encoder starts or exits, and when `silent` changes. */
  onStateChange?: () => void;
  /** Once a run has produced output, this long without a byte means FFmpeg hangs (default 5000 ms). */
  stallTimeoutMs?: number;
  /** A run (other than an SRT listener's) that produces nothing for this long hangs too (default 15000 ms). */
  startTimeoutMs?: number;
  startEncoder?: typeof startFfmpegEncoder;
  /** Restart backoff, the watchdog, the kill grace and stamps run on it; default the system clock. */
  clock?: Clock;
  /** The demuxer or ADTS parser threw (a bug a feed provoked): the owner restarts the channel. Unset: it is thrown. */
  onParserFault?: (error: unknown) => void;
  /** A title the input's feed learned (a source client's metadata, a pulled stream's StreamTitle). */
  onNowPlaying?: (nowPlaying: NowPlaying) => void;
  /** Where a fed input's audio comes from; default from the input's config (feed-for-input.ts). */
  feed?: InputFeed;
}

export class InputWorker {
  readonly stats: InputStats = {
    encoderStarts: 0,
    encoderRestarts: 0,
    hangKills: 0,
    bytesReceived: 0,
    frameGroups: 0,
    garbageEvents: 0,
    ffmpegWarnings: 0,
    silenceDetections: 0,
    lastFrameAt: undefined,
  };
  readonly inputId: string;
  private readonly options: InputWorkerOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private encoder: EncoderProcess | undefined;
  private encoderExited: Promise<void> | undefined;
  private restartTimer: Timer | undefined;
  private watchdog: Timer | undefined;
  private failures = 0;
  /** When the running encoder last wrote a byte (the stall watchdog's reference). */
  private lastOutputAt = 0;
  private runStartedAt = 0;
  private lastGarbageLog = 0;
  private stopping = false;
  private feedSilent = false;
  /** Where a fed input's audio comes from (undefined: FFmpeg reads the URL). */
  private readonly feed: InputFeed | undefined;

  constructor(options: InputWorkerOptions) {
    this.options = options;
    this.inputId = options.input.id;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger.child({ channel: options.channel.id, input: options.input.id });
    this.feed = options.feed ?? feedForInput(options.input, this.logger, { onNowPlaying: (nowPlaying) => this.options.onNowPlaying?.(nowPlaying) });
  }

  /** An encoder process is alive (started and not yet exited). */
  get running(): boolean {
    return this.encoder !== undefined;
  }

  /** FFmpeg reports the feed as digital silence for `silenceSeconds` (false when detection is off or after a restart). */
  get silent(): boolean {
    return this.feedSilent;
  }

  /** The running encoder's process id (for diagnostics and tests). */
  get encoderPid(): number | undefined {
    return this.encoder?.pid();
  }

  start(): void {
    this.stopping = false;
    if (acceptsAnySender(this.options.input)) {
      this.logger.warn({ url: redactUrl(this.options.input.url) }, 'input accepts audio from any sender that reaches it (allowUnauthenticated)');
    }
    this.feed?.start();
    this.run();
  }

  /** Starts the next encoder run: at once, or once the feed has a stream. */
  private run(): void {
    const feed = this.feed;
    if (!feed) {
      this.launch();
      return;
    }
    this.runStartedAt = this.clock.now();
    feed.next().then(
      (stream) => {
        if (!stream) return;
        if (this.stopping) stream.release();
        else this.launch(stream);
      },
      (error: unknown) => {
        if (this.stopping) return;
        this.onEncoderExit({ code: null, signal: null, reason: error instanceof Error ? error.message : String(error) });
      },
    );
  }

  /** Stops FFmpeg (SIGTERM, then SIGKILL after `graceMs`) and waits for it to exit. */
  async close(graceMs = 2000): Promise<void> {
    this.stopping = true;
    this.restartTimer?.cancel();
    this.disarmWatchdog();
    await this.feed?.close();
    const encoder = this.encoder;
    const exited = this.encoderExited;
    if (!encoder || !exited) return;
    encoder.kill('SIGTERM');
    const killTimer = this.clock.setTimeout(() => encoder.kill('SIGKILL'), graceMs);
    await exited;
    killTimer.cancel();
  }

  private launch(stream?: FeedStream): void {
    const inputSpec = encoderSpecFor(this.options.channel, this.options.input);
    // A fed input: FFmpeg reads the feed's audio on stdin, in the container it was told.
    const spec = stream ? { ...inputSpec, inputUrl: 'pipe:0', inputFormat: stream.format, realtime: false, loop: false } : inputSpec;
    const stdin = stream ? new PassThrough() : undefined;
    if (stream && stdin) stream.audio.pipe(stdin);
    const output = new EncoderOutputReader(renditionCodecs(this.options.channel), (streams) => {
      this.logger.error({ streams }, 'encoder output has unexpected audio streams');
    });
    let resolveExit!: () => void;
    this.encoderExited = new Promise((resolve) => (resolveExit = resolve));
    this.stats.encoderStarts += 1;
    this.runStartedAt = this.clock.now();
    let garbageSeen = 0;

    const encoder = (this.options.startEncoder ?? startFfmpegEncoder)(spec, {
      logger: this.logger,
      onStderrLine: (line) => {
        if (line.trim() === '' || this.stopping) return;
        this.stats.ffmpegWarnings += 1;
        this.logger.warn({ ffmpeg: redactText(line) }, 'ffmpeg reported a problem with the feed');
      },
      onSilence: (silent) => {
        if (this.encoder === encoder) this.setSilent(silent);
      },
      onExit: (exit) => {
        if (stream && stdin) {
          stream.audio.unpipe(stdin);
          stdin.destroy();
          stream.release();
        }
        resolveExit();
        this.onEncoderExit(exit);
      },
    }, stdin);
    this.encoder = encoder;
    this.armWatchdog(encoder, false);
    this.notifyStateChange();

    let producedOutput = false;
    encoder.stdout.on('data', (chunk: Buffer) => {
      if (this.encoder === encoder && !this.stopping) {
        // The first bytes switch from the start timeout to the stall timeout; later ones push it back.
        this.lastOutputAt = this.clock.now();
        if (!producedOutput) this.armWatchdog(encoder, true);
        producedOutput = true;
      }
      this.stats.bytesReceived += chunk.byteLength;
      let groups: AacFrame[][];
      try {
        groups = output.push(chunk);
      } catch (error) {
        if (!this.options.onParserFault) throw error;
        this.options.onParserFault(error);
        return;
      }
      if (groups.length > 0) {
        this.stats.frameGroups += groups.length;
        this.stats.lastFrameAt = this.clock.now();
        this.options.onFrameGroups(groups);
      }
      if (output.garbage > garbageSeen) {
        this.stats.garbageEvents += output.garbage - garbageSeen;
        garbageSeen = output.garbage;
        this.logGarbage();
      }
    });
  }

  /**
   * Kills a hung encoder: once it has produced output, after `stallTimeoutMs` without a byte;
   * before that, after `startTimeoutMs`, except for inputs that wait passively for a sender
   * (an SRT listener, udp://, rtp://).
   */
  private armWatchdog(encoder: EncoderProcess, producedOutput: boolean): void {
    this.disarmWatchdog();
    if (!producedOutput && waitsForSender(this.options.input.url)) return;
    const timeoutMs = producedOutput
      ? (this.options.stallTimeoutMs ?? STALL_TIMEOUT_MS)
      : (this.options.startTimeoutMs ?? START_TIMEOUT_MS);
    const check = (): void => {
      if (this.encoder !== encoder || this.stopping) return;
      // Output since the timer was set pushes the deadline back (one timer, not one per chunk).
      const idleMs = producedOutput ? this.clock.now() - this.lastOutputAt : timeoutMs;
      if (idleMs < timeoutMs) {
        this.watchdog = this.clock.setTimeout(check, timeoutMs - idleMs);
        return;
      }
      this.stats.hangKills += 1;
      this.logger.error(
        { pid: encoder.pid(), timeoutMs, producedOutput },
        producedOutput ? 'encoder stopped producing output; killing it' : 'encoder produced no output after its start; killing it',
      );
      encoder.kill('SIGKILL');
    };
    this.watchdog = this.clock.setTimeout(check, timeoutMs);
  }

  private disarmWatchdog(): void {
    this.watchdog?.cancel();
    this.watchdog = undefined;
  }

  private setSilent(silent: boolean): void {
    if (this.feedSilent === silent) return; // the same edge again (e.g. a line repeated): nothing changed
    this.feedSilent = silent;
    if (silent) this.stats.silenceDetections += 1;
    if (silent) this.logger.warn({ silenceSeconds: this.options.channel.silenceSeconds }, 'feed is digital silence');
    else this.logger.info('feed is audible again');
    this.notifyStateChange();
  }

  private notifyStateChange(): void {
    try {
      this.options.onStateChange?.();
    } catch (error) {
      this.logger.error({ err: error }, 'input state listener failed');
    }
  }

  private logGarbage(): void {
    const now = this.clock.now();
    if (now - this.lastGarbageLog < GARBAGE_LOG_INTERVAL_MS) return;
    this.lastGarbageLog = now;
    this.logger.warn({ garbageEvents: this.stats.garbageEvents }, 'feed delivered bytes that are not clean MPEG-TS/ADTS; skipped');
  }

  private onEncoderExit(exit: FfmpegExit): void {
    this.disarmWatchdog();
    this.encoder = undefined;
    this.feedSilent = false; // nothing is known of the next run's audio yet
    this.notifyStateChange();
    if (this.stopping) return;
    const ranFor = this.clock.now() - this.runStartedAt;
    // A source client that left ends its run cleanly (EOF on stdin): wait for the next one at once.
    const senderLeft = this.feed?.waitsForSender === true && exit.code === 0;
    this.failures = senderLeft ? 0 : ranFor >= HEALTHY_RUN_MS ? 1 : this.failures + 1;
    const delay = senderLeft ? 0 : backoffDelay(this.failures);
    const reason = exit.reason === undefined ? undefined : redactText(exit.reason);
    if (senderLeft) this.logger.info('source client gone; waiting for the next');
    else this.logger.warn({ code: exit.code, signal: exit.signal, reason, restartInMs: delay }, 'input encoder stopped');
    this.restartTimer = this.clock.setTimeout(() => {
      if (this.stopping) return;
      this.stats.encoderRestarts += 1;
      this.run();
    }, delay);
  }
}

/**
 * Turns the MPEG-TS an encoder writes (stream i = rendition i) into frame groups: TS demux,
 * ADTS per AAC stream, MPEG audio per MP3 stream, Opus access units or FLAC frames, renditions aligned by PTS. One per
 * encoder run; pure, no I/O.
 */
export class EncoderOutputReader {
  private readonly demuxer = new TsDemuxer();
  private readonly aligner: RenditionAligner;
  private readonly readers = new Map<number, { index: number; reader: AdtsReader | MpegAudioReader | OpusReader | FlacReader }>();
  private readonly codecs: readonly RenditionCodec[];

  /** `renditions`: each rendition's codec in stream order, or a count of AAC renditions. */
  constructor(
    renditions: number | readonly RenditionCodec[],
    private readonly onUnexpectedStreams: (streams: number) => void = () => undefined,
  ) {
    this.aligner = new RenditionAligner(renditions);
    this.codecs = typeof renditions === 'number' ? Array.from({ length: renditions }, () => 'aac' as const) : renditions;
  }

  /** Bad bytes so far: TS resyncs and continuity errors, ADTS/MPEG audio resyncs, frames without a partner. */
  get garbage(): number {
    let total = this.demuxer.stats.resyncs + this.demuxer.stats.continuityErrors + this.aligner.stats.droppedFrames;
    for (const { reader } of this.readers.values()) total += reader.stats.resyncs;
    return total;
  }

  push(chunk: Uint8Array): AacFrame[][] {
    return this.groupsOf(this.demuxer.push(chunk));
  }

  /** The end of the stream: the groups still held by the last packets. */
  flush(): AacFrame[][] {
    return [...this.groupsOf(this.demuxer.flush()), ...this.aligner.flush()];
  }

  private groupsOf(events: DemuxEvent[]): AacFrame[][] {
    const groups: AacFrame[][] = [];
    for (const event of events) {
      if (event.kind === 'pmt') {
        this.readers.clear();
        const audio = event.streams.filter((stream) => AUDIO_STREAM_TYPES.has(stream.streamType));
        // Stream i must be rendition i in its codec; a stream of another codec is not read.
        audio.forEach((stream, index) => {
          const codec = this.codecs[index];
          if (codec === undefined || !STREAM_TYPES[codec].includes(stream.streamType)) return;
          this.readers.set(stream.pid, { index, reader: readerFor(codec) });
        });
        if (audio.length !== this.codecs.length || this.readers.size !== audio.length) this.onUnexpectedStreams(audio.length);
        continue;
      }
      const target = this.readers.get(event.pid);
      if (!target) continue;
      groups.push(...this.aligner.push(target.index, target.reader.push(event.payload, event.pts)));
    }
    return groups;
  }
}

/** Each rendition's codec, in order: stream i of the encoder's output is rendition i. */
export function renditionCodecs(channel: ChannelConfig): RenditionCodec[] {
  return channel.renditions.map((rendition) => rendition.codec);
}

/** An input FFmpeg receives rather than fetches: silence before the first packet is normal. */
function waitsForSender(url: string): boolean {
  return srtListenerAddress(url) !== undefined || url.startsWith('udp:') || url.startsWith('rtp:');
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
      codec: rendition.codec,
      ...(rendition.bitDepth !== undefined ? { bitDepth: rendition.bitDepth } : {}),
    })),
    realtime: isFile,
    loop: isFile,
    ...(channel.silenceSeconds !== undefined ? { silenceSeconds: channel.silenceSeconds } : {}),
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
