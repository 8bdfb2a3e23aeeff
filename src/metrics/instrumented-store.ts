/**
 * Measures every store call (duration, failure) without touching the store
 * implementations: a Proxy times each method that returns a promise. Used by the roles
 * in onair.ts, so the memory and Redis stores report the same metrics. Any role interface
 * (OriginStore, SegmentPublishStore…) or the whole Store can be measured: the Proxy keeps its type.
 */
export type StoreCallObserver = (operation: string, seconds: number, failed: boolean) => void;

/** Calls that are not store operations: lifecycle and subscriptions are not timed. */
const UNTIMED = new Set(['start', 'close', 'subscribe']);

export function instrumentStore<S extends object>(store: S, observe: StoreCallObserver): S {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string' || UNTIMED.has(property)) {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (...args: unknown[]): unknown => {
        const started = process.hrtime.bigint();
        const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
        const result: unknown = value.apply(target, args);
        if (!(result instanceof Promise)) return result;
        return result.then(
          (resolved: unknown) => {
            observe(property, seconds(), false);
            return resolved;
          },
          (error: unknown) => {
            observe(property, seconds(), true);
            throw error;
          },
        );
      };
    },
  });
}
