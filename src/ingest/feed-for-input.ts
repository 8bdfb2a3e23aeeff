/**
 * Which inputs onair feeds to FFmpeg itself (src/ingest/input-feed.ts): an `icecast://` source
 * input, and an `http(s)://` input with `icyMetadata: true`. Every other input is read by
 * FFmpeg from its URL.
 */
import type { Logger } from 'pino';
import { icecastSourceAddress, type InputConfig } from '../config/config-schema.js';
import { IcecastSourceFeed } from './icecast-source.js';
import { IcyPullFeed } from './icy-pull.js';
import type { FeedHandlers, InputFeed } from './input-feed.js';

export function feedForInput(input: InputConfig, logger: Logger, handlers: FeedHandlers): InputFeed | undefined {
  const source = icecastSourceAddress(input.url);
  if (source && input.source) return new IcecastSourceFeed({ ...source, credentials: input.source, logger, handlers });
  if (input.icyMetadata === true && /^https?:/.test(input.url)) return new IcyPullFeed({ url: input.url, logger, handlers });
  return undefined;
}
