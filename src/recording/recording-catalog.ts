/**
 * The recorded sessions of the channels: records in the store (their state, see
 * recording-record.ts) over files on disk (recording-files.ts). Shared by the recorder,
 * the stitch jobs, the origin, the control API and the CLI.
 *
 * The disk describes a session on its own (its index has a header and, once ended, an end
 * line), so sessions the store does not know (the embedded store after a restart, a CLI
 * process that has its own embedded store) are adopted from disk: ended ones with their
 * file as `done`, ended ones without as `ended` (to be stitched), open ones as `recording`
 * (the recorder then ends them as interrupted).
 */
import { stat } from 'node:fs/promises';
import { OnairError } from '../errors.js';
import type { RecordingStore } from '../store/store.js';
import { isDiskFull, lastKeptMsn, sessionSegments, type RecordingFiles, type SessionIndex } from './recording-files.js';
import type { S3RecordingStorage } from './s3-storage.js';
import { parseRecordingRecord, sessionIdAt, type EndReason, type RecordingRecord, type SessionTrigger } from './recording-record.js';
import { sessionChapters } from './session-chapters.js';

/** A removal waits for the bucket at most this long. */
const BUCKET_TIMEOUT_MS = 30_000;

export interface NewSession {
  channel: string;
  rendition: string;
  trigger: SessionTrigger;
  startedAt: number;
  continues?: string;
}

export class RecordingCatalog {
  readonly files: RecordingFiles;
  /** recordings.storage.s3: where finished files also go (none: local disk only). */
  readonly objects: S3RecordingStorage | undefined;
  private readonly store: RecordingStore;
  private readonly now: () => number;

  constructor(options: { store: RecordingStore; files: RecordingFiles; objects?: S3RecordingStorage; now?: () => number }) {
    this.store = options.store;
    this.files = options.files;
    this.objects = options.objects;
    this.now = options.now ?? Date.now;
  }

  async get(channel: string, session: string): Promise<RecordingRecord | undefined> {
    const text = await this.store.getRecording(channel, session);
    return text === null ? undefined : parseRecordingRecord(text);
  }

  /** Like get(), but a missing session is OnairError ONAIR_RECORDING_NOT_FOUND. */
  async require(channel: string, session: string): Promise<RecordingRecord> {
    const record = await this.get(channel, session);
    if (!record) throw new OnairError('ONAIR_RECORDING_NOT_FOUND', `no recorded session ${session} of channel ${channel}`);
    return record;
  }

  /**
   * Stores the record with `changes` applied and a fresh `updatedAt`; returns it. With
   * `fence` (a lease token of the channel), refused with ONAIR_FENCED unless it is current.
   */
  async update(record: RecordingRecord, changes: Partial<RecordingRecord> = {}, fence?: string): Promise<RecordingRecord> {
    const next: RecordingRecord = { ...record, ...changes, updatedAt: this.now() };
    await this.store.putRecording(next.channel, next.session, JSON.stringify(next), fence);
    return next;
  }

  /** The channel's sessions, oldest first; records that do not parse are skipped. */
  async list(channel: string): Promise<RecordingRecord[]> {
    const records: RecordingRecord[] = [];
    for (const text of await this.store.listRecordings(channel)) {
      try {
        records.push(parseRecordingRecord(text));
      } catch {
        // Not ours: never let one bad record hide the others.
      }
    }
    return records.sort((a, b) => (a.session < b.session ? -1 : a.session > b.session ? 1 : 0));
  }

  /** Opens a new session: a free id at `startedAt`, its directory and index header, its `recording` record. */
  async open(session: NewSession): Promise<RecordingRecord> {
    const known = new Set([...(await this.list(session.channel)).map((record) => record.session), ...(await this.files.sessionsOnDisk(session.channel))]);
    let suffix = 1;
    while (known.has(sessionIdAt(session.startedAt, suffix))) suffix += 1;
    const id = sessionIdAt(session.startedAt, suffix);
    await this.files.createSession({ type: 'session', channel: session.channel, session: id, rendition: session.rendition, trigger: session.trigger, startedAt: session.startedAt });
    return this.update({
      version: 1,
      channel: session.channel,
      session: id,
      rendition: session.rendition,
      trigger: session.trigger,
      state: 'recording',
      startedAt: session.startedAt,
      ...(session.continues ? { continues: session.continues } : {}),
      updatedAt: 0,
    });
  }

