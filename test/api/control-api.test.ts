/**
 * The control API (src/api) on a real onair: bearer auth (401 without a token, 403 with a
 * wrong one), the OpenAPI document, channel status from the store, a manual switch to the
 * backup input and its release (heard as the active input the leader stores), and config
 * reload: a channel added and removed without a restart, a bad file refused with its key
 * path while the running config stays, and a change that needs a restart refused. The API
 * answers on the admin listener only: on the origin port, and with no token configured,
 * every path under /api is a 404.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import t, { type Test } from 'tap';
import { controlApi } from '../../src/api/control-api.js';
import { resolveConfig } from '../../src/config/load-config.js';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { startOnair, type RunningOnair } from '../../src/onair.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { chaosConfig, startToneSender, MAIN_HZ, BACKUP_HZ } from '../helpers/chaos.js';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { testLogger } from '../helpers/onair-harness.js';
import { freeUdpPort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait-until.js';

const TOKEN = 'operator-token-0123456789';

async function withApi(config: OnairConfig, tokens = [TOKEN]): Promise<OnairConfig> {
  return resolveConfig({ ...structuredClone(config), api: { tokens } });
}

async function start(t: Test, config: OnairConfig, configPath?: string): Promise<RunningOnair> {
  const running = await startOnair({ config, role: 'start', logger: testLogger(config), configPath });
  t.teardown(() => running.close());
  return running;
}

function api(running: RunningOnair, path: string, init: RequestInit = {}, token: string | null = TOKEN): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token !== null) headers.set('authorization', `Bearer ${token}`);
  if (init.body) headers.set('content-type', 'application/json');
  return fetch(`${running.apiUrl}/api${path}`, { ...init, headers });
}

interface ChannelView {
  id: string;
  activeInput: string | null;
  pinned: string | null;
  inputs: { id: string; healthy: boolean }[];
  leader: string | null;
  leaderAdmin: string | null;
  lastSegmentAgeSeconds: number | null;
  listeners: { total: number; renditions: Record<string, number> } | null;
}

async function channel(running: RunningOnair, id = 'fip'): Promise<ChannelView> {
  return (await (await api(running, `/channels/${id}`)).json()) as ChannelView;
}

t.test('no token is 401 with a Bearer challenge, a wrong one 403; the OpenAPI document is public', async (t) => {
  const running = await start(t, await withApi(await chaosConfig({ store: 'memory', inputs: 1 })));
  const missing = await api(running, '/channels', {}, null);
  t.equal(missing.status, 401);
  t.match(missing.headers.get('www-authenticate'), /^Bearer /);
  t.equal(((await missing.json()) as { error: string }).error, 'unauthorized');
  t.equal((await fetch(`${running.apiUrl}/api/channels`, { headers: { authorization: `Basic ${TOKEN}` } })).status, 401, 'not a bearer token');
  t.equal((await api(running, '/channels', {}, 'operator-token-0123456788')).status, 403, 'one character off');
  t.equal((await api(running, '/reload', { method: 'POST' }, 'x'.repeat(600))).status, 401, 'absurdly long');
  const allowed = await api(running, '/channels');
  t.equal(allowed.status, 200);
  t.equal(allowed.headers.get('cache-control'), 'no-store');

  const docs = await fetch(`${running.apiUrl}/api/docs/json`);
  t.equal(docs.status, 200);
  const document = (await docs.json()) as { openapi: string; paths: Record<string, unknown>; components: { securitySchemes: Record<string, unknown> } };
  t.match(document.openapi, /^3\./);
  t.strictSame(Object.keys(document.paths).sort(), ['/api/channels', '/api/channels/{channel}', '/api/channels/{channel}/input', '/api/channels/{channel}/now-playing', '/api/channels/{channel}/recording', '/api/reload']);
  t.ok(document.components.securitySchemes.bearer, 'declares the bearer scheme');
});

t.test('the API is on the admin listener, not on the origin port', async (t) => {
  const running = await start(t, await withApi(await chaosConfig({ store: 'memory', inputs: 1 })));
  t.equal(running.apiUrl, running.adminUrl);
  t.not(running.adminUrl, running.originUrl);
  t.equal((await api(running, '/channels')).status, 200, 'on the admin listener');
  for (const path of ['/api/channels', '/api/channels/fip', '/api/channels/fip/input', '/api/docs/json', '/api']) {
    const response = await fetch(`${running.originUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    t.equal(response.status, 404, `GET ${path} on the origin port: 404`);
    t.equal(((await response.json()) as { error: string }).error, 'not_found');
  }
  const put = await fetch(`${running.originUrl}/api/channels/fip/input`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ input: 'main' }),
  });
  t.equal(put.status, 404, 'PUT on the origin port: 404, not 405');
});

t.test('the API is off without tokens: every path under /api is a 404, on either port', async (t) => {
  const running = await start(t, await chaosConfig({ store: 'memory', inputs: 1 }));
  t.equal(running.apiUrl, undefined);
  for (const base of [running.adminUrl, running.originUrl!]) {
    for (const path of ['/api/channels', '/api/channels/fip', '/api/docs/json', '/api/reload', '/api']) {
      const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      t.equal(response.status, 404, `${base === running.adminUrl ? 'admin' : 'origin'} ${path}: 404`);
    }
  }
});

t.test('status, a manual switch to the backup and its release', async (t) => {
  const config = await withApi(await chaosConfig({ store: 'memory', inputs: 2, recoverSeconds: 1 }));
  const running = await start(t, config);
  startToneSender(t, config, 0, MAIN_HZ);
  startToneSender(t, config, 1, BACKUP_HZ);
  await waitUntil(t, 'main on air with both inputs healthy, segments published', async () => {
    const view = await channel(running);
    return view.activeInput === 'main' && view.inputs.every((input) => input.healthy) && view.lastSegmentAgeSeconds !== null;
  }, 20_000);

  t.equal((await fetch(`${running.originUrl}/fip/fip_hifi.m3u8`, { headers: { 'user-agent': 'api-test-listener' } })).status, 200);
  await running.origin!.onairListeners.flush();
  const listed = (await (await api(running, '/channels')).json()) as { channels: ChannelView[] };
  t.strictSame(listed.channels.map((view) => view.id), ['fip']);
  const view = listed.channels[0]!;
  t.match(view.leader, /:\d+:/, 'the leader is named');
  t.equal(view.leaderAdmin, running.adminUrl, "the leader's admin listener is named: where to scrape its metrics");
  t.ok(view.lastSegmentAgeSeconds !== null && view.lastSegmentAgeSeconds < 3, `last segment ${view.lastSegmentAgeSeconds} s old`);
  t.ok(view.listeners && view.listeners.total <= 1, 'listeners are reported');
  // Counts are read from the store at most once a second: the new listener shows within that.
  await waitUntil(t, 'the one listener is counted', async () => (await channel(running)).listeners?.renditions.hifi === 1, 3000);

  const pinned = await api(running, '/channels/fip/input', { method: 'PUT', body: JSON.stringify({ input: 'backup' }) });
  t.equal(pinned.status, 200);
  t.strictSame(await pinned.json(), { channel: 'fip', pinned: 'backup' });
  await waitUntil(t, 'the backup on air, pinned', async () => {
    const now = await channel(running);
    return now.activeInput === 'backup' && now.pinned === 'backup';
  }, 5000);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal((await channel(running)).activeInput, 'backup', 'kept past recoverSeconds although main is healthy');

  t.equal((await api(running, '/channels/fip/input', { method: 'PUT', body: JSON.stringify({ input: 'nope' }) })).status, 400, 'unknown input');
  t.equal((await api(running, '/channels/jazz/input', { method: 'PUT', body: JSON.stringify({ input: 'main' }) })).status, 404, 'unknown channel');
  t.equal((await api(running, '/channels/fip/input', { method: 'PUT', body: '{"input":' })).status, 400, 'malformed JSON');

  const released = await api(running, '/channels/fip/input', { method: 'DELETE' });
  t.strictSame(await released.json(), { channel: 'fip', pinned: null });
  await waitUntil(t, 'main back on air by priority', async () => {
    const now = await channel(running);
    return now.activeInput === 'main' && now.pinned === null;
  }, 5000);
});

t.test('reload adds and removes a channel without a restart, refuses a bad file and a change that needs a restart', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'onair-reload-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'channels.json');
  const config = await withApi(await chaosConfig({ store: 'memory', inputs: 1 }));
  const raw = JSON.parse(JSON.stringify(config)) as { channels: Record<string, unknown>[]; origin: { port: number } };
  await writeFile(path, JSON.stringify(raw));
  const running = await start(t, config, path);
  const reload = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await api(running, '/reload', { method: 'POST' });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  const jazz = { ...raw.channels[0], id: 'jazz', inputs: [{ id: 'main', url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { passphrase: 'onair-test-passphrase' } }] };
  await writeFile(path, JSON.stringify({ ...raw, channels: [...raw.channels, jazz] }));
  const added = await reload();
  t.equal(added.status, 200);
  t.strictSame(added.body, { added: ['jazz'], removed: [], restarted: [] });
  t.ok(running.ingest!.channels.has('jazz'), 'its ingest runs');
  const jazzPlaylist = await fetch(`${running.originUrl}/jazz/jazz_hifi.m3u8`);
  t.equal(((await jazzPlaylist.json()) as { message: string }).message, 'playlist not available yet', 'the origin knows it');

  await writeFile(path, JSON.stringify({ ...raw, channels: [{ ...raw.channels[0], renditions: [{ id: 'lofi', bitrate: 'lots' }] }] }));
  const bad = await reload();
  t.equal(bad.status, 400);
  t.match(bad.body.message, /channels\[0\]\.renditions\[0\]\.bitrate/, 'names the key');
  t.ok(running.ingest!.channels.has('jazz'), 'the running config is kept');

  await writeFile(path, JSON.stringify({ ...raw, origin: { ...raw.origin, port: raw.origin.port + 1 } }));
  const restart = await reload();
  t.equal(restart.status, 409);
  t.match(restart.body.message, /origin/);

  await writeFile(path, JSON.stringify(raw));
  const removed = await reload();
  t.strictSame(removed.body, { added: [], removed: ['jazz'], restarted: [] });
  t.notOk(running.ingest!.channels.has('jazz'));
  t.equal(((await (await fetch(`${running.originUrl}/jazz/jazz_hifi.m3u8`)).json()) as { message: string }).message, 'unknown channel or rendition');
});

t.test('a manual switch asked of a process that stands by is refused with 409', async (t) => {
  const config = await withApi(await chaosConfig({ store: 'memory', inputs: 2 }));
  const running = await start(t, config);
  const packager = running.ingest!.channels.get('fip')!.packager;
  await waitUntil(t, 'the packager leads', () => packager.isLeading, 5000);
  packager.demote(); // as a hot standby is: it runs the channel, another process writes it
  const refused = await api(running, '/channels/fip/input', { method: 'PUT', body: JSON.stringify({ input: 'backup' }) });
  t.equal(refused.status, 409);
  t.match(((await refused.json()) as { message: string }).message, /stands by/);
});

t.test('a channel that fails to start in a reload is not lost: 503, and the next reload starts it', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'onair-reload-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'channels.json');
  const config = await withApi(await chaosConfig({ store: 'memory', inputs: 1 }));
  const raw = JSON.parse(JSON.stringify(config)) as { channels: Record<string, unknown>[] };
  await writeFile(path, JSON.stringify(raw));
  /** A store whose reads of jazz's state fail while `failing` is set. */
  class FlakyStore extends DelegatingStore {
    failing = true;
    override async getState(channel: string): Promise<string | null> {
      if (channel === 'jazz' && this.failing) throw new Error('store hiccup');
      return this.inner.getState(channel);
    }
  }
  const memory = new MemoryStore();
  await memory.start();
  t.teardown(() => memory.close());
  const store = new FlakyStore(memory);
  const running = await startOnair({ config, role: 'start', logger: testLogger(config), configPath: path, store });
  t.teardown(() => running.close());

  const jazz = { ...raw.channels[0], id: 'jazz', inputs: [{ id: 'main', url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { passphrase: 'onair-test-passphrase' } }] };
  await writeFile(path, JSON.stringify({ ...raw, channels: [...raw.channels, jazz] }));
  const failed = await api(running, '/reload', { method: 'POST' });
  t.equal(failed.status, 503);
  t.match(((await failed.json()) as { message: string }).message, /jazz: store hiccup/);
  t.notOk(running.ingest!.channels.has('jazz'), 'the half-started channel is not left behind');
  t.ok(running.ingest!.channels.has('fip'), 'the others run on');

  store.failing = false;
  const retried = await api(running, '/reload', { method: 'POST' });
  t.equal(retried.status, 200);
  t.strictSame(await retried.json(), { added: ['jazz'], removed: [], restarted: [] }, 'the same file again: jazz is started this time');
  t.ok(running.ingest!.channels.has('jazz'));
});

t.test('the API is rate-limited per client address, before the token check: 429 with Retry-After', async (t) => {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const app = Fastify({ logger: false });
  await app.register(controlApi, { prefix: '/api', tokens: [TOKEN], store, channels: () => [], ingest: () => undefined, listeners: () => undefined, requestsPerMinute: 2 });
  t.teardown(() => app.close());
  const get = (address: string, token = TOKEN) =>
    app.inject({ method: 'GET', url: '/api/channels', remoteAddress: address, headers: { authorization: `Bearer ${token}` } });
  t.same([(await get('192.0.2.1')).statusCode, (await get('192.0.2.1', 'wrong-token-0123456789')).statusCode], [200, 403]);
  const limited = await get('192.0.2.1');
  t.equal(limited.statusCode, 429, 'the third within a minute is refused: wrong tokens count too');
  t.equal(limited.json().error, 'rate_limited');
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After');
  t.equal(limited.headers['cache-control'], 'no-store');
  t.equal((await get('192.0.2.2')).statusCode, 200, 'another address has its own budget');
  const missing = await app.inject({ method: 'GET', url: '/api/channels/nope', remoteAddress: '192.0.2.3', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(missing.statusCode, 404, 'other errors answer as before');
});
