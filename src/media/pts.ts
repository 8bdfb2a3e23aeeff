/**
 * 90 kHz presentation timestamps (ISO/IEC 13818-1 §2.4.3.7, PTS field): 33-bit counters
 * that wrap at 2^33 ticks, about 26.5 hours. Everything here is exact integer math on
 * JavaScript numbers (all values stay below 2^53).
 *
 * The packager's own timeline (docs/architecture.md, "Timeline") is NOT wrapped: its ticks go
 * on counting past 2^33, so that what counts time without a wrap (the fMP4 tfdt, the DASH `t`)
 * follows a channel that runs for days. Containers with a 33-bit field (MPEG-TS, the packed
 * audio timestamp) wrap when they write; every comparison goes through `ptsDelta`.
 */

export const PTS_CLOCK_HZ = 90_000;
export const PTS_WRAP = 2 ** 33;
const HALF_WRAP = 2 ** 32;

/** Brings any integer tick count into [0, 2^33). */
export function wrapPts(ticks: number): number {
  const wrapped = ticks % PTS_WRAP;
  return wrapped < 0 ? wrapped + PTS_WRAP : wrapped;
}

/** `pts + ticks` on the 33-bit circle; `ticks` may be negative. */
export function ptsAdd(pts: number, ticks: number): number {
  return wrapPts(pts + ticks);
}

/**
 * Signed shortest distance from `from` to `to` across the wrap, in [-2^32, 2^32).
 * `ptsDelta(PTS_WRAP - 10, 5)` is 15.
 */
export function ptsDelta(from: number, to: number): number {
  const forward = wrapPts(to - from);
  return forward >= HALF_WRAP ? forward - PTS_WRAP : forward;
}

function greatestCommonDivisor(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** 90 kHz over `sampleRate`, reduced (48000 → 15/8, 44100 → 100/49). */
function tickRatio(sampleRate: number): { numerator: number; denominator: number } {
  const divisor = greatestCommonDivisor(PTS_CLOCK_HZ, sampleRate);
  return { numerator: PTS_CLOCK_HZ / divisor, denominator: sampleRate / divisor };
}

/**
 * round(ticks · sampleRate / 90000): a place on the unwrapped timeline in samples, exact for
 * the ticks of years of running (the reduced ratio keeps the product below 2^53 far longer
 * than `ticks * sampleRate` would: 24 days at 48 kHz).
 */
export function ticksToSamples(ticks: number, sampleRate: number): number {
  if (!Number.isSafeInteger(ticks) || ticks < 0 || !Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new RangeError(`ticksToSamples needs a tick count ≥ 0 and a rate, got ${ticks} ticks at ${sampleRate} Hz`);
  }
  const { numerator, denominator } = tickRatio(sampleRate);
  const product = ticks * denominator;
  if (!Number.isSafeInteger(product)) {
    // Half up, as Math.round: floor((2·ticks·denominator + numerator) / (2·numerator)).
    const twice = 2n * BigInt(ticks) * BigInt(denominator) + BigInt(numerator);
    return Number(twice / (2n * BigInt(numerator)));
  }
  return Math.round(product / numerator);
}

/**
 * floor(samples · 90000 / sampleRate), exact for every rate (44100 included). The ratio is
 * reduced first (48000 → 15/8, 44100 → 100/49) so the product stays far below 2^53.
 */
export function samplesToTicks(samples: number, sampleRate: number): number {
  if (!Number.isInteger(samples) || !Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new RangeError(`samplesToTicks needs integers, got ${samples} samples at ${sampleRate} Hz`);
  }
  const { numerator, denominator } = tickRatio(sampleRate);
  const product = samples * numerator;
  if (!Number.isSafeInteger(product)) {
    const exact = BigInt(samples) * BigInt(numerator);
    const big = BigInt(denominator);
    const quotient = exact / big - (exact < 0n && exact % big !== 0n ? 1n : 0n);
    return Number(quotient);
  }
  let quotient = Math.floor(product / denominator);
  // Division in floating point can land one off near integers: correct with the remainder.
  const remainder = product - quotient * denominator;
  if (remainder < 0) quotient -= 1;
  else if (remainder >= denominator) quotient += 1;
  return quotient;
}
