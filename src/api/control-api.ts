/**
 * The control API (JSON under `/api`, bearer-token auth, OpenAPI at `/api/docs/json`):
 *   GET    /api/channels                  every channel with its live status
 *   GET    /api/channels/{ch}             one channel
 *   PUT    /api/channels/{ch}/input       pin an input on air (manual switch) {"input":"backup"}
 *   DELETE /api/channels/{ch}/input       release the pin: priorities rule again
 *   POST   /api/channels/{ch}/recording   start or stop recording a session {"action":"start"|"stop"}
 *   POST   /api/reload                    re-read the config file and apply the channel changes
 *   PUT    /api/channels/{ch}/now-playing set what plays now; GET reads it (now-playing-routes.ts)
 * Status comes from the store (what the leading packager wrote), so any process sharing the
 * store answers the reads; a switch needs the process that leads the channel (409 elsewhere,
 * a hot standby included: its selector is not what listeners hear).
 * Registered as an encapsulated plugin: its auth hook and OpenAPI cover these routes only.
 * Each client address may make `requestsPerMinute` requests a minute (@fastify/rate-limit,
 * before the token is checked); more get 429 ONAIR_RATE_LIMITED with Retry-After.
 */
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ChannelConfig } from '../config/config-schema.js';
import { isOnairError, OnairError } from '../errors.js';
import { parseChannelState } from '../hls/sequence-state.js';
import { BearerTokens } from '../http/bearer-auth.js';
import { sendError, sendOnairError } from '../http/error-replies.js';
import { DEFAULT_STORE_TIMEOUT_MS, readFromStore } from '../http/store-read.js';
import type { ChannelStatus } from '../pipeline/channel-pipeline.js';
import type { IngestService } from '../pipeline/ingest-service.js';
import type { RecordingRecord } from '../recording/recording-record.js';
import type { ChannelStatusStore, NowPlayingStore, OriginStore } from '../store/store.js';
import { nowPlayingRoutes } from './now-playing-routes.js';

export interface ReloadResult {
  added: string[];
  removed: string[];
  restarted: string[];
}

export interface ControlApiOptions {
  tokens: readonly string[];
  store: Pick<ChannelStatusStore, 'getStatus'> & Pick<OriginStore, 'getState'> & Pick<NowPlayingStore, 'putNowPlaying' | 'getNowPlaying'>;
  /** The channels as configured now (they change on reload). */
  channels: () => readonly ChannelConfig[];
  /** The ingest of this process, when it runs one (manual switches need it). */
  ingest: () => IngestService | undefined;
  /** Listener counts, when this process runs an origin. */
  listeners: () => ListenerCountSource | undefined;
  /** Re-reads the config file and applies it; absent when the process has no config file. */
  reload?: () => Promise<ReloadResult>;
  storeTimeoutMs?: number;
  /** Requests per minute and client address (`origin.limits.apiRequestsPerMinute`); default 600. */
  requestsPerMinute?: number;
}

/** Distinct listeners per channel, in total and per rendition. */
export interface ListenerCounts {
  channels: Record<string, { total: number; renditions: Record<string, number> }>;
}

/** What the API reads of the origin's listener counter (the origin's `onairListeners`). */
export interface ListenerCountSource {
  counts(): Promise<ListenerCounts>;
}

const channelView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    renditions: { type: 'array', items: { type: 'string' } },
    lowLatency: { type: 'boolean' },
    access: { type: 'string', enum: ['public', 'signed'] },
    activeInput: { type: ['string', 'null'], description: 'input on air, `fallback` for the safety source, null before the first audio' },
    pinned: { type: ['string', 'null'], description: 'input pinned by an operator' },
    reason: { type: ['string', 'null'], description: 'why the source on air was chosen' },
    since: { type: ['string', 'null'], format: 'date-time' },
    inputs: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, healthy: { type: 'boolean' } } } },
    leader: { type: ['string', 'null'], description: 'the packager writing the channel (host:pid:random)' },
    leaderAdmin: { type: ['string', 'null'], description: "the leading packager's admin listener (its /metrics and /api), as it bound it" },
    lastSegmentAgeSeconds: { type: ['number', 'null'], description: 'now minus the end of the newest segment (by PROGRAM-DATE-TIME)' },
    nextMsn: { type: ['integer', 'null'] },
    listeners: {
      type: ['object', 'null'],
      description: 'distinct listeners over the last 1–2 target durations, all origins together (null where this process runs no origin)',
      properties: { total: { type: 'integer' }, renditions: { type: 'object', additionalProperties: { type: 'integer' } } },
    },
  },
} as const;

