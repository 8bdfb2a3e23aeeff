/**
 * The key route of encrypted channels (src/origin/content-keys-plugin.ts), on the origin as
 * origin-server.ts builds it over a MemoryStore: a key only for the channel's valid token
 * (403 ONAIR_KEY_FORBIDDEN otherwise, never cached), never cacheable when served, 404 for a
 * clear channel or a key the store does not have, and the token added to EXT-X-KEY URIs of
 * the channel's playlists so players fetch keys with the token they already have.
 */
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { renderMediaPlaylist } from '../../src/hls/playlist-writer.js';
import { CONTENT_KEY_CACHE_CONTROL } from '../../src/origin/content-keys-plugin.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { channelPathPrefix, signPath } from '../../src/origin/signed-urls.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { ManualClock } from '../helpers/manual-clock.js';

const SIGNING_KEY = 'an-hmac-key-of-thirty-two-characters!';
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

async function startOrigin(t: Test, keyTokenSeconds?: number): Promise<{ app: FastifyInstance; store: MemoryStore; clock: ManualClock }> {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const store = new MemoryStore({ now: () => clock.now() });
  await store.start();
  const app = await buildOrigin({
    store,
    channels: [
      { id: 'fip', renditions: ['hifi'] },
      { id: 'clear', renditions: ['hifi'] },
    ],
    targetDurationSeconds: 2,
    clock,
    signing: { key: SIGNING_KEY, signedChannels: () => new Set(['fip', 'clear']), ...(keyTokenSeconds === undefined ? {} : { keyTokenSeconds }) },
    encryptedChannels: () => new Set(['fip']),
  });
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  await store.putContentKey('fip', 7, KEY, 600);
  await store.putContentKey('clear', 7, KEY, 600);
  return { app, store, clock };
}

/** Segments 14 and 15 of key 7, as the packager writes them: one EXT-X-KEY. */
function keyedPlaylist(clock: ManualClock): string {
  return renderMediaPlaylist({
    targetDuration: 2,
    mediaSequence: 14,
    discontinuitySequence: 0,
    segments: [14, 15].map((msn) => ({
      uri: `hifi/${msn}-1.ts`,
      durationSeconds: 2,
      programDateTime: clock.now() + msn * 2000,
      discontinuity: false,
      key: { method: 'AES-128' as const, uri: 'key-7.key', iv: '00000000000000000000000000000007' },
    })),
  });
}

function tokenFor(channel: string, clock: ManualClock, lifetimeSeconds = 60): string {
  return signPath({ key: SIGNING_KEY, pathPrefix: channelPathPrefix(channel), expiresAt: Math.floor(clock.now() / 1000) + lifetimeSeconds });
}

t.test('a key needs the channel token: 403 ONAIR_KEY_FORBIDDEN without one, never cached', async (t) => {
  const { app, clock } = await startOrigin(t);
  const forged = tokenFor('fip', clock).slice(0, -3) + 'AAA';
  const cases: [string, string][] = [
    ['no token', '/fip/key-7.key'],
    ['an empty token', '/fip/key-7.key?token='],
    ['a forged token', `/fip/key-7.key?token=${forged}`],
    ["another channel's token", `/fip/key-7.key?token=${tokenFor('clear', clock)}`],
  ];
  for (const [what, url] of cases) {
    const reply = await app.inject({ url });
    t.equal(reply.statusCode, 403, `${what}: 403`);
    t.equal(reply.json().error, 'key_forbidden', `${what}: the code's reply name`);
    t.equal(reply.headers['cache-control'], 'no-store', `${what}: not cached`);
    t.notOk(reply.rawPayload.includes(KEY), `${what}: no key bytes`);
  }
  const expiring = tokenFor('fip', clock, 5);
  t.equal((await app.inject({ url: `/fip/key-7.key?token=${expiring}` })).statusCode, 200);
  await clock.advance(5000);
  const expired = await app.inject({ url: `/fip/key-7.key?token=${expiring}` });
  t.equal(expired.statusCode, 403, 'an expired token: 403');
  t.match(expired.json().message, /expired/);
});

t.test('with the token: the 16 bytes, private and no-store, GET and HEAD', async (t) => {
  const { app, clock } = await startOrigin(t);
  const token = tokenFor('fip', clock);
  const reply = await app.inject({ url: `/fip/key-7.key?token=${token}` });
  t.equal(reply.statusCode, 200);
  t.same(reply.rawPayload, KEY);
  t.equal(reply.headers['cache-control'], CONTENT_KEY_CACHE_CONTROL);
  t.equal(reply.headers['cache-control'], 'private, no-store');
  t.equal(reply.headers['content-type'], 'application/octet-stream');
  const head = await app.inject({ method: 'HEAD', url: `/fip/key-7.key?token=${token}` });
  t.equal(head.statusCode, 200);
  t.equal(head.headers['content-length'], '16');
  t.equal(head.rawPayload.byteLength, 0);
});

