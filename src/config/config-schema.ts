/**
 * The one config schema: defaults, units, and no unknown keys. Everything that reads a
 * config reads the frozen `OnairConfig` this produces; see load-config.ts for the
 * defaults → file → environment → validate → freeze pipeline.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseBitrate, parseByteSize, parseDurationSeconds } from './units.js';

/** Channel, rendition and input ids end up in URLs and Redis keys: keep them plain. */
const ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
const idSchema = z
  .string({ error: 'expected an id (lowercase letters, digits and dashes)' })
  .regex(ID_PATTERN, { error: 'expected an id of 1–32 lowercase letters, digits and dashes (no underscores)' });

const BITRATE_MESSAGE = 'expected a bitrate like 96k, between 8k and 512k';
/** A rendition's bit rate: 8k–512k, except FLAC's (what it announces before its rate is measured), up to 20M. */
const MAX_FLAC_BITRATE = 20_000_000;

function bitrateSchemaUpTo(max: number) {
  return z
    .union([z.string(), z.number()], { error: 'expected a bitrate like 96k' })
    .transform((value, context) => {
      const bits = parseBitrate(value);
      if (bits === undefined || bits < 8000 || bits > max) {
        context.addIssue({ code: 'custom', message: BITRATE_MESSAGE });
        return z.NEVER;
      }
      return bits;
    });
}

const bitrateSchema = bitrateSchemaUpTo(512_000);

function secondsSchema(min: number, max: number, example: string) {
  return z
    .union([z.string(), z.number()], { error: `expected a duration like ${example}` })
    .transform((value, context) => {
      const seconds = parseDurationSeconds(value);
      if (seconds === undefined || seconds < min || seconds > max) {
        context.addIssue({ code: 'custom', message: `expected a duration like ${example}, between ${min}s and ${max}s` });
        return z.NEVER;
      }
      return seconds;
    });
}

const SAMPLE_RATES = [44100, 48000] as const;

/** A whole number in [min, max]: a wrong type and an out-of-range value each say what is expected. */
function wholeNumber(what: string, min: number, max: number) {
  const range = { error: `expected ${what} between ${min} and ${max}` };
  return z
    .number({ error: (issue) => (issue.code === 'invalid_type' ? `expected ${what}` : undefined) })
    .int({ error: `expected ${what}`, abort: true })
    .min(min, range)
    .max(max, range);
}

/** Bearer tokens: a list, or comma-separated text (from the environment); at least 16 characters each. */
const tokenListSchema = z
  .union([z.string(), z.array(z.string())], { error: 'expected a list of tokens' })
  .transform((value) => (typeof value === 'string' ? value.split(',').map((token) => token.trim()).filter(Boolean) : value))
  .pipe(z.array(z.string().min(16, { error: 'expected tokens of at least 16 characters' })))
  .default([]);

const audioChannelsSchema = z.union([z.literal(1), z.literal(2)], { error: 'expected 1 (mono) or 2 (stereo)' });

/**
 * FFmpeg's SRT protocol reads its options from the URL query without URL-decoding them,
 * so these values go in verbatim and may only use characters that need no escaping.
 */
const SRT_VALUE = /^[A-Za-z0-9._~:,/@!*+-]+$/;
const SRT_VALUE_HINT = 'letters, digits and . _ ~ : , / @ ! * + - (no spaces, &, =, # or %)';

const srtOptionsSchema = z
  .object({
    /** SRT latency in milliseconds (FFmpeg takes microseconds; the ingest converts). */
    latency: wholeNumber('milliseconds', 0, 60000).optional(),
    passphrase: z
      .string()
      .min(10, { error: 'expected 10–79 characters (SRT rule)' })
      .max(79, { error: 'expected 10–79 characters (SRT rule)' })
      .regex(SRT_VALUE, { error: `expected ${SRT_VALUE_HINT}` })
      .optional(),
    streamid: z.string().min(1).max(512).regex(SRT_VALUE, { error: `expected ${SRT_VALUE_HINT}` }).optional(),
  })
  .strict();

/**
 * An Icecast source input (`icecast://0.0.0.0:8010/live`): the credentials a source client
 * (BUTT, Mixxx, Liquidsoap, `ffmpeg … icecast://source:…@host:port/live`) must present, as
 * HTTP Basic auth, to feed the mount or update its metadata (src/ingest/icecast-source.ts).
 */
const sourceOptionsSchema = z
  .object({
    user: z.string().min(1).max(64).default('source'),
    password: z
      .string({ error: 'expected the password source clients must send (at least 8 characters)' })
      .min(8, { error: 'expected at least 8 characters' })
      .max(256),
  })
  .strict();

/** The id under which the safety source appears in logs, the store and metrics: no input may take it. */
export const FALLBACK_SOURCE_ID = 'fallback';

const inputSchema = z
  .object({
    id: idSchema.refine((id) => id !== FALLBACK_SOURCE_ID, { error: `"${FALLBACK_SOURCE_ID}" is reserved for the safety source` }),
    url: z
      .string({ error: 'expected a URL FFmpeg can read, e.g. srt://0.0.0.0:9000?mode=listener' })
      .min(1)
      .refine((url) => /^(srt|udp|rtp|rtmp|http|https|icecast|file):/.test(url) || url.startsWith('/'), {
        error: 'expected an srt://, udp://, rtmp://, http(s)://, icecast:// or file URL, or an absolute path',
      }),
    srt: srtOptionsSchema.optional(),
    /** For an `icecast://host:port/mount` input: the source client's credentials (required there). */
    source: sourceOptionsSchema.optional(),
    /** For an http(s):// input: onair pulls it itself with `Icy-MetaData: 1` and airs its StreamTitle as now playing. */
    icyMetadata: z.boolean({ error: 'expected true or false' }).optional(),
    /**
     * A listener input (an SRT listener without a passphrase, udp://, rtp://) takes audio from
     * anyone who reaches its port: refused unless this says so (`onair check` warns about it).
     */
    allowUnauthenticated: z.boolean({ error: 'expected true or false' }).optional(),
  })
  .strict()
  .superRefine(reportUnauthenticatedListener)
  .superRefine(reportIcecastInputProblems);

/** LAME's Layer III bit rates at 44.1 and 48 kHz (MPEG-1): 32k to 320k. */
export const MP3_BITRATE_RANGE = { min: 32_000, max: 320_000 } as const;

