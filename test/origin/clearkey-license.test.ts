/**
 * The ClearKey license route of cbcs channels (src/origin/content-keys-plugin.ts,
 * src/origin/clearkey-license.ts; docs/architecture.md, "ClearKey playlists and licenses"), on the origin as
 * origin-server.ts builds it over a MemoryStore, over a loopback socket: the W3C license
 * request a CDM makes (no content type, as hls.js sends it) answered with the JSON Web Keys
 * of the KIDs the channel's state lists, only for the channel's token (403
 * ONAIR_KEY_FORBIDDEN, before the body is read), 400 ONAIR_LICENSE_REQUEST_INVALID for a body
 * that is no license request, 413 past 4 KiB, 404 for KIDs of no listed key period or a
 * channel that is not cbcs; never cacheable.
 */
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { cbcsKeyIdOf } from '../../src/hls/segment-encryption.js';
import { emptyChannelState, type ChannelState } from '../../src/hls/sequence-state.js';
import { MAX_CANDIDATE_PERIODS, matchKeyPeriods, parseLicenseRequest } from '../../src/origin/clearkey-license.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { channelPathPrefix, signPath } from '../../src/origin/signed-urls.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { ManualClock } from '../helpers/manual-clock.js';

const SIGNING_KEY = 'an-hmac-key-of-thirty-two-characters!';
const ROTATION = 2;
const keyOf = (keyId: number) => Buffer.alloc(16, keyId);
const kid = (keyId: number, channel = 'fip') => Buffer.from(cbcsKeyIdOf(channel, keyId)).toString('base64url');

/** Segments 20–29 listed (key periods 10–14), 30 being made (period 15). */
function stateAt(nextMsn: number, listed = 10): ChannelState {
  const window = Array.from({ length: listed }, (_, index) => ({
    msn: nextMsn - listed + index,
    run: 1,
    durationSeconds: 1,
    programDateTime: 0,
    discontinuity: false,
    bytes: {},
  }));
  return { ...emptyChannelState(1, 0, nextMsn), window };
}

async function startOrigin(t: Test): Promise<{ app: FastifyInstance; base: string; clock: ManualClock }> {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const store = new MemoryStore({ now: () => clock.now() });
  await store.start();
  const app = await buildOrigin({
    store,
    channels: [
      { id: 'fip', renditions: ['hifi'] },
      { id: 'tsaes', renditions: ['hifi'] },
    ],
    targetDurationSeconds: 1,
    clock,
    signing: { key: SIGNING_KEY, signedChannels: () => new Set(['fip', 'tsaes']) },
    encryptedChannels: () => new Set(['fip', 'tsaes']),
    cbcsChannels: () => new Map([['fip', ROTATION]]),
  });
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  await store.publish({ channel: 'fip', playlists: {}, state: JSON.stringify(stateAt(30)) });
  for (let keyId = 8; keyId <= 15; keyId++) await store.putContentKey('fip', keyId, keyOf(keyId), 600);
  await store.putContentKey('tsaes', 10, keyOf(10), 600);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base: address, clock };
}

function tokenFor(channel: string, clock: ManualClock): string {
  return signPath({ key: SIGNING_KEY, pathPrefix: channelPathPrefix(channel), expiresAt: Math.floor(clock.now() / 1000) + 60 });
}

/** As a CDM's message goes out of hls.js: POSTed as it is, an ArrayBuffer, no content type. */
function post(url: string, body: string | Uint8Array): Promise<Response> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  return fetch(url, { method: 'POST', body: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
}

t.test('the JSON Web Keys of the listed key periods a license request names, private and no-store', async (t) => {
  const { base, clock } = await startOrigin(t);
  const url = `${base}/fip/clearkey?token=${tokenFor('fip', clock)}`;
  const reply = await post(url, JSON.stringify({ kids: [kid(12), kid(14)], type: 'temporary' }));
  t.equal(reply.status, 200);
  t.equal(reply.headers.get('cache-control'), 'private, no-store');
  t.equal(reply.headers.get('content-type'), 'application/json; charset=utf-8');
  const license = (await reply.json()) as { keys: { kty: string; kid: string; k: string }[]; type: string };
  t.equal(license.type, 'temporary');
  t.same(
    [...license.keys].sort((a, b) => a.kid.localeCompare(b.kid)),
    [12, 14].map((keyId) => ({ kty: 'oct', kid: kid(keyId), k: keyOf(keyId).toString('base64url') })).sort((a, b) => a.kid.localeCompare(b.kid)),
    'each KID with its key, base64url',
  );

  const withType = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kids: [kid(15)] }) });
  t.equal(withType.status, 200, 'with a JSON content type too (dash.js, shaka-player); period 15, of the segment being made (its parts are listed)');
  const partly = (await (await post(url, JSON.stringify({ kids: [kid(10), kid(99), kid(10, 'other')] }))).json()) as { keys: { kid: string }[] };
  t.same(partly.keys.map((key) => key.kid), [kid(10)], 'KIDs of no listed period, or of another channel, are left out');
  const none = await post(url, JSON.stringify({ kids: [kid(3)] }));
  t.equal(none.status, 404, 'none known (period 3 left the window): 404');
  t.equal(((await none.json()) as { error: string }).error, 'not_found');
});

