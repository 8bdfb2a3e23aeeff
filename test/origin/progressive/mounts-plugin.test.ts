/**
 * The mounts plugin on a real origin (buildOrigin on a loopback port, a MemoryStore fed by a
 * real packager): the listener cap answers 503 + Retry-After (ONAIR_MOUNT_FULL) and frees its
 * places when listeners leave, a mount whose channel is not on air is a 404, and
 * /status-json.xsl has Icecast 2.4's shape (icecast-status.ts: one source an object, several an
 * array, dates as Icecast writes them).
 */
import { connect } from 'node:net';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ChannelPackager } from '../../../src/hls/channel-packager.js';
import { buildOrigin } from '../../../src/origin/origin-server.js';
import { signPath } from '../../../src/origin/signed-urls.js';
import { icecastIsoDate, icecastStatus, rfc2822Date, type StatusSource } from '../../../src/origin/progressive/icecast-status.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { DelegatingStore } from '../../helpers/delegating-store.js';
import { FrameSource, pushUntilCut } from '../../helpers/aac-frames.js';
import { testChannel } from '../../helpers/channel-config.js';
import { openStream } from '../../helpers/progressive-listener.js';
import { waitUntil } from '../../helpers/wait-until.js';

const logger = pino({ level: 'silent' });

/** A MemoryStore in which a real packager has published a few segments of channel `fip`. */
async function storeWithSegments(t: Test): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const packager = new ChannelPackager({ channel: testChannel({}, 1), segmentSeconds: 1, windowSegments: 6, store, logger });
  await packager.start();
  t.teardown(() => packager.close(100));
  const source = new FrameSource();
  for (let segment = 0; segment < 4; segment++) pushUntilCut(packager, source);
  await waitUntil(t, 'segments published', () => packager.stats.segmentsPublished >= 3);
  return store;
}

t.test('past maxListeners a listener gets 503 mount_full with Retry-After; a place frees when one leaves; a channel off air is 404', async (t) => {
  const store = await storeWithSegments(t);

  const mounts = ['fip', 'off'].flatMap((channel) =>
    ['lofi', 'hifi'].map((rendition) => ({ channel, rendition, codec: 'aac' as const, bitrate: 192_000, sampleRate: 48000, audioChannels: 2 })),
  );
  const app = await buildOrigin({
    store,
    channels: [
      { id: 'fip', renditions: ['lofi', 'hifi'] },
      { id: 'off', renditions: ['lofi', 'hifi'] },
    ],
    targetDurationSeconds: 1,
    progressive: { store, mounts, maxListeners: 2 },
  });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;

  const first = await openStream(port, '/fip-hifi.aac');
  const second = await openStream(port, '/fip-lofi.aac');
  t.teardown(() => [first, second].forEach((listener) => listener.close()));
  t.equal(first.head.status, 200);
  t.equal(second.head.status, 200);
  const refused = await fetch(`http://127.0.0.1:${port}/fip-hifi.aac`);
  t.equal(refused.status, 503);
  t.equal(refused.headers.get('retry-after'), '1');
  t.match(await refused.json(), { error: 'mount_full' });
  t.equal(app.onairMounts.stats().refused, 1);

  first.close();
  await waitUntil(t, 'the place freed', () => app.onairMounts.stats().mounts.every((mount) => mount.channel !== 'fip' || mount.rendition !== 'hifi' || mount.listeners === 0));
  const third = await openStream(port, '/fip-hifi.aac');
  t.teardown(() => third.close());
  t.equal(third.head.status, 200, 'a listener leaving frees its place');
  second.close();
  third.close();
  await waitUntil(t, 'both gone', () => app.onairMounts.stats().mounts.every((mount) => mount.listeners === 0));
  const offAir = await fetch(`http://127.0.0.1:${port}/off-hifi.aac`);
  t.equal(offAir.status, 404, 'a channel with no playlist is not on air');
});

t.test('clients that hang up while the mount reads the store do not keep their places', async (t) => {
  const store = await storeWithSegments(t);

  // The first read of the channel's title waits until the test opens the gate.
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  let titleReads = 0;
  class SlowTitles extends DelegatingStore {
    override async getNowPlaying(channel: string): Promise<string | null> {
      titleReads += 1;
      await gate;
      return this.inner.getNowPlaying(channel);
    }
  }
  const slow = new SlowTitles(store);
  const mounts = [{ channel: 'fip', rendition: 'hifi', codec: 'aac' as const, bitrate: 192_000, sampleRate: 48000, audioChannels: 2 }];
  const app = await buildOrigin({
    store,
    channels: [{ id: 'fip', renditions: ['lofi', 'hifi'] }],
    targetDurationSeconds: 1,
    progressive: { store: slow, mounts, maxListeners: 2 },
  });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;

  // Two clients take both places, then hang up while the title is being read.
  const quitters = [0, 1].map(() => connect({ port, host: '127.0.0.1' }, function (this: ReturnType<typeof connect>) {
    this.write('GET /fip-hifi.aac HTTP/1.1\r\nhost: x\r\n\r\n');
  }));
  await waitUntil(t, 'both requests waiting for the title', () => titleReads >= 2);
  for (const socket of quitters) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  openGate();

  const listeners = await Promise.all([openStream(port, '/fip-hifi.aac'), openStream(port, '/fip-hifi.aac')]);
  t.teardown(() => listeners.forEach((listener) => listener.close()));
  t.same(listeners.map((listener) => listener.head.status), [200, 200], 'both places are free again');
  t.equal(app.onairMounts.stats().refused, 0, 'nobody was refused');
});

