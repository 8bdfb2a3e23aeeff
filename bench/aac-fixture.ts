/**
 * The benchmark's input: pre-encoded AAC-LC, 48 kHz stereo, as one ADTS file per bit rate,
 * generated once with FFmpeg's native encoder and cached in bench/.cache/.
 *
 * The signal is two tones (one beeping) plus pink noise, different on each channel, so the
 * encoder spends its whole bit budget and cannot fold the channels into cheap mid/side:
 * the file's bit rate ends up at the nominal rate plus the 7-byte ADTS headers.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AdtsReader, parseAdtsHeader } from '../src/media/adts.js';

export const FIXTURE_SAMPLE_RATE = 48_000;
/** Bump when the signal or the encoder settings change, so stale caches are not reused. */
const SIGNAL_VERSION = 'v1';

export interface AacFixture {
  path: string;
  bitrate: string;
  /** Whole file: every ADTS frame, headers included. */
  bytes: number;
  /** The raw AAC access units: `bytes` without the ADTS headers (the payload fMP4 carries). */
  rawBytes: number;
  frames: number;
  /** frames × 1024 / sample rate. */
  audioSeconds: number;
}

export function fixturePath(cacheDirectory: string, seconds: number, bitrate: string): string {
  return join(cacheDirectory, `aac-lc-${FIXTURE_SAMPLE_RATE}-stereo-${seconds}s-${bitrate}-${SIGNAL_VERSION}.aac`);
}

/** Generates the missing fixtures, `parallel` FFmpeg encoders at a time, and describes them all. */
export async function ensureFixtures(options: {
  cacheDirectory: string;
  seconds: number;
  bitrates: readonly string[];
  parallel: number;
  progress: (line: string) => void;
}): Promise<Map<string, AacFixture>> {
  await mkdir(options.cacheDirectory, { recursive: true });
  const missing: string[] = [];
  for (const bitrate of options.bitrates) {
    if (!(await exists(fixturePath(options.cacheDirectory, options.seconds, bitrate)))) missing.push(bitrate);
  }
  if (missing.length > 0) {
    options.progress(`generating ${missing.length} AAC fixture(s) of ${options.seconds} s (${missing.join(', ')}); one-time, cached in ${options.cacheDirectory}`);
  }
  const queue = [...missing];
  const workers = Array.from({ length: Math.max(1, Math.min(options.parallel, queue.length)) }, async () => {
    for (let bitrate = queue.shift(); bitrate !== undefined; bitrate = queue.shift()) {
      const started = performance.now();
      await encodeFixture(fixturePath(options.cacheDirectory, options.seconds, bitrate), options.seconds, bitrate);
      options.progress(`  ${bitrate} fixture ready in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
  });
  await Promise.all(workers);
  const fixtures = new Map<string, AacFixture>();
  for (const bitrate of options.bitrates) {
    fixtures.set(bitrate, await describeFixture(fixturePath(options.cacheDirectory, options.seconds, bitrate), bitrate));
  }
  return fixtures;
}

async function encodeFixture(path: string, seconds: number, bitrate: string): Promise<void> {
  const partial = `${path}.partial`;
  const rate = FIXTURE_SAMPLE_RATE;
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `sine=frequency=220:beep_factor=4:sample_rate=${rate}`,
    '-f', 'lavfi', '-i', `sine=frequency=331:sample_rate=${rate}`,
    '-f', 'lavfi', '-i', `anoisesrc=color=pink:amplitude=0.08:seed=7:sample_rate=${rate}`,
    '-f', 'lavfi', '-i', `anoisesrc=color=pink:amplitude=0.08:seed=11:sample_rate=${rate}`,
    '-filter_complex',
    '[0][2]amix=inputs=2:normalize=0[left];[1][3]amix=inputs=2:normalize=0[right];'
      + '[left][right]join=inputs=2:channel_layout=stereo,aformat=sample_fmts=fltp',
    '-t', String(seconds),
    '-c:a', 'aac', '-profile:a', 'aac_low', '-b:a', bitrate, '-ar', String(rate),
    '-f', 'adts', partial,
  ];
  try {
    await runFfmpeg(args);
    await rename(partial, path);
  } finally {
    await rm(partial, { force: true });
  }
}

/** Counts the frames with onair's own ADTS reader; this also pulls the file into the page cache. */
async function describeFixture(path: string, bitrate: string): Promise<AacFixture> {
  const reader = new AdtsReader();
  let frames = 0;
  let sampleCount = 0;
  let headerBytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    for (const frame of reader.push(chunk as Buffer)) {
      frames += 1;
      sampleCount += frame.samples;
      headerBytes += parseAdtsHeader(frame.data, 0)!.headerLength;
    }
  }
  if (reader.stats.skippedBytes > 0) throw new Error(`${path}: ${reader.stats.skippedBytes} bytes are not ADTS; delete it to regenerate`);
  const { size } = await stat(path);
  return { path, bitrate, bytes: size, rawBytes: size - headerBytes, frames, audioSeconds: sampleCount / FIXTURE_SAMPLE_RATE };
}

function runFfmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-4000);
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`ffmpeg exited with ${code}: ${stderr.trim()}`));
    });
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
