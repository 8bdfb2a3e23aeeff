/**
 * The web player of the origin, as a Fastify plugin registered after the origin plugin:
 *   GET/HEAD /                    the player page (src/origin/player/index.html)
 *   GET/HEAD /_player/*           its script and style sheet (src/origin/player/)
 *   GET/HEAD /_player/hls/*       hls.js's light build, from the installed npm package, and its
 *                                 full build (EME), which the page loads only for cbcs channels
 *   GET/HEAD /_player/dash/*      dash.js's media player build (fmp4 channels' MPDs), likewise, and
 *                                 its full build (EME), loaded only for cbcs channels
 *   GET/HEAD /channels.json       the channels, their renditions and codecs, their container and
 *                                 DASH MPD, whether each is live, what each has on air, and
 *                                 whether it is signed and encrypted
 *                                 (docs/architecture.md, "Now playing", "Player page")
 *                                 (docs/architecture.md, "Player page and encrypted channels")
 * The page takes a channel's token from a field or from `#token=` / `?token=` on its own URL; a
 * page URL with a query is answered `private, no-store`, and the page is sent with
 * `Referrer-Policy: no-referrer`, so a token in its URL reaches neither a shared cache nor a Referer.
 * `_player` is not a valid channel id, so these paths never shadow a channel's playlists.
 * Nothing is loaded from another site but a now playing's artwork. Errors (404, 503 while the
 * store is down) are the origin's JSON answers, from the handlers the origin plugin installs.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { OnairError } from '../errors.js';
import { mpdName } from '../dash/channel-mpd.js';
import { parseMasterPlaylist } from '../hls/playlist/master-playlist.js';
import { masterPlaylistName } from '../hls/published-names.js';
import { parseChannelState } from '../hls/sequence-state.js';
import { DEFAULT_STORE_TIMEOUT_MS, readFromStore } from '../http/store-read.js';
import { parseNowPlaying } from '../media/now-playing.js';
import type { NowPlayingStore, OriginStore } from '../store/store.js';
import { CLEARKEY_LICENSE_ROUTE } from './content-keys-plugin.js';
import type { OriginChannel } from './origin-options.js';

export interface PlayerOptions {
  store: Pick<OriginStore, 'getState'> & Pick<NowPlayingStore, 'getNowPlaying'>;
  /** A store read slower than this answers 503; default 2000 ms, as for the origin. */
  storeTimeoutMs?: number;
  /** Ids of the channels with `access: signed` (called per listing); none by default. */
  signedChannels?: () => ReadonlySet<string>;
  /** Ids of the channels with `encryption` (called per listing); none by default. */
  encryptedChannels?: () => ReadonlySet<string>;
  /** The `encryption: cbcs` channels (their key rotations, unused here); the other encrypted ones are `aes-128`. */
  cbcsChannels?: () => ReadonlyMap<string, number>;
}

/** The channel list the page shows; URLs are relative to the page. */
export interface ChannelListing {
  channels: ListedChannel[];
}

export interface ListedChannel {
  id: string;
  /** Master playlist, e.g. `fip/fip.m3u8`. */
  url: string;
  /** Each rendition with its RFC 6381 codecs (`mp4a.40.2`) as the master or MPD lists it; null while unpublished or unlisted. */
  renditions: ListedRendition[];
  /** `fmp4` while the channel publishes a DASH MPD, `ts` while it publishes a master playlist only, null before either. */
  container: 'ts' | 'fmp4' | null;
  /** The live MPD, e.g. `fip/fip.mpd`, on fmp4 channels; null otherwise. */
  dashUrl: string | null;
  /** True while the newest segment ended at most LIVE_WITHIN_TARGET_DURATIONS × TD ago. */
  live: boolean;
  /** Seconds since the newest segment's audio ended (by its PROGRAM-DATE-TIME); null when none is known. */
  lastSegmentAgeSeconds: number | null;
  /** What the channel has on air (src/media/now-playing.ts); null when nothing was set. */
  nowPlaying: ListedNowPlaying | null;
  /** `signed`: every URL of the channel needs its `?token=` (src/origin/signed-access.ts). */
  access: 'public' | 'signed';
  /** The channel's `encryption`, null when clear. */
  encryption: 'aes-128' | 'cbcs' | null;
  /**
   * A cbcs channel's EXT-X-KEY formats as its published media playlist carries them (`clearkey`:
   * KEYFORMAT="org.w3.clearkey", what hls.js's EME path plays; `identity`), as `hlsKeyFormats`
   * names them; null for other channels and before a media playlist is published.
   */
  hlsKeyFormats: ('identity' | 'clearkey')[] | null;
  /** A cbcs channel's ClearKey license route, e.g. `fip/clearkey` (the player adds `?token=`); null otherwise. */
  licenseUrl: string | null;
}

