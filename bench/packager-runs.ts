/**
 * One measured run of each side of `npm run bench:packager`, each in its own process:
 *
 * - FFmpeg's HLS muxer, `-c copy -f hls`, writing segments to tmpfs; CPU from its
 *   `-benchmark` line (getrusage of the whole process, start-up included).
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

export async function runFfmpegHls(input: { path: string; bytes: number; audioSeconds: number }): Promise<SideRun> {
  const directory = await mkdtemp(join(scratchRoot(), 'onair-bench-ffmpeg-'));
  try {
    const args = [
      '-hide_banner', '-nostdin', '-nostats', '-benchmark',
      '-i', input.path,
      '-c', 'copy',
      '-f', 'hls', '-hls_time', '4', '-hls_list_size', '0',
      '-hls_segment_filename', join(directory, 'seg%05d.ts'),
      join(directory, 'fip.m3u8'),
    ];
    const { stderr } = await runProcess('ffmpeg', args);
    const bench = BENCH_LINE.exec(stderr);
    if (!bench) throw new Error(`no "bench:" line in FFmpeg's output:\n${stderr.slice(-2000)}`);
    const segmentFiles = (await readdir(directory)).filter((name) => name.endsWith('.ts'));
    let wireBytes = 0;
    for (const name of segmentFiles) wireBytes += (await stat(join(directory, name))).size;
    return {
      cpuSeconds: Number(bench[1]) + Number(bench[2]),
      wallSeconds: Number(bench[3]),
      segments: segmentFiles.length,
      wireBytes,
      // FFmpeg also writes the last, short segment: it carries the whole file.
      adtsBytes: input.bytes,
      audioSeconds: input.audioSeconds,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** One onair run; `workerPath` runs another build's worker (`--against`), default this build's. */
export async function runOnairWorker(input: { path: string; bitrate: string; sampleRate: number; workerPath?: string }): Promise<SideRun> {
  const { stdout } = await runProcess(process.execPath, [input.workerPath ?? WORKER_PATH, input.path, input.bitrate]);
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
