/**
 * `codec: opus | flac` (docs/architecture.md, "Opus and FLAC renditions"): only on fMP4
 * channels, Opus only at 48 kHz, `bitDepth` only for FLAC, FLAC's bitrate optional (the config
 * fills in its PCM rate); each refusal names the key.
 */
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { isOnairError } from '../../src/errors.js';
import type { OnairConfig } from '../../src/config/config-schema.js';

const INPUT = { id: 'main', url: 'srt://127.0.0.1:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } };

function resolve(channel: Record<string, unknown>): OnairConfig | string {
  try {
    return resolveConfig({ channels: [{ id: 'hifi', inputs: [INPUT], ...channel }] });
  } catch (error) {
    if (isOnairError(error, 'ONAIR_CONFIG_INVALID')) return error.message;
    throw error;
  }
}

const AAC = { id: 'aac', bitrate: '96k' };

t.test('Opus and FLAC renditions on an fMP4 channel are accepted; FLAC gets its PCM rate as bitrate', async (t) => {
  const config = resolve({ container: 'fmp4', renditions: [AAC, { id: 'opus', bitrate: '64k', codec: 'opus' }, { id: 'flac', codec: 'flac' }, { id: 'flac24', codec: 'flac', bitDepth: 24, audioChannels: 1 }] });
  t.type(config, 'object', String(config));
  const renditions = (config as OnairConfig).channels[0]!.renditions;
  t.match(renditions[1], { codec: 'opus', bitrate: 64_000 });
  t.match(renditions[2], { codec: 'flac', bitrate: 48_000 * 2 * 16 });
  t.match(renditions[3], { codec: 'flac', bitDepth: 24, bitrate: 48_000 * 24 });
  // A FLAC bitrate is only what the master announces before the first measured segment: up to 20M, and a resolved config resolves again.
  const given = resolve({ container: 'fmp4', renditions: [AAC, { id: 'flac', codec: 'flac', bitrate: '900k' }] });
  t.match((given as OnairConfig).channels[0]!.renditions[1], { bitrate: 900_000 });
  const again = resolve({ container: 'fmp4', renditions: (config as OnairConfig).channels[0]!.renditions });
  t.same((again as OnairConfig).channels[0]!.renditions, renditions, 'the resolved renditions resolve to themselves');
});

t.test('each mistake is refused, naming its key', async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['Opus on a TS channel', { renditions: [AAC, { id: 'opus', bitrate: '64k', codec: 'opus' }] }, /channels\[0\]\.renditions\[1\]\.codec: "opus" renditions need container: fmp4/],
    ['FLAC on a TS channel', { container: 'ts', renditions: [AAC, { id: 'flac', codec: 'flac' }] }, /channels\[0\]\.renditions\[1\]\.codec: "flac" renditions need container: fmp4/],
    ['Opus at 44.1 kHz', { container: 'fmp4', sampleRate: 44100, renditions: [AAC, { id: 'opus', bitrate: '64k', codec: 'opus' }] }, /channels\[0\]\.sampleRate: expected 48000: Opus renditions run at 48 kHz/],
    ['an AAC bitrate of 600k', { renditions: [{ id: 'aac', bitrate: '600k' }] }, /channels\[0\]\.renditions\[0\]\.bitrate: expected a bitrate like 96k, between 8k and 512k/],
    ['a bit depth of 20', { container: 'fmp4', renditions: [AAC, { id: 'flac', codec: 'flac', bitDepth: 20 }] }, /channels\[0\]\.renditions\[1\]\.bitDepth: expected 16 or 24/],
    ['a bit depth on AAC', { container: 'fmp4', renditions: [{ ...AAC, bitDepth: 24 }] }, /channels\[0\]\.renditions\[0\]\.bitDepth: only for codec: flac/],
    ['an AAC rendition without bitrate', { renditions: [{ id: 'aac' }] }, /channels\[0\]\.renditions\[0\]\.bitrate: expected a bitrate like 96k/],
    ['an Opus bitrate of 4k', { container: 'fmp4', renditions: [AAC, { id: 'opus', bitrate: '4000', codec: 'opus' }] }, /channels\[0\]\.renditions\[1\]\.bitrate: expected a bitrate like 96k|expected an Opus bitrate/],
    ['Opus alone', { container: 'fmp4', renditions: [{ id: 'opus', bitrate: '64k', codec: 'opus' }] }, /channels\[0\]\.renditions: expected at least one AAC rendition/],
    ['recording FLAC', { container: 'fmp4', recordRendition: 'flac', renditions: [AAC, { id: 'flac', codec: 'flac' }] }, /channels\[0\]\.recordRendition: expected the id of an AAC rendition/],
  ];
  for (const [what, channel, expected] of cases) t.match(resolve(channel), expected, what);
});
