/**
 * Builds the Fastify instance of `onair origin`: the origin plugin on an instance of its own,
 * then the web player page (player-plugin.ts) and, when given, the recorded sessions
 * (src/recording/recordings-plugin.ts), behind a load balancer or Varnish (trustProxy),
 * answering 503 while it closes. It carries only what listeners need: the admin routes
 * (/metrics, /api, /listeners.json, /ingest/access-log) live on the admin listener
 * (src/onair.ts), and here every path under /api and /ingest is a plain 404.
 *
 * Against hostile clients (`origin.trustedProxies`, `origin.limits`, README Config reference):
 * X-Forwarded-For is believed from the trusted proxies only (default loopback); connections
 * are capped per process (server.maxConnections) and per client address (client-limits.ts,
 * trusted proxies exempt); a request's head and body must arrive within requestTimeoutMs;
 * idle keep-alive connections close after keepAliveTimeoutMs, and a socket that moves no byte
 * for longer than that and the longest LL-HLS hold is closed (a slow reader included);
 * an overloaded origin answers 503 ONAIR_ORIGIN_BUSY while the event loop lags (sampled by
 * @fastify/under-pressure).
 * With `progressive`, the Icecast-style mounts and /status-json.xsl (src/origin/progressive/).
 * With `tls`, HTTPS and optionally HTTP/2 on the same bounds (tls-listener.ts).
 */
import underPressure from '@fastify/under-pressure';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ADMIN_PATH_PREFIXES, originProtectionDefaults, type OnairConfig } from '../config/config-schema.js';
import { OnairError } from '../errors.js';
import { DEFAULT_STORE_TIMEOUT_MS } from '../http/store-read.js';
import { JSON_CONTENT_TYPE, originFrameworkErrorHandler, sendError } from '../http/error-replies.js';
import { addressMatcher, ConnectionLimits } from './client-limits.js';
import { dashPlugin } from './dash-plugin.js';
import { channelOfMount, icecastAdmin, type IcecastAdminOptions } from './icecast-admin.js';
import { listenersPlugin } from './listeners-plugin.js';
import { corsHeaderPairs } from './cors-headers.js';
import { HotAnswers } from './hot-answers.js';
import { MAX_PARAM_LENGTH, ORIGIN_EXPOSED_HEADERS, originPlugin, PLAYLIST_CONTENT_TYPE } from './origin-plugin.js';
import { signedAccessPlugin, type SignedAccessOptions } from './signed-access.js';
import { applyHttp1Timeouts, destroyHttp2SessionsOnClose, tlsServerOptions, type ListenerTimeouts, type TlsListenerOptions } from './tls-listener.js';
import type { OriginOptions } from './origin-plugin.js';
import { playerPlugin } from './player-plugin.js';
import { PLAYBACK_AUTH_PATH, playbackAuthPlugin, type PlaybackAuthOptions } from './playback-auth.js';
import { mountsPlugin, type ProgressiveOptions, type ProgressiveStore } from './progressive/mounts-plugin.js';
import type { RecordingCatalog } from '../recording/recording-catalog.js';
import { recordingsPlugin } from '../recording/recordings-plugin.js';
import { contentKeysPlugin } from './content-keys-plugin.js';
import type { ConnectionCountStore, ListenerStore, NowPlayingStore, OriginStore } from '../store/store.js';

