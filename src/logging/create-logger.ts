/**
 * The one logger factory: every process's pino logger is made here (src/cli.ts, the record
 * command), so all of them share three rules.
 *
 * - Readable: human-readable lines (pino-pretty, in-process and synchronous) when stderr is
 *   a terminal, one JSON object per line otherwise (log collectors, systemd, Docker).
 * - Redacted: secret-named fields (`passphrase`, `key`, `secret`, `token(s)`, `password`,
 *   also one level down) become `***`; URL and free-text fields (`url`, `ffmpeg`, `reason`,
 *   error messages and stacks, the message itself) keep their text with the credentials in
 *   their URLs redacted (redact.ts).
 * - Not repeated: warnings and errors are rate-limited per cause (level, message and the
 *   logger's bindings such as channel and input, request ids aside): the first line of a
 *   cause is written, the rest within `repeatWindowMs` are counted and the last of them
 *   written with `repeated: n` when the window ends (repeat-limiter.ts). Fatal lines always pass.
 */
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Clock } from '../clock.js';
import { REDACTED, isSecretName, redactText } from './redact.js';
import { RepeatLimiter } from './repeat-limiter.js';

/** A cause writes at most one line per this many milliseconds (plus the count at its end). */
export const REPEAT_WINDOW_MS = 5000;

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Where lines go; default: stderr. */
  destination?: DestinationStream;
  /** Human-readable lines; default: when stderr is a terminal. */
  pretty?: boolean;
  /** The clock of the repeat windows; default: the system clock (timers that never hold the process open). */
  clock?: Clock;
  repeatWindowMs?: number;
}

/** Fields that hold secrets outright, at the top and one level down. */
const SECRET_FIELDS = ['passphrase', 'password', 'secret', 'key', 'token', 'tokens', 'ingestTokens', 'signingKey'];
/** Fields that hold URLs or FFmpeg's text: kept, with the credentials in them redacted. */
const TEXT_FIELDS = ['url', 'inputUrl', 'outputUrl', 'ffmpeg', 'reason', 'store'];

const LEVEL_WARN = 40;
const LEVEL_FATAL = 60;

export function createLogger(options: LoggerOptions): Logger {
  const limiter = new RepeatLimiter(options.clock ?? unrefClock, options.repeatWindowMs ?? REPEAT_WINDOW_MS);
  const usePretty = options.pretty ?? process.stderr.isTTY === true;
  const destination: DestinationStream = usePretty
    ? pretty({
        destination: options.destination ?? 2,
        sync: true,
        colorize: options.destination === undefined,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      })
    : (options.destination ?? pino.destination({ dest: 2, sync: true }));
  const paths = [...SECRET_FIELDS, ...TEXT_FIELDS].flatMap((field) => [field, `*.${field}`]);
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      redact: { paths, censor: censorField },
      serializers: { err: serializeError },
      hooks: {
        logMethod(inputArgs, method, level) {
          const args = redactMessage(inputArgs) as Parameters<typeof method>;
          if (level < LEVEL_WARN || level >= LEVEL_FATAL) return method.apply(this, args);
          const cause = `${level}\u0000${bindingsKey(this)}\u0000${messageOf(args)}`;
          limiter.submit(cause, (repeated) => method.apply(this, repeated > 1 ? (withRepeatCount(args, repeated) as Parameters<typeof method>) : args));
        },
      },
    },
    destination,
  );
}

/** pino's censor: secret fields are hidden, text fields keep their text without credentials. */
function censorField(value: unknown, path: string[]): unknown {
  const field = path[path.length - 1] ?? '';
  if (isSecretName(field)) return value === undefined ? value : REDACTED;
  return typeof value === 'string' ? redactText(value) : value;
}

function serializeError(error: unknown): unknown {
  const serialized = pino.stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  if (serialized === null || typeof serialized !== 'object') return serialized;
  for (const field of ['message', 'stack'] as const) {
    const text = serialized[field];
    if (typeof text === 'string') serialized[field] = redactText(text);
  }
  return serialized;
}

/** The message string (the first string argument) with the credentials of its URLs redacted. */
function redactMessage(args: unknown[]): unknown[] {
  const index = args.findIndex((arg) => typeof arg === 'string');
  if (index < 0) return args;
  const message = args[index] as string;
  const redacted = redactText(message);
  if (redacted === message) return args;
  const copy = [...args];
  copy[index] = redacted;
  return copy;
}

function messageOf(args: unknown[]): string {
  const message = args.find((arg) => typeof arg === 'string');
  return typeof message === 'string' ? message : '';
}

/** The logger's bindings (channel, input, component…) without the per-request id. */
function bindingsKey(logger: Logger): string {
  const { reqId: _reqId, ...bindings } = logger.bindings();
  return JSON.stringify(bindings);
}

/** The same line, with how many lines of its cause it stands for. */
function withRepeatCount(args: unknown[], repeated: number): unknown[] {
  const [first, ...rest] = args;
  if (first instanceof Error) return [{ err: first, repeated }, ...rest];
  if (first !== null && typeof first === 'object') return [{ ...(first as object), repeated }, ...rest];
  return [{ repeated }, ...args];
}

/** The system clock with timers that never keep the process alive (a pending count is not worth waiting for). */
const unrefClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, delayMs) {
    const handle = setTimeout(callback, delayMs);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
