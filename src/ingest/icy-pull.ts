/**
 * A pulled Icecast/SHOUTcast input with its titles (docs/architecture.md, Icecast inputs): an
 * `http(s)://` input with `icyMetadata: true` is fetched here, in Node, with `Icy-MetaData: 1`,
 * instead of by FFmpeg. The ICY metadata blocks are cut out of the audio (src/media/icy-reader.ts),
 * the audio goes to FFmpeg's stdin (container from the Content-Type, else probed among the
 * audio containers), and each StreamTitle change becomes the channel's now playing.
 * Bounded: the answer's head within `connectTimeoutMs` and 16 KiB, at most 3 redirects (to
 * http or https only), `icy-metaint` at most 1 MiB, and a stream that sends nothing for
 * `idleTimeoutMs` is dropped. Each encoder run fetches anew (the input worker's backoff spaces
 * the attempts); nothing is buffered beyond the pipes' high-water marks.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import { OnairError } from '../errors.js';
import { redactUrl } from '../logging/redact.js';
import { IcyReader } from '../media/icy-reader.js';
import { isNowPlayingProblem, nowPlayingFromSong } from '../media/now-playing.js';
import { feedFormatOf, type FeedHandlers, type FeedStream, type InputFeed } from './input-feed.js';

export interface IcyPullOptions {
  url: string;
  logger: Logger;
  handlers: FeedHandlers;
  /** The answer's head must arrive within this (default 10 s). */
  connectTimeoutMs?: number;
  /** A stream that sends no byte this long is dropped (default 10 s). */
  idleTimeoutMs?: number;
}

const MAX_REDIRECTS = 3;
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_METAINT = 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 10_000;

export class IcyPullFeed implements InputFeed {
  readonly waitsForSender = false;
  private readonly options: IcyPullOptions;
  private readonly logger: Logger;
  private readonly inFlight = new Set<ClientRequest>();
  private lastTitle: string | undefined;
  private closed = false;

  constructor(options: IcyPullOptions) {
    this.options = options;
    this.logger = options.logger.child({ upstream: redactUrl(options.url) });
  }

  start(): void {
    this.closed = false;
  }

  async next(): Promise<FeedStream | undefined> {
    if (this.closed) return undefined;
    let url = new URL(this.options.url);
    for (let redirects = 0; ; redirects += 1) {
      const response = await this.get(url);
      if (response === undefined) return undefined;
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        response.destroy();
        const target = URL.canParse(location, url) ? new URL(location, url) : undefined;
        if (redirects >= MAX_REDIRECTS || !target || !/^https?:$/.test(target.protocol)) {
          throw new OnairError('ONAIR_INPUT_FAILED', `too many redirects, or one to a non-HTTP URL (at most ${MAX_REDIRECTS})`, { where: redactUrl(this.options.url) });
        }
        url = target;
        continue;
      }
      if (status !== 200) {
        response.destroy();
        throw new OnairError('ONAIR_INPUT_FAILED', `upstream answered ${status}`, { where: redactUrl(this.options.url) });
      }
      return this.streamOf(response);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const request of this.inFlight) request.destroy();
    this.inFlight.clear();
  }

  private streamOf(response: IncomingMessage): FeedStream {
    const metaintHeader = response.headers['icy-metaint'];
    const metaint = metaintHeader === undefined ? undefined : Number(metaintHeader);
    if (metaint !== undefined && !(Number.isInteger(metaint) && metaint >= 1 && metaint <= MAX_METAINT)) {
      response.destroy();
      throw new OnairError('ONAIR_INPUT_FAILED', `icy-metaint ${String(metaintHeader).slice(0, 20)} is not an integer between 1 and ${MAX_METAINT}`, { where: redactUrl(this.options.url) });
    }
    const format = feedFormatOf(response.headers['content-type']);
    this.logger.info({ metaint: metaint ?? null, format: format ?? 'probed' }, 'pulling upstream stream');
    response.on('error', () => undefined);
    if (metaint === undefined) return { audio: response, format, release: () => response.destroy() };
    const audio = response.pipe(new IcyStrip(metaint, (title) => this.onTitle(title)));
    // A dropped connection ends the audio too, so FFmpeg sees its end and the run ends.
    response.on('close', () => audio.end());
    return {
      audio,
      format,
      release: () => {
        response.destroy();
        audio.destroy();
      },
    };
  }

  private onTitle(title: string): void {
    if (title === this.lastTitle) return;
    this.lastTitle = title;
    const nowPlaying = nowPlayingFromSong(title, Date.now());
    if (isNowPlayingProblem(nowPlaying)) return; // an empty StreamTitle: nothing to show
    this.logger.info({ title: nowPlaying.title }, 'upstream StreamTitle changed');
    this.options.handlers.onNowPlaying(nowPlaying);
  }

  /** One GET with Icy-MetaData: 1; undefined when closed meanwhile. */
  private get(url: URL): Promise<IncomingMessage | undefined> {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'GET',
      headers: { 'icy-metadata': '1', 'user-agent': 'onair' },
      maxHeaderSize: MAX_HEADER_BYTES,
      timeout: this.options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
    });
    this.inFlight.add(request);
    request.on('close', () => this.inFlight.delete(request));
    return new Promise((resolve, reject) => {
      const connectTimer = setTimeout(() => request.destroy(new Error('no answer in time')), this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
      request.on('timeout', () => request.destroy(new Error('upstream sent nothing for too long')));
      request.on('response', (response) => {
        clearTimeout(connectTimer);
        resolve(response);
      });
      request.on('error', (error) => {
        clearTimeout(connectTimer);
        if (this.closed) resolve(undefined);
        else reject(new OnairError('ONAIR_INPUT_FAILED', error.message, { where: redactUrl(this.options.url), cause: error }));
      });
      request.end();
    });
  }
}

/** The audio of an ICY stream: metadata blocks cut out, titles reported. */
class IcyStrip extends Transform {
  private readonly reader: IcyReader;

  constructor(
    metaint: number,
    private readonly onTitle: (title: string) => void,
  ) {
    super();
    this.reader = new IcyReader(metaint);
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    const { audio, titles } = this.reader.push(chunk);
    for (const piece of audio) this.push(piece);
    for (const title of titles) this.onTitle(title);
    callback();
  }
}