/** libopus's bit rates: 6k to 510k. */
export const OPUS_BITRATE_RANGE = { min: 6_000, max: 510_000 } as const;

const renditionSchema = z
  .object({
    id: idSchema,
    /**
     * Required, except for `flac` (lossless: its rate follows the audio): there it is only the BANDWIDTH
     * announced before the first segment is measured, default its PCM rate (filled in by the channel).
     */
    bitrate: bitrateSchemaUpTo(MAX_FLAC_BITRATE).optional(),
    audioChannels: audioChannelsSchema.optional(),
    /**
     * `aac` (AAC-LC, HLS in MPEG-TS) or `mp3` (libmp3lame: packed-audio segments, not in the master playlist);
     * on `container: fmp4` channels also `opus` (libopus, 48 kHz channels) and `flac` (lossless;
     * docs/architecture.md, "Opus and FLAC renditions").
     */
    codec: z.enum(['aac', 'mp3', 'opus', 'flac'], { error: 'expected "aac", "mp3", "opus" or "flac"' }).default('aac'),
    /** FLAC only: bits per sample, 16 (default) or 24. */
    bitDepth: z.union([z.literal(16), z.literal(24)], { error: 'expected 16 or 24 (bits per sample)' }).optional(),
  })
  .strict()
  .superRefine((rendition, context) => {
    if (rendition.codec === 'flac') return;
    if (rendition.bitDepth !== undefined) context.addIssue({ code: 'custom', path: ['bitDepth'], message: 'only for codec: flac' });
    if (rendition.bitrate === undefined || rendition.bitrate > 512_000) {
      context.addIssue({ code: 'custom', path: ['bitrate'], message: BITRATE_MESSAGE });
      return;
    }
    if (rendition.codec === 'mp3' && (rendition.bitrate < MP3_BITRATE_RANGE.min || rendition.bitrate > MP3_BITRATE_RANGE.max)) {
      context.addIssue({ code: 'custom', path: ['bitrate'], message: 'expected an MP3 bitrate between 32k and 320k' });
    }
    if (rendition.codec === 'opus' && (rendition.bitrate < OPUS_BITRATE_RANGE.min || rendition.bitrate > OPUS_BITRATE_RANGE.max)) {
      context.addIssue({ code: 'custom', path: ['bitrate'], message: 'expected an Opus bitrate between 6k and 510k' });
    }
  });

/**
 * The safety source behind every real input: `silence` (default) or an audio file,
 * encoded once at start-up into every rendition and held in memory, so it cannot fail.
 */
const fallbackSchema = z.union(
  [
    z.literal('silence'),
    z
      .object({
        file: z.string().min(1, { error: 'expected the path of an audio file FFmpeg can read' }),
        loop: z.boolean().default(true),
      })
      .strict(),
  ],
  { error: 'expected "silence" or { file: jingle.aac, loop: true }' },
);

/** First path segments of the admin listener's routes: no channel may take them. */
export const ADMIN_PATH_PREFIXES: readonly string[] = ['api', 'ingest', 'metrics'];

/**
 * S3-compatible object storage of finished recordings (docs/architecture.md, "Recordings in object storage").
 * Credentials come from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the AWS SDK's default chain).
 */
const s3StorageSchema = z
  .object({
    /** The S3 endpoint, e.g. https://s3.eu-west-3.amazonaws.com or a MinIO/Ceph/R2 URL; default: AWS's for `region`. */
    endpoint: httpUrlString().optional(),
    bucket: z.string({ error: 'expected a bucket name' }).regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: 'expected a bucket name (3–63 of a-z 0-9 . -)' }),
    region: z.string().min(1).default('us-east-1'),
    /** Prepended to every key: `{prefix}{channel}/{session}.m4a`. */
    prefix: z.string().max(512).regex(/^(?!\/)[^\s]*$/, { error: 'expected a key prefix without spaces nor a leading "/"' }).default(''),
    /** Path-style URLs (`{endpoint}/{bucket}/{key}`), as most self-hosted servers want. */
    forcePathStyle: z.boolean({ error: 'expected true or false' }).default(false),
    /** Set: webhooks and the origin's redirects carry presigned GET URLs valid this long; unset: plain object URLs (a public bucket or CDN). */
    presignSeconds: wholeNumber('a number of seconds', 1, 604_800).optional(),
    /**
     * The leader also PUTs each recorded segment (fMP4: and init segment) and its session's index to
     * `{prefix}{channel}/{session}/`, so a job on another host stitches a session a takeover cut
     * (docs/architecture.md, "Mirrored segments").
     */
    mirrorSegments: z.boolean({ error: 'expected true or false' }).default(false),
  })
  .strict();

/** Recordings retention, per channel: sessions past either limit are removed, oldest first (src/recording/recording-retention.ts). */
const retentionSchema = z
  .object({
    /** A finished session older than this (since it ended) is removed: file, segments and record. */
    maxAge: secondsSchema(60, 100 * 365 * 86400, '30d').optional(),
    /** The channel's recordings on disk stay under this: the oldest finished sessions are removed. */
    maxSize: z
      .union([z.string(), z.number()], { error: 'expected a size like 20G' })
      .transform((value, context) => {
        const bytes = parseByteSize(value);
        if (bytes === undefined || bytes < 1024 * 1024) {
          context.addIssue({ code: 'custom', message: 'expected a size like 500M or 20G, at least 1M' });
          return z.NEVER;
        }
        return bytes;
      })
      .optional(),
  })
  .strict();

/**
 * A channel's station identity on its progressive mounts (src/origin/progressive/): the
 * icy-name, icy-description, icy-genre and icy-url headers and /status-json.xsl. Defaults:
 * the channel id, "Unspecified description", "various", and the origin's own player page.
 */
const icySchema = z
  .object({
    name: z.string().min(1).max(256).optional(),
    description: z.string().max(1024).optional(),
    genre: z.string().max(256).optional(),
    url: httpUrlString().optional(),
  })
  .strict();

