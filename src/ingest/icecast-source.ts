/**
 * An Icecast source input (docs/architecture.md, Icecast inputs): a small HTTP listener on the
 * input's address (`icecast://0.0.0.0:8010/live`) that accepts one source client on its mount,
 * as Icecast 2.4 does (the HTTP read by hand: source-request.ts), so BUTT, Mixxx, Liquidsoap or `ffmpeg -f mp3 icecast://source:…@host:port/live`
 * can feed a channel:
 * - `PUT /live` (Icecast 2.4+, `Expect: 100-continue` answered once the credentials are
 *   checked) or the legacy `SOURCE /live`, with Basic auth `source:<password>`; wrong or
 *   missing credentials (or another mount) → 401, a second source on the mount → 403
 *   "Mountpoint in use", a Content-Type other than MP3, AAC or Ogg → 415 (none: MP3, as
 *   Icecast assumes). After 5 wrong passwords an address is locked out, for 1 s and then twice
 *   as long at each further failure (429 + Retry-After, credentials not looked at:
 *   src/http/auth-backoff.ts). Accepted: `HTTP/1.0 200 OK` at once, then the body streams for as long
 *   as the client sends, read only as fast as FFmpeg takes it (back-pressure: the kernel's
 *   socket buffers are all that is held). A source that sends nothing for `idleTimeoutMs` is
 *   dropped.
 * - `GET /admin/metadata?mode=updinfo&mount=/live&song=…` with the same credentials: the
 *   title becomes the channel's now playing (src/http/icecast-metadata.ts).
 * The body is the input worker's FeedStream: it pipes it into FFmpeg's stdin. Nothing a client
 * sends can throw out of here.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import { ERRORS, isOnairError, OnairError, type OnairErrorCode } from '../errors.js';
import type { Clock } from '../clock.js';
import { AuthFailureBackoff, TOO_MANY_FAILURES } from '../http/auth-backoff.js';
import { BasicAuthCheck, ICECAST_CHALLENGE, type BasicCredentials } from '../http/basic-auth.js';
import { icecastResponse, ICECAST_XML_CONTENT_TYPE, metadataUpdateFrom, METADATA_UPDATED } from '../http/icecast-metadata.js';
import { feedFormatOf, type FeedHandlers, type FeedStream, type InputFeed } from './input-feed.js';
import { ChunkedDecoder, headEnd, MAX_HEAD_BYTES, parseRequestHead, type SourceRequestHead } from './source-request.js';

export interface IcecastSourceOptions {
  host: string;
  port: number;
  /** The mount source clients use, e.g. `/live`. */
  mount: string;
  credentials: BasicCredentials;
  logger: Logger;
  handlers: FeedHandlers;
  /** A connected source that sends no byte this long is dropped (default 30 s). */
  idleTimeoutMs?: number;
  /** A connection must have sent its whole request head within this (default 10 s). */
  headTimeoutMs?: number;
  /** Times the lock-outs of addresses that guess the password (default: the system clock). */
  clock?: Clock;
}

/** Source and metadata clients at once; more connections are closed at once. */
const MAX_CONNECTIONS = 16;
const HEADERS_TIMEOUT_MS = 10_000;
/**
 * Connections of one address still sending their request head. With the 10-s deadline, this
 * keeps one host that trickles bytes or opens silent connections from filling MAX_CONNECTIONS
 * and locking the real source client out.
 */
const MAX_PENDING_HEADS_PER_ADDRESS = 4;
const IDLE_TIMEOUT_MS = 30_000;
const LISTEN_RETRY_MS = 2_000;
/** Body bytes held between the socket and FFmpeg's pipe; the socket is paused beyond. */
const BODY_BUFFER_BYTES = 64 * 1024;

interface SourceConnection {
  body: Readable;
  socket: Socket;
  format: string;
  /** An encoder run reads it now. */
  taken: boolean;
  ended: boolean;
}

export class IcecastSourceFeed implements InputFeed {
  readonly waitsForSender = true;
  private readonly options: IcecastSourceOptions;
  private readonly auth: BasicAuthCheck;
  private readonly backoff: AuthFailureBackoff;
  private readonly logger: Logger;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Remote address → its connections still sending a head (at most MAX_CONNECTIONS entries). */
  private readonly pendingHeads = new Map<string, number>();
  private current: SourceConnection | undefined;
  private waiter: ((stream: FeedStream | undefined) => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private listening: Promise<void> | undefined;

  constructor(options: IcecastSourceOptions) {
    this.options = options;
    this.auth = new BasicAuthCheck(options.credentials);
    this.backoff = new AuthFailureBackoff({ clock: options.clock });
    this.logger = options.logger.child({ source: `${options.host}:${options.port}${options.mount}` });
  }

  /** Where it listens once bound (the port may have been 0 in tests). */
  address(): { host: string; port: number } | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? { host: address.address, port: address.port } : undefined;
  }

