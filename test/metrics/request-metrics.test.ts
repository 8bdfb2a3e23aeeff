/**
 * RequestMetrics (src/metrics/request-metrics.ts) exposes exactly what prom-client's own
 * labelled Counter and Histogram would for the same answers: the same Prometheus text, and the
 * same sums when a cluster primary aggregates its workers (AggregatorRegistry).
 */
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import t from 'tap';
import { RequestMetrics } from '../../src/metrics/request-metrics.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Answers as metrics-plugin.ts counts them: route, status, seconds (bounds included, +Inf too). */
const ANSWERS: [string, number, number][] = [
  ['media', 200, 0.0001],
  ['media', 200, 0.0005],
  ['media', 304, 0.003],
  ['segment', 200, 0.02],
  ['segment', 206, 0.02],
  ['part', 200, 1.5],
  ['media', 503, 12],
  ['master', 200, 0.001],
];

function reference(): Registry {
  const registry = new Registry();
  const requests = new Counter({ name: 'onair_http_requests_total', help: 'Origin requests answered, by kind of resource and status code', labelNames: ['route', 'status'], registers: [registry] });
  const durations = new Histogram({
    name: 'onair_http_request_duration_seconds',
    help: 'Origin response time by kind of resource (LL-HLS blocking requests include their wait)',
    labelNames: ['route'],
    buckets: BUCKETS,
    registers: [registry],
  });
  for (const [route, status, seconds] of ANSWERS) {
    requests.labels({ route, status: String(status) }).inc();
    durations.labels({ route }).observe(seconds);
  }
  return registry;
}

function counted(): Registry {
  const registry = new Registry();
  const metrics = new RequestMetrics(registry, BUCKETS);
  for (const [route, status, seconds] of ANSWERS) metrics.count(route, status, seconds);
  return registry;
}

/** Lines in a stable order (prom-client keeps label sets in first-seen order; both see the same order here). */
const sorted = (text: string): string[] => text.split('\n').filter(Boolean).sort();

t.test('the text is prom-client\'s for the same answers', async (t) => {
  const expected = await reference().metrics();
  const actual = await counted().metrics();
  t.same(sorted(actual), sorted(expected));
  t.match(actual, /onair_http_request_duration_seconds_bucket\{le="0.0005",route="media"\} 2/);
  t.match(actual, /onair_http_request_duration_seconds_bucket\{le="10",route="media"\} 3\n/);
  t.match(actual, /onair_http_request_duration_seconds_bucket\{le="\+Inf",route="media"\} 4/);
});

t.test('a cluster primary sums two workers as it sums prom-client\'s metrics', async (t) => {
  const expected = await AggregatorRegistry.aggregate([await reference().getMetricsAsJSON(), await reference().getMetricsAsJSON()]).metrics();
  const actual = await AggregatorRegistry.aggregate([await counted().getMetricsAsJSON(), await counted().getMetricsAsJSON()]).metrics();
  t.same(sorted(actual), sorted(expected));
  t.match(actual, /onair_http_requests_total\{route="media",status="200"\} 4/);
});

t.test('reset empties both', async (t) => {
  const registry = counted();
  registry.resetMetrics();
  t.notMatch(await registry.metrics(), /route=/);
});
