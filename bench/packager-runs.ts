/**
 * One measured run of each side of `npm run bench:packager`, each in its own process:
 *
 * - FFmpeg's HLS muxer, `-c copy -f hls`, writing segments to tmpfs; CPU from its
 *   `-benchmark` line (getrusage of the whole process, start-up included). The fMP4 rows
 *   (bench/packager-fmp4.ts) run it with `-hls_segment_type fmp4`, and its DASH muxer.
 * - onair's packager in packager-worker.js; CPU from its process.cpuUsage() (also the
 *   whole process, start-up included), segments kept in onair's in-memory store.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerResult } from './packager-worker.js';

export interface SideRun {
  cpuSeconds: number;
  /** CPU spent before reading the input (only measured for onair; FFmpeg's is a few ms). */
  startupCpuSeconds?: number;
  wallSeconds: number;
  segments: number;
  /** Sum of the .ts segments' sizes. */
  wireBytes: number;
  /** ADTS bytes (headers included) of the frames those segments carry. */
  adtsBytes: number;
  /** The same frames' raw AAC access units (ADTS headers stripped): the payload fMP4 carries. */
  rawBytes: number;
  /** The init segment's bytes (fMP4; 0 for MPEG-TS), not in wireBytes: a player fetches it once. */
  initBytes: number;
  /** Seconds of audio those segments carry (for the bit rate on the wire). */
  audioSeconds: number;
}

const WORKER_PATH = fileURLToPath(new URL('./packager-worker.js', import.meta.url));
/** `bench: utime=0.123s stime=0.045s rtime=0.200s` (fftools/ffmpeg.c, -benchmark). */
const BENCH_LINE = /bench: utime=([\d.]+)s stime=([\d.]+)s rtime=([\d.]+)s/;
const SAMPLES_PER_FRAME = 1024;

