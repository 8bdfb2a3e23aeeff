/**
 * One load per key at a time: callers that ask while a load is under way share its promise,
 * which is forgotten once it settles (the caches keep results; this keeps only what is in flight).
 */
export function shareInFlight<K, V>(pending: Map<K, Promise<V>>, key: K, load: () => Promise<V>): Promise<V> {
  const inFlight = pending.get(key);
  if (inFlight) return inFlight;
  const promise = load();
  pending.set(key, promise);
  const forget = (): void => {
    pending.delete(key);
  };
  promise.then(forget, forget);
  return promise;
}
