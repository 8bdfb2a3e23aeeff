/**
 * The stitch jobs of ended sessions, one at a time. A job's state is its recording record
 * in the store (recording-record.ts), written after each step, so a job cut by a crash or a
 * shutdown resumes at the step it was in:
 *
 *   ended    → stitch the session's segments into an `.m4a` in a work directory of this
 *              attempt's own (FFmpeg, no re-encoding; a segment file that is missing becomes
 *              silence of its length), measure it with ffprobe, check the duration against
 *              the sum of the segments' EXTINF (±0.1 s), fsync it and move it into place as
 *              `{session}.m4a` → stitched; then the segment files go (`keepSegments` keeps them).
 *              The session's now-playing changes (its index's chapter lines) become the file's
 *              chapters and a cue sheet beside it, `{session}.cue` (session-chapters.ts)
 *   stitched → with `recordings.storage.s3`: the file goes to the bucket as a resumable multipart
 *              upload, its cue sheet in one PUT, both checked (s3-multipart-upload.ts); the
 *              record keeps the upload's parts as they are confirmed, then the objects' keys
 *              (docs/architecture.md, "Recordings in object storage"). A failed upload
 *              keeps its parts, and the job is queued again a little later
 *   (with `mirrorSegments`: a session whose index or segment files are not on this disk, the one a
 *   takeover cut on another host, first has them read back from the bucket, and a segment in
 *   neither place is a gap of silence as ever; once the file is checked, the mirrored objects go
 *   with the segments, or, kept, the whole index joins them for the origin's VOD playlist;
 *   docs/architecture.md, "Mirrored segments")
 *   stitched → append `recording.ready` to the store's events stream (once per session: the
 *              store keeps its id), POST the webhook (retried with backoff) → done
 *
 * Fenced by the lease (docs/architecture.md, Failure model): in an ingest process, a job runs
 * only where the channel is led, with the lease token it started under, and every record
 * write and the event carry that token. After a takeover the old leader's writes are refused
 * (ONAIR_FENCED) and it drops the job, so a standby pair stitches and announces a session
 * exactly once. (The CLI's `onair record stitch` runs unfenced: an operator's action.)
 *
 * A full disk (ENOSPC) does not fail a job: the record stays `ended` with the code
 * ONAIR_RECORDING_DISK_FULL, retention runs, and the job is queued again a little later.
 * Progress is logged (and reported to `onProgress`, the CLI's). A failed stitch leaves the
 * session `failed` with the reason; `onair record stitch` runs it again.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ChannelConfig, OnairConfig } from '../config/config-schema.js';
import { OnairError } from '../errors.js';
import { probeMedia, stitchSession, type ProbedMedia, type SessionStitchSpec, type StitchAudio, type StitchOptions, type StitchPiece } from '../ffmpeg/recording-stitch.js';
import type { EventStore } from '../store/store.js';
import type { RecordingCatalog } from './recording-catalog.js';
import { isDiskFull, lastKeptMsn, parseSessionIndex, sessionSegments, type RecordedSegment, type SessionIndex } from './recording-files.js';
import { totalSeconds } from './recording-catalog.js';
import { pullMirroredFiles, readMirroredIndex } from './segment-mirror.js';
import type { RecordingRecord } from './recording-record.js';
import type { RecordingRetention } from './recording-retention.js';
import type { S3RecordingStorage } from './s3-storage.js';
import { chapterTitle, renderCueSheet, sessionChapters, type SessionChapter } from './session-chapters.js';
import { uploadFileMultipart, type MultipartUploadResult } from './s3-multipart-upload.js';
import { deliverWebhook, type WebhookRetry, type WebhookTarget } from './webhook-sender.js';

/** The stitched file's duration may differ from the segments' total by at most this much. */
export const DURATION_TOLERANCE_SECONDS = 0.1;
export const READY_EVENT = 'recording.ready';
/** A job stopped by a full disk, or a failed upload, is queued again after this long. */
const DISK_FULL_RETRY_MS = 60_000;
const M4A_CONTENT_TYPE = 'audio/mp4';
const CUE_CONTENT_TYPE = 'application/x-cue; charset=utf-8';
/** A session's index read back from the bucket is at most this large (a day of 1 s segments is about 11 MB). */
export const MAX_MIRRORED_INDEX_BYTES = 64 * 1024 * 1024;

