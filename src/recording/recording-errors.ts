/**
 * Errors of the recording feature, with stable codes (tests and the API branch on codes,
 * never on messages). The API maps them: NOT_FOUND → 404, NOT_LEADING/BUSY/NOT_RECORDING → 409.
 */
export type RecordingErrorCode =
  /** No such session (or channel) in the store or on disk. */
  | 'ONAIR_RECORDING_NOT_FOUND'
  /** This process does not lead the channel: only the leader records. */
  | 'ONAIR_RECORDING_NOT_LEADING'
  /** The session is still being recorded: stop it first. */
  | 'ONAIR_RECORDING_BUSY'
  /** A stop while nothing is being recorded. */
  | 'ONAIR_RECORDING_NOT_RECORDING'
  /** Stitching failed: FFmpeg, a missing segment file, or a duration off by more than the tolerance. */
  | 'ONAIR_RECORDING_STITCH_FAILED'
  /** A stored record or index that is not ours. */
  | 'ONAIR_RECORDING_CORRUPT';

export class RecordingError extends Error {
  readonly code: RecordingErrorCode;

  constructor(code: RecordingErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'RecordingError';
    this.code = code;
  }
}

export function isRecordingError(error: unknown, code?: RecordingErrorCode): error is RecordingError {
  return error instanceof RecordingError && (code === undefined || error.code === code);
}