const channelSchema = z
  .object({
    // `/recordings/…` is where the origin serves recorded sessions (src/recording/recordings-plugin.ts).
    id: idSchema.refine((id) => id !== 'recordings', { error: '"recordings" is reserved for the recordings URLs' })
      // Admin paths (/api/…, /ingest/…, /metrics) answer 404 on the origin and are refused by the VCL.
      .refine((id) => !ADMIN_PATH_PREFIXES.includes(id), { error: `reserved for admin paths (${ADMIN_PATH_PREFIXES.join(', ')})` }),
    sampleRate: z.union(SAMPLE_RATES.map((rate) => z.literal(rate)), { error: 'expected 44100 or 48000 (Hz)' }).default(48000),
    audioChannels: audioChannelsSchema.default(2),
    renditions: z.array(renditionSchema).min(1, { error: 'expected at least one rendition' }).max(8),
    inputs: z.array(inputSchema).min(1, { error: 'expected at least one input' }).max(8),
    fallback: fallbackSchema.default('silence'),
    /** An input that delivers no audio for this long is unhealthy and the next one takes over. */
    inputTimeoutMs: wholeNumber('milliseconds', 100, 60000).default(2000),
    /** A higher-priority input must stay healthy this long before audio goes back to it. */
    recoverSeconds: secondsSchema(0, 600, '5s').default(5),
    /** When set, an input that delivers only digital silence for this long is unhealthy. */
    silenceSeconds: secondsSchema(1, 3600, '10s').optional(),
    /** Delivery container: `ts` (MPEG-TS, packed audio for MP3) or `fmp4` (CMAF, EXT-X-MAP; docs/architecture.md, "Fragmented MP4 channels"). */
    container: z.enum(['ts', 'fmp4'], { error: 'expected "ts" or "fmp4"' }).default('ts'),
    /** Low-Latency HLS (rfc8216bis): partial segments, blocking reload, delta updates. */
    lowLatency: z.boolean({ error: 'expected true or false' }).default(false),
    /** Nominal partial segment duration; segments are split into round(segmentSeconds / partSeconds) parts. */
    partSeconds: secondsSchema(0.2, 4, '1s').default(1),
    /**
     * DVR window: an extra playlist per rendition (`{ch}_{rendition}_dvr.m3u8`) listing this
     * many seconds, segments kept as long, so listeners can pause and rewind. 0: off.
     */
    dvrSeconds: secondsSchema(0, 6 * 3600, '2h').default(0),
    /** `signed`: playlists and segments need a token signed with `signing.key` (see origin/signed-urls.ts). */
    access: z.enum(['public', 'signed'], { error: 'expected "public" or "signed"' }).default('public'),
    /** Record sessions on their own: one starts when audio starts (see src/recording/session-recorder.ts). */
    record: z.boolean({ error: 'expected true or false' }).default(false),
    /** A recorded session ends once the safety source has been on air this long (input gone). */
    endAfterSeconds: secondsSchema(1, 3600, '30s').default(30),
    /** The rendition recorded (an AAC one); default: the AAC one with the highest bitrate. */
    recordRendition: idSchema.optional(),
    /** The longest a recorded session runs (a forgotten manual one included): it ends there, a new one may start. */
    recordMaxSeconds: secondsSchema(60, 7 * 86400, '6h').default(6 * 3600),
    /** This channel's recordings retention, instead of `recordings.retention`. */
    recordRetention: retentionSchema.optional(),
    /** What its progressive mounts announce (icy-* headers, /status-json.xsl); see icySchema. */
    icy: icySchema.optional(),
    /**
     * Content encryption (docs/architecture.md, "Content encryption"): `aes-128` encrypts every TS segment and part whole;
     * `cbcs` (fMP4 channels of AAC renditions) encrypts their samples, CMAF cbcs (SAMPLE-AES in HLS, ClearKey in DASH).
     */
    encryption: z.enum(['aes-128', 'cbcs'], { error: 'expected "aes-128" or "cbcs"' }).optional(),
    /** Segments per content key: keys rotate every this many segments (default 10). */
    keyRotationSegments: wholeNumber('a number of segments', 1, 100_000).optional(),
    /**
     * A cbcs channel's EXT-X-KEY tags, in this order (docs/architecture.md, "ClearKey playlists and licenses"): `identity` (Apple's form, the
     * default) and/or `clearkey` (KEYFORMAT="org.w3.clearkey", for EME players such as hls.js).
     */
    hlsKeyFormats: z
      .array(z.enum(['identity', 'clearkey'], { error: 'expected "identity" or "clearkey"' }))
      .min(1)
      .max(2)
      .refine((formats) => new Set(formats).size === formats.length, { error: 'expected each key format once' })
      .optional(),
    /**
     * A cbcs channel's MPDs name its ClearKey license URL, `{this}/{ch}/clearkey`, in dashif:Laurl, so DASH players need no
     * license configuration (docs/architecture.md, "Player page and encrypted channels"): the origin's public base URL as
     * players reach it (a CDN's); players do not resolve a relative Laurl against the MPD. Absent: no Laurl (the default).
     */
    mpdLicenseBaseUrl: httpUrlString()
      .refine((value) => !/[?#]/.test(value), { error: 'expected a base URL without a query or fragment' })
      .optional(),
  })
  .strict()
  .superRefine((channel, context) => {
    reportEncryptionProblems(channel, context);
    reportDuplicates(channel.renditions, ['renditions'], context);
    reportDuplicates(channel.inputs, ['inputs'], context);
    const recorded = channel.renditions.find((rendition) => rendition.id === channel.recordRendition);
    if (channel.recordRendition !== undefined && !recorded) {
      context.addIssue({ code: 'custom', path: ['recordRendition'], message: `expected the id of one of the channel's renditions` });
    }
    // MP3 renditions: docs/architecture.md, "MP3 renditions" (AAC is the channel's frame clock and what is recorded).
    if (recorded && recorded.codec !== 'aac') {
      context.addIssue({ code: 'custom', path: ['recordRendition'], message: 'expected the id of an AAC rendition (recordings are AAC)' });
    }
    if (!channel.renditions.some((rendition) => rendition.codec === 'aac')) {
      context.addIssue({ code: 'custom', path: ['renditions'], message: 'expected at least one AAC rendition (codec: aac) beside MP3 ones' });
    }
    reportOpusFlacProblems(channel, context);
  })
  // A FLAC rendition without `bitrate` gets its PCM rate: what the master and the MPD announce until a segment is measured.
  .transform((channel) => ({
    ...channel,
    renditions: channel.renditions.map((rendition) => ({
      ...rendition,
      bitrate: rendition.bitrate ?? channel.sampleRate * (rendition.audioChannels ?? channel.audioChannels) * (rendition.bitDepth ?? 16),
    })),
  }));

/**
 * Opus and FLAC renditions (docs/architecture.md, "Opus and FLAC renditions") exist only in fMP4
 * (CMAF has their sample entries; MPEG-TS and packed audio have none HLS players read), Opus only
 * at 48 kHz (its one decoding rate).
 */
function reportOpusFlacProblems(
  channel: { container: string; sampleRate: number; renditions: readonly { codec: string }[] },
  context: z.RefinementCtx,
): void {
  channel.renditions.forEach((rendition, index) => {
    if ((rendition.codec === 'opus' || rendition.codec === 'flac') && channel.container !== 'fmp4') {
      context.addIssue({ code: 'custom', path: ['renditions', index, 'codec'], message: `"${rendition.codec}" renditions need container: fmp4 on their channel` });
    }
  });
  if (channel.sampleRate !== 48000 && channel.renditions.some((rendition) => rendition.codec === 'opus')) {
    context.addIssue({ code: 'custom', path: ['sampleRate'], message: 'expected 48000: Opus renditions run at 48 kHz' });
  }
}

const httpUrlSchema = httpUrlString();

/** Worker processes of `onair origin` (`origin.workers`, `--workers`). */
export const MAX_ORIGIN_WORKERS = 64;
export const workersSchema = z.union([wholeNumber('a number of workers', 1, MAX_ORIGIN_WORKERS), z.literal('auto')], {
  error: `expected a number of workers between 1 and ${MAX_ORIGIN_WORKERS}, or auto`,
});

const storeSchema = z
  .string({ error: 'expected "memory" or a redis:// URL' })
  .refine((value) => value === 'memory' || /^(rediss?|redis-sentinel|redis-cluster):\/\/[^\s]+$/.test(value), {
    error:
      'expected "memory", redis://host:6379/0, redis-sentinel://host:26379,host:26380/mymaster or redis-cluster://host:7000,host:7001',
  });

/**
 * The origin against hostile clients (README, Config reference: `origin.trustedProxies`,
 * `origin.limits.*`): who may set X-Forwarded-For, and the caps per client address and per
 * process. Spread into the `origin` object.
 */
const originProtectionSchema = {
  /** Proxies (addresses or CIDR ranges) whose X-Forwarded-For names the client; anyone else's is ignored. */
  trustedProxies: z
    .array(
      z.string().refine((value) => isIpOrCidr(value), { error: 'expected an IP address or a CIDR range like 10.0.0.0/8' }),
      { error: 'expected a list of IP addresses or CIDR ranges' },
    )
    .default(['127.0.0.1', '::1']),
  limits: z
    .object({
      /** Open connections of the process (server.maxConnections); more are closed at once. */
      connections: wholeNumber('a number of connections', 1, 1_000_000).default(10_000),
      /** Open connections of one client address (IPv6: its /64); trusted proxies are exempt. */
      connectionsPerClient: wholeNumber('a number of connections', 1, 1_000_000).default(256),
      /** LL-HLS requests held at once (blocking reloads, hinted parts); more get 503 + Retry-After. */
      heldRequests: wholeNumber('a number of requests', 1, 1_000_000).default(5_000),
      /** LL-HLS requests of one client address held at once; more get 503 + Retry-After. */
      heldRequestsPerClient: wholeNumber('a number of requests', 1, 1_000_000).default(64),
      /** A request's head and body must arrive within this (slow senders are cut off with 408). */
      requestTimeoutMs: wholeNumber('milliseconds', 1000, 300_000).default(10_000),
      /** An idle keep-alive connection is closed after this; above Varnish's backend_idle_timeout (60 s). */
      keepAliveTimeoutMs: wholeNumber('milliseconds', 1000, 600_000).default(65_000),
      /** Event-loop delay above which every request gets 503 + Retry-After (@fastify/under-pressure); 0: off. */
      maxEventLoopDelayMs: wholeNumber('milliseconds', 0, 60_000).default(1000),
      /** Requests per minute and client address to the control API (/api); more get 429. */
      apiRequestsPerMinute: wholeNumber('a number of requests', 1, 1_000_000).default(600),
      /** Requests per minute and client address to POST /ingest/access-log; more get 429. */
      ingestRequestsPerMinute: wholeNumber('a number of requests', 1, 1_000_000).default(600),
      /** Distinct listener session ids (`_onair_sid`) counted per client address and counting bucket. */
      sessionIdsPerClient: wholeNumber('a number of session ids', 1, 100_000).default(64),
      /** Memory for signed channels' playlists with their token added (one per version and token). */
      signedPlaylistCacheBytes: wholeNumber('a number of bytes', 0, 1024 * 1024 * 1024).default(16 * 1024 * 1024),
    })
    .strict()
    .prefault({}),
};

/**
 * The origin's progressive mounts (`/{channel}-{rendition}.aac|.mp3`, Icecast style;
 * src/origin/progressive/): ICY metadata interval, the burst a new listener gets, the backlog
 * after which a slow listener is dropped, and the listener cap of the process.
 */
const progressiveSchema = z
  .object({
    /** Audio bytes between two ICY metadata blocks (`icy-metaint`), for clients that send Icy-MetaData: 1. */
    metaint: wholeNumber('a number of bytes', 256, 1_000_000).default(16000),
    /** Seconds of the newest audio a new listener gets at once, so playback starts immediately. */
    burstSeconds: secondsSchema(0, 60, '4s').default(4),
    /** Unsent bytes a listener may have queued before it is disconnected as too slow. */
    maxBacklogBytes: z
      .union([z.string(), z.number()], { error: 'expected a size like 256k' })
      .transform((value, context) => {
        const bytes = parseByteSize(value);
        if (bytes === undefined || bytes < 16 * 1024 || bytes > 64 * 1024 * 1024) {
          context.addIssue({ code: 'custom', message: 'expected a size like 256k, between 16k and 64M' });
          return z.NEVER;
        }
        return bytes;
      })
      .default(256 * 1024),
    /** Progressive listeners of this origin process at once; more get 503 + Retry-After. */
    maxListeners: wholeNumber('a number of listeners', 1, 1_000_000).default(5000),
  })
  .strict()
  .prefault({});

/** `origin.progressive` as the schema defaults it: an origin built without a config uses these. */
export function progressiveDefaults(): z.output<typeof progressiveSchema> {
  return progressiveSchema.parse({});
}

/** `origin.trustedProxies` and `origin.limits` as the schema defaults them: an origin built without a config uses these. */
export function originProtectionDefaults(): z.infer<z.ZodObject<typeof originProtectionSchema>> {
  return z.object(originProtectionSchema).parse({});
}

/**
 * HTTPS on a listener (`origin.tls`, `admin.tls`, `api.tls`; src/origin/tls-listener.ts): the PEM
 * certificate chain and key, read at start and again on SIGHUP, optionally HTTP/2 by ALPN
 * beside HTTP/1.1, and the bounds a TLS listener adds to the connection limits.
 */
const tlsSchema = z
  .object({
    certFile: z.string({ error: 'expected the path of a PEM certificate (chain) file' }).min(1, { error: 'expected the path of a PEM certificate (chain) file' }),
    keyFile: z.string({ error: 'expected the path of a PEM private key file' }).min(1, { error: 'expected the path of a PEM private key file' }),
    /** Offer HTTP/2 by ALPN (h2); HTTP/1.1 stays allowed for clients that do not ask for it. */
    http2: z.boolean({ error: 'expected true or false' }).default(false),
    /** A TLS handshake must finish within this, else the connection is closed. */
    handshakeTimeoutMs: wholeNumber('milliseconds', 1000, 120_000).default(10_000),
    /** HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
    maxConcurrentStreams: wholeNumber('a number of streams', 1, 10_000).default(100),
  })
  .strict()
  .optional();

/** An http(s) URL (a function, so schemas above its definition can use it). */
function httpUrlString() {
  return z
    .string({ error: 'expected an http:// or https:// URL' })
    .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), { error: 'expected an http:// or https:// URL' });
}

function isIpOrCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split('/');
  const version = isIP(address ?? '');
  if (version === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}

/**
 * POST /auth/playback (src/origin/playback-auth.ts; docs/architecture.md, "Entitlement tokens"):
 * the identity provider's JWTs, verified against its JWKS URL or a PEM public key, traded for
 * playback URLs of the channels they entitle. Absent: the endpoint is off (404).
 */
const ENTITLEMENT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
const entitlementsSchema = z
  .object({
    /** The `iss` every token must carry. */
    issuer: z.string({ error: 'expected the issuer (iss) of the identity provider' }).min(1).max(1024),
    /** The `aud` (one of them) every token must carry. */
    audience: z.union([z.string().min(1).max(1024), z.array(z.string().min(1).max(1024)).min(1).max(16)], { error: 'expected an audience or a list of them' }),
    /** The provider's JSON Web Key Set (https in production). */
    jwksUrl: httpUrlString().optional(),
    /** Or a PEM public key (SPKI) or certificate file. */
    publicKeyFile: z.string().min(1).optional(),
    /** Accepted JWS algorithms: public-key ones only (`none` and HS* never). */
    algorithms: z
      .array(z.enum(ENTITLEMENT_ALGORITHMS, { error: `expected one of ${ENTITLEMENT_ALGORITHMS.join(', ')} (none and HS* are never accepted)` }))
      .min(1)
      .default(['RS256', 'ES256', 'EdDSA']),
    /** Leeway on exp, nbf and iat. */
    clockTolerance: secondsSchema(0, 300, '30s').default(30),
    /** Claim listing channel ids (a list, or a space-separated string). */
    channelsClaim: z.string().min(1).max(256).default('channels'),
    /** Claim naming a tier (or a list of tiers), mapped to channels by `tiers`. */
    tierClaim: z.string().min(1).max(256).default('tier'),
    tiers: z.record(z.string().min(1).max(64), z.array(idSchema).max(1000), { error: 'expected tier names mapped to lists of channel ids' }).default({}),
    /** How long the returned signed URLs stay valid. */
    urlTtl: secondsSchema(60, 7 * 86400, '1h').default(3600),
    /** Base of the returned URLs (a CDN); default: paths on the origin the request came to. */
    publicUrl: httpUrlString().optional(),
    /** POSTs per minute and client address; more get 429. */
    requestsPerMinute: wholeNumber('a number of requests', 1, 1_000_000).default(60),
    jwks: z
      .object({
        /** A JWKS fetch slower than this fails (503 to the request that waited on it). */
        timeoutMs: wholeNumber('milliseconds', 100, 30_000).default(5000),
        /** A token with an unknown key id refetches the JWKS at most once per this. */
        cooldown: secondsSchema(0, 3600, '30s').default(30),
        /** The JWKS is refetched once it is older than this. */
        cacheMaxAge: secondsSchema(10, 86400, '10m').default(600),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((entitlements, context) => {
    if ((entitlements.jwksUrl === undefined) === (entitlements.publicKeyFile === undefined)) {
      context.addIssue({ code: 'custom', path: ['jwksUrl'], message: 'expected exactly one of jwksUrl and publicKeyFile' });
    }
  });

export const configSchema = z
  .object({
    store: storeSchema.default('memory'),
    /** Settings of a Redis store (ignored with `store: memory`). */
    redis: z
      .object({
        /** Start even when Redis's maxmemory-policy may evict keys (src/store/redis-memory-policy.ts says why it should not). */
        allowEvictingPolicy: z.boolean({ error: 'expected true or false' }).default(false),
      })
      .strict()
      .prefault({}),
    origin: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: wholeNumber('a TCP port number', 0, 65535).default(8080),
        /** HTTPS (and optionally HTTP/2) on the origin port; absent: plain HTTP. */
        tls: tlsSchema,
        ...originProtectionSchema,
        /** Icecast's GET /admin/metadata on the origin port (src/origin/icecast-admin.ts); absent: off (404). */
        icecastAdmin: z
          .object({
            user: z.string().min(1).max(64).default('admin'),
            password: z.string({ error: 'expected the admin password (at least 8 characters)' }).min(8, { error: 'expected at least 8 characters' }).max(256),
          })
          .strict()
          .optional(),
        progressive: progressiveSchema,
        /**
         * `onair origin` on several cores (src/origin/origin-cluster.ts): this many worker
         * processes share the origin port, or `auto` (one per available core). Absent: one process.
         */
        workers: workersSchema.optional(),
      })
      .strict()
      .prefault({}),
    hls: z
      .object({
        segmentSeconds: secondsSchema(0.5, 12, '4s').default(4),
        windowSegments: wholeNumber('a number of segments', 1, 1000).default(6),
      })
      .strict()
      .prefault({}),
    ingest: z
      .object({
        /**
         * Lease of a channel's leading packager (hot standby); renewed every third of it.
         * Default: 0.2 × the target duration, between 0.3 s and 3 s, so a standby takes
         * over in under half a target duration (see channel-leadership.ts).
         */
        leaseMs: wholeNumber('milliseconds', 300, 30000).optional(),
        /** Audio held per input to ride out network jitter; adds to latency. */
        bufferMs: wholeNumber('milliseconds', 0, 5000).default(200),
      })
      .strict()
      .prefault({}),
    /**
     * The admin listener: GET /metrics, the control API under /api, GET /listeners.json and
     * POST /ingest/access-log, away from the listener-facing origin port. Loopback by default.
     * Port unset: 8081 for `start` and `origin`; `onair ingest` takes the first free port from
     * 9464 (then any free port), so two packagers on one host both start (see preflight.ts).
     */
    admin: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: wholeNumber('a TCP port number', 0, 65535).optional(),
        /** HTTPS (and optionally HTTP/2) on the admin listener; absent: plain HTTP. */
        tls: tlsSchema,
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** Deprecated alias, read by `onair ingest` only when `admin.port` is unset: its admin address, as before. */
        host: z.string().min(1).optional(),
        port: wholeNumber('a TCP port number', 0, 65535).optional(),
      })
      .strict()
      .prefault({}),
    listeners: z
      .object({
        /** Bearer tokens of POST /ingest/access-log (CDN/Varnish logs); also ONAIR_LISTENER_INGEST_TOKENS. None: the endpoint is off. */
        ingestTokens: tokenListSchema,
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        /**
         * Bearer tokens of the control API (also ONAIR_API_TOKENS, comma-separated); none:
         * the API is off. At least 16 characters each.
         */
        tokens: tokenListSchema,
        /** Serve the API on an address of its own; default: under /api on the admin listener. */
        host: z.string().min(1).default('127.0.0.1'),
        port: wholeNumber('a TCP port number', 0, 65535).optional(),
        /** HTTPS (and optionally HTTP/2) on `api.port`; on the admin listener the API has admin.tls. */
        tls: tlsSchema,
      })
      .strict()
      .refine((api) => api.tls === undefined || api.port !== undefined, { error: 'needs api.port (without it the API is on the admin listener: use admin.tls)', path: ['tls'] })
      .prefault({}),
    signing: z
      .object({
        /** HMAC-SHA256 key of signed channels' tokens; also ONAIR_SIGNING_KEY. */
        key: z.string().min(32, { error: 'expected a secret of at least 32 characters' }).optional(),
        /**
         * Signed playlists give their key URIs (`key-{id}.key`) a token of their own that opens the channel's keys only
         * and expires this many seconds after the current minute (never after the request's token); absent: the
         * request's token (docs/architecture.md, "Short-lived key tokens").
         */
        keyTokenSeconds: z.number({ error: 'expected whole seconds' }).int({ error: 'expected whole seconds' }).min(10).max(3600).optional(),
      })
      .strict()
      .prefault({}),
    recordings: z
      .object({
        /** Where recorded segments, session indexes and the stitched `.m4a` files go: `{dir}/{channel}/{session}…`. */
        dir: z.string({ error: 'expected a directory path' }).min(1, { error: 'expected a directory path' }).default('./recordings'),
        /** Base URL of the origin as listeners reach it, for the URLs in announcements; default: the origin's address. */
        publicUrl: httpUrlSchema.optional(),
        /** POSTed (JSON, retried with backoff) when a recording is ready; HMAC-SHA256 signed when `secret` is set. */
        webhook: z
          .object({
            url: httpUrlSchema,
            secret: z.string().min(16, { error: 'expected a secret of at least 16 characters' }).optional(),
          })
          .strict()
          .optional(),
        /** Each channel's retention (a channel's `recordRetention` replaces it); none by default. */
        retention: retentionSchema.prefault({}),
        /** Keep a session's segments (and its VOD playlist) once its file is stitched and checked; default: removed then. */
        keepSegments: z.boolean({ error: 'expected true or false' }).default(false),
        /** Where finished recordings also go; none: local disk only (src/recording/s3-storage.ts). */
        storage: z.object({ s3: s3StorageSchema.optional() }).strict().optional(),
      })
      .strict()
      .prefault({}),
    /** POST /auth/playback: entitlement tokens traded for playback URLs; absent: off. */
    entitlements: entitlementsSchema.optional(),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .prefault({}),
    channels: z.array(channelSchema).min(1, { error: 'expected at least one channel' }),
  })
  .strict()
  .superRefine((config, context) => {
    reportDuplicates(config.channels, ['channels'], context);
    reportDuplicateListeners(config, context);
    reportDuplicateSourceListeners(config, context);
    reportAmbiguousMounts(config, context);
    reportPartsLongerThanSegments(config, context);
    reportSignedChannelsWithoutKey(config, context);
    reportUnknownTierChannels(config, context);
    reportWorkersWithoutSharedStore(config, context);
  });

export type OnairConfig = z.output<typeof configSchema>;
export type ChannelConfig = OnairConfig['channels'][number];
export type RenditionConfig = ChannelConfig['renditions'][number];
export type InputConfig = ChannelConfig['inputs'][number];
export type FallbackConfig = ChannelConfig['fallback'];
export type TlsConfig = NonNullable<OnairConfig['origin']['tls']>;

function reportDuplicates(items: { id: string }[], path: (string | number)[], context: z.RefinementCtx): void {
  const seen = new Set<string>();
  items.forEach((item, index) => {
    if (seen.has(item.id)) {
      context.addIssue({ code: 'custom', path: [...path, index, 'id'], message: `duplicate id "${item.id}"` });
    }
    seen.add(item.id);
  });
}

/**
 * An encrypted channel's keys are served only against its signed token, so it must be signed;
 * `aes-128` is for MPEG-TS segments, `cbcs` for fMP4 AAC ones. Recordings decrypt what they keep
 * (docs/architecture.md, "Recordings and mounts of encrypted channels").
 */
function reportEncryptionProblems(
  channel: { encryption?: string; keyRotationSegments?: number; hlsKeyFormats?: readonly string[]; mpdLicenseBaseUrl?: string; access: string; container: string; renditions: readonly { codec: string }[] },
  context: z.RefinementCtx,
): void {
  if (channel.encryption === undefined) {
    if (channel.keyRotationSegments !== undefined) context.addIssue({ code: 'custom', path: ['keyRotationSegments'], message: 'needs encryption' });
  }
  if (channel.encryption !== 'cbcs' && channel.hlsKeyFormats !== undefined) context.addIssue({ code: 'custom', path: ['hlsKeyFormats'], message: 'needs encryption: cbcs' });
  if (channel.encryption !== 'cbcs' && channel.mpdLicenseBaseUrl !== undefined) context.addIssue({ code: 'custom', path: ['mpdLicenseBaseUrl'], message: 'needs encryption: cbcs' });
  if (channel.encryption === undefined) return;
  if (channel.access !== 'signed') context.addIssue({ code: 'custom', path: ['encryption'], message: 'an encrypted channel needs access: signed (its keys are served against its token)' });
  if (channel.encryption === 'aes-128' && channel.container !== 'ts') context.addIssue({ code: 'custom', path: ['encryption'], message: 'aes-128 encrypts MPEG-TS segments: expected container: ts' });
  if (channel.encryption === 'cbcs') reportCbcsProblems(channel, context);
}

/** CMAF cbcs protects fMP4 AAC tracks only (src/media/cbcs.ts): the channel is fMP4, its renditions AAC. */
function reportCbcsProblems(channel: { container: string; renditions: readonly { codec: string }[] }, context: z.RefinementCtx): void {
  if (channel.container !== 'fmp4') context.addIssue({ code: 'custom', path: ['encryption'], message: 'cbcs encrypts fMP4 segments: expected container: fmp4' });
  channel.renditions.forEach((rendition, index) => {
    if (rendition.codec === 'aac') return;
    context.addIssue({ code: 'custom', path: ['renditions', index, 'codec'], message: `cbcs protects AAC renditions only, not "${rendition.codec}"` });
  });
}

function reportPartsLongerThanSegments(config: { hls: { segmentSeconds: number }; channels: ChannelConfig[] }, context: z.RefinementCtx): void {
  config.channels.forEach((channel, channelIndex) => {
    if (!channel.lowLatency || channel.partSeconds <= config.hls.segmentSeconds / 2) return;
    context.addIssue({
      code: 'custom',
      path: ['channels', channelIndex, 'partSeconds'],
      message: `expected at most half of hls.segmentSeconds (${config.hls.segmentSeconds / 2}s) so that a segment has several parts`,
    });
  });
}

function reportSignedChannelsWithoutKey(config: { signing: { key?: string }; channels: ChannelConfig[] }, context: z.RefinementCtx): void {
  if (config.signing.key !== undefined) return;
  config.channels.forEach((channel, channelIndex) => {
    if (channel.access !== 'signed') return;
    context.addIssue({
      code: 'custom',
      path: ['channels', channelIndex, 'access'],
      message: 'a signed channel needs signing.key (or ONAIR_SIGNING_KEY)',
    });
  });
}

/** `entitlements.tiers` may name only configured channels. */
function reportUnknownTierChannels(config: { entitlements?: { tiers: Record<string, string[]> }; channels: ChannelConfig[] }, context: z.RefinementCtx): void {
  const known = new Set(config.channels.map((channel) => channel.id));
  for (const [tier, ids] of Object.entries(config.entitlements?.tiers ?? {})) {
    ids.forEach((id, index) => {
      if (!known.has(id)) context.addIssue({ code: 'custom', path: ['entitlements', 'tiers', tier, index], message: `no channel "${id}" in channels` });
    });
  }
}

/** Origin workers are separate processes: with the memory store each would serve an empty store of its own. */
function reportWorkersWithoutSharedStore(config: { store: string; origin: { workers?: number | 'auto' } }, context: z.RefinementCtx): void {
  if (config.origin.workers === undefined || config.store !== 'memory') return;
  context.addIssue({ code: 'custom', path: ['origin', 'workers'], message: 'expected a Redis store: every worker is a process of its own, and the memory store is not shared' });
}

/**
 * How an input is reached: `listener` inputs wait for a sender (an SRT listener, udp://,
 * rtp://), so anyone who reaches the port can put audio on air unless SRT's passphrase
 * (AES, checked in the handshake) keeps them out; `caller` inputs fetch from an address the
 * config names (an SRT caller, rtmp://, http(s)://); `file` inputs read a local file.
 */
export type InputReach = 'listener' | 'caller' | 'file';

export function inputReach(url: string): InputReach {
  if (url.startsWith('/') || url.startsWith('file:')) return 'file';
  if (url.startsWith('udp:') || url.startsWith('rtp:') || url.startsWith('icecast:') || srtListenerAddress(url) !== undefined) return 'listener';
  return 'caller';
}

/** An SRT passphrase, from `srt.passphrase` or the URL's own `passphrase=` option. */
function hasSrtPassphrase(input: { url: string; srt?: { passphrase?: string } }): boolean {
  if (input.srt?.passphrase !== undefined) return true;
  return URL.canParse(input.url) && (new URL(input.url).searchParams.get('passphrase') ?? '') !== '';
}

/** A listener input that takes audio from any sender: no SRT passphrase (udp:// and rtp:// have none). */
export function acceptsAnySender(input: { url: string; srt?: { passphrase?: string } }): boolean {
  // A source input always has a password (reportIcecastInputProblems).
  if (input.url.startsWith('icecast:')) return false;
  return inputReach(input.url) === 'listener' && !hasSrtPassphrase(input);
}

function reportUnauthenticatedListener(
  input: { url: string; srt?: { passphrase?: string }; allowUnauthenticated?: boolean },
  context: z.RefinementCtx,
): void {
  const open = acceptsAnySender(input);
  if (open && input.allowUnauthenticated !== true) {
    const srt = input.url.startsWith('srt:');
    context.addIssue({
      code: 'custom',
      path: srt ? ['srt', 'passphrase'] : ['allowUnauthenticated'],
      message: srt
        ? 'an SRT listener accepts any caller that reaches its port: set srt.passphrase (10–79 characters, the same on the sender), or allowUnauthenticated: true'
        : `${input.url.slice(0, 3)}:// accepts audio from any sender that reaches its port: use an SRT listener with srt.passphrase, or set allowUnauthenticated: true (behind a firewall)`,
    });
  }
  if (!open && input.allowUnauthenticated === true) {
    context.addIssue({
      code: 'custom',
      path: ['allowUnauthenticated'],
      message: 'only for a listener input without a passphrase (srt:// with mode=listener, udp://, rtp://)',
    });
  }
}

/** The inputs that take audio from any sender (allowed by `allowUnauthenticated: true`), with their key paths. */
export function unauthenticatedListeners(config: { channels: ChannelConfig[] }): { path: string; url: string }[] {
  return config.channels.flatMap((channel, channelIndex) =>
    channel.inputs.flatMap((input, inputIndex) =>
      acceptsAnySender(input) ? [{ path: `channels[${channelIndex}].inputs[${inputIndex}]`, url: input.url }] : [],
    ),
  );
}

/** Two SRT listeners on the same port would fight over it: catch that before anything starts. */
function reportDuplicateListeners(config: { channels: ChannelConfig[] }, context: z.RefinementCtx): void {
  const seen = new Map<string, string>();
  config.channels.forEach((channel, channelIndex) => {
    channel.inputs.forEach((input, inputIndex) => {
      const listener = srtListenerAddress(input.url);
      if (!listener) return;
      const key = `${listener.port}`;
      const previous = seen.get(key);
      if (previous) {
        context.addIssue({
          code: 'custom',
          path: ['channels', channelIndex, 'inputs', inputIndex, 'url'],
          message: `SRT listener port ${listener.port} is already used by ${previous}`,
        });
      }
      seen.set(key, `channels[${channelIndex}].inputs[${inputIndex}]`);
    });
  });
}

/** The local address an SRT listener input binds, or undefined for callers and non-SRT inputs. */
export function srtListenerAddress(url: string): { host: string; port: number } | undefined {
  if (!url.startsWith('srt://')) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.searchParams.get('mode') !== 'listener') return undefined;
  return { host: parsed.hostname || '0.0.0.0', port: Number(parsed.port) };
}

/** Where an Icecast source input listens and its mount: `icecast://0.0.0.0:8010/live` → 0.0.0.0, 8010, /live. */
export function icecastSourceAddress(url: string): { host: string; port: number; mount: string } | undefined {
  if (!url.startsWith('icecast://') || !URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  if (parsed.port === '' || parsed.pathname.length < 2 || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '' || parsed.password !== '') return undefined;
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port), mount: decodeURIComponent(parsed.pathname) };
}

