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
 * `--container fmp4` packages CMAF instead of MPEG-TS (`container: fmp4`), and `--part-seconds S`
 * makes it a Low-Latency HLS channel with parts of S seconds (`lowLatency: true`, `partSeconds`),
 * whose segments are their parts end to end (bench/packager-fmp4.ts).
 *
 *   node dist/bench/packager-worker.js <file.aac> <bitrate, e.g. 128k> [--container ts|fmp4] [--part-seconds 0.5]
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { resolveConfig } from '../src/config/load-config.js';
import { ChannelPackager } from '../src/hls/channel-packager.js';
import type { WindowSegment } from '../src/hls/sequence-state.js';
import { AdtsReader, type AacFrame } from '../src/media/adts.js';
import { fmp4Muxers } from '../src/media/fmp4-muxer.js';
import type { MuxerFactory } from '../src/media/muxer.js';
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
  /** The same frames without their ADTS headers: the raw AAC access units (what fMP4 carries). */
  rawBytesPackaged: number;
  /** Bytes of the init segment (fMP4 only; 0 for MPEG-TS), fetched once per player. */
  initBytes: number;
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

/** 7 bytes, plus a 2-byte CRC per raw data block when protection_absent is 0 (ISO/IEC 14496-3 §1.A.2.2). */
function adtsHeaderBytes(frame: AacFrame): number {
  return (frame.data[1]! & 0x01) === 1 ? 7 : 7 + (2 * frame.samples) / SAMPLES_PER_FRAME;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: { container: { type: 'string', default: 'ts' }, 'part-seconds': { type: 'string' } },
  });
  const [path, bitrate] = positionals;
  if (!path || !bitrate) throw new Error('usage: packager-worker.js <file.aac> <bitrate> [--container ts|fmp4] [--part-seconds S]');
  const renditionId = bitrate.toLowerCase();
  const partSeconds = values['part-seconds'] === undefined ? undefined : Number(values['part-seconds']);
  const config = resolveConfig({
    store: 'memory',
    hls: { segmentSeconds: 4, windowSegments: 6 },
    log: { level: 'silent' },
    channels: [{
      id: CHANNEL_ID,
      container: values.container,
      ...(partSeconds === undefined ? {} : { lowLatency: true, partSeconds }),
      renditions: [{ id: renditionId, bitrate }],
      inputs: [{ id: 'file', url: '/dev/null' }],
    }],
  });
  const channel = config.channels[0]!;
  // Segment TTLs run on audio time, as they would over a live hour; on the wall clock
  // the whole hour of segments would stay in memory for the (sub-second) run.
  const wallClockStart = Date.now();
  let audioMilliseconds = 0;
  const store = new MemoryStore({ now: () => wallClockStart + audioMilliseconds });
  await store.start();
  // fMP4: the channel's own muxers, with the init segment's size noted for the report.
  let initBytes = 0;
  const measuredFmp4Muxers: MuxerFactory = (rendition, timing) => {
    const muxer = fmp4Muxers(rendition, timing);
    const initSegment = muxer.initSegment!.bind(muxer);
    muxer.initSegment = () => {
      const bytes = initSegment();
      initBytes = bytes.byteLength;
      return bytes;
    };
    return muxer;
  };
  const packager = new ChannelPackager({
    channel,
    ...(channel.container === 'fmp4' ? { muxers: measuredFmp4Muxers } : {}),
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
  const totals = { framesRead: 0, framesPackaged: 0, adtsBytesPackaged: 0, rawBytesPackaged: 0 };
  let framesInSegment = 0;
  let adtsBytesInSegment = 0;
  let rawBytesInSegment = 0;
  await readAdtsFile(path, reader, async (frames) => {
    for (const frame of frames) {
      const segmentsBefore = packager.stats.segmentsProduced;
      totals.framesRead += 1;
      framesInSegment += 1;
      adtsBytesInSegment += frame.data.length;
      rawBytesInSegment += frame.data.length - adtsHeaderBytes(frame);
      packager.pushFrameGroup([frame]);
      if (packager.stats.segmentsProduced === segmentsBefore) continue;
      // This frame closed a segment. Let the publish queue drain, as it does between input
      // chunks in a live run: beyond a window of pending segments, the packager drops them.
      totals.framesPackaged += framesInSegment;
      totals.adtsBytesPackaged += adtsBytesInSegment;
      totals.rawBytesPackaged += rawBytesInSegment;
      framesInSegment = 0;
      adtsBytesInSegment = 0;
      rawBytesInSegment = 0;
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
    initBytes,
    skippedBytes: reader.stats.skippedBytes,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`packager-worker: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exitCode = 1;
});
