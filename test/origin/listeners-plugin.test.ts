/**
 * The listeners plugin (src/origin/listeners-plugin.ts) on an origin instance built like
 * buildOrigin builds it (trustProxy, a 1 KiB instance body limit), with app.inject():
 * which fetches count, /listeners.json, the window, and the access-log ingest endpoint.
 */
import Fastify from 'fastify';
import { Agent, get as httpGet } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, InjectOptions } from 'fastify';
import t from 'tap';
import type { Test } from 'tap';
import { isOnairError, OnairError } from '../../src/errors.js';
import { listenersPlugin, type ListenersOptions } from '../../src/origin/listeners-plugin.js';
import { MAX_PARAM_LENGTH, originPlugin } from '../../src/origin/origin-plugin.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { ManualClock } from '../helpers/manual-clock.js';

const TARGET_DURATION = 4;
const TD_MS = TARGET_DURATION * 1000;
const CHANNELS = [
  { id: 'fip', renditions: ['hifi', 'lofi'] },
  { id: 'jazz', renditions: ['hifi'] },
];
const TOKEN = 'ingest-token-0123456789';
/** The start of a bucket: tests move the clock from here. */
const BUCKET_START = 400_000_000 * TD_MS;

function mediaPlaylist(rendition: string): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${TARGET_DURATION}`, '#EXT-X-MEDIA-SEQUENCE:1'];
  for (let msn = 1; msn <= 6; msn++) lines.push('#EXTINF:3.989,', `${rendition}/${msn}-1.ts`);
  return `${lines.join('\n')}\n`;
}

interface TestOrigin {
  app: FastifyInstance;
  store: MemoryStore;
  /** Moves the clock shared by the plugin and the store. */
  advance(ms: number): Promise<void>;
  now(): number;
}

async function startOrigin(t: Test, options: Partial<ListenersOptions> & { wrap?: (store: Store) => Store } = {}): Promise<TestOrigin> {
  const clock = new ManualClock(BUCKET_START + 100);
  const now = (): number => clock.now();
  const memory = new MemoryStore({ now });
  await memory.start();
  t.teardown(() => memory.close());
  await memory.publish({
    channel: 'fip',
    playlists: { 'fip.m3u8': '#EXTM3U\n', 'fip_hifi.m3u8': mediaPlaylist('hifi'), 'fip_lofi.m3u8': mediaPlaylist('lofi') },
    state: '{}',
  });
  await memory.putSegment('fip', 'hifi', '1-1.ts', Buffer.alloc(188, 0x47), 600);
  const store = options.wrap ? options.wrap(memory) : memory;
  // As buildOrigin does (origin-server.ts), plus the listeners plugin.
  const app = Fastify({ logger: false, trustProxy: true, bodyLimit: 1024, routerOptions: { maxParamLength: MAX_PARAM_LENGTH } });
  await app.register(originPlugin, { store, channels: CHANNELS, targetDurationSeconds: TARGET_DURATION });
  await app.register(listenersPlugin, {
    store,
    targetDurationSeconds: TARGET_DURATION,
    channels: () => app.onairOrigin.channels(),
    ingestTokens: [TOKEN],
    // Flushed by hand, read afresh: each test says when the store is written and read.
    flushIntervalMs: 3_600_000,
    countsMaxAgeMs: 0,
    clock,
    ...options,
  });
  t.teardown(() => app.close());
  await app.ready();
  return {
    app,
    store: memory,
    advance: (ms) => clock.advance(ms),
    now,
  };
}

function fetchAs(app: FastifyInstance, url: string, userAgent: string, extra: Partial<InjectOptions> = {}) {
  return app.inject({ method: 'GET', url, ...extra, headers: { 'user-agent': userAgent, ...extra.headers } });
}

async function listeners(app: FastifyInstance): Promise<unknown> {
  await app.onairListeners.flush();
  const response = await app.inject({ method: 'GET', url: '/listeners.json' });
  return response.json();
}

function counts(fip: [number, number, number], jazz = 0) {
  const [total, hifi, lofi] = fip;
  return { channels: { fip: { total, renditions: { hifi, lofi } }, jazz: { total: jazz, renditions: { hifi: jazz } } } };
}

function ingest(app: FastifyInstance, lines: string | object[], headers: Record<string, string> = {}) {
  const payload = typeof lines === 'string' ? lines : lines.map((line) => JSON.stringify(line)).join('\n');
  return app.inject({
    method: 'POST',
    url: '/ingest/access-log',
    payload,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson', ...headers },
  });
}

t.test('media playlist fetches count distinct listeners; master playlists, segments, HEAD and errors do not', async (t) => {
  const { app } = await startOrigin(t);
  t.equal((await fetchAs(app, '/fip/fip_hifi.m3u8', 'player-a')).statusCode, 200);
  await fetchAs(app, '/fip/fip_hifi.m3u8', 'player-a');
  await fetchAs(app, '/fip/fip_hifi.m3u8', 'player-b');
  // player-b switches rendition: one more lofi listener, the same channel listener.
  await fetchAs(app, '/fip/fip_lofi.m3u8', 'player-b');
  const etag = (await fetchAs(app, '/fip/fip_lofi.m3u8', 'player-c')).headers.etag as string;
  t.equal((await fetchAs(app, '/fip/fip_lofi.m3u8', 'player-d', { headers: { 'if-none-match': etag } })).statusCode, 304);

  t.equal((await fetchAs(app, '/fip/fip.m3u8', 'master-only')).statusCode, 200);
  t.equal((await fetchAs(app, '/fip/hifi/1-1.ts', 'segment-only')).statusCode, 200);
  t.equal((await fetchAs(app, '/fip/fip_hifi.m3u8', 'head-only', { method: 'HEAD' })).statusCode, 200);
  t.equal((await fetchAs(app, '/fip/fip_midfi.m3u8', 'unknown-rendition')).statusCode, 404);
  t.equal((await fetchAs(app, '/jazz/jazz_hifi.m3u8', 'not-published-yet')).statusCode, 404);

  t.same(await listeners(app), counts([4, 2, 3]), 'hifi a, b; lofi b, c, d (304 counts); four on the channel');
});

t.test('/listeners.json is JSON that no cache keeps', async (t) => {
  const { app } = await startOrigin(t);
  const response = await app.inject({ method: 'GET', url: '/listeners.json' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /^application\/json/);
  t.equal(response.headers['cache-control'], 'no-store');
  t.same(response.json(), counts([0, 0, 0]));
});

t.test('a session id is one listener from any address; without one, each address and User-Agent is one', async (t) => {
  const { app } = await startOrigin(t);
  const fromAddress = (address: string, query = '') =>
    fetchAs(app, `/fip/fip_hifi.m3u8${query}`, 'same-player', { headers: { 'x-forwarded-for': address } });
  await fromAddress('203.0.113.1', '?_onair_sid=session-1');
  await fromAddress('198.51.100.9', '?_onair_sid=session-1');
  await fromAddress('198.51.100.9', '?sid=session-1');
  t.same(await listeners(app), counts([1, 1, 0]), 'the session moved networks: still one');
  await fromAddress('203.0.113.1');
  await fromAddress('203.0.113.2');
  await fromAddress('203.0.113.2', '?_onair_sid=not%20a%20token');
  t.same(await listeners(app), counts([3, 3, 0]), 'two addresses behind the proxy, an invalid session id falls back to the address');
});

t.test('on one keep-alive connection, each User-Agent and X-Forwarded-For is its own listener, as on a new connection', async (t) => {
  // Real loopback sockets: the last client id is kept per connection (listeners-plugin.ts).
  const { app } = await startOrigin(t);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const fetchOn = (connection: Agent, userAgent: string, forwardedFor?: string, query = '') =>
    new Promise<{ status: number; reused: boolean; localPort: number }>((resolve, reject) => {
      const headers: Record<string, string> = { 'user-agent': userAgent };
      if (forwardedFor !== undefined) headers['x-forwarded-for'] = forwardedFor;
      const request = httpGet({ host: '127.0.0.1', port, path: `/fip/fip_hifi.m3u8${query}`, agent: connection, headers }, (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, reused: request.reusedSocket, localPort: request.socket?.localPort ?? 0 }));
      });
      request.on('error', reject);
    });
  const first = await fetchOn(agent, 'player-a');
  t.equal(first.status, 200);
  const answers = [
    await fetchOn(agent, 'player-a'),
    await fetchOn(agent, 'player-b'),
    await fetchOn(agent, 'player-a', '203.0.113.7'),
    await fetchOn(agent, 'player-a', '203.0.113.8'),
    await fetchOn(agent, 'player-a', '203.0.113.7'),
    await fetchOn(agent, 'player-b', undefined, '?_onair_sid=session-1'),
  ];
  t.ok(answers.every((answer) => answer.status === 200 && answer.reused && answer.localPort === first.localPort), 'all on the first connection');
  t.same(await listeners(app), counts([5, 5, 0]), 'player-a, player-b, two clients behind the proxy, one session');

  // A new connection counts the same clients as the same listeners.
  const other = new Agent({ keepAlive: false });
  t.teardown(() => other.destroy());
  await fetchOn(other, 'player-a');
  await fetchOn(other, 'player-b', '203.0.113.7');
  t.same(await listeners(app), counts([6, 6, 0]), 'player-a again; player-b behind the proxy is new');
});

t.test('a listener is counted until the end of the bucket after the one of its last fetch', async (t) => {
  const { app, advance, now } = await startOrigin(t);
  await fetchAs(app, '/fip/fip_hifi.m3u8', 'player-a');
  await advance(BUCKET_START + 2 * TD_MS - 1 - now());
  await fetchAs(app, '/fip/fip_lofi.m3u8', 'player-b');
  t.same(await listeners(app), counts([2, 1, 1]), 'player-a still counted almost 2 TD after its fetch');
  await advance(1);
  t.same(await listeners(app), counts([1, 0, 1]), 'player-a gone once its bucket is two back; player-b in the previous one');
  await advance(TD_MS);
  t.same(await listeners(app), counts([0, 0, 0]), 'player-b gone 1 TD after its fetch at the end of a bucket');
});

t.test('counts() reads the store at most once per max age, however many ask', async (t) => {
  class CountingStore extends DelegatingStore {
    reads = 0;
    override countListeners(channel: string, renditions: string[], buckets: number[]): Promise<number> {
      this.reads += 1;
      return this.inner.countListeners(channel, renditions, buckets);
    }
  }
  let counting: CountingStore | undefined;
  const { app, advance } = await startOrigin(t, { countsMaxAgeMs: 1000, wrap: (store) => (counting = new CountingStore(store)) });
  const readsPerRefresh = 3 + 2; // fip: total, hifi, lofi; jazz: total, hifi
  await Promise.all([app.onairListeners.counts(), app.onairListeners.counts()]);
  await app.inject({ method: 'GET', url: '/listeners.json' });
  t.equal(counting!.reads, readsPerRefresh, 'concurrent and later calls share one read');
  await advance(1000);
  await app.onairListeners.counts();
  t.equal(counting!.reads, 2 * readsPerRefresh, 'read again once a second has passed');
});

t.test('a failing store never fails a playlist request; /listeners.json answers 503 meanwhile', async (t) => {
  class FailingStore extends DelegatingStore {
    override recordListeners(): Promise<void> {
      return Promise.reject(new OnairError('ONAIR_STORE_UNAVAILABLE', 'connection refused'));
    }
    override countListeners(): Promise<number> {
      return Promise.reject(new OnairError('ONAIR_STORE_UNAVAILABLE', 'connection refused'));
    }
  }
  const { app } = await startOrigin(t, { wrap: (store) => new FailingStore(store) });
  t.equal((await fetchAs(app, '/fip/fip_hifi.m3u8', 'player-a')).statusCode, 200);
  await app.onairListeners.flush();
  const response = await app.inject({ method: 'GET', url: '/listeners.json' });
  t.equal(response.statusCode, 503);
  t.equal(response.headers['retry-after'], '1');
  t.equal(response.json().error, 'store_unavailable');
  await t.rejects(app.onairListeners.counts(), { code: 'ONAIR_STORE_UNAVAILABLE' });
});

t.test('the ingest endpoint', async (t) => {
  const line = { client: '203.0.113.7', ua: 'VLC/3.0.20', path: '/fip/fip_hifi.m3u8', time: BUCKET_START + 50 };

  t.test('wants a known bearer token: 401 without one, 403 with another', async (t) => {
    const { app } = await startOrigin(t);
    const without = await ingest(app, [line], { authorization: '' });
    t.equal(without.statusCode, 401);
    t.match(without.headers['www-authenticate'], /^Bearer /);
    t.equal((await ingest(app, [line], { authorization: `Basic ${TOKEN}` })).statusCode, 401, 'not a bearer token');
    t.equal((await ingest(app, [line], { authorization: 'Bearer another-token-0123456789' })).statusCode, 403);
    t.equal((await ingest(app, [line], { authorization: `Bearer ${TOKEN}x` })).statusCode, 403, 'a longer token is another token');
    t.same(await listeners(app), counts([0, 0, 0]), 'nothing counted');
    t.equal((await ingest(app, [line])).statusCode, 202, 'the configured token is accepted');
  });

  t.test('refuses an unauthorized body before reading it', async (t) => {
    const { app } = await startOrigin(t);
    const large = `${JSON.stringify(line)}\n`.repeat(100_000);
    t.equal((await ingest(app, large, { authorization: '' })).statusCode, 401, 'not 413');
  });

  t.test('does not exist without tokens', async (t) => {
    const { app } = await startOrigin(t, { ingestTokens: [] });
    const response = await ingest(app, [line]);
    t.equal(response.statusCode, 404);
    t.equal(response.json().error, 'not_found');
  });

  t.test('counts media playlist lines in the bucket of their own time and ignores the rest', async (t) => {
    const { app } = await startOrigin(t);
    const response = await ingest(app, [
      line,
      { client: '203.0.113.8', path: '/fip/fip_lofi.m3u8', time: new Date(BUCKET_START - 1000).toISOString(), status: 304 },
      { client: '203.0.113.9', path: 'https://cdn.example.net/fip/fip_lofi.m3u8?_onair_sid=session-9', time: BUCKET_START },
      { client: '203.0.113.10', path: '/fip/fip.m3u8', time: BUCKET_START },
      { client: '203.0.113.11', path: '/fip/hifi/1-1.ts', time: BUCKET_START },
      { client: '203.0.113.12', path: '/rock/rock_hifi.m3u8', time: BUCKET_START },
      { client: '203.0.113.13', path: '/fip/fip_hifi.m3u8', time: BUCKET_START, status: 404 },
      { client: '203.0.113.14', path: '/fip/fip_hifi.m3u8', time: BUCKET_START - TD_MS - 1 },
      { client: '203.0.113.15', path: '/fip/fip_hifi.m3u8', time: BUCKET_START + 3_600_000 },
    ]);
    t.equal(response.statusCode, 202);
    t.equal(response.headers['cache-control'], 'no-store');
    t.same(response.json(), { accepted: 3, ignored: 6 }, 'master, segment, unknown channel, 404, too old, too far ahead');
    t.same(await listeners(app), counts([3, 1, 2]));
  });

  t.test('counts a listener seen in the access log and at the origin once', async (t) => {
    const { app } = await startOrigin(t);
    await fetchAs(app, '/fip/fip_hifi.m3u8', line.ua, { headers: { 'x-forwarded-for': line.client } });
    await fetchAs(app, '/fip/fip_hifi.m3u8?_onair_sid=session-1', 'web-player');
    await ingest(app, [line, { client: '198.51.100.1', path: '/fip/fip_hifi.m3u8?sid=session-1', time: BUCKET_START }]);
    t.same(await listeners(app), counts([2, 2, 0]));
  });

  t.test('takes JSON lines as text/plain too, with CRLF and blank lines', async (t) => {
    const { app } = await startOrigin(t);
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify({ ...line, client: `203.0.113.${i}` }));
    const body = `${lines.join('\r\n\r\n')}\r\n`;
    t.ok(body.length > 1024, 'over the origin-wide body limit');
    const response = await ingest(app, body, { 'content-type': 'text/plain; charset=utf-8' });
    t.equal(response.statusCode, 202);
    t.same(response.json(), { accepted: 30, ignored: 0 });
  });

  t.test('takes batches of megabytes, over the origin-wide body limit, up to 4 MiB', async (t) => {
    const { app } = await startOrigin(t);
    const lines = Array.from({ length: 20_000 }, (_, i) => ({ ...line, client: `10.0.${i >> 8}.${i & 255}` }));
    const body = lines.map((entry) => JSON.stringify(entry)).join('\n');
    t.ok(body.length > 1024 * 1024, `${body.length} bytes`);
    const response = await ingest(app, body);
    t.equal(response.statusCode, 202);
    t.same(response.json(), { accepted: 20_000, ignored: 0 });
    t.same(await listeners(app), counts([20_000, 20_000, 0]));
    t.equal((await ingest(app, body.repeat(3))).statusCode, 413, 'over 4 MiB');
  });

  t.test('refuses a batch with a bad line with 400 naming the first one, and counts nothing of it', async (t) => {
    const { app } = await startOrigin(t);
    const good = JSON.stringify(line);
    const cases: [string, string][] = [
      ['not JSON', 'GET /fip/fip_hifi.m3u8 HTTP/1.1'],
      ['an array', '[1, 2]'],
      ['a string', '"text"'],
      ['no client', JSON.stringify({ ...line, client: undefined })],
      ['an empty client', JSON.stringify({ ...line, client: '' })],
      ['a numeric client', JSON.stringify({ ...line, client: 7 })],
      ['no path', JSON.stringify({ ...line, path: undefined })],
      ['no time', JSON.stringify({ ...line, time: undefined })],
      ['a time that is no date', JSON.stringify({ ...line, time: 'yesterday' })],
      ['a user agent that is no string', JSON.stringify({ ...line, ua: ['VLC'] })],
      ['a status that is no integer', JSON.stringify({ ...line, status: '200' })],
    ];
    for (const [what, bad] of cases) {
      const response = await ingest(app, [good, '', bad, good].join('\n'));
      t.equal(response.statusCode, 400, what);
      t.equal(response.json().line, 3, `${what}: line 3`);
      t.match(response.json().message, /^line 3: /);
    }
    t.same(await listeners(app), counts([0, 0, 0]), 'the good lines of a refused batch are not counted');
  });

  t.test('answers another content type with 415', async (t) => {
    const { app } = await startOrigin(t);
    t.equal((await ingest(app, [line], { 'content-type': 'application/json' })).statusCode, 415);
  });
});

t.test('options are checked at registration', async (t) => {
  const invalid = async (options: Partial<ListenersOptions>, where: string) => {
    const app = Fastify({ logger: false });
    t.teardown(() => app.close());
    const store = new MemoryStore();
    await app.register(originPlugin, { store, channels: CHANNELS, targetDurationSeconds: TARGET_DURATION });
    const base = { store, targetDurationSeconds: TARGET_DURATION, channels: () => CHANNELS };
    try {
      await app.register(listenersPlugin, { ...base, ...options } as ListenersOptions);
      await app.ready();
      t.fail(`expected ${where} to be refused`);
    } catch (error) {
      t.ok(isOnairError(error, 'ONAIR_CONFIG_INVALID'), `${where}: ONAIR_CONFIG_INVALID`);
      t.equal((error as OnairError).where, where);
    }
  };
  await invalid({ ingestTokens: ['short'] }, 'ingestTokens[0]');
  await invalid({ ingestTokens: [TOKEN, `${TOKEN} with spaces`] }, 'ingestTokens[1]');
  await invalid({ targetDurationSeconds: 0 }, 'targetDurationSeconds');
  await invalid({ channels: CHANNELS as unknown as () => [] }, 'channels');
  await invalid({ clock: { now: () => 0 } as unknown as ListenersOptions['clock'] }, 'clock');
});

t.test('one address counts at most sessionIdsPerClient session ids per bucket; past that, by address and User-Agent', async (t) => {
  const { app } = await startOrigin(t, { sessionIdsPerClient: 3 });
  for (let i = 0; i < 50; i++) {
    await fetchAs(app, `/fip/fip_hifi.m3u8?_onair_sid=forged-${i}`, 'bot', { remoteAddress: '198.51.100.66' });
  }
  await fetchAs(app, '/fip/fip_hifi.m3u8?_onair_sid=real-listener', 'player', { remoteAddress: '203.0.113.1' });
  t.same(await listeners(app), counts([5, 5, 0]), '3 sessions and the address itself from the bot, 1 real listener');
  const lines = Array.from({ length: 20 }, (_, i) => ({ client: '198.51.100.77', ua: 'bot', path: `/fip/fip_lofi.m3u8?sid=log-${i}`, time: BUCKET_START + 50 }));
  t.equal((await ingest(app, lines)).statusCode, 202);
  t.same(await listeners(app), counts([9, 5, 4]), 'log lines are bounded the same way');
});

t.test('the ingest endpoint is rate-limited per client address: 429 with Retry-After past the limit', async (t) => {
  const { app } = await startOrigin(t, { ingestRequestsPerMinute: 2 });
  const line = { client: '203.0.113.7', ua: 'VLC/3.0.20', path: '/fip/fip_hifi.m3u8', time: BUCKET_START + 50 };
  const post = (address: string, authorization = `Bearer ${TOKEN}`) =>
    app.inject({ method: 'POST', url: '/ingest/access-log', remoteAddress: address, payload: JSON.stringify(line), headers: { authorization, 'content-type': 'application/x-ndjson' } });
  t.same([(await post('192.0.2.1')).statusCode, (await post('192.0.2.1', 'Bearer wrong-token-0123456789')).statusCode], [202, 403]);
  const limited = await post('192.0.2.1');
  t.equal(limited.statusCode, 429, 'the third within a minute is refused, whatever its token');
  t.equal(limited.json().error, 'rate_limited');
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After');
  t.equal(limited.headers['cache-control'], 'no-store');
  t.equal((await post('192.0.2.2')).statusCode, 202, 'another address has its own budget');
  t.equal((await app.inject({ method: 'GET', url: '/fip/fip_hifi.m3u8', remoteAddress: '192.0.2.1' })).statusCode, 200, 'playlists are not rate-limited');
});
