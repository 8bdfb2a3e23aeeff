/**
 * Config loading (src/config/load-config.ts): defaults → file → environment → validate →
 * freeze. A mistake is an OnairError ONAIR_CONFIG_INVALID whose `where` names the key path
 * and whose message starts with it, so a user can find the line to fix.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadConfigFile, parseConfigText, resolveConfig } from '../../src/config/load-config.js';
import { isOnairError, type OnairError, type OnairErrorCode } from '../../src/errors.js';
import { rawTestChannel } from '../helpers/channel-config.js';

const ISSUE_YAML = `store: redis://127.0.0.1:6379/0   # or "memory" (the default): embedded, one process
origin:
  host: 127.0.0.1
  port: 8080
hls:
  segmentSeconds: 4
  windowSegments: 6
channels:
  - id: fip
    renditions:
      - { id: lofi,  bitrate: 32k }
      - { id: midfi, bitrate: 96k }
      - { id: hifi,  bitrate: 192k }
    inputs:
      - { id: main, url: "srt://127.0.0.1:9000?mode=listener", srt: { passphrase: onair-test-passphrase } }
`;

/** origin.trustedProxies and origin.limits as they default (README, Config reference). */
const ORIGIN_PROTECTION_DEFAULTS = {
  trustedProxies: ['127.0.0.1', '::1'],
  limits: {
    connections: 10_000,
    connectionsPerClient: 256,
    heldRequests: 5_000,
    heldRequestsPerClient: 64,
    requestTimeoutMs: 10_000,
    keepAliveTimeoutMs: 65_000,
    maxEventLoopDelayMs: 1000,
    apiRequestsPerMinute: 600,
    ingestRequestsPerMinute: 600,
    sessionIdsPerClient: 64,
    signedPlaylistCacheBytes: 16 * 1024 * 1024,
  },
  // origin.progressive: the Icecast-style mounts (src/origin/progressive/).
  progressive: { metaint: 16000, burstSeconds: 4, maxBacklogBytes: 256 * 1024, maxListeners: 5000 },
};

