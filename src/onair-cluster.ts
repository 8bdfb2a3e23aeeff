/**
 * The primary process of `onair origin --workers N|auto`
 * (docs/architecture.md, "The origin on every core"). It serves no listener itself: it checks the ports, forks the workers
 * (src/origin/origin-cluster.ts: each runs the whole origin, `startOnair` with
 * `clusterWorker`, on the shared origin port) and runs the one admin listener:
 *   GET /metrics              every worker's metrics summed (prom-client's AggregatorRegistry),
 *                             plus onair_origin_workers and onair_origin_worker_restarts_total;
 *   GET /listeners.json       the listener counts, read from the store as every origin does;
 *   POST /ingest/access-log   counted into the store the same way;
 *   /api                      the control API when tokens are set (or on `api.port`, HTTPS with api.tls; no reload: SIGHUP instead).
 * SIGHUP is passed to every worker (each reloads its config) and re-read here for the
 * listener counts' channels.
 */
import type { Server as TlsServer } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { ControlApiOptions } from './api/control-api.js';
import type { OnairConfig } from './config/config-schema.js';
import { loadConfigFile } from './config/load-config.js';
import { OnairError } from './errors.js';
import { OnairMetrics } from './metrics/onair-metrics.js';
import { listenersPlugin } from './origin/listeners-plugin.js';
import { OriginCluster } from './origin/origin-cluster.js';
import { adminAddress, checkPortsFree } from './preflight.js';
import { buildAdmin, listenAdmin, listenApi, originChannels, targetDurationOf, tlsListener } from './onair.js';
import { CertificateReloader } from './origin/tls-listener.js';
import { createStore } from './store/create-store.js';

/** The environment variable that tells a worker where the primary's admin listener is. */
export const CLUSTER_ADMIN_URL_ENV = 'ONAIR_CLUSTER_ADMIN_URL';

export interface RunningOriginCluster {
  readonly adminUrl: string;
  readonly cluster: OriginCluster;
  /** Passes SIGHUP to the workers and re-reads the config here. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

export async function startOriginCluster(options: { config: OnairConfig; configPath: string; logger: Logger; workers: number }): Promise<RunningOriginCluster> {
  const { logger, workers } = options;
  let config = options.config;
  await checkPortsFree(config, 'origin');
  const stops: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) {
      await stop().catch((error: unknown) => logger.warn({ err: error }, 'error while stopping'));
    }
  };
  try {
    const store = createStore(config.store, logger, { allowEvictingPolicy: config.redis.allowEvictingPolicy });
    stops.push(() => store.close());
    await store.start();
    // The listener counts' routes come from the listeners plugin, on an instance that serves nothing else.
    const counts: FastifyInstance = Fastify({ logger: false }) as unknown as FastifyInstance;
    stops.push(() => counts.close());
    // The listeners plugin registers after the origin plugin, whose media routes it counts: here there are none.
    await counts.register(fp(async () => undefined, { name: 'onair-origin' }));
    await counts.register(listenersPlugin, {
      store,
      progressive: true,
      targetDurationSeconds: targetDurationOf(config),
      channels: () => originChannels(config),
      ingestTokens: config.listeners.ingestTokens,
      serveAdminRoutes: false,
      sessionIdsPerClient: config.origin.limits.sessionIdsPerClient,
      ingestRequestsPerMinute: config.origin.limits.ingestRequestsPerMinute,
    });
    await counts.ready();

    const aggregator = new AggregatorRegistry();
    const own = new Registry();
    let cluster: OriginCluster | undefined;
    new Gauge({ name: 'onair_origin_workers', help: 'Origin worker processes running (onair origin --workers)', registers: [own], collect() { this.set(cluster?.workers().length ?? 0); } });
    new Counter({ name: 'onair_origin_worker_restarts_total', help: 'Origin workers replaced after they exited', registers: [own], collect() { this.reset(); this.inc(cluster?.restarts ?? 0); } });
    const api: ControlApiOptions | undefined =
      config.api.tokens.length > 0
        ? {
            tokens: config.api.tokens,
            store,
            channels: () => config.channels,
            ingest: () => undefined,
            listeners: () => counts.onairListeners,
            reload: () => Promise.reject(new OnairError('ONAIR_RELOAD_UNAVAILABLE', 'with --workers, send SIGHUP to the primary: it passes it to every worker')),
            requestsPerMinute: config.origin.limits.apiRequestsPerMinute,
          }
        : undefined;
    // The admin listener is the primary's: its HTTPS (admin.tls) is read and reloaded here; each worker reads origin.tls.
    const adminTls = await tlsListener(config.admin.tls, 'admin.tls');
    const apiTls = await tlsListener(config.api.tls, 'api.tls');
    const admin = await buildAdmin({
      tls: adminTls,
      metrics: new OnairMetrics(),
      listeners: counts.onairListeners,
      logger: logger.child({ component: 'admin' }),
      api: config.api.port === undefined ? api : undefined,
      exposition: {
        contentType: aggregator.contentType,
        metrics: async () => `${await aggregator.clusterMetrics()}${await own.metrics()}`,
      },
    });
    stops.push(() => admin.close());
    const adminCertificates = adminTls ? new CertificateReloader(admin.server as unknown as TlsServer, adminTls, logger.child({ component: 'admin' })) : undefined;
    const adminUrl = await listenAdmin(admin, adminAddress(config, 'origin'), logger);
    let apiCertificates: CertificateReloader | undefined;
    if (api && config.api.port !== undefined) {
      const listening = await listenApi(config, api, apiTls, logger);
      stops.push(() => listening.server.close());
      apiCertificates = listening.certificates;
    }

    cluster = new OriginCluster({ workers, logger: logger.child({ component: 'cluster' }), env: { [CLUSTER_ADMIN_URL_ENV]: adminUrl } });
    const running = cluster;
    stops.push(() => running.stop());
    await cluster.start();
    logger.info({ workers, port: config.origin.port }, 'origin workers listening');
    const reload = async (): Promise<void> => {
      for (const worker of running.workers()) worker.process.kill('SIGHUP');
      await adminCertificates?.reload();
      await apiCertificates?.reload();
      config = await loadConfigFile(options.configPath);
    };
    return { adminUrl, cluster, reload, close };
  } catch (error) {
    await close();
    throw error;
  }
}
