/**
 * Records one channel's sessions: keeps the segments of one rendition (channel
 * `recordRendition`, default the highest bitrate) beyond the live window, in
 * `recordings.dir` (recording-files.ts), and hands each ended session to the stitch jobs.
 *
 * Only the leading packager records (the channel's segments are published, and so seen
 * here, by the leader only). Sessions:
 * - automatic (`record: true`): one starts with the first segment published while an input
 *   (not the safety source) is on air, and ends once the safety source has been on air for
 *   `endAfterSeconds` of audio; that tail of fallback audio is dropped, while a shorter
 *   gap stays in, as the silence that aired (the packager's timeline never stops, so
 *   neither does the recording's).
 * - manual (control API): starts at once, ends on stop only. A stop on a `record: true`
 *   channel holds automatic sessions back until audio starts again after the input was gone.
 * A shutdown ends the open session; a crash leaves it open, and the next leader ends it as
 * interrupted. Either way a manual session goes on in a new session under the next leader
 * (`continues`), and nothing recorded is lost: the segments are on disk, the job resumes.
 * A break in the timeline (the packager's discontinuity after a store outage dropped
 * segments, or a segment gone before it could be recorded) ends the session too, and the
 * next one continues it: a session is always one continuous timeline, never a shifted one.
 *
 * A full disk (ENOSPC) ends the session too (`disk-full`), its job is queued, and the
 * recorder waits for room (`diskFull`, a metric and an alert): the next segment that can be
 * written starts the session's continuation.
 *
 * While it leads, it follows the channel's now playing (NowPlayingStore: the one current when
 * it takes the lead, then each change announced) and puts it on the session's timeline as
 * chapters (now-playing-timeline.ts; docs/architecture.md, Chapters in recordings): the one
 * playing when a session starts at offset 0, each change at its frame, written to the index
 * with the segment it falls in (recording-files.ts), so a crash keeps them as it keeps the
 * segments. At most MAX_CHAPTERS_PER_SESSION per session.
 *
 * An encrypted channel's segments are stored as ciphertext: each is decrypted with its key from
 * the store before it is written (cbcs: and its init segment is kept clear), so the session
 * holds clear audio only; a segment whose key is missing (or that does not decrypt) is a gap,
 * its index line without a file, stitched as silence of its length
 * (docs/architecture.md, "Recordings and mounts of encrypted channels").
 *
 * With `recordings.storage.s3.mirrorSegments`, each file and index line written is also queued for
 * the bucket (segment-mirror.ts; docs/architecture.md, "Mirrored segments"): queued, never awaited.
 *
 * Work is serialized on one queue, in segment order; store and disk failures are logged
 * and never stop the live stream.
 */
import type { Logger } from 'pino';
import { OnairError } from '../errors.js';
import { FALLBACK_SOURCE_ID, type ChannelConfig } from '../config/config-schema.js';
import type { WindowSegment } from '../hls/sequence-state.js';
import { initSegmentName, segmentExtension, segmentName } from '../hls/published-names.js';
import { SAMPLES_PER_FRAME } from '../hls/segment-schedule.js';
import { DEFAULT_KEY_ROTATION_SEGMENTS, StoredSegmentOpener, type OpenedSegment } from '../hls/segment-encryption.js';
import { parseNowPlaying } from '../media/now-playing.js';
import type { ContentKeyStore, NowPlayingStore, OriginStore } from '../store/store.js';
import { NowPlayingTimeline, type ChapterText, type SegmentNowPlaying } from './now-playing-timeline.js';
import type { RecordingCatalog } from './recording-catalog.js';
import { isDiskFull, type RecordedChapter } from './recording-files.js';
import type { EndReason, RecordingRecord, SessionTrigger } from './recording-record.js';
import { SegmentMirror, type SegmentMirrorOptions } from './segment-mirror.js';

/** What the recorder needs of the stitch jobs. */
export interface RecordingJobQueue {
  enqueue(channel: string, session: string): void;
  /** Runs the channel's unfinished jobs (after a restart or a takeover). */
  resume(channel: string): void;
}

