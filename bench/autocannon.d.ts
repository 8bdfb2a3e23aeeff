/**
 * The part of autocannon 9's programmatic API that bench/origin.ts uses (the package ships no
 * types and there is no @types/autocannon). See node_modules/autocannon/README.md, "API".
 */
declare module 'autocannon' {
  namespace autocannon {
    interface Options {
      url: string;
      connections?: number;
      /** Seconds. */
      duration?: number;
      pipelining?: number;
      /** Seconds before a request counts as a timeout (default 10). */
      timeout?: number;
      headers?: Record<string, string>;
      method?: string;
    }

    /** An hdr-histogram-percentiles-obj summary. */
    interface Histogram {
      min: number;
      max: number;
      average: number;
      stddev: number;
      total: number;
      p50: number;
      p90: number;
      p97_5: number;
      p99: number;
      p99_9: number;
    }

    interface Result {
      /** Per-second samples of completed requests. */
      requests: Histogram;
      /** Response times of 2xx responses, milliseconds (recorded at 1 ms resolution). */
      latency: Histogram;
      /** Per-second samples of response bytes (headers and bodies). */
      throughput: Histogram;
      /** Seconds. */
      duration: number;
      /** Connection errors, timeouts included. */
      errors: number;
      timeouts: number;
      non2xx: number;
      statusCodeStats: Record<string, { count: number }>;
    }

    interface Instance extends PromiseLike<Result> {
      stop(): void;
    }
  }

  /** Without a callback the returned instance is also a promise of the result. */
  function autocannon(options: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
