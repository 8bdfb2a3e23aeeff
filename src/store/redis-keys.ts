/**
 * The one place that names Redis keys and the pub/sub channel (docs/architecture.md, Store).
 *
 * Every key carries the channel id as a Cluster hash tag (`{fip}`), so all keys of a
 * channel hash to one slot and one MULTI or Lua call can update them together:
 *
 *   <prefix>:{<channel>}:seg:<rendition>:<segment name>   string, segment bytes, PX TTL
 *   <prefix>:{<channel>}:playlists                        hash, see below
 *   <prefix>:{<channel>}:state                            string, sequence state JSON
 *   <prefix>:{<channel>}:lease                            string, current lease token, PX TTL
 *   <prefix>:{<channel>}:fence                            integer, lease counter (first part of tokens)
 *   <prefix>:{<channel>}:status                           string, live status JSON
 *   <prefix>:{<channel>}:listeners:<rendition>:<bucket>   HyperLogLog, client ids, PX TTL
 *   <prefix>:{<channel>}:recordings                       hash, session id → recording record JSON
 *   <prefix>:{<channel>}:announced                        hash, event key (session id) → event id (appendEventOnce)
 *   <prefix>:{<channel>}:now-playing                      string, now playing JSON (never expires)
 *   <prefix>:{<channel>}:connections                      hash, origin → `<expires at ms>|<counts JSON>`
 *   <prefix>:{<channel>}:key:<key id>                     string, content key (16 bytes), PX TTL
 *   <prefix>:events                                       stream, events of every channel (recording.ready…)
 *   <prefix>:updates                                      pub/sub channel, message = channel id
 *   <prefix>:now-playing-updates                          pub/sub channel, message = channel id
 *
 * The playlists hash holds, for each playlist file name, two fields: `<name>` → body and
 * `<name>#etag` → strong ETag. One hash per channel lets `publish` replace the whole set
 * in one script (HSET of the new fields, then HDEL of the stale ones: no stale playlist
 * survives a publish, and a publish refused half-way leaves the previous set), and lets
 * a reader fetch a body with its ETag in one HMGET. The ETag is computed once by the
 * writer, so every origin reading the store serves the same validator.
 *
 * Listener HyperLogLogs share the channel's slot too, so one PFCOUNT can count the union of
 * every rendition and bucket of a channel, even on a Cluster.
 */

import { contentKeyId, listenerBucket } from './store.js';

export const DEFAULT_KEY_PREFIX = 'onair';

const ETAG_FIELD_SUFFIX = '#etag';

export class RedisKeys {
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_KEY_PREFIX) {
    // A brace in the prefix would become the hash tag and put every channel on one slot.
    if (prefix === '' || /[{}\s]/.test(prefix)) {
      throw new RangeError(`Redis key prefix must be non-empty, without braces or spaces: ${JSON.stringify(prefix)}`);
    }
    this.prefix = prefix;
  }

  segment(channel: string, rendition: string, name: string): string {
    // A colon in the rendition would make `a:b` + `c` collide with `a` + `b:c`.
    requirePart('rendition', rendition, /[:\s]/);
    requirePart('segment name', name, /\s/);
    return `${this.channelPrefix(channel)}:seg:${rendition}:${name}`;
  }

  playlists(channel: string): string {
    return `${this.channelPrefix(channel)}:playlists`;
  }

  state(channel: string): string {
    return `${this.channelPrefix(channel)}:state`;
  }

  /** The current lease token of the channel (`<counter>:<owner>`), expiring with the lease. */
  lease(channel: string): string {
    return `${this.channelPrefix(channel)}:lease`;
  }

  /** Counts lease acquisitions, so every token differs from the ones before it. */
  fence(channel: string): string {
    return `${this.channelPrefix(channel)}:fence`;
  }

  status(channel: string): string {
    return `${this.channelPrefix(channel)}:status`;
  }

  /** The HyperLogLog of the client ids that fetched `rendition` in time bucket `bucket`. */
  listeners(channel: string, rendition: string, bucket: number): string {
    requirePart('rendition', rendition, /[:\s]/);
    return `${this.channelPrefix(channel)}:listeners:${rendition}:${listenerBucket(bucket)}`;
  }

  /** The channel's now playing (JSON), kept until replaced. */
  nowPlaying(channel: string): string {
    return `${this.channelPrefix(channel)}:now-playing`;
  }

  /** Every origin's last report of its open connections on the channel, with its expiry. */
  connections(channel: string): string {
    return `${this.channelPrefix(channel)}:connections`;
  }

  /** Content key `keyId` of an encrypted channel (docs/architecture.md, "Content encryption"). */
  contentKey(channel: string, keyId: number): string {
    return `${this.channelPrefix(channel)}:key:${contentKeyId(keyId)}`;
  }

  /** The records of the channel's recorded sessions (src/recording), one hash field per session. */
  recordings(channel: string): string {
    return `${this.channelPrefix(channel)}:recordings`;
  }

  /** Event ids appended once per key (a recorded session's announcement), beside the recordings. */
  announced(channel: string): string {
    return `${this.channelPrefix(channel)}:announced`;
  }

  /**
   * The events stream. The one key without a channel hash tag, on purpose: consumers follow
   * every channel with one XREAD, and it is only ever written alone (one key, one slot).
   */
  events(): string {
    return `${this.prefix}:events`;
  }

  /**
   * Pub/sub channel on which each publish announces the channel id it updated. Not a key:
   * no hash tag needed (a Cluster forwards PUBLISH to every node).
   */
  updates(): string {
    return `${this.prefix}:updates`;
  }

  /** Pub/sub channel on which each `putNowPlaying` announces the channel id it changed. */
  nowPlayingUpdates(): string {
    return `${this.prefix}:now-playing-updates`;
  }

  private channelPrefix(channel: string): string {
    requirePart('channel', channel, /[{}:\s]/);
    return `${this.prefix}:{${channel}}`;
  }
}

/** Hash field of the playlists hash holding the body of playlist `name`. */
export function playlistBodyField(name: string): string {
  requirePart('playlist name', name, /#|\s/);
  return name;
}

/** Hash field of the playlists hash holding the ETag of playlist `name`. */
export function playlistEtagField(name: string): string {
  return `${playlistBodyField(name)}${ETAG_FIELD_SUFFIX}`;
}

function requirePart(what: string, value: string, forbidden: RegExp): void {
  if (value === '' || forbidden.test(value)) {
    throw new RangeError(`invalid ${what} for a Redis key: ${JSON.stringify(value)}`);
  }
}