t.test('404 ONAIR_KEY_NOT_FOUND: a clear channel, a key not stored, even with a good token', async (t) => {
  const { app, clock } = await startOrigin(t);
  const clear = await app.inject({ url: `/clear/key-7.key?token=${tokenFor('clear', clock)}` });
  t.equal(clear.statusCode, 404, 'a channel without encryption serves no key, whatever the store holds');
  t.equal(clear.headers['cache-control'], 'no-store');
  const missing = await app.inject({ url: `/fip/key-8.key?token=${tokenFor('fip', clock)}` });
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().error, 'not_found');
  const unknown = await app.inject({ url: `/fip/key-x.key?token=${tokenFor('fip', clock)}` });
  t.equal(unknown.statusCode, 400, 'not a key name: not the key route (the playlist route refuses the name)');
});

t.test("a signed channel's playlist carries the token on its EXT-X-KEY URI", async (t) => {
  const { app, store, clock } = await startOrigin(t);
  const body = keyedPlaylist(clock);
  t.equal(body.match(/#EXT-X-KEY/g)?.length, 1, 'one tag for two segments of one key');
  await store.publish({ channel: 'fip', playlists: { 'fip_hifi.m3u8': body }, state: '{}' });
  const token = tokenFor('fip', clock);
  const reply = await app.inject({ url: `/fip/fip_hifi.m3u8?token=${token}` });
  t.equal(reply.statusCode, 200);
  t.match(reply.body, `#EXT-X-KEY:METHOD=AES-128,URI="key-7.key?token=${token}",IV=0x00000000000000000000000000000007`);
  const keyUrl = new URL(/URI="([^"]+)"/.exec(reply.body)![1]!, 'http://origin/fip/fip_hifi.m3u8');
  const key = await app.inject({ url: keyUrl.pathname + keyUrl.search });
  t.equal(key.statusCode, 200, 'the URI the playlist names fetches the key');
  t.same(key.rawPayload, KEY);
});

t.test('signing.keyTokenSeconds: the key URI carries a token for the channel\'s keys only, short-lived, the same for a minute', async (t) => {
  const { app, store, clock } = await startOrigin(t, 120);
  const body = keyedPlaylist(clock);
  await store.publish({ channel: 'fip', playlists: { 'fip_hifi.m3u8': body }, state: '{}' });
  const token = tokenFor('fip', clock, 3600);
  const playlist = async (withToken = token): Promise<string> => {
    const reply = await app.inject({ url: `/fip/fip_hifi.m3u8?token=${withToken}` });
    t.equal(reply.statusCode, 200);
    return reply.body;
  };
  const keyTokenOf = (text: string): string => /URI="key-7\.key\?token=([^"]+)"/.exec(text)![1]!;
  const first = await playlist();
  const keyToken = keyTokenOf(first);
  t.not(keyToken, token, 'not the request token');
  t.match(first, `hifi/14-1.ts?token=${token}`, 'segments keep the request token');
  const expiresAt = Number(keyToken.split('~')[0]);
  const now = clock.now() / 1000;
  t.ok(expiresAt > now + 120 && expiresAt <= now + 180, `expires ${expiresAt - now} s from now: 120 s after this minute`);

  const key = await app.inject({ url: `/fip/key-7.key?token=${keyToken}` });
  t.equal(key.statusCode, 200, 'the key token opens the key');
  t.same(key.rawPayload, KEY);
  for (const url of ['/fip/fip_hifi.m3u8', '/fip/hifi/14-1.ts', '/fip/fip.m3u8']) {
    t.equal((await app.inject({ url: `${url}?token=${keyToken}` })).statusCode, 403, `and nothing else: ${url}`);
  }
  t.equal(keyTokenOf(await playlist()), keyToken, 'the same key token within the minute');
  await clock.advance(60_000);
  const next = keyTokenOf(await playlist());
  t.not(next, keyToken, 'a new one the next minute');
  await clock.advance((expiresAt - clock.now() / 1000) * 1000);
  t.equal((await app.inject({ url: `/fip/key-7.key?token=${keyToken}` })).statusCode, 403, 'expired');
  t.equal((await app.inject({ url: `/fip/key-7.key?token=${next}` })).statusCode, 200, 'the newer one still opens it');

  // A request token that expires sooner than a key token would: the key URI takes it, so access never outlives it.
  const short = tokenFor('fip', clock, 30);
  t.equal(keyTokenOf(await playlist(short)), short);
});
