/**
 * Hot playlist answers (src/origin/hot-answers.ts): on a real loopback connection, a cached
 * playlist reload is answered without Fastify, with the very status, headers and body the
 * playlist route gives; the listener counter and the request metrics count it; and every
 * request whose answer needs more (HEAD, a query, If-None-Match, a signed channel, an
 * unknown name, an LL-HLS playlist, a client the connection has not identified) is Fastify's.
 * A Fastify onResponse hook registered by the test tells which answered.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { metricsPlugin } from '../../src/metrics/metrics-plugin.js';
import { OnairMetrics } from '../../src/metrics/onair-metrics.js';
import { corsHeaderPairs } from '../../src/origin/cors-headers.js';
import { HotAnswers } from '../../src/origin/hot-answers.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FrameSource } from '../helpers/aac-frames.js';
import { testChannel } from '../helpers/channel-config.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Per-connection headers Node writes itself; the rest must be the route's own. */
const CONNECTION_HEADERS = ['date', 'connection', 'keep-alive'];

async function startOrigin(t: Test) {
  const memory = new MemoryStore();
  await memory.start();
  const logger = pino({ level: 'silent' });
  // fip: 1-s segments; tsf: the same with LL-HLS parts (its playlists are never hot).
  const packagers = [
    new ChannelPackager({ channel: testChannel({}, 1), segmentSeconds: 1, windowSegments: 6, store: memory, logger }),
    new ChannelPackager({ channel: testChannel({ id: 'tsf', lowLatency: true, partSeconds: 0.25 }, 1), segmentSeconds: 1, windowSegments: 6, store: memory, logger }),
  ];
  for (const packager of packagers) await packager.start();
  const source = new FrameSource();
  for (let frame = 0; frame < 5000 && packagers.some((packager) => packager.stats.segmentsPublished < 3); frame++) {
    const group = source.next();
    for (const packager of packagers) packager.pushFrameGroup(group);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const app = await buildOrigin({
    store: memory,
    channels: [
      { id: 'fip', renditions: ['lofi', 'hifi'] },
      { id: 'tsf', renditions: ['lofi', 'hifi'] },
      { id: 'sig', renditions: ['lofi'] },
    ],
    targetDurationSeconds: 1,
    // Long enough that no cached version goes stale during a test.
    playlistCacheMaxAgeMs: 60_000,
    signing: { key: 'a signing key of at least 32 characters', signedChannels: () => new Set(['sig']) },
  });
  const metrics = new OnairMetrics();
  await app.register(metricsPlugin, { metrics, serveMetrics: false, countRequests: true });
  let routed = 0;
  app.addHook('onResponse', (request, reply, done) => {
    routed += 1;
    done();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await app.close();
    for (const packager of packagers) await packager.close();
    await memory.close();
  });
  const port = (app.server.address() as { port: number }).port;
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const request = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end();
    });
  return { app, metrics, get, routed: () => routed };
}

function routeHeaders(answer: Answer): Record<string, unknown> {
  return Object.fromEntries(Object.entries(answer.headers).filter(([name]) => !CONNECTION_HEADERS.includes(name)));
}

async function requestsCounted(metrics: OnairMetrics, route: string): Promise<number> {
  const counter = (await metrics.registry.getMetricsAsJSON()).find((metric) => metric.name === 'onair_http_requests_total');
  const values = (counter?.values ?? []) as { labels: Record<string, string>; value: number }[];
  return values.filter((value) => value.labels.route === route && value.labels.status === '200').reduce((sum, value) => sum + value.value, 0);
}

