/**
 * What the recording tests share: running FFmpeg tools to the end (ffprobe's duration, a
 * full decode with the audio time reached), real MPEG-TS segments of a tone, and a webhook
 * receiver that fails its first calls.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Test } from 'tap';

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