export interface ListedRendition {
  id: string;
  /** Its media playlist, e.g. `fip/fip_hifi.m3u8`. */
  url: string;
  codecs: string | null;
}

/** A now playing as listeners see it: the fields a page shows, each present only when set. */
export interface ListedNowPlaying {
  title: string;
  artist?: string;
  album?: string;
  artworkUrl?: string;
}

const PLAYER_PREFIX = '/_player/';
const HLS_PREFIX = `${PLAYER_PREFIX}hls/`;
const HLS_SCRIPT = 'hls.light.min.js';
/** hls.js's full build, with its EME controller: about 0.6 MB, loaded by the page only to play a cbcs channel's ClearKey playlists. */
const HLS_FULL_SCRIPT = 'hls.min.js';
/** The page and its assets change with a release: revalidated after a few seconds. */
const PAGE_MAX_AGE = '10s';
/** The page asked for with a query string (`/?token=…`): kept by no cache. */
const PAGE_WITH_QUERY_CACHE_CONTROL = 'private, no-store';
/** hls.js changes only with an upgrade of the package; a day of caching, then revalidation. */
const HLS_MAX_AGE = '1d';
const DASH_PREFIX = `${PLAYER_PREFIX}dash/`;
/** dash.js's player without DRM, MSS, offline and reporting (not used here): about 0.7 MB, loaded by the page only to play DASH. */
const DASH_SCRIPT = 'dash.mediaplayer.min.js';
/** dash.js's full build (its protection controller: EME, ClearKey): about 0.8 MB, loaded by the page only to play a cbcs channel's MPD. */
const DASH_FULL_SCRIPT = 'dash.all.min.js';
/** dash.js also changes only with an upgrade of the package. */
const DASH_MAX_AGE = HLS_MAX_AGE;
/** Live status moves with every segment and the now playing with every track: players and CDNs refetch it every few seconds. */
const LISTING_CACHE_CONTROL = 'public, max-age=2';
/** How long one reading of the channels' states answers /channels.json. */
const LISTING_MEMO_MS = 1000;
/** A new segment appears at most 1.5 × TD after the previous one (docs/architecture.md, Failure model); twice that is an outage. */
const LIVE_WITHIN_TARGET_DURATIONS = 3;

const PLAYER_DIR = join(packageRoot(), 'src', 'origin', 'player');
const HLS_DIR = dirname(createRequire(import.meta.url).resolve(`hls.js/dist/${HLS_SCRIPT}`));
/** The package exports only its full build (`require`: dist/modern/umd/dash.all.min.js); the media player build sits beside it. */
const DASH_DIR = dirname(createRequire(import.meta.url).resolve('dashjs'));