export interface SessionRecorderOptions {
  channel: ChannelConfig;
  catalog: RecordingCatalog;
  /** Where the published segments are read back from (and an encrypted channel's keys). */
  store: Pick<OriginStore, 'getSegment'> & Partial<Pick<ContentKeyStore, 'getContentKey'>>;
  jobs: RecordingJobQueue;
  logger: Logger;
  /** The channel's now playing, kept as the sessions' chapters; none: no chapters. */
  nowPlaying?: Pick<NowPlayingStore, 'getNowPlaying' | 'subscribeNowPlaying'>;
  /** Wall clock (ms), as the input selector's switches are stamped. */
  now?: () => number;
  /** The mirror's queue and retries (mirrorSegments; tests shorten them). */
  mirror?: Pick<SegmentMirrorOptions, 'queueLimit' | 'retryDelaysMs'>;
}

/** Chapters kept per session: a client flooding now-playing updates cannot grow an index without bound. */
export const MAX_CHAPTERS_PER_SESSION = 2000;

interface OpenSession {
  record: RecordingRecord;
  /** Fallback audio since the last segment of an input. */
  fallbackSeconds: number;
  recordedAny: boolean;
  /** Audio recorded so far, for `recordMaxSeconds` (and the offset of the next chapter). */
  recordedSeconds: number;
  /** Chapter lines written. */
  chapters: number;
  /** MAX_CHAPTERS_PER_SESSION was reached (said once). */
  chaptersFull: boolean;
  /** fMP4: the run whose init segment was copied into the session last. */
  initRun?: number;
}

/** A session to open at the next segment, going on from an ended one. */
interface Continuation {
  trigger: SessionTrigger;
  continues?: string;
}

/** The rendition a channel records: `recordRendition`, else the AAC one with the highest bitrate. */
export function recordedRendition(channel: ChannelConfig): string {
  if (channel.recordRendition) return channel.recordRendition;
  const aac = channel.renditions.filter((rendition) => rendition.codec === 'aac');
  return aac.reduce((best, rendition) => (rendition.bitrate > best.bitrate ? rendition : best)).id;
}

export interface RecorderStats {
  /** Segments written to disk. */
  segmentsWritten: number;
  /** Segments that could not be recorded (disk or store errors), a full disk included. */
  writeErrors: number;
  /** Times the disk was found full. */
  diskFullEvents: number;
  /** Encrypted channels: segments recorded as a gap because their key was missing or they did not decrypt. */
  undecryptable: number;
}

export class SessionRecorder {
  readonly rendition: string;
  readonly stats: RecorderStats = { segmentsWritten: 0, writeErrors: 0, diskFullEvents: 0, undecryptable: 0 };
  /** The last write found the disk full; cleared by the next segment written. */
  diskFull = false;
  /** recordings.storage.s3.mirrorSegments: what is recorded also goes to the bucket (its stats count failures and drops). */
  readonly mirror: SegmentMirror | undefined;
  private readonly options: SessionRecorderOptions;
  private readonly channelId: string;
  private readonly logger: Logger;
  private readonly now: () => number;
  private queue: Promise<unknown> = Promise.resolve();
  private open: OpenSession | undefined;
  private leading = false;
  private closed = false;
  /** The source on air (an input id or `fallback`), and since when the fallback is. */
  private source: string | undefined;
  private fallbackSince: number | undefined;
  /** Automatic sessions may start (false after an operator's stop, until audio starts again). */
  private armed = true;
  /** A session wanted at the next segment: a manual one taken over, or the rest of one cut by a timeline break. */
  private continuation: Continuation | undefined;
  private readonly timeline = new NowPlayingTimeline();
  private stopWatching: (() => Promise<void>) | undefined;
  /** A read of the now playing is queued (announcements meanwhile share it), and when the last was announced. */
  private nowPlayingReadQueued = false;
  private announcedAt = 0;
  /** An encrypted channel's key reader and decryptor; none for a clear channel. */
  private readonly opener: StoredSegmentOpener | undefined;

