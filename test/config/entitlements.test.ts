/**
 * The `entitlements` block (POST /auth/playback): opt-in, defaults, and the refusals that keep it
 * safe: public-key algorithms only (never none nor HS*), exactly one key source, tiers naming
 * configured channels only. Each refusal names its key path.
 */
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { isOnairError } from '../../src/errors.js';

const CHANNELS = [
  { id: 'fip', access: 'signed', renditions: [{ id: 'hifi', bitrate: '96k' }], inputs: [{ id: 'main', url: 'http://127.0.0.1:8000/fip' }] },
];
const BASE = { issuer: 'https://id.example/', audience: 'onair', jwksUrl: 'https://id.example/jwks.json' };

function load(entitlements: Record<string, unknown> | undefined) {
  return resolveConfig({ signing: { key: 'k'.repeat(32) }, channels: CHANNELS, ...(entitlements ? { entitlements } : {}) });
}

function refusal(entitlements: Record<string, unknown>): string | undefined {
  try {
    load(entitlements);
  } catch (error) {
    if (isOnairError(error, 'ONAIR_CONFIG_INVALID')) return error.message;
    throw error;
  }
  return undefined;
}

t.test('absent: the endpoint is off; present: the defaults', async (t) => {
  t.equal(load(undefined).entitlements, undefined);
  t.same(load(BASE).entitlements, {
    ...BASE,
    algorithms: ['RS256', 'ES256', 'EdDSA'],
    clockTolerance: 30,
    channelsClaim: 'channels',
    tierClaim: 'tier',
    tiers: {},
    urlTtl: 3600,
    requestsPerMinute: 60,
    jwks: { timeoutMs: 5000, cooldown: 30, cacheMaxAge: 600 },
  });
  const tuned = load({ ...BASE, clockTolerance: '5s', urlTtl: '2h', tiers: { premium: ['fip'] }, audience: ['a', 'b'] }).entitlements!;
  t.equal(tuned.clockTolerance, 5);
  t.equal(tuned.urlTtl, 7200);
  t.same(tuned.tiers, { premium: ['fip'] });
  t.same(tuned.audience, ['a', 'b']);
});

t.test('none and HS* are never accepted algorithms', async (t) => {
  for (const algorithm of ['none', 'HS256', 'HS512']) {
    t.match(refusal({ ...BASE, algorithms: ['RS256', algorithm] }), /entitlements\.algorithms\[1\]: .*none and HS\* are never accepted/, algorithm);
  }
  t.match(refusal({ ...BASE, algorithms: [] }), /entitlements\.algorithms/);
});

t.test('exactly one of jwksUrl and publicKeyFile', async (t) => {
  t.match(refusal({ ...BASE, publicKeyFile: '/etc/idp.pem' }), /entitlements\.jwksUrl: expected exactly one of jwksUrl and publicKeyFile/);
  t.match(refusal({ issuer: BASE.issuer, audience: BASE.audience }), /entitlements\.jwksUrl: expected exactly one/);
  t.equal(refusal({ issuer: BASE.issuer, audience: BASE.audience, publicKeyFile: '/etc/idp.pem' }), undefined);
  t.match(refusal({ ...BASE, jwksUrl: 'ftp://id.example/jwks' }), /entitlements\.jwksUrl: expected an http/);
});

t.test('a tier naming a channel that is not configured, and values out of range, are refused by key path', async (t) => {
  t.match(refusal({ ...BASE, tiers: { premium: ['fip', 'jazz'] } }), /entitlements\.tiers\.premium\[1\]: no channel "jazz"/);
  t.match(refusal({ ...BASE, clockTolerance: '10m' }), /entitlements\.clockTolerance/);
  t.match(refusal({ ...BASE, urlTtl: '10s' }), /entitlements\.urlTtl/);
  t.match(refusal({ ...BASE, issuer: '' }), /entitlements\.issuer/);
  t.match(refusal({ ...BASE, unknown: true }), /entitlements/);
});
