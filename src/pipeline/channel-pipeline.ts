/**
 * One channel's pipeline, the data flow of docs/architecture.md, Data flow: its inputs (each
 * with its own FFmpeg, all hot) → the input selector with the channel's safety source behind
 * them → the packager, and the leadership loop that decides whether this process writes the
 * channel or stands by (hot standby, docs/architecture.md, Failure model). A standby runs
 * everything but the writes, so a takeover publishes at once. With recordings on (a jobs
 * runner given), a session recorder is attached: the packager's `segment` events and the
 * selector's switches feed it, and it records while this process leads. This is where the
 * stages meet; none of them knows the others. It also follows the channel's now playing in
 * the store (read at start, re-read on each announcement) and hands it to the packager, which
 * puts it into the segments as timed metadata (docs/architecture.md, "Timed metadata").
 *
 * Fault containment (docs/architecture.md, Failure model: "one channel's code throws"): every
 * way into the stages — the parser's bytes, the selector's frames and ticks, the packager's
 * frame groups — is guarded. An exception there stops this channel's pipeline (nothing more
 * goes in), is logged with ONAIR_CHANNEL_FAULT and the stage, and is reported to `onFault`:
 * the ingest service restarts the channel (ingest-service.ts). Other channels never see it.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ChannelConfig, OnairConfig } from '../config/config-schema.js';
import type { MuxerFactory } from '../media/muxer.js';
import { parseNowPlaying } from '../media/now-playing.js';
import { OnairError } from '../errors.js';
import type { startEncoder } from '../ffmpeg/live-encoder.js';
import { renderChannelMpds } from '../dash/channel-mpd.js';
import { ChannelPackager } from '../hls/channel-packager.js';
import type { WindowSegment } from '../hls/sequence-state.js';
import { ChannelLeadership, defaultLeaseMs } from '../ingest/channel-leadership.js';
import { FALLBACK_SOURCE_ID, InputSelector, type InputSwitch } from '../ingest/input-selector.js';
import { InputWorker } from '../ingest/input-worker.js';
import { loadSafetySource } from '../ingest/safety-source.js';
import type { RecordingCatalog } from '../recording/recording-catalog.js';
import { SessionRecorder, type RecordingJobQueue, type SessionRecorderOptions } from '../recording/session-recorder.js';
import { serializeNowPlaying, type NowPlaying } from '../media/now-playing.js';
import { hasContentKeys, type ChannelStatusStore, type LeaseStore, type NowPlayingStore, type SegmentPublishStore } from '../store/store.js';

/** How often the selector re-evaluates health and fills gaps. */
const SELECTOR_TICK_MS = 20;
/** The selector's clock: monotonic, never stepped by NTP. */
const monotonicNow = (): number => performance.now();
/** A failed read of the now playing is tried again after this long (one retry pending at most). */
const NOW_PLAYING_RETRY_MS = 1000;

export interface PipelineOptions {
  config: OnairConfig;
  /** What a channel's pipeline writes: segments and playlists, its lease, its status, its feeds' titles; and the now playing it reads. */
  store: SegmentPublishStore & LeaseStore & ChannelStatusStore & Pick<NowPlayingStore, 'putNowPlaying' | 'getNowPlaying' | 'subscribeNowPlaying'>;
  logger: Logger;
  startEncoder?: typeof startEncoder;
  /** Recordings (src/recording): where sessions go, who stitches them, the now playing for chapters. None: nothing is recorded. */
  recordings?: { catalog: RecordingCatalog; jobs: RecordingJobQueue; nowPlaying?: SessionRecorderOptions['nowPlaying'] };
  /** This process's admin listener (/metrics, /api), stored in the status of the channels it leads. */
  adminUrl?: string;
  /** A stage of the channel threw; the pipeline has stopped taking audio (see the header). */
  onFault?: (fault: ChannelFault) => void;
  /**
   * Replaces a channel's segment muxers (default MPEG-TS). Only tests set it, to make one
   * channel's packager throw: no real feed can (the parsers resynchronise on bad bytes).
   */
  muxersFor?: (channel: ChannelConfig) => MuxerFactory | undefined;
}