/** FFmpeg's side of a job (src/ffmpeg/recording-stitch.ts; tests may pass others). */
export interface Stitcher {
  stitch(spec: SessionStitchSpec, options: StitchOptions): Promise<void>;
  probe(path: string): Promise<ProbedMedia>;
}

const ffmpegStitcher: Stitcher = { stitch: stitchSession, probe: probeMedia };

/** How jobs ended, for metrics. */
export type JobOutcome = 'done' | 'failed' | 'disk_full' | 'fenced';

export interface RecordingJobsOptions {
  catalog: RecordingCatalog;
  store: EventStore;
  logger: Logger;
  /** Base URL of the origin as listeners reach it, e.g. `https://radio.example`. */
  publicUrl: string;
  webhook?: WebhookTarget;
  webhookRetry?: WebhookRetry;
  stitcher?: Stitcher;
  /**
   * The lease token this process holds for a channel, undefined where it does not lead it.
   * Given (an ingest process): jobs run fenced by it. Not given (the CLI): jobs run unfenced.
   */
  fence?: (channel: string) => string | undefined;
  /** The audio of a recorded rendition, for the silence of gaps (default 48 kHz stereo 128k). */
  audioOf?: (channel: string, rendition: string) => StitchAudio | undefined;
  /** Keep the segment files once the stitched file is checked (default: removed). */
  keepSegments?: boolean;
  /** Applied after each job and when the disk is full. */
  retention?: RecordingRetention;
  /** Delay before a job stopped by a full disk runs again (default 60 s). */
  diskFullRetryMs?: number;
  /** Delay before a failed upload runs again (default 60 s). */
  uploadRetryMs?: number;
  /** Part size of the uploads (default 8 MiB; tests use S3's smallest, 5 MiB). */
  uploadPartSize?: number;
}

export interface RunOptions {
  /** Percent of the stitch written, 0–100. */
  onProgress?: (percent: number) => void;
  /** Build the file again even if it was already (stitched, done or failed), and announce it again. */
  restitch?: boolean;
}

export interface RecordingJobStats {
  /** Jobs ended, by outcome. */
  outcomes: Record<JobOutcome, number>;
  /** Seconds of silence stitched in for lost segment files. */
  silenceSeconds: number;
  /** recordings.storage.s3: parts sent (a resumed upload sends only those the server lacks), and uploads failed (queued again). */
  uploads: { partsSent: number; failed: number };
  /** recordings.storage.s3.mirrorSegments: indexes and files read back from the bucket, and reads that failed (the job queued again). */
  mirror: { indexesPulled: number; filesPulled: number; failed: number };
}

const DEFAULT_AUDIO: StitchAudio = { sampleRate: 48000, channels: 2, bitrate: 128_000 };

export class RecordingJobs {
  readonly stats: RecordingJobStats = { outcomes: { done: 0, failed: 0, disk_full: 0, fenced: 0 }, silenceSeconds: 0, uploads: { partsSent: 0, failed: 0 }, mirror: { indexesPulled: 0, filesPulled: 0, failed: 0 } };
  private readonly options: RecordingJobsOptions;
  private readonly logger: Logger;
  private readonly stitcher: Stitcher;
  private readonly queued = new Set<string>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
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
        if (this.abort.signal.aborted) return;
        if ((error as OnairError).code === 'ONAIR_FENCED') {
          this.stats.outcomes.fenced += 1;
          this.logger.warn({ channel, session, code: 'ONAIR_FENCED' }, 'another packager leads the channel now: its job, not ours');
        } else {
          this.logger.error({ err: error, channel, session }, 'recording job failed');
        }
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

