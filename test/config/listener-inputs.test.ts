/**
 * Listener inputs (an SRT listener, udp://, rtp://) take audio from anyone who reaches their
 * port: the config refuses one without an SRT passphrase unless the input says
 * `allowUnauthenticated: true`, naming the key path; callers and files need neither.
 */
import t from 'tap';
import { acceptsAnySender, inputReach, unauthenticatedListeners } from '../../src/config/config-schema.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { isOnairError, type OnairError } from '../../src/errors.js';

function configWith(inputs: Record<string, unknown>[]) {
  return resolveConfig({ channels: [{ id: 'fip', renditions: [{ id: 'hifi', bitrate: '192k' }], inputs }] });
}

function refusal(inputs: Record<string, unknown>[]): OnairError {
  try {
    configWith(inputs);
  } catch (error) {
    if (isOnairError(error, 'ONAIR_CONFIG_INVALID')) return error;
    throw error;
  }
  throw new Error('the config was accepted');
}

t.test('an SRT listener without a passphrase is refused at srt.passphrase', async (t) => {
  const error = refusal([{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener' }]);
  t.equal(error.where, 'channels[0].inputs[0].srt.passphrase');
  t.match(error.message, /^channels\[0\]\.inputs\[0\]\.srt\.passphrase: an SRT listener accepts any caller .*allowUnauthenticated: true/);
  const withOptions = refusal([
    { id: 'file', url: '/srv/loop.mp3' },
    { id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { latency: 120 } },
  ]);
  t.equal(withOptions.where, 'channels[0].inputs[1].srt.passphrase', 'SRT options without a passphrase are not enough');
});

t.test('udp:// and rtp:// inputs are refused at allowUnauthenticated: they have no passphrase', async (t) => {
  for (const url of ['udp://0.0.0.0:5000', 'udp://239.0.0.1:5000', 'rtp://0.0.0.0:5004']) {
    const error = refusal([{ id: 'main', url }]);
    t.equal(error.where, 'channels[0].inputs[0].allowUnauthenticated', url);
    t.match(error.message, /accepts audio from any sender .*srt\.passphrase.*allowUnauthenticated: true/);
  }
  t.equal(refusal([{ id: 'main', url: 'udp://0.0.0.0:5000', allowUnauthenticated: false }]).where, 'channels[0].inputs[0].allowUnauthenticated', 'false is a refusal too');
});

t.test('a passphrase, in srt.passphrase or in the URL, or an explicit allowUnauthenticated: true is accepted', async (t) => {
  const config = configWith([
    { id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'correct-horse-battery' } },
    { id: 'url', url: 'srt://0.0.0.0:9001?mode=listener&passphrase=correct-horse-battery' },
    { id: 'open', url: 'srt://0.0.0.0:9002?mode=listener', allowUnauthenticated: true },
    { id: 'udp', url: 'udp://0.0.0.0:5000', allowUnauthenticated: true },
    { id: 'rtp', url: 'rtp://0.0.0.0:5004', allowUnauthenticated: true },
  ]);
  t.same(config.channels[0]!.inputs.map((input) => acceptsAnySender(input)), [false, false, true, true, true]);
  t.same(unauthenticatedListeners(config), [
    { path: 'channels[0].inputs[2]', url: 'srt://0.0.0.0:9002?mode=listener' },
    { path: 'channels[0].inputs[3]', url: 'udp://0.0.0.0:5000' },
    { path: 'channels[0].inputs[4]', url: 'rtp://0.0.0.0:5004' },
  ]);
});

t.test('callers and files need no passphrase, and allowUnauthenticated: true on them is refused as meaningless', async (t) => {
  const inputs = [
    { id: 'caller', url: 'srt://studio.example:9000?mode=caller' },
    { id: 'default', url: 'srt://studio.example:9001' },
    { id: 'rtmp', url: 'rtmp://live.example/app/fip' },
    { id: 'icecast', url: 'https://icecast.example/fip.aac' },
    { id: 'file', url: '/srv/loop.mp3' },
  ];
  t.same(configWith(inputs).channels[0]!.inputs.map((input) => inputReach(input.url)), ['caller', 'caller', 'caller', 'caller', 'file']);
  t.same(unauthenticatedListeners(configWith(inputs)), []);
  const error = refusal([{ id: 'caller', url: 'srt://studio.example:9000?mode=caller', allowUnauthenticated: true }]);
  t.equal(error.where, 'channels[0].inputs[0].allowUnauthenticated');
  const withPassphrase = refusal([{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'correct-horse-battery' }, allowUnauthenticated: true }]);
  t.equal(withPassphrase.where, 'channels[0].inputs[0].allowUnauthenticated', 'a listener with a passphrase is not unauthenticated');
  t.match(refusal([{ id: 'main', url: 'udp://0.0.0.0:5000', allowUnauthenticated: 'yes' }]).message, /allowUnauthenticated: expected true or false/);
});
