/**
 * The onair side of `npm run bench:origin`: one process that serves a realistic live channel
 * from onair's origin, as `onair origin` with the memory store would, for the bench's load.
 *
 * It builds the content the packager would have written after a while on air: channel `fip`,
 * rendition `hifi` (128 kb/s AAC-LC 48 kHz stereo), a window of 6 segments of 4 s, each a real
 * MPEG-TS segment from TsSegmentMuxer (synthetic ADTS frames of the 128 kb/s size, ≈ 66 KB),
 * and the media and master playlists from playlist-writer.ts with PROGRAM-DATE-TIME tags. It
 * puts the segments into a MemoryStore and publishes the playlists, then starts buildOrigin on
 * 127.0.0.1:0 with logging off and the request metrics `onair origin` counts.
 *
 * With `--content-dir DIR` it also writes the very same bytes under DIR, at the URL paths the
 * origin serves them (`fip/fip_hifi.m3u8`, `fip/hifi/<msn>-<run>.ts`, …), so nginx can serve
 * identical files from disk.
 *
 * It prints one JSON line (`OriginWorkerReady`) on stdout once listening, and exits on SIGTERM
 * or SIGINT, or when its stdin closes (the bench process went away without killing it).
 *
 *   node dist/bench/origin-worker.js [--content-dir DIR]
 */
import cluster from 'node:cluster';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildContent, CHANNEL_ID, RENDITION_ID, SEGMENT_TTL_SECONDS } from './origin-content.js';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { OriginCluster } from '../src/origin/origin-cluster.js';
import { metricsPlugin } from '../src/metrics/metrics-plugin.js';
import { OnairMetrics } from '../src/metrics/onair-metrics.js';
import { buildOrigin } from '../src/origin/origin-server.js';
import { freeTcpPort } from './system.js';
import { MemoryStore } from '../src/store/memory-store.js';

export interface OriginWorkerReady {
  port: number;
  pid: number;
  /** URL paths of the benched resources: the media playlist and the newest segment. */
  playlistPath: string;
  segmentPath: string;
  segmentBytes: number;
  playlistBytes: number;
}

async function writeContent(directory: string, files: Map<string, Uint8Array>): Promise<void> {
  for (const [path, bytes] of files) {
    const target = join(directory, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytes);
  }
}

/**
 * `--empty`: the same media playlist bytes (a Buffer, as onair sends) with the headers of
 * `--headers` (onair's own, as JSON) from one Fastify route that does nothing else: the ceiling
 * of a Fastify server on this machine (bench:origin --workers compares).
 */
async function buildEmptyRoute(body: Buffer, headers: Record<string, string>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, logController: new LogController({ disableRequestLogging: true }) }) as unknown as FastifyInstance;
  app.get('/:channel/:playlist', (request, reply) => {
    reply.headers(headers).send(body);
  });
  return app;
}

/**
 * `--workers N`: this script as the primary of N workers (src/origin/origin-cluster.ts, as
 * `onair origin --workers` runs them) on one free port; the ready line names the primary.
 */
async function runPrimary(workers: number, argv: string[]): Promise<void> {
  const port = await freeTcpPort();
  const newestStart = Date.now() - 2000;
  const { values } = parseArgs({ args: argv, options: { 'content-dir': { type: 'string' }, workers: { type: 'string' }, empty: { type: 'boolean' }, headers: { type: 'string' } } });
  if (values['content-dir']) await writeContent(values['content-dir'], buildContent(newestStart).files);
  const empty = values.empty ? ['--empty', ...(values.headers === undefined ? [] : ['--headers', values.headers])] : [];
  cluster.setupPrimary({ args: [...empty, '--port', String(port), '--newest-start', String(newestStart)], silent: true });
  const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const supervisor = new OriginCluster({ workers, logger: silent });
  await supervisor.start();
  const stop = (): void => void supervisor.stop().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop).on('close', stop).resume();
  process.stdout.write(`${JSON.stringify(readyLine(buildContent(newestStart), port))}\n`);
}

function readyLine(content: ReturnType<typeof buildContent>, port: number): OriginWorkerReady {
  const newest = content.segments[content.segments.length - 1]!;
  const mediaName = `${CHANNEL_ID}_${RENDITION_ID}.m3u8`;
  return {
    port,
    pid: process.pid,
    playlistPath: `/${CHANNEL_ID}/${mediaName}`,
    segmentPath: `/${CHANNEL_ID}/${RENDITION_ID}/${newest.name}`,
    segmentBytes: newest.bytes.byteLength,
    playlistBytes: Buffer.byteLength(content.playlists[mediaName]!, 'utf8'),
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv,
    options: {
      'content-dir': { type: 'string' },
      workers: { type: 'string' },
      empty: { type: 'boolean', default: false },
      headers: { type: 'string' },
      port: { type: 'string' },
      'newest-start': { type: 'string' },
    },
  });
  if (values.workers !== undefined && cluster.isPrimary) return runPrimary(Number(values.workers), argv);
  const content = buildContent(values['newest-start'] === undefined ? undefined : Number(values['newest-start']));
  if (values['content-dir']) await writeContent(values['content-dir'], content.files);
  const listenPort = values.port === undefined ? 0 : Number(values.port);
  if (values.empty) {
    const mediaName = `${CHANNEL_ID}_${RENDITION_ID}.m3u8`;
    // `--headers`: onair's own answer headers (JSON), so both send the same response.
    const headers = values.headers === undefined ? { 'content-type': 'application/vnd.apple.mpegurl' } : (JSON.parse(values.headers) as Record<string, string>);
    const empty = await buildEmptyRoute(Buffer.from(content.playlists[mediaName]!, 'utf8'), headers);
    await empty.listen({ host: '127.0.0.1', port: listenPort });
    process.on('SIGTERM', () => void empty.close().finally(() => process.exit(0)));
    return;
  }

  const store = new MemoryStore();
  await store.start();
  for (const segment of content.segments) {
    await store.putSegment(CHANNEL_ID, RENDITION_ID, segment.name, segment.bytes, SEGMENT_TTL_SECONDS);
  }
  await store.publish({ channel: CHANNEL_ID, playlists: content.playlists, state: JSON.stringify(content.state) });

  const app = await buildOrigin({
    store,
    channels: [{ id: CHANNEL_ID, renditions: [RENDITION_ID] }],
    targetDurationSeconds: content.state.targetDuration,
  });
  // Request metrics as `onair origin` counts them (src/onair.ts).
  await app.register(metricsPlugin, { metrics: new OnairMetrics(), serveMetrics: false, countRequests: true });
  await app.listen({ host: '127.0.0.1', port: listenPort });
  // A cluster worker: the primary reports readiness and owns stdin.
  if (cluster.isWorker) {
    process.on('SIGTERM', () => void app.close().finally(() => process.exit(0)));
    return;
  }
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the origin is not listening on a TCP port');

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // process.exit (not a natural end) so that `--cpu-prof` still writes its profile.
    app.close().then(() => store.close()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop).on('close', stop).resume();

  const ready = readyLine(content, address.port);
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`origin-worker: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
