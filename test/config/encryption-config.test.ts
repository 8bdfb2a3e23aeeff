/**
 * The encryption keys of a channel (docs/architecture.md, "Content encryption"): opt-in, and
 * refused with the key path where it cannot work (a public channel's keys would be public, fMP4
 * needs cbcs, cbcs needs fMP4 AAC); an encrypted channel may be recorded (its recordings decrypt).
 */
import t from 'tap';
import { isOnairError } from '../../src/errors.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { rawTestChannel } from '../helpers/channel-config.js';

const SIGNING = { key: 'an-hmac-key-of-thirty-two-characters!' };

function refusal(overrides: Record<string, unknown>): string | undefined {
  try {
    resolveConfig({ signing: SIGNING, channels: [rawTestChannel(overrides)] });
    return undefined;
  } catch (error) {
    return isOnairError(error, 'ONAIR_CONFIG_INVALID') ? error.where : `unexpected ${String(error)}`;
  }
}

t.test('a channel is clear unless it says otherwise, and its config has no encryption key', async (t) => {
  const channel = resolveConfig({ channels: [rawTestChannel()] }).channels[0]!;
  t.equal(channel.encryption, undefined);
  t.notOk('encryption' in channel || 'keyRotationSegments' in channel, 'nothing added to a clear channel');
});

t.test('a signed TS channel may be encrypted, with or without a rotation', async (t) => {
  const channel = resolveConfig({ signing: SIGNING, channels: [rawTestChannel({ access: 'signed', encryption: 'aes-128', keyRotationSegments: 3 })] }).channels[0]!;
  t.equal(channel.encryption, 'aes-128');
  t.equal(channel.keyRotationSegments, 3);
});

t.test('a signed fMP4 channel of AAC renditions may be cbcs-encrypted', async (t) => {
  const channel = resolveConfig({ signing: SIGNING, channels: [rawTestChannel({ access: 'signed', container: 'fmp4', encryption: 'cbcs', keyRotationSegments: 2 })] }).channels[0]!;
  t.equal(channel.encryption, 'cbcs');
  t.equal(channel.keyRotationSegments, 2);
});

t.test('an encrypted channel may be recorded, aes-128 and cbcs alike', async (t) => {
  t.equal(refusal({ access: 'signed', encryption: 'aes-128', record: true }), undefined, 'a recorded aes-128 channel');
  t.equal(refusal({ access: 'signed', encryption: 'cbcs', container: 'fmp4', record: true }), undefined, 'a recorded cbcs channel');
});

t.test('refusals name the key', async (t) => {
  t.equal(refusal({ encryption: 'aes-128' }), 'channels[0].encryption', 'a public channel');
  t.equal(refusal({ access: 'signed', encryption: 'aes-128', container: 'fmp4' }), 'channels[0].encryption', 'an fMP4 channel');
  t.equal(refusal({ access: 'signed', encryption: 'sample-aes' }), 'channels[0].encryption', 'an unknown method');
  t.equal(refusal({ access: 'signed', encryption: 'cbcs' }), 'channels[0].encryption', 'cbcs on a TS channel');
  t.equal(refusal({ encryption: 'cbcs', container: 'fmp4' }), 'channels[0].encryption', 'a public cbcs channel');
  t.equal(
    refusal({ access: 'signed', encryption: 'cbcs', container: 'fmp4', sampleRate: 48000, renditions: [{ id: 'hi', bitrate: 128000 }, { id: 'op', codec: 'opus', bitrate: 64000 }] }),
    'channels[0].renditions[1].codec',
    'an Opus rendition of a cbcs channel',
  );
  t.equal(refusal({ access: 'signed', encryption: 'aes-128', keyRotationSegments: 0 }), 'channels[0].keyRotationSegments');
  t.equal(refusal({ keyRotationSegments: 4 }), 'channels[0].keyRotationSegments', 'a rotation without encryption');
});

t.test('mpdLicenseBaseUrl: a cbcs channel\'s public base URL for its MPDs\' dashif:Laurl; an http(s) URL without query; nothing else may have it', async (t) => {
  const cbcs = { access: 'signed', container: 'fmp4', encryption: 'cbcs' };
  t.equal(resolveConfig({ signing: SIGNING, channels: [rawTestChannel({ ...cbcs, mpdLicenseBaseUrl: 'https://cdn.example/radio/' })] }).channels[0]!.mpdLicenseBaseUrl, 'https://cdn.example/radio/');
  t.notOk('mpdLicenseBaseUrl' in resolveConfig({ signing: SIGNING, channels: [rawTestChannel(cbcs)] }).channels[0]!, 'absent unless set: no Laurl');
  t.equal(refusal({ ...cbcs, mpdLicenseBaseUrl: 'ftp://cdn.example/' }), 'channels[0].mpdLicenseBaseUrl', 'not http(s)');
  t.equal(refusal({ ...cbcs, mpdLicenseBaseUrl: 'fip/' }), 'channels[0].mpdLicenseBaseUrl', 'relative: players would resolve it against the page');
  t.equal(refusal({ ...cbcs, mpdLicenseBaseUrl: 'https://cdn.example/?a=1' }), 'channels[0].mpdLicenseBaseUrl', 'a query');
  t.equal(refusal({ ...cbcs, mpdLicenseBaseUrl: 'https://cdn.example/#x' }), 'channels[0].mpdLicenseBaseUrl', 'a fragment');
  t.equal(refusal({ access: 'signed', encryption: 'aes-128', mpdLicenseBaseUrl: 'https://cdn.example' }), 'channels[0].mpdLicenseBaseUrl', 'an aes-128 channel (no MPD)');
  t.equal(refusal({ container: 'fmp4', mpdLicenseBaseUrl: 'https://cdn.example' }), 'channels[0].mpdLicenseBaseUrl', 'a clear channel');
});

t.test('hlsKeyFormats: a cbcs channel\'s EXT-X-KEY formats, each once; nothing else may have it', async (t) => {
  const cbcs = { access: 'signed', container: 'fmp4', encryption: 'cbcs' };
  t.same(resolveConfig({ signing: SIGNING, channels: [rawTestChannel({ ...cbcs, hlsKeyFormats: ['identity', 'clearkey'] })] }).channels[0]!.hlsKeyFormats, ['identity', 'clearkey']);
  t.same(resolveConfig({ signing: SIGNING, channels: [rawTestChannel({ ...cbcs, hlsKeyFormats: ['clearkey'] })] }).channels[0]!.hlsKeyFormats, ['clearkey']);
  t.notOk('hlsKeyFormats' in resolveConfig({ signing: SIGNING, channels: [rawTestChannel(cbcs)] }).channels[0]!, 'absent unless set (identity only)');
  t.equal(refusal({ ...cbcs, hlsKeyFormats: [] }), 'channels[0].hlsKeyFormats', 'none');
  t.equal(refusal({ ...cbcs, hlsKeyFormats: ['clearkey', 'clearkey'] }), 'channels[0].hlsKeyFormats', 'twice');
  t.equal(refusal({ ...cbcs, hlsKeyFormats: ['widevine'] }), 'channels[0].hlsKeyFormats[0]', 'an unknown format');
  t.equal(refusal({ access: 'signed', encryption: 'aes-128', hlsKeyFormats: ['clearkey'] }), 'channels[0].hlsKeyFormats', 'an aes-128 channel');
  t.equal(refusal({ hlsKeyFormats: ['clearkey'] }), 'channels[0].hlsKeyFormats', 'a clear channel');
});
