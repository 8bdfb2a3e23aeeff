/**
 * Composition of the roles: `start` (ingest + origin in one process), `ingest`
 * (packager only) and `origin` (HTTP only). Start order: preflight (ports), store,
 * origin, ingest; if any step fails, what already started is stopped again, so
 * nothing half-starts. `close()` stops in reverse order and ends every FFmpeg child.
 * Recordings (src/recording): the roles that run ingest record and run the stitch jobs;
 * the origin serves what is recorded under /recordings/.
 * Every role runs an admin listener (`admin.host`/`admin.port`, loopback by default) for
 * what operators use: GET /metrics, the control API under /api, and, with an origin,
 * GET /listeners.json and POST /ingest/access-log. The origin port carries only what
 * listeners need. Where it binds when `admin.port` is unset: preflight.ts, adminAddress.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { controlApi, type ControlApiOptions, type ReloadResult } from './api/control-api.js';
import type { OnairConfig } from './config/config-schema.js';
import { loadConfigFile } from './config/load-config.js';
import { OnairError } from './errors.js';
import { originErrorHandler, sendError } from './http/error-replies.js';
import type { startEncoder } from './ffmpeg/live-encoder.js';
import { SegmentSchedule } from './hls/segment-schedule.js';
import { DEFAULT_KEY_ROTATION_SEGMENTS } from './hls/segment-encryption.js';
import { instrumentStore } from './metrics/instrumented-store.js';
import { metricsPlugin, type MetricsExposition } from './metrics/metrics-plugin.js';
import { OnairMetrics } from './metrics/onair-metrics.js';
import type { ListenersControl } from './origin/listeners-plugin.js';
import type { OriginChannel } from './origin/origin-plugin.js';
import { buildOrigin } from './origin/origin-server.js';
import { playbackAuthOptionsOf, playbackChannelsOf } from './origin/playback-auth.js';
import { applyHttp1Timeouts, CertificateReloader, destroyHttp2SessionsOnClose, readTlsPair, tlsServerOptions, type TlsListenerOptions } from './origin/tls-listener.js';
import { mountedRenditions, type MountDescription } from './origin/progressive/mounts-plugin.js';
import { IngestService } from './pipeline/ingest-service.js';
import { adminAddress, checkFfmpegInstalled, checkPortsFree, type Role } from './preflight.js';
import { RecordingCatalog } from './recording/recording-catalog.js';
import { RecordingFiles } from './recording/recording-files.js';
import { recordingJobsFor, type RecordingJobs } from './recording/recording-jobs.js';
import { RecordingRetention } from './recording/recording-retention.js';
import { s3StorageFor } from './recording/s3-storage.js';
import { createStore } from './store/create-store.js';
import type { Store } from './store/store.js';

/** An idle admin connection or HTTP/2 session (a scraper between scrapes) closes after Fastify's keep-alive timeout. */
const ADMIN_TIMEOUTS = { keepAliveTimeoutMs: 72_000, idleTimeoutMs: 72_000 };

/** How often recordings retention runs besides after each finished job. */
const RETENTION_INTERVAL_MS = 5 * 60_000;

export interface RunningOnair {
  readonly store: Store;
  readonly ingest?: IngestService;
  readonly origin?: FastifyInstance;
  readonly metrics: OnairMetrics;
  /** Base URL of the admin listener, e.g. `http://127.0.0.1:8081`. */
  readonly adminUrl: string;
  /** Where this process serves /metrics (on the admin listener), e.g. `http://127.0.0.1:8081/metrics`. */
  readonly metricsUrl: string;
  /** Base URL of the origin, e.g. `http://127.0.0.1:8080`. */
  readonly originUrl?: string;
  /** Base URL under which the control API answers at `/api` (the admin listener, or `api.port`); none when it is off. */
  readonly apiUrl?: string;
  /** Re-reads the config file and applies its channel changes (also on SIGHUP and POST /api/reload). */
  reload(): Promise<ReloadResult>;
  /** Re-reads the TLS certificates and keys of `origin.tls` and `admin.tls` (SIGHUP); a bad pair is logged and the old one kept. */
  reloadCertificates(): Promise<void>;
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
  /**
   * A worker of `onair origin --workers` (src/onair-cluster.ts): no port preflight and no admin
   * listener of its own (the primary's, at `adminUrl`, serves every worker's metrics summed).
   */
  clusterWorker?: { id: number; adminUrl: string };
}