  /**
   * Runs one job to its end; resolves with the final record. Throws OnairError for a session
   * that cannot be stitched, and ONAIR_FENCED where another packager leads the channel.
   */
  async run(channel: string, session: string, runOptions: RunOptions = {}): Promise<RecordingRecord> {
    const { catalog } = this.options;
    const fence = this.leaseOf(channel);
    let record = await catalog.require(channel, session);
    if (record.state === 'recording') throw new OnairError('ONAIR_RECORDING_BUSY', `session ${session} of channel ${channel} is still being recorded`);
    if (runOptions.restitch && record.segmentsRemoved) {
      throw new OnairError('ONAIR_RECORDING_STITCH_FAILED', `session ${session} of channel ${channel} cannot be stitched again: its segments were removed once its file was checked (recordings.keepSegments)`);
    }
    if (runOptions.restitch && record.state !== 'ended') {
      record = await catalog.update(record, { state: 'ended', error: undefined, errorCode: undefined, eventId: undefined, webhook: undefined, durationSeconds: undefined, sizeBytes: undefined, chapters: undefined, upload: undefined, objects: undefined }, fence);
    }
    if (record.state === 'ended') record = await this.stitch(record, fence, runOptions.onProgress);
    const { objects } = catalog;
    if (record.state === 'stitched' && objects && !record.objects) record = await this.upload(record, fence);
    if (record.state === 'stitched' && (!objects || record.objects)) record = await this.announce(record, fence);
    if (record.state === 'done') {
      this.stats.outcomes.done += 1;
      await this.options.retention?.sweep(channel).catch((error: unknown) => this.logger.warn({ err: error, channel }, 'retention failed'));
    }
    return record;
  }

  /** Stops: a stitch in progress is killed and a webhook wait ends; both resume at the next start. */
  async close(): Promise<void> {
    this.abort.abort();
    for (const timer of this.retryTimers) clearTimeout(timer);
    await this.chain;
  }

  /** The lease token to fence with; ONAIR_FENCED where this ingest process does not lead the channel. */
  private leaseOf(channel: string): string | undefined {
    if (!this.options.fence) return undefined;
    const token = this.options.fence(channel);
    if (token === undefined) throw new OnairError('ONAIR_FENCED', `this process does not lead channel ${channel}: the leader runs its jobs`, { where: channel });
    return token;
  }

