/**
 * A small seeded PRNG for fuzz tests (mulberry32: 32-bit state, good enough to spread test
 * cases, not for cryptography). The same seed gives the same cases on every machine, so a
 * failure is reproduced by running the test again with `ONAIR_FUZZ_SEED=<seed>`.
 */

export class SeededRandom {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let mixed = this.state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `probability`. */
  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)];
  }

  /** Picks by weight: `[[3, 'a'], [1, 'b']]` gives 'a' three times as often as 'b'. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [weight]) => sum + weight, 0);
    let roll = this.next() * total;
    for (const [weight, value] of choices) {
      roll -= weight;
      if (roll < 0) return value;
    }
    return choices[choices.length - 1][1];
  }

  bytes(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let index = 0; index < length; index++) bytes[index] = Math.floor(this.next() * 256);
    return bytes;
  }

  /** `length` characters drawn from `alphabet`. */
  text(length: number, alphabet: string): string {
    let text = '';
    for (let index = 0; index < length; index++) text += alphabet[Math.floor(this.next() * alphabet.length)];
    return text;
  }
}

/**
 * The seed of a fuzz run: `ONAIR_FUZZ_SEED` when set (decimal or 0x hex), else the test's
 * fixed default, so a plain run is deterministic and any run can be replayed.
 */
export function fuzzSeed(defaultSeed: number): number {
  const text = process.env.ONAIR_FUZZ_SEED;
  if (text === undefined || text.trim() === '') return defaultSeed >>> 0;
  const seed = Number(text.trim());
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`ONAIR_FUZZ_SEED must be a non-negative integer, got ${text}`);
  return seed >>> 0;
}
