/**
 * Options of the origin plugin, checked once at registration. A bad option throws
 * OnairError ONAIR_CONFIG_INVALID naming the key path, e.g. `channels[1].renditions[0]`.
 */
import { systemClock, type Clock } from '../clock.js';
import { OnairError } from '../errors.js';
import { ID_PATTERN_SOURCE, parsePlaylistName } from '../hls/published-names.js';
import { DEFAULT_STORE_TIMEOUT_MS } from '../http/store-read.js';
import type { OriginStore } from '../store/store.js';

export interface OriginChannel {
  /** Lowercase `[a-z0-9-]`, 1–32 characters: the first path segment of every URL. */
  id: string;
  renditions: string[];
}

export interface OriginOptions {
  store: OriginStore;
  channels: OriginChannel[];
  /** EXT-X-TARGETDURATION of every channel, in whole seconds; drives Cache-Control. */
  targetDurationSeconds: number;
  /** Bound of the in-memory segment LRU; default 64 MiB, 0 disables it. */
  segmentCacheBytes?: number;
  /** Safety-net max age of a cached playlist if a store notification is lost; default 250 ms. */
  playlistCacheMaxAgeMs?: number;
  /** A store read slower than this answers 503; default 2000 ms. */
  storeTimeoutMs?: number;
  /** Hold timers, cache ages and store timeouts run on it; default the system clock (tests move a manual one). */
  clock?: Clock;
  /** LL-HLS requests held at once, in all and per client address (client-limits.ts); over either, 503 + Retry-After. */
  heldRequests?: number;
  heldRequestsPerClient?: number;
}

export interface ResolvedOriginOptions {
  store: OriginStore;
  channels: OriginChannel[];
  targetDurationSeconds: number;
  segmentCacheBytes: number;
  playlistCacheMaxAgeMs: number;
  storeTimeoutMs: number;
  clock: Clock;
  heldRequests: number;
  heldRequestsPerClient: number;
}

export { ID_PATTERN_SOURCE };
const ID_PATTERN = new RegExp(`^${ID_PATTERN_SOURCE}$`);
const STORE_METHODS = ['getPlaylist', 'getSegment', 'getState', 'subscribe'] as const satisfies readonly (keyof OriginStore)[];

export const DEFAULT_SEGMENT_CACHE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_PLAYLIST_CACHE_MAX_AGE_MS = 250;
export const DEFAULT_HELD_REQUESTS = 5000;
export const DEFAULT_HELD_REQUESTS_PER_CLIENT = 64;

export function resolveOriginOptions(options: unknown): ResolvedOriginOptions {
  if (!isRecord(options)) throw invalid('', 'expected an options object');
  const { store } = options;
  if (!isRecord(store) || STORE_METHODS.some((method) => typeof store[method] !== 'function')) {
    throw invalid('store', `expected a Store with ${STORE_METHODS.join(', ')}`);
  }
  return {
    store: store as unknown as OriginStore,
    channels: validateChannels(options.channels),
    targetDurationSeconds: integerOption(options, 'targetDurationSeconds', undefined, 1),
    segmentCacheBytes: integerOption(options, 'segmentCacheBytes', DEFAULT_SEGMENT_CACHE_BYTES, 0),
    playlistCacheMaxAgeMs: integerOption(options, 'playlistCacheMaxAgeMs', DEFAULT_PLAYLIST_CACHE_MAX_AGE_MS, 0),
    storeTimeoutMs: integerOption(options, 'storeTimeoutMs', DEFAULT_STORE_TIMEOUT_MS, 1),
    clock: clockOption(options.clock),
    heldRequests: integerOption(options, 'heldRequests', DEFAULT_HELD_REQUESTS, 1),
    heldRequestsPerClient: integerOption(options, 'heldRequestsPerClient', DEFAULT_HELD_REQUESTS_PER_CLIENT, 1),
  };
}

function clockOption(clock: unknown): Clock {
  if (clock === undefined) return systemClock;
  if (!isClock(clock)) throw invalid('clock', 'expected a Clock with now() and setTimeout()');
  return clock;
}

/** Whether a plugin's `clock` option is a Clock (the origin plugins check it at registration). */
export function isClock(value: unknown): value is Clock {
  return isRecord(value) && typeof value.now === 'function' && typeof value.setTimeout === 'function';
}

/** Validates a channel list (also used when the list changes at run time); returns a copy. */
export function validateChannels(channels: unknown): OriginChannel[] {
  if (!Array.isArray(channels)) throw invalid('channels', 'expected an array of { id, renditions }');
  const seen = new Set<string>();
  return channels.map((channel: unknown, index) => {
    const where = `channels[${index}]`;
    if (!isRecord(channel)) throw invalid(where, 'expected { id, renditions }');
    const id = validateId(channel.id, `${where}.id`);
    if (seen.has(id)) throw invalid(`${where}.id`, `duplicate channel id "${id}"`);
    seen.add(id);
    const { renditions } = channel;
    if (!Array.isArray(renditions) || renditions.length === 0) {
      throw invalid(`${where}.renditions`, 'expected a non-empty array of rendition ids');
    }
    const renditionIds = renditions.map((rendition: unknown, r) => validateId(rendition, `${where}.renditions[${r}]`));
    if (new Set(renditionIds).size !== renditionIds.length) {
      throw invalid(`${where}.renditions`, 'rendition ids must be unique');
    }
    return { id, renditions: renditionIds };
  });
}

function validateId(value: unknown, where: string): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw invalid(where, 'expected 1–32 characters of a-z, 0-9 and -');
  }
  return value;
}

function integerOption(options: Record<string, unknown>, key: string, fallback: number | undefined, minimum: number): number {
  const value = options[key];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw invalid(key, `expected an integer ≥ ${minimum}`);
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function invalid(where: string, message: string): OnairError {
  return new OnairError('ONAIR_CONFIG_INVALID', `origin options: ${message}`, where ? { where } : {});
}

/**
 * `fip_hifi.m3u8` and its DVR playlist `fip_hifi_dvr.m3u8` → `hifi`, for the channel's
 * renditions only (a rendition may itself be called `dvr`: `fip_dvr.m3u8`).
 */
export function renditionOfMediaPlaylist(renditions: ReadonlySet<string>, channel: string, file: string): string | undefined {
  const name = parsePlaylistName(file);
  if (name?.channel !== channel || (name.kind !== 'media' && name.kind !== 'dvr')) return undefined;
  return renditions.has(name.rendition) ? name.rendition : undefined;
}
