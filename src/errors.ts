/**
 * Domain errors carry a stable code; the origin maps codes to HTTP status, the CLI
 * maps them to exit messages. Tests assert codes, never message text.
 */
export type OnairErrorCode =
  | 'ONAIR_CONFIG_INVALID'
  | 'ONAIR_CONFIG_UNREADABLE'
  | 'ONAIR_PORT_IN_USE'
  | 'ONAIR_STORE_UNAVAILABLE'
  | 'ONAIR_STORE_URL_INVALID'
  | 'ONAIR_FFMPEG_MISSING'
  | 'ONAIR_INPUT_FAILED'
  /** A config reload changed keys that only a restart can apply (store, ports, HLS timing). */
  | 'ONAIR_RESTART_REQUIRED'
  /** A config reload applied, but some channels did not start; the next reload tries them again. */
  | 'ONAIR_RELOAD_INCOMPLETE'
  /** A write carried a lease token that is no longer the channel's current lease: another packager leads. */
  | 'ONAIR_FENCED';

export class OnairError extends Error {
  readonly code: OnairErrorCode;
  /** Config key path or resource the error is about, e.g. `channels[0].renditions[1].bitrate`. */
  readonly where?: string;

  constructor(code: OnairErrorCode, message: string, options: { where?: string; cause?: unknown } = {}) {
    super(options.where ? `${options.where}: ${message}` : message, { cause: options.cause });
    this.name = 'OnairError';
    this.code = code;
    this.where = options.where;
  }
}

export function isOnairError(error: unknown, code?: OnairErrorCode): error is OnairError {
  return error instanceof OnairError && (code === undefined || error.code === code);
}
