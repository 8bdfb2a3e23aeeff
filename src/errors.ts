/**
 * The one error table (docs/architecture.md, Errors), after fastify's lib/errors.js: every
 * domain error onair raises has a stable `ONAIR_*` code, the HTTP status the origin and the
 * API answer it with, and the short `error` name of the JSON reply. Tests assert codes, never
 * message text; test/errors.test.ts keeps this table, the codes thrown in src/ and the
 * README's list in sync.
 *
 * Programming errors (a function called against its contract: a reserved PID, an empty lease
 * owner) stay RangeError/TypeError: they are bugs to fix, not conditions to handle.
 */
export interface ErrorDefinition {
  /** HTTP status when the error reaches a reply. */
  status: number;
  /** The `error` field of the JSON reply, e.g. `{"error":"not_leading","message":"…"}`. */
  reply: string;
  /** What it means, for the README's list. */
  meaning: string;
}

export const ERRORS = {
  ONAIR_CONFIG_INVALID: { status: 400, reply: 'config_invalid', meaning: 'the configuration breaks the schema; the message names the key path' },
  ONAIR_CONFIG_UNREADABLE: { status: 400, reply: 'config_invalid', meaning: 'the configuration file cannot be read or parsed' },
  ONAIR_RESTART_REQUIRED: { status: 409, reply: 'restart_required', meaning: 'a reload changed keys that only a restart applies (store, ports, HLS timing)' },
  ONAIR_RELOAD_INCOMPLETE: { status: 503, reply: 'reload_incomplete', meaning: 'a reload applied, but some channels did not start; the next reload tries them again' },
  ONAIR_RELOAD_UNAVAILABLE: { status: 409, reply: 'reload_unavailable', meaning: 'no reload now: the ingest is still starting or already closed, or was not started from a file' },
  ONAIR_PORT_IN_USE: { status: 500, reply: 'port_in_use', meaning: 'a listener cannot bind its address' },
  ONAIR_WORKER_FAILED: { status: 500, reply: 'worker_failed', meaning: 'an origin worker (`--workers`) exited: before it listened (the start fails) or later (it is replaced)' },
  ONAIR_STORE_UNAVAILABLE: { status: 503, reply: 'store_unavailable', meaning: 'the store (Redis) cannot be reached or did not answer in time' },
  ONAIR_STORE_URL_INVALID: { status: 500, reply: 'store_url_invalid', meaning: 'the Redis URL cannot be used' },
  ONAIR_STORE_POLICY: { status: 500, reply: 'store_policy', meaning: "Redis's maxmemory-policy may evict onair's keys: set it to noeviction (or redis.allowEvictingPolicy)" },
  ONAIR_STORE_FULL: { status: 503, reply: 'store_full', meaning: 'Redis refused a write: maxmemory is reached under noeviction; writes resume once memory frees' },
  ONAIR_FENCED: { status: 409, reply: 'fenced', meaning: 'a write carried a lease token that is no longer current: another packager leads' },
  ONAIR_FFMPEG_MISSING: { status: 500, reply: 'ffmpeg_missing', meaning: 'ffmpeg or ffprobe is not installed or lacks a needed feature' },
  ONAIR_FFMPEG_FAILED: { status: 500, reply: 'ffmpeg_failed', meaning: 'an FFmpeg or ffprobe run failed or gave no usable answer' },
  ONAIR_INPUT_FAILED: { status: 502, reply: 'input_failed', meaning: 'an input (or the safety source file) gave no usable audio' },
  ONAIR_INPUT_UNKNOWN: { status: 400, reply: 'input_unknown', meaning: 'the channel has no input with that id' },
  ONAIR_CHANNEL_NOT_STARTED: { status: 409, reply: 'channel_not_started', meaning: 'the channel is not running in this process yet' },
  ONAIR_NOT_LEADING: { status: 409, reply: 'not_leading', meaning: 'this process stands by for the channel: only the leader acts on air' },
  ONAIR_RECORDING_NOT_FOUND: { status: 404, reply: 'not_found', meaning: 'no such recording session (or channel)' },
  ONAIR_RECORDING_NOT_LEADING: { status: 409, reply: 'not_leading', meaning: 'this process does not lead the channel: only the leader records' },
  ONAIR_RECORDING_BUSY: { status: 409, reply: 'recording_busy', meaning: 'the session is still being recorded: stop it first' },
  ONAIR_RECORDING_NOT_RECORDING: { status: 409, reply: 'not_recording', meaning: 'a stop while nothing is being recorded' },
  ONAIR_RECORDING_STITCH_FAILED: { status: 500, reply: 'stitch_failed', meaning: 'stitching failed: FFmpeg, a missing segment file, or a duration off by more than the tolerance' },
  ONAIR_RECORDING_CORRUPT: { status: 500, reply: 'recording_corrupt', meaning: 'a stored recording record or index is not ours' },
  ONAIR_RECORDING_DISK_FULL: { status: 507, reply: 'disk_full', meaning: 'the recordings disk is full: the session ended, its stitch job waits for room and runs again' },
  ONAIR_RECORDING_UPLOAD_FAILED: { status: 502, reply: 'upload_failed', meaning: 'the object storage refused or lost an upload, or a checksum it confirmed did not match: the job keeps its parts and runs again' },
  ONAIR_RECORDING_BUCKET_UNREADABLE: { status: 502, reply: 'bucket_unreadable', meaning: "a session's mirrored segments or index could not be read from the object storage (recordings.storage.s3.mirrorSegments): the job runs again later" },
  ONAIR_CHANNEL_FAULT: { status: 500, reply: 'channel_fault', meaning: "a channel's pipeline threw: that channel restarts, the others keep airing" },
  ONAIR_UNHANDLED_REJECTION: { status: 500, reply: 'internal_error', meaning: 'a promise rejection nothing handled: logged and counted, the process goes on' },
  ONAIR_PLAYLIST_INVALID: { status: 500, reply: 'playlist_invalid', meaning: 'a playlist text breaks RFC 8216 syntax or lacks a required tag (the error carries the line)' },
  ONAIR_PLAYER_MISSING: { status: 500, reply: 'player_missing', meaning: "the player page's files are not installed beside onair" },
  ONAIR_ORIGIN_BUSY: { status: 503, reply: 'busy', meaning: 'the origin holds as many LL-HLS requests as it may (for this client address, or in all), or is overloaded: retry after Retry-After' },
  ONAIR_RATE_LIMITED: { status: 429, reply: 'rate_limited', meaning: 'too many requests from this client address to the control API or the access-log ingest: retry after Retry-After' },
  ONAIR_NOW_PLAYING_INVALID: { status: 400, reply: 'now_playing_invalid', meaning: 'a now playing update is refused: no title, a wrong type, a bad artwork URL or duration, an unknown field, mode or charset (the message names the field)' },
  ONAIR_TEXT_ENCODING: { status: 400, reply: 'invalid_encoding', meaning: 'a now playing update carries text that is not valid UTF-8 (or not valid in the charset it names)' },
  ONAIR_ICECAST_UNAUTHORIZED: { status: 401, reply: 'unauthorized', meaning: "wrong or missing Basic credentials at Icecast's admin endpoint or a source mount (the same answer whether the mount exists or not)" },
  ONAIR_AUTH_THROTTLED: { status: 429, reply: 'too_many_failures', meaning: 'an address gave a wrong Icecast source or admin password too often: it is locked out (1 s, doubling per further failure, at most 60 s) whatever it sends; retry after Retry-After' },
  ONAIR_MOUNT_UNKNOWN: { status: 400, reply: 'mount_unknown', meaning: "an authenticated Icecast admin request names a mount that is not one of the channels' (Icecast's \"Source does not exist\")" },
  ONAIR_MOUNT_IN_USE: { status: 403, reply: 'mount_in_use', meaning: 'a source client connected to a mount that already has one (Icecast\'s "Mountpoint in use")' },
  ONAIR_SOURCE_FORMAT: { status: 415, reply: 'unsupported_format', meaning: 'a source client sent a Content-Type other than MP3 (audio/mpeg), AAC (audio/aac, audio/aacp) or Ogg' },
  ONAIR_MOUNT_FULL: { status: 503, reply: 'mount_full', meaning: 'the origin serves as many progressive listeners as it may (origin.progressive.maxListeners): retry after Retry-After, or another origin' },
  ONAIR_JWT_MISSING: { status: 401, reply: 'jwt_missing', meaning: 'POST /auth/playback without a JWT: no `Authorization: Bearer` header and no `token` in a JSON body' },
  ONAIR_JWT_MALFORMED: { status: 401, reply: 'jwt_malformed', meaning: 'the token is not a compact JWS JWT (three base64url parts, JSON header and claims) or is longer than 8192 characters' },
  ONAIR_JWT_ALGORITHM: { status: 401, reply: 'jwt_algorithm', meaning: 'the token is signed with an algorithm not in entitlements.algorithms (none and HS* never are)' },
  ONAIR_JWT_KEY_UNKNOWN: { status: 401, reply: 'jwt_key_unknown', meaning: "no key of the identity provider's JWKS (or the PEM key) matches the token's kid and algorithm" },
  ONAIR_JWT_SIGNATURE: { status: 401, reply: 'jwt_signature', meaning: "the token's signature does not verify with the provider's key" },
  ONAIR_JWT_EXPIRED: { status: 401, reply: 'jwt_expired', meaning: "the token's exp has passed, beyond entitlements.clockTolerance" },
  ONAIR_JWT_NOT_YET_VALID: { status: 401, reply: 'jwt_not_yet_valid', meaning: "the token's nbf or iat is in the future, beyond entitlements.clockTolerance" },
  ONAIR_JWT_ISSUER: { status: 401, reply: 'jwt_issuer', meaning: "the token's iss is not entitlements.issuer" },
  ONAIR_JWT_AUDIENCE: { status: 401, reply: 'jwt_audience', meaning: "the token's aud does not name entitlements.audience" },
  ONAIR_JWT_CLAIMS: { status: 401, reply: 'jwt_claims', meaning: 'the token lacks iss, aud or exp, or a claim has the wrong type (the channels and tier claims: a string or a list of strings)' },
  ONAIR_JWKS_UNAVAILABLE: { status: 503, reply: 'jwks_unavailable', meaning: "the identity provider's JWKS could not be fetched in time, was not a 200 JWK set, or was larger than 256 KiB: retry after Retry-After" },
  ONAIR_TLS_RELOAD_FAILED: { status: 500, reply: 'tls_reload_failed', meaning: "on SIGHUP, a listener's new certificate or key could not be read or do not match: the previous pair stays in use (the message names the key)" },
  ONAIR_KEY_FORBIDDEN: { status: 403, reply: 'key_forbidden', meaning: "a content key request of an encrypted channel without a valid token of that channel (missing, malformed, expired, forged or for another path)" },
  ONAIR_KEY_NOT_FOUND: { status: 404, reply: 'not_found', meaning: 'no such content key: the channel is not encrypted, or the key expired or was never made' },
  ONAIR_LICENSE_REQUEST_INVALID: { status: 400, reply: 'license_request_invalid', meaning: 'a ClearKey license request of a cbcs channel is not the W3C JSON request: not JSON, no kids, more than 16, or a kid that is not 16 bytes of base64url' },
} as const satisfies Record<string, ErrorDefinition>;

export type OnairErrorCode = keyof typeof ERRORS;

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

  /** The HTTP status of this error's code (Fastify's error handler reads `statusCode`). */
  get statusCode(): number {
    return ERRORS[this.code].status;
  }
}

export function isOnairError(error: unknown, code?: OnairErrorCode): error is OnairError {
  return error instanceof OnairError && (code === undefined || error.code === code);
}

/** The status and reply name an error gets at the origin or the API (500 for anything not ours). */
export function httpErrorOf(error: unknown): { status: number; reply: string } {
  if (!isOnairError(error)) return { status: 500, reply: 'internal_error' };
  const { status, reply } = ERRORS[error.code];
  return { status, reply };
}
