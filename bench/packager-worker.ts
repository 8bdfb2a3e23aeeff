/**
 * The onair side of `npm run bench:packager`, one process per run: feeds an ADTS file
 * through the real packaging path (AdtsReader → ChannelPackager → TsSegmentMuxer →
 * MemoryStore, as `onair start` with the memory store) as fast as it goes, then prints
 * one JSON line (`WorkerResult`) with this whole process's CPU time, start-up included.
 *
 * The file is read with plain read(2) calls into fresh 64 KiB chunks, the way FFmpeg
 * reads it and the way a pipe from the encoder delivers 'data' chunks in a live run
 * (an fs.ReadStream would add libuv thread-pool hops that the live path does not have).
 *
 *   node dist/bench/packager-worker.js <file.aac> <bitrate, e.g. 128k>
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { pino } from 'pino';
import { resolveConfig } from '../src/config/load-config.js';
import { ChannelPackager } from '../src/hls/channel-packager.js';
import type { WindowSegment } from '../src/hls/sequence-state.js';
import { AdtsReader, type AacFrame } from '../src/media/adts.js';
import { MemoryStore } from '../src/store/memory-store.js';

export interface WorkerResult {
  /** process.cpuUsage() at the end, microseconds: user + system, whole process. */
  cpuUserMicros: number;
  cpuSystemMicros: number;
  /** The part of that spent before the first byte was read: Node, imports, config, store. */
  startupCpuMicros: number;
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
const SAMPLES_PER_FRAME = 1024;

/** Reads `path` in fresh chunks and hands each chunk's frames to `onFrames`. */
async function readAdtsFile(path: string, reader: AdtsReader, onFrames: (frames: AacFrame[]) => Promise<void>): Promise<void> {
  const file = openSync(path, 'r');
  try {
    for (;;) {
      // Fresh, not reused: the frames of the segment being filled are views into earlier chunks.
      const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      const length = readSync(file, chunk, 0, READ_CHUNK_BYTES, null);
      if (length === 0) return;
      await onFrames(reader.push(chunk.subarray(0, length)));
    }
  } finally {
    closeSync(file);
  }
}

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
  const channel = config.channels[0]!;
  // Segment TTLs run on audio time, as they would over a live hour; on the wall clock
  // the whole hour of segments would stay in memory for the (sub-second) run.
  const wallClockStart = Date.now();
  let audioMilliseconds = 0;
  const store = new MemoryStore({ now: () => wallClockStart + audioMilliseconds });
  await store.start();
  const packager = new ChannelPackager({
    channel,
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
  const startup = process.cpuUsage();

  const reader = new AdtsReader();
  const totals = { framesRead: 0, framesPackaged: 0, adtsBytesPackaged: 0 };
  let framesInSegment = 0;
  let adtsBytesInSegment = 0;
  await readAdtsFile(path, reader, async (frames) => {
    for (const frame of frames) {
      const segmentsBefore = packager.stats.segmentsProduced;
      totals.framesRead += 1;
      framesInSegment += 1;
      adtsBytesInSegment += frame.data.length;
      packager.pushFrameGroup([frame]);
      if (packager.stats.segmentsProduced === segmentsBefore) continue;
      // This frame closed a segment. Let the publish queue drain, as it does between input
      // chunks in a live run: beyond a window of pending segments, the packager drops them.
      totals.framesPackaged += framesInSegment;
      totals.adtsBytesPackaged += adtsBytesInSegment;
      framesInSegment = 0;
      adtsBytesInSegment = 0;
      audioMilliseconds = (totals.framesPackaged * SAMPLES_PER_FRAME * 1000) / channel.sampleRate;
      store.sweepExpired(); // what the store's 1-second sweep timer does in a live run
      await new Promise(setImmediate);
    }
  });
  await packager.close();
  await store.close();

  const cpu = process.cpuUsage();
  const result: WorkerResult = {
    cpuUserMicros: cpu.user,
    cpuSystemMicros: cpu.system,
    startupCpuMicros: startup.user + startup.system,
    wallSeconds: performance.now() / 1000,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    ...totals,
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
