/**
 * `onair origin` with `origin.workers: 2` end to end (src/onair-cluster.ts,
 * src/origin/origin-cluster.ts): a real redis-server, the built CLI (dist/src/cli.js) as a
 * primary with two node:cluster workers on one loopback port, and a live channel written
 * into the store by this test (the bench's content: real TS segments, real playlists).
 * Every request goes over a new connection, so the primary's round-robin spreads them, and
 * the `onair-worker` header says who answered. Proven: both workers serve; a playlist
 * published after both cached the old one is served by both long before their cache would
 * expire (the store notification reached each); /metrics on the primary's admin listener
 * sums both workers' request counters; listener counts are exact with listeners on both
 * workers (progressive connections and HLS sessions); a SIGKILLed worker is replaced; SIGTERM
 * to the primary stops every worker. The primary's admin listener serves HTTPS (`admin.tls`, a
 * test CA's certificate), as the one admin port of the cluster. Build first: `npx tsc -p tsconfig.build.json`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { get as httpsGet } from 'node:https';
import { pino } from 'pino';
import t from 'tap';
import { buildContent, CHANNEL_ID, RENDITION_ID, SEGMENT_TTL_SECONDS } from '../../bench/origin-content.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { openStream, type StreamListener } from '../helpers/progressive-listener.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { makeTestCa } from '../helpers/test-certificates.js';

/** 12 s segments: a target duration of 12 s, so a subscribed worker keeps a playlist 6 s without a notification. */
const SEGMENT_SECONDS = 12;
const PLAYLIST_CACHE_MS = (SEGMENT_SECONDS * 1000) / 2;
const MEDIA_PATH = `/${CHANNEL_ID}/${CHANNEL_ID}_${RENDITION_ID}.m3u8`;

const redis = await startRedisServer();
t.teardown(() => redis.stop());
const store = new RedisStore({ url: redis.url, logger: pino({ level: 'silent' }) });
await store.start();
t.teardown(() => store.close());

const content = buildContent();
for (const segment of content.segments) await store.putSegment(CHANNEL_ID, RENDITION_ID, segment.name, segment.bytes, SEGMENT_TTL_SECONDS);
await store.publish({ channel: CHANNEL_ID, playlists: content.playlists, state: JSON.stringify(content.state) });

const base = await testConfig({ store: redis.url, segmentSeconds: SEGMENT_SECONDS, channel: { renditions: [{ id: RENDITION_ID, bitrate: '128k' }] } });
const ca = await makeTestCa(t);
const adminPair = await ca.issue('admin', '5A01');
const config = resolveConfig({ ...base, origin: { ...base.origin, workers: 2 }, admin: { ...base.admin, tls: { certFile: adminPair.certFile, keyFile: adminPair.keyFile } } });
const port = config.origin.port;
const origin = await startOnairProcess(t, { role: 'origin', config, readyPattern: /"msg":"origin workers listening"/, readyTimeoutMs: 30_000 });
const adminUrl = /"url":"(https:\/\/[^"]+)","msg":"admin listening"/.exec(origin.output())![1]!;

/** GET on the primary's HTTPS admin listener, trusting the test CA. */
function adminGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const outgoing = httpsGet(`${adminUrl}${path}`, { ca: readFileSync(ca.caFile), servername: 'localhost' }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.setTimeout(10_000, () => outgoing.destroy(new Error(`GET ${path}: no answer in 10 s`)));
  });
}

interface Answer {
  status: number;
  worker: string | undefined;
  body: string;
}

/** Media playlist fetches made so far (each answered 200): /metrics must count exactly these. */
let mediaFetches = 0;

/** One GET over a connection of its own (no keep-alive agent), so the primary hands it to the next worker. */
function getFresh(path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, worker: response.headers['onair-worker'] as string | undefined, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.setTimeout(10_000, () => outgoing.destroy(new Error(`GET ${path}: no answer in 10 s`)));
    outgoing.end();
  });
}

async function getMedia(query = ''): Promise<Answer> {
  const answer = await getFresh(`${MEDIA_PATH}${query}`);
  if (answer.status === 200) mediaFetches += 1;
  return answer;
}

/** Fetches the media playlist until every worker in `workers` answered with `body` (bounded). */
async function servedByEach(workers: string[], body: string, timeoutMs: number): Promise<Map<string, number>> {
  const seenAt = new Map<string, number>();
  const deadline = Date.now() + timeoutMs;
  while (seenAt.size < workers.length && Date.now() < deadline) {
    const answer = await getMedia();
    if (answer.worker !== undefined && answer.body === body && !seenAt.has(answer.worker)) seenAt.set(answer.worker, Date.now());
  }
  return seenAt;
}

async function metricsText(): Promise<string> {
  return adminGet('/metrics');
}

function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

