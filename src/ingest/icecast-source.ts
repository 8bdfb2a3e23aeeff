/**
 * An Icecast source input (docs/architecture.md, Icecast inputs): a small HTTP listener on the
 * input's address (`icecast://0.0.0.0:8010/live`) that accepts one source client on its mount,
 * as Icecast 2.4 does, so BUTT, Mixxx, Liquidsoap or `ffmpeg -f mp3 icecast://source:…@host:port/live`
 * can feed a channel:
 * - `PUT /live` (Icecast 2.4+, `Expect: 100-continue` answered once the credentials are
 *   checked) or the legacy `SOURCE /live`, with Basic auth `source:<password>`; wrong or
 *   missing credentials (or another mount) → 401, a second source on the mount → 403
 *   "Mountpoint in use", a Content-Type other than MP3, AAC or Ogg → 415 (none: MP3, as
 *   Icecast assumes). Accepted: `HTTP/1.0 200 OK` at once, then the body streams for as long
 *   as the client sends, read only as fast as FFmpeg takes it (back-pressure: the kernel's
 *   socket buffers are all that is held). A source that sends nothing for `idleTimeoutMs` is
 *   dropped.
 * - `GET /admin/metadata?mode=updinfo&mount=/live&song=…` with the same credentials: the
 *   title becomes the channel's now playing (src/http/icecast-metadata.ts).
 * The body is the input worker's FeedStream: it pipes it into FFmpeg's stdin. Nothing a client
 * sends can throw out of here.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ERRORS, isOnairError, OnairError, type OnairErrorCode } from '../errors.js';
import { BasicAuthCheck, ICECAST_CHALLENGE, type BasicCredentials } from '../http/basic-auth.js';
import { AUTHENTICATION_REQUIRED, icecastResponse, ICECAST_XML_CONTENT_TYPE, metadataUpdateFrom, METADATA_UPDATED } from '../http/icecast-metadata.js';
import { feedFormatOf, type FeedHandlers, type FeedStream, type InputFeed } from './input-feed.js';

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
}

/** Source and metadata clients at once; more connections are refused by the kernel's backlog. */
const MAX_CONNECTIONS = 16;
const HEADERS_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 30_000;
const LISTEN_RETRY_MS = 2_000;

interface SourceConnection {
  request: IncomingMessage;
  format: string;
  /** An encoder run reads it now. */
  taken: boolean;
  ended: boolean;
}

export class IcecastSourceFeed implements InputFeed {
  readonly waitsForSender = true;
  private readonly options: IcecastSourceOptions;
  private readonly auth: BasicAuthCheck;
  private readonly logger: Logger;
  private server: Server | undefined;
  private current: SourceConnection | undefined;
  private waiter: ((stream: FeedStream | undefined) => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private listening: Promise<void> | undefined;

  constructor(options: IcecastSourceOptions) {
    this.options = options;
    this.auth = new BasicAuthCheck(options.credentials);
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
    this.current?.request.socket.destroy();
    this.current = undefined;
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private listen(): Promise<void> {
    const server = createServer({ requestTimeout: 0, headersTimeout: HEADERS_TIMEOUT_MS, keepAliveTimeout: 5_000, maxHeaderSize: 8192 });
    server.maxConnections = MAX_CONNECTIONS;
    // An Expect: 100-continue is answered only once the credentials and the mount are checked.
    server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => this.handle(request, response, true));
    server.on('request', (request: IncomingMessage, response: ServerResponse) => this.handle(request, response, false));
    server.on('clientError', (error, socket: Socket) => socket.destroy());
    return new Promise((resolve) => {
      server.once('listening', () => {
        this.server = server;
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

  private handle(request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void {
    request.on('error', () => undefined);
    try {
      const path = (request.url ?? '').split('?')[0];
      if (!this.auth.check(request.headers.authorization)) {
        this.logger.warn({ client: request.socket.remoteAddress, method: request.method }, 'source client refused: wrong credentials');
        this.reply(response, 'ONAIR_ICECAST_UNAUTHORIZED', AUTHENTICATION_REQUIRED);
        return;
      }
      if (request.method === 'GET' && path === '/admin/metadata') {
        this.updateMetadata(request, response);
        return;
      }
      if ((request.method !== 'PUT' && request.method !== 'SOURCE') || path !== this.options.mount) {
        throw new OnairError('ONAIR_MOUNT_UNKNOWN', 'Source does not exist');
      }
      if (this.current && !this.current.ended) throw new OnairError('ONAIR_MOUNT_IN_USE', 'Mountpoint in use');
      const contentType = request.headers['content-type'];
      // No Content-Type: MP3, as Icecast assumes for old source clients.
      const format = contentType === undefined ? 'mp3' : feedFormatOf(contentType);
      if (format === undefined) throw new OnairError('ONAIR_SOURCE_FORMAT', 'Content-type not supported');
      this.accept(request, response, format, expectsContinue);
    } catch (error) {
      if (!isOnairError(error)) throw error;
      this.reply(response, error.code, icecastResponse(error.message, false));
    }
  }

  private updateMetadata(request: IncomingMessage, response: ServerResponse): void {
    const update = metadataUpdateFrom(request.url ?? '', Date.now());
    if (update.mount !== this.options.mount) throw new OnairError('ONAIR_MOUNT_UNKNOWN', 'Source does not exist');
    this.logger.info({ title: update.nowPlaying.title }, 'source client sent a title');
    this.options.handlers.onNowPlaying(update.nowPlaying);
    response.writeHead(200, { 'content-type': ICECAST_XML_CONTENT_TYPE, 'cache-control': 'no-store' }).end(METADATA_UPDATED);
  }

  private accept(request: IncomingMessage, response: ServerResponse, format: string, expectsContinue: boolean): void {
    if (expectsContinue) response.writeContinue();
    // Icecast's own answer, which source clients wait for before they send: HTTP/1.0, no headers.
    request.socket.write('HTTP/1.0 200 OK\r\n\r\n');
    const connection: SourceConnection = { request, format, taken: false, ended: false };
    this.current = connection;
    this.logger.info({ client: request.socket.remoteAddress, format }, 'source client connected');
    request.socket.setTimeout(this.options.idleTimeoutMs ?? IDLE_TIMEOUT_MS, () => {
      this.logger.warn('source client sent nothing for too long; dropped');
      request.socket.destroy();
    });
    const ended = (): void => {
      if (connection.ended) return;
      connection.ended = true;
      if (this.current === connection) this.current = undefined;
      this.logger.info('source client disconnected');
      request.socket.destroy();
    };
    request.once('end', ended);
    request.once('close', ended);
    const waiting = this.waiter;
    if (waiting) {
      this.waiter = undefined;
      waiting(this.streamOf(connection));
    }
  }

  private streamOf(connection: SourceConnection): FeedStream {
    connection.taken = true;
    return {
      audio: connection.request,
      format: connection.format,
      release: () => {
        connection.taken = false;
        connection.request.pause();
      },
    };
  }

  private reply(response: ServerResponse, code: OnairErrorCode, body: string): void {
    const headers: Record<string, string> = { 'content-type': ICECAST_XML_CONTENT_TYPE, 'cache-control': 'no-store', connection: 'close' };
    if (code === 'ONAIR_ICECAST_UNAUTHORIZED') headers['www-authenticate'] = ICECAST_CHALLENGE;
    response.writeHead(ERRORS[code].status, headers).end(body);
  }
}
