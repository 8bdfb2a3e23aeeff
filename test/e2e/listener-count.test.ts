/**
 * Listener count accuracy across origins (issue 5): a real redis-server, two origin
 * processes on loopback ports sharing it, each a Fastify instance with the origin plugin
 * and the listeners plugin (built as buildOrigin builds the origin: trustProxy, 1 KiB body
 * limit). 500 simulated listeners: most fetch media playlists over real HTTP from one of
 * the two origins (some with a session id, the others told apart by address and
 * User-Agent, some switching rendition), and some reach the origins only through CDN
 * access-log lines posted to the ingest endpoint, a few of them seen both ways. Both
 * origins must report the same counts, within ±2 % of the truth per channel and rendition
 * (Redis HyperLogLog: about 0.81 % standard error), and further fetches by the same
 * listeners must not move them.
 *
 * The origins run as child processes of this test (the sources through tap's TypeScript
 * loader), not as `onair origin`: the CLI does not register the listeners plugin yet.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import t from 'tap';
import type { Test } from 'tap';
import { RedisStore } from '../../src/store/redis-store.js';
import { killAndWait } from '../helpers/child-processes.js';
import { startRedisServer } from '../helpers/redis-server.js';

/**
 * The bucket length: longer than any real target duration, so that the whole run, even on a
 * loaded machine, stays within the counting window (at least 1 TD, see listener-counter.ts).
 */
const TARGET_DURATION = 30;
const CHANNEL = { id: 'fip', renditions: ['hifi', 'lofi'] };
const TOKEN = 'e2e-ingest-token-0123456789';
const LISTENERS = 500;
const TOLERANCE = 0.02;
/** The origins flush every second and cache counts for a second: wait out both. */
const SETTLE_MS = 2500;
const FETCH_CONCURRENCY = 25;
const READY_TIMEOUT_MS = 15_000;
/** The checkout, as a file URL with a trailing slash, for the origin processes' imports. */
const ROOT_URL = pathToFileURL(join(import.meta.dirname, '..', '..', '/')).href;

/**
 * An origin process: imports the sources, listens on a free loopback port and prints
 * `{"listening":"http://…"}`; closes on SIGTERM. Configured through ONAIR_TEST_ORIGIN.
 */
const ORIGIN_SCRIPT = `
const config = JSON.parse(process.env.ONAIR_TEST_ORIGIN);
const source = (path) => import(new URL(path, config.rootUrl).href);
const { default: Fastify } = await import('fastify');
const { RedisStore } = await source('src/store/redis-store.js');
const { MAX_PARAM_LENGTH, originPlugin } = await source('src/origin/origin-plugin.js');
const { listenersPlugin } = await source('src/origin/listeners-plugin.js');
const store = new RedisStore({ url: config.redisUrl });
await store.start();
const app = Fastify({ logger: { level: 'warn' }, trustProxy: true, bodyLimit: 1024, routerOptions: { maxParamLength: MAX_PARAM_LENGTH } });
await app.register(originPlugin, { store, channels: config.channels, targetDurationSeconds: config.targetDurationSeconds });
await app.register(listenersPlugin, {
  store,
  targetDurationSeconds: config.targetDurationSeconds,
  channels: () => app.onairOrigin.channels(),
  ingestTokens: [config.token],
});
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.once('SIGTERM', async () => {
  await app.close();
  await store.close();
  process.exit(0);
});
console.log(JSON.stringify({ listening: address }));
`;