const errorBody = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } } as const;
const channelParams = { type: 'object', required: ['channel'], properties: { channel: { type: 'string', maxLength: 32 } } } as const;

export async function controlApi(fastify: FastifyInstance, options: ControlApiOptions): Promise<void> {
  const tokens = new BearerTokens(options.tokens);
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;

  // An instance hook added before the token check's, so guessing tokens is limited too.
  await fastify.register(rateLimit, {
    global: false,
    max: options.requestsPerMinute ?? 600,
    timeWindow: 60_000,
    errorResponseBuilder: (request, context) =>
      new OnairError('ONAIR_RATE_LIMITED', `at most ${context.max} API requests a minute per client address; retry in ${context.after}`),
  });
  fastify.addHook('onRequest', fastify.rateLimit());
  // The limiter's refusal in the API's JSON shape; every other error goes on to the parent handler.
  fastify.setErrorHandler((error, request, reply) => {
    if (isOnairError(error, 'ONAIR_RATE_LIMITED')) return sendOnairError(reply, error);
    throw error;
  });

  await fastify.register(swagger, {
    openapi: {
      info: { title: 'onair control API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  fastify.get('/docs/json', { schema: { hide: true } }, async () => fastify.swagger());

  fastify.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url === `${fastify.prefix}/docs/json`) return;
    const verdict = tokens.check(request.headers.authorization);
    if (verdict === 'missing') {
      return sendError(reply, 401, 'a bearer token is required', { headers: { 'www-authenticate': 'Bearer realm="onair"', 'cache-control': 'no-store' } });
    }
    if (verdict === 'forbidden') return sendError(reply, 403, 'this token is not allowed', { headers: { 'cache-control': 'no-store' } });
    reply.header('cache-control', 'no-store');
  });

  const describe = async (channel: ChannelConfig, counts: ListenerCounts | null): Promise<Record<string, unknown>> => {
    const [statusText, stateText] = await Promise.all([
      readFromStore(`status ${channel.id}`, () => options.store.getStatus(channel.id), storeTimeoutMs),
      readFromStore(`state ${channel.id}`, () => options.store.getState(channel.id), storeTimeoutMs),
    ]);
    const status = parseStatus(statusText);
    const state = parseChannelState(stateText);
    const last = state?.window.at(-1);
    return {
      id: channel.id,
      renditions: channel.renditions.map((rendition) => rendition.id),
      lowLatency: channel.lowLatency,
      access: channel.access,
      activeInput: status?.activeInput ?? null,
      pinned: status?.pinned ?? null,
      reason: status?.reason ?? null,
      since: status ? new Date(status.since).toISOString() : null,
      inputs: status?.inputs ?? channel.inputs.map((input) => ({ id: input.id, healthy: false })),
      leader: status?.leader ?? null,
      leaderAdmin: status?.admin ?? null,
      lastSegmentAgeSeconds: last ? (Date.now() - (last.programDateTime + last.durationSeconds * 1000)) / 1000 : null,
      nextMsn: state?.nextMsn ?? null,
      listeners: counts?.channels[channel.id] ?? null,
    };
  };
  const listenerCounts = async (): Promise<ListenerCounts | null> => (await options.listeners()?.counts().catch(() => null)) ?? null;
  const findChannel = (id: string): ChannelConfig | undefined => options.channels().find((channel) => channel.id === id);

  fastify.get(
    '/channels',
    { schema: { summary: 'Every channel with its live status', response: { 200: { type: 'object', properties: { channels: { type: 'array', items: channelView } } } } } },
    async () => {
      const counts = await listenerCounts();
      return { channels: await Promise.all(options.channels().map((channel) => describe(channel, counts))) };
    },
  );

  fastify.get<{ Params: { channel: string } }>(
    '/channels/:channel',
    { schema: { summary: 'One channel', params: channelParams, response: { 200: channelView, 404: errorBody } } },
    async (request, reply) => {
      const channel = findChannel(request.params.channel);
      if (!channel) return sendError(reply, 404, 'no such channel');
      return describe(channel, await listenerCounts());
    },
  );

  const pin = (reply: FastifyReply, channelId: string, input: string | undefined): FastifyReply | { channel: string; pinned: string | null } => {
    if (!findChannel(channelId)) return sendError(reply, 404, 'no such channel');
    const running = options.ingest()?.channels.get(channelId);
    if (!running) return sendError(reply, 409, "this process does not run the channel's ingest; ask the one that does");
    try {
      running.pin(input);
    } catch (error) {
      if (isOnairError(error)) return sendOnairError(reply, error);
      throw error;
    }
    return { channel: channelId, pinned: input ?? null };
  };
  const pinResponse = { type: 'object', properties: { channel: { type: 'string' }, pinned: { type: ['string', 'null'] } } } as const;

  fastify.put<{ Params: { channel: string }; Body: { input: string } }>(
    '/channels/:channel/input',
    {
      schema: {
        summary: 'Pin an input on air (manual switch); it is kept while healthy, whatever the priorities',
        params: channelParams,
        body: { type: 'object', required: ['input'], additionalProperties: false, properties: { input: { type: 'string', maxLength: 32 } } },
        response: { 200: pinResponse, 400: errorBody, 404: errorBody, 409: errorBody },
      },
    },
    async (request, reply) => pin(reply, request.params.channel, request.body.input),
  );

  fastify.delete<{ Params: { channel: string } }>(
    '/channels/:channel/input',
    { schema: { summary: 'Release the pin: priorities rule again', params: channelParams, response: { 200: pinResponse, 404: errorBody, 409: errorBody } } },
    async (request, reply) => pin(reply, request.params.channel, undefined),
  );

  const recordingResponse = {
    type: 'object',
    properties: {
      channel: { type: 'string' },
      session: { type: ['string', 'null'], description: 'the session id (its UTC start), null when a stop found nothing recorded' },
      state: { type: 'string', enum: ['recording', 'ended', 'discarded'] },
      trigger: { type: ['string', 'null'], description: '`auto` or `manual`' },
      startedAt: { type: ['string', 'null'], format: 'date-time' },
      segmentsSeconds: { type: ['number', 'null'], description: 'audio recorded, once ended' },
    },
  } as const;

  fastify.post<{ Params: { channel: string }; Body: { action: 'start' | 'stop' } }>(
    '/channels/:channel/recording',
    {
      schema: {
        summary: 'Start recording a session now (until stopped), or stop the one being recorded; the ended session is then stitched and announced',
        params: channelParams,
        body: { type: 'object', required: ['action'], additionalProperties: false, properties: { action: { type: 'string', enum: ['start', 'stop'] } } },
        response: { 200: recordingResponse, 400: errorBody, 404: errorBody, 409: errorBody },
      },
    },
    async (request, reply) => {
      const channelId = request.params.channel;
      if (!findChannel(channelId)) return sendError(reply, 404, 'no such channel');
      const recorder = options.ingest()?.channels.get(channelId)?.recorder;
      if (!recorder) return sendError(reply, 409, "this process does not run the channel's ingest; ask the one that does");
      try {
        const record = request.body.action === 'start' ? await recorder.startManual() : await recorder.stopManual();
        return recordingView(channelId, record);
      } catch (error) {
        if (isOnairError(error)) return sendOnairError(reply, error);
        throw error;
      }
    },
  );

  await fastify.register(nowPlayingRoutes, { store: options.store, channels: options.channels, storeTimeoutMs });

  fastify.post(
    '/reload',
    {
      schema: {
        summary: 'Re-read the config file and apply its channel changes (a bad file is refused, the running config kept)',
        response: {
          200: { type: 'object', properties: { added: { type: 'array', items: { type: 'string' } }, removed: { type: 'array', items: { type: 'string' } }, restarted: { type: 'array', items: { type: 'string' } } } },
          400: errorBody,
          409: errorBody,
        },
      },
    },
    async (request, reply) => {
      if (!options.reload) return sendError(reply, 409, 'this process was not started from a config file');
      try {
        return await options.reload();
      } catch (error) {
        if (isOnairError(error)) return sendOnairError(reply, error);
        throw error;
      }
    },
  );
}

/** A session as the recording call answers it; a stop that kept nothing is `discarded`. */
function recordingView(channel: string, record: RecordingRecord | undefined): Record<string, unknown> {
  if (!record) return { channel, session: null, state: 'discarded', trigger: null, startedAt: null, segmentsSeconds: null };
  return {
    channel,
    session: record.session,
    state: record.state === 'recording' ? 'recording' : 'ended',
    trigger: record.trigger,
    startedAt: new Date(record.startedAt).toISOString(),
    segmentsSeconds: record.segmentsSeconds ?? null,
  };
}

function parseStatus(text: string | null): ChannelStatus | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as ChannelStatus;
  } catch {
    return undefined;
  }
}
