/**
 * The leadership loop of hot-standby packagers (src/ingest/channel-leadership.ts) on a
 * real MemoryStore with short leases, the loop and the store's lease expiry both on a manual
 * clock: one leader at a time, a clean hand-over on close, self-demotion when the store is
 * out of reach, takeover after expiry.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { OnairError } from '../../src/errors.js';
import { ChannelLeadership, defaultLeaseMs } from '../../src/ingest/channel-leadership.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Lease } from '../../src/store/store.js';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { ManualClock } from '../helpers/manual-clock.js';

const LEASE_MS = 300;
const logger = pino({ level: 'silent' });

/** A store whose lease calls can be cut off, as a packager that lost its network. */
class CuttableStore extends DelegatingStore {
  cut = false;
  override acquireLease(channel: string, owner: string, ttlMs: number): Promise<Lease | null> {
    return this.cut ? Promise.reject(new OnairError('ONAIR_STORE_UNAVAILABLE', 'cut off')) : super.acquireLease(channel, owner, ttlMs);
  }
  override renewLease(lease: Lease, ttlMs: number): Promise<boolean> {
    return this.cut ? Promise.reject(new OnairError('ONAIR_STORE_UNAVAILABLE', 'cut off')) : super.renewLease(lease, ttlMs);
  }
}

/** Moves the clock on in small steps until `predicate` holds, for at most `limitMs` of clock time. */
async function advanceUntil(t: Test, clock: ManualClock, what: string, predicate: () => boolean, limitMs = 2000): Promise<void> {
  const deadline = clock.now() + limitMs;
  while (!predicate()) {
    if (clock.now() >= deadline) {
      t.fail(`${limitMs} ms passed before ${what}`);
      return;
    }
    await clock.advance(5);
  }
}

/** A MemoryStore and the clock its leases expire on. */
function storeOnClock(): { clock: ManualClock; memory: MemoryStore } {
  const clock = new ManualClock();
  return { clock, memory: new MemoryStore({ now: () => clock.now() }) };
}

interface Member {
  leadership: ChannelLeadership;
  events: string[];
  ledAt: number[];
}

function member(t: Test, store: DelegatingStore | MemoryStore, clock: ManualClock): Member {
  const events: string[] = [];
  const ledAt: number[] = [];
  const leadership = new ChannelLeadership({
    store,
    channel: 'fip',
    leaseMs: LEASE_MS,
    logger,
    onLead: async () => {
      events.push('lead');
      ledAt.push(clock.now());
    },
    onFollow: (reason) => events.push(`follow: ${reason}`),
    clock,
  });
  leadership.start();
  t.teardown(() => leadership.close());
  return { leadership, events, ledAt };
}

t.test('the lease defaults to 0.2 × the target duration, within 0.3–3 s, so a takeover fits in half a TD', async (t) => {
  t.equal(defaultLeaseMs(1), 300);
  t.equal(defaultLeaseMs(2), 400);
  t.equal(defaultLeaseMs(4), 800);
  t.equal(defaultLeaseMs(20), 3000);
  for (const td of [1, 2, 4, 6, 10]) {
    const lease = defaultLeaseMs(td);
    t.ok(lease + lease / 4 < (td * 1000) / 2, `TD ${td}: lease ${lease} ms plus one attempt is under half a TD`);
  }
});

t.test('exactly one of two packagers leads, and closing it hands over at once', async (t) => {
  const { clock, memory } = storeOnClock();
  const first = member(t, memory, clock);
  await advanceUntil(t, clock, 'first leads', () => first.leadership.isLeader);
  const second = member(t, memory, clock);
  await clock.advance(LEASE_MS * 3);
  t.ok(first.leadership.isLeader);
  t.notOk(second.leadership.isLeader, 'the second stands by while the first renews');
  const closedAt = clock.now();
  await first.leadership.close();
  await advanceUntil(t, clock, 'second leads', () => second.leadership.isLeader);
  t.ok(second.ledAt[0]! - closedAt <= LEASE_MS / 4 + 100, `took over ${second.ledAt[0]! - closedAt} ms after a clean close`);
});

t.test('a leader cut off from the store steps down within the lease, and the standby takes over after it expires', async (t) => {
  const { clock, memory } = storeOnClock();
  const cuttable = new CuttableStore(memory);
  const first = member(t, cuttable, clock);
  await advanceUntil(t, clock, 'first leads', () => first.leadership.isLeader);
  const second = member(t, memory, clock);
  const cutAt = clock.now();
  cuttable.cut = true;
  await advanceUntil(t, clock, 'first stands by', () => !first.leadership.isLeader);
  const steppedDown = clock.now() - cutAt;
  t.ok(steppedDown <= LEASE_MS + LEASE_MS / 3 + 100, `stepped down ${steppedDown} ms after losing the store`);
  t.match(first.events.at(-1), /store unreachable/);
  await advanceUntil(t, clock, 'second leads', () => second.leadership.isLeader);
  t.ok(second.ledAt[0]! - cutAt <= LEASE_MS + LEASE_MS / 2 + 100, `standby led ${second.ledAt[0]! - cutAt} ms after the cut`);
  cuttable.cut = false;
  await clock.advance(LEASE_MS * 2);
  t.notOk(first.leadership.isLeader, 'back in reach, the old leader stays a standby');
});

t.test('a refused (fenced) write makes the leader stand by at once', async (t) => {
  const { clock, memory } = storeOnClock();
  const only = member(t, memory, clock);
  await advanceUntil(t, clock, 'only leads', () => only.leadership.isLeader);
  only.leadership.fenced();
  t.notOk(only.leadership.isLeader);
  t.match(only.events.at(-1), /fenced/);
  await advanceUntil(t, clock, 'only leads', () => only.leadership.isLeader);
  t.pass('and it may lead again once the lease is free');
});