t.test('two workers serve the one port, and a playlist published later is served by both at once (store notifications)', async (t) => {
  const mediaName = `${CHANNEL_ID}_${RENDITION_ID}.m3u8`;
  const old = content.playlists[mediaName]!;
  const cached = await servedByEach(['1', '2'], old, 15_000);
  t.same([...cached.keys()].sort(), ['1', '2'], 'both workers answered (and now hold the playlist in their caches)');

  const next = buildContent(Date.now() + 60_000);
  t.not(next.playlists[mediaName], old, 'the new playlist differs (its PROGRAM-DATE-TIMEs)');
  await store.publish({ channel: CHANNEL_ID, playlists: next.playlists, state: JSON.stringify(next.state) });
  const publishedAt = Date.now();
  const fresh = await servedByEach(['1', '2'], next.playlists[mediaName]!, PLAYLIST_CACHE_MS - 1000);
  t.same([...fresh.keys()].sort(), ['1', '2'], `both workers served the new playlist within ${PLAYLIST_CACHE_MS - 1000} ms, before their cached copy would expire`);
  for (const [worker, at] of fresh) t.comment(`worker ${worker}: the new playlist ${at - publishedAt} ms after the publish`);
});

t.test('/metrics on the admin listener sums every worker’s counters', async (t) => {
  const series = 'onair_http_requests_total{route="media",status="200"}';
  const value = await waitFor('the summed media requests', async () => {
    const counted = metricValue(await metricsText(), series);
    return counted === mediaFetches ? counted : undefined;
  }, 10_000).catch(() => metricValue('', series));
  t.equal(value, mediaFetches, `${series} is the ${mediaFetches} media playlists fetched, over both workers`);
  const text = await metricsText();
  t.equal(metricValue(text, 'onair_origin_workers'), 2);
  t.equal(metricValue(text, 'onair_origin_worker_restarts_total'), 0);
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.equal(promtool.status, 0, `promtool check metrics passes on the summed output ${promtool.stdout}${promtool.stderr}`);
});

t.test('listener counts are exact with listeners on both workers', async (t) => {
  const streams: StreamListener[] = [];
  t.teardown(() => streams.forEach((stream) => stream.close()));
  for (let index = 0; index < 4; index++) streams.push(await openStream(port, `/${CHANNEL_ID}-${RENDITION_ID}.aac`));
  t.ok(streams.every((stream) => stream.head.status === 200), 'four progressive listeners');
  t.same([...new Set(streams.map((stream) => stream.header('onair-worker')))].sort(), ['1', '2'], 'spread over both workers');
  const sessions = ['a', 'b', 'c', 'd', 'e', 'f'];
  const workers = new Set<string>();
  for (const session of sessions) workers.add((await getMedia(`?_onair_sid=session-${session}`)).worker ?? '');
  t.same([...workers].sort(), ['1', '2'], 'HLS sessions on both workers');

  // Each worker reports its own progressive connections every 5 s; HLS ids are flushed every second.
  const counts = await waitFor('exact listener counts', async () => {
    const body = JSON.parse(await adminGet('/listeners.json')) as { channels: Record<string, { total: number; progressive?: { total: number } }> };
    const channel = body.channels[CHANNEL_ID];
    return channel?.progressive?.total === 4 && channel.total >= sessions.length ? channel : undefined;
  }, 20_000).catch(() => undefined);
  t.equal(counts?.progressive?.total, 4, 'progressive: the 4 open connections, summed over the workers');
  // The earlier fetches without a session id count once (this test's address and User-Agent) while still in the window.
  t.ok(counts !== undefined && counts.total >= sessions.length && counts.total <= sessions.length + 1, `HLS: the 6 sessions (and this test as one client without a session id): ${counts?.total}`);
  const progressive = metricValue(await metricsText(), `onair_progressive_listeners{channel="${CHANNEL_ID}",rendition="${RENDITION_ID}"}`);
  t.equal(progressive, 4, 'onair_progressive_listeners summed over the workers');
});

t.test('a killed worker is replaced', async (t) => {
  const before = origin.children();
  t.equal(before.length, 2, 'two worker processes');
  process.kill(before[0]!, 'SIGKILL');
  const replaced = await waitFor('a replacement worker', async () => {
    const now = origin.children();
    return now.length === 2 && !now.includes(before[0]!) ? now : undefined;
  }, 20_000).catch(() => origin.children());
  t.equal(replaced.length, 2, 'two worker processes again');
  t.notOk(replaced.includes(before[0]!), 'the killed one is gone');
  const served = await waitFor('the replacement serving', async () => ((await getMedia()).worker === '3' ? true : undefined), 20_000).catch(() => false);
  t.ok(served, 'the replacement (worker 3) answers on the port');
  t.equal(metricValue(await metricsText(), 'onair_origin_worker_restarts_total'), 1);
});

t.test('SIGTERM to the primary stops every worker', async (t) => {
  const workers = origin.children();
  t.equal(workers.length, 2);
  const exit = await origin.stop();
  t.same(exit, { code: 0, signal: null }, 'the primary exits 0');
  const alive = workers.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  t.same(alive, [], 'no worker is left running');
});