const ISSUE_CONFIG = {
  store: 'redis://127.0.0.1:6379/0',
  redis: { allowEvictingPolicy: false },
  origin: { host: '127.0.0.1', port: 8080, ...ORIGIN_PROTECTION_DEFAULTS },
  hls: { segmentSeconds: 4, windowSegments: 6 },
  ingest: { bufferMs: 200 },
  admin: { host: '127.0.0.1' },
  metrics: {},
  listeners: { ingestTokens: [] },
  api: { tokens: [], host: '127.0.0.1' },
  signing: {},
  recordings: { dir: './recordings', retention: {}, keepSegments: false },
  log: { level: 'info' },
  channels: [
    {
      id: 'fip',
      sampleRate: 48000,
      audioChannels: 2,
      fallback: 'silence',
      inputTimeoutMs: 2000,
      recoverSeconds: 5,
      container: 'ts',
      lowLatency: false,
      partSeconds: 1,
      dvrSeconds: 0,
      access: 'public',
      record: false,
      endAfterSeconds: 30,
      recordMaxSeconds: 21600,
      renditions: [
        { id: 'lofi', bitrate: 32000, codec: 'aac' },
        { id: 'midfi', bitrate: 96000, codec: 'aac' },
        { id: 'hifi', bitrate: 192000, codec: 'aac' },
      ],
      inputs: [{ id: 'main', url: 'srt://127.0.0.1:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }],
    },
  ],
};

/**
 * A valid raw config (as a file would give it) that each malformed case changes in one
 * place. Typed `any` on purpose: each case breaks a different key.
 */
function validRaw(): Record<string, any> {
  return {
    store: 'memory',
    channels: [rawTestChannel()],
  };
}

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

async function caughtAsync(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Asserts an OnairError with `code`, `where` as given, and a message that starts with `where`. */
function assertConfigError(t: Test, error: unknown, code: OnairErrorCode, where: string | RegExp): void {
  t.ok(isOnairError(error, code), `is an OnairError ${code} (got ${String(error)})`);
  const onairError = error as OnairError;
  if (typeof where === 'string') t.equal(onairError.where, where, `reported at ${where}`);
  else t.match(onairError.where, where, `reported at ${where}`);
  t.ok(onairError.message.startsWith(`${onairError.where}: `), `message starts with the key path: ${onairError.message}`);
}

t.test('the YAML from the README resolves to bitrates in bits per second with the defaults filled in', async (t) => {
  const config = parseConfigText(ISSUE_YAML);
  t.strictSame(config, ISSUE_CONFIG);
  t.same(
    config.channels[0]!.renditions.map((rendition) => rendition.bitrate),
    [32000, 96000, 192000],
  );
});

t.test('the resolved config is frozen all the way down', async (t) => {
  const config = parseConfigText(ISSUE_YAML);
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.origin));
  t.ok(Object.isFrozen(config.channels));
  t.ok(Object.isFrozen(config.channels[0]));
  t.ok(Object.isFrozen(config.channels[0]!.renditions[1]));
  t.ok(Object.isFrozen(config.channels[0]!.inputs[0]));
  // ES modules run in strict mode: writing a frozen property throws.
  t.throws(() => {
    (config.origin as { port: number }).port = 9999;
  }, TypeError);
  t.throws(() => {
    (config.channels as unknown[]).push({});
  }, TypeError);
  t.equal(config.origin.port, 8080);
});

t.test('a config with only channels gets every default', async (t) => {
  const config = resolveConfig({
    channels: [{ id: 'fip', renditions: [{ id: 'hifi', bitrate: 192000 }], inputs: [{ id: 'main', url: '/srv/loop.mp3' }] }],
  });
  t.equal(config.store, 'memory');
  t.strictSame(config.origin, { host: '127.0.0.1', port: 8080, ...ORIGIN_PROTECTION_DEFAULTS });
  t.strictSame(config.hls, { segmentSeconds: 4, windowSegments: 6 });
  t.strictSame(config.log, { level: 'info' });
  t.strictSame(config.ingest, { bufferMs: 200 }, 'the lease follows the target duration unless set');
  t.equal(config.channels[0]!.sampleRate, 48000);
  t.equal(config.channels[0]!.audioChannels, 2);
  t.equal(config.channels[0]!.fallback, 'silence', 'silence is the safety source unless a file is given');
  t.equal(config.channels[0]!.inputTimeoutMs, 2000);
  t.equal(config.channels[0]!.recoverSeconds, 5);
  t.equal(config.channels[0]!.silenceSeconds, undefined, 'silence detection is off unless asked for');
});

t.test('the failover keys take their units and a fallback file loops unless told otherwise', async (t) => {
  const raw = validRaw();
  Object.assign(raw.channels[0], { fallback: { file: '/srv/jingle.aac' }, inputTimeoutMs: 1500, recoverSeconds: '10s', silenceSeconds: '30s' });
  raw.ingest = { leaseMs: 2000, bufferMs: 300 };
  const config = resolveConfig(raw);
  t.strictSame(config.channels[0]!.fallback, { file: '/srv/jingle.aac', loop: true });
  t.equal(config.channels[0]!.recoverSeconds, 10);
  t.equal(config.channels[0]!.silenceSeconds, 30);
  t.strictSame(config.ingest, { leaseMs: 2000, bufferMs: 300 });
});

t.test('Sentinel and Cluster store URLs are accepted', async (t) => {
  for (const store of ['redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster', 'redis-cluster://10.0.0.1:7000,10.0.0.2:7001']) {
    const raw = validRaw();
    raw.store = store;
    t.equal(resolveConfig(raw).store, store);
  }
});

t.test('durations and bitrates accept their units', async (t) => {
  const raw = validRaw();
  raw.hls = { segmentSeconds: '2000ms' };
  raw.channels[0].renditions[0].bitrate = '64 kbps';
  const config = resolveConfig(raw);
  t.equal(config.hls.segmentSeconds, 2);
  t.equal(config.channels[0]!.renditions[0]!.bitrate, 64000);
});

t.test('the source of the config is not modified by resolving it', async (t) => {
  const raw = validRaw();
  const before = structuredClone(raw);
  resolveConfig(raw, { ONAIR_ORIGIN_PORT: '9090' });
  t.strictSame(raw, before);
});

t.test('each malformed config is reported at the key path of its mistake', async (t) => {
  const cases: { name: string; change: (raw: Record<string, any>) => void; where: string }[] = [
    { name: 'unknown key at the root', change: (raw) => (raw.stores = 'memory'), where: 'stores' },
    { name: 'unknown key in a channel', change: (raw) => (raw.channels[0].bitrate = '96k'), where: 'channels[0].bitrate' },
    {
      name: 'unknown key in a rendition',
      change: (raw) => (raw.channels[0].renditions[1].codecs = 'aac'),
      where: 'channels[0].renditions[1].codecs',
    },
    { name: 'a codec onair does not encode', change: (raw) => (raw.channels[0].renditions[1].codec = 'opus'), where: 'channels[0].renditions[1].codec' },
    {
      name: 'an MP3 bitrate LAME cannot make',
      change: (raw) => Object.assign(raw.channels[0].renditions[1], { codec: 'mp3', bitrate: '384k' }),
      where: 'channels[0].renditions[1].bitrate',
    },
    {
      name: 'an MP3 bitrate under 32k',
      change: (raw) => Object.assign(raw.channels[0].renditions[0], { codec: 'mp3', bitrate: '24k' }),
      where: 'channels[0].renditions[0].bitrate',
    },
    {
      name: 'a channel of MP3 renditions only (AAC is its clock)',
      change: (raw) => raw.channels[0].renditions.forEach((rendition: Record<string, unknown>) => (rendition.codec = 'mp3')),
      where: 'channels[0].renditions',
    },
    {
      name: 'an MP3 rendition recorded',
      change: (raw) => {
        raw.channels[0].renditions[1].codec = 'mp3';
        raw.channels[0].recordRendition = 'hifi';
      },
      where: 'channels[0].recordRendition',
    },
    { name: 'unknown key in origin', change: (raw) => (raw.origin = { hots: 'x' }), where: 'origin.hots' },
    { name: 'a fallback that is neither silence nor a file', change: (raw) => (raw.channels[0].fallback = 'jingle'), where: 'channels[0].fallback' },
    { name: 'a fallback file without a path', change: (raw) => (raw.channels[0].fallback = { file: '' }), where: 'channels[0].fallback.file' },
    { name: 'an unknown key in the fallback', change: (raw) => (raw.channels[0].fallback = { file: 'a.aac', repeat: true }), where: 'channels[0].fallback.repeat' },
    { name: 'an input timeout too short', change: (raw) => (raw.channels[0].inputTimeoutMs = 10), where: 'channels[0].inputTimeoutMs' },
    { name: 'a recovery time that is not a duration', change: (raw) => (raw.channels[0].recoverSeconds = 'soon'), where: 'channels[0].recoverSeconds' },
    { name: 'a silence detection below a second', change: (raw) => (raw.channels[0].silenceSeconds = '200ms'), where: 'channels[0].silenceSeconds' },
    { name: 'an input named like the safety source', change: (raw) => (raw.channels[0].inputs[0].id = 'fallback'), where: 'channels[0].inputs[0].id' },
    { name: 'a part duration that is not a duration', change: (raw) => (raw.channels[0].partSeconds = 'short'), where: 'channels[0].partSeconds' },
    {
      name: 'parts as long as the segments',
      change: (raw) => {
        raw.hls = { segmentSeconds: 2 };
        Object.assign(raw.channels[0], { lowLatency: true, partSeconds: 2 });
      },
      where: 'channels[0].partSeconds',
    },
    { name: 'a signed channel without a signing key', change: (raw) => (raw.channels[0].access = 'signed'), where: 'channels[0].access' },
    { name: 'an API token too short to be a secret', change: (raw) => (raw.api = { tokens: ['short'] }), where: 'api.tokens[0]' },
    { name: 'a signing key too short to be a secret', change: (raw) => (raw.signing = { key: 'short' }), where: 'signing.key' },
    { name: 'an unknown container', change: (raw) => (raw.channels[0].container = 'mkv'), where: 'channels[0].container' },
    { name: 'low latency that is not a boolean', change: (raw) => (raw.channels[0].lowLatency = 'yes'), where: 'channels[0].lowLatency' },
    { name: 'a lease too short to renew', change: (raw) => (raw.ingest = { leaseMs: 50 }), where: 'ingest.leaseMs' },
    { name: 'an unknown key in ingest', change: (raw) => (raw.ingest = { lease: 1000 }), where: 'ingest.lease' },
    { name: 'a store URL of another scheme', change: (raw) => (raw.store = 'memcached://127.0.0.1'), where: 'store' },
    {
      name: 'a bitrate that is not one',
      change: (raw) => (raw.channels[0].renditions[1].bitrate = '96q'),
      where: 'channels[0].renditions[1].bitrate',
    },
    {
      name: 'a bitrate out of range',
      change: (raw) => (raw.channels[0].renditions[1].bitrate = '2M'),
      where: 'channels[0].renditions[1].bitrate',
    },
    {
      name: 'a missing bitrate',
      change: (raw) => delete raw.channels[0].renditions[1].bitrate,
      where: 'channels[0].renditions[1].bitrate',
    },
    {
      name: 'a duplicate rendition id',
      change: (raw) => (raw.channels[0].renditions[1].id = 'lofi'),
      where: 'channels[0].renditions[1].id',
    },
    {
      name: 'a duplicate channel id',
      change: (raw) => raw.channels.push({ ...structuredClone(raw.channels[0]), inputs: [{ id: 'main', url: '/srv/loop.mp3' }] }),
      where: 'channels[1].id',
    },
    {
      name: 'a duplicate input id',
      change: (raw) => raw.channels[0].inputs.push({ id: 'main', url: 'srt://0.0.0.0:9001?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }),
      where: 'channels[0].inputs[1].id',
    },
    { name: 'an id with an underscore', change: (raw) => (raw.channels[0].id = 'fip_rock'), where: 'channels[0].id' },
    {
      name: 'an id with uppercase letters',
      change: (raw) => (raw.channels[0].renditions[0].id = 'LoFi'),
      where: 'channels[0].renditions[0].id',
    },
    { name: 'an input id that is not a string', change: (raw) => (raw.channels[0].inputs[0].id = 7), where: 'channels[0].inputs[0].id' },
    { name: 'a port out of range', change: (raw) => (raw.origin = { port: 65536 }), where: 'origin.port' },
    { name: 'a negative port', change: (raw) => (raw.origin = { port: -1 }), where: 'origin.port' },
    { name: 'a port given as text', change: (raw) => (raw.origin = { port: 'http' }), where: 'origin.port' },
    { name: 'a trusted proxy that is a host name', change: (raw) => (raw.origin = { trustedProxies: ['varnish.local'] }), where: 'origin.trustedProxies[0]' },
    { name: 'a trusted range with a bad prefix', change: (raw) => (raw.origin = { trustedProxies: ['10.0.0.0/33'] }), where: 'origin.trustedProxies[0]' },
    { name: 'trusted proxies not a list', change: (raw) => (raw.origin = { trustedProxies: '127.0.0.1' }), where: 'origin.trustedProxies' },
    { name: 'no held requests per client', change: (raw) => (raw.origin = { limits: { heldRequestsPerClient: 0 } }), where: 'origin.limits.heldRequestsPerClient' },
    { name: 'a fractional connection cap', change: (raw) => (raw.origin = { limits: { connections: 1.5 } }), where: 'origin.limits.connections' },
    { name: 'an unknown limit', change: (raw) => (raw.origin = { limits: { heldRequestz: 5 } }), where: 'origin.limits.heldRequestz' },
    { name: 'a segment duration that is not one', change: (raw) => (raw.hls = { segmentSeconds: 'abc' }), where: 'hls.segmentSeconds' },
    { name: 'a segment duration too short', change: (raw) => (raw.hls = { segmentSeconds: 0.1 }), where: 'hls.segmentSeconds' },
    { name: 'a segment duration too long', change: (raw) => (raw.hls = { segmentSeconds: '13s' }), where: 'hls.segmentSeconds' },
    { name: 'a fractional window', change: (raw) => (raw.hls = { windowSegments: 6.5 }), where: 'hls.windowSegments' },
    { name: 'no channels', change: (raw) => (raw.channels = []), where: 'channels' },
    { name: 'channels missing', change: (raw) => delete raw.channels, where: 'channels' },
    { name: 'a channel without inputs', change: (raw) => delete raw.channels[0].inputs, where: 'channels[0].inputs' },
    { name: 'a channel with no renditions', change: (raw) => (raw.channels[0].renditions = []), where: 'channels[0].renditions' },
    { name: 'a store URL that is not redis', change: (raw) => (raw.store = 'mysql://127.0.0.1/onair'), where: 'store' },
    { name: 'a store URL with a space', change: (raw) => (raw.store = 'redis://127.0.0.1 :6379'), where: 'store' },
    {
      name: 'an input URL FFmpeg cannot read',
      change: (raw) => (raw.channels[0].inputs[0].url = 'ftp://example.com/feed'),
      where: 'channels[0].inputs[0].url',
    },
    {
      name: 'two SRT listeners on the same port in one channel',
      change: (raw) => raw.channels[0].inputs.push({ id: 'backup', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }),
      where: 'channels[0].inputs[1].url',
    },
    {
      name: 'two SRT listeners on the same port in two channels',
      change: (raw) =>
        raw.channels.push({ id: 'jazz', renditions: [{ id: 'hifi', bitrate: '192k' }], inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }] }),
      where: 'channels[1].inputs[0].url',
    },
    { name: 'an SRT latency in the wrong unit', change: (raw) => (raw.channels[0].inputs[0].srt = { latency: '120ms' }), where: 'channels[0].inputs[0].srt.latency' },
    {
      name: 'an SRT passphrase FFmpeg would misread (a space)',
      change: (raw) => (raw.channels[0].inputs[0].srt = { passphrase: 'correct horse battery' }),
      where: 'channels[0].inputs[0].srt.passphrase',
    },
    {
      name: 'an SRT passphrase shorter than SRT allows',
      change: (raw) => (raw.channels[0].inputs[0].srt = { passphrase: 'short' }),
      where: 'channels[0].inputs[0].srt.passphrase',
    },
    {
      name: 'an SRT stream id that would smuggle in another option',
      change: (raw) => (raw.channels[0].inputs[0].srt = { streamid: 'fip&latency=1' }),
      where: 'channels[0].inputs[0].srt.streamid',
    },
    { name: 'an unsupported sample rate', change: (raw) => (raw.channels[0].sampleRate = 32000), where: 'channels[0].sampleRate' },
    { name: 'an unknown log level', change: (raw) => (raw.log = { level: 'loud' }), where: 'log.level' },
    { name: 'a recorded rendition the channel does not have', change: (raw) => (raw.channels[0].recordRendition = 'midfi'), where: 'channels[0].recordRendition' },
    { name: 'a session end delay below a second', change: (raw) => (raw.channels[0].endAfterSeconds = '500ms'), where: 'channels[0].endAfterSeconds' },
    { name: 'record that is not a boolean', change: (raw) => (raw.channels[0].record = 'yes'), where: 'channels[0].record' },
    { name: 'a channel named like the recordings URLs', change: (raw) => (raw.channels[0].id = 'recordings'), where: 'channels[0].id' },
    { name: 'a channel named like the control API path', change: (raw) => (raw.channels[0].id = 'api'), where: 'channels[0].id' },
    { name: 'a channel named like the access-log ingest path', change: (raw) => (raw.channels[0].id = 'ingest'), where: 'channels[0].id' },
    { name: 'an admin port out of range', change: (raw) => (raw.admin = { port: 70000 }), where: 'admin.port' },
    { name: 'an unknown admin key', change: (raw) => (raw.admin = { tokens: [] }), where: 'admin.tokens' },
    { name: 'a webhook that is not an http(s) URL', change: (raw) => (raw.recordings = { webhook: { url: 'ftp://cms.example/hook' } }), where: 'recordings.webhook.url' },
    { name: 'a retention size that is not a size', change: (raw) => (raw.recordings = { retention: { maxSize: 'lots' } }), where: 'recordings.retention.maxSize' },
    { name: 'a session maximum under a minute', change: (raw) => (raw.channels[0].recordMaxSeconds = '30s'), where: 'channels[0].recordMaxSeconds' },
    { name: 'a retention age under a minute', change: (raw) => (raw.channels[0].recordRetention = { maxAge: '10s' }), where: 'channels[0].recordRetention.maxAge' },
    { name: 'a webhook secret too short to sign with', change: (raw) => (raw.recordings = { webhook: { url: 'https://cms.example/hook', secret: 'short' } }), where: 'recordings.webhook.secret' },
    { name: 'an S3 bucket name S3 refuses', change: (raw) => (raw.recordings = { storage: { s3: { bucket: 'Bad_Bucket' } } }), where: 'recordings.storage.s3.bucket' },
    { name: 'a presigned URL life past S3\'s week', change: (raw) => (raw.recordings = { storage: { s3: { bucket: 'onair', presignSeconds: 604_801 } } }), where: 'recordings.storage.s3.presignSeconds' },
  ];
  t.ok(cases.length >= 12);
  for (const { name, change, where } of cases) {
    t.test(name, async (t) => {
      const raw = validRaw();
      change(raw);
      assertConfigError(t, caught(() => resolveConfig(raw)), 'ONAIR_CONFIG_INVALID', where);
    });
  }
});

t.test('a rendition is AAC unless it says codec: mp3', async (t) => {
  const channel = resolveConfig({
    channels: [rawTestChannel({ renditions: [{ id: 'hifi', bitrate: '192k' }, { id: 'mp3', bitrate: '320k', codec: 'mp3' }, { id: 'lofi', bitrate: '32k', codec: 'aac' }] })],
  }).channels[0]!;
  t.same(channel.renditions.map((rendition) => [rendition.id, rendition.codec, rendition.bitrate]), [
    ['hifi', 'aac', 192000],
    ['mp3', 'mp3', 320000],
    ['lofi', 'aac', 32000],
  ]);
});

t.test('recording keys resolve: durations parsed, the recorded rendition kept, the environment overrides the recordings section', async (t) => {
  const raw = validRaw();
  Object.assign(raw.channels[0], { record: true, endAfterSeconds: '2m', recordRendition: 'lofi' });
  const config = resolveConfig(raw, {
    ONAIR_RECORDINGS_DIR: '/srv/recordings',
    ONAIR_RECORDINGS_PUBLIC_URL: 'https://radio.example',
    ONAIR_RECORDINGS_WEBHOOK_URL: 'https://cms.example/hooks/onair',
    ONAIR_RECORDINGS_WEBHOOK_SECRET: 'a-shared-secret-of-some-length',
  });
  t.match(config.channels[0], { record: true, endAfterSeconds: 120, recordRendition: 'lofi' });
  const retained = resolveConfig({ ...validRaw(), recordings: { retention: { maxAge: '30d', maxSize: '20G' }, keepSegments: true } });
  t.strictSame(retained.recordings.retention, { maxAge: 30 * 86400, maxSize: 20 * 1024 ** 3 }, 'retention: 30d and 20G in seconds and bytes');
  t.equal(retained.recordings.keepSegments, true);
  const fmp4 = validRaw();
  Object.assign(fmp4.channels[0], { container: 'fmp4', record: true });
  t.match(resolveConfig(fmp4).channels[0], { container: 'fmp4', record: true }, 'an fMP4 channel records too');
  t.strictSame(config.recordings, {
    dir: '/srv/recordings',
    publicUrl: 'https://radio.example',
    webhook: { url: 'https://cms.example/hooks/onair', secret: 'a-shared-secret-of-some-length' },
    retention: {},
    keepSegments: false,
  });
});

t.test('the admin listener: loopback and the role default unless set, also from the environment; metrics keys stay optional', async (t) => {
  const defaults = resolveConfig(validRaw());
  t.strictSame(defaults.admin, { host: '127.0.0.1' }, 'no port: each role picks its default (preflight.ts)');
  t.strictSame(defaults.metrics, {}, 'the deprecated metrics keys are only read when given');
  const fromEnvironment = resolveConfig(validRaw(), { ONAIR_ADMIN_HOST: '0.0.0.0', ONAIR_ADMIN_PORT: '9100' });
  t.strictSame(fromEnvironment.admin, { host: '0.0.0.0', port: 9100 });
  const legacy = resolveConfig({ ...validRaw(), metrics: { host: '127.0.0.2', port: 9464 } });
  t.strictSame(legacy.metrics, { host: '127.0.0.2', port: 9464 });
});

t.test('SRT options within the rules are kept as given', async (t) => {
  const raw = validRaw();
  raw.channels[0].inputs[0].srt = { latency: 120, passphrase: 'correct-horse-battery', streamid: 'fip/main' };
  t.strictSame(resolveConfig(raw).channels[0]!.inputs[0]!.srt, { latency: 120, passphrase: 'correct-horse-battery', streamid: 'fip/main' });
});

t.test('SRT callers and listeners on different ports do not conflict', async (t) => {
  const raw = validRaw();
  raw.channels[0].inputs.push({ id: 'backup', url: 'srt://0.0.0.0:9001?mode=listener', srt: { passphrase: 'onair-test-passphrase' } });
  raw.channels[0].inputs.push({ id: 'remote', url: 'srt://203.0.113.7:9000?mode=caller' });
  t.equal(resolveConfig(raw).channels[0]!.inputs.length, 3);
});

t.test('text that is not valid YAML is reported with its line and column', async (t) => {
  const text = 'store: memory\nchannels:\n  - id: fip\n    renditions: [ { id: lofi, bitrate: 32k }\n';
  assertConfigError(t, caught(() => parseConfigText(text, {}, 'onair.yaml')), 'ONAIR_CONFIG_INVALID', /^onair\.yaml:\d+:\d+$/);
});

t.test('a key given twice in YAML is reported at its line', async (t) => {
  const text = 'store: memory\norigin:\n  port: 8080\n  port: 8081\n';
  const error = caught(() => parseConfigText(text, {}, 'onair.yaml'));
  assertConfigError(t, error, 'ONAIR_CONFIG_INVALID', /^onair\.yaml:4:\d+$/);
});

t.test('a YAML document that is not a mapping is reported at the root', async (t) => {
  for (const text of ['- store: memory\n', 'just text\n', '42\n']) {
    assertConfigError(t, caught(() => parseConfigText(text)), 'ONAIR_CONFIG_INVALID', '(root)');
  }
  assertConfigError(t, caught(() => resolveConfig(null)), 'ONAIR_CONFIG_INVALID', '(root)');
});

t.test('an empty file asks for channels', async (t) => {
  assertConfigError(t, caught(() => parseConfigText('')), 'ONAIR_CONFIG_INVALID', 'channels');
});

t.test('environment variables override the file', async (t) => {
  const config = parseConfigText(ISSUE_YAML, {
    ONAIR_STORE: 'memory',
    ONAIR_ORIGIN_PORT: '9090',
    ONAIR_ORIGIN_HOST: '0.0.0.0',
    ONAIR_LOG_LEVEL: 'warn',
  });
  t.equal(config.store, 'memory');
  t.equal(config.origin.port, 9090);
  t.equal(config.origin.host, '0.0.0.0');
  t.equal(config.log.level, 'warn');
  t.strictSame(config.channels, ISSUE_CONFIG.channels);
});

t.test('environment variables fill keys the file leaves out', async (t) => {
  const config = resolveConfig(validRaw(), { ONAIR_ORIGIN_PORT: '9090', ONAIR_STORE: 'redis://redis:6379/1' });
  t.strictSame(config.origin, { host: '127.0.0.1', port: 9090, ...ORIGIN_PROTECTION_DEFAULTS });
  t.equal(config.store, 'redis://redis:6379/1');
});

t.test('empty environment variables are ignored', async (t) => {
  const config = parseConfigText(ISSUE_YAML, { ONAIR_STORE: '', ONAIR_ORIGIN_PORT: '' });
  t.equal(config.store, 'redis://127.0.0.1:6379/0');
  t.equal(config.origin.port, 8080);
});

t.test('a bad environment value is reported at the key path it overrides', async (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ ONAIR_ORIGIN_PORT: 'http' }, 'origin.port'],
    [{ ONAIR_ORIGIN_PORT: '70000' }, 'origin.port'],
    [{ ONAIR_ORIGIN_PORT: '8080.5' }, 'origin.port'],
    [{ ONAIR_STORE: 'postgres://db/onair' }, 'store'],
    [{ ONAIR_LOG_LEVEL: 'verbose' }, 'log.level'],
  ];
  for (const [environment, where] of cases) {
    assertConfigError(t, caught(() => parseConfigText(ISSUE_YAML, environment)), 'ONAIR_CONFIG_INVALID', where);
  }
});

