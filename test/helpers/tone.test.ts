/**
 * identifyTone on real FFmpeg output: the test-signal sender's beeping tones at 500 and
 * 1000 Hz, digital silence, and a mix of both tones, each encoded to ADTS AAC at the
 * lowest and a high rendition bitrate, must be told apart.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import { classify, createLimiter, identifyTone, identifyTones } from './tone.js';

const CANDIDATES = [500, 1000];

/** One second of a lavfi source, stereo at 48 kHz like the sender, as ADTS AAC. */
function encodeAdts(source: string, bitrate: string, seconds = 1): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', source, '-t', String(seconds)];
    const child = spawn('ffmpeg', [...args, '-ac', '2', '-c:a', 'aac', '-b:a', bitrate, '-f', 'adts', 'pipe:1']);
    const chunks: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new Error(`ffmpeg exited ${code}: ${stderr}`));
    });
  });
}

const tone = (hz: number): string => `sine=frequency=${hz}:beep_factor=4:sample_rate=48000`;
const SILENCE = 'anullsrc=r=48000:cl=stereo';
// Both tones at the sender's level (1/8 of full scale) at once.
const MIX = 'aevalsrc=0.125*sin(2*PI*500*t)+0.125*sin(2*PI*1000*t):s=48000';

for (const bitrate of ['32k', '192k']) {
  t.test(`at ${bitrate}, each sender's tone, silence and a mix are told apart`, async (t) => {
    const [low, high, silence, mix] = await Promise.all([tone(500), tone(1000), SILENCE, MIX].map((source) => encodeAdts(source, bitrate)));

    const lowReading = await identifyTone(low!, CANDIDATES);
    t.equal(lowReading.tone, 500, '500 Hz tone is identified');
    t.ok(lowReading.powers[500]! > 0.5, `it carries most of the energy (${lowReading.powers[500]!.toFixed(3)})`);
    t.ok(lowReading.rmsDb > -30 && lowReading.rmsDb < -10, `at the sender's level (${lowReading.rmsDb.toFixed(1)} dBFS)`);

    const highReading = await identifyTone(high!, CANDIDATES);
    t.equal(highReading.tone, 1000, '1000 Hz tone is identified');

    const silenceReading = await identifyTone(silence!, CANDIDATES);
    t.equal(silenceReading.tone, 'silence', 'digital silence is silence');
    t.ok(silenceReading.rmsDb < -50);

    const mixReading = await identifyTone(mix!, CANDIDATES);
    t.equal(mixReading.tone, 'unclear', `a mix of both is neither tone (${JSON.stringify(mixReading.powers)})`);
  });
}

t.test('a tone that is not a candidate is unclear, not the nearest candidate', async (t) => {
  const reading = await identifyTone(await encodeAdts(tone(700), '32k'), CANDIDATES);
  t.equal(reading.tone, 'unclear');
});

t.test('a switch in the middle of a segment is unclear', async (t) => {
  const switching = 'aevalsrc=0.125*sin(2*PI*if(lt(t\\,0.5)\\,500\\,1000)*t):s=48000';
  const reading = await identifyTone(await encodeAdts(switching, '32k'), CANDIDATES);
  t.equal(reading.tone, 'unclear');
});

t.test('a short piece (three AAC frames) is still identified', async (t) => {
  const reading = await identifyTone(await encodeAdts(tone(1000), '32k', 0.064), CANDIDATES);
  t.equal(reading.tone, 1000);
});

t.test('bytes that are not AAC are an error, not a verdict', async (t) => {
  await t.rejects(identifyTone(new Uint8Array(0), CANDIDATES), /no audio bytes/);
  await t.rejects(identifyTone(new Uint8Array(2000).fill(7), CANDIDATES), /ffmpeg exited/);
});

t.test('classifying many segments costs tens of milliseconds each', async (t) => {
  const segment = await encodeAdts(tone(500), '192k');
  const count = 20;
  const started = performance.now();
  const readings = await identifyTones(Array.from({ length: count }, () => segment), CANDIDATES);
  const perSegmentMs = (performance.now() - started) / count;
  t.ok(
    readings.every((reading) => reading.tone === 500),
    'every copy is identified',
  );
  t.comment(`identifyTone: ${perSegmentMs.toFixed(1)} ms per 1-s segment (${count} segments, 2 decoders)`);
  t.ok(perSegmentMs < 500, 'well under real time');
});

t.test('the limiter runs at most its limit of tasks at once, in order', async (t) => {
  const limiter = createLimiter(2);
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  await Promise.all(
    Array.from({ length: 6 }, (_, index) =>
      limiter.run(async () => {
        started.push(index);
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running -= 1;
      }),
    ),
  );
  t.equal(peak, 2);
  t.same(started, [0, 1, 2, 3, 4, 5]);
});

t.test('classify weighs candidates on synthetic samples without FFmpeg', async (t) => {
  const rate = 16000;
  const sine = (hz: number, amplitude: number) => Float32Array.from({ length: rate }, (_, n) => amplitude * Math.sin((2 * Math.PI * hz * n) / rate));
  const reading = classify(sine(500, 0.125), CANDIDATES, rate);
  t.equal(reading.tone, 500);
  t.ok(Math.abs(reading.powers[500]! - 1) < 0.02, `a pure sine is all of the energy (${reading.powers[500]})`);
  t.ok(reading.powers[1000]! < 1e-4, 'the other candidate reads nothing');
  t.equal(classify(new Float32Array(rate), CANDIDATES, rate).tone, 'silence');
  t.equal(classify(sine(500, 0.001), CANDIDATES, rate).tone, 'silence', '-63 dBFS is silence');
});

t.test('classify tolerates the phase jumps and small offsets a real pipeline makes', async (t) => {
  const rate = 16000;
  // A 1000 Hz tone whose phase jumps by a half turn every 200 ms (dropped or repeated audio).
  const jumpy = Float32Array.from({ length: rate }, (_, n) => 0.125 * Math.sin((2 * Math.PI * 1000 * n) / rate + Math.PI * Math.floor(n / 3200)));
  t.equal(classify(jumpy, CANDIDATES, rate).tone, 1000, 'phase jumps');
  const offset = Float32Array.from({ length: rate }, (_, n) => 0.125 * Math.sin((2 * Math.PI * 1008 * n) / rate));
  const reading = classify(offset, CANDIDATES, rate);
  t.equal(reading.tone, 1000, `an 8 Hz offset (share ${reading.powers[1000]!.toFixed(3)})`);
});
