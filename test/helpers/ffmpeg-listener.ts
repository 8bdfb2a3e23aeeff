/**
 * A real progressive listener for e2e tests (the decoding one; progressive-listener.ts is the
 * raw-socket one): FFmpeg opens a mount (`ffmpeg -icy 1 -i URL`),
 * decodes it as it arrives to mono 16-bit PCM on stdout (flushed per packet), and logs every ICY
 * metadata block it reads ("Metadata update for StreamTitle: …", verbose level). The helper keeps
 * the PCM, when each piece arrived (so a stall that a player would hear as a buffer underrun
 * shows), and the titles in order. Bounded: at most `maxSeconds` of PCM is kept and FFmpeg is
 * killed in teardown.
 *
 *   const listener = startProgressiveListener(t, `${base}/fip-hifi.aac`);
 *   await listener.waitForTitle('Artist - Title', 10_000);
 *   const heard = await listener.stop();
 */
import { spawn } from 'node:child_process';
import type { Test } from 'tap';
import { sleep } from './wait-until.js';

export interface ProgressiveListenerOptions {
  /** PCM rate FFmpeg decodes to (default 16000: enough for the tones and their beeps). */
  sampleRate?: number;
  /** Send `Icy-MetaData: 1` (FFmpeg's -icy 1); default true. */
  icy?: boolean;
  /** PCM kept at most (default 120 s); more is counted, not kept. */
  maxSeconds?: number;
}

export interface Heard {
  /** Decoded mono PCM, -1..1. */
  pcm: Float32Array;
  sampleRate: number;
  /** Samples decoded in all (may exceed pcm.length when maxSeconds was reached). */
  totalSamples: number;
  /** [ms since the listener started, samples decoded so far], one per stdout chunk. */
  arrivals: [number, number][];
  /** Each StreamTitle FFmpeg read, in order (the empty title included). */
  titles: string[];
  /** The stream's metadata FFmpeg printed when it opened the input (`key: value`, lower-cased keys). */
  inputMetadata: Record<string, string>;
  /** FFmpeg's exit code, or null when it was killed (stop() kills it). */
  code: number | null;
  /** The last ~8 kB of FFmpeg's log. */
  log: string;
}

export interface ProgressiveListener {
  /** Samples decoded so far. */
  samples(): number;
  titles(): string[];
  /** Resolves when FFmpeg has read a StreamTitle equal to `title`; rejects after `timeoutMs`. */
  waitForTitle(title: string, timeoutMs: number): Promise<void>;
  /** Resolves once `seconds` of audio are decoded; rejects after `timeoutMs`. */
  waitForSeconds(seconds: number, timeoutMs: number): Promise<void>;
  /** Stops FFmpeg (SIGTERM, it was listening to an endless stream) and returns what it heard. */
  stop(): Promise<Heard>;
}

const LOG_LIMIT = 8000;
const TITLE_LINE = /Metadata update for StreamTitle: (.*)$/;

export function startProgressiveListener(t: Test, url: string, options: ProgressiveListenerOptions = {}): ProgressiveListener {
  const sampleRate = options.sampleRate ?? 16000;
  const maxBytes = (options.maxSeconds ?? 120) * sampleRate * 2;
  const args = ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'verbose', ...(options.icy === false ? [] : ['-icy', '1'])];
  args.push('-i', url, '-vn', '-f', 's16le', '-ac', '1', '-ar', String(sampleRate), '-flush_packets', '1', 'pipe:1');
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const startedAt = Date.now();
  const chunks: Buffer[] = [];
  let keptBytes = 0;
  let totalBytes = 0;
  const arrivals: [number, number][] = [];
  const titles: string[] = [];
  const inputMetadata: Record<string, string> = {};
  let log = '';
  let partial = '';
  let inInputMetadata = false;

  child.stdout.on('data', (chunk: Buffer) => {
    totalBytes += chunk.length;
    arrivals.push([Date.now() - startedAt, totalBytes >> 1]);
    if (keptBytes < maxBytes) {
      const kept = chunk.subarray(0, maxBytes - keptBytes);
      chunks.push(kept);
      keptBytes += kept.length;
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    log = (log + text).slice(-LOG_LIMIT);
    const lines = (partial + text).split(/\r?\n|\r/);
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const title = TITLE_LINE.exec(line);
      if (title) titles.push(title[1]!);
      // "Input #0, aac, from '…':" then "  Metadata:" then "    key   : value" lines.
      if (/^Input #0/.test(line)) inInputMetadata = true;
      else if (inInputMetadata && /^ {4}\S/.test(line)) {
        const field = /^ {4}(\S[^:]*?)\s*: ?(.*)$/.exec(line);
        if (field) inputMetadata[field[1]!.toLowerCase()] = field[2]!;
      } else if (inInputMetadata && !/^ {2}Metadata:/.test(line)) inInputMetadata = false;
    }
  });
  let exitCode: number | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code) => {
      exitCode = code;
      resolve();
    });
    child.once('error', (error) => {
      log += `\n[spawn error] ${error.message}`;
      resolve();
    });
  });
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });

  const samples = (): number => totalBytes >> 1;
  const waitUntil = async (what: string, done: () => boolean, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (child.exitCode !== null) throw new Error(`ffmpeg exited (${child.exitCode}) before ${what}:\n${log}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (titles so far: ${JSON.stringify(titles)}):\n${log.slice(-2000)}`);
      await sleep(20);
    }
  };
  return {
    samples,
    titles: () => [...titles],
    waitForTitle: (title, timeoutMs) => waitUntil(`the StreamTitle ${JSON.stringify(title)}`, () => titles.includes(title), timeoutMs),
    waitForSeconds: (seconds, timeoutMs) => waitUntil(`${seconds} s of audio`, () => samples() >= seconds * sampleRate, timeoutMs),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      const bytes = Buffer.concat(chunks);
      const pcm = new Float32Array(bytes.length >> 1);
      for (let index = 0; index < pcm.length; index++) pcm[index] = bytes.readInt16LE(index * 2) / 32768;
      return { pcm, sampleRate, totalSamples: samples(), arrivals, titles: [...titles], inputMetadata, code: exitCode, log };
    },
  };
}

/**
 * The least audio a player would have had buffered once playing: it starts when the first audio
 * arrives and plays in real time; buffered = seconds decoded − seconds played. Negative means it
 * ran dry (a stall a listener hears). Checked from `afterMs` on (the burst must arrive first).
 */
export function minimumBufferSeconds(heard: Heard, afterMs = 0): number {
  const first = heard.arrivals[0];
  if (!first) return -Infinity;
  let minimum = Infinity;
  let previousSamples = 0;
  for (const [atMs, samples] of heard.arrivals) {
    // Just before this chunk arrived, the player had what the chunks before it brought.
    if (atMs >= afterMs) minimum = Math.min(minimum, previousSamples / heard.sampleRate - (atMs - first[0]) / 1000);
    previousSamples = samples;
  }
  return minimum;
}
