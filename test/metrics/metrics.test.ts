/**
 * Prometheus metrics (src/metrics): the real pipeline's /metrics on the admin listener of
 * `start` and of an ingest-only process (never on the origin port; the other admin routes,
 * /listeners.json and /ingest/access-log, neither), checked by `promtool check metrics` (Debian's prometheus
 * package, installed by the test setup); the values follow what happened (segments, requests,
 * store calls, cache hits); a failing store shows as errors and store_up 0; the shipped alert
 * rules pass `promtool check rules` and every metric the rules and the Grafana dashboard use
 * is one the processes export; an unhandled rejection in a running ingest is logged with its
 * code and counted while the process goes on.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { instrumentStore } from '../../src/metrics/instrumented-store.js';
import { OnairMetrics } from '../../src/metrics/onair-metrics.js';
import { INGEST_ADMIN_PORTS } from '../../src/preflight.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { originUrl, startRole, startSender, testConfig, waitForThreeSegments } from '../helpers/onair-harness.js';
import { freeTcpPort } from '../helpers/ports.js';
import { isAlive, startOnairProcess } from '../helpers/onair-process.js';
import { waitUntil } from '../helpers/wait-until.js';

/** Runs promtool with `input` on stdin; resolves with its exit code and output. */
function promtool(args: string[], input?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(input ?? '');
  });
}

/** The value of one sample, e.g. `onair_input_up{channel="fip",input="main"}`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Metric names a PromQL expression uses (identifiers followed by `{`, `[`, `)`, space or end, that start with onair_). */
function metricNames(expression: string): string[] {
  return [...expression.matchAll(/\b(onair_[a-z_]+?)(_bucket)?\b/g)].map((match) => match[1]!);
}

t.test('the pipeline exports its metrics on the admin listener, promtool accepts them, and they follow what happened', async (t) => {
  const config = await testConfig({ segmentSeconds: 1 });
  const running = await startRole(t, config, 'start');
  startSender(t, config);
  const base = originUrl(config);
  await waitForThreeSegments(base);
  for (let index = 0; index < 3; index++) await fetch(`${base}/fip/fip_hifi.m3u8`);
  t.equal((await fetch(`${base}/fip/nope.m3u8`)).status, 404);

  t.equal((await fetch(`${base}/metrics`)).status, 404, 'not on the origin port');
  const response = await fetch(running.metricsUrl);
  t.equal(running.metricsUrl, `${running.adminUrl}/metrics`);
  t.equal(response.status, 200);
  t.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  t.equal(response.headers.get('cache-control'), 'no-store');
  const text = await response.text();

  const checked = await promtool(['check', 'metrics'], text);
  t.equal(checked.code, 0, `promtool check metrics: ${checked.output.trim() || 'clean'}`);

  t.equal(sample(text, 'onair_input_up{channel="fip",input="main"}'), 1, 'the input is up');
  t.equal(sample(text, 'onair_input_active{channel="fip",input="main"}'), 1, 'main is on air');
  t.equal(sample(text, 'onair_input_active{channel="fip",input="fallback"}'), 0, 'the safety source is not');
  t.equal(sample(text, 'onair_active_input_priority{channel="fip"}'), 0);
  t.equal(sample(text, 'onair_packager_leader{channel="fip"}'), 1);
  t.equal(sample(text, 'onair_target_duration_seconds{channel="fip"}'), 1);
  t.ok(sample(text, 'onair_segments_published_total{channel="fip"}')! >= 3, 'segments published');
  t.ok(sample(text, 'onair_input_frames_total{channel="fip",input="main"}')! > 100, 'frames counted');
  t.ok(sample(text, 'onair_input_received_bytes_per_second{channel="fip",input="main"}')! >= 0);
  t.ok(sample(text, 'onair_last_segment_age_seconds{channel="fip"}')! < 3, 'the last segment is recent');
  t.ok(Math.abs(sample(text, 'onair_timeline_drift_seconds{channel="fip"}')!) < 2, 'the timeline keeps up with the wall clock');
  t.ok(sample(text, 'onair_segment_publish_delay_seconds_count{channel="fip"}')! >= 3, 'publish delay observed per segment');
  t.ok(sample(text, 'onair_http_requests_total{route="media",status="200"}')! >= 3, 'media playlist requests counted');
  // waitForThreeSegments met 404s too, before the first playlist was published.
  t.ok(sample(text, 'onair_http_requests_total{route="media",status="404"}')! >= 1, '404s are counted by route and status');
  t.ok(sample(text, 'onair_store_operation_duration_seconds_count{operation="publish"}')! >= 3, 'store publishes timed');
  t.equal(sample(text, 'onair_store_up'), 1);
  t.ok(sample(text, 'onair_origin_cache_hits_total{cache="playlist"}')! >= 1, 'playlist answers from memory');
  t.equal(sample(text, 'onair_llhls_held_requests'), 0);
  t.ok(sample(text, 'onair_listeners{channel="fip"}')! >= 1, 'the test client counts as a listener');
  t.ok(sample(text, 'process_cpu_seconds_total')! > 0, 'process metrics too');
});

