/**
 * The ingest role: one pipeline per configured channel (channel-pipeline.ts), started and
 * closed together, and a config reload that starts, stops or restarts only the channels
 * it changes. A channel whose pipeline throws (a fault, see channel-pipeline.ts) is closed
 * and started again on its own, counted per stage in `faults`; a channel that keeps failing
 * waits longer between restarts (1 s, 2 s, 4 s… up to 30 s). The other channels go on.
 */
import { EventEmitter } from 'node:events';
import type { OnairConfig } from '../config/config-schema.js';
import { OnairError } from '../errors.js';
import { ChannelPipeline, type ChannelFault, type FaultStage, type PipelineOptions } from './channel-pipeline.js';

/** A fault this long after the channel's previous one starts the restart delay again. */
const FAULT_QUIET_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * Emits `channel` (ChannelPipeline) for every channel it starts after construction (reload),
 * and `channel-removed` (id) for one a reload removed.
 */
export class IngestService extends EventEmitter {
  readonly channels = new Map<string, ChannelPipeline>();
  /** Faults per channel and stage (each restarted the channel). */
  readonly faults = new Map<string, Map<FaultStage, number>>();
  private options: PipelineOptions;
  /** Recent faults of a channel: how long its next restart waits. */
  private readonly faultHistory = new Map<string, { count: number; at: number }>();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  /** The config each running channel was started with: what a reload compares against. */
  private readonly running = new Map<string, string>();
  private state: 'new' | 'started' | 'closed' = 'new';

  constructor(options: PipelineOptions) {
    super();
    this.options = { ...options, onFault: (fault) => this.onFault(fault) };
    for (const channel of options.config.channels) {
      this.channels.set(channel.id, new ChannelPipeline(channel, this.options));
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
    if (this.state !== 'started') throw new OnairError('ONAIR_RELOAD_UNAVAILABLE', `the ingest is ${this.state === 'new' ? 'still starting' : 'closed'}: no reload now`);
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
      const channel = new ChannelPipeline(after.get(id)!, this.options);
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
    for (const timer of this.restartTimers) clearTimeout(timer);
    await Promise.all([...this.channels.values()].map((channel) => channel.close()));
  }

  /** A channel's stage threw: counts it, closes that pipeline and starts the channel again (after a delay if it keeps failing). */
  private onFault(fault: ChannelFault): void {
    const { channel: id, stage } = fault;
    const stages = this.faults.get(id) ?? new Map<FaultStage, number>();
    stages.set(stage, (stages.get(stage) ?? 0) + 1);
    this.faults.set(id, stages);
    const now = Date.now();
    const previous = this.faultHistory.get(id);
    const count = previous && now - previous.at < FAULT_QUIET_MS ? previous.count + 1 : 1;
    this.faultHistory.set(id, { count, at: now });
    const delayMs = count === 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 1000 * 2 ** (count - 2));
    const faulted = this.channels.get(id);
    void this.restartFaulted(id, faulted, delayMs);
  }

  private async restartFaulted(id: string, faulted: ChannelPipeline | undefined, delayMs: number): Promise<void> {
    if (!faulted) return;
    // Its segments cut so far are stored, its lease is handed over (a standby takes the channel meanwhile).
    await faulted.close().catch(() => undefined);
    if (delayMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.restartTimers.delete(timer);
          resolve();
        }, delayMs);
        this.restartTimers.add(timer);
      });
    }
    // A reload or a shutdown meanwhile decides instead.
    if (this.state !== 'started' || this.channels.get(id) !== faulted) return;
    const config = this.options.config.channels.find((channel) => channel.id === id);
    if (!config) return;
    const channel = new ChannelPipeline(config, this.options);
    this.channels.set(id, channel);
    this.emit('channel', channel);
    try {
      await channel.start();
    } catch (error) {
      this.channels.delete(id);
      this.running.delete(id);
      await channel.close().catch(() => undefined);
      this.emit('channel-removed', id);
      // Like a channel a reload could not start: the next reload tries it again.
      this.options.logger.error({ channel: id, err: error }, 'the channel did not start again after its fault: the next reload tries again');
    }
  }
}
