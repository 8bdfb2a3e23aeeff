/**
 * The leadership loop of hot-standby packagers (src/ingest/channel-leadership.ts) on a
 * real MemoryStore with real timers and short leases: one leader at a time, a clean
 * hand-over on close, self-demotion when the store is out of reach, takeover after expiry.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { OnairError } from '../../src/errors.js';
import { ChannelLeadership, defaultLeaseMs } from '../../src/ingest/channel-leadership.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Lease } from '../../src/store/store.js';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { waitUntil } from '../helpers/wait-until.js';

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

interface Member {
  leadership: ChannelLeadership;
  events: string[];
  ledAt: number[];
}

function member(t: Test, store: DelegatingStore | MemoryStore): Member {
  const events: string[] = [];
  const ledAt: number[] = [];
  const leadership = new ChannelLeadership({
    store,
    channel: 'fip',
    leaseMs: LEASE_MS,
    logger,
    onLead: async () => {
      events.push('lead');
      ledAt.push(Date.now());
    },
    onFollow: (reason) => events.push(`follow: ${reason}`),
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
  const memory = new MemoryStore();
  const first = member(t, memory);
  await waitUntil(t, 'first leads', () => first.leadership.isLeader, 2000);
  const second = member(t, memory);
  await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 3));
  t.ok(first.leadership.isLeader);
  t.notOk(second.leadership.isLeader, 'the second stands by while the first renews');
  const closedAt = Date.now();
  await first.leadership.close();
  await waitUntil(t, 'second leads', () => second.leadership.isLeader, 2000);
  t.ok(second.ledAt[0]! - closedAt <= LEASE_MS / 4 + 100, `took over ${second.ledAt[0]! - closedAt} ms after a clean close`);
});

t.test('a leader cut off from the store steps down within the lease, and the standby takes over after it expires', async (t) => {
  const memory = new MemoryStore();
  const cuttable = new CuttableStore(memory);
  const first = member(t, cuttable);
  await waitUntil(t, 'first leads', () => first.leadership.isLeader, 2000);
  const second = member(t, memory);
  const cutAt = Date.now();
  cuttable.cut = true;
  await waitUntil(t, 'first stands by', () => !first.leadership.isLeader, 2000);
  const steppedDown = Date.now() - cutAt;
  t.ok(steppedDown <= LEASE_MS + LEASE_MS / 3 + 100, `stepped down ${steppedDown} ms after losing the store`);
  t.match(first.events.at(-1), /store unreachable/);
  await waitUntil(t, 'second leads', () => second.leadership.isLeader, 2000);
  t.ok(second.ledAt[0]! - cutAt <= LEASE_MS + LEASE_MS / 2 + 100, `standby led ${second.ledAt[0]! - cutAt} ms after the cut`);
  cuttable.cut = false;
  await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 2));
  t.notOk(first.leadership.isLeader, 'back in reach, the old leader stays a standby');
});

t.test('a refused (fenced) write makes the leader stand by at once', async (t) => {
  const memory = new MemoryStore();
  const only = member(t, memory);
  await waitUntil(t, 'only leads', () => only.leadership.isLeader, 2000);
  only.leadership.fenced();
  t.notOk(only.leadership.isLeader);
  t.match(only.events.at(-1), /fenced/);
  await waitUntil(t, 'only leads', () => only.leadership.isLeader, 2000);
  t.pass('and it may lead again once the lease is free');
});