export interface BuildOriginOptions extends OriginOptions {
  /** Read by the origin and the player page (channels and their now playing), and holds the listener counts. */
  store: OriginStore & ListenerStore & Partial<ConnectionCountStore> & Pick<NowPlayingStore, 'getNowPlaying'>;
  /** A pino logger; without one the instance logs nothing. */
  logger?: FastifyBaseLogger;
  /** `signing.key` and the ids of channels with `access: signed`; none when absent. */
  signing?: SignedAccessOptions;
  /** Ids of the channels with `encryption`: their keys are served at `/{ch}/key-{id}.key` (content-keys-plugin.ts). */
  encryptedChannels?: () => Set<string>;
  /** The `encryption: cbcs` channels and their key rotation: their ClearKey license route (content-keys-plugin.ts). */
  cbcsChannels?: () => ReadonlyMap<string, number>;
  /**
   * Bearer tokens of POST /ingest/access-log (CDN/Varnish logs); none: the endpoint is off.
   * The endpoint and /listeners.json are served where `onairListeners.adminRoutes` is registered.
   */
  listenerIngestTokens?: string[];
  /** Serve recorded sessions under /recordings/ from this catalog; none: no recordings routes. */
  recordings?: RecordingCatalog;
  /** `origin.trustedProxies`: whose X-Forwarded-For is believed; default loopback. */
  trustedProxies?: string[];
  /** `origin.limits` (the API's rate is the control API's); each key defaults as in the config. */
  limits?: Partial<OriginLimits>;
  /** `origin.icecastAdmin` and where its metadata updates go; absent: GET /admin/metadata is a 404. */
  icecastAdmin?: IcecastAdminOptions['admin'];
  /** Icecast-style progressive mounts (src/origin/progressive/) and `origin.progressive`; none: no mounts. */
  progressive?: Omit<ProgressiveOptions, 'store' | 'clock' | 'storeTimeoutMs'> & { store: ProgressiveStore };
  /** POST /auth/playback (`entitlements`, playback-auth.ts); absent: the path is a 404. */
  playbackAuth?: PlaybackAuthOptions;
  /** `origin.tls` with the pair read at start: HTTPS (and HTTP/2 when asked); none: plain HTTP. */
  tls?: TlsListenerOptions;
}

export type OriginLimits = Omit<OnairConfig['origin']['limits'], 'apiRequestsPerMinute'>;

const protectionDefaults = originProtectionDefaults();
const { apiRequestsPerMinute: _apiRate, ...limitDefaults } = protectionDefaults.limits;
/** The config's defaults, from its schema (the API's rate belongs to the control API). */
export const DEFAULT_ORIGIN_LIMITS: OriginLimits = limitDefaults;
export const DEFAULT_TRUSTED_PROXIES: string[] = protectionDefaults.trustedProxies;

/** Held LL-HLS requests last at most this many target durations (origin-plugin.ts), plus a margin. */
const HOLD_TARGET_DURATIONS = 3;
const SOCKET_IDLE_MARGIN_MS = 5000;

/** under-pressure's answer: the origin's JSON 503 + Retry-After through the error table. */
class OriginOverloadedError extends OnairError {
  constructor() {
    super('ONAIR_ORIGIN_BUSY', 'the origin is overloaded; retry shortly');
  }
}

const NO_SIGNED_CHANNELS = new Set<string>();
/** Retry-After of an overloaded origin's 503, in seconds. */
const OVERLOAD_RETRY_AFTER_SECONDS = 1;

/** Paths of the admin listener that the origin's routes would otherwise claim (`/:channel/:playlist`). */
const ADMIN_PATHS_ON_ORIGIN = ADMIN_PATH_PREFIXES.map((prefix) => `/${prefix}/*`);
const ADMIN_METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'];

/** The origin reads and never accepts a body; anything larger is refused with 413. */
const BODY_LIMIT_BYTES = 1024;