export async function startOnair(options: StartOptions): Promise<RunningOnair> {
  const { role, logger } = options;
  let config = options.config;
  checkFfmpegInstalled(role);
  // Certificates first: a missing or unreadable file is a config error naming its key.
  const originTls = role !== 'ingest' ? await tlsListener(config.origin.tls, 'origin.tls') : undefined;
  const adminTls = await tlsListener(config.admin.tls, 'admin.tls');
  const apiTls = await tlsListener(config.api.tls, 'api.tls');
  const certificateReloaders: CertificateReloader[] = [];
  // A worker shares the port the primary checked (and holds).
  if (!options.clusterWorker) await checkPortsFree(config, role);
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
  if (options.clusterWorker) metrics.answerClusterPrimary();
  // Every role reads and writes through this: store latency and errors become metrics.
  const measuredStore = instrumentStore(store, (operation, seconds, failed) => metrics.observeStoreCall(operation, seconds, failed));
  let origin: FastifyInstance | undefined;
  let ingest: IngestService | undefined;
  let recordingJobs: RecordingJobs | undefined;
  const recordingObjects = s3StorageFor(config);
  const recordings = new RecordingCatalog({ store: measuredStore, files: new RecordingFiles(config.recordings.dir), ...(recordingObjects ? { objects: recordingObjects } : {}) });
  if (recordingObjects) stops.push(async () => recordingObjects.close());
  // A Set built once per config (the signed-access hook reads it on every request).
  let signedChannels = signedChannelIds(config);
  // The channels POST /auth/playback grants from (entitlements), rebuilt on reload like the Set above.
  let playbackChannels = playbackChannelsOf(config);
  let encryptedChannels = encryptedChannelIds(config);
  let cbcsChannels = cbcsChannelRotations(config);

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
      origin?.onairMounts.setMounts(progressiveMounts(candidate));
      signedChannels = signedChannelIds(candidate);
      playbackChannels = playbackChannelsOf(candidate);
      encryptedChannels = encryptedChannelIds(candidate);
      cbcsChannels = cbcsChannelRotations(candidate);
      const result = ingest ? await ingest.applyChannels(candidate) : diffChannelIds(previous, candidate);
      logger.info(result, 'config reloaded');
      return result;
    });
    reloading = next.catch(() => undefined);
    return next;
  };
  const apiOptions: ControlApiOptions = {
    tokens: config.api.tokens,
    store: measuredStore,
    channels: () => config.channels,
    ingest: () => ingest,
    listeners: () => origin?.onairListeners,
    reload: options.configPath ? reload : undefined,
    requestsPerMinute: config.origin.limits.apiRequestsPerMinute,
  };
  /** The API is on when tokens are configured: on its own port (`api.port`), else on the admin listener. */
  const apiEnabled = config.api.tokens.length > 0;

  try {
    if (ownsStore) await store.start();
    let originUrl: string | undefined;
    if (role !== 'ingest') {
      origin = await buildOrigin({
        store: measuredStore,
        logger: logger.child({ component: 'origin' }),
        channels: originChannels(config),
        targetDurationSeconds: targetDurationOf(config),
        signing: { key: config.signing.key, signedChannels: () => signedChannels, keyTokenSeconds: config.signing.keyTokenSeconds },
        encryptedChannels: () => encryptedChannels,
        cbcsChannels: () => cbcsChannels,
        listenerIngestTokens: config.listeners.ingestTokens,
        recordings,
        trustedProxies: config.origin.trustedProxies,
        limits: config.origin.limits,
        icecastAdmin: config.origin.icecastAdmin ? { credentials: config.origin.icecastAdmin, store: measuredStore } : undefined,
        progressive: { store: measuredStore, mounts: progressiveMounts(config), ...config.origin.progressive },
        playbackAuth: await playbackAuthOptionsOf(config, () => playbackChannels),
        tls: originTls,
      });
      if (originTls) certificateReloaders.push(new CertificateReloader(origin.server as unknown as TlsServer, originTls, logger.child({ component: 'origin' })));
      stops.push(() => origin!.close());
      await origin.register(metricsPlugin, { metrics, serveMetrics: false, countRequests: true });
      metrics.watchOrigin(origin.onairOrigin);
      metrics.watchListeners(origin.onairListeners);
      metrics.watchMounts(origin.onairMounts);
      if (options.clusterWorker) {
        // Which worker answered (docs/architecture.md, "The origin on every core"); raw Node, no Fastify hook per request.
        const workerId = String(options.clusterWorker.id);
        origin.server.prependListener('request', (_request, response) => response.setHeader('onair-worker', workerId));
      }
      originUrl = await origin.listen({ host: config.origin.host, port: config.origin.port });
      logger.info({ url: originUrl }, 'origin listening');
    }
    // Bound before the ingest starts, so the channel status the leader stores names it.
    let adminUrl = options.clusterWorker?.adminUrl ?? '';
    if (!options.clusterWorker) {
      const admin = await buildAdmin({
        metrics,
        api: apiEnabled && config.api.port === undefined ? apiOptions : undefined,
        listeners: origin?.onairListeners,
        logger: logger.child({ component: 'admin' }),
        tls: adminTls,
      });
      stops.push(() => admin.close());
      if (adminTls) certificateReloaders.push(new CertificateReloader(admin.server as unknown as TlsServer, adminTls, logger.child({ component: 'admin' })));
      adminUrl = await listenAdmin(admin, adminAddress(config, role), logger);
    }
    if (role !== 'origin') {
      // Jobs and retention act on the channels this process leads, fenced by its lease.
      const leaseOf = (channel: string): string | undefined => ingest?.channels.get(channel)?.leadership.token;
      const retention = new RecordingRetention({
        catalog: recordings,
        limitsOf: (id) => config.channels.find((channel) => channel.id === id)?.recordRetention ?? config.recordings.retention,
        leads: (channel) => leaseOf(channel) !== undefined,
        logger,
      });
      retention.start(() => config.channels.map((channel) => channel.id), RETENTION_INTERVAL_MS);
      stops.push(async () => retention.close());
      recordingJobs = recordingJobsFor(config, recordings, measuredStore, logger, { fence: leaseOf, retention });
      metrics.watchRecordings(recordingJobs, retention);
      ingest = new IngestService({ config, store: measuredStore, logger, startEncoder: options.startEncoder, recordings: { catalog: recordings, jobs: recordingJobs, nowPlaying: measuredStore }, adminUrl });
      stops.push(() => ingest!.close());
      // Stopped before the ingest: a session the shutdown ends is stitched at the next start
      // (or by the standby taking over), not half-stitched now.
      stops.push(() => recordingJobs!.close());
      metrics.watchIngest(ingest);
      await ingest.start();
      logger.info({ channels: config.channels.map((channel) => channel.id) }, 'ingest started');
    }
    let apiUrl = apiEnabled ? adminUrl : undefined;
    if (apiEnabled && config.api.port !== undefined && !options.clusterWorker) {
      const api = await listenApi(config, apiOptions, apiTls, logger);
      stops.push(() => api.server.close());
      if (api.certificates) certificateReloaders.push(api.certificates);
      apiUrl = api.url;
    }
    const reloadCertificates = async (): Promise<void> => {
      await Promise.all(certificateReloaders.map((reloader) => reloader.reload()));
    };
    return { store, ingest, origin, originUrl, metrics, adminUrl, metricsUrl: `${adminUrl}/metrics`, apiUrl, reload, reloadCertificates, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The control API on its own port (`api.port`), HTTPS with `api.tls` under the admin
 * listener's timeouts (docs/architecture.md, "HTTPS listeners"); its certificates' reloader, if any.
 */
export async function listenApi(
  config: OnairConfig,
  api: ControlApiOptions,
  tls: TlsListenerOptions | undefined,
  logger: Logger,
): Promise<{ server: FastifyInstance; url: string; certificates?: CertificateReloader }> {
  const server = Fastify({ logger: false, ...(tls ? tlsServerOptions(tls, ADMIN_TIMEOUTS) : {}) }) as unknown as FastifyInstance;
  applyHttp1Timeouts(server.server, tls, ADMIN_TIMEOUTS);
  destroyHttp2SessionsOnClose(server, tls);
  try {
    await server.register(controlApi, { ...api, prefix: '/api' });
    const url = await server.listen({ host: config.api.host, port: config.api.port });
    logger.info({ url: `${url}/api` }, 'control API listening');
    const certificates = tls ? new CertificateReloader(server.server as unknown as TlsServer, tls, logger.child({ component: 'api' })) : undefined;
    return { server, url, certificates };
  } catch (error) {
    await server.close().catch(() => undefined);
    throw error;
  }
}

/** The admin listener: /metrics, the control API (when on and not on `api.port`), and the listener counts' routes of an origin. */
export async function buildAdmin(options: {
  metrics: OnairMetrics;
  api?: ControlApiOptions;
  listeners?: ListenersControl;
  logger: Logger;
  tls?: TlsListenerOptions;
  /** What GET /metrics serves instead of `metrics` (the primary of `--workers`: every worker's, summed). */
  exposition?: MetricsExposition;
}): Promise<FastifyInstance> {
  const admin = Fastify({
    loggerInstance: options.logger,
    // Prometheus scrapes every few seconds: no log line per request.
    logController: new LogController({ disableRequestLogging: true }),
    // Keep-alive scrapers must not hold up a shutdown.
    forceCloseConnections: true,
    return503OnClosing: true,
    // HTTPS (docs/architecture.md, "HTTPS listeners"): Fastify's default timeouts otherwise.
    ...(options.tls ? tlsServerOptions(options.tls, ADMIN_TIMEOUTS) : {}),
  }) as unknown as FastifyInstance;
  applyHttp1Timeouts(admin.server, options.tls, ADMIN_TIMEOUTS);
  destroyHttp2SessionsOnClose(admin, options.tls);
  try {
    admin.setErrorHandler(originErrorHandler);
    admin.setNotFoundHandler((request, reply) => sendError(reply, 404, 'no such resource'));
    await admin.register(metricsPlugin, { metrics: options.metrics, serveMetrics: true, countRequests: false, exposition: options.exposition });
    if (options.api) await admin.register(controlApi, { ...options.api, prefix: '/api' });
    if (options.listeners) await admin.register(options.listeners.adminRoutes);
  } catch (error) {
    await admin.close().catch(() => undefined);
    throw error;
  }
  return admin;
}

/**
 * Binds the admin listener on the first of `address.ports` that is free (one port: that one,
 * checked free by the preflight) and logs where, so an operator knows what to scrape.
 */
export async function listenAdmin(admin: FastifyInstance, address: ReturnType<typeof adminAddress>, logger: Logger): Promise<string> {
  const { host, ports, where } = address;
  for (const [index, port] of ports.entries()) {
    try {
      const url = await admin.listen({ host, port });
      if (index === 0) logger.info({ url }, 'admin listening');
      else logger.warn({ url, taken: ports.slice(0, index) }, `admin listening on another port: the first ones were taken (set ${where} to choose)`);
      return url;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || index === ports.length - 1) {
        throw new OnairError('ONAIR_PORT_IN_USE', `${host}:${port} is already in use (or cannot be bound)`, { where, cause: error });
      }
    }
  }
  throw new OnairError('ONAIR_PORT_IN_USE', `no port to bind on ${host}`, { where });
}

/** The TLS of a listener with its pair read now, or none when the listener is plain HTTP. */
export async function tlsListener(settings: OnairConfig['origin']['tls'], keyPath: string): Promise<TlsListenerOptions | undefined> {
  return settings ? { settings, keyPath, pair: await readTlsPair(settings, keyPath) } : undefined;
}

function signedChannelIds(config: OnairConfig): Set<string> {
  return new Set(config.channels.filter((channel) => channel.access === 'signed').map((channel) => channel.id));
}

/** Channels with content encryption (docs/architecture.md, "Content encryption"): the origin serves their keys. */
function encryptedChannelIds(config: OnairConfig): Set<string> {
  return new Set(config.channels.filter((channel) => channel.encryption !== undefined).map((channel) => channel.id));
}

/** The cbcs channels' key rotation, for their ClearKey license route (docs/architecture.md, "ClearKey playlists and licenses"). */
function cbcsChannelRotations(config: OnairConfig): Map<string, number> {
  const cbcs = config.channels.filter((channel) => channel.encryption === 'cbcs');
  return new Map(cbcs.map((channel) => [channel.id, channel.keyRotationSegments ?? DEFAULT_KEY_ROTATION_SEGMENTS]));
}

export function originChannels(config: OnairConfig): OriginChannel[] {
  return config.channels.map((channel) => ({ id: channel.id, renditions: channel.renditions.map((rendition) => rendition.id) }));
}

/** Every AAC and MP3 rendition as an Icecast-style mount (src/origin/progressive/): MP3 renditions as .mp3, AAC as .aac. */
function progressiveMounts(config: OnairConfig): MountDescription[] {
  return config.channels.flatMap((channel) =>
    mountedRenditions(channel).map((rendition) => ({
      channel: channel.id,
      rendition: rendition.id,
      codec: (rendition as { codec?: string }).codec === 'mp3' ? ('mp3' as const) : ('aac' as const),
      bitrate: rendition.bitrate,
      sampleRate: channel.sampleRate,
      audioChannels: rendition.audioChannels ?? channel.audioChannels,
      icy: channel.icy,
      // Encrypted channels' mounts decrypt (docs/architecture.md, "Recordings and mounts of encrypted channels").
      ...(channel.encryption ? { encryption: { scheme: channel.encryption, rotationSegments: channel.keyRotationSegments } } : {}),
    })),
  );
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
