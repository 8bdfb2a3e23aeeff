/**
 * The listener counter (src/origin/listener-counter.ts): client ids, the counting window,
 * and batching to the store (one write per set and flush, bounded, store errors logged).
 */
import t from 'tap';
import {
  ClientIdMemo,
  ListenerCounter,
  listenerClientId,
  ListenerWindow,
  SessionIdLimiter,
  sessionIdOf,
  type CounterLogger,
} from '../../src/origin/listener-counter.js';
import type { ListenerStore } from '../../src/store/store.js';
import { ManualClock } from '../helpers/manual-clock.js';

const TARGET_DURATION = 4;
const BUCKET_MS = TARGET_DURATION * 1000;
/** The start of a bucket, so tests know where the boundaries are. */
const BUCKET_START = 400_000_000 * BUCKET_MS;

interface RecordCall {
  channel: string;
  rendition: string;
  bucket: number;
  clientIds: string[];
  ttlMs: number;
}

/** A store that records every write; `fail` makes the writes reject, `hold` keeps them pending. */
class ObservedListenerStore implements Pick<ListenerStore, 'recordListeners'> {
  readonly calls: RecordCall[] = [];
  fail = false;
  private held: (() => void)[] = [];
  hold = false;

  async recordListeners(channel: string, rendition: string, bucket: number, clientIds: string[], ttlMs: number): Promise<void> {
    this.calls.push({ channel, rendition, bucket, clientIds: [...clientIds].sort(), ttlMs });
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    if (this.fail) throw new Error('store down');
  }

  release(): void {
    for (const resolve of this.held.splice(0)) resolve();
  }
}

interface LogLine {
  level: 'info' | 'warn';
  object: object;
  message?: string;
}

function recordingLogger(): CounterLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (object, message) => lines.push({ level: 'info', object, message }),
    warn: (object, message) => lines.push({ level: 'warn', object, message }),
  };
}

function counterWith(options: { maxPendingIds?: number; flushIntervalMs?: number } = {}) {
  const store = new ObservedListenerStore();
  const logger = recordingLogger();
  const clock = new ManualClock(BUCKET_START + 1000);
  const counter = new ListenerCounter({
    store,
    window: new ListenerWindow(TARGET_DURATION),
    logger,
    clock,
    ...options,
  });
  return { store, logger, counter, clock };
}

t.test('a client id', async (t) => {
  t.test('is the same for the same IP and User-Agent, and differs when either differs', async (t) => {
    const id = listenerClientId(undefined, '203.0.113.7', 'VLC/3.0.20');
    t.equal(listenerClientId(undefined, '203.0.113.7', 'VLC/3.0.20'), id);
    t.not(listenerClientId(undefined, '203.0.113.7', 'AppleCoreMedia/1.0'), id);
    t.not(listenerClientId(undefined, '203.0.113.8', 'VLC/3.0.20'), id);
    t.not(listenerClientId(undefined, '203.0.113.7', undefined), id);
  });

  t.test("is the player's session id when it sends one, whatever its address", async (t) => {
    const id = listenerClientId('3f2a9c', '203.0.113.7', 'VLC/3.0.20');
    t.equal(listenerClientId('3f2a9c', '198.51.100.1', 'Safari'), id);
    t.not(listenerClientId('3f2a9d', '203.0.113.7', 'VLC/3.0.20'), id);
    t.not(id, listenerClientId(undefined, '203.0.113.7', 'VLC/3.0.20'));
  });

  t.test('is a short hash that shows neither the address nor the session id', async (t) => {
    const byAddress = listenerClientId(undefined, '203.0.113.7', 'VLC/3.0.20');
    const bySession = listenerClientId('session-1234', '203.0.113.7', 'VLC/3.0.20');
    for (const id of [byAddress, bySession]) {
      t.match(id, /^[A-Za-z0-9_-]{16}$/);
      t.notMatch(id, /203|session/);
    }
  });
});

t.test('the session id of a query', async (t) => {
  t.equal(sessionIdOf({ _onair_sid: 'abc-123_X' }), 'abc-123_X');
  t.equal(sessionIdOf({ sid: 'abc' }), 'abc');
  t.equal(sessionIdOf({ _onair_sid: 'first', sid: 'second' }), 'first', '_onair_sid wins');
  t.equal(sessionIdOf({ _onair_sid: 'not valid!', sid: 'second' }), 'second', 'an invalid one is passed over');
  t.equal(sessionIdOf({ sid: 'x'.repeat(65) }), undefined, 'at most 64 characters');
  t.equal(sessionIdOf({ sid: '' }), undefined);
  t.equal(sessionIdOf({ sid: '<script>' }), undefined);
  t.equal(sessionIdOf({ sid: ['a', 'b'] }), undefined, 'a repeated parameter is not a session id');
  t.equal(sessionIdOf({ _HLS_msn: '5' }), undefined);
});

