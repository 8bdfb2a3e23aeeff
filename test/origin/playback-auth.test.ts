/**
 * POST /auth/playback (src/origin/playback-auth.ts) on a real origin built by buildOrigin over a
 * MemoryStore: a signed channel (fip, fmp4, so it has an MPD), a public one (jazz) and another
 * signed one (news). Keys are generated here with jose; the identity provider's key is a PEM
 * file in a temp dir, or a JWKS served by a loopback HTTP server this test runs. Each refusal's
 * code, the claim → channel mapping, and that the returned signed URLs are accepted by the
 * same origin (master, media playlist, segment, MPD) are checked.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWTPayload } from 'jose';
import t, { type Test } from 'tap';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { playbackAuthOptionsOf, playbackAuthPlugin, playbackChannelsOf, type PlaybackAuthOptions } from '../../src/origin/playback-auth.js';
import { resolveConfig } from '../../src/config/load-config.js';
import type { PlaybackChannel } from '../../src/origin/playback-auth-entitlements.js';
import { createPlaybackTokenVerifier, MAX_JWKS_BYTES, type PlaybackTokenOptions } from '../../src/origin/playback-auth-token.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { ManualClock } from '../helpers/manual-clock.js';

const SIGNING_KEY = 'onair-test-signing-key-0123456789abcdef';
const ISSUER = 'https://id.example.test/';
const AUDIENCE = 'onair-playback';
/** Each test gets its own, at the same start: tokens are issued and judged on it. */
let clock = new ManualClock(Date.UTC(2027, 0, 1, 12));
t.beforeEach(() => {
  clock = new ManualClock(Date.UTC(2027, 0, 1, 12));
});
const nowSeconds = (): number => Math.floor(clock.now() / 1000);

const CHANNELS: PlaybackChannel[] = [
  { id: 'fip', access: 'signed', container: 'fmp4', mounts: ['/fip-hifi.aac'] },
  { id: 'jazz', access: 'public', container: 'ts', mounts: ['/jazz-hifi.aac', '/jazz-mp3.mp3'] },
  { id: 'news', access: 'signed', container: 'ts', mounts: ['/news-hifi.aac'] },
];
const TIERS = { free: ['jazz'], premium: ['fip', 'jazz', 'news'] };

const rsa = await generateKeyPair('RS256', { extractable: true });
const otherRsa = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const ec384 = await generateKeyPair('ES384', { extractable: true });
const rsaPem = await exportSPKI(rsa.publicKey);

const directory = await mkdtemp(join(tmpdir(), 'onair-playback-auth-'));
t.teardown(() => rm(directory, { recursive: true, force: true }));
const pemFile = join(directory, 'idp.pem');
await writeFile(pemFile, rsaPem);

interface Issue {
  key?: CryptoKey | Uint8Array;
  alg?: string;
  kid?: string;
  iss?: string | null;
  aud?: string | null;
  /** Seconds from now; null: no exp. */
  expiresIn?: number | null;
  notBefore?: number;
}

/** A JWT as the identity provider would issue it (RS256 with its key unless told otherwise). */
function issue(claims: JWTPayload, options: Issue = {}): Promise<string> {
  const { key = rsa.privateKey, alg = 'RS256', kid, iss = ISSUER, aud = AUDIENCE, expiresIn = 600 } = options;
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setIssuedAt(nowSeconds());
  if (iss !== null) jwt.setIssuer(iss);
  if (aud !== null) jwt.setAudience(aud);
  if (expiresIn !== null) jwt.setExpirationTime(nowSeconds() + expiresIn);
  if (options.notBefore !== undefined) jwt.setNotBefore(nowSeconds() + options.notBefore);
  return jwt.sign(key);
}

