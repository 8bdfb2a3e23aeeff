/**
 * The ingest role: for every channel, its inputs (each with its own FFmpeg, all hot),
 * the input selector with the channel's safety source behind them, the packager, and
 * the leadership loop that decides whether this process writes the channel or stands by
 * (hot standby, DESIGN.md Failure model). A standby runs everything but the writes, so
 * a takeover publishes at once. With recordings on (a jobs runner given), each channel has
 * a session recorder fed by the packager's published segments and the selector's switches;
 * it records while this process leads.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ChannelConfig, OnairConfig } from '../config/config-schema.js';
import { ChannelPackager } from '../hls/channel-packager.js';
import type { WindowSegment } from '../hls/sequence-state.js';
import type { RecordingCatalog } from '../recording/recording-catalog.js';
import { SessionRecorder, type RecordingJobQueue } from '../recording/session-recorder.js';
import { OnairError } from '../errors.js';
import type { Store } from '../store/store.js';
import { ChannelLeadership, defaultLeaseMs } from './channel-leadership.js';
import type { startEncoder } from './ffmpeg-adapter.js';
import { InputSelector, type InputSwitch } from './input-selector.js';
import { InputWorker } from './input-worker.js';
import { loadSafetySource } from './safety-source.js';

/** How often the selector re-evaluates health and fills gaps. */
const SELECTOR_TICK_MS = 20;
/** The selector's clock: monotonic, never stepped by NTP. */
const monotonicNow = (): number => performance.now();

export interface IngestServiceOptions {
  config: OnairConfig;
  store: Store;
  logger: Logger;
  startEncoder?: typeof startEncoder;
  /** Recordings (src/recording): where sessions go and who stitches them. None: nothing is recorded. */
  recordings?: { catalog: RecordingCatalog; jobs: RecordingJobQueue };
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
}

/** A manual switch asked of a process that stands by for the channel. */
export class NotLeadingError extends Error {
  constructor(channel: string) {
    super(`this process stands by for ${channel}: switch on the one that leads it (its status names the leader)`);
    this.name = 'NotLeadingError';
  }
}

export class ChannelIngest {
  readonly packager: ChannelPackager;
  readonly inputs: InputWorker[];
  readonly leadership: ChannelLeadership;
  /** Records the channel's sessions while this process leads it (when recordings are on). */
  readonly recorder: SessionRecorder | undefined;
  selector: InputSelector | undefined;
  private readonly channel: ChannelConfig;
  private readonly options: IngestServiceOptions;
  private readonly logger: Logger;
  private tickTimer: NodeJS.Timeout | undefined;
  private lastSwitch: { change: InputSwitch; wallClock: number } | undefined;
  /** Input switches so far, by reason (for metrics). */
  readonly switches = new Map<string, number>();
  /** Set by close(): encoders exiting now are a stop, not a failure to switch away from. */
  private closing = false;

  constructor(channel: ChannelConfig, options: IngestServiceOptions) {
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
    });
    this.inputs = channel.inputs.map(
      (input, priority) =>
        new InputWorker({
          channel,
          input,
          logger: options.logger,
          startEncoder: options.startEncoder,
          onFrameGroups: (groups) => this.selector?.push(priority, groups, monotonicNow()),
          onStateChange: () => {
            if (!this.closing) this.selector?.tick(monotonicNow());
          },
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
      emit: (group) => this.packager.pushFrameGroup(group),
      onSwitch: (change) => this.onSwitch(change),
    });
    await this.packager.start();
    for (const input of this.inputs) input.start();
    this.tickTimer = setInterval(() => this.selector!.tick(monotonicNow()), SELECTOR_TICK_MS);
    this.leadership.start();
  }

  /**
   * An operator's manual switch: pins `inputId` on air, or releases the pin (undefined).
   * Throws RangeError for an input the channel does not have, and NotLeadingError where
   * this process stands by (its selector is not what listeners hear).
   */
  pin(inputId: string | undefined): void {
    if (!this.packager.isLeading) throw new NotLeadingError(this.channel.id);
    if (!this.selector) throw new RangeError('the channel has not started yet');
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
    await Promise.all(this.inputs.map((input) => input.close()));
    await this.packager.close();
    // After the packager's last segments, before the lease goes: a standby then finds the session ended.
    await this.recorder?.close();
    await this.leadership.close();
  }

  private onSwitch(change: InputSwitch): void {
    this.lastSwitch = { change, wallClock: Date.now() };
    this.recorder?.sourceChanged(change.to, this.lastSwitch.wallClock);
    this.switches.set(change.reason, (this.switches.get(change.reason) ?? 0) + 1);
    const log = change.to === 'fallback' || change.reason !== 'available' ? 'warn' : 'info';
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
    };
    this.options.store.putStatus(this.channel.id, JSON.stringify(status), token).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not store the channel status');
    });
  }
}