t.test('an ingest-only process serves /metrics on its admin listener', async (t) => {
  const config = await testConfig({ segmentSeconds: 1 });
  const running = await startRole(t, config, 'ingest');
  t.equal(running.originUrl, undefined, 'no origin here');
  startSender(t, config);
  await waitUntil(t, 'a segment is published', () => running.ingest!.channels.get('fip')!.packager.stats.segmentsPublished > 0, 15_000);
  const response = await fetch(running.metricsUrl!);
  t.equal(response.status, 200);
  const text = await response.text();
  t.equal((await promtool(['check', 'metrics'], text)).code, 0, 'promtool accepts it');
  t.ok(sample(text, 'onair_segments_published_total{channel="fip"}')! >= 1);
  t.equal(sample(text, 'onair_http_requests_total{route="media",status="200"}'), undefined, 'no origin here');
});

t.test('admin routes answer on the admin listener and 404 on the origin port', async (t) => {
  const token = 'access-log-token-0123456789';
  // 4 s segments: a listener stays counted for 4–8 s, longer than this test takes.
  const config = resolveConfig({ ...structuredClone(await testConfig({ segmentSeconds: 4 })), listeners: { ingestTokens: [token] } });
  const running = await startRole(t, config, 'start');
  const origin = running.originUrl!;
  const admin = running.adminUrl;
  t.not(new URL(admin).port, new URL(origin).port, 'two listeners');
  const line = JSON.stringify({ client: '203.0.113.7', path: '/fip/fip_hifi.m3u8', time: Date.now(), status: 200 });
  const ingest = (base: string): Promise<Response> =>
    fetch(`${base}/ingest/access-log`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' }, body: `${line}\n` });

  for (const path of ['/metrics', '/listeners.json', '/ingest/access-log', '/api/channels']) {
    const response = await fetch(`${origin}${path}`);
    t.equal(response.status, 404, `GET ${path} on the origin port: 404`);
    t.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
  }
  t.equal((await ingest(origin)).status, 404, 'POST /ingest/access-log on the origin port: 404');

  t.equal((await fetch(`${admin}/metrics`)).status, 200, 'GET /metrics on the admin listener');
  const accepted = await ingest(admin);
  t.equal(accepted.status, 202, 'POST /ingest/access-log on the admin listener');
  t.strictSame(await accepted.json(), { accepted: 1, ignored: 0 });
  await running.origin!.onairListeners.flush();
  await waitUntil(t, 'the logged listener is counted', async () => {
    const counts = (await (await fetch(`${admin}/listeners.json`)).json()) as { channels: Record<string, { total: number }> };
    return counts.channels.fip?.total === 1;
  }, 3000);
  t.equal((await fetch(`${admin}/fip/fip.m3u8`)).status, 404, 'and no playlists on the admin listener');
  t.equal((await fetch(`${admin}/healthz`)).status, 404, 'nor the health probe');
});

t.test('an ingest keeps its legacy metrics.port when admin.port is unset', async (t) => {
  const port = await freeTcpPort();
  const config = resolveConfig({ ...structuredClone(await testConfig({ segmentSeconds: 1 })), admin: {}, metrics: { port } });
  const running = await startRole(t, config, 'ingest');
  t.equal(running.metricsUrl, `http://127.0.0.1:${port}/metrics`);
  t.equal((await fetch(running.metricsUrl)).status, 200);
});

t.test('an ingest whose default admin ports are all taken still starts, on any free port', async (t) => {
  const blockers = await Promise.all(
    INGEST_ADMIN_PORTS.filter((port) => port !== 0).map(
      (port) =>
        new Promise<Server | undefined>((resolve) => {
          const server = createServer();
          server.once('error', () => resolve(undefined)); // taken already: as good
          server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
        }),
    ),
  );
  t.teardown(() => Promise.all(blockers.map((server) => server && new Promise((resolve) => server.close(resolve)))));
  const config = resolveConfig({ ...structuredClone(await testConfig({ segmentSeconds: 1 })), admin: {} });
  const running = await startRole(t, config, 'ingest');
  const port = Number(new URL(running.adminUrl).port);
  t.notOk(INGEST_ADMIN_PORTS.includes(port), `port ${port}: none of the taken ones`);
  t.equal((await fetch(running.metricsUrl)).status, 200);
});

t.test('a failing store shows as errors by operation and store_up 0', async (t) => {
  const metrics = new OnairMetrics();
  const memory = new MemoryStore();
  await memory.start();
  t.teardown(() => memory.close());
  const store = instrumentStore(memory, (operation, seconds, failed) => metrics.observeStoreCall(operation, seconds, failed));
  await store.publish({ channel: 'fip', playlists: { 'fip.m3u8': '#EXTM3U\n' }, state: '{}' });
  t.equal(sample(await metrics.registry.metrics(), 'onair_store_up'), 1);
  await t.rejects(store.publish({ channel: 'fip', playlists: {}, state: '{}', fence: 'not-a-lease' }));
  const text = await metrics.registry.metrics();
  t.equal(sample(text, 'onair_store_errors_total{operation="publish"}'), 1);
  t.equal(sample(text, 'onair_store_up'), 0);
  t.equal(sample(text, 'onair_store_operation_duration_seconds_count{operation="publish"}'), 2);
});

t.test('the alert rules pass promtool and, like the dashboard, use only exported metrics', async (t) => {
  const checked = await promtool(['check', 'rules', 'deploy/prometheus/alerts.yml']);
  t.equal(checked.code, 0, checked.output.trim());
  t.match(checked.output, /SUCCESS: \d+ rules found/);

  const config = await testConfig({ segmentSeconds: 1 });
  const running = await startRole(t, config, 'start');
  const exported = new Set(
    (await running.metrics.registry.getMetricsAsJSON()).map((metric) => metric.name.replace(/_(bucket|count|sum)$/, '')),
  );
  const rules = await readFile('deploy/prometheus/alerts.yml', 'utf8');
  const dashboard = JSON.parse(await readFile('deploy/grafana/onair.json', 'utf8')) as { panels: { targets: { expr: string }[] }[] };
  const expressions = [...rules.matchAll(/expr: (.+)/g)].map((match) => match[1]!);
  expressions.push(...dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr)));
  t.ok(expressions.length >= 20, `${expressions.length} expressions`);
  for (const name of new Set(expressions.flatMap(metricNames))) t.ok(exported.has(name), `${name} is exported`);
});

