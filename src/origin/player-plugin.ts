/**
 * The web player of the origin, as a Fastify plugin registered after the origin plugin:
 *   GET/HEAD /                    the player page (src/origin/player/index.html)
 *   GET/HEAD /_player/*           its script and style sheet (src/origin/player/)
 *   GET/HEAD /_player/hls/*       hls.js's light build, from the installed npm package
 *   GET/HEAD /channels.json       the channels, their renditions, whether each is live, and
 *                                 what each has on air (docs/architecture.md, "Now playing")
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
import { parseChannelState } from '../hls/sequence-state.js';
import { DEFAULT_STORE_TIMEOUT_MS, readFromStore } from '../http/store-read.js';
import { parseNowPlaying } from '../media/now-playing.js';
import type { NowPlayingStore, OriginStore } from '../store/store.js';
import type { OriginChannel } from './origin-options.js';

export interface PlayerOptions {
  store: Pick<OriginStore, 'getState'> & Pick<NowPlayingStore, 'getNowPlaying'>;
  /** A store read slower than this answers 503; default 2000 ms, as for the origin. */
  storeTimeoutMs?: number;
}

/** The channel list the page shows; URLs are relative to the page. */
export interface ChannelListing {
  channels: ListedChannel[];
}

export interface ListedChannel {
  id: string;
  /** Master playlist, e.g. `fip/fip.m3u8`. */
  url: string;
  renditions: { id: string; url: string }[];
  /** True while the newest segment ended at most LIVE_WITHIN_TARGET_DURATIONS × TD ago. */
  live: boolean;
  /** Seconds since the newest segment's audio ended (by its PROGRAM-DATE-TIME); null when none is known. */
  lastSegmentAgeSeconds: number | null;
  /** What the channel has on air (src/media/now-playing.ts); null when nothing was set. */
  nowPlaying: ListedNowPlaying | null;
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
/** The page and its assets change with a release: revalidated after a few seconds. */
const PAGE_MAX_AGE = '10s';
/** hls.js changes only with an upgrade of the package; a day of caching, then revalidation. */
const HLS_MAX_AGE = '1d';
/** Live status moves with every segment and the now playing with every track: players and CDNs refetch it every few seconds. */
const LISTING_CACHE_CONTROL = 'public, max-age=2';
/** How long one reading of the channels' states answers /channels.json. */
const LISTING_MEMO_MS = 1000;
/** A new segment appears at most 1.5 × TD after the previous one (docs/architecture.md, Failure model); twice that is an outage. */
const LIVE_WITHIN_TARGET_DURATIONS = 3;

const PLAYER_DIR = join(packageRoot(), 'src', 'origin', 'player');
const HLS_DIR = dirname(createRequire(import.meta.url).resolve(`hls.js/dist/${HLS_SCRIPT}`));

async function registerPlayer(fastify: FastifyInstance, options: PlayerOptions): Promise<void> {
  const { store } = options;
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;

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
    allowedPath: (pathName) => pathName === `/${HLS_SCRIPT}`,
  });

  fastify.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: (request, reply) => reply.sendFile('index.html'),
  });

  /**
   * The listing reads every channel's state: it is shared by the requests of one second (a
   * cache-busting query string must not fan out to the store).
   */
  let recent: { at: number; channels: Promise<ListedChannel[]> } | undefined;
  const listing = (): Promise<ListedChannel[]> => {
    const now = Date.now();
    if (recent && now - recent.at < LISTING_MEMO_MS) return recent.channels;
    const channels = Promise.all(
      fastify.onairOrigin.channels().map(async (channel) => {
        const [state, nowPlaying] = await Promise.all([
          readFromStore(`state ${channel.id}`, () => store.getState(channel.id), storeTimeoutMs),
          readFromStore(`now playing ${channel.id}`, () => store.getNowPlaying(channel.id), storeTimeoutMs),
        ]);
        return listChannel(channel, state, nowPlaying, now);
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

/** One channel's entry, from its stored sequence state (src/hls/sequence-state.ts) and now playing at wall-clock `now`. */
function listChannel(channel: OriginChannel, stateText: string | null, nowPlayingText: string | null, now: number): ListedChannel {
  const state = parseChannelState(stateText);
  const newest = state?.window.at(-1);
  let lastSegmentAgeSeconds: number | null = null;
  if (newest) {
    const endedAt = newest.programDateTime + newest.durationSeconds * 1000;
    // Clocks of packager and origin differ a little: a segment never ends in the future.
    lastSegmentAgeSeconds = Math.round(Math.max(0, now - endedAt) / 100) / 10;
  }
  const liveWithinSeconds = state ? LIVE_WITHIN_TARGET_DURATIONS * state.targetDuration : 0;
  return {
    id: channel.id,
    url: `${channel.id}/${channel.id}.m3u8`,
    renditions: channel.renditions.map((id) => ({ id, url: `${channel.id}/${channel.id}_${id}.m3u8` })),
    live: lastSegmentAgeSeconds !== null && lastSegmentAgeSeconds <= liveWithinSeconds,
    lastSegmentAgeSeconds,
    nowPlaying: listedNowPlaying(nowPlayingText),
  };
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