  constructor(options: SessionRecorderOptions) {
    this.options = options;
    this.channelId = options.channel.id;
    const { encryption, keyRotationSegments } = options.channel;
    const store = options.store;
    this.opener =
      encryption === undefined
        ? undefined
        : new StoredSegmentOpener({
            channel: options.channel.id,
            scheme: encryption,
            rotationSegments: keyRotationSegments ?? DEFAULT_KEY_ROTATION_SEGMENTS,
            ...(typeof store.getContentKey === 'function' ? { keys: { getContentKey: (channel, keyId) => store.getContentKey!(channel, keyId) } } : {}),
          });
    this.rendition = recordedRendition(options.channel);
    this.logger = options.logger.child({ channel: this.channelId, component: 'recorder' });
    this.now = options.now ?? Date.now;
    const { objects, files } = options.catalog;
    this.mirror = objects?.mirrorSegments ? new SegmentMirror({ storage: objects, files, logger: this.logger, ...options.mirror }) : undefined;
  }

  /** The session being recorded, if any. */
  get current(): RecordingRecord | undefined {
    return this.open?.record;
  }

  /** The selector put `source` on air at wall-clock `at`. */
  sourceChanged(source: string, at = this.now()): void {
    const audioBefore = this.source !== undefined && this.source !== FALLBACK_SOURCE_ID;
    this.source = source;
    if (source === FALLBACK_SOURCE_ID) {
      this.fallbackSince ??= at;
    } else {
      this.fallbackSince = undefined;
      if (!audioBefore) this.armed = true;
    }
  }

  /** This process now leads the channel: end sessions left open by a crash, resume their jobs. Never rejects (failures are logged). */
  lead(): Promise<void> {
    this.leading = true;
    this.timeline.interrupt();
    return this.enqueue(async () => {
      await this.watchNowPlaying();
      await this.takeOver();
    }).catch(() => undefined);
  }

  /** Another packager leads: stop recording. The open session stays open for the next leader to end. */
  standBy(): Promise<void> {
    this.leading = false;
    this.timeline.interrupt();
    return this.enqueue(async () => {
      this.open = undefined;
    });
  }

  /** A segment was published (by this leader); resolves once it is recorded. Never rejects (failures are logged). */
  segmentPublished(entry: WindowSegment): Promise<void> {
    if (this.closed) return Promise.resolve();
    // When it was published places the now-playing changes announced meanwhile.
    const publishedAt = this.now();
    return this.enqueue(() => this.record(entry, publishedAt)).catch(() => undefined);
  }

  /** Starts a manual session now, or makes the open one manual. Throws ONAIR_RECORDING_NOT_LEADING on a standby. */
  startManual(): Promise<RecordingRecord> {
    return this.enqueue(async () => {
      this.requireLeading();
      if (this.open) {
        if (this.open.record.trigger !== 'manual') this.open.record = await this.options.catalog.update(this.open.record, { trigger: 'manual' });
        return this.open.record;
      }
      const continues = this.continuation?.continues;
      this.continuation = undefined;
      return (await this.openSession('manual', this.now(), continues)).record;
    });
  }

  /** Ends the open session (ONAIR_RECORDING_NOT_RECORDING when there is none); resolves with its record, undefined if it kept nothing. */
  stopManual(): Promise<RecordingRecord | undefined> {
    return this.enqueue(async () => {
      this.requireLeading();
      this.continuation = undefined;
      this.armed = false;
      if (!this.open) throw new OnairError('ONAIR_RECORDING_NOT_RECORDING', `channel ${this.channelId} is not being recorded`);
      return this.end('stopped');
    });
  }

  /** Ends the open session (shutdown) once the segments already published are recorded. */
  close(): Promise<void> {
    this.closed = true;
    return this.enqueue(async () => {
      if (this.open && this.leading) await this.end('shutdown');
      this.open = undefined;
      await this.stopWatching?.().catch(() => undefined);
      this.stopWatching = undefined;
      // The shutdown's end line is in the bucket before the standby needs it (bounded wait).
      await this.mirror?.close();
    });
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch((error: unknown) => {
      this.logger.error({ err: error }, 'recording step failed');
    });
    return result;
  }

