/**
 * HTTPS and HTTP/2 on a Fastify listener (`origin.tls`, `admin.tls`; docs/architecture.md, "HTTPS listeners"):
 * the certificate and key read from files at start (a missing, unreadable or mismatched pair
 * is a config error naming the key), the Fastify options of a TLS server with its bounds, and
 * the reload of the pair on SIGHUP.
 *
 * - HTTP/2 is offered by ALPN (`h2`, then `http/1.1`): clients that do not ask for it (car
 *   radios, Icecast clients, curl --http1.1) get HTTP/1.1 over TLS on the same port.
 * - Bounds beside the connection limits (client-limits.ts), which count TCP connections before
 *   the handshake: a handshake must finish within handshakeTimeoutMs; an HTTP/2 connection
 *   carries at most maxConcurrentStreams streams, and an idle session closes like an idle
 *   HTTP/1.1 socket. HTTP/1.1 on the HTTP/2 server keeps the head deadline and the keep-alive
 *   timeout of the plain listener.
 * - A reload reads both files, checks that they make a secure context, then swaps it in with
 *   server.setSecureContext: handshakes from then on use the new pair; open connections stay
 *   as they are. A bad new pair is logged with ONAIR_TLS_RELOAD_FAILED and the old one kept.
 */
import { readFile } from 'node:fs/promises';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import type { Http2Session } from 'node:http2';
import type { FastifyBaseLogger, FastifyInstance, FastifyServerOptions } from 'fastify';
import type { TlsConfig } from '../config/config-schema.js';
import { OnairError } from '../errors.js';

/** A certificate chain and its key as read from the files (PEM). */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** What a listener's TLS needs: its settings, the pair read at start, and the key path errors name (`origin.tls`). */
export interface TlsListenerOptions {
  settings: TlsConfig;
  pair: TlsPair;
  keyPath: string;
}

/** HTTP/1.1 options and timeouts of the plain listener that the TLS one keeps. */
export interface ListenerTimeouts {
  /** Fastify's `http` options of the plain listener (node:http server options). */
  http?: { requireHostHeader?: boolean; headersTimeout?: number; connectionsCheckingInterval?: number };
  /** A request's head and body must arrive within this (HTTP/1.1; milliseconds). */
  requestTimeoutMs?: number;
  /** An idle keep-alive HTTP/1.1 connection closes after this (milliseconds). */
  keepAliveTimeoutMs?: number;
  /** A connection (or HTTP/2 session) that moves nothing this long closes (milliseconds). */
  idleTimeoutMs: number;
}

/** The certificate's serial number (hex, upper case, as openssl prints it) and expiry, for logs. */
export function describeCertificate(cert: Buffer): { serial: string; validTo: string; subject: string } {
  const parsed = new X509Certificate(cert);
  return { serial: parsed.serialNumber.toUpperCase(), validTo: parsed.validTo, subject: parsed.subject.replace(/\n/g, ', ') };
}

/**
 * Reads and checks the pair of `settings` for the listener at `keyPath` (`origin.tls`).
 * Throws `errorCode` naming `{keyPath}.certFile` or `.keyFile` when a file cannot be read,
 * is not PEM, or the key is not the certificate's.
 */
export async function readTlsPair(
  settings: Pick<TlsConfig, 'certFile' | 'keyFile'>,
  keyPath: string,
  errorCode: 'ONAIR_CONFIG_INVALID' | 'ONAIR_TLS_RELOAD_FAILED' = 'ONAIR_CONFIG_INVALID',
): Promise<TlsPair> {
  const read = async (key: 'certFile' | 'keyFile'): Promise<Buffer> => {
    try {
      return await readFile(settings[key]);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new OnairError(errorCode, `cannot read ${settings[key]} (${reason})`, { where: `${keyPath}.${key}`, cause: error });
    }
  };
  const pair = { cert: await read('certFile'), key: await read('keyFile') };
  const check = (key: 'certFile' | 'keyFile', what: string, attempt: () => unknown): void => {
    try {
      attempt();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new OnairError(errorCode, `${settings[key]} ${what} (${reason})`, { where: `${keyPath}.${key}`, cause: error });
    }
  };
  check('certFile', 'is not a PEM certificate', () => new X509Certificate(pair.cert));
  check('keyFile', 'is not a PEM private key (without a passphrase)', () => createPrivateKey(pair.key));
  check('keyFile', `is not the key of ${settings.certFile}`, () => createSecureContext(pair));
  return pair;
}