/** Where a channel's exception was caught. */
export type FaultStage = 'parser' | 'selector' | 'packager';

export interface ChannelFault {
  channel: string;
  stage: FaultStage;
  error: OnairError;
}

/** What the store keeps per channel for the API and metrics (`Store.putStatus`). */
export interface ChannelStatus {
  activeInput: string | undefined;
  since: number;
  reason: string;
  inputs: { id: string; healthy: boolean }[];
  /** The leading packager, `host:pid:random`. */
  leader: string;
  /** The input an operator pinned on air through the control API, if any. */
  pinned?: string;
  /** The leader's admin listener, e.g. `http://127.0.0.1:9465`: where its /metrics are scraped. */
  admin?: string;
}

export class ChannelPipeline {
  readonly packager: ChannelPackager;
  readonly inputs: InputWorker[];
  readonly leadership: ChannelLeadership;
  /** Records the channel's sessions while this process leads it (when recordings are on). */
  readonly recorder: SessionRecorder | undefined;
  selector: InputSelector | undefined;
  private readonly channel: ChannelConfig;
  private readonly options: PipelineOptions;
  private readonly logger: Logger;
  private tickTimer: NodeJS.Timeout | undefined;
  private lastSwitch: { change: InputSwitch; wallClock: number } | undefined;
  /** Input switches so far, by reason (for metrics). */
  readonly switches = new Map<string, number>();
  /** Set by close(): encoders exiting now are a stop, not a failure to switch away from. */
  private closing = false;
  /** Set by the first exception of a stage: nothing more goes into the pipeline. */
  private faulted = false;
  /** The last title each input's feed sent (a source client's metadata, a StreamTitle). */
  private readonly inputTitles = new Map<string, NowPlaying>();
  /** The now-playing subscription, the number of the latest read, the JSON last handed on, a pending retry. */
  private stopNowPlaying: (() => Promise<void>) | undefined;
  private nowPlayingReads = 0;
  private nowPlayingJson: string | null = null;
  private nowPlayingRetry: NodeJS.Timeout | undefined;

  constructor(channel: ChannelConfig, options: PipelineOptions) {
    this.channel = channel;
    this.options = options;
    this.logger = options.logger.child({ channel: channel.id });
    const { hls, ingest } = options.config;
    this.packager = new ChannelPackager({
      channel,
      segmentSeconds: hls.segmentSeconds,
      windowSegments: hls.windowSegments,
      store: options.store,
      logger: options.logger,
      standby: true,
      muxers: options.muxersFor?.(channel),
      // fmp4 channels are MPEG-DASH too: the MPDs go out with the playlists (docs/architecture.md, "MPEG-DASH manifests").
      ...(channel.container === 'fmp4' ? { manifests: (state) => renderChannelMpds(channel, state) } : {}),
      // Encrypted channels keep their keys in the store (docs/architecture.md, "Content encryption").
      ...(hasContentKeys(options.store) ? { contentKeys: options.store } : {}),
    });
    this.inputs = channel.inputs.map(
      (input, priority) =>
        new InputWorker({
          channel,
          input,
          logger: options.logger,
          startEncoder: options.startEncoder,
          onFrameGroups: (groups) => this.guard('selector', () => this.selector?.push(priority, groups, monotonicNow())),
          onStateChange: () => {
            if (!this.closing) this.guard('selector', () => this.selector?.tick(monotonicNow()));
          },
          onParserFault: (error) => this.fault('parser', error),
          onNowPlaying: (nowPlaying) => this.inputNowPlaying(input.id, nowPlaying),
        }),
    );
    this.leadership = new ChannelLeadership({
      store: options.store,
      channel: channel.id,
      leaseMs: ingest.leaseMs ?? defaultLeaseMs(this.packager.schedule.targetDuration()),
      logger: options.logger,
      onLead: async (lease) => {
        // Before the packager publishes: its first segments are recorded too.
        void this.recorder?.lead();
        try {
          await this.packager.promote(lease.token);
        } catch (error) {
          void this.recorder?.standBy();
          throw error;
        }
        this.writeStatus();
      },
      onFollow: () => {
        this.packager.demote();
        void this.recorder?.standBy();
      },
    });
    this.packager.on('fenced', () => this.leadership.fenced());
    if (options.recordings) {
      this.recorder = new SessionRecorder({ channel, store: options.store, logger: options.logger, ...options.recordings });
      this.packager.on('segment', (entry: WindowSegment) => void this.recorder!.segmentPublished(entry));
    }
  }

