/**
 * The stitch jobs of ended sessions, one at a time. A job's state is its recording record
 * in the store (recording-record.ts), written after each step, so a job cut by a crash or a
 * shutdown resumes at the step it was in:
 *
 *   ended    → stitch the session's segments into `{session}.m4a.part` (FFmpeg, no
 *              re-encoding), measure it with ffprobe, check the duration against the sum
 *              of the segments' EXTINF (±0.1 s), rename it to `{session}.m4a` → stitched
 *   stitched → append `recording.ready` to the store's events stream (once: its id is kept),
 *              POST the webhook (retried with backoff) → done
 *
 * Progress is logged (and reported to `onProgress`, the CLI's). A failed stitch leaves the
 * session `failed` with the reason; `onair record stitch` runs it again.
 */
import { rm } from 'node:fs/promises';
import { OnairError } from '../errors.js';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { OnairConfig } from '../config/config-schema.js';
import { probeMedia, stitchSegments, type ProbedMedia, type StitchOptions, type StitchSpec } from '../ffmpeg/recording-stitch.js';
import type { EventStore } from '../store/store.js';
import type { RecordingCatalog } from './recording-catalog.js';
import { sessionSegments } from './recording-files.js';
import type { RecordingRecord } from './recording-record.js';
import { deliverWebhook, type WebhookRetry, type WebhookTarget } from './webhook-sender.js';

/** The stitched file's duration may differ from the segments' total by at most this much. */
export const DURATION_TOLERANCE_SECONDS = 0.1;
export const READY_EVENT = 'recording.ready';
/** FFmpeg's list of a session's segment files, in the session's directory. */
const STITCH_LIST_FILE = 'segments.txt';

/** FFmpeg's side of a job (src/ffmpeg/recording-stitch.ts; tests may pass others). */
export interface Stitcher {
  stitch(spec: StitchSpec, options: StitchOptions): Promise<void>;
  probe(path: string): Promise<ProbedMedia>;
}

const ffmpegStitcher: Stitcher = { stitch: stitchSegments, probe: probeMedia };

export interface RecordingJobsOptions {
  catalog: RecordingCatalog;
  store: EventStore;
  logger: Logger;
  /** Base URL of the origin as listeners reach it, e.g. `https://radio.example`. */
  publicUrl: string;
  webhook?: WebhookTarget;
  webhookRetry?: WebhookRetry;
  stitcher?: Stitcher;
}

export interface RunOptions {
  /** Percent of the stitch written, 0–100. */
  onProgress?: (percent: number) => void;
  /** Build the file again even if it was already (stitched, done or failed), and announce it again. */
  restitch?: boolean;
}

export class RecordingJobs {
  private readonly options: RecordingJobsOptions;
  private readonly logger: Logger;
  private readonly stitcher: Stitcher;
  private readonly queued = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();

  constructor(options: RecordingJobsOptions) {
    this.options = options;
    this.logger = options.logger.child({ component: 'recording-jobs' });
    this.stitcher = options.stitcher ?? ffmpegStitcher;
  }

  /** Queues the job of an ended session (a no-op when it is queued already or the runner is closed). */
  enqueue(channel: string, session: string): void {
    const key = `${channel}/${session}`;
    if (this.abort.signal.aborted || this.queued.has(key)) return;
    this.queued.add(key);
    this.chain = this.chain.then(async () => {
      try {
        if (!this.abort.signal.aborted) await this.run(channel, session);
      } catch (error) {
        if (!this.abort.signal.aborted) this.logger.error({ err: error, channel, session }, 'recording job failed');
      } finally {
        this.queued.delete(key);
      }
    });
  }

  /** Queues every unfinished job of the channel (ended or stitched). */
  resume(channel: string): void {
    this.options.catalog.list(channel).then(
      (records) => {
        for (const record of records) if (record.state === 'ended' || record.state === 'stitched') this.enqueue(channel, record.session);
      },
      (error: unknown) => this.logger.warn({ err: error, channel }, 'could not list the recordings to resume'),
    );
  }

  /** Runs one job to its end; resolves with the final record. Throws OnairError for a session that cannot be stitched. */
  async run(channel: string, session: string, runOptions: RunOptions = {}): Promise<RecordingRecord> {
    const { catalog } = this.options;
    let record = await catalog.require(channel, session);
    if (record.state === 'recording') throw new OnairError('ONAIR_RECORDING_BUSY', `session ${session} of channel ${channel} is still being recorded`);
    if (runOptions.restitch && record.state !== 'ended') {
      record = await catalog.update(record, { state: 'ended', error: undefined, eventId: undefined, webhook: undefined, durationSeconds: undefined, sizeBytes: undefined });
    }
    if (record.state === 'ended') record = await this.stitch(record, runOptions.onProgress);
    if (record.state === 'stitched') record = await this.announce(record);
    return record;
  }