t.test('an unhandled rejection in a running ingest is logged with its code and counted, and the process goes on', async (t) => {
  const config = await testConfig({ segmentSeconds: 1 });
  // The rejection comes from outside onair's code (a preloaded module), on a signal, once onair runs.
  const inject = 'process.on("SIGUSR2", () => { Promise.reject(new Error("injected rejection")); });';
  const ingest = await startOnairProcess(t, {
    role: 'ingest',
    config,
    readyPattern: /"msg":"ingest started"/,
    env: { NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(inject)}` },
  });
  const adminUrl = /"url":"(http:[^"]+)","msg":"admin listening/.exec(ingest.output())?.[1];
  const metricsUrl = adminUrl && `${adminUrl}/metrics`;
  t.ok(metricsUrl, 'the ingest serves /metrics');
  t.equal(sample(await (await fetch(metricsUrl!)).text(), 'onair_unhandled_rejections_total'), 0);
  ingest.kill('SIGUSR2');
  await waitUntil(t, 'the rejection is logged', () => /"code":"ONAIR_UNHANDLED_REJECTION"/.test(ingest.output()), 10_000);
  t.match(ingest.output(), /"code":"ONAIR_UNHANDLED_REJECTION".*injected rejection/, 'logged with its code and the reason');
  t.equal(sample(await (await fetch(metricsUrl!)).text(), 'onair_unhandled_rejections_total'), 1, 'counted');
  t.ok(isAlive(ingest.pid), 'the process goes on');
});
