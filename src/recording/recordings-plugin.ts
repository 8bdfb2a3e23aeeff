/**
 * Recordings on the origin, as a Fastify plugin registered after the player page:
 *   GET/HEAD /recordings/{ch}.json                 the channel's sessions: state, times, duration, size, URLs
 *   GET/HEAD /recordings/{ch}/{session}.m4a         the stitched file (byte ranges, ETag, 304), with chapters
 *   GET/HEAD /recordings/{ch}/{session}.cue         its cue sheet, when the session has chapters (docs/architecture.md, Chapters in recordings)
 *   GET/HEAD /recordings/{ch}/{session}.m3u8        the session's VOD playlist (vod-playlist.ts)
 *   GET/HEAD /recordings/{ch}/{session}/{msn}.ts    the segments that playlist lists
 *            (fMP4 channels: `{msn}.m4s` and `init-{run}.mp4`, `audio/mp4`)
 * Files come from `recordings.dir` (shared storage when origins run on other hosts), states
 * from the store. The file is served with @fastify/static's `reply.sendFile` (the player
 * plugin registers it) from the recordings root; only exact, validated names reach it. A
 * session still being recorded has no playlist yet (404), an unstitched one no file, and one
 * whose segments were removed after its stitch (the default, `recordings.keepSegments`) no
 * playlist any more.
 * With `recordings.storage.s3`, a session whose file is in the bucket is served from there: its
 * `.m4a` and `.cue` answer 302 to the object (a presigned GET valid `presignSeconds`, or the
 * plain object URL), so the bytes, ranges and their bandwidth are the bucket's (or its CDN's),
 * and an origin on another host needs no shared disk (docs/architecture.md, "Recordings in object storage").
 * With `mirrorSegments` too (docs/architecture.md, "Mirrored segments"), an origin that does not see
 * the session's directory answers its VOD playlist from the whole index the job put in the bucket
 * (read once, a few rendered playlists kept), and each segment it has no file of with a 302 to
 * the mirrored object: a kept session plays from any origin without a shared disk.
 * Errors are the origin's JSON answers (404 cacheable 1 s, 503 while the store is down).
 */
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { OnairError } from '../errors.js';
import { DEFAULT_STORE_TIMEOUT_MS, readFromStore } from '../http/store-read.js';
import type { RecordingCatalog } from './recording-catalog.js';
import { parseSessionIndex, sessionSegments, type SessionIndex } from './recording-files.js';
import { isSessionId, type RecordingRecord } from './recording-record.js';
import type { S3RecordingStorage } from './s3-storage.js';
import { renderVodPlaylist } from './vod-playlist.js';

export interface RecordingsPluginOptions {
  catalog: RecordingCatalog;
  storeTimeoutMs?: number;
}

/** A finished session never changes (only `onair record rm` removes it). */
const FINISHED_MAX_AGE_SECONDS = 3600;
const SEGMENT_MAX_AGE_SECONDS = 31_536_000;
/** Sessions come and go: the listing is refetched every few seconds. */
const LISTING_CACHE_CONTROL = 'public, max-age=2';
const PLAYLIST_CONTENT_TYPE = 'application/vnd.apple.mpegurl';
const CUE_CONTENT_TYPE = 'application/x-cue; charset=utf-8';

const CHANNEL_PARAM = { type: 'string', pattern: '^[a-z0-9-]{1,32}$' } as const;
const FILE_NAME = /^(?<session>[0-9TZ-]{16,20})\.(?<kind>m4a|m3u8|cue)$/;
const SEGMENT_NAME = /^(?:\d{1,15}\.(?:ts|m4s)|init-\d{1,16}\.mp4)$/;
/** fMP4 segments and init segments of an audio-only channel (the origin's type for them). */
const FMP4_CONTENT_TYPE = 'audio/mp4';

/** VOD playlists read from the bucket and kept (a finished session's never changes), and the largest index read. */
const BUCKET_PLAYLISTS_KEPT = 32;
const MAX_BUCKET_INDEX_BYTES = 64 * 1024 * 1024;
const BUCKET_TIMEOUT_MS = 10_000;

const ENDED_STATES = new Set<RecordingRecord['state']>(['ended', 'stitched', 'done', 'failed']);
const STITCHED_STATES = new Set<RecordingRecord['state']>(['stitched', 'done']);