async function registerPlayer(fastify: FastifyInstance, options: PlayerOptions): Promise<void> {
  const { store } = options;
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const signedChannels = options.signedChannels ?? (() => NO_CHANNELS);
  const encryptedChannels = options.encryptedChannels ?? (() => NO_CHANNELS);
  const cbcsChannels = options.cbcsChannels ?? (() => NO_CBCS_CHANNELS);

  await fastify.register(fastifyStatic, {
    root: PLAYER_DIR,
    prefix: PLAYER_PREFIX,
    index: false,
    maxAge: PAGE_MAX_AGE,
    // Small files: no ranges (@fastify/static would answer a malformed Range with a bare 416).
    acceptRanges: false,
    // The page uses relative URLs, so it is served at `/` only, never as /_player/index.html.
    allowedPath: (pathName, root, request) => pathName !== '/index.html' || request.routeOptions.url === '/',
  });
  await fastify.register(fastifyStatic, {
    root: HLS_DIR,
    prefix: HLS_PREFIX,
    decorateReply: false,
    index: false,
    maxAge: HLS_MAX_AGE,
    acceptRanges: false,
    allowedPath: (pathName) => pathName === `/${HLS_SCRIPT}` || pathName === `/${HLS_FULL_SCRIPT}`,
  });
  await fastify.register(fastifyStatic, {
    root: DASH_DIR,
    prefix: DASH_PREFIX,
    decorateReply: false,
    index: false,
    maxAge: DASH_MAX_AGE,
    acceptRanges: false,
    allowedPath: (pathName) => pathName === `/${DASH_SCRIPT}` || pathName === `/${DASH_FULL_SCRIPT}`,
  });

  fastify.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: (request, reply) => {
      // Never a token in a Referer: not to this origin's CDN, nor to an artwork's site.
      reply.header('referrer-policy', 'no-referrer');
      // `/?token=…`: a URL holding a token stays out of shared caches (a `#token=` never reaches the origin).
      if (!request.url.includes('?')) return reply.sendFile('index.html');
      return reply.header('cache-control', PAGE_WITH_QUERY_CACHE_CONTROL).sendFile('index.html', { cacheControl: false });
    },
  });

  /**
   * The listing reads every channel's state: it is shared by the requests of one second (a
   * cache-busting query string must not fan out to the store).
   */
  let recent: { at: number; channels: Promise<ListedChannel[]> } | undefined;
  const listing = (): Promise<ListedChannel[]> => {
    const now = Date.now();
    if (recent && now - recent.at < LISTING_MEMO_MS) return recent.channels;
    const signed = signedChannels();
    const encrypted = encryptedChannels();
    const cbcs = cbcsChannels();
    const channels = Promise.all(
      fastify.onairOrigin.channels().map(async (channel) => {
        const protection: ChannelProtection = {
          signed: signed.has(channel.id),
          encryption: cbcs.has(channel.id) ? 'cbcs' : encrypted.has(channel.id) ? 'aes-128' : null,
        };
        // A cbcs channel's key formats are read from its first rendition's media playlist.
        const keyed = protection.encryption === 'cbcs' ? channel.renditions[0] : undefined;
        // The master and MPD come from the origin's playlist memory cache (re-read on publish).
        const [state, nowPlaying, master, mpd, media] = await Promise.all([
          readFromStore(`state ${channel.id}`, () => store.getState(channel.id), storeTimeoutMs),
          readFromStore(`now playing ${channel.id}`, () => store.getNowPlaying(channel.id), storeTimeoutMs),
          fastify.onairOrigin.playlist(channel.id, masterPlaylistName(channel.id)),
          fastify.onairOrigin.playlist(channel.id, mpdName(channel.id)),
          keyed === undefined ? null : fastify.onairOrigin.playlist(channel.id, `${channel.id}_${keyed}.m3u8`),
        ]);
        const manifests = { master: master?.body.toString('utf8') ?? null, mpd: mpd?.body.toString('utf8') ?? null, media: media?.body.toString('utf8') ?? null };
        return listChannel(channel, state, nowPlaying, manifests, now, protection);
      }),
    );
    recent = { at: now, channels };
    // A failed read is not shared beyond the requests already waiting for it.
    channels.catch(() => {
      if (recent?.channels === channels) recent = undefined;
    });
    return channels;
  };

  fastify.route({
    method: ['GET', 'HEAD'],
    url: '/channels.json',
    handler: async (request, reply) => {
      const channels = await listing();
      return reply.header('cache-control', LISTING_CACHE_CONTROL).send({ channels } satisfies ChannelListing);
    },
  });
}

const NO_CHANNELS: ReadonlySet<string> = new Set();
const NO_CBCS_CHANNELS: ReadonlyMap<string, number> = new Map();

/** What the configuration says of a channel's access and encryption. */
interface ChannelProtection {
  signed: boolean;
  encryption: 'aes-128' | 'cbcs' | null;
}

/**
 * One channel's entry, from its stored sequence state (src/hls/sequence-state.ts), now playing
 * and published master playlist and MPD (and a cbcs channel's media playlist; null when absent)
 * at wall-clock `now`.
 */
export function listChannel(
  channel: OriginChannel,
  stateText: string | null,
  nowPlayingText: string | null,
  manifests: { master: string | null; mpd: string | null; media?: string | null },
  now: number,
  protection: ChannelProtection = { signed: false, encryption: null },
): ListedChannel {
  const state = parseChannelState(stateText);
  const newest = state?.window.at(-1);
  let lastSegmentAgeSeconds: number | null = null;
  if (newest) {
    const endedAt = newest.programDateTime + newest.durationSeconds * 1000;
    // Clocks of packager and origin differ a little: a segment never ends in the future.
    lastSegmentAgeSeconds = Math.round(Math.max(0, now - endedAt) / 100) / 10;
  }
  const masterCodecs = variantCodecs(manifests.master);
  const mpdCodecs = representationCodecs(manifests.mpd);
  const liveWithinSeconds = state ? LIVE_WITHIN_TARGET_DURATIONS * state.targetDuration : 0;
  return {
    id: channel.id,
    url: `${channel.id}/${channel.id}.m3u8`,
    renditions: channel.renditions.map((id) => {
      const name = `${channel.id}_${id}.m3u8`;
      return { id, url: `${channel.id}/${name}`, codecs: masterCodecs.get(name) ?? mpdCodecs.get(id) ?? null };
    }),
    container: manifests.mpd !== null ? 'fmp4' : manifests.master !== null ? 'ts' : null,
    dashUrl: manifests.mpd !== null ? `${channel.id}/${mpdName(channel.id)}` : null,
    live: lastSegmentAgeSeconds !== null && lastSegmentAgeSeconds <= liveWithinSeconds,
    lastSegmentAgeSeconds,
    nowPlaying: listedNowPlaying(nowPlayingText),
    access: protection.signed ? 'signed' : 'public',
    encryption: protection.encryption,
    hlsKeyFormats: protection.encryption === 'cbcs' ? keyFormats(manifests.media ?? null) : null,
    licenseUrl: protection.encryption === 'cbcs' ? `${channel.id}/${CLEARKEY_LICENSE_NAME}` : null,
  };
}