t.test('the window', async (t) => {
  const window = new ListenerWindow(TARGET_DURATION);
  const bucket = BUCKET_START / BUCKET_MS;
  t.equal(window.bucketOf(BUCKET_START), bucket);
  t.equal(window.bucketOf(BUCKET_START + BUCKET_MS - 1), bucket, 'a bucket is one target duration long');
  t.same(window.countedBuckets(BUCKET_START + 10), [bucket - 1, bucket], 'the previous and the current bucket');
  t.equal(window.setTtlMs, 3 * BUCKET_MS, 'a set outlives the bucket after its own');

  const now = BUCKET_START + 1000;
  t.equal(window.bucketToRecord(now, now), bucket, 'a fetch now goes to the current bucket');
  t.equal(window.bucketToRecord(BUCKET_START - BUCKET_MS, now), bucket - 1, 'a fetch in the previous bucket is still counted');
  t.equal(window.bucketToRecord(BUCKET_START - BUCKET_MS - 1, now), null, 'an older one is not');
  t.equal(window.bucketToRecord(now + 4000, now), bucket, 'a few seconds in the future count as now (edge clock skew)');
  t.equal(window.bucketToRecord(now + 60_000, now), null, 'a minute in the future is refused');
  t.equal(window.bucketToRecord(Number.NaN, now), null);
});

t.test('ids wait in memory and reach the store in one write per rendition and bucket', async (t) => {
  const { store, counter } = counterWith();
  const bucket = BUCKET_START / BUCKET_MS;
  for (const clientId of ['a', 'b', 'a', 'c', 'b']) t.ok(counter.record('fip', 'hifi', clientId));
  counter.record('fip', 'lofi', 'a');
  counter.record('fip', 'hifi', 'd', BUCKET_START - 10);
  t.same(store.calls, [], 'nothing written before the flush');

  await counter.flush();
  const byKey = Object.fromEntries(store.calls.map((call) => [`${call.rendition}/${call.bucket}`, call]));
  t.equal(store.calls.length, 3);
  t.same(byKey[`hifi/${bucket}`], { channel: 'fip', rendition: 'hifi', bucket, clientIds: ['a', 'b', 'c'], ttlMs: 3 * BUCKET_MS });
  t.same(byKey[`lofi/${bucket}`]?.clientIds, ['a']);
  t.same(byKey[`hifi/${bucket - 1}`]?.clientIds, ['d'], 'a fetch goes to the bucket of its own time');

  await counter.flush();
  t.equal(store.calls.length, 3, 'a flush with nothing new writes nothing');
});

t.test('a fetch older than the window is refused and never written', async (t) => {
  const { store, counter } = counterWith();
  t.notOk(counter.record('fip', 'hifi', 'late', BUCKET_START - BUCKET_MS - 1));
  await counter.flush();
  t.same(store.calls, []);
});

t.test('the timer flushes every flush interval once started, and close() writes the rest', async (t) => {
  const { store, counter, clock } = counterWith({ flushIntervalMs: 20 });
  counter.start();
  counter.record('fip', 'hifi', 'a');
  await clock.advance(19);
  t.equal(store.calls.length, 0, 'not before the interval');
  await clock.advance(1);
  t.equal(store.calls.length, 1, 'the timer flushed');
  counter.record('fip', 'hifi', 'b');
  await clock.advance(20);
  t.equal(store.calls.length, 2, 'and again one interval later');
  counter.record('fip', 'hifi', 'c');
  await counter.close();
  t.same(store.calls.map((call) => call.clientIds), [['a'], ['b'], ['c']]);
  t.equal(clock.pendingTimers, 0, 'no timer left after close()');
});