/** Starts an origin process; resolves with its base URL once it listens. */
async function startOriginProcess(t: Test, redisUrl: string): Promise<string> {
  const loader = process.execArgv.find((argument) => argument.includes('@tapjs/typescript'));
  if (!loader) throw new Error('run this test through tap: the origin processes need its TypeScript loader');
  const config = { rootUrl: ROOT_URL, redisUrl, channels: [CHANNEL], targetDurationSeconds: TARGET_DURATION, token: TOKEN };
  const child = spawn(process.execPath, [loader, '--input-type=module', '-e', ORIGIN_SCRIPT], {
    env: { ...process.env, ONAIR_TEST_ORIGIN: JSON.stringify(config), TS_NODE_TRANSPILE_ONLY: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  t.teardown(async () => {
    await killAndWait(child, 'SIGTERM');
    process.off('exit', killOnExit);
  });
  return listeningAddress(child);
}

function listeningAddress(child: ChildProcess): Promise<string> {
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`origin not listening within ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
    const collect = (chunk: Buffer): void => {
      output += chunk.toString();
      const line = /^\{"listening":.*\}$/m.exec(output);
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line[0]) as { listening: string }).listening);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    void once(child, 'exit').then(() => {
      clearTimeout(timer);
      reject(new Error(`origin exited before listening:\n${output}`));
    });
  });
}

interface SimulatedListener {
  /** Sent as `_onair_sid`, else the listener is its address and User-Agent. */
  sessionId?: string;
  address: string;
  userAgent: string;
  renditions: string[];
  /** Fetches from the origins itself (else only the CDN sees it). */
  direct: boolean;
  /** Appears in the CDN access log. */
  viaCdn: boolean;
}

const USER_AGENTS = ['AppleCoreMedia/1.0.0.21E236', 'VLC/3.0.20 LibVLC/3.0.20', 'Lavf/59.27.100', 'ExoPlayerLib/2.19.1'];

/**
 * 500 distinct listeners: every 4th sends a session id; the others are told apart by
 * address and User-Agent (addresses shared by up to 4 User-Agents, like a household
 * behind NAT). Every 10th switches rendition. 0–449 fetch from the origins, 400–499 show
 * up in the CDN log (so 400–449 are seen both ways).
 */
function simulatedListeners(): SimulatedListener[] {
  return Array.from({ length: LISTENERS }, (_, i) => {
    const primary = CHANNEL.renditions[i % 2];
    const other = CHANNEL.renditions[(i + 1) % 2];
    return {
      sessionId: i % 4 === 0 ? `listener-${i}-${(i * 2654435761) % 2 ** 32}` : undefined,
      address: `10.${i % 3}.${Math.floor(i / 8) % 256}.${(i % 8) * 3 + 1}`,
      userAgent: `${USER_AGENTS[i % USER_AGENTS.length]} (test ${Math.floor(i / USER_AGENTS.length) % 2})`,
      renditions: i % 10 === 3 ? [primary, other] : [primary],
      direct: i < 450,
      viaCdn: i >= 400,
    };
  });
}

function expectedCounts(listeners: SimulatedListener[]) {
  const perRendition = Object.fromEntries(
    CHANNEL.renditions.map((rendition) => [rendition, listeners.filter((listener) => listener.renditions.includes(rendition)).length]),
  );
  return { total: listeners.length, renditions: perRendition };
}

function mediaPath(rendition: string, listener: SimulatedListener): string {
  const query = listener.sessionId ? `?_onair_sid=${listener.sessionId}` : '';
  return `/${CHANNEL.id}/${CHANNEL.id}_${rendition}.m3u8${query}`;
}

async function fetchPlaylist(origin: string, path: string, listener: SimulatedListener): Promise<void> {
  const response = await fetch(`${origin}${path}`, {
    headers: { 'user-agent': listener.userAgent, 'x-forwarded-for': listener.address },
  });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
}

/** Runs `work` over `items`, at most FETCH_CONCURRENCY at a time. */
async function inParallel<T>(items: T[], work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: FETCH_CONCURRENCY }, worker));
}

/**
 * Every direct listener loads its media playlists from origin `pick(i)`, starting with the
 * master playlist when `tuningIn` (a player reloads only the media playlists after that).
 */
async function listen(origins: string[], listeners: SimulatedListener[], pick: (index: number) => number, tuningIn: boolean): Promise<void> {
  await inParallel(listeners, async (listener, i) => {
    if (!listener.direct) return;
    const origin = origins[pick(i)];
    if (tuningIn) await fetchPlaylist(origin, `/${CHANNEL.id}/${CHANNEL.id}.m3u8`, listener);
    for (const rendition of listener.renditions) await fetchPlaylist(origin, mediaPath(rendition, listener), listener);
  });
}

/** Posts the CDN's access log of the listeners it served, in two batches, one to each origin. */
async function shipCdnLog(t: Test, origins: string[], listeners: SimulatedListener[]): Promise<void> {
  const now = Date.now();
  const lines = listeners
    .filter((listener) => listener.viaCdn)
    .flatMap((listener, i) =>
      listener.renditions.map((rendition) => ({
        client: listener.address,
        ua: listener.userAgent,
        path: mediaPath(rendition, listener),
        // Both time forms, a little in the past as a shipper's batch would be.
        time: i % 2 === 0 ? now - 800 : new Date(now - 400).toISOString(),
        status: 200,
      })),
    );
  const half = Math.ceil(lines.length / 2);
  for (const [index, batch] of [lines.slice(0, half), lines.slice(half)].entries()) {
    const response = await fetch(`${origins[index]}/ingest/access-log`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson' },
      body: batch.map((line) => JSON.stringify(line)).join('\n'),
    });
    t.equal(response.status, 202, `CDN log batch ${index + 1} accepted`);
    t.same(await response.json(), { accepted: batch.length, ignored: 0 });
  }
}

interface ChannelCount {
  total: number;
  renditions: Record<string, number>;
}

async function reportedCounts(origin: string): Promise<ChannelCount> {
  const response = await fetch(`${origin}/listeners.json`);
  const body = (await response.json()) as { channels: Record<string, ChannelCount> };
  return body.channels[CHANNEL.id];
}

function checkAccuracy(t: Test, label: string, reported: ChannelCount, expected: ChannelCount): void {
  const pairs: [string, number, number][] = [
    ['total', reported.total, expected.total],
    ...CHANNEL.renditions.map((rendition): [string, number, number] => [rendition, reported.renditions[rendition], expected.renditions[rendition]]),
  ];
  for (const [what, got, want] of pairs) {
    const error = (got - want) / want;
    t.comment(`${label} ${what}: reported ${got}, true ${want}, error ${(error * 100).toFixed(2)} %`);
    t.ok(Math.abs(error) <= TOLERANCE, `${label} ${what}: ${got} within ±2 % of ${want}`);
  }
}

t.test('500 listeners over two origins and a CDN log are counted within 2 %, and refetches do not inflate it', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const publisher = new RedisStore({ url: redis.url });
  await publisher.start();
  t.teardown(() => publisher.close());
  const media = (rendition: string) =>
    `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:${TARGET_DURATION}\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:29.9,\n${rendition}/1-1.ts\n`;
  await publisher.publish({
    channel: CHANNEL.id,
    playlists: { 'fip.m3u8': '#EXTM3U\n', 'fip_hifi.m3u8': media('hifi'), 'fip_lofi.m3u8': media('lofi') },
    state: '{}',
  });

  const origins = await Promise.all([startOriginProcess(t, redis.url), startOriginProcess(t, redis.url)]);
  const listeners = simulatedListeners();
  const expected = expectedCounts(listeners);

  const firstFetchAt = Date.now();
  await listen(origins, listeners, (i) => i % 2, true);
  await shipCdnLog(t, origins, listeners);
  await sleep(SETTLE_MS);
  const first = await Promise.all(origins.map(reportedCounts));
  t.same(first[1], first[0], 'both origins report the same counts');
  checkAccuracy(t, 'after the first fetches', first[0], expected);

  // The same listeners again, twice, each from the other origin now.
  await listen(origins, listeners, (i) => (i + 1) % 2, false);
  await listen(origins, listeners, (i) => (i + 1) % 2, false);
  await shipCdnLog(t, origins, listeners);
  await sleep(SETTLE_MS);
  const again = await Promise.all(origins.map(reportedCounts));
  const bucketOf = (ms: number): number => Math.floor(ms / (TARGET_DURATION * 1000));
  t.ok(bucketOf(Date.now()) - bucketOf(firstFetchAt) <= 1, 'precondition: the first fetches are still in the counting window');
  t.same(again[0], first[0], 'refetches by the same listeners change nothing');
  t.same(again[1], first[0]);

  const client = new Redis(redis.url);
  t.teardown(() => client.quit());
  const keys = await client.keys(`onair:{${CHANNEL.id}}:listeners:*`);
  t.ok(keys.length >= 2 && keys.length <= 4, `one set per rendition and bucket (${keys.length})`);
  for (const key of keys) {
    const ttl = await client.pttl(key);
    t.ok(ttl > 0 && ttl <= 3 * TARGET_DURATION * 1000, `${key} expires (${ttl} ms)`);
  }
});