  private requireLeading(): void {
    if (!this.leading || this.closed) throw new OnairError('ONAIR_RECORDING_NOT_LEADING', `this process does not lead channel ${this.channelId}`);
  }

  /** Ends what a crashed (or frozen) leader left open, takes over a manual session's intent, resumes jobs. */
  private async takeOver(): Promise<void> {
    const { catalog, jobs } = this.options;
    await catalog.adoptFromDisk(this.channelId);
    for (const record of await catalog.list(this.channelId)) {
      let current: RecordingRecord | undefined = record;
      if (record.state === 'recording' && record.session !== this.open?.record.session) {
        current = await catalog.finish(record, 'interrupted');
        if (current) this.mirror?.sessionEnded(current.channel, current.session);
        this.logger.warn({ session: record.session, segments: current?.segments ?? 0 }, 'recording session interrupted (crash or takeover): ended');
      }
      if (current?.resumeManual) {
        this.continuation = { trigger: 'manual', continues: current.session };
        await catalog.update(current, { resumeManual: false });
      }
    }
    jobs.resume(this.channelId);
  }

  /** Subscribes to the channel's now-playing changes (once), and reads the one current now. Failures are logged: no chapters, the audio records on. */
  private async watchNowPlaying(): Promise<void> {
    const { nowPlaying } = this.options;
    if (!nowPlaying) return;
    try {
      this.stopWatching ??= await nowPlaying.subscribeNowPlaying((channel) => this.nowPlayingAnnounced(channel));
      this.announcedAt = this.now();
      await this.readNowPlaying();
    } catch (error) {
      this.logger.warn({ err: error }, 'could not follow the now playing: recordings get no chapters until it can');
    }
  }

  private nowPlayingAnnounced(channel: string): void {
    if (channel !== this.channelId || !this.leading || this.closed) return;
    this.announcedAt = this.now();
    if (this.nowPlayingReadQueued) return;
    this.nowPlayingReadQueued = true;
    // On the queue: a change announced before a segment was published is read before that segment is recorded.
    this.enqueue(async () => {
      this.nowPlayingReadQueued = false;
      await this.readNowPlaying();
    }).catch(() => undefined);
  }

  private async readNowPlaying(): Promise<void> {
    const announcedAt = this.announcedAt;
    const nowPlaying = parseNowPlaying(await this.options.nowPlaying!.getNowPlaying(this.channelId));
    if (nowPlaying) this.timeline.changed(chapterText(nowPlaying), announcedAt);
  }

  private async record(entry: WindowSegment, publishedAt: number): Promise<void> {
    if (!this.leading) return;
    const nowPlaying = this.options.nowPlaying ? this.timeline.segment(publishedAt, entry.durationSeconds, SAMPLES_PER_FRAME / this.options.channel.sampleRate) : undefined;
    try {
      await this.recordSegment(entry, nowPlaying);
    } catch (error) {
      this.stats.writeErrors += 1;
      if (!isDiskFull(error)) throw error;
      await this.onDiskFull(error as Error, entry);
    }
  }

  /** The disk is full: the open session ends (its job queued) and goes on in a new one once there is room. */
  private async onDiskFull(cause: Error, entry: WindowSegment): Promise<void> {
    if (!this.diskFull) {
      this.stats.diskFullEvents += 1;
      const error = new OnairError('ONAIR_RECORDING_DISK_FULL', `the recordings disk is full: ${cause.message}`, { where: this.channelId });
      this.logger.error({ code: error.code, msn: entry.msn, session: this.open?.record.session ?? null }, 'the recordings disk is full: the session ends, recording waits for room');
    }
    this.diskFull = true;
    if (this.open) {
      const { trigger, session } = this.open.record;
      const ended = await this.end('disk-full').catch((error: unknown) => {
        this.logger.error({ err: error, session }, 'could not end the session on a full disk');
        return undefined;
      });
      this.continuation = { trigger, continues: ended?.session ?? session };
    }
  }

