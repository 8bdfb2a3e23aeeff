/**
 * Composition of the roles: `start` (ingest + origin in one process), `ingest`
 * (packager only) and `origin` (HTTP only). Start order: preflight (ports), store,
 * origin, ingest; if any step fails, what already started is stopped again, so
 * nothing half-starts. `close()` stops in reverse order and ends every FFmpeg child.
 * Recordings (src/recording): the roles that run ingest record and run the stitch jobs;
 * the origin serves what is recorded under /recordings/.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { controlApi, type ReloadResult } from './api/control-api.js';
import type { OnairConfig } from './config/config-schema.js';
import { loadConfigFile } from './config/load-config.js';
import { OnairError } from './errors.js';
import type { startEncoder } from './ffmpeg/live-encoder.js';
import { SegmentSchedule } from './hls/segment-schedule.js';
import { instrumentStore } from './metrics/instrumented-store.js';
import { metricsPlugin } from './metrics/metrics-plugin.js';
import { OnairMetrics } from './metrics/onair-metrics.js';
import type { OriginChannel } from './origin/origin-plugin.js';
import { buildOrigin } from './origin/origin-server.js';
import { IngestService } from './pipeline/ingest-service.js';
import { checkFfmpegInstalled, checkPortsFree, type Role } from './preflight.js';
import { RecordingCatalog } from './recording/recording-catalog.js';
import { RecordingFiles } from './recording/recording-files.js';
import { recordingJobsFor, type RecordingJobs } from './recording/recording-jobs.js';
import { createStore } from './store/create-store.js';
import type { Store } from './store/store.js';

export interface RunningOnair {
  readonly store: Store;
  readonly ingest?: IngestService;
  readonly origin?: FastifyInstance;
  readonly metrics: OnairMetrics;
  /** Where an ingest-only process serves /metrics, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly metricsUrl?: string;
  /** Base URL of the origin, e.g. `http://127.0.0.1:8080`. */
  readonly originUrl?: string;
  /** Base URL of the control API when it listens on its own port (`api.port`). */
  readonly apiUrl?: string;
  /** Re-reads the config file and applies its channel changes (also on SIGHUP and POST /api/reload). */
  reload(): Promise<ReloadResult>;
  close(): Promise<void>;
}

export interface StartOptions {
  config: OnairConfig;
  role: Role;
  logger: Logger;
  /** The file `config` came from: `reload()` reads it again. */
  configPath?: string;
  /** An already-built store (tests share one between two runtimes). */
  store?: Store;
  startEncoder?: typeof startEncoder;
}

