/**
 * The control API's now playing (docs/architecture.md, Now playing), under the API's bearer
 * auth (registered inside control-api.ts):
 *   PUT /api/channels/{ch}/now-playing  {"title":…,"artist"?,"album"?,"artworkUrl"?,"durationSeconds"?}
 *   GET /api/channels/{ch}/now-playing
 * The update is cleaned by src/media/now-playing.ts (control characters stripped, text over
 * MAX_NOW_PLAYING_TEXT characters truncated) and stored for every origin; the answer is what
 * was stored. The body is read as bytes and decoded with a fatal UTF-8 decoder: JSON.parse
 * alone would replace invalid bytes with U+FFFD and air them.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ChannelConfig } from '../config/config-schema.js';
import { isOnairError, OnairError } from '../errors.js';
import { sendError, sendOnairError } from '../http/error-replies.js';
import { readFromStore } from '../http/store-read.js';
import { isNowPlayingProblem, MAX_ARTWORK_URL, nowPlayingFrom, parseNowPlaying, serializeNowPlaying } from '../media/now-playing.js';
import type { NowPlayingStore } from '../store/store.js';

export interface NowPlayingRoutesOptions {
  store: Pick<NowPlayingStore, 'putNowPlaying' | 'getNowPlaying'>;
  channels: () => readonly ChannelConfig[];
  storeTimeoutMs: number;
}

/** A now playing update is a few hundred bytes; this leaves room for long UTF-8 text and nothing more. */
const BODY_LIMIT_BYTES = 16 * 1024;

/** The fields a client sets (the body of PUT); the stored view adds `setAt`. */
const nowPlayingFields = {
  title: { type: 'string' },
  artist: { type: 'string' },
  album: { type: 'string' },
  artworkUrl: { type: 'string' },
  durationSeconds: { type: 'number' },
} as const;
const nowPlayingView = {
  type: 'object',
  properties: { ...nowPlayingFields, setAt: { type: 'number', description: 'when it was set, in milliseconds since the epoch' } },
} as const;
const errorBody = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const channelParams = { type: 'object', required: ['channel'], properties: { channel: { type: 'string', maxLength: 32 } } } as const;

export async function nowPlayingRoutes(fastify: FastifyInstance, options: NowPlayingRoutesOptions): Promise<void> {
  // This plugin's own JSON parser: bytes first, refused unless valid UTF-8.
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: BODY_LIMIT_BYTES }, (request, body, done) => {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body as Buffer);
    } catch {
      done(new OnairError('ONAIR_TEXT_ENCODING', 'the body is not valid UTF-8', { where: 'body' }), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new OnairError('ONAIR_NOW_PLAYING_INVALID', 'the body is not JSON', { where: 'body' }), undefined);
    }
  });
  fastify.setErrorHandler((error, request, reply) => {
    if (isOnairError(error)) return sendOnairError(reply, error);
    throw error;
  });

  const known = (reply: FastifyReply, id: string): boolean => {
    if (options.channels().some((channel) => channel.id === id)) return true;
    sendError(reply, 404, 'no such channel');
    return false;
  };

  fastify.put<{ Params: { channel: string }; Body: unknown }>(
    '/channels/:channel/now-playing',
    {
      schema: {
        summary: `Set what the channel plays now: every format shows it (text over the documented length is truncated; artworkUrl at most ${MAX_ARTWORK_URL} characters)`,
        params: channelParams,
        body: { type: 'object', required: ['title'], properties: nowPlayingFields },
        response: { 200: nowPlayingView, 400: errorBody, 404: errorBody },
      },
      // Checked by nowPlayingFrom, which names the field and cleans the text.
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
      const channel = request.params.channel;
      if (!known(reply, channel)) return reply;
      const nowPlaying = nowPlayingFrom(request.body, Date.now());
      if (isNowPlayingProblem(nowPlaying)) {
        return sendOnairError(reply, new OnairError('ONAIR_NOW_PLAYING_INVALID', nowPlaying.message, { where: nowPlaying.field || 'body' }));
      }
      await readFromStore(`now playing ${channel}`, () => options.store.putNowPlaying(channel, serializeNowPlaying(nowPlaying)), options.storeTimeoutMs);
      return nowPlaying;
    },
  );

  fastify.get<{ Params: { channel: string } }>(
    '/channels/:channel/now-playing',
    { schema: { summary: 'What the channel plays now, as last set (404 before anything was set)', params: channelParams, response: { 200: nowPlayingView, 404: errorBody } } },
    async (request, reply) => {
      const channel = request.params.channel;
      if (!known(reply, channel)) return reply;
      const nowPlaying = parseNowPlaying(await readFromStore(`now playing ${channel}`, () => options.store.getNowPlaying(channel), options.storeTimeoutMs));
      if (!nowPlaying) return sendError(reply, 404, 'nothing has been set as playing on this channel');
      return nowPlaying;
    },
  );
}
