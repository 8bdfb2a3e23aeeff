/**
 * Says which test tone a piece of AAC audio carries, so chaos tests can check that the
 * audio listeners hear comes from the expected sender (each sender plays its own frequency).
 *
 * Real FFmpeg decodes the ADTS frames (e.g. `SegmentFacts.audio` from hls-verifier.ts) to
 * mono 16-bit PCM; Goertzel filters over short Hann-windowed blocks then measure each
 * candidate frequency (candidates should be ~100 Hz or more apart).
 * The verdict is a candidate frequency, 'silence' (RMS below -50 dBFS: the silence
 * fallback), or 'unclear' (no candidate clearly dominates: a mix, a switch in the middle
 * of the segment, or some other sound). Silence carries no energy, so a segment that is
 * partly silent and partly one tone reads as that tone (with a lower rmsDb). The sender's
 * short beep at 4× its frequency (beep_factor=4, 40 ms a second) is not a candidate and
 * only lowers the tone's share a little.
 *
 * At most MAX_DECODERS FFmpeg decoders run at once across the whole test process, so a
 * test can classify hundreds of segments with Promise.all (see identifyTones).
 */
import { spawn } from 'node:child_process';

export type ToneVerdict = number | 'silence' | 'unclear';

export interface ToneReading {
  /** The dominating candidate (Hz), 'silence', or 'unclear'. */
  tone: ToneVerdict;
  /** RMS level of the analysed PCM in dBFS (floored at -120 for digital silence). */
  rmsDb: number;
  /**
   * Per candidate (Hz): its share of the analysed signal's energy, 0..1. A clean
   * test tone reads about 0.85 (the beep and codec noise take the rest); 0 in silence.
   */
  powers: Record<number, number>;
  /** Seconds of PCM analysed (after skipping the decoder's start-up). */
  seconds: number;
}

export interface ToneOptions {
  /** PCM rate FFmpeg decodes to; candidates must lie below half of it. Default 16000. */
  sampleRate?: number;
  /** What the bytes are: ADTS AAC (default) or raw MP3 frames. */
  format?: 'aac' | 'mp3';
}

/** Below this RMS level the audio counts as silence. */
export const SILENCE_DBFS = -50;
/** The winner must carry at least this many times the energy of the runner-up... */
export const DOMINANCE_RATIO = 10;
/** ...and at least this share of all the energy (so an unknown sound is not a candidate). */
export const MIN_SHARE = 0.3;
/** FFmpeg decoders running at once, across all callers (a CI machine may have 2 cores). */
export const MAX_DECODERS = 2;

const DECODE_TIMEOUT_MS = 10_000;
/** Analysis block: ~31 Hz resolution, tolerant of small frequency offsets and phase jumps. */
const BLOCK_SECONDS = 0.032;
/** The first AAC frame of a lone segment decodes without its overlap partner: skip it. */
const SKIP_START_SECONDS = 0.05;

/** Decodes ADTS AAC bytes with real FFmpeg and says which candidate tone dominates. */
export async function identifyTone(adts: Uint8Array, candidatesHz: number[], options: ToneOptions = {}): Promise<ToneReading> {
  const sampleRate = options.sampleRate ?? 16000;
  if (adts.length === 0) throw new Error('identifyTone: no audio bytes to identify');
  for (const hz of candidatesHz) {
    if (!(hz > 0 && hz < sampleRate / 2)) throw new Error(`identifyTone: candidate ${hz} Hz is outside 0..${sampleRate / 2} Hz`);
  }
  const pcm = await decodePcm(adts, options);
  return classify(pcm, candidatesHz, sampleRate);
}

/** FFmpeg's decode of ADTS AAC or raw MP3 bytes to mono samples in -1..1 (at `sampleRate`, default 16000). */
export function decodePcm(bytes: Uint8Array, options: ToneOptions = {}): Promise<Float32Array> {
  return decoders.run(() => decodeToPcm(bytes, options.sampleRate ?? 16000, options.format ?? 'aac'));
}

/** Blocks of this length tell a dropout from a tone's zero crossings (440 Hz and up). */
const DROPOUT_BLOCK_SECONDS = 0.004;

/**
 * The longest stretch (seconds, in 4 ms blocks) where a continuous tone drops out: blocks whose
 * RMS falls below a tenth of the median block's. 0 for a tone without a gap. The first 50 ms
 * (the decoder's start-up) are not judged.
 */