const source = (mount: string, listeners: number): StatusSource => ({
  mount,
  listeners,
  listenerPeak: listeners + 1,
  name: 'FIP',
  description: 'Radio éclectique',
  genre: 'Eclectic',
  url: 'https://fip.example/',
  contentType: 'audio/aac',
  bitrateKbps: 192,
  sampleRate: 48000,
  audioChannels: 2,
  title: 'Artist - Title',
  streamStartMs: Date.UTC(2026, 11, 4, 22, 20, 49),
});

t.test('status-json.xsl has Icecast 2.4’s shape: one source is an object, several an array, none absent', async (t) => {
  const start = Date.UTC(2026, 11, 4, 22, 20, 48);
  t.equal(rfc2822Date(start), 'Fri, 04 Dec 2026 22:20:48 +0000', 'as icecast2 2.4.4 writes server_start');
  t.equal(icecastIsoDate(start), '2026-12-04T22:20:48+0000');
  const options = { host: 'radio.example', baseUrl: 'http://radio.example:8080', serverId: 'onair 0.1.0', serverStartMs: start };
  const one = icecastStatus({ ...options, sources: [source('/fip-hifi.aac', 3)] });
  t.strictSame(one, {
    icestats: {
      admin: '',
      host: 'radio.example',
      location: '',
      server_id: 'onair 0.1.0',
      server_start: 'Fri, 04 Dec 2026 22:20:48 +0000',
      server_start_iso8601: '2026-12-04T22:20:48+0000',
      source: {
        audio_info: 'channels=2;samplerate=48000;bitrate=192',
        bitrate: 192,
        genre: 'Eclectic',
        listener_peak: 4,
        listeners: 3,
        listenurl: 'http://radio.example:8080/fip-hifi.aac',
        server_description: 'Radio éclectique',
        server_name: 'FIP',
        server_type: 'audio/aac',
        server_url: 'https://fip.example/',
        stream_start: 'Fri, 04 Dec 2026 22:20:49 +0000',
        stream_start_iso8601: '2026-12-04T22:20:49+0000',
        title: 'Artist - Title',
        dummy: null,
      },
    },
  });
  t.same(Object.keys((one.icestats.source as object)), [...Object.keys(one.icestats.source as object)].sort((a, b) => (a === 'dummy' ? 1 : b === 'dummy' ? -1 : a.localeCompare(b))), 'keys in Icecast’s order');
  const two = icecastStatus({ ...options, sources: [source('/fip-hifi.aac', 3), source('/fip-lofi.aac', 1)] });
  t.ok(Array.isArray(two.icestats.source), 'several sources are an array');
  t.equal((two.icestats.source as unknown[]).length, 2);
  t.notOk('source' in icecastStatus({ ...options, sources: [] }).icestats, 'no mount, no source key');
});

t.test("a signed channel's mounts need its token, checked as a path under the channel; a public channel's do not", async (t) => {
  const store = await storeWithSegments(t);
  const key = 'k'.repeat(32);
  const mounts = [{ channel: 'fip', rendition: 'hifi', codec: 'aac' as const, bitrate: 192_000, sampleRate: 48000, audioChannels: 2 }];
  const app = await buildOrigin({
    store,
    channels: [{ id: 'fip', renditions: ['hifi'] }],
    targetDurationSeconds: 1,
    signing: { key, signedChannels: () => new Set(['fip']) },
    progressive: { store, mounts, maxListeners: 4 },
  });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const expiresAt = Math.floor(Date.now() / 1000) + 600;

  for (const [query, reason] of [
    ['', 'token_missing'],
    [`?token=${signPath({ key, pathPrefix: '/jazz/', expiresAt })}`, 'token_wrong_path'],
    [`?token=${signPath({ key: 'x'.repeat(32), pathPrefix: '/fip/', expiresAt })}`, 'token_forged'],
  ]) {
    const refused = await fetch(`http://127.0.0.1:${port}/fip-hifi.aac${query}`);
    t.equal(refused.status, 403, `${reason}: refused`);
    t.match(await refused.json(), { error: reason });
  }
  const listener = await openStream(port, `/fip-hifi.aac?token=${signPath({ key, pathPrefix: '/fip/', expiresAt })}`);
  t.teardown(() => listener.close());
  t.equal(listener.head.status, 200, "the channel's token opens its mount");
  await waitUntil(t, 'audio flows', () => listener.body().length > 0);
  t.equal((await fetch(`http://127.0.0.1:${port}/status-json.xsl`)).status, 200, 'the status page stays public');
});
