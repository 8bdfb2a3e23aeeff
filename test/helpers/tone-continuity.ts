/**
 * Reads a listener's decoded audio for breaks: was any audio lost, repeated or replaced by
 * silence? The test tone (src/ffmpeg/test-signal-sender.ts) is a sine whose sample clock is
 * marked by a 40 ms beep at 4× the carrier every second, exactly 1 s of samples apart. So:
 *
 * - a silent stretch (RMS below -50 dBFS over 5 ms windows) is a gap in the sound;
 * - the interval between two beeps of the same sender is 1000 ms of samples; a frame skipped
 *   shortens it by one frame (1024 samples: 21.3 ms at 48 kHz), a frame repeated lengthens it,
 *   a stall that the stream then skips over shows as the audio it skipped. An interval off by
 *   more than `toleranceMs` (half a frame by default) is a splice.
 *
 * Which sender plays (the carrier) is read per 200 ms block with tone.ts's classifier, so the
 * one legitimate splice, where one sender's audio follows another's, is told apart. Pure: PCM in
 * (mono, -1..1), a report out; test/helpers/tone-continuity.test.ts checks it on synthetic tones.
 */
import { classify, goertzelAmplitude, SILENCE_DBFS, type ToneVerdict } from './tone.js';

export interface ContinuityOptions {
  /** Audio before this is not analysed (a decoder's start-up). Default 0.1 s. */
  skipSeconds?: number;
  /** A beep interval off from 1 s by more than this is a splice. Default 10 ms (half a frame). */
  toleranceMs?: number;
}

export interface ToneRun {
  tone: ToneVerdict;
  fromSeconds: number;
  toSeconds: number;
}

export interface Splice {
  /** Where the second beep of the interval is (seconds into the audio). */
  atSeconds: number;
  carrierHz: number;
  /** The interval minus 1000 ms: negative when audio was lost, positive when repeated. */
  offsetMs: number;
}

export interface ContinuityReport {
  seconds: number;
  /** Consecutive 200 ms blocks with the same verdict. */
  toneRuns: ToneRun[];
  /** Silent stretches of 5 ms or more, where they start and how long they last. */
  silences: { atSeconds: number; ms: number }[];
  longestSilenceMs: number;
  /** Beep onsets (seconds) with the carrier playing around them. */
  beeps: { atSeconds: number; carrierHz: number }[];
  /** Beep intervals of one sender that are not 1 s. */
  splices: Splice[];
}

const BLOCK_SECONDS = 0.2;
const SILENCE_WINDOW_SECONDS = 0.005;
const HOP_SECONDS = 0.001;
const BEEP_WINDOW_SECONDS = 0.004;
/** A beep starts when its level passes half the typical beep level after this long without one. */
const BEEP_QUIET_SECONDS = 0.3;
const BEEP_FACTOR = 4;
const BEEP_PERIOD_MS = 1000;

export function analyseContinuity(samples: Float32Array, sampleRate: number, carriersHz: number[], options: ContinuityOptions = {}): ContinuityReport {
  const skip = Math.round((options.skipSeconds ?? 0.1) * sampleRate);
  const audio = samples.subarray(Math.min(skip, samples.length));
  const offsetSeconds = skip / sampleRate;
  const toneRuns = readToneRuns(audio, sampleRate, carriersHz, offsetSeconds);
  const silences = findSilences(audio, sampleRate, offsetSeconds);
  const carrierAt = (seconds: number): ToneVerdict => toneRuns.find((run) => seconds >= run.fromSeconds && seconds < run.toSeconds)?.tone ?? 'unclear';

  const beeps: { atSeconds: number; carrierHz: number }[] = [];
  for (const carrierHz of carriersHz) {
    for (const atSeconds of beepOnsets(audio, sampleRate, carrierHz * BEEP_FACTOR)) {
      const seconds = atSeconds + offsetSeconds;
      // A beep counts for the carrier playing around it (the block may be unclear at a switch).
      const around = [carrierAt(seconds), carrierAt(seconds + 0.1)];
      if (around.includes(carrierHz)) beeps.push({ atSeconds: seconds, carrierHz });
    }
  }
  beeps.sort((a, b) => a.atSeconds - b.atSeconds);

  const toleranceMs = options.toleranceMs ?? 10;
  const splices: Splice[] = [];
  for (let index = 1; index < beeps.length; index++) {
    const previous = beeps[index - 1]!;
    const beep = beeps[index]!;
    if (previous.carrierHz !== beep.carrierHz) continue; // another sender: not one clock
    const offsetMs = (beep.atSeconds - previous.atSeconds) * 1000 - BEEP_PERIOD_MS;
    if (Math.abs(offsetMs) > toleranceMs) splices.push({ atSeconds: beep.atSeconds, carrierHz: beep.carrierHz, offsetMs });
  }
  return {
    seconds: samples.length / sampleRate,
    toneRuns,
    silences,
    longestSilenceMs: Math.max(0, ...silences.map((silence) => silence.ms)),
    beeps,
    splices,
  };
}