  async start(): Promise<void> {
    // Silence is ready at once; a fallback file is encoded in the background (it can take
    // a while) and replaces it when ready, so the inputs never wait for it.
    let safety = await loadSafetySource({ ...this.channel, fallback: 'silence' }, { logger: this.options.logger });
    if (this.channel.fallback !== 'silence') {
      void loadSafetySource(this.channel, { logger: this.options.logger }).then((loaded) => (safety = loaded));
    }
    this.selector = new InputSelector({
      inputs: this.inputs,
      safety: { nextGroup: () => safety.nextGroup() },
      sampleRate: this.channel.sampleRate,
      inputTimeoutMs: this.channel.inputTimeoutMs,
      recoverMs: this.channel.recoverSeconds * 1000,
      bufferMs: this.options.config.ingest.bufferMs,
      emit: (group) => this.guard('packager', () => this.packager.pushFrameGroup(group)),
      onSwitch: (change) => this.onSwitch(change),
    });
    // In the background: a store that is slow to answer never holds the audio up.
    void this.followNowPlaying();
    await this.packager.start();
    for (const input of this.inputs) input.start();
    this.tickTimer = setInterval(() => this.guard('selector', () => this.selector!.tick(monotonicNow())), SELECTOR_TICK_MS);
    this.leadership.start();
  }

  /**
   * An operator's manual switch: pins `inputId` on air, or releases the pin (undefined).
   * Throws OnairError ONAIR_INPUT_UNKNOWN for an input the channel does not have,
   * ONAIR_NOT_LEADING where this process stands by (its selector is not what listeners
   * hear) and ONAIR_CHANNEL_NOT_STARTED before the channel runs.
   */
  pin(inputId: string | undefined): void {
    if (!this.packager.isLeading) {
      throw new OnairError('ONAIR_NOT_LEADING', `this process stands by for ${this.channel.id}: switch on the one that leads it (its status names the leader)`);
    }
    if (!this.selector) throw new OnairError('ONAIR_CHANNEL_NOT_STARTED', 'the channel has not started yet', { where: this.channel.id });
    this.selector.pin(inputId, monotonicNow());
    this.logger.info({ pinned: inputId ?? null }, inputId ? 'input pinned by an operator' : 'input pin released');
    this.writeStatus();
  }

  /** Health of each input right now, and the source on air (an input id, `fallback`, or none yet). */
  inputStates(): { inputs: { id: string; healthy: boolean }[]; active: string | undefined } {
    return { inputs: this.selector?.inputHealth(monotonicNow()) ?? [], active: this.selector?.activeSource };
  }

  /** Ends the inputs, stores the segments already cut (still leading), then hands the lease over. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.tickTimer);
    clearTimeout(this.nowPlayingRetry);
    await this.stopNowPlaying?.().catch(() => undefined);
    await Promise.all(this.inputs.map((input) => input.close()));
    await this.packager.close();
    // After the packager's last segments, before the lease goes: a standby then finds the session ended.
    await this.recorder?.close();
    await this.leadership.close();
  }

  /** Subscribes to now-playing announcements (this channel's), then reads the current one. */
  private async followNowPlaying(): Promise<void> {
    try {
      const stop = await this.options.store.subscribeNowPlaying((channel) => {
        if (channel === this.channel.id) void this.readNowPlaying();
      });
      if (this.closing) await stop();
      else this.stopNowPlaying = stop;
    } catch (error) {
      this.logger.warn({ err: error }, 'could not follow the now playing: segments carry none until the channel restarts');
      return;
    }
    await this.readNowPlaying();
  }