/**
 * Emits `channel` (ChannelIngest) for every channel it starts after construction (reload),
 * and `channel-removed` (id) for one a reload removed.
 */
export class IngestService extends EventEmitter {
  readonly channels = new Map<string, ChannelIngest>();
  private options: IngestServiceOptions;
  /** The config each running channel was started with: what a reload compares against. */
  private readonly running = new Map<string, string>();
  private state: 'new' | 'started' | 'closed' = 'new';

  constructor(options: IngestServiceOptions) {
    super();
    this.options = options;
    for (const channel of options.config.channels) {
      this.channels.set(channel.id, new ChannelIngest(channel, options));
      this.running.set(channel.id, JSON.stringify(channel));
    }
  }

  async start(): Promise<void> {
    for (const channel of this.channels.values()) await channel.start();
    this.state = 'started';
  }

  /**
   * Applies a new channel list without a restart (config reload): removed channels stop
   * (their segments written, their lease released), added ones start, and changed ones
   * restart with the new settings (a new run: one discontinuity). Unchanged ones go on
   * untouched. The comparison is with what runs: a channel that failed to start in an
   * earlier reload is started again by the next one. Throws (after trying every channel)
   * when one could not start.
   */
  async applyChannels(config: OnairConfig): Promise<{ added: string[]; removed: string[]; restarted: string[] }> {
    if (this.state !== 'started') throw new Error(`the ingest is ${this.state === 'new' ? 'still starting' : 'closed'}: no reload now`);
    const after = new Map(config.channels.map((channel) => [channel.id, channel]));
    const removed = [...this.running.keys()].filter((id) => !after.has(id));
    const added = [...after.keys()].filter((id) => !this.running.has(id));
    const restarted = [...after.keys()].filter((id) => this.running.has(id) && this.running.get(id) !== JSON.stringify(after.get(id)));
    this.options = { ...this.options, config };
    await Promise.all(
      [...removed, ...restarted].map(async (id) => {
        const stopping = this.channels.get(id);
        this.channels.delete(id);
        this.running.delete(id);
        await stopping?.close();
        if (!after.has(id)) this.emit('channel-removed', id);
      }),
    );
    const failures: string[] = [];
    for (const id of [...restarted, ...added]) {
      const channel = new ChannelIngest(after.get(id)!, this.options);
      try {
        this.channels.set(id, channel);
        this.emit('channel', channel);
        await channel.start();
        this.running.set(id, JSON.stringify(after.get(id)));
      } catch (error) {
        this.channels.delete(id);
        await channel.close().catch(() => undefined);
        failures.push(`${id}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (failures.length > 0) {
      throw new OnairError('ONAIR_RELOAD_INCOMPLETE', `channels not started (the next reload tries again): ${failures.join('; ')}`);
    }
    return { added, removed, restarted };
  }

  async close(): Promise<void> {
    this.state = 'closed';
    await Promise.all([...this.channels.values()].map((channel) => channel.close()));
  }
}
