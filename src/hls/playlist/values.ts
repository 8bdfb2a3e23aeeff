/**
 * The value types of RFC 8216 §4.2 that our tags use, read and written: decimal-integer,
 * decimal-floating-point, quoted-string, enumerated-string, and the ISO 8601 date-time of
 * EXT-X-PROGRAM-DATE-TIME (§4.3.2.6). Readers throw PlaylistParseError; writers throw
 * RangeError for a value no playlist can carry (a caller's bug, not bad input).
 *
 * Readers accept only what the writers can write back, so that whatever parses also
 * marshals: integers are safe integers, decimals are below 10^15, dates lie
 * in the years 0000–9999.
 */
import { PlaylistParseError } from './playlist-parse-error.js';

const DECIMAL_INTEGER = /^[0-9]{1,16}$/;
const DECIMAL_FLOAT = /^[0-9]{1,15}(\.[0-9]+)?$/;
/** YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm|±hhmm) */
const DATE_TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$/;
const FIRST_MS = -62167219200000; // 0000-01-01T00:00:00.000Z
const LAST_MS = 253402300799999; // 9999-12-31T23:59:59.999Z
/** toFixed writes exponents from 1e21; keep well below, as readers do. */
const LARGEST_DECIMAL = 1e15;

export function readDecimalInteger(text: string, what: string): number {
  const value = Number(text);
  if (!DECIMAL_INTEGER.test(text) || !Number.isSafeInteger(value)) {
    throw new PlaylistParseError(`${what}: expected a decimal integer, got "${text}"`);
  }
  return value;
}

export function readDecimalFloat(text: string, what: string): number {
  const value = Number(text);
  // Fifteen nines and a fraction round up to 10^15, which the writers refuse.
  if (!DECIMAL_FLOAT.test(text) || value >= LARGEST_DECIMAL) throw new PlaylistParseError(`${what}: expected a decimal number below 10^15, got "${text}"`);
  return value;
}

/** Milliseconds since the epoch; fractions of a millisecond are dropped, as Date does. */
export function readDateTime(text: string, what: string): number {
  const match = DATE_TIME.exec(text);
  if (!match) throw new PlaylistParseError(`${what}: expected an ISO 8601 date-time with a zone, got "${text}"`);
  const [year, month, day, hours, minutes, seconds] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const milliseconds = Math.floor(Number(`0${match[7] ?? ''}`) * 1000);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hours > 23 || minutes > 59 || seconds > 59) {
    throw new PlaylistParseError(`${what}: no such date-time "${text}"`);
  }
  date.setUTCHours(hours, minutes, seconds, milliseconds);
  const ms = date.getTime() - zoneOffsetMinutes(match[8]!) * 60_000;
  if (ms < FIRST_MS || ms > LAST_MS) throw new PlaylistParseError(`${what}: date-time out of range "${text}"`);
  return ms;
}

function zoneOffsetMinutes(zone: string): number {
  if (zone === 'Z') return 0;
  const digits = zone.slice(1).replace(':', '');
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0');
  return zone.startsWith('-') ? -minutes : minutes;
}

/** YES or NO (§4.3.4.1-style enumerated booleans). */
export function readYesNo(text: string, what: string): boolean {
  if (text === 'YES') return true;
  if (text === 'NO') return false;
  throw new PlaylistParseError(`${what}: expected YES or NO, got "${text}"`);
}

export function formatDecimalInteger(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a decimal-integer: ${value}`);
  return String(value);
}

/**
 * Durations with 5 decimals (EXTINF, PART DURATION, PART-TARGET): exact to 10 µs, and
 * never a rounded-up whole number that claims more than the audio lasts.
 */
export function formatFixedDecimal(value: number): string {
  checkDecimal(value);
  return value.toFixed(5);
}

/** The shortest text of the number (`12`, `0.5`): for values that are whole target durations. */
export function formatDecimal(value: number): string {
  checkDecimal(value);
  const text = String(value);
  if (!DECIMAL_FLOAT.test(text)) throw new RangeError(`not a decimal-floating-point: ${value}`);
  return text;
}

function checkDecimal(value: number): void {
  if (!Number.isFinite(value) || value < 0 || value >= LARGEST_DECIMAL) throw new RangeError(`not a decimal-floating-point: ${value}`);
}

/** ISO 8601 in UTC with milliseconds (`2024-01-01T12:00:00.000Z`). */
export function formatDateTime(ms: number): string {
  if (!(ms >= FIRST_MS && ms <= LAST_MS)) throw new RangeError(`date-time out of range: ${ms}`);
  return new Date(ms).toISOString();
}

/** A quoted-string (§4.2): no double quote, CR or LF inside. */
export function formatQuotedString(text: string): string {
  if (/["\r\n]/.test(text)) throw new RangeError(`cannot quote ${JSON.stringify(text)}`);
  return `"${text}"`;
}

/** A URI line (§4.1): one line, not empty, not mistaken for a tag or comment. */
export function formatUriLine(uri: string): string {
  if (uri.trim() === '' || uri.startsWith('#') || /[\r\n]/.test(uri)) throw new RangeError(`not a URI line: ${JSON.stringify(uri)}`);
  return uri;
}

/** Parsed structures carry no `undefined` keys, so they compare equal to hand-written ones. */
export function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }
  return value;
}