export async function buildOrigin(options: BuildOriginOptions): Promise<FastifyInstance> {
  const { logger, signing, encryptedChannels = () => NO_SIGNED_CHANNELS, cbcsChannels, listenerIngestTokens, recordings, trustedProxies = DEFAULT_TRUSTED_PROXIES, limits: givenLimits, icecastAdmin: icecastAdminOptions, progressive, playbackAuth, tls, ...originOptions } = options;
  const limits: OriginLimits = { ...DEFAULT_ORIGIN_LIMITS, ...givenLimits };
  const longestHoldMs = HOLD_TARGET_DURATIONS * originOptions.targetDurationSeconds * 1000;
  // A socket that moves no byte this long is closed: longer than any hold or keep-alive wait.
  const idleTimeoutMs = Math.max(limits.keepAliveTimeoutMs, longestHoldMs) + SOCKET_IDLE_MARGIN_MS;
  // Node would answer a Host-less HTTP/1.1 request itself (an empty 400): the hook below
  // gives it the origin's JSON 400 instead (RFC 9112 §3.2 still requires the 400).
  const http = { requireHostHeader: false, headersTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: 1000 };
  const timeouts = { http, requestTimeoutMs: limits.requestTimeoutMs, keepAliveTimeoutMs: limits.keepAliveTimeoutMs, idleTimeoutMs };
  /** The plain listener's hot playlist answers, set once every plugin is registered (onReady below). */
  let hot: HotAnswers | undefined;
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    // Only these may say who the client is (X-Forwarded-For): anyone else's header is ignored.
    trustProxy: trustedProxies,
    // Head and body within requestTimeoutMs (Node checks every second below), then 408.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: idleTimeoutMs,
    return503OnClosing: true,
    // Varnish and load balancers keep keep-alive connections open for a minute: close them
    // at shutdown instead of waiting for them. Requests here take microseconds, and Varnish
    // retries an idempotent GET whose reused connection was closed.
    forceCloseConnections: true,
    // Players poll every few seconds: a log line per request would drown the useful ones.
    // Errors are still logged by the error handler; request counts belong in metrics.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    http,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: originFrameworkErrorHandler,
    ...(tls ? tlsServerOptions(tls, timeouts) : { serverFactory: (handler: RequestListener) => plainServer(handler, timeouts, () => hot) }),
  }) as unknown as FastifyInstance;
  applyHttp1Timeouts(app.server, tls, timeouts);
  destroyHttp2SessionsOnClose(app, tls);
  app.server.maxConnections = limits.connections;
  new ConnectionLimits(limits.connectionsPerClient, addressMatcher(trustedProxies)).attach(app.server);
  // One callback hook for the Host check and the overload check
  // (docs/architecture.md, "Origin cost per request"): @fastify/under-pressure only samples the event loop here
  // (it is registered without a maximum, so adds no hook of its own, which would build the
  // route's options object on every request).
  const overloaded = new OriginOverloadedError();
  const checkPressure = limits.maxEventLoopDelayMs > 0;
  app.addHook('onRequest', (request, reply, done) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      sendError(reply, 400, 'an HTTP/1.1 request needs a Host header');
      return;
    }
    if (checkPressure && app.memoryUsage().eventLoopDelay > limits.maxEventLoopDelayMs) {
      reply.status(503).header('Retry-After', OVERLOAD_RETRY_AFTER_SECONDS);
      done(overloaded);
      return;
    }
    done();
  });
  // An Expect other than 100-continue: the JSON 417 rather than Node's empty one.
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const body = JSON.stringify({ error: 'expectation_failed', message: 'only Expect: 100-continue is supported' });
    response.writeHead(417, {
      'content-type': JSON_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'public, max-age=1',
      'access-control-allow-origin': '*',
    });
    response.end(body);
  });
  try {
    if (limits.maxEventLoopDelayMs > 0) {
      await app.register(underPressure, {});
    }
    await app.register(originPlugin, { ...originOptions, heldRequests: limits.heldRequests, heldRequestsPerClient: limits.heldRequestsPerClient });
    // Always registered, so that a reload can make a channel signed.
    await app.register(signedAccessPlugin, {
      clock: originOptions.clock,
      channelOfMount: (mountPath) => channelOfMount(mountPath, app.onairOrigin.channels()),
      cacheBytes: limits.signedPlaylistCacheBytes,
      ...(signing ?? { key: undefined, signedChannels: () => NO_SIGNED_CHANNELS }),
    });
    // Always registered, so that a reload can make a channel encrypted (docs/architecture.md, "Content encryption").
    await app.register(contentKeysPlugin, {
      store: originOptions.store,
      signingKey: signing?.key,
      encryptedChannels,
      ...(cbcsChannels ? { cbcsChannels } : {}),
      storeTimeoutMs: originOptions.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
      ...(originOptions.clock ? { clock: originOptions.clock } : {}),
    });
    // channels.json says which channels are signed and encrypted (docs/architecture.md, "Player page and encrypted channels").
    await app.register(playerPlugin, { store: originOptions.store, storeTimeoutMs: originOptions.storeTimeoutMs, signedChannels: signing?.signedChannels, encryptedChannels, cbcsChannels });
    // MPEG-DASH MPDs of fmp4 channels and the /time clock (docs/architecture.md, "MPEG-DASH manifests").
    await app.register(dashPlugin, { targetDurationSeconds: originOptions.targetDurationSeconds, clock: originOptions.clock });
    await app.register(listenersPlugin, {
      store: originOptions.store,
      targetDurationSeconds: originOptions.targetDurationSeconds,
      channels: () => app.onairOrigin.channels(),
      ingestTokens: listenerIngestTokens,
      storeTimeoutMs: originOptions.storeTimeoutMs,
      clock: originOptions.clock,
      serveAdminRoutes: false,
      sessionIdsPerClient: limits.sessionIdsPerClient,
      ingestRequestsPerMinute: limits.ingestRequestsPerMinute,
      progressive: progressive !== undefined,
    });
    // Not the origin's parametric routes (a 400 or 405 for /api/channels): admin paths are unknown here.
    const notHere = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => sendError(reply, 404, 'no such resource');
    for (const url of ADMIN_PATHS_ON_ORIGIN) app.route({ method: ADMIN_METHODS, url, onRequest: notHere, handler: notHere });
    // POST /auth/playback with `entitlements`; without, a 404 rather than the playlist route's 405.
    if (playbackAuth) await app.register(playbackAuthPlugin, { clock: originOptions.clock, ...playbackAuth });
    else app.post(PLAYBACK_AUTH_PATH, notHere);
    // Icecast's admin metadata endpoint (a static route: it wins over `/:channel/:playlist`).
    await app.register(icecastAdmin, {
      admin: icecastAdminOptions,
      channels: () => app.onairOrigin.channels(),
      storeTimeoutMs: originOptions.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
    });
    if (recordings) await app.register(recordingsPlugin, { catalog: recordings, storeTimeoutMs: originOptions.storeTimeoutMs });
    if (progressive) await app.register(mountsPlugin, { ...progressive, clock: originOptions.clock, storeTimeoutMs: originOptions.storeTimeoutMs });
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  if (!tls) {
    const signedChannels = signing?.signedChannels ?? ((): Set<string> => NO_SIGNED_CHANNELS);
    // On ready, so the request metrics registered after buildOrigin (src/onair.ts) count hot answers too.
    app.addHook('onReady', (done) => {
      hot = new HotAnswers({
        playlist: app.onairOrigin.hotPlaylist,
        signed: (channel) => signedChannels().has(channel),
        overloaded: () => checkPressure && app.memoryUsage().eventLoopDelay > limits.maxEventLoopDelayMs,
        countListener: app.onairListeners.countAnswer,
        ...(app.onairCountRequest ? { countRequest: app.onairCountRequest } : {}),
        corsHeaders: corsHeaderPairs(ORIGIN_EXPOSED_HEADERS),
        contentType: PLAYLIST_CONTENT_TYPE,
      });
      done();
    });
    app.addHook('preClose', (done) => {
      hot?.close();
      done();
    });
  }
  return app;
}

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * The plain-HTTP server as Fastify would create it (same options and timeouts), whose requests
 * go to the hot answers first and to Fastify when they decline (docs/architecture.md, "Hot playlist answers").
 */
function plainServer(fastifyHandler: RequestListener, timeouts: Required<ListenerTimeouts>, hot: () => HotAnswers | undefined): Server {
  const server = createServer(timeouts.http, (request, response) => {
    if (hot()?.answer(request, response) !== true) fastifyHandler(request, response);
  });
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
  server.requestTimeout = timeouts.requestTimeoutMs;
  server.setTimeout(timeouts.idleTimeoutMs);
  return server;
}
