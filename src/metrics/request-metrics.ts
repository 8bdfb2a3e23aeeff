/**
 * The origin's per-answer metrics, `onair_http_requests_total{route,status}` and
 * `onair_http_request_duration_seconds{route}`, counted in plain numbers and handed to
 * prom-client's registry as two metric objects of its own shape (the values prom-client's
 * Counter and Histogram give, so the text and the cluster aggregation are the same).
 * prom-client's labelled children validate and hash their labels on every call, about 1 µs
 * per answer here; this costs two Map lookups and a bucket search
 * (docs/architecture.md, "Origin cost per request"). Routes and statuses are the few
 * metrics-plugin.ts names, so the maps stay small.
 */
import type { Metric, Registry } from 'prom-client';

interface Durations {
  /** Observations per bucket (not cumulative); the last is +Inf. */
  buckets: number[];
  sum: number;
  count: number;
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** The part of prom-client's metric interface its Registry (and AggregatorRegistry) use. */
interface RegistryMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<MetricData>;
  reset(): void;
}

export class RequestMetrics {
  private readonly counts = new Map<string, Map<number, number>>();
  private readonly durations = new Map<string, Durations>();

  constructor(
    registry: Registry,
    private readonly upperBounds: readonly number[],
  ) {
    registry.registerMetric(this.requestsMetric() as unknown as Metric);
    registry.registerMetric(this.durationMetric() as unknown as Metric);
  }

  /** One answer of kind `route` with `status`, `seconds` after its request came. */
  count(route: string, status: number, seconds: number): void {
    let byStatus = this.counts.get(route);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.counts.set(route, byStatus);
    }
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    let durations = this.durations.get(route);
    if (durations === undefined) {
      durations = { buckets: new Array<number>(this.upperBounds.length + 1).fill(0), sum: 0, count: 0 };
      this.durations.set(route, durations);
    }
    let bucket = 0;
    while (bucket < this.upperBounds.length && seconds > this.upperBounds[bucket]!) bucket += 1;
    durations.buckets[bucket]! += 1;
    durations.sum += seconds;
    durations.count += 1;
  }

  private requestsMetric(): RegistryMetric {
    const name = 'onair_http_requests_total';
    const help = 'Origin requests answered, by kind of resource and status code';
    return {
      name,
      help,
      type: 'counter',
      aggregator: 'sum',
      get: async () => ({
        name,
        help,
        type: 'counter',
        aggregator: 'sum',
        values: [...this.counts].flatMap(([route, byStatus]) => [...byStatus].map(([status, value]) => ({ labels: { route, status: String(status) }, value }))),
      }),
      reset: () => this.counts.clear(),
    };
  }

  private durationMetric(): RegistryMetric {
    const name = 'onair_http_request_duration_seconds';
    const help = 'Origin response time by kind of resource (LL-HLS blocking requests include their wait)';
    return {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({
        name,
        help,
        type: 'histogram',
        aggregator: 'sum',
        values: [...this.durations].flatMap(([route, durations]) => {
          let cumulative = 0;
          const buckets: MetricValue[] = this.upperBounds.map((le, index) => {
            cumulative += durations.buckets[index]!;
            return { labels: { le, route }, value: cumulative, metricName: `${name}_bucket` };
          });
          return [
            ...buckets,
            { labels: { le: '+Inf', route }, value: durations.count, metricName: `${name}_bucket` },
            { labels: { route }, value: durations.sum, metricName: `${name}_sum` },
            { labels: { route }, value: durations.count, metricName: `${name}_count` },
          ];
        }),
      }),
      reset: () => this.durations.clear(),
    };
  }
}
