/**
 * The Icecast keys of the config (src/config/config-schema.ts): a source input
 * (`icecast://host:port/mount`) always needs `source.password`, its URL must name a port and a
 * mount (no credentials), two source inputs may not share a port, `source` and `icyMetadata`
 * belong to their own kinds of input, and `origin.icecastAdmin` needs a password. Each refusal
 * names the key path.
 */
import t from 'tap';
import { acceptsAnySender, icecastSourceAddress, inputReach } from '../../src/config/config-schema.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { isOnairError } from '../../src/errors.js';

function configWith(inputs: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return resolveConfig({ ...extra, channels: [{ id: 'fip', renditions: [{ id: 'hifi', bitrate: '192k' }], inputs }] });
}

function refusedAt(inputs: Record<string, unknown>[], extra: Record<string, unknown> = {}): string | undefined {
  try {
    configWith(inputs, extra);
  } catch (error) {
    if (isOnairError(error, 'ONAIR_CONFIG_INVALID')) return error.where;
    throw error;
  }
  return undefined;
}

t.test('a source input with its password is accepted, with the default user', async (t) => {
  const config = configWith([{ id: 'studio', url: 'icecast://0.0.0.0:8010/live', source: { password: 'hackme-please' } }]);
  t.same(config.channels[0]!.inputs[0]!.source, { user: 'source', password: 'hackme-please' });
  t.same(icecastSourceAddress('icecast://0.0.0.0:8010/live'), { host: '0.0.0.0', port: 8010, mount: '/live' });
  t.equal(inputReach('icecast://0.0.0.0:8010/live'), 'listener');
  t.notOk(acceptsAnySender({ url: 'icecast://0.0.0.0:8010/live' }), 'it always has a password');
});

t.test('refusals name the key path', async (t) => {
  t.equal(refusedAt([{ id: 'studio', url: 'icecast://0.0.0.0:8010/live' }]), 'channels[0].inputs[0].source.password', 'no password');
  t.equal(refusedAt([{ id: 'studio', url: 'icecast://0.0.0.0:8010/live', source: { password: 'short' } }]), 'channels[0].inputs[0].source.password');
  t.equal(refusedAt([{ id: 'studio', url: 'icecast://0.0.0.0/live', source: { password: 'hackme-please' } }]), 'channels[0].inputs[0].url', 'no port');
  t.equal(refusedAt([{ id: 'studio', url: 'icecast://0.0.0.0:8010/', source: { password: 'hackme-please' } }]), 'channels[0].inputs[0].url', 'no mount');
  t.equal(refusedAt([{ id: 'studio', url: 'icecast://source:pw@0.0.0.0:8010/live', source: { password: 'hackme-please' } }]), 'channels[0].inputs[0].url', 'credentials in the URL');
  t.equal(
    refusedAt([
      { id: 'a', url: 'icecast://0.0.0.0:8010/a', source: { password: 'hackme-please' } },
      { id: 'b', url: 'icecast://127.0.0.1:8010/b', source: { password: 'hackme-please' } },
    ]),
    'channels[0].inputs[1].url',
    'two source inputs on one port',
  );
  t.equal(refusedAt([{ id: 'main', url: 'srt://host:9000?mode=caller', source: { password: 'hackme-please' } }]), 'channels[0].inputs[0].source');
  t.equal(refusedAt([{ id: 'main', url: 'srt://host:9000?mode=caller', icyMetadata: true }]), 'channels[0].inputs[0].icyMetadata');
  t.equal(refusedAt([{ id: 'relay', url: 'https://icecast.example/fip.mp3', icyMetadata: true }]), undefined, 'icyMetadata on an http(s) input');
  t.equal(refusedAt([{ id: 'main', url: '/srv/a.mp3' }], { origin: { icecastAdmin: { user: 'admin' } } }), 'origin.icecastAdmin.password');
  t.equal(refusedAt([{ id: 'main', url: '/srv/a.mp3' }], { origin: { icecastAdmin: { password: 'admin-secret' } } }), undefined);
});

t.test('a source input whose port is taken is refused before anything starts, naming the input', async (t) => {
  const { createServer } = await import('node:net');
  const { checkPortsFree } = await import('../../src/preflight.js');
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as { port: number }).port;
  const config = configWith([{ id: 'studio', url: `icecast://127.0.0.1:${port}/live`, source: { password: 'hackme-please' } }], { origin: { port: 0 }, admin: { port: 0 } });
  await t.rejects(checkPortsFree(config, 'ingest'), { code: 'ONAIR_PORT_IN_USE', where: 'channels[0].inputs[0].url' });
  await t.resolves(checkPortsFree(config, 'origin'), 'an origin does not run inputs');
});
