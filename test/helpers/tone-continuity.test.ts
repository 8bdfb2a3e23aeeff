/**
 * The continuity reader on synthetic test tones built as FFmpeg's sine source builds them (a
 * carrier plus a 40 ms beep at 4× it every second): a clean tone reads clean, and one frame
 * lost, repeated or silenced is found where it happened.
 */
import t from 'tap';
import { analyseContinuity } from './tone-continuity.js';

const RATE = 16000;
/** One AAC frame (1024 samples at 48 kHz) at 16 kHz. */
const FRAME = Math.round((1024 * RATE) / 48000);

/** `seconds` of FFmpeg's sine=frequency=<hz>:beep_factor=4, starting `phaseSeconds` into its clock. */
function tone(hz: number, seconds: number, phaseSeconds = 0): Float32Array {
  const samples = new Float32Array(Math.round(seconds * RATE));
  const beepSamples = Math.round(0.04 * RATE);
  for (let index = 0; index < samples.length; index++) {
    const clock = index + Math.round(phaseSeconds * RATE);
    let value = 0.125 * Math.sin((2 * Math.PI * hz * clock) / RATE);
    if (clock % RATE < beepSamples) value += 0.25 * Math.sin((2 * Math.PI * 4 * hz * clock) / RATE);
    samples[index] = value;
  }
  return samples;
}

function join(...parts: Float32Array[]): Float32Array {
  const joined = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

t.test('a clean tone has a beep every second, no splice and no silence', async (t) => {
  const report = analyseContinuity(tone(500, 10.5), RATE, [500, 800]);
  t.ok(report.beeps.length >= 9, `${report.beeps.length} beeps`);
  t.same(report.splices, []);
  t.same(report.silences, []);
  t.same(report.toneRuns.map((run) => run.tone), [500]);
});

t.test('one frame lost shortens one beep interval by a frame', async (t) => {
  const whole = tone(500, 10.5);
  const cut = Math.round(5.5 * RATE);
  const report = analyseContinuity(join(whole.subarray(0, cut), whole.subarray(cut + FRAME)), RATE, [500]);
  t.equal(report.splices.length, 1, 'one splice');
  t.ok(Math.abs(report.splices[0]!.offsetMs + 21.3) < 3, `offset ${report.splices[0]!.offsetMs.toFixed(1)} ms`);
  t.ok(Math.abs(report.splices[0]!.atSeconds - 6) < 0.1, 'at the beep after the cut');
});

t.test('one frame repeated lengthens one beep interval by a frame', async (t) => {
  const whole = tone(500, 10.5);
  const at = Math.round(3.5 * RATE);
  const report = analyseContinuity(join(whole.subarray(0, at + FRAME), whole.subarray(at)), RATE, [500]);
  t.equal(report.splices.length, 1, 'one splice');
  t.ok(Math.abs(report.splices[0]!.offsetMs - 21.3) < 3, `offset ${report.splices[0]!.offsetMs.toFixed(1)} ms`);
});

t.test('a frame of silence in place of the tone is a silent stretch of about a frame, and no splice', async (t) => {
  const samples = tone(800, 6.5);
  samples.fill(0, Math.round(2.5 * RATE), Math.round(2.5 * RATE) + FRAME);
  const report = analyseContinuity(samples, RATE, [500, 800]);
  t.equal(report.silences.length, 1);
  t.ok(report.longestSilenceMs >= 17 && report.longestSilenceMs <= 26, `${report.longestSilenceMs.toFixed(1)} ms of silence`);
  t.same(report.splices, []);
});

t.test('another sender following at an unrelated point of its clock is a tone change, not a splice', async (t) => {
  const report = analyseContinuity(join(tone(500, 5.2), tone(800, 5.3, 0.37)), RATE, [500, 800]);
  t.same(report.toneRuns.filter((run) => run.tone !== 'unclear').map((run) => run.tone), [500, 800]);
  t.same(report.splices, []);
  t.same(report.silences, []);
  t.ok(report.beeps.some((beep) => beep.carrierHz === 500) && report.beeps.some((beep) => beep.carrierHz === 800), 'beeps of both senders');
});