const FIP_MASTER = '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS="mp4a.40.2"\nfip_hifi.m3u8\n';
const FIP_MEDIA = [
  '#EXTM3U',
  '#EXT-X-VERSION:6',
  '#EXT-X-TARGETDURATION:4',
  '#EXT-X-MEDIA-SEQUENCE:100',
  '#EXT-X-MAP:URI="hifi/init-1.mp4"',
  '#EXT-X-PROGRAM-DATE-TIME:2027-01-01T12:00:00.000Z',
  '#EXTINF:3.989,',
  'hifi/100-1.m4s',
  '',
].join('\n');
const SEGMENT = Buffer.from('segment fip/hifi/100-1 '.repeat(40));

async function filledStore(t: Test): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  await store.putSegment('fip', 'hifi', '100-1.m4s', SEGMENT, 600);
  await store.putSegment('fip', 'hifi', 'init-1.mp4', Buffer.from('init'), 600);
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': FIP_MASTER, 'fip_hifi.m3u8': FIP_MEDIA, 'fip.mpd': '<?xml version="1.0"?><MPD/>' }, state: '{}' });
  return store;
}

const verifierDefaults = (): PlaybackTokenOptions => ({ issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256', 'ES256'], clockToleranceSeconds: 30, publicKeyFile: pemFile, clock });

/** The origin as `onair origin` builds it, with POST /auth/playback (unless `playback` is null). */
async function startOrigin(t: Test, playback: Partial<PlaybackAuthOptions> | null = {}, verifier: Partial<PlaybackTokenOptions> = {}): Promise<FastifyInstance> {
  const store = await filledStore(t);
  const playbackAuth: PlaybackAuthOptions | undefined =
    playback === null
      ? undefined
      : {
          verifier: await createPlaybackTokenVerifier({ ...verifierDefaults(), ...verifier }),
          channels: () => CHANNELS,
          signingKey: SIGNING_KEY,
          channelsClaim: 'channels',
          tierClaim: 'tier',
          tiers: TIERS,
          urlTtlSeconds: 3600,
          requestsPerMinute: 1000,
          clock,
          ...playback,
        };
  const app = await buildOrigin({
    store,
    channels: CHANNELS.map((channel) => ({ id: channel.id, renditions: ['hifi'] })),
    targetDurationSeconds: 4,
    clock,
    signing: { key: SIGNING_KEY, signedChannels: () => new Set(['fip', 'news']) },
    playbackAuth,
  });
  t.teardown(() => app.close());
  return app;
}

function authorize(app: FastifyInstance, jwt: string | undefined, how: 'header' | 'body' = 'header') {
  if (how === 'body') return app.inject({ method: 'POST', url: '/auth/playback', payload: { token: jwt } });
  return app.inject({ method: 'POST', url: '/auth/playback', headers: jwt === undefined ? {} : { authorization: `Bearer ${jwt}` } });
}

interface Granted {
  expiresAt: number;
  expires: string;
  channels: { id: string; access: string; hls: string; dash: string | null; mounts: string[] }[];
}

t.test('a premium JWT gets signed URLs for the signed channels and plain ones for the public channel, and the origin plays them', async (t) => {
  const app = await startOrigin(t);
  const reply = await authorize(app, await issue({ tier: 'premium' }));
  t.equal(reply.statusCode, 200);
  t.equal(reply.headers['cache-control'], 'no-store', 'an answer with tokens is never cached');
  const granted = reply.json<Granted>();
  t.same(granted.channels.map((channel) => channel.id), ['fip', 'jazz', 'news'], 'the tier maps to its channels, in config order');
  // Rounded up to a whole minute after now + urlTtl (1 h).
  t.equal(granted.expiresAt, nowSeconds() + 3600);
  t.equal(granted.expires, new Date(granted.expiresAt * 1000).toISOString());

  const [fip, jazz, news] = granted.channels;
  t.match(fip!.hls, /^\/fip\/fip\.m3u8\?token=\d+~[\w-]+~[\w-]{43}$/, 'fip: a signed master playlist URL');
  t.match(fip!.dash, /^\/fip\/fip\.mpd\?token=/, 'fip is fmp4: a signed MPD too');
  t.equal(fip!.mounts.length, 1);
  t.equal(fip!.mounts[0], `/fip-hifi.aac?${fip!.hls.split('?')[1]}`, "a signed channel's mounts carry its token, which covers them");
  t.same(jazz, { id: 'jazz', access: 'public', hls: '/jazz/jazz.m3u8', dash: null, mounts: ['/jazz-hifi.aac', '/jazz-mp3.mp3'] }, 'the public channel: plain URLs and its mounts');
  t.match(news!.hls, /^\/news\/news\.m3u8\?token=/);
  t.equal(news!.dash, null, 'a ts channel has no MPD');

  // The URLs work on the origin: without the token 403, with it the master, the media playlist
  // (its URIs carry the token), the init segment and the segment.
  t.equal((await app.inject('/fip/fip.m3u8')).statusCode, 403, 'the channel is protected');
  const master = await app.inject(fip!.hls);
  t.equal(master.statusCode, 200, 'the signed master plays');
  const token = new URL(fip!.hls, 'http://origin').searchParams.get('token')!;
  t.match(master.body, `fip_hifi.m3u8?token=${token}`, 'its variant carries the token');
  const media = await app.inject(`/fip/fip_hifi.m3u8?token=${token}`);
  t.equal(media.statusCode, 200);
  const segmentUri = media.body.split('\n').find((line) => line.startsWith('hifi/100-1.m4s'))!;
  t.equal(segmentUri, `hifi/100-1.m4s?token=${token}`);
  const segment = await app.inject(`/fip/${segmentUri}`);
  t.equal(segment.statusCode, 200, 'the segment plays');
  t.same(segment.rawPayload, SEGMENT);
  t.equal((await app.inject(fip!.dash!)).statusCode, 200, 'the MPD plays');
  t.equal((await app.inject(`/news/news.m3u8?token=${token}`)).statusCode, 403, "fip's token does not open news");

  await clock.advance(3600 * 1000 - 1000);
  t.equal((await app.inject(fip!.hls)).statusCode, 200, 'the URL works until the returned expiresAt');
  await clock.advance(1000);
  t.equal((await app.inject(fip!.hls)).statusCode, 403, 'and expires then');
});

t.test('entitlements: the channels claim (a list or space-separated), tiers, several tiers, unknown ids and tiers ignored', async (t) => {
  const app = await startOrigin(t);
  const idsOf = async (claims: JWTPayload, how: 'header' | 'body' = 'header'): Promise<string[]> => {
    const reply = await authorize(app, await issue(claims), how);
    t.equal(reply.statusCode, 200, JSON.stringify(claims));
    return reply.json<Granted>().channels.map((channel) => channel.id);
  };
  t.same(await idsOf({ channels: ['news', 'nope'] }), ['news'], 'a list; an unknown channel is ignored');
  t.same(await idsOf({ channels: 'news fip' }), ['fip', 'news'], 'a space-separated string, as OAuth scopes');
  t.same(await idsOf({ tier: 'free' }), ['jazz'], 'the free tier: the public channel only');
  t.same(await idsOf({ tier: ['free', 'premium'] }), ['fip', 'jazz', 'news'], 'several tiers');
  t.same(await idsOf({ tier: 'free', channels: ['news'] }), ['jazz', 'news'], 'tier and channels together');
  t.same(await idsOf({ tier: 'gold' }), [], 'an unknown tier entitles nothing');
  t.same(await idsOf({ tier: '__proto__' }), [], 'no inherited property is a tier');
  t.same(await idsOf({}), [], 'no claim: nothing');
  t.same(await idsOf({ tier: 'free' }, 'body'), ['jazz'], 'the JWT in a JSON body works as well');
});

t.test('publicUrl is the base of the returned URLs (a CDN)', async (t) => {
  const app = await startOrigin(t, { publicUrl: 'https://cdn.radio.example/' });
  const granted = (await authorize(app, await issue({ tier: 'premium' }))).json<Granted>();
  t.match(granted.channels[0]!.hls, /^https:\/\/cdn\.radio\.example\/fip\/fip\.m3u8\?token=/);
  t.same(granted.channels[1]!.mounts, ['https://cdn.radio.example/jazz-hifi.aac', 'https://cdn.radio.example/jazz-mp3.mp3']);
});

t.test("the config's channels as the endpoint sees them: access, container, mounts with their codec's extension", async (t) => {
  const config = resolveConfig({
    signing: { key: SIGNING_KEY },
    channels: [
      { id: 'fip', access: 'signed', container: 'fmp4', renditions: [{ id: 'hifi', bitrate: '96k' }], inputs: [{ id: 'main', url: 'http://127.0.0.1:8000/fip' }] },
      { id: 'jazz', renditions: [{ id: 'hifi', bitrate: '96k' }, { id: 'mp3', bitrate: '128k', codec: 'mp3' }], inputs: [{ id: 'main', url: 'http://127.0.0.1:8000/jazz' }] },
    ],
  });
  t.same(playbackChannelsOf(config), [
    { id: 'fip', access: 'signed', container: 'fmp4', mounts: ['/fip-hifi.aac'] },
    { id: 'jazz', access: 'public', container: 'ts', mounts: ['/jazz-hifi.aac', '/jazz-mp3.mp3'] },
  ]);
  t.equal(await playbackAuthOptionsOf(config, () => []), undefined, 'no entitlements: no endpoint');
});

/** Posts and returns [status, reply name]. */
async function refusal(app: FastifyInstance, jwt: string | undefined, how: 'header' | 'body' = 'header'): Promise<[number, string]> {
  const reply = await authorize(app, jwt, how);
  return [reply.statusCode, reply.json<{ error: string }>().error];
}

t.test('every refusal is a 401 with its reason code, never cached, with WWW-Authenticate', async (t) => {
  const app = await startOrigin(t);
  const premium = { tier: 'premium' };

  t.same(await refusal(app, undefined), [401, 'jwt_missing'], 'no header, no body');
  t.same(await refusal(app, undefined, 'body'), [401, 'jwt_missing'], 'a body without a token');
  const basic = await app.inject({ method: 'POST', url: '/auth/playback', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
  t.same([basic.statusCode, basic.json<{ error: string }>().error], [401, 'jwt_missing'], 'another scheme than Bearer');
  t.equal(basic.headers['cache-control'], 'no-store');
  t.match(basic.headers['www-authenticate'], /^Bearer error="invalid_token"/, 'RFC 6750 §3');

  t.same(await refusal(app, 'not.a.jwt'), [401, 'jwt_malformed']);
  t.same(await refusal(app, 'x'.repeat(9000)), [401, 'jwt_malformed'], 'longer than 8192 characters');

  t.same(await refusal(app, await issue(premium, { alg: 'HS256', key: new TextEncoder().encode(rsaPem) })), [401, 'jwt_algorithm'], 'HS256 keyed with the public key (algorithm confusion)');
  t.same(await refusal(app, new UnsecuredJWT({ ...premium, iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 600 }).encode()), [401, 'jwt_algorithm'], 'alg: none');
  t.same(await refusal(app, await issue(premium, { alg: 'ES384', key: ec384.privateKey })), [401, 'jwt_algorithm'], 'an algorithm not configured');
  t.same(await refusal(app, await issue(premium, { alg: 'ES256', key: ec.privateKey })), [401, 'jwt_key_unknown'], 'ES256 is allowed, but the PEM key is RSA');
  t.same(await refusal(app, await issue(premium, { key: otherRsa.privateKey })), [401, 'jwt_signature'], 'signed by another key');
  const good = await issue(premium);
  const [header, payload] = good.split('.');
  const tampered = Buffer.from(JSON.stringify({ ...premium, tier: 'premium', channels: ['news'], iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 600 })).toString('base64url');
  t.same(await refusal(app, `${header}.${tampered}.${good.split('.')[2]}`), [401, 'jwt_signature'], 'claims changed after signing');
  t.ok(payload);

  t.same(await refusal(app, await issue(premium, { expiresIn: -31 })), [401, 'jwt_expired'], 'expired beyond the 30 s tolerance');
  t.equal((await authorize(app, await issue(premium, { expiresIn: -29 }))).statusCode, 200, 'expired within the tolerance: accepted');
  t.same(await refusal(app, await issue(premium, { notBefore: 60 })), [401, 'jwt_not_yet_valid'], 'nbf a minute ahead');
  t.equal((await authorize(app, await issue(premium, { notBefore: 20 }))).statusCode, 200, 'nbf within the tolerance: accepted');
  t.same(await refusal(app, await issue(premium, { iss: 'https://evil.example/' })), [401, 'jwt_issuer']);
  t.same(await refusal(app, await issue(premium, { aud: 'another-service' })), [401, 'jwt_audience']);
  t.same(await refusal(app, await issue(premium, { expiresIn: null })), [401, 'jwt_claims'], 'no exp');
  t.same(await refusal(app, await issue(premium, { aud: null })), [401, 'jwt_claims'], 'no aud');
  t.same(await refusal(app, await issue({ tier: { premium: true } })), [401, 'jwt_claims'], 'a tier claim of the wrong type');
  t.same(await refusal(app, await issue({ channels: [1, 2] })), [401, 'jwt_claims'], 'a channels claim of the wrong type');
});

t.test('a tolerance of 0 refuses a token one second past exp', async (t) => {
  const app = await startOrigin(t, {}, { clockToleranceSeconds: 0 });
  const jwt = await issue({ tier: 'free' }, { expiresIn: 1 });
  t.equal((await authorize(app, jwt)).statusCode, 200);
  await clock.advance(1000);
  t.same(await refusal(app, jwt), [401, 'jwt_expired']);
});

t.test('bounds: a body over 16 KiB is a 413, a body neither JSON nor text 415, and each address gets requestsPerMinute', async (t) => {
  const app = await startOrigin(t, { requestsPerMinute: 3 });
  const big = await app.inject({ method: 'POST', url: '/auth/playback', payload: { token: 'x'.repeat(17 * 1024) } });
  t.equal(big.statusCode, 413);
  const text = await app.inject({ method: 'POST', url: '/auth/playback', headers: { 'content-type': 'application/xml' }, payload: '<token/>' });
  t.equal(text.statusCode, 415);
  const third = await authorize(app, await issue({ tier: 'free' }));
  t.equal(third.statusCode, 200);
  const fourth = await authorize(app, await issue({ tier: 'free' }));
  t.equal(fourth.statusCode, 429, 'the fourth in a minute');
  t.equal(fourth.json<{ error: string }>().error, 'rate_limited');
  t.ok(fourth.headers['retry-after'], 'with Retry-After');
});

t.test('without entitlements the path is a 404; a browser preflight is allowed to POST with Authorization', async (t) => {
  const off = await startOrigin(t, null);
  t.equal((await authorize(off, await issue({ tier: 'free' }))).statusCode, 404);

  const app = await startOrigin(t);
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/auth/playback',
    headers: { origin: 'https://player.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  t.equal(preflight.statusCode, 204);
  t.match(preflight.headers['access-control-allow-methods'], /POST/);
  t.match(preflight.headers['access-control-allow-headers'], /authorization/i);
  const cross = await app.inject({ method: 'POST', url: '/auth/playback', headers: { origin: 'https://player.example', authorization: `Bearer ${await issue({ tier: 'free' })}` } });
  t.equal(cross.headers['access-control-allow-origin'], '*');
});

/** A JWKS endpoint on loopback whose answer the test sets; counts its requests. */
async function startJwksServer(t: Test) {
  const server = {
    hits: 0,
    answer: (response: ServerResponse): void => void response.end(),
  };
  const http = createServer((request: IncomingMessage, response: ServerResponse) => {
    server.hits += 1;
    server.answer(response);
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.teardown(() => {
    http.closeAllConnections();
    http.close();
  });
  return Object.assign(server, { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/.well-known/jwks.json` });
}

const json = (body: unknown) => (response: ServerResponse): void => {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
};

t.test('a JWKS URL: keys by kid, an unknown kid refetches once per cooldown, a failing provider is a 503 without a fetch per request', async (t) => {
  const jwks = await startJwksServer(t);
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ];
  jwks.answer = json({ keys });
  const app = await startOrigin(t, {}, { publicKeyFile: undefined, jwksUrl: jwks.url, jwks: { timeoutMs: 300, cooldownSeconds: 30, cacheMaxAgeSeconds: 600 } });

  t.equal((await authorize(app, await issue({ tier: 'free' }, { kid: 'rsa-1' }))).statusCode, 200, 'an RS256 key of the set');
  t.equal((await authorize(app, await issue({ tier: 'free' }, { kid: 'ec-1', alg: 'ES256', key: ec.privateKey }))).statusCode, 200, 'an ES256 key of the set');
  t.equal(jwks.hits, 1, 'the set is fetched once and cached');
  t.same(await refusal(app, await issue({ tier: 'free' }, { kid: 'rsa-1', key: otherRsa.privateKey })), [401, 'jwt_signature']);

  t.same(await refusal(app, await issue({ tier: 'free' }, { kid: 'rotated-2', key: otherRsa.privateKey })), [401, 'jwt_key_unknown'], 'an unknown kid');
  t.same(await refusal(app, await issue({ tier: 'free' }, { kid: 'rotated-3', key: otherRsa.privateKey })), [401, 'jwt_key_unknown']);
  t.equal(jwks.hits, 1, 'within the cooldown an unknown kid does not refetch the set');

  // A provider that fails: 503 jwks_unavailable (its fault, not the client's), and the next
  // requests within a second get it at once, without asking the provider again.
  const failing = await startOrigin(t, {}, { publicKeyFile: undefined, jwksUrl: jwks.url, jwks: { timeoutMs: 300, cooldownSeconds: 30, cacheMaxAgeSeconds: 600 } });
  jwks.answer = (response) => {
    response.writeHead(500);
    response.end();
  };
  const before = jwks.hits;
  const down = await authorize(failing, await issue({ tier: 'free' }, { kid: 'rsa-1' }));
  t.equal(down.statusCode, 503);
  t.equal(down.json<{ error: string }>().error, 'jwks_unavailable');
  t.equal(down.headers['retry-after'], '1');
  t.equal(down.headers['cache-control'], 'no-store');
  for (let attempt = 0; attempt < 5; attempt++) t.equal((await authorize(failing, await issue({ tier: 'free' }, { kid: 'rsa-1' }))).statusCode, 503);
  t.equal(jwks.hits, before + 1, 'one fetch for six requests');
  await clock.advance(1000);
  jwks.answer = json({ keys });
  t.equal((await authorize(failing, await issue({ tier: 'free' }, { kid: 'rsa-1' }))).statusCode, 200, 'a second later the provider is asked again');
  t.equal(jwks.hits, before + 2);
});

t.test('while the provider fails, the keys it served last still verify its tokens, even past cacheMaxAge', async (t) => {
  const jwks = await startJwksServer(t);
  const keys = [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256' }];
  jwks.answer = json({ keys });
  // cacheMaxAge 0: every request refetches, so each one meets the outage.
  const app = await startOrigin(t, {}, { publicKeyFile: undefined, jwksUrl: jwks.url, jwks: { timeoutMs: 300, cooldownSeconds: 30, cacheMaxAgeSeconds: 0 } });
  t.equal((await authorize(app, await issue({ tier: 'free' }, { kid: 'rsa-1' }))).statusCode, 200);
  t.equal(jwks.hits, 1);
  jwks.answer = (response) => {
    response.writeHead(502);
    response.end();
  };
  t.equal((await authorize(app, await issue({ tier: 'free' }, { kid: 'rsa-1' }))).statusCode, 200, 'the refetch failed: the last keys verify');
  t.equal(jwks.hits, 2);
  t.equal((await authorize(app, await issue({ tier: 'free' }, { kid: 'rsa-1' }))).statusCode, 200, 'within the backoff: the last keys, no fetch');
  t.equal(jwks.hits, 2);
  t.same(await refusal(app, await issue({ tier: 'free' }, { kid: 'rsa-1', key: otherRsa.privateKey })), [401, 'jwt_signature'], 'and they still refuse a forged token');
});

t.test('a JWKS fetch is bounded: a provider that never answers times out, an oversized or invalid set is refused', async (t) => {
  const jwks = await startJwksServer(t);
  const jwksOptions = { publicKeyFile: undefined, jwksUrl: jwks.url, jwks: { timeoutMs: 300, cooldownSeconds: 30, cacheMaxAgeSeconds: 600 } };
  jwks.answer = () => undefined; // holds the request open
  const hanging = await startOrigin(t, {}, jwksOptions);
  t.same(await refusal(hanging, await issue({ tier: 'free' }, { kid: 'rsa-1' })), [503, 'jwks_unavailable'], 'timed out');

  jwks.answer = (response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(`{"keys":[],"padding":"${'x'.repeat(MAX_JWKS_BYTES)}"}`);
  };
  const oversized = await startOrigin(t, {}, jwksOptions);
  t.same(await refusal(oversized, await issue({ tier: 'free' }, { kid: 'rsa-1' })), [503, 'jwks_unavailable'], 'a set larger than 256 KiB');

  jwks.answer = (response) => {
    // No Content-Length: the reader counts the bytes as they come.
    response.writeHead(200, { 'content-type': 'application/json' });
    response.write('{"keys":[],"padding":"');
    for (let chunk = 0; chunk < 40; chunk++) response.write('x'.repeat(8192));
    response.end('"}');
  };
  const chunked = await startOrigin(t, {}, jwksOptions);
  t.same(await refusal(chunked, await issue({ tier: 'free' }, { kid: 'rsa-1' })), [503, 'jwks_unavailable'], 'a chunked set larger than 256 KiB');

  jwks.answer = json({ not: 'a key set' });
  const invalid = await startOrigin(t, {}, jwksOptions);
  t.same(await refusal(invalid, await issue({ tier: 'free' }, { kid: 'rsa-1' })), [503, 'jwks_unavailable'], 'not a JWK set');
});

t.test('the key file is checked at start-up: unreadable, or no key for the configured algorithms, is a config error', async (t) => {
  await t.rejects(createPlaybackTokenVerifier({ ...verifierDefaults(), publicKeyFile: join(directory, 'missing.pem') }), { code: 'ONAIR_CONFIG_INVALID', where: 'entitlements.publicKeyFile' });
  await t.rejects(createPlaybackTokenVerifier({ ...verifierDefaults(), algorithms: ['ES256'] }), { code: 'ONAIR_CONFIG_INVALID', where: 'entitlements.publicKeyFile' }, 'an RSA key cannot verify ES256');
  const certificate = join(directory, 'not-a-key.pem');
  await writeFile(certificate, '-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n');
  await t.rejects(createPlaybackTokenVerifier({ ...verifierDefaults(), publicKeyFile: certificate }), { code: 'ONAIR_CONFIG_INVALID' });
  await t.rejects(createPlaybackTokenVerifier({ ...verifierDefaults(), jwksUrl: 'http://127.0.0.1:1/jwks.json' }), { code: 'ONAIR_CONFIG_INVALID', where: 'entitlements' }, 'both a file and a URL');
});

t.test('the plugin registers alone on an origin too (fastify-plugin name)', async (t) => {
  t.equal((playbackAuthPlugin as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')], 'onair-playback-auth');
});