/** The ClearKey license route's last path segment (src/origin/content-keys-plugin.ts, CLEARKEY_LICENSE_ROUTE). */
const CLEARKEY_LICENSE_NAME = CLEARKEY_LICENSE_ROUTE.slice(CLEARKEY_LICENSE_ROUTE.lastIndexOf('/') + 1);

/** onair's KEYFORMATs (src/hls/playlist/media-segment-tags.ts) by their `hlsKeyFormats` names. */
const KEY_FORMAT_NAMES = new Map<string, 'identity' | 'clearkey'>([
  ['identity', 'identity'],
  ['org.w3.clearkey', 'clearkey'],
]);

/** The key formats of a media playlist's EXT-X-KEY tags, each once, in order; null without a playlist. */
function keyFormats(media: string | null): ('identity' | 'clearkey')[] | null {
  if (media === null) return null;
  const formats = new Set<'identity' | 'clearkey'>();
  for (const tag of media.matchAll(/^#EXT-X-KEY:METHOD=SAMPLE-AES,([^\n]*)/gm)) {
    // No KEYFORMAT is `identity` (RFC 8216 §4.3.2.4).
    const name = KEY_FORMAT_NAMES.get(/KEYFORMAT="([^"]*)"/.exec(tag[1]!)?.[1] ?? 'identity');
    if (name !== undefined) formats.add(name);
  }
  return [...formats];
}

/** Media playlist name → CODECS of the variants of a stored master playlist (none for text that is not one). */
function variantCodecs(master: string | null): Map<string, string> {
  const codecs = new Map<string, string>();
  if (master === null) return codecs;
  try {
    for (const variant of parseMasterPlaylist(master).variants) {
      if (variant.codecs !== undefined) codecs.set(variant.uri, variant.codecs);
    }
  } catch {
    // The store is trusted, but not blindly: a master that does not parse lists no codecs.
  }
  return codecs;
}

/**
 * Representation id → codecs of its AdaptationSet in a stored MPD (src/dash/mpd-writer.ts writes
 * `codecs` on the AdaptationSet, Representations inside it): the renditions a master leaves out,
 * e.g. MP3 ones of fmp4 channels (docs/architecture.md, "Player page").
 */
function representationCodecs(mpd: string | null): Map<string, string> {
  const codecs = new Map<string, string>();
  if (mpd === null) return codecs;
  for (const set of mpd.matchAll(/<AdaptationSet\b([^>]*)>([\s\S]*?)<\/AdaptationSet>/g)) {
    const setCodecs = /\scodecs="([^"]*)"/.exec(set[1]!)?.[1];
    for (const representation of set[2]!.matchAll(/<Representation\b([^>]*)>/g)) {
      const id = /\sid="([^"]*)"/.exec(representation[1]!)?.[1];
      const own = /\scodecs="([^"]*)"/.exec(representation[1]!)?.[1];
      if (id !== undefined && (own ?? setCodecs) !== undefined) codecs.set(id, (own ?? setCodecs)!);
    }
  }
  return codecs;
}

/** The listed fields of a stored now playing (parsed and checked again: the store is trusted, but not blindly). */
function listedNowPlaying(text: string | null): ListedNowPlaying | null {
  const nowPlaying = parseNowPlaying(text);
  if (nowPlaying === null) return null;
  const { title, artist, album, artworkUrl } = nowPlaying;
  return { title, ...(artist === undefined ? {} : { artist }), ...(album === undefined ? {} : { album }), ...(artworkUrl === undefined ? {} : { artworkUrl }) };
}

/** The directory holding onair's package.json: this module runs from src/ (tests) or dist/src/ (installed). */
function packageRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(directory, 'package.json'))) {
    const parent = dirname(directory);
    if (parent === directory) throw new OnairError('ONAIR_PLAYER_MISSING', 'cannot find the package root of the player page');
    directory = parent;
  }
  return directory;
}

export const playerPlugin = fp(registerPlayer, { name: 'onair-player', fastify: '5.x', dependencies: ['onair-origin'] });
export default playerPlugin;
