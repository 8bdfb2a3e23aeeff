/**
 * The record of one recorded session, as the store keeps it (`Store.putRecording`): what
 * was recorded, why it ended, and how far its stitch job got. It is the durable state of
 * the job, so a restarted process resumes where the last one stopped:
 *
 *   recording ──(input gone endAfterSeconds | stop | shutdown | found interrupted)──► ended
 *   ended ──(stitched, duration checked)──► stitched ──(event + webhook)──► done
 *   ended ──(FFmpeg failed, duration off, no segment at all)──► failed   (`onair record stitch` retries)
 *   ended ──(disk full)──► ended, with `errorCode` ONAIR_RECORDING_DISK_FULL: the job is queued again
 *   stitched ──(recordings.storage.s3: uploaded and checked, `objects` set)──► stitched ──► done
 *   stitched ──(upload failed)──► stitched, with `upload` (its parts) and ONAIR_RECORDING_UPLOAD_FAILED: queued again
 *
 * Session ids are the UTC start time, `20261121T231500Z` (a `-2`, `-3`… suffix when two
 * start in the same second), so they sort in time order and are safe in URLs and keys.
 */
import { OnairError, type OnairErrorCode } from '../errors.js';
import type { MultipartState } from './s3-multipart-upload.js';

export type RecordingState = 'recording' | 'ended' | 'stitched' | 'done' | 'failed';
/** `auto`: started by audio on a `record: true` channel; `manual`: by the control API. */
export type SessionTrigger = 'auto' | 'manual';
/** `discontinuity`: the timeline broke (segments dropped in a store outage): the next session continues it. */
/** `disk-full`: a segment could not be written (ENOSPC): the next session continues it once there is room. */
export type EndReason = 'input-lost' | 'stopped' | 'shutdown' | 'interrupted' | 'discontinuity' | 'disk-full' | 'max-length';

export interface WebhookOutcome {
  delivered: boolean;
  attempts: number;
  /** The last failure, when not delivered. */
  error?: string;
}

export interface RecordingRecord {
  version: 1;
  channel: string;
  session: string;
  rendition: string;
  trigger: SessionTrigger;
  state: RecordingState;
  /** Epoch ms: the program date time of the first segment (manual: the start request). */
  startedAt: number;
  /** The session this one goes on from, when a shutdown or crash cut a manual session. */
  continues?: string;
  endedAt?: number;
  endReason?: EndReason;
  /**
   * A manual session cut by a shutdown or crash: the next leader records on, in a new session.
   * Cleared once it has.
   */
  resumeManual?: boolean;
  /** Set when ended: the segments kept and the sum of their durations (EXTINF). */
  segments?: number;
  segmentsSeconds?: number;
  /** Set when stitched: the file's duration as ffprobe reads it, and its size. */
  durationSeconds?: number;
  sizeBytes?: number;
  /** Id of the `recording.ready` event in the store's events stream, once appended. */
  eventId?: string;
  webhook?: WebhookOutcome;
  /** Set when stitched: the file's chapters (the session's now-playing changes); with any, a cue sheet is beside it. */
  chapters?: number;
  /** Set when stitched: seconds of silence that stand in for segment files that were lost. */
  silenceSeconds?: number;
  /** The segment files were removed once the stitched file was checked (no VOD playlist then). */
  segmentsRemoved?: boolean;
  /** recordings.storage.s3: the file's multipart upload in progress, to resume after a crash (s3-multipart-upload.ts). */
  upload?: MultipartState;
  /** recordings.storage.s3: the keys of the file and its cue sheet in the bucket, once uploaded and checked. */
  objects?: { file: string; cue?: string };
  /** Why the job failed (or waits: a full disk). */
  error?: string;
  errorCode?: OnairErrorCode;
  updatedAt: number;
}

const SESSION_ID = /^\d{8}T\d{6}Z(?:-\d{1,3})?$/;

export function isSessionId(value: string): boolean {
  return SESSION_ID.test(value);
}

/** `20261121T231500Z` for 2026-11-21 23:15:00.xxx UTC; `suffix` > 1 appends `-<suffix>`. */
export function sessionIdAt(epochMs: number, suffix = 1): string {
  const compact = new Date(epochMs).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return suffix > 1 ? `${compact}-${suffix}` : compact;
}

/** Parses a stored record; throws OnairError ONAIR_RECORDING_CORRUPT for anything else. */
export function parseRecordingRecord(text: string): RecordingRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new OnairError('ONAIR_RECORDING_CORRUPT', 'a recording record is not JSON');
  }
  const record = value as Partial<RecordingRecord> | null;
  if (
    typeof record !== 'object' ||
    record === null ||
    record.version !== 1 ||
    typeof record.channel !== 'string' ||
    typeof record.session !== 'string' ||
    !isSessionId(record.session) ||
    typeof record.state !== 'string' ||
    typeof record.startedAt !== 'number'
  ) {
    throw new OnairError('ONAIR_RECORDING_CORRUPT', 'a recording record lacks its channel, session, state or start');
  }
  return record as RecordingRecord;
}