  start(): void {
    this.closed = false;
    this.listening = this.listen();
  }

  /** Resolves once bound (or after a failed attempt: it is retried every 2 s). */
  async ready(): Promise<void> {
    await this.listening;
  }

  next(): Promise<FeedStream | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const waiting = this.waiter;
    if (waiting) {
      this.waiter = undefined;
      waiting(undefined);
    }
    const connection = this.current;
    if (connection && !connection.ended && !connection.taken) return Promise.resolve(this.streamOf(connection));
    return new Promise((resolve) => (this.waiter = resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const waiting = this.waiter;
    this.waiter = undefined;
    waiting?.(undefined);
    this.current = undefined;
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private listen(): Promise<void> {
    const server = createServer((socket) => this.onConnection(socket));
    server.maxConnections = MAX_CONNECTIONS;
    return new Promise((resolve) => {
      server.once('listening', () => {
        if (this.closed) server.close();
        else this.server = server;
        this.logger.info('source input listening');
        resolve();
      });
      server.once('error', (error: NodeJS.ErrnoException) => {
        this.logger.error({ err: error, code: 'ONAIR_PORT_IN_USE' }, 'source input cannot listen; trying again');
        server.close();
        if (!this.closed) this.retryTimer = setTimeout(() => (this.listening = this.listen()), LISTEN_RETRY_MS);
        resolve();
      });
      server.listen(this.options.port, this.options.host);
    });
  }

  /** Reads the request head (bounded in bytes and time), then answers it. */
  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const address = socket.remoteAddress ?? '';
    const pending = this.pendingHeads.get(address) ?? 0;
    if (pending >= MAX_PENDING_HEADS_PER_ADDRESS) {
      socket.destroy();
      return;
    }
    this.pendingHeads.set(address, pending + 1);
    // A deadline for the whole head (an idle timer alone lets a client trickle a byte at a time).
    let headDone = false;
    const deadline = setTimeout(() => socket.destroy(), this.options.headTimeoutMs ?? HEADERS_TIMEOUT_MS);
    const headOver = (): void => {
      if (headDone) return;
      headDone = true;
      clearTimeout(deadline);
      const left = (this.pendingHeads.get(address) ?? 1) - 1;
      if (left > 0) this.pendingHeads.set(address, left);
      else this.pendingHeads.delete(address);
    };
    socket.once('close', headOver);
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = headEnd(received);
      if (end === undefined && received.length <= MAX_HEAD_BYTES) return;
      socket.off('data', onData);
      socket.pause();
      headOver();
      if (end === undefined) {
        this.respond(socket, 431, 'Request Header Fields Too Large', icecastResponse('Request header too large', false));
        return;
      }
      const head = end[0] <= MAX_HEAD_BYTES ? parseRequestHead(received.subarray(0, end[0])) : undefined;
      if (!head) {
        this.respond(socket, 400, 'Bad Request', icecastResponse('Bad request', false));
        return;
      }
      try {
        this.handle(head, socket, received.subarray(end[1]));
      } catch (error) {
        if (isOnairError(error)) {
          this.refuseWith(socket, error.code, icecastResponse(error.message, false));
        } else {
          // Nothing a client sends may throw out of a socket handler: a bug here ends this connection only.
          this.logger.error({ err: error }, 'source request failed');
          socket.destroy();
        }
      }
    };
    socket.on('data', onData);
  }