t.test('loadConfigFile reads a YAML file and applies the environment it is given', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-config-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, 'onair.yaml');
  writeFileSync(path, ISSUE_YAML);
  const config = await loadConfigFile(path, { ONAIR_ORIGIN_PORT: '9090' });
  t.equal(config.origin.port, 9090);
  t.equal(config.store, 'redis://127.0.0.1:6379/0');
  t.ok(Object.isFrozen(config));
});

t.test('loadConfigFile reads JSON too', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-config-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, 'onair.json');
  writeFileSync(path, JSON.stringify(ISSUE_CONFIG));
  t.strictSame(await loadConfigFile(path, {}), ISSUE_CONFIG);
});

t.test('loadConfigFile names the file in errors about its content', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-config-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, 'broken.yaml');
  writeFileSync(path, 'channels: [\n');
  const error = await caughtAsync(() => loadConfigFile(path, {}));
  t.ok(isOnairError(error, 'ONAIR_CONFIG_INVALID'));
  t.ok((error as OnairError).where?.startsWith(`${path}:`), 'where starts with the file path');
});

t.test('a missing config file is ONAIR_CONFIG_UNREADABLE, naming the file', async (t) => {
  const path = join(tmpdir(), `onair-missing-${process.pid}-${Date.now()}.yaml`);
  const error = await caughtAsync(() => loadConfigFile(path, {}));
  assertConfigError(t, error, 'ONAIR_CONFIG_UNREADABLE', path);
});

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures');

t.test('the fixtures load; the full one shows every top-level key and every channel key', async (t) => {
  const minimal = await loadConfigFile(join(FIXTURES, 'channels.yaml'));
  t.equal(minimal.channels.length > 0, true);
  const text = await readFile(join(FIXTURES, 'channels.full.yaml'), 'utf8');
  const full = await loadConfigFile(join(FIXTURES, 'channels.full.yaml'));
  for (const key of Object.keys(full)) t.match(text, new RegExp(`^${key}:`, 'm'), `top-level ${key} is shown`);
  for (const key of Object.keys(full.channels[0]!)) t.match(text, new RegExp(`^ {2}(- | {2})(# )?${key}:`, "m"), `channels[].${key} is shown`);
});
