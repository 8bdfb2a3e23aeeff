/**
 * The onair side of `npm run bench:packager`, one process per run: streams an ADTS file
 * through the real packaging path (AdtsReader → ChannelPackager → TsSegmentMuxer →
 * MemoryStore, as `onair start` with the memory store) as fast as it goes, then prints
 * one JSON line (`WorkerResult`) with this whole process's CPU time, start-up included.
 *
 *   node dist/bench/packager-worker.js <file.aac> <bitrate, e.g. 128k>
 */
import { createReadStream } from 'node:fs';
import { pino } from 'pino';
import { resolveConfig } from '../src/config/load-config.js';
import { ChannelPackager } from '../src/hls/channel-packager.js';
import type { WindowSegment } from '../src/hls/sequence-state.js';
import { AdtsReader } from '../src/media/adts.js';
import { MemoryStore } from '../src/store/memory-store.js';

export interface WorkerResult {
  /** process.cpuUsage() at the end, microseconds: user + system, whole process. */
  cpuUserMicros: number;
  cpuSystemMicros: number;
  /** Since the process started. */
  wallSeconds: number;
  maxRssBytes: number;
  framesRead: number;
  /** Frames (and their ADTS bytes) inside published segments; the tail after the last full segment is not cut. */
  framesPackaged: number;
  adtsBytesPackaged: number;
  segmentsPublished: number;
  segmentsDropped: number;
  /** Sum of the published .ts segments. */
  wireBytes: number;
  skippedBytes: number;
}

const READ_CHUNK_BYTES = 64 * 1024;
const CHANNEL_ID = 'fip';

async function main(): Promise<void> {
  const [path, bitrate] = process.argv.slice(2);
  if (!path || !bitrate) throw new Error('usage: packager-worker.js <file.aac> <bitrate>');
  const renditionId = bitrate.toLowerCase();
  const config = resolveConfig({
    store: 'memory',
    hls: { segmentSeconds: 4, windowSegments: 6 },
    log: { level: 'silent' },
    channels: [{ id: CHANNEL_ID, renditions: [{ id: renditionId, bitrate }], inputs: [{ id: 'file', url: '/dev/null' }] }],
  });
  const store = new MemoryStore();
  await store.start();
  const packager = new ChannelPackager({
    channel: config.channels[0]!,
    segmentSeconds: config.hls.segmentSeconds,
    windowSegments: config.hls.windowSegments,
    store,
    logger: pino({ level: 'silent' }),
  });
  let wireBytes = 0;
  packager.on('segment', (entry: WindowSegment) => {
    wireBytes += entry.bytes[renditionId] ?? 0;
  });
  await packager.start();

  const reader = new AdtsReader();
  let framesRead = 0;
  let framesPackaged = 0;
  let adtsBytesPackaged = 0;
  let framesInSegment = 0;
  let adtsBytesInSegment = 0;
  let segmentsProduced = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES })) {
    for (const frame of reader.push(chunk as Buffer)) {
      framesRead += 1;
      framesInSegment += 1;
      adtsBytesInSegment += frame.data.length;
      packager.pushFrameGroup([frame]);
      if (packager.stats.segmentsProduced === segmentsProduced) continue;
      // A segment was cut (this frame was its last). Let the publish queue drain, as it
      // would between input reads in a live run: more than a window pending is dropped.
      segmentsProduced = packager.stats.segmentsProduced;
      framesPackaged += framesInSegment;
      adtsBytesPackaged += adtsBytesInSegment;
      framesInSegment = 0;
      adtsBytesInSegment = 0;
      await new Promise(setImmediate);
    }
  }
  await packager.close();
  await store.close();

  const cpu = process.cpuUsage();
  const result: WorkerResult = {
    cpuUserMicros: cpu.user,
    cpuSystemMicros: cpu.system,
    wallSeconds: performance.now() / 1000,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    framesRead,
    framesPackaged,
    adtsBytesPackaged,
    segmentsPublished: packager.stats.segmentsPublished,
    segmentsDropped: packager.stats.segmentsDropped,
    wireBytes,
    skippedBytes: reader.stats.skippedBytes,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`packager-worker: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exitCode = 1;
});