  private async stitch(record: RecordingRecord, fence: string | undefined, onProgress?: (percent: number) => void): Promise<RecordingRecord> {
    const { catalog } = this.options;
    const { files } = catalog;
    const { channel, session } = record;
    // Claims the job under the lease before FFmpeg runs (refused at once after a takeover).
    record = await catalog.update(record, {}, fence);
    let index = await files.readIndex(channel, session);
    const mirrored = catalog.objects?.mirrorSegments === true;
    if (!index && mirrored) {
      try {
        ({ index, record } = await this.indexFromBucket(record, fence));
      } catch (error) {
        return this.bucketUnreadable(record, error, fence);
      }
    }
    let segments = index ? sessionSegments(index) : [];
    // An index without its end line (the disk was full): the record says how many segments the session kept.
    if (index && !index.end && record.segments !== undefined) segments = segments.slice(0, record.segments);
    const directory = files.sessionDir(channel, session);
    if (mirrored && segments.length > 0) {
      const runs = new Set(segments.flatMap((segment) => (segment.initRun === undefined ? [] : [segment.initRun])));
      const names = [...[...runs].map((run) => files.initFile(run)), ...segments.map((segment) => files.segmentFile(segment))];
      try {
        const pulled = await pullMirroredFiles(catalog.objects!, files, channel, session, names, this.abort.signal);
        this.stats.mirror.filesPulled += pulled;
        if (pulled > 0) this.logger.info({ channel, session, files: pulled }, 'segment files read back from the bucket');
      } catch (error) {
        return this.bucketUnreadable(record, error, fence);
      }
    }
    const pieces = await this.piecesOf(segments, directory);
    if (!pieces.some((piece) => 'segmentPaths' in piece)) {
      const reason = segments.length === 0 ? `no recorded segments of this session under ${directory} (a standby pair must share recordings.dir)` : `none of the ${segments.length} segment files is on disk`;
      return this.fail(record, reason, fence);
    }
    const silenceSeconds = pieces.reduce((sum, piece) => sum + ('silenceSeconds' in piece ? piece.silenceSeconds : 0), 0);
    const expectedSeconds = segments.reduce((sum, segment) => sum + segment.durationSeconds, 0);
    const chapters = index ? sessionChapters(index.chapters, expectedSeconds) : [];
    this.logger.info({ channel, session, segments: segments.length, seconds: round(expectedSeconds), ...(silenceSeconds > 0 ? { silenceSeconds: round(silenceSeconds) } : {}) }, 'stitch started');
    const started = performance.now();
    let reported = -1;
    const progress = (writtenSeconds: number): void => {
      const percent = Math.min(100, Math.floor((writtenSeconds / expectedSeconds) * 100));
      if (percent === reported) return;
      reported = percent;
      onProgress?.(percent);
      this.logger.info({ channel, session, percent }, 'stitching');
    };
    let workDir: string | undefined;
    try {
      workDir = await files.createWorkDir(channel, session);
      const outputPath = join(workDir, `${session}.m4a`);
      const audio = this.options.audioOf?.(channel, record.rendition) ?? DEFAULT_AUDIO;
      let probed: ProbedMedia;
      try {
        const stitchChapters = chapters.map((chapter) => ({ startSeconds: chapter.startSeconds, endSeconds: chapter.endSeconds, title: chapterTitle(chapter) }));
        await this.stitcher.stitch({ pieces, workDir, outputPath, audio, chapters: stitchChapters }, { onProgress: progress, signal: this.abort.signal, logger: this.logger });
        probed = await this.stitcher.probe(outputPath);
      } catch (error) {
        // Aborted by close(): the record stays `ended`, the job runs again at the next start.
        if (this.abort.signal.aborted) throw error;
        if (isDiskFull(error)) return await this.diskFull(record, error as Error, fence);
        return await this.fail(record, (error as Error).message, fence);
      }
      const errorSeconds = probed.durationSeconds - expectedSeconds;
      if (Math.abs(errorSeconds) > DURATION_TOLERANCE_SECONDS) {
        return await this.fail(record, `the stitched file lasts ${round(probed.durationSeconds)} s, the segments ${round(expectedSeconds)} s`, fence);
      }
      // Still leading? Then the file goes into place (durably) and the record says so, fenced.
      record = await catalog.update(record, {}, fence);
      try {
        // The cue sheet first: a file in place always has its cue sheet beside it.
        await this.placeCueSheet(record, chapters, workDir);
        await files.publishFile(channel, session, outputPath);
      } catch (error) {
        if (isDiskFull(error)) return await this.diskFull(record, error as Error, fence);
        throw error;
      }
      if (reported < 100) progress(expectedSeconds);
      const stitched = await catalog.update(
        record,
        { state: 'stitched', durationSeconds: probed.durationSeconds, sizeBytes: probed.sizeBytes, chapters: chapters.length, ...(silenceSeconds > 0 ? { silenceSeconds } : {}), error: undefined, errorCode: undefined },
        fence,
      );
      this.stats.silenceSeconds += silenceSeconds;
      this.logger.info(
        { channel, session, durationSeconds: round(probed.durationSeconds), chapters: chapters.length, errorSeconds: round(errorSeconds), sizeBytes: probed.sizeBytes, silenceSeconds: round(silenceSeconds), tookMs: Math.round(performance.now() - started) },
        'recording stitched',
      );
      if (this.options.keepSegments) {
        if (mirrored) await this.mirrorWholeIndex(stitched);
        return stitched;
      }
      // The file is checked and on disk: the segments have done their work.
      await files.deleteSegments(channel, session, segments);
      await files.deleteInits(channel, session, segments);
      const removed = await catalog.update(stitched, { segmentsRemoved: true }, fence);
      if (mirrored) await this.removeMirror(removed);
      return removed;
    } finally {
      if (workDir) await rm(workDir, { recursive: true, force: true });
    }
  }

  /**
   * The index of a session not on this disk, from its mirrored chunks
   * (docs/architecture.md, "Mirrored segments"), placed in the session directory. One cut without its end line (the old
   * leader's crash) is ended here as the recorder would have ended it, and the record gets the
   * segments it keeps (the takeover's finish() found none on this disk).
   */
  private async indexFromBucket(record: RecordingRecord, fence: string | undefined): Promise<{ index: SessionIndex | undefined; record: RecordingRecord }> {
    const { catalog } = this.options;
    const { files } = catalog;
    const { channel, session } = record;
    const text = await readMirroredIndex(catalog.objects!, channel, session, { maxBytes: MAX_MIRRORED_INDEX_BYTES, signal: this.abort.signal });
    const parsed = text === undefined ? undefined : parseSessionIndex(text);
    if (!parsed || parsed.header.channel !== channel || parsed.header.session !== session) return { index: undefined, record };
    await files.placeFile(channel, session, files.indexFile, Buffer.from(text!));
    if (!parsed.end) await files.endSession(channel, session, { type: 'end', lastMsn: lastKeptMsn(parsed.lines, record.trigger), reason: record.endReason ?? 'interrupted', endedAt: record.endedAt ?? Date.now() });
    const index = (await files.readIndex(channel, session))!;
    const kept = sessionSegments(index);
    this.stats.mirror.indexesPulled += 1;
    this.logger.info({ channel, session, segments: kept.length, ended: parsed.end !== undefined }, "the session's index was read back from the bucket (recorded on another host)");
    return { index, record: await catalog.update(record, { segments: kept.length, segmentsSeconds: totalSeconds(kept) }, fence) };
  }