t.test('pending ids are bounded: the ones over the bound are dropped and logged', async (t) => {
  const { store, counter, logger } = counterWith({ maxPendingIds: 3 });
  for (const clientId of ['a', 'b', 'c', 'd', 'e']) counter.record('fip', 'hifi', clientId);
  counter.record('fip', 'hifi', 'a');
  await counter.flush();
  t.same(store.calls[0].clientIds, ['a', 'b', 'c']);
  t.match(logger.lines, [{ level: 'warn', object: { droppedIds: 2 } }]);

  for (const clientId of ['d', 'e']) counter.record('fip', 'hifi', clientId);
  await counter.flush();
  t.same(store.calls[1].clientIds, ['d', 'e'], 'the bound applies per flush');
});

t.test('a failing store is logged once per outage and never throws', async (t) => {
  const { store, counter, logger } = counterWith();
  store.fail = true;
  counter.record('fip', 'hifi', 'a');
  counter.record('fip', 'lofi', 'b');
  await counter.flush();
  counter.record('fip', 'hifi', 'c');
  await counter.flush();
  t.match(logger.lines, [{ level: 'warn', object: { lostIds: 2 } }], 'one warning for two failed flushes');

  store.fail = false;
  counter.record('fip', 'hifi', 'd');
  await counter.flush();
  t.match(logger.lines[1], { level: 'info', object: { lostIds: 3 } }, 'the recovery says how many were lost');
  t.same(store.calls.at(-1)?.clientIds, ['d'], 'and counting goes on');
});

t.test('a flush waits for the one in flight: writes never overlap', async (t) => {
  const { store, counter } = counterWith();
  store.hold = true;
  counter.record('fip', 'hifi', 'a');
  const first = counter.flush();
  counter.record('fip', 'hifi', 'b');
  const second = counter.flush();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(store.calls.length, 1, 'the second waits');
  store.hold = false;
  store.release();
  await Promise.all([first, second]);
  t.same(store.calls.map((call) => call.clientIds), [['a'], ['b']]);
});

t.test('a client id is 16 characters whatever the User-Agent: nothing grows with it', async (t) => {
  for (const length of [0, 4096, 1024 * 1024]) {
    t.match(listenerClientId(undefined, '203.0.113.7', 'u'.repeat(length)), /^[A-Za-z0-9_-]{16}$/, `${length}-character User-Agent`);
  }
  t.not(listenerClientId(undefined, '203.0.113.7', `${'u'.repeat(4095)}a`), listenerClientId(undefined, '203.0.113.7', `${'u'.repeat(4095)}b`));
});

t.test('session ids are bounded per client address and in all, per bucket', async (t) => {
  const clock = new ManualClock(BUCKET_START + 10);
  const limiter = new SessionIdLimiter(new ListenerWindow(TARGET_DURATION), 3, 5, clock);
  t.same(['s1', 's2', 's3', 's4'].map((id) => limiter.admit('203.0.113.7', id)), [true, true, true, false], 'three per address');
  t.ok(limiter.admit('203.0.113.7', 's2'), 'a session already admitted stays admitted');
  t.same(['s1', 's5', 's6'].map((id) => limiter.admit('198.51.100.1', id)), [true, true, false], 'five in all: the sixth is refused');
  t.equal(limiter.refused, 2);
  await clock.advance(BUCKET_MS);
  t.ok(limiter.admit('198.51.100.1', 's6'), 'a new bucket starts afresh');
  t.same(['a', 'b', 'c', 'd'].map((id) => limiter.admit('203.0.113.7', id)), [true, true, true, false]);
});

t.test('the client id memo gives the hashed ids of listenerClientId and keeps at most twice its entries', async (t) => {
  const memo = new ClientIdMemo(4);
  for (let round = 0; round < 2; round++) {
    for (let index = 0; index < 10; index++) {
      const ip = `192.0.2.${index}`;
      t.equal(memo.clientId(undefined, ip, 'VLC/3.0'), listenerClientId(undefined, ip, 'VLC/3.0'), `${ip}, round ${round}`);
      t.equal(memo.clientId(`session${index}`, ip, 'VLC/3.0'), listenerClientId(`session${index}`, ip, 'VLC/3.0'));
      t.ok(memo.size <= 8, 'never more than 2 × maxEntries ids kept');
    }
  }
  const hugeAgent = 'A'.repeat(10_000);
  const before = memo.size;
  t.equal(memo.clientId(undefined, '192.0.2.99', hugeAgent), listenerClientId(undefined, '192.0.2.99', hugeAgent), 'a long User-Agent is hashed');
  t.equal(memo.size, before, 'and never kept');
  t.throws(() => new ClientIdMemo(0), RangeError);
});
