/**
 * What the recording tests share: running FFmpeg tools to the end (ffprobe's duration, a
 * full decode with the audio time reached), real MPEG-TS segments of a tone, and a webhook
 * receiver that fails its first calls.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Test } from 'tap';
import { AdtsReader } from '../../src/media/adts.js';
import { Fmp4Muxer } from '../../src/media/fmp4-muxer.js';
import { ptsAdd } from '../../src/media/pts.js';

/** Runs a command to its end (bounded); resolves with its exit code and output. */
export function run(command: string, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** ffprobe's format duration of a file or URL. */
export async function probeSeconds(input: string): Promise<number> {
  const probed = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', input]);
  return Number(probed.stdout.trim());
}

/** Decodes `input` to the end with FFmpeg; resolves with its exit code, error output and the audio time decoded. */
export async function decodeToEnd(input: string): Promise<{ code: number | null; errors: string; decodedSeconds: number }> {
  const decoded = await run('ffmpeg', ['-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-i', input, '-map', '0:a:0', '-f', 'null', '-']);
  const times = [...decoded.stdout.matchAll(/^out_time_us=(\d+)$/gm)].map((match) => Number(match[1]) / 1e6);
  return { code: decoded.code, errors: decoded.stderr.trim(), decodedSeconds: times.at(-1) ?? 0 };
}

/** A webhook receiver that answers 500 to its first `failures` calls, then 200. */
export async function flakyReceiver(t: Test, failures: number): Promise<{ url: string; calls: { at: number; body: string }[] }> {
  const calls: { at: number; body: string }[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      calls.push({ at: Date.now(), body });
      response.writeHead(calls.length <= failures ? 500 : 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/onair`, calls };
}

/** One segment FFmpeg cut: its file, start and duration (seconds). */
export interface CutSegment {
  path: string;
  startSeconds: number;
  durationSeconds: number;
}

/**
 * `seconds` 1-second MPEG-TS segments of one continuous 440 Hz tone (48 kHz stereo AAC 128k)
 * in `dir`, cut by FFmpeg's segment muxer: one timeline end to end, as a packager run writes them.
 */
export async function toneSegments(dir: string, seconds: number): Promise<CutSegment[]> {
  const listPath = join(dir, 'list.csv');
  const made = await run('ffmpeg', [
    '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-ac', '2', '-t', String(seconds), '-c:a', 'aac', '-b:a', '128k',
    '-f', 'segment', '-segment_time', '1', '-segment_format', 'mpegts', '-segment_list', listPath, '-segment_list_type', 'csv', join(dir, 'seg%d.ts'),
  ]);
  if (made.code !== 0) throw new Error(`FFmpeg could not cut test segments: ${made.stderr}`);
  return (await readFile(listPath, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => {
      const [name, start, end] = line.split(',');
      return { path: join(dir, name!), startSeconds: Number(start), durationSeconds: Number(end) - Number(start) };
    });
}

/**
 * `seconds` of a 440 Hz tone (48 kHz stereo AAC 128k) as one packager run of an fMP4 channel
 * writes it: onair's own muxer (src/media/fmp4-muxer.ts), 47-frame (~1 s) `.m4s` segments
 * named `{prefix}{n}.m4s`, and its init segment `{prefix}init.mp4`, in `dir`. `startPts`
 * places the run on the 90 kHz timeline (a later run starts elsewhere).
 */
export async function fmp4ToneSegments(dir: string, seconds: number, prefix = '', startPts = 900_000): Promise<{ initPath: string; segments: CutSegment[] }> {
  const made = await runBytes('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', String(seconds), '-ac', '2', '-c:a', 'aac', '-b:a', '128k', '-f', 'adts', 'pipe:1']);
  const frameTicks = (1024 * 90_000) / 48_000;
  const frames = new AdtsReader().push(made).map((frame, index) => ({ data: frame.data, pts: ptsAdd(startPts, index * frameTicks), durationTicks: frameTicks }));
  const muxer = new Fmp4Muxer();
  const segments: CutSegment[] = [];
  for (let first = 0; first < frames.length; first += 47) {
    const slice = frames.slice(first, first + 47);
    const path = join(dir, `${prefix}${segments.length}.m4s`);
    await writeFile(path, muxer.muxSegment(slice));
    segments.push({ path, startSeconds: (first * 1024) / 48_000, durationSeconds: (slice.length * 1024) / 48_000 });
  }
  const initPath = join(dir, `${prefix}init.mp4`);
  await writeFile(initPath, muxer.initSegment());
  return { initPath, segments };
}

/** A command's standard output, as bytes (it must succeed). */
function runBytes(command: string, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('exit', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${command} exited with ${code}`))));
  });
}