/** A VOD playlist lists the segments: once the session ended, while its segments are kept. */
function hasPlaylist(record: RecordingRecord): boolean {
  return ENDED_STATES.has(record.state) && !record.segmentsRemoved;
}

async function registerRecordings(fastify: FastifyInstance, options: RecordingsPluginOptions): Promise<void> {
  const { catalog } = options;
  const { files } = catalog;
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const knownChannel = (id: string): boolean => fastify.onairOrigin.channels().some((channel) => channel.id === id);
  const readRecord = (channel: string, session: string): Promise<RecordingRecord | undefined> =>
    readFromStore(`recording ${channel}/${session}`, () => catalog.get(channel, session), storeTimeoutMs);

  fastify.route<{ Params: { channel: string } }>({
    method: ['GET', 'HEAD'],
    url: '/recordings/:channel.json',
    schema: { params: { type: 'object', properties: { channel: CHANNEL_PARAM } } },
    handler: async (request, reply) => {
      const { channel } = request.params;
      if (!knownChannel(channel)) return reply.callNotFound();
      const records = await readFromStore(`recordings ${channel}`, () => catalog.list(channel), storeTimeoutMs);
      const sessions = records.map((record) => ({
        session: record.session,
        state: record.state,
        trigger: record.trigger,
        rendition: record.rendition,
        startedAt: new Date(record.startedAt).toISOString(),
        endedAt: record.endedAt === undefined ? null : new Date(record.endedAt).toISOString(),
        endReason: record.endReason ?? null,
        durationSeconds: record.durationSeconds ?? record.segmentsSeconds ?? null,
        sizeBytes: record.sizeBytes ?? null,
        // Relative to this listing.
        file: STITCHED_STATES.has(record.state) ? `${channel}/${record.session}.m4a` : null,
        chapters: record.chapters ?? null,
        cue: STITCHED_STATES.has(record.state) && record.chapters ? `${channel}/${record.session}.cue` : null,
        playlist: hasPlaylist(record) ? `${channel}/${record.session}.m3u8` : null,
      }));
      return reply.header('cache-control', LISTING_CACHE_CONTROL).send({ channel, sessions });
    },
  });

  fastify.route<{ Params: { channel: string; file: string } }>({
    method: ['GET', 'HEAD'],
    url: '/recordings/:channel/:file',
    schema: { params: { type: 'object', properties: { channel: CHANNEL_PARAM, file: { type: 'string', maxLength: 32 } } } },
    // @fastify/send names the type from the extension, and knows no `.cue`: the cue sheet's type is set as it goes out.
    onSend: async (request, reply, payload) => {
      if (request.params.file.endsWith('.cue') && reply.statusCode < 400) reply.header('content-type', CUE_CONTENT_TYPE);
      return payload;
    },
    handler: async (request, reply) => {
      const { channel, file } = request.params;
      const name = FILE_NAME.exec(file)?.groups;
      if (!name || !isSessionId(name.session!) || !knownChannel(channel)) return reply.callNotFound();
      const session = name.session!;
      const record = await readRecord(channel, session);
      if (name.kind === 'm4a' || name.kind === 'cue') {
        if (!record || !STITCHED_STATES.has(record.state)) return reply.callNotFound();
        if (catalog.objects && record.objects) {
          const key = name.kind === 'm4a' ? record.objects.file : record.objects.cue;
          if (!key) return reply.callNotFound();
          return redirectToObject(reply, catalog.objects, key);
        }
        return sendRecordingFile(reply, `${channel}/${session}.${name.kind}`, FINISHED_MAX_AGE_SECONDS);
      }
      if (!record || !hasPlaylist(record)) return reply.callNotFound();
      const local = await files.readIndex(channel, session);
      const playlist = local ? playlistOf(session, local) : catalog.objects?.mirrorSegments ? await bucketPlaylist(catalog.objects, channel, session) : undefined;
      if (playlist === undefined) return reply.callNotFound();
      return reply.header('content-type', PLAYLIST_CONTENT_TYPE).header('cache-control', `public, max-age=${FINISHED_MAX_AGE_SECONDS}`).send(playlist);
    },
  });

  fastify.route<{ Params: { channel: string; session: string; segment: string } }>({
    method: ['GET', 'HEAD'],
    url: '/recordings/:channel/:session/:segment',
    schema: {
      params: { type: 'object', properties: { channel: CHANNEL_PARAM, session: { type: 'string', maxLength: 20 }, segment: { type: 'string', maxLength: 32 } } },
    },
    // `.m4s` is no type @fastify/send knows: fMP4 files get the origin's as they go out.
    onSend: async (request, reply, payload) => {
      if (/\.(m4s|mp4)$/.test(request.params.segment) && reply.statusCode < 400) reply.header('content-type', FMP4_CONTENT_TYPE);
      return payload;
    },
    handler: async (request, reply) => {
      const { channel, session, segment } = request.params;
      if (!isSessionId(session) || !SEGMENT_NAME.test(segment) || !knownChannel(channel)) return reply.callNotFound();
      if (!(await readRecord(channel, session))) return reply.callNotFound();
      const objects = catalog.objects;
      if (objects?.mirrorSegments && !(await files.exists(join(files.sessionDir(channel, session), segment)))) {
        return redirectToObject(reply, objects, `${objects.sessionPrefix(channel, session)}${segment}`);
      }
      return sendRecordingFile(reply, `${channel}/${session}/${segment}`, SEGMENT_MAX_AGE_SECONDS);
    },
  });

  /** Rendered VOD playlists of sessions read from the bucket, oldest first (at most BUCKET_PLAYLISTS_KEPT). */
  const bucketPlaylists = new Map<string, Promise<string | undefined>>();

  /** A kept session's VOD playlist from the whole index in the bucket; undefined when it has none. */
  function bucketPlaylist(storage: S3RecordingStorage, channel: string, session: string): Promise<string | undefined> {
    const key = `${channel}/${session}`;
    const known = bucketPlaylists.get(key);
    if (known) return known;
    const reading = storage.getBytes(`${storage.sessionPrefix(channel, session)}${files.indexFile}`, MAX_BUCKET_INDEX_BYTES, AbortSignal.timeout(BUCKET_TIMEOUT_MS)).then(
      (bytes) => {
        const index = bytes && parseSessionIndex(bytes.toString('utf8'));
        const playlist = index && index.header.session === session ? playlistOf(session, index) : undefined;
        // Only a playlist is kept: a session whose index is not there yet is asked again.
        if (playlist === undefined) bucketPlaylists.delete(key);
        return playlist;
      },
      (error: unknown) => {
        bucketPlaylists.delete(key);
        throw new OnairError('ONAIR_RECORDING_BUCKET_UNREADABLE', `the index of ${key} could not be read from the bucket: ${(error as Error).message}`, { where: key, cause: error });
      },
    );
    if (bucketPlaylists.size >= BUCKET_PLAYLISTS_KEPT) bucketPlaylists.delete(bucketPlaylists.keys().next().value!);
    bucketPlaylists.set(key, reading);
    return reading;
  }

  /** 302 to the object; a presigned URL is cached for half its life at most, so no cache hands out an expired one. */
  async function redirectToObject(reply: FastifyReply, storage: S3RecordingStorage, key: string): Promise<FastifyReply> {
    const expiry = storage.presignExpirySeconds;
    const maxAge = expiry === undefined ? FINISHED_MAX_AGE_SECONDS : Math.min(FINISHED_MAX_AGE_SECONDS, Math.floor(expiry / 2));
    return reply.header('cache-control', `public, max-age=${maxAge}`).redirect(await storage.urlOf(key), 302);
  }

  /** Streams a file under the recordings root: ranges, ETag and 304 by @fastify/send; a missing file is the JSON 404. */
  function sendRecordingFile(reply: FastifyReply, relativePath: string, maxAgeSeconds: number): FastifyReply {
    return reply.sendFile(relativePath, files.root, {
      acceptRanges: true,
      cacheControl: true,
      maxAge: maxAgeSeconds * 1000,
      immutable: maxAgeSeconds === SEGMENT_MAX_AGE_SECONDS,
      dotfiles: 'deny',
    });
  }
}

function playlistOf(session: string, index: SessionIndex): string | undefined {
  const segments = sessionSegments(index);
  return segments.length === 0 ? undefined : renderVodPlaylist(session, segments);
}

export const recordingsPlugin = fp(registerRecordings, { name: 'onair-recordings', fastify: '5.x', dependencies: ['onair-origin', 'onair-player'] });
export default recordingsPlugin;
