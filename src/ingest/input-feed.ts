/**
 * Inputs whose audio onair receives itself and hands to FFmpeg on stdin
 * (docs/architecture.md, Icecast inputs): an Icecast source client pushing to a mount (icecast-source.ts) and an
 * Icecast/SHOUTcast stream pulled with its ICY metadata (icy-pull.ts). The input worker asks
 * its feed for a stream before each encoder run, pipes it into FFmpeg (`-i pipe:0`, with
 * back-pressure) and releases it when the run ends. Titles a feed learns become now playing.
 */
import type { Readable } from 'node:stream';
import type { NowPlaying } from '../media/now-playing.js';

export interface FeedStream {
  /** The audio bytes (a source client's body, an upstream's audio without its metadata blocks). */
  readonly audio: Readable;
  /** FFmpeg's demuxer for it (`mp3`, `aac`, `ogg`, from the Content-Type), or undefined to probe. */
  readonly format: string | undefined;
  /** The encoder run reading it ended: a source stays connected for the next run, a pulled stream is closed. */
  release(): void;
}

export interface InputFeed {
  /**
   * A source mount waits for a sender (no start timeout before one connects, and no backoff
   * after one leaves); a pulled stream is fetched again with backoff.
   */
  readonly waitsForSender: boolean;
  /** Starts listening (a source mount); nothing for a pulled stream. */
  start(): void;
  /** The next stream: a source connected, or the upstream answered. Undefined once closed; rejects when it cannot be had. */
  next(): Promise<FeedStream | undefined>;
  /** Stops listening, ends any stream and resolves a pending `next()` with undefined. */
  close(): Promise<void>;
}

export interface FeedHandlers {
  /** A title the feed learned (a source's metadata update, a StreamTitle change). */
  onNowPlaying(nowPlaying: NowPlaying): void;
}

/** The container of an Icecast Content-Type, or undefined when it is not MP3, AAC or Ogg. */
export function feedFormatOf(contentType: string | undefined): string | undefined {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  switch (type) {
    case 'audio/mpeg':
    case 'audio/mp3':
    case 'audio/mpeg3':
      return 'mp3';
    case 'audio/aac':
    case 'audio/aacp':
    case 'audio/x-aac':
      return 'aac';
    case 'application/ogg':
    case 'audio/ogg':
    case 'audio/opus':
    case 'audio/vorbis':
      return 'ogg';
    default:
      return undefined;
  }
}