  /**
   * Reads the channel's now playing and hands it to the packager when it changed. Of reads
   * that overlap, only the latest counts; a failed one is retried once a second until one
   * succeeds (a change announced during a store outage is not lost).
   */
  private async readNowPlaying(): Promise<void> {
    const read = ++this.nowPlayingReads;
    clearTimeout(this.nowPlayingRetry);
    this.nowPlayingRetry = undefined;
    let json: string | null;
    try {
      json = await this.options.store.getNowPlaying(this.channel.id);
    } catch (error) {
      if (read !== this.nowPlayingReads || this.closing) return;
      this.logger.warn({ err: error }, 'could not read the now playing; retrying');
      this.nowPlayingRetry = setTimeout(() => void this.readNowPlaying(), NOW_PLAYING_RETRY_MS);
      return;
    }
    if (read !== this.nowPlayingReads || this.closing || json === this.nowPlayingJson) return;
    this.nowPlayingJson = json;
    const nowPlaying = parseNowPlaying(json);
    this.logger.info({ title: nowPlaying?.title ?? null, artist: nowPlaying?.artist ?? null }, 'now playing');
    this.guard('packager', () => this.packager.setNowPlaying(nowPlaying ?? undefined));
  }

  /** True once a stage has thrown: the channel waits for its restart. */
  get isFaulted(): boolean {
    return this.faulted;
  }

  /** Runs one step of a stage; an exception becomes the channel's fault instead of the process's. */
  private guard(stage: FaultStage, step: () => void): void {
    if (this.faulted) return;
    try {
      step();
    } catch (error) {
      // An exception inside the packager surfaces through the selector that fed it: the innermost guard names it.
      if (!this.faulted) this.fault(stage, error);
    }
  }

  private fault(stage: FaultStage, cause: unknown): void {
    if (this.faulted) return;
    this.faulted = true;
    clearInterval(this.tickTimer);
    const error = new OnairError('ONAIR_CHANNEL_FAULT', `the ${stage} threw: ${cause instanceof Error ? cause.message : String(cause)}`, { where: this.channel.id, cause });
    this.logger.error({ code: error.code, stage, err: cause }, 'channel pipeline fault: the channel restarts');
    this.options.onFault?.({ channel: this.channel.id, stage, error });
  }

  /**
   * A title from an input's feed is the channel's now playing while that input is on air:
   * at once when it is, else when it comes on air (a backup's titles never overwrite the
   * main's). Only the leader writes it.
   */
  private inputNowPlaying(inputId: string, nowPlaying: NowPlaying): void {
    this.inputTitles.set(inputId, nowPlaying);
    if (this.selector?.activeSource === inputId) this.putNowPlaying(nowPlaying);
  }

  private putNowPlaying(nowPlaying: NowPlaying): void {
    if (!this.packager.isLeading) return;
    this.options.store.putNowPlaying(this.channel.id, serializeNowPlaying(nowPlaying)).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not store the now playing');
    });
  }

  private onSwitch(change: InputSwitch): void {
    this.lastSwitch = { change, wallClock: Date.now() };
    const title = this.inputTitles.get(change.to);
    if (title) this.putNowPlaying(title);
    this.recorder?.sourceChanged(change.to, this.lastSwitch.wallClock);
    this.switches.set(change.reason, (this.switches.get(change.reason) ?? 0) + 1);
    const log = change.to === FALLBACK_SOURCE_ID || change.reason !== 'available' ? 'warn' : 'info';
    this.logger[log]({ from: change.from ?? null, to: change.to, reason: change.reason }, 'input switch');
    this.writeStatus();
  }

  /** The leader keeps the active input in the store (fenced, so a standby never overwrites it). */
  private writeStatus(): void {
    const token = this.leadership.token;
    if (!token || !this.selector || !this.lastSwitch) return;
    const status: ChannelStatus = {
      activeInput: this.selector.activeSource,
      since: this.lastSwitch.wallClock,
      reason: this.lastSwitch.change.reason,
      inputs: this.selector.inputHealth(monotonicNow()),
      leader: this.leadership.owner,
      ...(this.selector.pinnedInput ? { pinned: this.selector.pinnedInput } : {}),
      ...(this.options.adminUrl ? { admin: this.options.adminUrl } : {}),
    };
    this.options.store.putStatus(this.channel.id, JSON.stringify(status), token).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not store the channel status');
    });
  }
}