  /** Stops: a stitch in progress is killed and a webhook wait ends; both resume at the next start. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.chain;
  }

  private async stitch(record: RecordingRecord, onProgress?: (percent: number) => void): Promise<RecordingRecord> {
    const { catalog } = this.options;
    const { files } = catalog;
    const { channel, session } = record;
    const index = await files.readIndex(channel, session);
    const segments = index ? sessionSegments(index) : [];
    const directory = files.sessionDir(channel, session);
    const missing: number[] = [];
    for (const segment of segments) if (!(await files.exists(join(directory, files.segmentFile(segment.msn))))) missing.push(segment.msn);
    if (segments.length === 0 || missing.length > 0) {
      const reason =
        segments.length === 0
          ? `no recorded segments of this session under ${directory} (a standby pair must share recordings.dir)`
          : `${missing.length} of ${segments.length} segment files are missing (first: ${missing[0]}.ts)`;
      return this.fail(record, reason);
    }
    const expectedSeconds = segments.reduce((sum, segment) => sum + segment.durationSeconds, 0);
    const partialPath = files.partialFilePath(channel, session);
    this.logger.info({ channel, session, segments: segments.length, seconds: round(expectedSeconds) }, 'stitch started');
    const started = performance.now();
    let reported = -1;
    const progress = (writtenSeconds: number): void => {
      const percent = Math.min(100, Math.floor((writtenSeconds / expectedSeconds) * 100));
      if (percent === reported) return;
      reported = percent;
      onProgress?.(percent);
      this.logger.info({ channel, session, percent }, 'stitching');
    };
    let probed: ProbedMedia;
    try {
      await this.stitcher.stitch(
        { segmentPaths: segments.map((segment) => join(directory, files.segmentFile(segment.msn))), listPath: join(directory, STITCH_LIST_FILE), outputPath: partialPath },
        { onProgress: progress, signal: this.abort.signal, logger: this.logger },
      );
      probed = await this.stitcher.probe(partialPath);
    } catch (error) {
      // Aborted by close(): the record stays `ended`, the job runs again at the next start.
      if (this.abort.signal.aborted) throw error;
      return this.fail(record, (error as Error).message);
    }
    const errorSeconds = probed.durationSeconds - expectedSeconds;
    if (Math.abs(errorSeconds) > DURATION_TOLERANCE_SECONDS) {
      return this.fail(record, `the stitched file lasts ${round(probed.durationSeconds)} s, the segments ${round(expectedSeconds)} s`);
    }
    await files.publishFile(channel, session);
    if (reported < 100) progress(expectedSeconds);
    const stitched = await catalog.update(record, { state: 'stitched', durationSeconds: probed.durationSeconds, sizeBytes: probed.sizeBytes, error: undefined });
    this.logger.info(
      { channel, session, durationSeconds: round(probed.durationSeconds), errorSeconds: round(errorSeconds), sizeBytes: probed.sizeBytes, tookMs: Math.round(performance.now() - started) },
      'recording stitched',
    );
    return stitched;
  }

  private async announce(record: RecordingRecord): Promise<RecordingRecord> {
    const { catalog, store, webhook } = this.options;
    const { channel, session } = record;
    const base = `${this.options.publicUrl.replace(/\/+$/, '')}/recordings/${channel}/${session}`;
    const announcement = {
      event: READY_EVENT,
      channel,
      session,
      url: `${base}.m4a`,
      playlistUrl: `${base}.m3u8`,
      durationSeconds: record.durationSeconds!,
      sizeBytes: record.sizeBytes!,
      startedAt: new Date(record.startedAt).toISOString(),
      endedAt: new Date(record.endedAt ?? record.updatedAt).toISOString(),
      endReason: record.endReason ?? 'stopped',
    };
    if (!record.eventId) {
      const fields = Object.fromEntries(Object.entries(announcement).map(([key, value]) => [key, String(value)]));
      record = await catalog.update(record, { eventId: await store.appendEvent(fields) });
    }
    let webhookOutcome = record.webhook;
    if (webhook) {
      webhookOutcome = await deliverWebhook(
        webhook,
        { event: READY_EVENT, deliveryId: `${channel}/${session}/${record.eventId}`, payload: announcement },
        { retry: this.options.webhookRetry, signal: this.abort.signal, logger: this.logger.child({ channel, session }) },
      );
    }
    const done = await catalog.update(record, { state: 'done', ...(webhookOutcome ? { webhook: webhookOutcome } : {}) });
    this.logger.info({ channel, session, url: announcement.url, eventId: done.eventId, webhook: webhookOutcome ?? null }, 'recording announced');
    return done;
  }

  private async fail(record: RecordingRecord, reason: string): Promise<RecordingRecord> {
    const error = new OnairError('ONAIR_RECORDING_STITCH_FAILED', reason, { where: `${record.channel}/${record.session}` });
    this.logger.error({ channel: record.channel, session: record.session, code: error.code, reason }, 'recording could not be stitched');
    await rm(this.options.catalog.files.partialFilePath(record.channel, record.session), { force: true });
    return this.options.catalog.update(record, { state: 'failed', error: reason });
  }
}

/** The jobs runner a config describes (`recordings.publicUrl`, default the origin's address; `recordings.webhook`). */
export function recordingJobsFor(config: OnairConfig, catalog: RecordingCatalog, store: EventStore, logger: Logger): RecordingJobs {
  const { publicUrl, webhook } = config.recordings;
  return new RecordingJobs({
    catalog,
    store,
    logger,
    publicUrl: publicUrl ?? `http://${config.origin.host}:${config.origin.port}`,
    ...(webhook ? { webhook } : {}),
  });
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