  /** The bucket could not be read (or what it gave not written): the session stays `ended` and the job runs again later. */
  private async bucketUnreadable(record: RecordingRecord, cause: unknown, fence: string | undefined): Promise<RecordingRecord> {
    if (this.abort.signal.aborted || (cause as OnairError).code === 'ONAIR_FENCED') throw cause;
    // No room for what was read back: the job waits for room like a stitch.
    if (isDiskFull(cause)) return this.diskFull(record, cause as Error, fence);
    const { channel, session } = record;
    const error = new OnairError('ONAIR_RECORDING_BUCKET_UNREADABLE', `the session's mirrored files could not be read from the bucket: ${(cause as Error).message}`, { where: `${channel}/${session}`, cause });
    const retryMs = this.options.uploadRetryMs ?? DISK_FULL_RETRY_MS;
    this.logger.error({ channel, session, code: error.code, retryMs, err: cause }, 'the bucket could not be read: the job runs again later');
    this.stats.mirror.failed += 1;
    this.retryLater(channel, session, retryMs);
    return this.options.catalog.update(record, { error: error.message, errorCode: error.code }, fence);
  }

  /** Kept segments: the whole index joins them in the bucket, where an origin without this disk reads the VOD playlist's. */
  private async mirrorWholeIndex(record: RecordingRecord): Promise<void> {
    const { catalog } = this.options;
    const storage = catalog.objects!;
    const { channel, session } = record;
    const key = `${storage.sessionPrefix(channel, session)}${catalog.files.indexFile}`;
    await storage.putSmallFile(key, join(catalog.files.sessionDir(channel, session), catalog.files.indexFile), 'application/x-ndjson', this.abort.signal).catch((error: unknown) => {
      this.logger.warn({ err: error, channel, session, key }, 'the whole index could not be put in the bucket: the VOD playlist is served only where the recordings dir is');
    });
  }

  /** The segments were removed: so are their mirrored objects (a failure leaves them to the session's removal). */
  private async removeMirror(record: RecordingRecord): Promise<void> {
    const storage = this.options.catalog.objects!;
    const { channel, session } = record;
    await storage.deletePrefix(storage.sessionPrefix(channel, session), this.abort.signal).catch((error: unknown) => {
      this.logger.warn({ err: error, channel, session }, 'the mirrored segments could not be removed from the bucket: they go with the session');
    });
  }

  /** Writes the session's cue sheet beside its file (durably), or removes a stale one when it has no chapters. */
  private async placeCueSheet(record: RecordingRecord, chapters: readonly SessionChapter[], workDir: string): Promise<void> {
    const { files } = this.options.catalog;
    const { channel, session } = record;
    if (chapters.length === 0) {
      await rm(files.cuePath(channel, session), { force: true });
      return;
    }
    const path = join(workDir, `${session}.cue`);
    await writeFile(path, renderCueSheet(chapters, { fileName: `${session}.m4a`, channel, session }));
    await files.publishFile(channel, session, path, files.cuePath(channel, session));
  }

  /**
   * The session in runs of segment files that are there and gaps (lost files) to fill with
   * silence. An fMP4 run of files is one packager run's: a new init segment starts a new piece
   * (docs/architecture.md, "Recordings of fMP4 channels"), and a segment whose init is lost is a gap.
   */
  private async piecesOf(segments: readonly RecordedSegment[], directory: string): Promise<StitchPiece[]> {
    const { files } = this.options.catalog;
    const pieces: StitchPiece[] = [];
    const initsThere = new Map<number, boolean>();
    for (const segment of segments) {
      const path = join(directory, files.segmentFile(segment));
      const initPath = segment.initRun === undefined ? undefined : join(directory, files.initFile(segment.initRun));
      if (initPath !== undefined && !initsThere.has(segment.initRun!)) initsThere.set(segment.initRun!, await files.exists(initPath));
      const last = pieces.at(-1);
      const there = (initPath === undefined || initsThere.get(segment.initRun!) === true) && (await files.exists(path));
      if (there) {
        if (last && 'segmentPaths' in last && last.initPath === initPath) (last.segmentPaths as string[]).push(path);
        else pieces.push(initPath === undefined ? { segmentPaths: [path] } : { segmentPaths: [path], initPath });
      } else if (last && 'silenceSeconds' in last) {
        last.silenceSeconds += segment.durationSeconds;
      } else {
        pieces.push({ silenceSeconds: segment.durationSeconds });
      }
    }
    return pieces;
  }

