/**
 * What a load-generator worker of bench:listeners counts during one phase, in a form that
 * crosses postMessage (plain objects and typed arrays) and merges across workers. Latencies go
 * into log-scale histograms (2 % wide buckets from 0.05 ms), so p50/p99 cost no samples list.
 */

export const REQUEST_KINDS = ['master', 'playlist', 'segment'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

const SMALLEST_MS = 0.05;
const BUCKET_GROWTH = 1.02;
/** Buckets up to ~5 minutes, past the longest load timeout. */
const BUCKET_COUNT = Math.ceil(Math.log(300_000 / SMALLEST_MS) / Math.log(BUCKET_GROWTH)) + 1;

export function emptyLatencyCounts(): Uint32Array {
  return new Uint32Array(BUCKET_COUNT);
}

export function recordLatency(counts: Uint32Array, milliseconds: number): void {
  const index = milliseconds <= SMALLEST_MS ? 0 : Math.ceil(Math.log(milliseconds / SMALLEST_MS) / Math.log(BUCKET_GROWTH));
  counts[Math.min(index, BUCKET_COUNT - 1)]! += 1;
}

/** The upper bound of the bucket holding the p-th percentile (0–100), or NaN without samples. */
export function latencyPercentile(counts: Uint32Array, percentile: number): number {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((percentile / 100) * total));
  let seen = 0;
  for (let index = 0; index < counts.length; index++) {
    seen += counts[index]!;
    if (seen >= rank) return SMALLEST_MS * BUCKET_GROWTH ** index;
  }
  return Number.NaN;
}

export interface KindTally {
  /** Answers that completed inside the measurement window, their body bytes and latencies. */
  windowRequests: number;
  windowBytes: number;
  windowLatency: Uint32Array;
  /** Failed loads over the whole phase (ramp included), by cause: `HTTP 503`, `timeout`, `ECONNRESET`... */
  failures: Record<string, number>;
}

export interface LoadGeneratorHealth {
  /** Share of the measurement window the worker's event loop was busy (0–1). */
  loopUtilization: number;
  /** Event-loop delay in the window: how late timers and answers were handled. */
  lagP99Ms: number;
  lagMaxMs: number;
}

export interface PhaseTally {
  kinds: Record<RequestKind, KindTally>;
  listenersStarted: number;
  /** Listeners whose playback had started by the end of the phase. */
  listenersPlaying: number;
  /** Stalls, stalled time and resyncs over the whole phase (each listener from its start). */
  stalls: number;
  stalledMs: number;
  resyncs: number;
  /** From a listener's start to its playback starting. */
  startupLatency: Uint32Array;
  /** One entry per worker. */
  loadGenerators: LoadGeneratorHealth[];
}

export function emptyPhaseTally(): PhaseTally {
  const kinds = {} as Record<RequestKind, KindTally>;
  for (const kind of REQUEST_KINDS) {
    kinds[kind] = { windowRequests: 0, windowBytes: 0, windowLatency: emptyLatencyCounts(), failures: {} };
  }
  return {
    kinds,
    listenersStarted: 0,
    listenersPlaying: 0,
    stalls: 0,
    stalledMs: 0,
    resyncs: 0,
    startupLatency: emptyLatencyCounts(),
    loadGenerators: [],
  };
}

export function mergePhaseTallies(tallies: PhaseTally[]): PhaseTally {
  const merged = emptyPhaseTally();
  for (const tally of tallies) {
    for (const kind of REQUEST_KINDS) {
      const into = merged.kinds[kind];
      const from = tally.kinds[kind];
      into.windowRequests += from.windowRequests;
      into.windowBytes += from.windowBytes;
      addCounts(into.windowLatency, from.windowLatency);
      for (const [cause, count] of Object.entries(from.failures)) into.failures[cause] = (into.failures[cause] ?? 0) + count;
    }
    merged.listenersStarted += tally.listenersStarted;
    merged.listenersPlaying += tally.listenersPlaying;
    merged.stalls += tally.stalls;
    merged.stalledMs += tally.stalledMs;
    merged.resyncs += tally.resyncs;
    addCounts(merged.startupLatency, tally.startupLatency);
    merged.loadGenerators.push(...tally.loadGenerators);
  }
  return merged;
}

export function failureCount(tally: KindTally): number {
  return Object.values(tally.failures).reduce((sum, count) => sum + count, 0);
}

function addCounts(into: Uint32Array, from: Uint32Array): void {
  for (let index = 0; index < into.length; index++) into[index]! += from[index]!;
}
