/**
 * The ingest role: for every channel, a packager fed by that channel's inputs. All
 * inputs run hot; frames come from the highest-priority input that has delivered audio
 * within `INPUT_TIMEOUT_MS`, so a stopped main feed hands over to the next one on a
 * frame edge of the packager's own timeline.
 */
import type { Logger } from 'pino';
import type { ChannelConfig, OnairConfig } from '../config/config-schema.js';
import { ChannelPackager } from '../hls/channel-packager.js';
import type { AacFrame } from '../media/adts.js';
import type { Store } from '../store/store.js';
import type { startEncoder } from './ffmpeg-adapter.js';
import { InputWorker } from './input-worker.js';

const INPUT_TIMEOUT_MS = 2000;

export interface IngestServiceOptions {
  config: OnairConfig;
  store: Store;
  logger: Logger;
  startEncoder?: typeof startEncoder;
}

export class ChannelIngest {
  readonly packager: ChannelPackager;
  readonly inputs: InputWorker[];
  private activeInput: string | undefined;
  private readonly logger: Logger;

  constructor(channel: ChannelConfig, options: IngestServiceOptions) {
    this.logger = options.logger.child({ channel: channel.id });
    this.packager = new ChannelPackager({
      channel,
      segmentSeconds: options.config.hls.segmentSeconds,
      windowSegments: options.config.hls.windowSegments,
      store: options.store,
      logger: options.logger,
    });
    this.inputs = channel.inputs.map(
      (input, priority) =>
        new InputWorker({
          channel,
          input,
          logger: options.logger,
          startEncoder: options.startEncoder,
          onFrameGroups: (groups) => this.onFrameGroups(priority, groups),
        }),
    );
  }

  async start(): Promise<void> {
    await this.packager.start();
    for (const input of this.inputs) input.start();
  }

  async close(): Promise<void> {
    await Promise.all(this.inputs.map((input) => input.close()));
    await this.packager.close();
  }

  private onFrameGroups(priority: number, groups: AacFrame[][]): void {
    const now = Date.now();
    const preferred = this.inputs.findIndex(
      (input) => input.stats.lastFrameAt !== undefined && now - input.stats.lastFrameAt < INPUT_TIMEOUT_MS,
    );
    if (preferred !== priority) return;
    const inputId = this.inputs[priority]!.inputId;
    if (this.activeInput !== inputId) {
      this.logger.info({ from: this.activeInput ?? null, to: inputId, reason: 'priority' }, 'input switch');
      this.activeInput = inputId;
    }
    for (const group of groups) this.packager.pushFrameGroup(group);
  }
}

export class IngestService {
  readonly channels = new Map<string, ChannelIngest>();

  constructor(options: IngestServiceOptions) {
    for (const channel of options.config.channels) this.channels.set(channel.id, new ChannelIngest(channel, options));
  }

  async start(): Promise<void> {
    for (const channel of this.channels.values()) await channel.start();
  }

  async close(): Promise<void> {
    await Promise.all([...this.channels.values()].map((channel) => channel.close()));
  }
}
