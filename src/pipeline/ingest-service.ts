/**
 * The ingest role: one pipeline per configured channel (channel-pipeline.ts), started and
 * closed together, and a config reload that starts, stops or restarts only the channels
 * it changes.
 */
import { EventEmitter } from 'node:events';
import type { OnairConfig } from '../config/config-schema.js';
import { OnairError } from '../errors.js';
import { ChannelPipeline, type PipelineOptions } from './channel-pipeline.js';

/**
 * Emits `channel` (ChannelPipeline) for every channel it starts after construction (reload),
 * and `channel-removed` (id) for one a reload removed.
 */
export class IngestService extends EventEmitter {
  readonly channels = new Map<string, ChannelPipeline>();
  private options: PipelineOptions;
  /** The config each running channel was started with: what a reload compares against. */
  private readonly running = new Map<string, string>();
  private state: 'new' | 'started' | 'closed' = 'new';

  constructor(options: PipelineOptions) {
    super();
    this.options = options;
    for (const channel of options.config.channels) {
      this.channels.set(channel.id, new ChannelPipeline(channel, options));
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
    await Promise.all([...this.channels.values()].map((channel) => channel.close()));
  }
}