  private async announce(record: RecordingRecord, fence: string | undefined): Promise<RecordingRecord> {
    const { catalog, store, webhook } = this.options;
    const { channel, session } = record;
    const base = `${this.options.publicUrl.replace(/\/+$/, '')}/recordings/${channel}/${session}`;
    const announcement = {
      event: READY_EVENT,
      channel,
      session,
      url: `${base}.m4a`,
      // The VOD playlist lists the segments: only while they are kept.
      ...(record.segmentsRemoved ? {} : { playlistUrl: `${base}.m3u8` }),
      // The now-playing changes in it, as the file's chapters and the cue sheet's tracks.
      chapters: record.chapters ?? 0,
      ...(record.chapters ? { cueUrl: `${base}.cue` } : {}),
      durationSeconds: record.durationSeconds!,
      sizeBytes: record.sizeBytes!,
      startedAt: new Date(record.startedAt).toISOString(),
      endedAt: new Date(record.endedAt ?? record.updatedAt).toISOString(),
      endReason: record.endReason ?? 'stopped',
      // In the bucket (recordings.storage.s3): presigned for `presignSeconds`, or plain object URLs.
      ...(catalog.objects && record.objects ? await objectUrls(catalog.objects, record.objects) : {}),
    };
    if (!record.eventId) {
      const fields = Object.fromEntries(Object.entries(announcement).map(([key, value]) => [key, String(value)]));
      record = await catalog.update(record, { eventId: await store.appendEventOnce(channel, session, fields, fence) }, fence);
    }
    let webhookOutcome = record.webhook;
    if (webhook) {
      webhookOutcome = await deliverWebhook(
        webhook,
        { event: READY_EVENT, deliveryId: `${channel}/${session}/${record.eventId}`, payload: announcement },
        { retry: this.options.webhookRetry, signal: this.abort.signal, logger: this.logger.child({ channel, session }) },
      );
    }
    const done = await catalog.update(record, { state: 'done', ...(webhookOutcome ? { webhook: webhookOutcome } : {}) }, fence);
    this.logger.info({ channel, session, url: announcement.url, eventId: done.eventId, webhook: webhookOutcome ?? null }, 'recording announced');
    return done;
  }

  /**
   * The stitched file and its cue sheet into the bucket (docs/architecture.md, "Recordings in object storage"):
   * each confirmed part is saved in the record (fenced) before the next is read, so a run cut
   * here resumes with the parts the server holds. A failure keeps them and queues the job again.
   */
  private async upload(record: RecordingRecord, fence: string | undefined): Promise<RecordingRecord> {
    const { catalog } = this.options;
    const storage = catalog.objects!;
    const { channel, session } = record;
    const fileKey = storage.keyOf(channel, session, 'm4a');
    const cueKey = record.chapters ? storage.keyOf(channel, session, 'cue') : undefined;
    let result: MultipartUploadResult;
    try {
      result = await uploadFileMultipart({
        client: storage.client,
        bucket: storage.bucket,
        key: fileKey,
        path: catalog.files.filePath(channel, session),
        contentType: M4A_CONTENT_TYPE,
        ...(record.upload ? { state: record.upload } : {}),
        save: async (upload) => {
          record = await catalog.update(record, { upload }, fence);
        },
        ...(this.options.uploadPartSize ? { partSize: this.options.uploadPartSize } : {}),
        signal: this.abort.signal,
        logger: this.logger.child({ channel, session }),
      });
      this.stats.uploads.partsSent += result.partsSent;
      if (cueKey) await storage.putSmallFile(cueKey, catalog.files.cuePath(channel, session), CUE_CONTENT_TYPE, this.abort.signal);
    } catch (error) {
      if (this.abort.signal.aborted || (error as OnairError).code === 'ONAIR_FENCED') throw error;
      const failure = new OnairError('ONAIR_RECORDING_UPLOAD_FAILED', `the upload to the bucket failed: ${(error as Error).message}`, { where: `${channel}/${session}`, cause: error });
      const retryMs = this.options.uploadRetryMs ?? DISK_FULL_RETRY_MS;
      this.logger.error({ channel, session, code: failure.code, key: fileKey, retryMs, err: error }, 'the recording could not be uploaded: the job runs again later');
      this.stats.uploads.failed += 1;
      this.retryLater(channel, session, retryMs);
      return catalog.update(record, { error: failure.message, errorCode: failure.code }, fence);
    }
    this.logger.info({ channel, session, bucket: storage.bucket, key: fileKey, parts: result.parts, partsSent: result.partsSent, partsResent: result.partsResent, sizeBytes: result.size }, 'recording uploaded');
    return catalog.update(record, { upload: undefined, objects: { file: fileKey, ...(cueKey ? { cue: cueKey } : {}) }, error: undefined, errorCode: undefined }, fence);
  }

