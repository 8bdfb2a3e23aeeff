/**
 * A private icecast2 for e2e tests (bench/icecast-server.ts does the work, shared with
 * bench:icecast): a generated config in a scratch directory, a free loopback port, run as the
 * unprivileged user `onair-test` when the tests run as root, and stopped in teardown even when
 * the test fails.
 *
 *   const relay = await startIcecastRelay(t, { host: '127.0.0.1', port: originPort, mount: '/fip-hifi.aac' });
 *   // relay.url + '/fip-hifi.aac' plays what onair's mount plays, ICY metadata included
 */
import type { Test } from 'tap';
import { startIcecast, type IcecastOptions, type IcecastRelaySpec, type RunningIcecast } from '../../bench/icecast-server.js';

export { ICECAST_PASSWORD, icecastSources, icecastUnavailable, type RunningIcecast } from '../../bench/icecast-server.js';

export async function startIcecastServer(t: Test, options: IcecastOptions = {}): Promise<RunningIcecast> {
  const icecast = await startIcecast(options);
  t.teardown(() => icecast.stop());
  return icecast;
}

/** icecast2 relaying one upstream mount (never on demand, ICY metadata relayed) under the same mount. */
export function startIcecastRelay(t: Test, relay: IcecastRelaySpec, options: Omit<IcecastOptions, 'relays'> = {}): Promise<RunningIcecast> {
  return startIcecastServer(t, { ...options, relays: [relay] });
}