/** A source input needs a well-formed address and a password; `source` and `icyMetadata` belong to their own kinds of input. */
function reportIcecastInputProblems(input: { url: string; source?: unknown; icyMetadata?: boolean }, context: z.RefinementCtx): void {
  if (input.url.startsWith('icecast:')) {
    if (icecastSourceAddress(input.url) === undefined) {
      context.addIssue({ code: 'custom', path: ['url'], message: 'expected icecast://host:port/mount (the address to listen on and the mount source clients use; no credentials in the URL)' });
    }
    if (input.source === undefined) {
      context.addIssue({ code: 'custom', path: ['source', 'password'], message: 'a source input needs the password source clients must send: source: { password: … }' });
    }
  } else if (input.source !== undefined) {
    context.addIssue({ code: 'custom', path: ['source'], message: 'only for an icecast://host:port/mount input' });
  }
  if (input.icyMetadata !== undefined && !/^https?:/.test(input.url)) {
    context.addIssue({ code: 'custom', path: ['icyMetadata'], message: 'only for an http(s):// input' });
  }
}

/** One source listener per TCP port: two source inputs on one port would fight over it. */
/**
 * Progressive mounts are named `/{channel}-{rendition}.{aac|mp3}`
 * (docs/architecture.md, Progressive mounts), and ids may contain `-`: channel `a` with rendition `b-c` and channel
 * `a-b` with rendition `c` would both be `/a-b-c.aac`. Such a pair is refused, naming the second.
 */