export function longestDropoutSeconds(samples: Float32Array, sampleRate: number): number {
  const size = Math.round(DROPOUT_BLOCK_SECONDS * sampleRate);
  const levels: number[] = [];
  for (let at = Math.round(SKIP_START_SECONDS * sampleRate); at + size <= samples.length; at += size) {
    let sum = 0;
    for (let index = at; index < at + size; index++) sum += samples[index]! * samples[index]!;
    levels.push(Math.sqrt(sum / size));
  }
  const median = [...levels].sort((a, b) => a - b)[Math.floor(levels.length / 2)] ?? 0;
  let longest = 0;
  let run = 0;
  for (const level of levels) {
    run = level < median / 10 ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest * DROPOUT_BLOCK_SECONDS;
}

/** identifyTone for many pieces of audio, in order; the decoder limit still applies. */
export function identifyTones(pieces: Uint8Array[], candidatesHz: number[], options: ToneOptions = {}): Promise<ToneReading[]> {
  return Promise.all(pieces.map((adts) => identifyTone(adts, candidatesHz, options)));
}

/** Pure part: RMS, per-candidate energy share and the verdict for mono samples in -1..1. */
export function classify(samples: Float32Array, candidatesHz: number[], sampleRate: number): ToneReading {
  const skip = Math.round(SKIP_START_SECONDS * sampleRate);
  // Skip the start-up only when enough audio remains (a short segment keeps all it has).
  const analysed = samples.length >= 2 * skip ? samples.subarray(skip) : samples;
  const count = analysed.length;
  let sumOfSquares = 0;
  for (const sample of analysed) sumOfSquares += sample * sample;
  const meanSquare = count > 0 ? sumOfSquares / count : 0;
  const rmsDb = Math.max(-120, 10 * Math.log10(meanSquare || 1e-12));

  const powers: Record<number, number> = {};
  for (const hz of candidatesHz) {
    powers[hz] = meanSquare > 0 ? Math.min(1, toneMeanSquare(analysed, hz, sampleRate) / meanSquare) : 0;
  }
  const reading = { rmsDb, powers, seconds: count / sampleRate };
  if (rmsDb < SILENCE_DBFS) return { tone: 'silence', ...reading };

  const ranked = [...candidatesHz].sort((a, b) => powers[b]! - powers[a]!);
  const best = ranked[0];
  const runnerUp = ranked[1] === undefined ? 0 : powers[ranked[1]]!;
  const dominates = best !== undefined && powers[best]! >= MIN_SHARE && powers[best]! >= DOMINANCE_RATIO * runnerUp;
  return { tone: dominates ? best : 'unclear', ...reading };
}

/**
 * Mean square of the component at `hz` (amplitude² / 2), averaged over short Hann-windowed
 * blocks (32 ms at 16 kHz, half overlapping), each measured with a Goertzel filter.
 * Short blocks keep the measure incoherent across the segment: a phase jump (a dropped or
 * repeated stretch of samples, resampler compensation) or a small frequency offset costs a
 * little energy instead of cancelling the tone. The window keeps a neighbouring candidate's
 * leakage far down as long as candidates are ~100 Hz or more apart.
 */
function toneMeanSquare(samples: Float32Array, hz: number, sampleRate: number): number {
  const blockLength = Math.min(samples.length, Math.round(BLOCK_SECONDS * sampleRate));
  if (blockLength < 2) return 0;
  const hop = Math.max(1, blockLength >> 1);
  let total = 0;
  let blocks = 0;
  for (let start = 0; start + blockLength <= samples.length; start += hop) {
    total += blockMeanSquare(samples.subarray(start, start + blockLength), hz, sampleRate);
    blocks += 1;
  }
  return total / blocks;
}

/** One Goertzel over one Hann-windowed block: the tone's mean square (amplitude² / 2). */
function blockMeanSquare(block: Float32Array, hz: number, sampleRate: number): number {
  const amplitude = goertzelAmplitude(block, hz, sampleRate);
  return (amplitude * amplitude) / 2;
}

/** Amplitude of the component at `hz` in a Hann-windowed block (the window's coherent gain of 0.5 divided out). */
export function goertzelAmplitude(block: Float32Array, hz: number, sampleRate: number): number {
  const count = block.length;
  const coefficient = 2 * Math.cos((2 * Math.PI * hz) / sampleRate);
  const windowStep = (2 * Math.PI) / (count - 1);
  let previous = 0;
  let beforePrevious = 0;
  for (let index = 0; index < count; index++) {
    const windowed = block[index]! * (0.5 - 0.5 * Math.cos(windowStep * index));
    const current = windowed + coefficient * previous - beforePrevious;
    beforePrevious = previous;
    previous = current;
  }
  const magnitudeSquared = previous * previous + beforePrevious * beforePrevious - coefficient * previous * beforePrevious;
  return (2 * Math.sqrt(Math.max(0, magnitudeSquared))) / (count * 0.5);
}

/** Runs `ffmpeg -f aac|mp3 -i pipe:0 -f s16le -ac 1 -ar <rate> pipe:1`, bounded by a timeout. */
function decodeToPcm(adts: Uint8Array, sampleRate: number, format: 'aac' | 'mp3'): Promise<Float32Array> {
  return new Promise((resolve, reject) => {
    const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', format, '-i', 'pipe:0'];
    const child = spawn('ffmpeg', [...args, '-f', 's16le', '-ac', '1', '-ar', String(sampleRate), 'pipe:1'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, DECODE_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return reject(new Error(`identifyTone: ffmpeg did not decode within ${DECODE_TIMEOUT_MS} ms`));
      if (code !== 0) return reject(new Error(`identifyTone: ffmpeg exited ${code ?? signal}: ${stderr.trim()}`));
      const bytes = Buffer.concat(chunks);
      const samples = new Float32Array(bytes.length >> 1);
      for (let index = 0; index < samples.length; index++) samples[index] = bytes.readInt16LE(index * 2) / 32768;
      resolve(samples);
    });
    // FFmpeg may stop reading early (bad bytes): that shows in its exit code, not as EPIPE here.
    child.stdin.on('error', () => {});
    child.stdin.end(adts);
  });
}

/** A tiny FIFO limiter: at most `limit` tasks run at once; the rest wait their turn. */
export function createLimiter(limit: number): { run<T>(task: () => Promise<T>): Promise<T> } {
  let running = 0;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      else running += 1;
      try {
        return await task();
      } finally {
        // Hand the slot straight to the next task (running stays the same), or free it.
        const next = waiting.shift();
        if (next) next();
        else running -= 1;
      }
    },
  };
}

const decoders = createLimiter(MAX_DECODERS);
