/**
 * Recordings retention, per channel (`recordings.retention`, or a channel's `recordRetention`):
 * finished sessions (`done` or `failed`) older than `maxAge` since they ended are removed, and
 * while the channel's recordings take more than `maxSize` on disk, the oldest finished ones
 * are removed too. A session still recorded or whose job has not finished is never removed.
 * Removal takes the file, the segments, the index and the record (recording-catalog.ts).
 *
 * Runs after each finished job, when the disk is full, and on a timer; only where the
 * channel is led (`leads`), so a standby pair sweeps once.
 */
import type { Logger } from 'pino';
import type { RecordingCatalog } from './recording-catalog.js';
import type { RecordingRecord } from './recording-record.js';

export interface RetentionLimits {
  /** Seconds since a session ended. */
  maxAge?: number;
  /** Bytes of the channel's recordings on disk. */
  maxSize?: number;
}

export interface RecordingRetentionOptions {
  catalog: RecordingCatalog;
  /** The limits of a channel (none: keep everything). */
  limitsOf: (channel: string) => RetentionLimits | undefined;
  logger: Logger;
  /** Whether this process sweeps the channel (it leads it); default: always. */
  leads?: (channel: string) => boolean;
  now?: () => number;
}

export interface RetentionStats {
  /** Sessions removed, per channel and reason (`age`, `size`). */
  removed: Map<string, { age: number; size: number }>;
  /** Bytes of each channel's recordings on disk, at the last sweep. */
  bytes: Map<string, number>;
}

const FINISHED = new Set<RecordingRecord['state']>(['done', 'failed']);

export class RecordingRetention {
  readonly stats: RetentionStats = { removed: new Map(), bytes: new Map() };
  private readonly options: RecordingRetentionOptions;
  private readonly logger: Logger;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  /** One sweep per channel at a time. */
  private readonly running = new Map<string, Promise<string[]>>();

  constructor(options: RecordingRetentionOptions) {
    this.options = options;
    this.logger = options.logger.child({ component: 'recording-retention' });
    this.now = options.now ?? Date.now;
  }

  /** Sweeps `channels()` every `intervalMs` (unref'd) until close(). */
  start(channels: () => string[], intervalMs: number): void {
    this.timer = setInterval(() => {
      for (const channel of channels()) void this.sweep(channel).catch((error: unknown) => this.logger.warn({ err: error, channel }, 'retention failed'));
    }, intervalMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Applies the channel's limits; resolves with the sessions removed. */
  sweep(channel: string): Promise<string[]> {
    const under = this.running.get(channel);
    if (under) return under;
    const sweep = this.sweepNow(channel).finally(() => this.running.delete(channel));
    this.running.set(channel, sweep);
    return sweep;
  }

  private async sweepNow(channel: string): Promise<string[]> {
    const { catalog } = this.options;
    const limits = this.options.limitsOf(channel);
    if (this.options.leads && !this.options.leads(channel)) return [];
    const records = await catalog.list(channel);
    const sizes = new Map<string, number>();
    const sessions = new Set([...records.map((record) => record.session), ...(await catalog.files.sessionsOnDisk(channel))]);
    for (const session of sessions) sizes.set(session, await catalog.files.sessionBytes(channel, session));
    let total = [...sizes.values()].reduce((sum, bytes) => sum + bytes, 0);
    const removed: string[] = [];
    const remove = async (record: RecordingRecord, reason: 'age' | 'size'): Promise<void> => {
      await catalog.remove(channel, record.session);
      total -= sizes.get(record.session) ?? 0;
      removed.push(record.session);
      const counts = this.stats.removed.get(channel) ?? { age: 0, size: 0 };
      counts[reason] += 1;
      this.stats.removed.set(channel, counts);
      this.logger.info({ channel, session: record.session, reason, bytes: sizes.get(record.session) ?? 0 }, 'recording removed by retention');
    };
    // Oldest first (session ids sort in time order).
    const finished = records.filter((record) => FINISHED.has(record.state));
    if (limits?.maxAge !== undefined) {
      const cutoff = this.now() - limits.maxAge * 1000;
      for (const record of finished) if ((record.endedAt ?? record.updatedAt) < cutoff) await remove(record, 'age');
    }
    if (limits?.maxSize !== undefined) {
      for (const record of finished) {
        if (total <= limits.maxSize) break;
        if (!removed.includes(record.session)) await remove(record, 'size');
      }
    }
    this.stats.bytes.set(channel, total);
    return removed;
  }
}
