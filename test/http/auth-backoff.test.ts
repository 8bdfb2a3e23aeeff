import t from 'tap';
import { AuthFailureBackoff } from '../../src/http/auth-backoff.js';
import { ManualClock } from '../helpers/manual-clock.js';

t.test('the 5th wrong attempt locks an address out for 1 s, each further one twice as long, at most 60 s', async (t) => {
  const clock = new ManualClock();
  const backoff = new AuthFailureBackoff({ clock });
  for (let attempt = 1; attempt <= 4; attempt++) {
    backoff.failed('203.0.113.7');
    t.equal(backoff.lockedForMs('203.0.113.7'), 0, `no lock-out after ${attempt} failures`);
  }
  const locks: number[] = [];
  for (let attempt = 5; attempt <= 13; attempt++) {
    backoff.failed('203.0.113.7');
    locks.push(backoff.lockedForMs('203.0.113.7'));
    await clock.advance(locks.at(-1)!);
    t.equal(backoff.lockedForMs('203.0.113.7'), 0, 'free again once the lock-out has passed');
  }
  t.same(locks, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  t.equal(backoff.lockedForMs('198.51.100.1'), 0, 'another address is not concerned');
});

t.test('a success forgets the failures; so do ten quiet minutes', async (t) => {
  const clock = new ManualClock();
  const backoff = new AuthFailureBackoff({ clock });
  for (let attempt = 0; attempt < 4; attempt++) backoff.failed('203.0.113.7');
  backoff.succeeded('203.0.113.7');
  backoff.failed('203.0.113.7');
  t.equal(backoff.lockedForMs('203.0.113.7'), 0, 'counting starts again after a success');
  for (let attempt = 0; attempt < 3; attempt++) backoff.failed('203.0.113.7');
  await clock.advance(600_000);
  backoff.failed('203.0.113.7');
  t.equal(backoff.lockedForMs('203.0.113.7'), 0, 'the old failures expired');
  t.equal(backoff.size, 1);
});

t.test('an IPv6 client counts by its /64, an IPv4-mapped one as IPv4', async (t) => {
  const backoff = new AuthFailureBackoff({ clock: new ManualClock() });
  for (let host = 1; host <= 5; host++) backoff.failed(`2001:db8:1:2::${host}`);
  t.ok(backoff.lockedForMs('2001:db8:1:2:ffff::9') > 0, 'another address of the same /64 is locked out');
  t.equal(backoff.lockedForMs('2001:db8:1:3::1'), 0, 'the next /64 is not');
  for (let attempt = 0; attempt < 5; attempt++) backoff.failed('::ffff:203.0.113.7');
  t.ok(backoff.lockedForMs('203.0.113.7') > 0);
});

t.test('memory is bounded: the least recently failed address is forgotten first', async (t) => {
  const backoff = new AuthFailureBackoff({ clock: new ManualClock(), maxAddresses: 3, freeFailures: 1 });
  for (const address of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) backoff.failed(address);
  backoff.failed('10.0.0.1');
  backoff.failed('10.0.0.4');
  t.equal(backoff.size, 3);
  t.equal(backoff.lockedForMs('10.0.0.2'), 0, 'the oldest entry went');
  t.ok(backoff.lockedForMs('10.0.0.1') > 0, 'one that failed again stayed');
  for (let address = 0; address < 10_000; address++) backoff.failed(`10.1.${address >> 8}.${address & 255}`);
  t.equal(backoff.size, 3);
});
