/**
 * A full Redis (docs/architecture.md, "Failure model"): a real `onair start` on a real
 * redis-server whose maxmemory is set below what it holds, under the default noeviction
 * policy. Writes are refused:
 * the origin keeps serving the last playlists (every segment they list still readable), the
 * refusals show in /metrics and in the log with their code, and once memory frees (maxmemory
 * raised) the packager publishes what it queued and goes on, without an MSN gap.
 */
import t from 'tap';
import { parseSegmentUri } from '../../src/hls/published-names.js';
import { parsePlaylist } from '../helpers/m3u8.js';
import { originUrl, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { redisCli, startRedisServer } from '../helpers/redis-server.js';
import { sleep } from '../helpers/wait-until.js';

const READY = /"msg":"ingest started"/;

async function playlist(base: string): Promise<{ status: number; msns: number[]; uris: string[] }> {
  const response = await fetch(`${base}/fip/fip_hifi.m3u8`);
  if (response.status !== 200) return { status: response.status, msns: [], uris: [] };
  const { manifest } = parsePlaylist(await response.text());
  const uris = manifest.segments.map((segment) => segment.uri);
  return { status: 200, msns: uris.map((uri) => parseSegmentUri(uri)!.msn), uris };
}

/** The sum of a counter's samples in a Prometheus text exposition, optionally only those matching `labels`. */
function counter(metrics: string, name: string, labels = ''): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

t.test('a full Redis: the last playlists stay served, the refusals are counted and logged, and publishing resumes once memory frees', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const cli = (...args: string[]) => redisCli(['-p', String(redis.port), ...args]);
  const config = await testConfig({ store: redis.url, segmentSeconds: 1 });
  const origin = originUrl(config);
  startSender(t, config);
  const onair = await startOnairProcess(t, { role: 'start', config, readyPattern: READY });
  // /metrics is on the admin listener (a free port here): its address is in the log.
  const admin = /"url":"(http:[^"]+)","msg":"admin listening/.exec(onair.output())?.[1];
  t.ok(admin, `the admin listener is at ${admin}`);
  await waitFor('three segments', async () => ((await playlist(origin)).msns.length >= 3 ? true : undefined));
  t.match(await cli('CONFIG', 'GET', 'maxmemory-policy'), /noeviction/, "Redis's default policy, the one onair accepts");

  // A tiny maxmemory, half of what Redis holds now: it is full (a limit just above the use
  // would fill within a second, but client buffers come and go, and some writes would slip in).
  const used = Number(/used_memory:(\d+)/.exec(await cli('INFO', 'memory'))![1]);
  await cli('CONFIG', 'SET', 'maxmemory', String(Math.floor(used / 2)));
  const full = await waitFor(
    'the packager meets a full Redis',
    async () => {
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      return counter(metrics, 'onair_packager_store_retries_total', 'channel="fip"') > 0 ? metrics : undefined;
    },
    20_000,
  );
  t.ok(counter(full, 'onair_store_errors_total', 'operation="putSegment"') > 0, 'onair_store_errors_total{operation="putSegment"} counts the refused writes');
  await waitFor('the refusal in the log', async () => (/"code":"ONAIR_STORE_FULL"[^\n]*store write failed; will retry/.test(onair.output()) ? true : undefined), 5000);
  t.pass('the log says the store is full, with its code, and that the write will be retried');

  // While Redis is full the origin keeps serving the last playlists, and what they list.
  const frozen = await playlist(origin);
  t.equal(frozen.status, 200);
  t.ok(frozen.msns.length >= 3, `the last playlist still lists ${frozen.msns.length} segments`);
  await sleep(3000);
  const still = await playlist(origin);
  t.equal(still.status, 200, 'the origin still answers the playlist');
  t.same(still.msns, frozen.msns, 'the same playlist: nothing was published, nothing was removed');
  for (const uri of still.uris) t.equal((await fetch(`${origin}/fip/${uri}`)).status, 200, `${uri} is still served`);

  // Memory frees: what the packager queued (up to a window) goes out, and the channel goes on.
  await cli('CONFIG', 'SET', 'maxmemory', '0');
  const lastBefore = frozen.msns.at(-1)!;
  const resumed = await waitFor(
    'publishing again',
    async () => {
      const now = await playlist(origin);
      return now.msns.some((msn) => msn > lastBefore) ? now : undefined;
    },
    20_000,
  );
  t.ok(resumed.msns.includes(lastBefore + 1), `the MSN goes on after ${lastBefore}: no gap`);
  t.same(resumed.msns, resumed.msns.map((_, index) => resumed.msns[0]! + index), 'consecutive MSNs across the outage');
  await waitFor('three more segments', async () => ((await playlist(origin)).msns.at(-1)! >= resumed.msns.at(-1)! + 3 ? true : undefined), 10_000);
  const later = await playlist(origin);
  for (const uri of later.uris) t.equal((await fetch(`${origin}/fip/${uri}`)).status, 200, `${uri} is served`);
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  t.ok(counter(metrics, 'onair_segments_published_total', 'channel="fip"') > lastBefore - frozen.msns[0]!, 'segments are published again');
});