/** Fastify options of an HTTPS (or HTTP/2 with HTTP/1.1 by ALPN) listener, with the bounds of the header. */
export function tlsServerOptions(tls: TlsListenerOptions, timeouts: ListenerTimeouts): Partial<FastifyServerOptions> & { https: object } {
  const { settings, pair } = tls;
  const secure = { cert: pair.cert, key: pair.key, handshakeTimeout: settings.handshakeTimeoutMs };
  if (!settings.http2) {
    // https.createServer takes the HTTP/1.1 options beside the TLS ones (Fastify's `http` is for plain HTTP only).
    return { https: { ...secure, ...timeouts.http } };
  }
  return {
    http2: true,
    https: {
      ...secure,
      allowHTTP1: true,
      settings: { maxConcurrentStreams: settings.maxConcurrentStreams },
    },
    // Fastify closes a session idle this long; a connection of the plain listener closes the same way.
    http2SessionTimeout: timeouts.idleTimeoutMs,
  } as Partial<FastifyServerOptions> & { https: object };
}

/**
 * HTTP/1.1 on an HTTP/2 server (allowHTTP1) reads its timeouts from the server object, which
 * Fastify sets only on HTTP/1 servers: the same head deadline and keep-alive timeout here.
 * Call before listen (the head deadline is checked from 'listening' on).
 */
export function applyHttp1Timeouts(server: object, tls: TlsListenerOptions | undefined, timeouts: ListenerTimeouts): void {
  if (!tls?.settings.http2) return;
  const http1 = server as { headersTimeout?: number; requestTimeout?: number; keepAliveTimeout?: number; connectionsCheckingInterval?: number };
  const { headersTimeout, connectionsCheckingInterval } = timeouts.http ?? {};
  if (headersTimeout !== undefined) http1.headersTimeout = headersTimeout;
  if (connectionsCheckingInterval !== undefined) http1.connectionsCheckingInterval = connectionsCheckingInterval;
  if (timeouts.requestTimeoutMs !== undefined) http1.requestTimeout = timeouts.requestTimeoutMs;
  if (timeouts.keepAliveTimeoutMs !== undefined) http1.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
}

/**
 * On close, ends every HTTP/2 session at once, as forceCloseConnections does to HTTP/1.1
 * connections: Fastify's own session close is graceful and waits for open streams, which a
 * progressive listener's never ends, so the server would never finish closing. One entry per
 * open connection: bounded by server.maxConnections.
 */
export function destroyHttp2SessionsOnClose(app: FastifyInstance, tls: TlsListenerOptions | undefined): void {
  if (!tls?.settings.http2) return;
  const sessions = new Set<Http2Session>();
  app.server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  app.addHook('preClose', (done) => {
    for (const session of sessions) session.destroy();
    sessions.clear();
    done();
  });
}

/**
 * Reloads a listener's certificate and key from their files (SIGHUP): the new pair for new
 * handshakes, or, when it is unusable, the old one kept and the failure logged with its code.
 */
export class CertificateReloader {
  constructor(
    private readonly server: Pick<TlsServer, 'setSecureContext'>,
    private readonly tls: TlsListenerOptions,
    private readonly logger: FastifyBaseLogger,
  ) {}

  /** True when the new pair is in use; false (logged) when the old one is kept. Never throws. */
  async reload(): Promise<boolean> {
    const { settings, keyPath } = this.tls;
    let pair: TlsPair;
    try {
      pair = await readTlsPair(settings, keyPath, 'ONAIR_TLS_RELOAD_FAILED');
      this.server.setSecureContext({ cert: pair.cert, key: pair.key });
    } catch (error) {
      const failure = error instanceof OnairError ? error : new OnairError('ONAIR_TLS_RELOAD_FAILED', String(error), { where: keyPath, cause: error });
      this.logger.error({ code: failure.code, listener: keyPath, err: failure }, 'TLS certificate reload failed; the previous certificate is kept');
      return false;
    }
    this.tls.pair = pair;
    this.logger.info({ listener: keyPath, ...describeCertificate(pair.cert) }, 'TLS certificate reloaded');
    return true;
  }
}