t.test('a reload on a connection that was answered once is hot, and its answer is the route\'s, byte for byte', async (t) => {
  const { get, routed } = await startOrigin(t);
  for (const [path, headers] of [
    ['/fip/fip_hifi.m3u8', {}],
    ['/fip/fip.m3u8', {}],
    ['/fip/fip_lofi.m3u8', { 'accept-encoding': 'gzip, br' }],
  ] as const) {
    // The same request with a query the origin ignores always takes the route.
    const before = routed();
    const viaRoute = await get(`${path}?via=route`, headers);
    t.equal(routed(), before + 1, `${path}?via=route is routed`);
    const hot = await get(path, headers);
    t.equal(routed(), before + 1, `${path} is answered hot`);
    t.equal(hot.status, 200);
    t.same(routeHeaders(hot), routeHeaders(viaRoute), `${path}: the same headers`);
    t.same(Object.keys(routeHeaders(hot)), Object.keys(routeHeaders(viaRoute)), `${path}: in the same order`);
    t.ok(hot.body.equals(viaRoute.body), `${path}: the same body`);
    if (headers['accept-encoding']) {
      t.equal(hot.headers['content-encoding'], 'gzip');
      t.match(gunzipSync(hot.body).toString('utf8'), /^#EXTM3U\n/);
    } else {
      t.match(hot.body.toString('utf8'), /^#EXTM3U\n/);
    }
  }
});

t.test('whatever needs more than the cached version is answered by the routes', async (t) => {
  const { get, routed } = await startOrigin(t);
  // The connection's client is known from here on.
  await get('/fip/fip_hifi.m3u8');
  const current = await get('/fip/fip_hifi.m3u8');
  const cases: [string, Record<string, string>, string, number][] = [
    ['/fip/fip_hifi.m3u8', {}, 'HEAD', 200],
    ['/fip/fip_hifi.m3u8?_HLS_msn=1', {}, 'GET', 200],
    ['/fip/fip_hifi.m3u8', { 'if-none-match': current.headers.etag! }, 'GET', 304],
    ['/sig/sig_lofi.m3u8', {}, 'GET', 403],
    ['/fip/fip_nope.m3u8', {}, 'GET', 404],
    ['/fip/hifi/fip_hifi.m3u8', {}, 'GET', 400],
    ['/f%69p/fip_hifi.m3u8', {}, 'GET', 200],
    ['/tsf/tsf_hifi.m3u8', {}, 'GET', 200],
    // Another User-Agent on the same connection: the client id must be computed again.
    ['/fip/fip_hifi.m3u8', { 'user-agent': 'another player' }, 'GET', 200],
  ];
  for (const [path, headers, method, status] of cases) {
    const before = routed();
    const answer = await get(path, headers, method);
    t.equal(answer.status, status, `${method} ${path} ${JSON.stringify(headers)}: ${status}`);
    t.equal(routed(), before + 1, `${method} ${path} ${JSON.stringify(headers)}: routed`);
  }
  t.match((await get('/tsf/tsf_hifi.m3u8')).body.toString('utf8'), /#EXT-X-PART:/, 'the LL-HLS playlist has parts');
});

t.test('hot answers are counted: listeners by rendition and the request metrics', async (t) => {
  const { app, metrics, get, routed } = await startOrigin(t);
  // In the origin's memory (as after any earlier request), without a request counted for it.
  t.ok(await app.onairOrigin.playlist('fip', 'fip_hifi.m3u8'));
  // The first answer (lofi) is the route's: it identifies the client on this connection.
  await get('/fip/fip_lofi.m3u8');
  const routedBefore = routed();
  for (let i = 0; i < 3; i++) await get('/fip/fip_hifi.m3u8');
  t.equal(routed(), routedBefore, 'the hifi reloads are hot');
  await app.onairListeners.flush();
  const counts = await app.onairListeners.counts();
  t.equal(counts.channels.fip!.renditions.hifi, 1, 'the hifi listener is counted although only hot answers served hifi');
  t.equal(counts.channels.fip!.renditions.lofi, 1);
  t.equal(counts.channels.fip!.total, 1, 'one client');
  t.equal(await requestsCounted(metrics, 'media'), 4, 'each answer is one request in onair_http_requests_total');
});

t.test('the class declines, writing nothing, when closing, overloaded or unable to count the listener', async (t) => {
  const playlist = { cached: { body: Buffer.from('#EXTM3U\n'), etag: '"e"', gzip: null, gzipEtag: '"g"', position: undefined, newestSegmentUri: undefined }, cacheControl: 'public, max-age=1', kind: 'media' as const };
  let overloaded = false;
  let countable = true;
  const hot = new HotAnswers({
    playlist: () => playlist,
    signed: () => false,
    overloaded: () => overloaded,
    countListener: () => countable,
    corsHeaders: corsHeaderPairs(['ETag']),
    contentType: 'application/vnd.apple.mpegurl',
  });
  const server = createServer((request, response) => {
    if (!hot.answer(request, response)) response.writeHead(299, { 'content-length': '0' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const status = async (): Promise<number> => (await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/fip/fip_hifi.m3u8`)).status;
  t.equal(await status(), 200, 'answered');
  overloaded = true;
  t.equal(await status(), 299, 'overloaded: declined');
  overloaded = false;
  countable = false;
  t.equal(await status(), 299, 'listener not countable: declined');
  countable = true;
  t.equal(await status(), 200);
  hot.close();
  t.equal(await status(), 299, 'closing: declined');
  t.equal(hot.answered, 2);
});