  private handle(head: SourceRequestHead, socket: Socket, bodyStart: Buffer): void {
    const path = head.target.split('?')[0];
    const client = socket.remoteAddress;
    const lockedMs = this.backoff.lockedForMs(client);
    if (lockedMs > 0) {
      this.logger.warn({ client, method: head.method }, 'source client refused: locked out after failed logins');
      this.refuseWith(socket, 'ONAIR_AUTH_THROTTLED', icecastResponse(TOO_MANY_FAILURES, false), { 'Retry-After': String(Math.ceil(lockedMs / 1000)) });
      return;
    }
    if (!this.auth.check(head.headers.get('authorization'))) {
      this.backoff.failed(client);
      this.logger.warn({ client, method: head.method }, 'source client refused: wrong credentials');
      throw new OnairError('ONAIR_ICECAST_UNAUTHORIZED', 'You need to authenticate');
    }
    this.backoff.succeeded(client);
    if (head.method === 'GET' && path === '/admin/metadata') {
      this.updateMetadata(head, socket);
      return;
    }
    if ((head.method !== 'PUT' && head.method !== 'SOURCE') || path !== this.options.mount) {
      throw new OnairError('ONAIR_MOUNT_UNKNOWN', 'Source does not exist');
    }
    if (this.current && !this.current.ended) throw new OnairError('ONAIR_MOUNT_IN_USE', 'Mountpoint in use');
    const contentType = head.headers.get('content-type');
    // No Content-Type: MP3, as Icecast assumes for old source clients.
    const format = contentType === undefined ? 'mp3' : feedFormatOf(contentType);
    if (format === undefined) throw new OnairError('ONAIR_SOURCE_FORMAT', 'Content-type not supported');
    this.accept(head, socket, bodyStart, format);
  }

  private updateMetadata(head: SourceRequestHead, socket: Socket): void {
    const update = metadataUpdateFrom(head.target, Date.now());
    if (update.mount !== this.options.mount) throw new OnairError('ONAIR_MOUNT_UNKNOWN', 'Source does not exist');
    this.logger.info({ title: update.nowPlaying.title }, 'source client sent a title');
    this.options.handlers.onNowPlaying(update.nowPlaying);
    this.respond(socket, 200, 'OK', METADATA_UPDATED);
  }

  private accept(head: SourceRequestHead, socket: Socket, bodyStart: Buffer, format: string): void {
    // Only now, with the credentials and the mount checked, may the client send its body.
    if (/100-continue/i.test(head.headers.get('expect') ?? '')) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    // Icecast's own answer, which source clients wait for before they send: HTTP/1.0, no headers.
    socket.write('HTTP/1.0 200 OK\r\n\r\n');
    const raw = new PassThrough({ highWaterMark: BODY_BUFFER_BYTES });
    if (bodyStart.length > 0) raw.write(bodyStart);
    socket.pipe(raw);
    const chunked = /chunked/i.test(head.headers.get('transfer-encoding') ?? '');
    const body: Readable = chunked ? raw.pipe(new ChunkedDecoder()) : raw;
    body.on('error', () => socket.destroy());
    body.pause();
    const connection: SourceConnection = { body, socket, format, taken: false, ended: false };
    this.current = connection;
    this.logger.info({ client: socket.remoteAddress, format }, 'source client connected');
    socket.setTimeout(this.options.idleTimeoutMs ?? IDLE_TIMEOUT_MS, () => {
      this.logger.warn('source client sent nothing for too long; dropped');
      socket.destroy();
    });
    const ended = (): void => {
      if (connection.ended) return;
      connection.ended = true;
      if (this.current === connection) this.current = undefined;
      this.logger.info('source client disconnected');
      // What was received still reaches FFmpeg; then its stdin ends.
      raw.end();
      socket.destroy();
    };
    socket.once('close', ended);
    body.once('end', ended);
    const waiting = this.waiter;
    if (waiting) {
      this.waiter = undefined;
      waiting(this.streamOf(connection));
    }
  }

  private streamOf(connection: SourceConnection): FeedStream {
    connection.taken = true;
    return {
      audio: connection.body,
      format: connection.format,
      release: () => {
        connection.taken = false;
        connection.body.pause();
      },
    };
  }

  private refuseWith(socket: Socket, code: OnairErrorCode, body: string, headers: Record<string, string> = {}): void {
    const status = ERRORS[code].status;
    const reasons: Record<number, string> = { 400: 'Bad Request', 401: 'Authentication Required', 403: 'Forbidden', 415: 'Unsupported Media Type', 429: 'Too Many Requests' };
    const challenge: Record<string, string> = code === 'ONAIR_ICECAST_UNAUTHORIZED' ? { 'WWW-Authenticate': ICECAST_CHALLENGE } : {};
    this.respond(socket, status, reasons[status] ?? 'Error', body, { ...challenge, ...headers });
  }

  /** One answer, then the connection closes (Icecast answers HTTP/1.0). */
  private respond(socket: Socket, status: number, reason: string, body: string, headers: Record<string, string> = {}): void {
    const lines = [`HTTP/1.0 ${status} ${reason}`, `Content-Type: ${ICECAST_XML_CONTENT_TYPE}`, `Content-Length: ${Buffer.byteLength(body)}`, 'Cache-Control: no-store', 'Connection: close'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  }
}
