/**
 * Real AAC of a test tone for packager-driven tests: FFmpeg encodes `seconds` of a sine at
 * `hz` (48 kHz stereo AAC-LC 128k) to ADTS, and the ADTS reader splits it into the frames an
 * input worker would hand the packager.
 */
import { spawn } from 'node:child_process';
import { AdtsReader, type AacFrame } from '../../src/media/adts.js';

export async function toneAacFrames(seconds: number, hz: number): Promise<AacFrame[]> {
  const adts = await ffmpegOutput(
    ['-f', 'lavfi', '-i', `sine=frequency=${hz}:sample_rate=48000`, '-t', String(seconds), '-ac', '2', '-c:a', 'aac', '-b:a', '128k', '-f', 'adts', 'pipe:1'],
    'encode the tone',
  );
  return new AdtsReader().push(adts);
}

/** FFmpeg's decode of a file (any container it reads) to mono float PCM at `sampleRate`. */
export async function decodeFileToPcm(path: string, sampleRate = 16000): Promise<Float32Array> {
  const pcm = await ffmpegOutput(['-i', path, '-ac', '1', '-ar', String(sampleRate), '-f', 'f32le', 'pipe:1'], `decode ${path}`);
  return new Float32Array(pcm.buffer, pcm.byteOffset, Math.floor(pcm.byteLength / 4)).slice();
}

/** Runs FFmpeg (bounded: 30 s) and resolves with its whole stdout; rejects with its errors unless it exits 0. */
function ffmpegOutput(args: string[], what: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn('ffmpeg', ['-nostdin', '-v', 'error', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new Error(`FFmpeg could not ${what} (${code}): ${errors}`));
    });
  });
}
