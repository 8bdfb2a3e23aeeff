/**
 * Runs the real pipeline for a test: a config on free loopback ports, onair in this
 * process (ingest + origin, or the roles separately), and a real FFmpeg test-tone sender
 * calling the channel's SRT listener. Everything is stopped in teardown, even on failure.
 */
import { pino } from 'pino';
import type { Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { DEMO_RENDITIONS } from '../../src/demo.js';
import { TestSignalSender } from '../../src/ffmpeg/test-signal-sender.js';
import { inputUrlWithOptions } from '../../src/ingest/input-worker.js';
import { startOnair, type RunningOnair } from '../../src/onair.js';
import type { Role } from '../../src/preflight.js';
import type { Store } from '../../src/store/store.js';
import { freeTcpPort, freeUdpPort } from './ports.js';

export const RENDITIONS = DEMO_RENDITIONS.map((rendition) => rendition.id);

/** One channel `fip` with the demo renditions; the input defaults to an SRT listener on a free port. */
export async function testConfig(options: {
  store?: string;
  segmentSeconds?: number;
  input?: Record<string, unknown>;
  /** More keys of the channel, e.g. `{ lowLatency: true, partSeconds: 0.5 }`. */
  channel?: Record<string, unknown>;
}): Promise<OnairConfig> {
  const input = options.input ?? { id: 'main', url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { latency: 120, passphrase: 'onair-test-passphrase' } };
  return resolveConfig({
    store: options.store ?? 'memory',
    ...(await loopbackSettings(options.segmentSeconds ?? 1)),
    channels: [
      {
        id: 'fip',
        renditions: DEMO_RENDITIONS,
        inputs: [input],
        ...options.channel,
      },
    ],
  });
}

/**
 * The top-level keys every test config shares: the origin on a free loopback port, the admin
 * listener (/metrics, /api) on any free port, a 6-segment window, logs silent unless ONAIR_TEST_LOG.
 */
export async function loopbackSettings(segmentSeconds: number): Promise<Record<string, unknown>> {
  return {
    origin: { host: '127.0.0.1', port: await freeTcpPort() },
    admin: { port: 0 },
    hls: { segmentSeconds, windowSegments: 6 },
    log: { level: process.env.ONAIR_TEST_LOG ?? 'silent' },
  };
}

export function testLogger(config: OnairConfig) {
  return pino({ level: config.log.level }, pino.destination(2));
}

export async function startRole(t: Test, config: OnairConfig, role: Role, store?: Store): Promise<RunningOnair> {
  const running = await startOnair({ config, role, logger: testLogger(config), store });
  t.teardown(() => running.close());
  return running;
}

export function startSender(t: Test, config: OnairConfig, frequency = 440): TestSignalSender {
  const sender = new TestSignalSender({
    // The input's URL with its SRT options (passphrase included), as a caller.
    outputUrl: inputUrlWithOptions(config.channels[0]!.inputs[0]!).replace('mode=listener', 'mode=caller'),
    frequency,
    initialDelayMs: 500,
  });
  sender.start();
  t.teardown(() => sender.close('SIGKILL'));
  return sender;
}

export function originUrl(config: OnairConfig): string {
  return `http://${config.origin.host}:${config.origin.port}`;
}

/** Polls until `check` returns a value (bounded), e.g. until a playlist lists enough segments. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Polls `url` (bounded) until its 200 body holds `marker` at least `count` times (e.g. `#EXTINF`, `<Period `); returns that body. */
export async function waitForBody(what: string, url: string, marker: string, count: number, timeoutMs = 40_000): Promise<string> {
  return waitFor(
    what,
    async () => {
      const response = await fetch(url);
      const body = response.status === 200 ? await response.text() : '';
      return body.split(marker).length - 1 >= count ? body : undefined;
    },
    timeoutMs,
  );
}

/** Waits (bounded) until the channel's hifi playlist at `base` lists three segments: the stream is live. */
export async function waitForThreeSegments(base: string, timeoutMs = 30_000): Promise<void> {
  await waitFor('three segments', async () => ((await playlistSegmentCount(`${base}/fip/fip_hifi.m3u8`)) >= 3 ? true : undefined), timeoutMs);
}

export async function playlistSegmentCount(url: string): Promise<number> {
  const response = await fetch(url);
  if (response.status !== 200) return 0;
  return (await response.text()).split('\n').filter((line) => line.startsWith('#EXTINF')).length;
}
