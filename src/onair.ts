/**
 * Composition of the roles: `start` (ingest + origin in one process), `ingest`
 * (packager only) and `origin` (HTTP only). Start order: preflight (ports), store,
 * origin, ingest; if any step fails, what already started is stopped again, so
 * nothing half-starts. `close()` stops in reverse order and ends every FFmpeg child.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { OnairConfig } from './config/config-schema.js';
import { SegmentSchedule } from './hls/segment-schedule.js';
import type { startEncoder } from './ingest/ffmpeg-adapter.js';
import { IngestService } from './ingest/ingest-service.js';
import { instrumentStore } from './metrics/instrumented-store.js';
import { metricsPlugin } from './metrics/metrics-plugin.js';
import { OnairMetrics } from './metrics/onair-metrics.js';
import { buildOrigin } from './origin/origin-server.js';
import { checkPortsFree, type Role } from './preflight.js';
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
  close(): Promise<void>;
}

export interface StartOptions {
  config: OnairConfig;
  role: Role;
  logger: Logger;
  /** An already-built store (tests share one between two runtimes). */
  store?: Store;
  startEncoder?: typeof startEncoder;
}

export async function startOnair(options: StartOptions): Promise<RunningOnair> {
  const { config, role, logger } = options;
  await checkPortsFree(config, role);
  const store = options.store ?? createStore(config.store, logger);
  const ownsStore = options.store === undefined;
  const stops: (() => Promise<void>)[] = [];
  if (ownsStore) stops.push(() => store.close());
  const metrics = new OnairMetrics();
  // Every role reads and writes through this: store latency and errors become metrics.
  const measuredStore = instrumentStore(store, (operation, seconds, failed) => metrics.observeStoreCall(operation, seconds, failed));
  const close = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        logger.warn({ err: error }, 'error while stopping');
      }
    }
  };
  try {
    if (ownsStore) await store.start();
    let origin: FastifyInstance | undefined;
    let originUrl: string | undefined;
    if (role !== 'ingest') {
      origin = await buildOrigin({
        store: measuredStore,
        logger: logger.child({ component: 'origin' }),
        channels: config.channels.map((channel) => ({ id: channel.id, renditions: channel.renditions.map((r) => r.id) })),
        targetDurationSeconds: targetDurationOf(config),
      });
      stops.push(() => origin!.close());
      await origin.register(metricsPlugin, { metrics, countRequests: true });
      metrics.watchOrigin(origin.onairOrigin);
      const address = await origin.listen({ host: config.origin.host, port: config.origin.port });
      originUrl = address;
      logger.info({ url: address }, 'origin listening');
    }
    let ingest: IngestService | undefined;
    let metricsUrl: string | undefined;
    if (role !== 'origin') {
      ingest = new IngestService({ config, store: measuredStore, logger, startEncoder: options.startEncoder });
      stops.push(() => ingest!.close());
      metrics.watchIngest(ingest);
      if (role === 'ingest') {
        // Without an origin in this process, /metrics gets a small server of its own.
        const server = Fastify({ logger: false });
        await server.register(metricsPlugin, { metrics, countRequests: false });
        stops.push(() => server.close());
        metricsUrl = `${await server.listen({ host: config.metrics.host, port: config.metrics.port })}/metrics`;
        logger.info({ url: metricsUrl }, 'metrics listening');
      }
      await ingest.start();
      logger.info({ channels: config.channels.map((channel) => channel.id) }, 'ingest started');
    }
    return { store, ingest, origin, originUrl, metrics, metricsUrl, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The target duration players see: the same for every channel and rendition. */
export function targetDurationOf(config: OnairConfig): number {
  return Math.max(...config.channels.map((channel) => new SegmentSchedule(config.hls.segmentSeconds, channel.sampleRate).targetDuration()));
}