  private async recordSegment(entry: WindowSegment, nowPlaying: SegmentNowPlaying | undefined): Promise<void> {
    const fallback = this.fallbackSince !== undefined && entry.programDateTime >= this.fallbackSince;
    if (this.open?.recordedAny && entry.discontinuity) await this.breakSession();
    const continuation = this.continuation;
    if (!this.open) {
      try {
        if (!(await this.openFor(entry, fallback))) return;
      } catch (error) {
        // No room for a new session yet: the continuation waits for the next segment.
        this.continuation ??= continuation;
        throw error;
      }
    }
    const open = this.open!;
    const { channel, session } = open.record;
    const fmp4 = this.options.channel.container === 'fmp4';
    const bytes = await this.options.store.getSegment(channel, this.rendition, segmentName(entry.msn, entry.run, segmentExtension({ codec: 'aac' }, this.options.channel.container)));
    // fMP4: the segment's run's init segment goes into the session before the first segment that needs it
    // (docs/architecture.md, "Recordings of fMP4 channels"); a cbcs channel's is its key period's, kept clear.
    const needsInit = fmp4 && open.initRun !== entry.run;
    const stored = needsInit ? await this.options.store.getSegment(channel, this.rendition, initSegmentName(entry.run, this.opener?.initNameKeyId(entry.msn))) : undefined;
    const init = stored && this.opener ? this.opener.clearInit(stored) : stored;
    if (!bytes || (needsInit && !init)) {
      this.logger.warn({ session, msn: entry.msn }, `a published ${bytes ? 'init segment' : 'segment'} was gone before it could be recorded: the session ends before it`);
      if (open.recordedAny) await this.breakSession();
      return;
    }
    if (init) {
      await this.options.catalog.files.addInit(channel, session, entry.run, init);
      this.mirror?.fileWritten(channel, session, this.options.catalog.files.initFile(entry.run));
      open.initRun = entry.run;
    }
    const segment = { type: 'segment', msn: entry.msn, durationSeconds: entry.durationSeconds, programDateTime: entry.programDateTime, fallback, ...(fmp4 ? { initRun: entry.run } : {}) } as const;
    const opened = this.opener ? await this.openSegment(entry.msn, bytes) : { clear: bytes };
    const chapters = this.chaptersOf(open, nowPlaying);
    if ('clear' in opened) {
      await this.options.catalog.files.addSegment(channel, session, segment, opened.clear, chapters);
      this.mirror?.segmentWritten(channel, session, this.options.catalog.files.segmentFile(segment));
      this.stats.segmentsWritten += 1;
    } else {
      // Never ciphertext into the recording: the segment is a gap, stitched as silence of its length.
      this.stats.undecryptable += 1;
      this.logger.warn({ session, msn: entry.msn, reason: opened.failure }, 'an encrypted segment could not be decrypted (its key is not in the store): recorded as a gap');
      await this.options.catalog.files.addGap(channel, session, segment, chapters);
      this.mirror?.segmentWritten(channel, session);
    }
    open.chapters += chapters.length;
    if (this.diskFull) {
      this.diskFull = false;
      this.logger.info({ session }, 'the recordings disk has room again: recording goes on');
      // The jobs the full disk stopped need not wait for their retry.
      this.options.jobs.resume(this.channelId);
    }
    open.recordedAny = true;
    open.recordedSeconds += entry.durationSeconds;
    open.fallbackSeconds = fallback ? open.fallbackSeconds + entry.durationSeconds : 0;
    if (open.recordedSeconds >= this.options.channel.recordMaxSeconds - 0.001) {
      this.logger.info({ session, seconds: open.recordedSeconds }, 'the session reached recordMaxSeconds: it ends here');
      await this.end('max-length');
      return;
    }
    // Float sums of frame durations: within a millisecond is there.
    if (open.record.trigger === 'auto' && open.fallbackSeconds >= this.options.channel.endAfterSeconds - 0.001) await this.end('input-lost');
  }

