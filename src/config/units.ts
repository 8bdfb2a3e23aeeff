/**
 * Parsers for the human units used in config files: bitrates (`96k`, `96000`, `1.5M`),
 * durations (`4`, `4s`, `500ms`, `30d`) and sizes (`500M`, `20G`). Each returns undefined
 * when the text is not one.
 */

const BITRATE = /^(\d+(?:\.\d+)?)\s*([kKmM]?)(?:bps|b\/s)?$/;
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/;
const SIZE = /^(\d+(?:\.\d+)?)\s*([kKMGT]?)(?:i?B)?$/;

/** Bits per second, or undefined. */
export function parseBitrate(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.round(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const match = BITRATE.exec(value.trim());
  if (!match) return undefined;
  const multiplier = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6 }[match[2] ?? ''] ?? 1;
  const bits = Math.round(Number(match[1]) * multiplier);
  return bits > 0 ? bits : undefined;
}

/** Seconds, or undefined. A bare number means seconds. */
export function parseDurationSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = DURATION.exec(value.trim());
  if (!match) return undefined;
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[match[2] ?? 's'] ?? 1;
  return Number(match[1]) * scale;
}

/** Bytes, or undefined: a bare number is bytes; k, M, G, T are powers of 1024 (`20G`, `500MB`, `1.5TiB`). */
export function parseByteSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const match = SIZE.exec(value.trim());
  if (!match) return undefined;
  const power = ['', 'k', 'M', 'G', 'T'].indexOf(match[2] === 'K' ? 'k' : (match[2] ?? ''));
  return Math.round(Number(match[1]) * 1024 ** power);
}

/** `96000` → `96k`, for printing resolved configs and logs. */
export function formatBitrate(bits: number): string {
  return bits % 1000 === 0 ? `${bits / 1000}k` : String(bits);
}