/** The tone runs as text, e.g. `500 0.1–12.3 s, 800 12.3–30.0 s`, for messages. */
export function describeToneRuns(runs: ToneRun[]): string {
  return runs.map((run) => `${run.tone} ${run.fromSeconds.toFixed(1)}–${run.toSeconds.toFixed(1)} s`).join(', ');
}

function readToneRuns(audio: Float32Array, sampleRate: number, carriersHz: number[], offsetSeconds: number): ToneRun[] {
  const block = Math.round(BLOCK_SECONDS * sampleRate);
  const runs: ToneRun[] = [];
  for (let start = 0; start + block <= audio.length; start += block) {
    // classify() skips the first 50 ms of what it gets, so give it 50 ms of the block before.
    const lead = Math.min(start, Math.round(0.05 * sampleRate));
    const tone = classify(audio.subarray(start - lead, start + block), carriersHz, sampleRate).tone;
    const fromSeconds = start / sampleRate + offsetSeconds;
    const toSeconds = (start + block) / sampleRate + offsetSeconds;
    const last = runs.at(-1);
    if (last && last.tone === tone) last.toSeconds = toSeconds;
    else runs.push({ tone, fromSeconds, toSeconds });
  }
  return runs;
}

/** Runs of 5 ms windows (1 ms apart) whose RMS is below the silence level. */
function findSilences(audio: Float32Array, sampleRate: number, offsetSeconds: number): { atSeconds: number; ms: number }[] {
  const window = Math.round(SILENCE_WINDOW_SECONDS * sampleRate);
  const hop = Math.max(1, Math.round(HOP_SECONDS * sampleRate));
  const threshold = 10 ** (SILENCE_DBFS / 20);
  const silences: { atSeconds: number; ms: number }[] = [];
  let runStart = -1;
  let runEnd = -1;
  const close = (): void => {
    if (runStart >= 0) silences.push({ atSeconds: runStart / sampleRate + offsetSeconds, ms: ((runEnd - runStart) / sampleRate) * 1000 });
    runStart = -1;
  };
  for (let start = 0; start + window <= audio.length; start += hop) {
    let sum = 0;
    for (let index = start; index < start + window; index++) sum += audio[index]! * audio[index]!;
    if (Math.sqrt(sum / window) < threshold) {
      if (runStart < 0) runStart = start;
      runEnd = start + window;
    } else close();
  }
  close();
  return silences;
}

/** Onsets (seconds) of beeps at `hz`: the level at `hz` over 4 ms windows, 1 ms apart, passing half its typical peak. */
function beepOnsets(audio: Float32Array, sampleRate: number, hz: number): number[] {
  const window = Math.round(BEEP_WINDOW_SECONDS * sampleRate);
  const hop = Math.max(1, Math.round(HOP_SECONDS * sampleRate));
  const levels: number[] = [];
  for (let start = 0; start + window <= audio.length; start += hop) levels.push(goertzelAmplitude(audio.subarray(start, start + window), hz, sampleRate));
  if (levels.length === 0) return [];
  // Beeps fill 4 % of the time: the 99th percentile is a beep's level when the carrier plays at all.
  const sorted = [...levels].sort((a, b) => a - b);
  const peak = sorted[Math.floor(sorted.length * 0.99)]!;
  if (peak < 10 ** (SILENCE_DBFS / 20)) return [];
  const threshold = peak / 2;
  const onsets: number[] = [];
  let lastAbove = -Infinity;
  for (let index = 0; index < levels.length; index++) {
    if (levels[index]! < threshold) continue;
    const seconds = (index * hop) / sampleRate;
    if (seconds - lastAbove >= BEEP_QUIET_SECONDS) onsets.push(seconds);
    lastAbove = seconds;
  }
  return onsets;
}

