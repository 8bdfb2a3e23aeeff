/**
 * The restart backoff of FFmpeg processes (src/ffmpeg/restart-backoff.ts): doubling, the cap,
 * and the jitter around it.
 */
import t from 'tap';
import { backoffDelay } from '../../src/ffmpeg/restart-backoff.js';

t.test('backoff doubles from 500 ms, is capped at 10 s, and jitters by ±25 %', async (t) => {
  const middle = () => 0.5;
  t.same(
    [1, 2, 3, 4, 5, 6, 7, 20].map((failures) => backoffDelay(failures, middle)),
    [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000],
  );
  t.equal(backoffDelay(0, middle), 500, 'no failure yet counts as the first');
  t.equal(backoffDelay(1, () => 0), 375, '-25 %');
  t.equal(backoffDelay(1, () => 0.999999), 625, '+25 %');
  t.equal(backoffDelay(4, () => 0), 3000);
  t.equal(backoffDelay(4, () => 0.999999), 5000);
  for (let failures = 1; failures < 30; failures++) {
    const low = backoffDelay(failures, () => 0);
    const high = backoffDelay(failures, () => 0.999999);
    const nominal = backoffDelay(failures, middle);
    if (low !== Math.round(nominal * 0.75) || high !== Math.min(10_000, Math.round(nominal * 1.25))) {
      t.fail(`jitter at ${failures} failures: ${low}–${high} around ${nominal}`);
    }
  }
  const samples = Array.from({ length: 200 }, () => backoffDelay(3));
  t.ok(samples.every((delay) => delay >= 1500 && delay <= 2500), 'Math.random jitter stays within ±25 %');
  t.ok(new Set(samples).size > 10, 'and does vary');
  t.equal(backoffDelay(10, () => 0.999999), 10_000, 'the cap holds after the jitter too');
});