export async function startOnair(options: StartOptions): Promise<RunningOnair> {
  const { role, logger } = options;
  let config = options.config;
  checkFfmpegInstalled(role);
  await checkPortsFree(config, role);
  const store = options.store ?? createStore(config.store, logger, { allowEvictingPolicy: config.redis.allowEvictingPolicy });
  const ownsStore = options.store === undefined;
  const stops: (() => Promise<void>)[] = [];
  if (ownsStore) stops.push(() => store.close());
  /** Reloads run one at a time; close() waits for the one under way. */
  let reloading = Promise.resolve<unknown>(undefined);
  const close = async (): Promise<void> => {
    await reloading;
    for (const stop of stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        logger.warn({ err: error }, 'error while stopping');
      }
    }
  };
  const metrics = new OnairMetrics();
  // Every role reads and writes through this: store latency and errors become metrics.
  const measuredStore = instrumentStore(store, (operation, seconds, failed) => metrics.observeStoreCall(operation, seconds, failed));
  let origin: FastifyInstance | undefined;
  let ingest: IngestService | undefined;
  let recordingJobs: RecordingJobs | undefined;
  const recordings = new RecordingCatalog({ store: measuredStore, files: new RecordingFiles(config.recordings.dir) });
  // A Set built once per config (the signed-access hook reads it on every request).
  let signedChannels = signedChannelIds(config);

  const reload = (): Promise<ReloadResult> => {
    const next = reloading.then(async () => {
      if (!options.configPath) throw new OnairError('ONAIR_CONFIG_UNREADABLE', 'this process was not started from a config file');
      const candidate = await loadConfigFile(options.configPath);
      const needRestart = keysNeedingRestart(config, candidate);
      if (needRestart.length > 0) {
        throw new OnairError('ONAIR_RESTART_REQUIRED', `only channels change without a restart; these changed: ${needRestart.join(', ')}`);
      }
      const previous = config;
      // What the operator asked for from now on; a channel that fails to start is retried by the next reload.
      config = candidate;
      origin?.onairOrigin.setChannels(originChannels(candidate));
      signedChannels = signedChannelIds(candidate);
      const result = ingest ? await ingest.applyChannels(candidate) : diffChannelIds(previous, candidate);
      logger.info(result, 'config reloaded');
      return result;
    });
    reloading = next.catch(() => undefined);
    return next;
  };
  const apiOptions = {
    tokens: config.api.tokens,
    store: measuredStore,
    channels: () => config.channels,
    ingest: () => ingest,
    listeners: () => origin?.onairListeners,
    reload: options.configPath ? reload : undefined,
  };
  /** The API is on when tokens are configured: on its own port, or on `server`. */
  const mountApi = async (server: FastifyInstance): Promise<void> => {
    if (config.api.tokens.length > 0 && config.api.port === undefined) await server.register(controlApi, { ...apiOptions, prefix: '/api' });
  };

  try {
    if (ownsStore) await store.start();
    let originUrl: string | undefined;
    if (role !== 'ingest') {
      origin = await buildOrigin({
        store: measuredStore,
        logger: logger.child({ component: 'origin' }),
        channels: originChannels(config),
        targetDurationSeconds: targetDurationOf(config),
        signing: { key: config.signing.key, signedChannels: () => signedChannels },
        listenerIngestTokens: config.listeners.ingestTokens,
        recordings,
      });
      stops.push(() => origin!.close());
      await origin.register(metricsPlugin, { metrics, countRequests: true });
      metrics.watchOrigin(origin.onairOrigin);
      metrics.watchListeners(origin.onairListeners);
      await mountApi(origin);
      originUrl = await origin.listen({ host: config.origin.host, port: config.origin.port });
      logger.info({ url: originUrl }, 'origin listening');
    }
    let metricsUrl: string | undefined;
    if (role !== 'origin') {
      recordingJobs = recordingJobsFor(config, recordings, measuredStore, logger);
      ingest = new IngestService({ config, store: measuredStore, logger, startEncoder: options.startEncoder, recordings: { catalog: recordings, jobs: recordingJobs } });
      stops.push(() => ingest!.close());
      // Stopped before the ingest: a session the shutdown ends is stitched at the next start
      // (or by the standby taking over), not half-stitched now.
      stops.push(() => recordingJobs!.close());
      metrics.watchIngest(ingest);
      if (role === 'ingest') {
        // Without an origin in this process, /metrics (and the API) get a small server of their own.
        const server = Fastify({ logger: false });
        await server.register(metricsPlugin, { metrics, countRequests: false });
        await mountApi(server);
        stops.push(() => server.close());
        metricsUrl = `${await server.listen({ host: config.metrics.host, port: config.metrics.port })}/metrics`;
        logger.info({ url: metricsUrl }, 'metrics listening');
      }
      await ingest.start();
      logger.info({ channels: config.channels.map((channel) => channel.id) }, 'ingest started');
    }
    let apiUrl: string | undefined;
    if (config.api.tokens.length > 0 && config.api.port !== undefined) {
      const server = Fastify({ logger: false });
      await server.register(controlApi, { ...apiOptions, prefix: '/api' });
      stops.push(() => server.close());
      apiUrl = await server.listen({ host: config.api.host, port: config.api.port });
      logger.info({ url: `${apiUrl}/api` }, 'control API listening');
    }
    return { store, ingest, origin, originUrl, metrics, metricsUrl, apiUrl, reload, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function signedChannelIds(config: OnairConfig): Set<string> {
  return new Set(config.channels.filter((channel) => channel.access === 'signed').map((channel) => channel.id));
}

function originChannels(config: OnairConfig): OriginChannel[] {
  return config.channels.map((channel) => ({ id: channel.id, renditions: channel.renditions.map((rendition) => rendition.id) }));
}

/** Top-level keys other than `channels` that differ: only a restart applies them. */
function keysNeedingRestart(current: OnairConfig, next: OnairConfig): string[] {
  const keys = (Object.keys(current) as (keyof OnairConfig)[]).filter((key) => key !== 'channels');
  const changed: string[] = keys.filter((key) => JSON.stringify(current[key]) !== JSON.stringify(next[key]));
  // Every channel's target duration is the origin's Cache-Control: it must not move either.
  if (targetDurationOf(current) !== targetDurationOf(next)) changed.push('the target duration');
  return changed;
}

function diffChannelIds(current: OnairConfig, next: OnairConfig): ReloadResult {
  const before = new Map(current.channels.map((channel) => [channel.id, JSON.stringify(channel)]));
  const after = new Map(next.channels.map((channel) => [channel.id, JSON.stringify(channel)]));
  return {
    added: [...after.keys()].filter((id) => !before.has(id)),
    removed: [...before.keys()].filter((id) => !after.has(id)),
    restarted: [...after.keys()].filter((id) => before.has(id) && before.get(id) !== after.get(id)),
  };
}

/** The target duration players see: the same for every channel and rendition. */
export function targetDurationOf(config: OnairConfig): number {
  return Math.max(...config.channels.map((channel) => new SegmentSchedule(config.hls.segmentSeconds, channel.sampleRate).targetDuration()));
}
