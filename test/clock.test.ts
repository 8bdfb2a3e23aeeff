import t from 'tap';
import { sleepOn, systemClock } from '../src/clock.js';
import { ManualClock } from './helpers/manual-clock.js';

t.test('the manual clock runs timers in due order when advanced, and never before', async (t) => {
  const clock = new ManualClock(1_000);
  const ran: string[] = [];
  clock.setTimeout(() => ran.push('b'), 200);
  clock.setTimeout(() => ran.push('a'), 100);
  const cancelled = clock.setTimeout(() => ran.push('never'), 150);
  cancelled.cancel();
  await clock.advance(99);
  t.same(ran, []);
  await clock.advance(101);
  t.same(ran, ['a', 'b']);
  t.equal(clock.now(), 1_200);
  t.equal(clock.pendingTimers, 0);
});

t.test('sleepOn resolves after the clock moved, or at once when aborted', async (t) => {
  const clock = new ManualClock();
  let woke = false;
  const sleeping = sleepOn(clock, 500).then(() => (woke = true));
  await clock.advance(499);
  t.notOk(woke);
  await clock.advance(1);
  await sleeping;
  t.ok(woke);
  const controller = new AbortController();
  const aborted = sleepOn(clock, 10_000, controller.signal);
  controller.abort();
  await aborted;
  t.equal(clock.pendingTimers, 0, 'the aborted sleep left no timer behind');
});

t.test('the system clock tells Date.now time and runs real timers', async (t) => {
  const before = Date.now();
  t.ok(Math.abs(systemClock.now() - before) < 1_000);
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 1));
  const timer = systemClock.setTimeout(() => t.fail('a cancelled timer ran'), 1);
  timer.cancel();
  await sleepOn(systemClock, 5);
});