function reportAmbiguousMounts(config: { channels: ChannelConfig[] }, context: z.RefinementCtx): void {
  const seen = new Map<string, { path: string; ids: string }>();
  config.channels.forEach((channel, channelIndex) => {
    channel.renditions.forEach((rendition, renditionIndex) => {
      // Opus and FLAC renditions have no mount (docs/architecture.md, "Opus and FLAC renditions").
      if (rendition.codec === 'opus' || rendition.codec === 'flac') return;
      const mount = `/${channel.id}-${rendition.id}.${rendition.codec === 'mp3' ? 'mp3' : 'aac'}`;
      const ids = `${channel.id}\u0000${rendition.id}`;
      const first = seen.get(mount);
      // The same channel and rendition ids twice are already refused as duplicate ids.
      if (first !== undefined && first.ids !== ids) {
        context.addIssue({
          code: 'custom',
          path: ['channels', channelIndex, 'renditions', renditionIndex, 'id'],
          message: `its progressive mount ${mount} is also ${first.path}'s: rename one of them`,
        });
      }
      if (first === undefined) seen.set(mount, { path: `channels[${channelIndex}].renditions[${renditionIndex}]`, ids });
    });
  });
}

function reportDuplicateSourceListeners(config: { channels: ChannelConfig[] }, context: z.RefinementCtx): void {
  const seen = new Map<number, string>();
  config.channels.forEach((channel, channelIndex) => {
    channel.inputs.forEach((input, inputIndex) => {
      const address = icecastSourceAddress(input.url);
      if (!address) return;
      const previous = seen.get(address.port);
      if (previous) {
        context.addIssue({ code: 'custom', path: ['channels', channelIndex, 'inputs', inputIndex, 'url'], message: `source port ${address.port} is already used by ${previous}` });
      }
      seen.set(address.port, `channels[${channelIndex}].inputs[${inputIndex}]`);
    });
  });
}