  /** An encrypted segment's clear bytes; a key that cannot be read (the store failing) is a failure like a missing one. */
  private async openSegment(msn: number, bytes: Uint8Array): Promise<OpenedSegment> {
    return this.opener!.open(msn, bytes).catch((error: unknown): OpenedSegment => {
      this.logger.warn({ err: error, msn }, 'the content key could not be read');
      return { failure: 'key-missing' };
    });
  }

  /** The chapter lines of the segment about to be recorded: what played at the session's start, the changes inside it. */
  private chaptersOf(open: OpenSession, nowPlaying: SegmentNowPlaying | undefined): RecordedChapter[] {
    if (!nowPlaying) return [];
    const starts: { offsetSeconds: number; text: ChapterText }[] = [];
    if (!open.recordedAny && nowPlaying.atStart) starts.push({ offsetSeconds: 0, text: nowPlaying.atStart });
    for (const change of nowPlaying.changes) starts.push({ offsetSeconds: open.recordedSeconds + change.offsetSeconds, text: change.text });
    const room = MAX_CHAPTERS_PER_SESSION - open.chapters;
    if (starts.length > room && !open.chaptersFull) {
      open.chaptersFull = true;
      this.logger.warn({ session: open.record.session, max: MAX_CHAPTERS_PER_SESSION }, 'the session has as many chapters as it may keep: later now-playing changes are not marked');
    }
    return starts.slice(0, Math.max(0, room)).map(({ offsetSeconds, text }) => ({ type: 'chapter', offsetSeconds: Math.round(offsetSeconds * 1e6) / 1e6, ...text }));
  }

  /** Opens the session `entry` starts, if one is due: a continuation, or an automatic one on audio. */
  private async openFor(entry: WindowSegment, fallback: boolean): Promise<boolean> {
    if (this.continuation) {
      const { trigger, continues } = this.continuation;
      this.continuation = undefined;
      await this.openSession(trigger, entry.programDateTime, continues);
      return true;
    }
    const onAir = this.source !== undefined && this.source !== FALLBACK_SOURCE_ID;
    if (!this.options.channel.record || !this.armed || fallback || !onAir) return false;
    await this.openSession('auto', entry.programDateTime);
    return true;
  }

  /** The timeline breaks: the session ends here and the next segment starts its continuation. */
  private async breakSession(): Promise<void> {
    const { trigger, session } = this.open!.record;
    const ended = await this.end('discontinuity');
    this.continuation = { trigger, continues: ended?.session ?? session };
  }

  private async openSession(trigger: 'auto' | 'manual', startedAt: number, continues?: string): Promise<OpenSession> {
    const record = await this.options.catalog.open({ channel: this.channelId, rendition: this.rendition, trigger, startedAt, continues });
    this.open = { record, fallbackSeconds: 0, recordedAny: false, recordedSeconds: 0, chapters: 0, chaptersFull: false };
    this.logger.info({ session: record.session, trigger, rendition: this.rendition, ...(continues ? { continues } : {}) }, 'recording session started');
    return this.open;
  }

  private async end(reason: EndReason): Promise<RecordingRecord | undefined> {
    const open = this.open!;
    this.open = undefined;
    const ended = await this.options.catalog.finish(open.record, reason);
    this.logger.info(
      { session: open.record.session, reason, segments: ended?.segments ?? 0, seconds: ended?.segmentsSeconds ?? 0 },
      ended ? 'recording session ended' : 'recording session ended with nothing recorded: removed',
    );
    if (ended) this.mirror?.sessionEnded(ended.channel, ended.session);
    if (ended) this.options.jobs.enqueue(ended.channel, ended.session);
    return ended;
  }
}

function chapterText(nowPlaying: ChapterText): ChapterText {
  return { title: nowPlaying.title, ...(nowPlaying.artist !== undefined ? { artist: nowPlaying.artist } : {}), ...(nowPlaying.album !== undefined ? { album: nowPlaying.album } : {}) };
}
