/**
 * Progressive mount names (`/{channel}-{rendition}.aac|.mp3`) must be unambiguous: ids may
 * contain `-`, so a config whose channels and renditions would share a mount is refused,
 * naming the second rendition's id.
 */
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { isOnairError } from '../../src/errors.js';

const INPUT = { id: 'main', url: 'srt://127.0.0.1:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } };

function refusal(channels: { id: string; renditions: Record<string, unknown>[] }[]): { where?: string; message: string } | undefined {
  try {
    resolveConfig({ channels: channels.map((channel, index) => ({ ...channel, inputs: [{ ...INPUT, url: `srt://127.0.0.1:${9000 + index}?mode=listener` }] })) });
  } catch (error) {
    if (isOnairError(error, 'ONAIR_CONFIG_INVALID')) return { where: error.where, message: error.message };
    throw error;
  }
  return undefined;
}

t.test('two channels whose renditions would share a mount name are refused, naming the second', async (t) => {
  const refused = refusal([
    { id: 'a', renditions: [{ id: 'b-c', bitrate: '96k' }] },
    { id: 'a-b', renditions: [{ id: 'c', bitrate: '96k' }] },
  ]);
  t.ok(refused, 'refused');
  t.match(refused?.message, /channels\[1\]\.renditions\[0\]\.id/);
  t.match(refused?.message, /\/a-b-c\.aac is also channels\[0\]\.renditions\[0\]'s/);
});

t.test('the same ids with different codecs, or without a clash, are accepted', async (t) => {
  t.equal(
    refusal([
      { id: 'a', renditions: [{ id: 'b-c', bitrate: '96k' }] },
      { id: 'a-b', renditions: [{ id: 'x', bitrate: '96k' }, { id: 'c', bitrate: '128k', codec: 'mp3' }] },
    ]),
    undefined,
    '/a-b-c.aac and /a-b-c.mp3 are different mounts',
  );
  t.equal(refusal([{ id: 'fip', renditions: [{ id: 'hifi', bitrate: '192k' }, { id: 'midfi', bitrate: '128k', codec: 'mp3' }] }]), undefined);
});
