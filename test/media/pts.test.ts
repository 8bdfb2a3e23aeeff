import t from 'tap';
import { PTS_WRAP, ptsAdd, ptsDelta, samplesToTicks, ticksToSamples, wrapPts } from '../../src/media/pts.js';

t.test('wrapPts brings any tick count into [0, 2^33)', async (t) => {
  t.equal(PTS_WRAP, 8589934592);
  t.equal(wrapPts(PTS_WRAP + 5), 5);
  t.equal(wrapPts(-1), PTS_WRAP - 1);
  t.equal(wrapPts(3 * PTS_WRAP + 7), 7);
});

t.test('ptsAdd wraps forwards and backwards', async (t) => {
  t.equal(ptsAdd(PTS_WRAP - 1920, 1920), 0);
  t.equal(ptsAdd(PTS_WRAP - 1000, 1920), 920);
  t.equal(ptsAdd(500, -1000), PTS_WRAP - 500);
});

t.test('ptsDelta is the signed shortest distance across the wrap', async (t) => {
  t.equal(ptsDelta(PTS_WRAP - 10, 5), 15);
  t.equal(ptsDelta(5, PTS_WRAP - 10), -15);
  t.equal(ptsDelta(1000, 3000), 2000);
  t.equal(ptsDelta(3000, 1000), -2000);
  t.equal(ptsDelta(0, 2 ** 32 - 1), 2 ** 32 - 1);
  t.equal(ptsDelta(0, 2 ** 32), -(2 ** 32));
});

t.test('samplesToTicks is exact integer math for 48 kHz and 44.1 kHz', async (t) => {
  t.equal(samplesToTicks(1024, 48000), 1920);
  t.equal(samplesToTicks(1024, 44100), 2089); // 2089.79…
  t.equal(samplesToTicks(2048, 44100), 4179); // 4179.59…
  t.equal(samplesToTicks(44100, 44100), 90000);
  t.equal(samplesToTicks(441 * 1024, 44100), 921600);
  t.equal(samplesToTicks(1024, 22050), 4179);
  t.equal(samplesToTicks(0, 44100), 0);
  // Thirty days of 44.1 kHz samples still land exactly on whole seconds.
  const month = 30 * 86400;
  t.equal(samplesToTicks(month * 44100, 44100), month * 90000);
  t.equal(samplesToTicks(month * 44100 + 1, 44100), month * 90000 + 2);
  t.throws(() => samplesToTicks(1.5, 48000), RangeError);
});

t.test('ticksToSamples: round(ticks · rate / 90000), exact after years of ticks, the inverse of samplesToTicks on frame edges', async (t) => {
  t.equal(ticksToSamples(1920, 48000), 1024);
  t.equal(ticksToSamples(PTS_WRAP, 48000), 4581298449, '2^33 ticks: 4581298449.07 samples at 48 kHz');
  t.equal(ticksToSamples(PTS_WRAP, 44100), 4209067950, '2^33 ticks: 4209067950.08 at 44.1 kHz');
  const years = 10 * 365 * 86400 * 90000;
  for (const rate of [44100, 48000, 32000]) {
    const exact = (BigInt(years) * BigInt(rate) * 2n + 90000n) / 180000n;
    t.equal(ticksToSamples(years, rate), Number(exact), `${rate} Hz: exact after 10 years, where ticks · rate passes 2^53`);
    for (const samples of [0, 1024, 1024 * 4_000_000_001]) t.equal(ticksToSamples(samplesToTicks(samples, rate), rate), samples, `${rate} Hz: ${samples} samples round-trip`);
  }
  t.throws(() => ticksToSamples(-1, 48000), RangeError);
  t.throws(() => ticksToSamples(0.5, 48000), RangeError);
});