t.test('the token is checked before the body: 403 ONAIR_KEY_FORBIDDEN, not cached', async (t) => {
  const { base, clock } = await startOrigin(t);
  const body = JSON.stringify({ kids: [kid(12)] });
  for (const [what, url] of [
    ['no token', `${base}/fip/clearkey`],
    ["another channel's token", `${base}/fip/clearkey?token=${tokenFor('tsaes', clock)}`],
    ['a forged token', `${base}/fip/clearkey?token=${tokenFor('fip', clock).slice(0, -3)}AAA`],
  ]) {
    const reply = await post(url!, body);
    t.equal(reply.status, 403, `${what}: 403`);
    t.equal(reply.headers.get('cache-control'), 'no-store');
    const text = await reply.text();
    t.equal((JSON.parse(text) as { error: string }).error, 'key_forbidden', what);
    t.notOk(text.includes(keyOf(12).toString('base64url')), `${what}: no key`);
  }
  const oversized = await post(`${base}/fip/clearkey`, new Uint8Array(64 * 1024));
  t.equal(oversized.status, 403, 'without a token a large body is refused for the token, unread');
});

t.test('a body that is no license request: 400 ONAIR_LICENSE_REQUEST_INVALID; past 4 KiB: 413; a channel that is not cbcs: 404', async (t) => {
  const { base, clock } = await startOrigin(t);
  const url = `${base}/fip/clearkey?token=${tokenFor('fip', clock)}`;
  for (const [what, body] of [
    ['not JSON', 'kids=abc'],
    ['no kids', '{"type":"temporary"}'],
    ['an empty list', '{"kids":[]}'],
    ['a kid of 15 bytes', JSON.stringify({ kids: [Buffer.alloc(15).toString('base64url')] })],
    ['a kid in padded base64', JSON.stringify({ kids: [`${Buffer.from(cbcsKeyIdOf('fip', 12)).toString('base64')}`] })],
    ['17 kids', JSON.stringify({ kids: Array.from({ length: 17 }, (_, index) => kid(index)) })],
    ['nothing', ''],
  ]) {
    const reply = await post(url, body!);
    t.equal(reply.status, 400, `${what}: 400`);
    t.equal(((await reply.json()) as { error: string }).error, 'license_request_invalid', what);
  }
  const large = await post(url, JSON.stringify({ kids: [kid(12)], padding: 'x'.repeat(5000) }));
  t.equal(large.status, 413, 'a body past 4 KiB: 413');
  await large.body?.cancel();
  const aes = await post(`${base}/tsaes/clearkey?token=${tokenFor('tsaes', clock)}`, JSON.stringify({ kids: [kid(10, 'tsaes')] }));
  t.equal(aes.status, 404, 'an aes-128 channel has no license route');
  await aes.body?.cancel();
  const unknown = await post(`${base}/nope/clearkey`, JSON.stringify({ kids: [kid(10)] }));
  t.equal(unknown.status, 404, 'nor an unknown channel');
  await unknown.body?.cancel();
});

t.test('matchKeyPeriods: the listed periods and that of the segment being made, newest first, bounded', async (t) => {
  const kids = [kid(9), kid(10), kid(14), kid(15), kid(16)];
  t.same(matchKeyPeriods('fip', stateAt(30), ROTATION, kids), new Map([[kid(15), 15], [kid(14), 14], [kid(10), 10]]), 'periods 10–14 listed, 15 being made; 9 and 16 not');
  const dvr = { ...stateAt(30), dvr: [{ msn: 4, run: 1, durationSeconds: 1, programDateTime: 0, discontinuity: false }] };
  t.same(matchKeyPeriods('fip', dvr, ROTATION, [kid(2)]), new Map([[kid(2), 2]]), 'the DVR window counts');
  const huge = { ...stateAt(10_000_000), dvr: [{ msn: 0, run: 1, durationSeconds: 1, programDateTime: 0, discontinuity: false }] };
  t.equal(matchKeyPeriods('fip', huge, 1, [kid(0)]).size, 0, `at most ${MAX_CANDIDATE_PERIODS} periods back`);
  t.equal(matchKeyPeriods('fip', huge, 1, [kid(10_000_001 - MAX_CANDIDATE_PERIODS)]).size, 1, 'the oldest one searched');
  t.same(parseLicenseRequest(Buffer.from(JSON.stringify({ kids: [kid(1), kid(1)] }))), { kids: [kid(1)] }, 'a KID asked twice is answered once');
});