/** tmpfs when there is one, so FFmpeg's file writes cost no disk I/O. */
export function scratchRoot(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

/**
 * FFmpeg's muxer for one output format, copying the same AAC (`-c copy`):
 * - `hls`: `-f hls`, MPEG-TS segments (the main rows);
 * - `hls-fmp4`: `-f hls -hls_segment_type fmp4`, CMAF segments and an init.mp4;
 * - `dash`: `-f dash`, 4 s CMAF segments;
 * - `dash-chunks`: `-f dash` with a fragment every `partSeconds` (CMAF chunks, as LL-DASH
 *   writes them): the FFmpeg reference for onair's Low-Latency fMP4 (FFmpeg 5.1 has no LL-HLS).
 */
export type FfmpegFormat = 'hls' | 'hls-fmp4' | 'dash' | 'dash-chunks';

/** 4 s segments everywhere, as onair's worker cuts them. */
const SEGMENT_SECONDS = '4';

function ffmpegOutputArgs(format: FfmpegFormat, directory: string, partSeconds: number): string[] {
  // The fMP4 muxers take raw access units; FFmpeg inserts this filter for DASH by itself, not for HLS.
  const toRaw = ['-bsf:a', 'aac_adtstoasc'];
  const dash = ['-f', 'dash', '-seg_duration', SEGMENT_SECONDS, '-use_template', '1', '-use_timeline', '0', '-window_size', '0'];
  switch (format) {
    case 'hls':
      return ['-f', 'hls', '-hls_time', SEGMENT_SECONDS, '-hls_list_size', '0', '-hls_segment_filename', join(directory, 'seg%05d.ts'), join(directory, 'fip.m3u8')];
    case 'hls-fmp4':
      return [
        ...toRaw, '-f', 'hls', '-hls_time', SEGMENT_SECONDS, '-hls_list_size', '0', '-hls_segment_type', 'fmp4',
        '-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', join(directory, 'seg%05d.m4s'), join(directory, 'fip.m3u8'),
      ];
    case 'dash':
      return [...toRaw, ...dash, join(directory, 'fip.mpd')];
    case 'dash-chunks':
      return [...toRaw, ...dash, '-frag_type', 'duration', '-frag_duration', String(partSeconds), join(directory, 'fip.mpd')];
  }
}

/** Media segments and init segments by file name: HLS's seg*.ts / seg*.m4s + init.mp4, DASH's chunk-* + init-*. */
function classify(name: string): 'media' | 'init' | undefined {
  if (/^seg\d+\.(ts|m4s)$/.test(name) || /^chunk-stream\d+-\d+\.m4s$/.test(name)) return 'media';
  if (name === 'init.mp4' || /^init-stream\d+\.m4s$/.test(name)) return 'init';
  return undefined;
}

export async function runFfmpegHls(input: FfmpegInput): Promise<SideRun> {
  return runFfmpeg(input, 'hls');
}

export interface FfmpegInput {
  path: string;
  bytes: number;
  rawBytes: number;
  audioSeconds: number;
}

export async function runFfmpeg(input: FfmpegInput, format: FfmpegFormat, partSeconds = 0.5): Promise<SideRun> {
  const directory = await mkdtemp(join(scratchRoot(), 'onair-bench-ffmpeg-'));
  try {
    const args = ['-hide_banner', '-nostdin', '-nostats', '-benchmark', '-i', input.path, '-c', 'copy', ...ffmpegOutputArgs(format, directory, partSeconds)];
    const { stderr } = await runProcess('ffmpeg', args);
    const bench = BENCH_LINE.exec(stderr);
    if (!bench) throw new Error(`no "bench:" line in FFmpeg's output:\n${stderr.slice(-2000)}`);
    let segments = 0;
    let wireBytes = 0;
    let initBytes = 0;
    for (const name of await readdir(directory)) {
      const kind = classify(name);
      if (kind === undefined) continue;
      const { size } = await stat(join(directory, name));
      if (kind === 'init') initBytes += size;
      else {
        segments += 1;
        wireBytes += size;
      }
    }
    if (segments === 0) throw new Error(`FFmpeg (${format}) wrote no segments in ${directory}`);
    return {
      cpuSeconds: Number(bench[1]) + Number(bench[2]),
      wallSeconds: Number(bench[3]),
      segments,
      wireBytes,
      // FFmpeg also writes the last, short segment: it carries the whole file.
      adtsBytes: input.bytes,
      rawBytes: input.rawBytes,
      initBytes,
      audioSeconds: input.audioSeconds,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * One onair run; `workerPath` runs another build's worker (`--against`), default this build's;
 * `container` and `partSeconds` (Low-Latency HLS) are the channel's (bench/packager-fmp4.ts).
 */
export async function runOnairWorker(input: {
  path: string;
  bitrate: string;
  sampleRate: number;
  workerPath?: string;
  container?: 'ts' | 'fmp4';
  partSeconds?: number;
}): Promise<SideRun> {
  const args = [input.workerPath ?? WORKER_PATH, input.path, input.bitrate];
  if (input.container !== undefined) args.push('--container', input.container);
  if (input.partSeconds !== undefined) args.push('--part-seconds', String(input.partSeconds));
  const { stdout } = await runProcess(process.execPath, args);
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as WorkerResult;
  if (result.segmentsDropped > 0 || result.skippedBytes > 0) {
    throw new Error(`onair run is not comparable: ${result.segmentsDropped} segments dropped, ${result.skippedBytes} bytes skipped`);
  }
  return {
    cpuSeconds: (result.cpuUserMicros + result.cpuSystemMicros) / 1e6,
    startupCpuSeconds: result.startupCpuMicros / 1e6,
    wallSeconds: result.wallSeconds,
    segments: result.segmentsPublished,
    wireBytes: result.wireBytes,
    adtsBytes: result.adtsBytesPackaged,
    // An `--against` build from before these fields: no raw figure (NaN), no init segment.
    rawBytes: result.rawBytesPackaged ?? Number.NaN,
    initBytes: result.initBytes ?? 0,
    audioSeconds: (result.framesPackaged * SAMPLES_PER_FRAME) / input.sampleRate,
  };
}

/** `ffmpeg 5.1.9-0+deb12u1`, from the first line of `ffmpeg -version`. */
export async function ffmpegVersion(): Promise<string> {
  const { stdout } = await runProcess('ffmpeg', ['-version']);
  const match = /^ffmpeg version (\S+)/.exec(stdout);
  return `ffmpeg ${match?.[1] ?? 'unknown'}`;
}

export function runProcess(command: string, args: string[], cwd?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-64_000);
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} exited with ${code}:\n${stderr.slice(-2000)}`));
    });
  });
}