  /**
   * Ends a `recording` session: its last kept segment (lastKeptMsn) goes in the index's end
   * line, the dropped tail's files are deleted, and the record becomes `ended` with its
   * segment count and duration. A session that kept nothing is removed altogether
   * (returns undefined). A manual session cut by a shutdown or crash is flagged `resumeManual`.
   * A session whose directory is not on this disk (recorded by another host) ends as it is.
   */
  async finish(record: RecordingRecord, reason: EndReason): Promise<RecordingRecord | undefined> {
    const { channel, session } = record;
    const index = await this.files.readIndex(channel, session);
    const lines = index?.lines ?? [];
    const lastMsn = index?.end ? index.end.lastMsn : lastKeptMsn(lines, record.trigger);
    const endedAt = this.now();
    try {
      if (index && !index.end) await this.files.endSession(channel, session, { type: 'end', lastMsn, reason, endedAt });
    } catch (error) {
      // A full disk: the store's record says where the session ends (`segments`); the tail after
      // it is deleted below, so the index read later ends at the same segment.
      if (!isDiskFull(error)) throw error;
    }
    const dropped = lines.filter((line) => lastMsn === undefined || line.msn > lastMsn);
    await this.files.deleteSegments(channel, session, dropped);
    const resumeManual = record.trigger === 'manual' && (reason === 'shutdown' || reason === 'interrupted');
    const kept = index ? sessionSegments({ ...index, end: { type: 'end', lastMsn, reason, endedAt } }) : [];
    if (index && kept.length === 0) {
      // Nothing worth keeping (e.g. a manual session stopped before its first segment).
      await this.remove(channel, session, { evenIfRecording: true });
      return undefined;
    }
    return this.update(record, {
      state: 'ended',
      endedAt,
      endReason: reason,
      ...(resumeManual ? { resumeManual } : {}),
      segments: kept.length,
      segmentsSeconds: totalSeconds(kept),
    });
  }

  /** Records for the sessions on disk the store does not know (see the header); returns those adopted. */
  async adoptFromDisk(channel: string): Promise<RecordingRecord[]> {
    const known = new Set((await this.list(channel)).map((record) => record.session));
    const adopted: RecordingRecord[] = [];
    for (const session of await this.files.sessionsOnDisk(channel)) {
      if (known.has(session)) continue;
      const index = await this.files.readIndex(channel, session);
      if (!index || index.header.channel !== channel || index.header.session !== session) continue;
      adopted.push(await this.update(await this.recordFromDisk(index), {}));
    }
    return adopted;
  }

  /** Deletes a session's files and record. Refused (ONAIR_RECORDING_BUSY) while it is being recorded. */
  async remove(channel: string, session: string, options: { evenIfRecording?: boolean } = {}): Promise<void> {
    const record = await this.get(channel, session);
    if (record?.state === 'recording' && !options.evenIfRecording) {
      throw new OnairError('ONAIR_RECORDING_BUSY', `session ${session} of channel ${channel} is being recorded: stop it first`);
    }
    await this.files.removeSession(channel, session);
    // Its objects go with it (docs/architecture.md, "Recordings in object storage").
    if (this.objects && record?.objects) {
      for (const key of [record.objects.file, record.objects.cue]) if (key) await this.objects.delete(key);
    }
    // And its mirrored segments and index (docs/architecture.md, "Mirrored segments").
    // (A session ended with nothing kept goes from the recorder's queue: never waiting on the bucket there.)
    if (this.objects?.mirrorSegments) {
      const removal = this.objects.deletePrefix(this.objects.sessionPrefix(channel, session), AbortSignal.timeout(BUCKET_TIMEOUT_MS));
      if (options.evenIfRecording) removal.catch(() => undefined);
      else await removal;
    }
    await this.store.deleteRecording(channel, session);
  }

  private async recordFromDisk(index: SessionIndex): Promise<RecordingRecord> {
    const { header, end } = index;
    const base: RecordingRecord = {
      version: 1,
      channel: header.channel,
      session: header.session,
      rendition: header.rendition,
      trigger: header.trigger,
      state: 'recording',
      startedAt: header.startedAt,
      updatedAt: 0,
    };
    if (!end) return base;
    const kept = sessionSegments(index);
    const ended: RecordingRecord = { ...base, state: 'ended', endedAt: end.endedAt, endReason: end.reason, segments: kept.length, segmentsSeconds: totalSeconds(kept) };
    const file = this.files.filePath(header.channel, header.session);
    if (!(await this.files.exists(file))) return ended;
    // Stitched and checked before the store lost its record: done, without announcing it again.
    const chapters = sessionChapters(index.chapters, ended.segmentsSeconds!).length;
    return { ...ended, state: 'done', durationSeconds: ended.segmentsSeconds, sizeBytes: (await stat(file)).size, chapters };
  }
}

export function totalSeconds(segments: readonly { durationSeconds: number }[]): number {
  return segments.reduce((sum, segment) => sum + segment.durationSeconds, 0);
}