  private async fail(record: RecordingRecord, reason: string, fence: string | undefined): Promise<RecordingRecord> {
    const error = new OnairError('ONAIR_RECORDING_STITCH_FAILED', reason, { where: `${record.channel}/${record.session}` });
    this.logger.error({ channel: record.channel, session: record.session, code: error.code, reason }, 'recording could not be stitched');
    this.stats.outcomes.failed += 1;
    return this.options.catalog.update(record, { state: 'failed', error: reason, errorCode: error.code }, fence);
  }

  /** No room for the file: the session stays `ended`, retention runs, and the job is queued again later. */
  private async diskFull(record: RecordingRecord, cause: Error, fence: string | undefined): Promise<RecordingRecord> {
    const { channel, session } = record;
    const error = new OnairError('ONAIR_RECORDING_DISK_FULL', `no room to stitch the recording: ${cause.message}`, { where: `${channel}/${session}`, cause });
    const retryMs = this.options.diskFullRetryMs ?? DISK_FULL_RETRY_MS;
    this.logger.error({ channel, session, code: error.code, retryMs }, 'the recordings disk is full: the stitch waits for room');
    this.stats.outcomes.disk_full += 1;
    await this.options.retention?.sweep(channel).catch(() => undefined);
    this.retryLater(channel, session, retryMs);
    return this.options.catalog.update(record, { error: error.message, errorCode: error.code }, fence);
  }

  private retryLater(channel: string, session: string, retryMs: number): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.enqueue(channel, session);
    }, retryMs);
    timer.unref();
    this.retryTimers.add(timer);
  }
}

/**
 * The jobs runner a config describes (`recordings.publicUrl`, default the origin's address;
 * `recordings.webhook`, `recordings.keepSegments`), fenced by `fence` in an ingest process.
 */
export function recordingJobsFor(
  config: OnairConfig,
  catalog: RecordingCatalog,
  store: EventStore,
  logger: Logger,
  extra: Pick<RecordingJobsOptions, 'fence' | 'retention'> = {},
): RecordingJobs {
  const { publicUrl, webhook, keepSegments } = config.recordings;
  return new RecordingJobs({
    catalog,
    store,
    logger,
    publicUrl: publicUrl ?? `http://${config.origin.host}:${config.origin.port}`,
    ...(webhook ? { webhook } : {}),
    keepSegments,
    audioOf: (channel, rendition) => renditionAudio(config.channels.find((candidate) => candidate.id === channel), rendition),
    ...extra,
  });
}

function renditionAudio(channel: ChannelConfig | undefined, renditionId: string): StitchAudio | undefined {
  const rendition = channel?.renditions.find((candidate) => candidate.id === renditionId);
  if (!channel || !rendition) return undefined;
  return { sampleRate: channel.sampleRate, channels: rendition.audioChannels ?? channel.audioChannels, bitrate: rendition.bitrate };
}

/** The object URLs of a session in the announcement: the file's, and its cue sheet's when it has one. */
async function objectUrls(storage: S3RecordingStorage, objects: NonNullable<RecordingRecord['objects']>): Promise<{ objectUrl: string; cueObjectUrl?: string; objectUrlExpiresAt?: string }> {
  const expiry = storage.presignExpirySeconds;
  return {
    objectUrl: await storage.urlOf(objects.file),
    ...(objects.cue ? { cueObjectUrl: await storage.urlOf(objects.cue) } : {}),
    ...(expiry !== undefined ? { objectUrlExpiresAt: new Date(Date.now() + expiry * 1000).toISOString() } : {}),
  };
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
