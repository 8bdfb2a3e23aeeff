/**
 * The window arithmetic (src/hls/channel-window.ts) as tables: the live window sliding and
 * the discontinuity sequence (RFC 8216 §6.2.2), BANDWIDTH peak and average, the DVR window,
 * program date time that never goes back, segment TTLs, and which queued segments a full
 * queue or a takeover drops.
 */
import t from 'tap';
import {
  alreadyAiredCount,
  completedOpenSegment,
  dvrWith,
  monotonicPdt,
  overflowDropIndex,
  segmentTtlSeconds,
  stateWith,
  takeoverState,
  windowSize,
} from '../../src/hls/channel-window.js';
import { emptyChannelState, knowsNoSegment, type ChannelState, type DvrSegment, type WindowSegment } from '../../src/hls/sequence-state.js';
import { PTS_WRAP } from '../../src/media/pts.js';

const T0 = Date.UTC(2024, 5, 1, 12);

/** Segment `msn` of run 1, one second long by default, stamped as if every earlier one was too. */
function segment(msn: number, overrides: Partial<WindowSegment> = {}): WindowSegment {
  return { run: 1, durationSeconds: 1, programDateTime: T0 + msn * 1000, discontinuity: false, bytes: { hifi: 24_000 }, msn, ...overrides };
}

/** A state whose window holds `msns` (and whose next MSN follows the last). */
function stateOf(msns: number[], overrides: Partial<ChannelState> = {}): ChannelState {
  const window = msns.map((msn) => segment(msn));
  return { ...emptyChannelState(1, 900_000), nextMsn: (msns.at(-1) ?? -1) + 1, window, ...overrides };
}

const dvrOf = (window: WindowSegment[]): DvrSegment[] =>
  window.map(({ msn, run, durationSeconds, programDateTime, discontinuity }) => ({ msn, run, durationSeconds, programDateTime, discontinuity }));

t.test('the live window holds windowSegments, never fewer than 6 nor than 3 target durations', async (t) => {
  const rows: [windowSegments: number, segmentSeconds: number, targetDuration: number, expected: number][] = [
    [6, 4, 4, 6],
    [8, 4, 4, 8],
    [3, 4, 4, 6],
    [3, 1, 1, 6],
    [6, 0.5, 4, 24],
    [12, 2, 2, 12],
  ];
  for (const [windowSegments, segmentSeconds, targetDuration, expected] of rows) {
    t.equal(windowSize(windowSegments, segmentSeconds, targetDuration), expected, `${windowSegments} × ${segmentSeconds} s, TD ${targetDuration}: ${expected}`);
  }
});

t.test('a new segment joins the window, the oldest slide out, and each tagged one leaving increments the discontinuity sequence', async (t) => {
  const rows: { name: string; window: WindowSegment[]; size: number; dsn: number; listed: number[]; expectedDsn: number }[] = [
    { name: 'window not full yet', window: [0, 1, 2].map((msn) => segment(msn)), size: 6, dsn: 0, listed: [0, 1, 2, 3], expectedDsn: 0 },
    { name: 'full window, untagged segment leaves', window: [0, 1, 2, 3, 4, 5].map((msn) => segment(msn)), size: 6, dsn: 2, listed: [1, 2, 3, 4, 5, 6], expectedDsn: 2 },
    {
      name: 'full window, tagged segment leaves',
      window: [0, 1, 2, 3, 4, 5].map((msn) => segment(msn, { discontinuity: msn === 0 })),
      size: 6,
      dsn: 2,
      listed: [1, 2, 3, 4, 5, 6],
      expectedDsn: 3,
    },
    {
      name: 'a tag staying in the window does not count yet',
      window: [0, 1, 2, 3, 4, 5].map((msn) => segment(msn, { discontinuity: msn === 1 })),
      size: 6,
      dsn: 0,
      listed: [1, 2, 3, 4, 5, 6],
      expectedDsn: 0,
    },
    {
      name: 'a smaller window: several leave, two of them tagged',
      window: [0, 1, 2, 3, 4, 5, 6, 7].map((msn) => segment(msn, { discontinuity: msn === 0 || msn === 2 || msn === 5 })),
      size: 6,
      dsn: 1,
      listed: [3, 4, 5, 6, 7, 8],
      expectedDsn: 3,
    },
  ];
  for (const row of rows) {
    const before = stateOf([], { window: row.window, nextMsn: row.window.length, discontinuitySequence: row.dsn });
    const next = stateWith(before, segment(row.window.length), 123_456, { windowSize: row.size, dvrSeconds: 0 });
    t.same(
      next.window.map((entry) => entry.msn),
      row.listed,
      `${row.name}: lists ${row.listed.join(',')}`,
    );
    t.equal(next.discontinuitySequence, row.expectedDsn, `${row.name}: DSN ${row.expectedDsn}`);
    t.equal(next.nextMsn, row.window.length + 1, `${row.name}: next MSN follows the new segment`);
    t.equal(next.nextPts, 123_456, `${row.name}: the timeline goes on at the segment's end`);
    t.equal(before.window.length, row.window.length, `${row.name}: the previous state is left as it was`);
  }
});

t.test('publishing a segment closes the open segment and leaves no DVR when dvrSeconds is 0', async (t) => {
  const open = { msn: 3, run: 1, discontinuity: false, programDateTime: T0, parts: [0.5] };
  const next = stateWith(stateOf([0, 1, 2], { open }), segment(3), 0, { windowSize: 6, dvrSeconds: 0 });
  t.equal(next.open, undefined);
  t.equal(next.dvr, undefined);
  t.notMatch(JSON.stringify(next), /"dvr"|"open"/, 'neither is in the stored JSON');
});

t.test('BANDWIDTH keeps the peak segment bit rate and the sums for the average, per rendition', async (t) => {
  const rows: { name: string; entries: Partial<WindowSegment>[]; peak: Record<string, number>; average: Record<string, number> }[] = [
    { name: 'one segment', entries: [{ bytes: { hifi: 24_000 } }], peak: { hifi: 192_000 }, average: { hifi: 192_000 } },
    {
      name: 'a bigger segment raises the peak, the average is bits over seconds',
      entries: [{ bytes: { hifi: 24_000 } }, { bytes: { hifi: 48_000 } }],
      peak: { hifi: 384_000 },
      average: { hifi: 288_000 },
    },
    {
      name: 'a short segment of the same size has the higher rate',
      entries: [{ bytes: { hifi: 24_000 } }, { bytes: { hifi: 12_000 }, durationSeconds: 0.25 }],
      peak: { hifi: 384_000 },
      average: { hifi: (36_000 * 8) / 1.25 },
    },
    {
      name: 'renditions are measured apart',
      entries: [{ bytes: { hifi: 24_000, lofi: 4_000 } }, { bytes: { hifi: 20_000, lofi: 6_000 } }],
      peak: { hifi: 192_000, lofi: 48_000 },
      average: { hifi: 176_000, lofi: 40_000 },
    },
  ];
  for (const row of rows) {
    let state = stateOf([]);
    row.entries.forEach((overrides, msn) => (state = stateWith(state, segment(msn, overrides), 0, { windowSize: 6, dvrSeconds: 0 })));
    for (const [rendition, peak] of Object.entries(row.peak)) {
      const measured = state.bandwidth[rendition]!;
      t.equal(measured.peak, peak, `${row.name}: ${rendition} peak ${peak}`);
      t.ok(Math.abs(measured.bits / measured.seconds - row.average[rendition]!) < 1e-6, `${row.name}: ${rendition} average ${row.average[rendition]}`);
    }
  }
});

t.test('the DVR window covers dvrSeconds, never fewer segments than the live window, and restarts after an MSN gap', async (t) => {
  const ones = (msns: number[]) => dvrOf(msns.map((msn) => segment(msn)));
  const rows: { name: string; previous: DvrSegment[] | undefined; entry: WindowSegment; live: number; dvrSeconds: number; expected: number[] | undefined }[] = [
    { name: 'off', previous: undefined, entry: segment(0), live: 6, dvrSeconds: 0, expected: undefined },
    { name: 'first segment', previous: undefined, entry: segment(0), live: 1, dvrSeconds: 20, expected: [0] },
    { name: 'grows until dvrSeconds', previous: ones([0, 1, 2]), entry: segment(3), live: 4, dvrSeconds: 20, expected: [0, 1, 2, 3] },
    { name: 'trims by seconds: the oldest goes once the rest still cover dvrSeconds', previous: ones([0, 1, 2, 3, 4, 5, 6, 7, 8]), entry: segment(9), live: 2, dvrSeconds: 5, expected: [5, 6, 7, 8, 9] },
    { name: 'keeps the live window even when it is longer than dvrSeconds', previous: ones([0, 1, 2, 3, 4, 5, 6]), entry: segment(7), live: 6, dvrSeconds: 2, expected: [2, 3, 4, 5, 6, 7] },
    {
      name: 'trims longer segments by seconds, not by count',
      previous: dvrOf([0, 1, 2, 3].map((msn) => segment(msn, { durationSeconds: 4 }))),
      entry: segment(4, { durationSeconds: 4 }),
      live: 1,
      dvrSeconds: 10,
      expected: [2, 3, 4],
    },
    { name: 'restarts after an MSN gap (the store lost its state)', previous: ones([0, 1, 2, 3, 4]), entry: segment(11), live: 1, dvrSeconds: 20, expected: [11] },
    { name: 'forgets MSNs at or after the new one', previous: ones([3, 4, 5, 6]), entry: segment(5), live: 1, dvrSeconds: 20, expected: [3, 4, 5] },
  ];
  for (const row of rows) {
    const dvr = dvrWith(row.previous, row.entry, row.live, row.dvrSeconds);
    t.same(
      dvr?.map((entry) => entry.msn),
      row.expected,
      `${row.name}: ${row.expected?.join(',') ?? 'none'}`,
    );
  }
  const previous = ones([0, 1]);
  dvrWith(previous, segment(2), 1, 20);
  t.equal(previous.length, 2, 'the previous DVR window is left as it was');
});

t.test('stateWith keeps the DVR window in step with the live window', async (t) => {
  let state = stateOf([]);
  for (let msn = 0; msn < 30; msn++) state = stateWith(state, segment(msn, { discontinuity: msn === 12 }), 0, { windowSize: 6, dvrSeconds: 10 });
  t.same(
    state.dvr!.map((entry) => entry.msn),
    [20, 21, 22, 23, 24, 25, 26, 27, 28, 29],
  );
  t.same(
    state.dvr!.slice(-6).map((entry) => entry.msn),
    state.window.map((entry) => entry.msn),
    'the live window is its tail',
  );
  t.equal(state.discontinuitySequence, 1, 'the tag on MSN 12 has left the live window');
});

t.test('program date time never goes back nor overlaps the previous segment by more than a millisecond', async (t) => {
  const window = [segment(0), segment(1)]; // the last ends at T0 + 2000
  const lastEnd = T0 + 2000;
  const rows: [name: string, window: WindowSegment[], stamp: number, expected: number][] = [
    ['an empty window takes the stamp', [], T0 - 5000, T0 - 5000],
    ['a stamp right at the end', window, lastEnd, lastEnd],
    ['a stamp after the end (a gap)', window, lastEnd + 700, lastEnd + 700],
    ['a stamp within a millisecond before the end is the same instant', window, lastEnd - 0.6, lastEnd - 0.6],
    ['exactly a millisecond before the end still counts as the same instant', window, lastEnd - 1, lastEnd - 1],
    ['a stamp that overlaps the previous segment moves to its end', window, lastEnd - 1.5, lastEnd],
    ['a wall clock an hour behind moves to the end', window, lastEnd - 3_600_000, lastEnd],
  ];
  for (const [name, rowWindow, stamp, expected] of rows) t.equal(monotonicPdt(rowWindow, stamp), expected, name);
});

t.test('segments live two windows (or DVR windows) plus two target durations and 30 s after they are listed', async (t) => {
  const rows: [name: string, windowSize: number, dvrSeconds: number, targetDuration: number, expected: number][] = [
    ['6 × 4 s, no DVR', 6, 0, 4, 2 * 24 + 8 + 30],
    ['12 × 2 s, no DVR', 12, 0, 2, 2 * 24 + 4 + 30],
    ['a DVR longer than the window sets it', 6, 20, 1, 2 * 20 + 2 + 30],
    ['a DVR shorter than the window does not', 6, 10, 4, 2 * 24 + 8 + 30],
    ['an hour of DVR', 6, 3600, 4, 2 * 3600 + 8 + 30],
  ];
  for (const [name, size, dvrSeconds, targetDuration, expected] of rows) {
    t.equal(segmentTtlSeconds({ windowSize: size, dvrSeconds }, targetDuration), expected, `${name}: ${expected} s`);
  }
});

t.test('a takeover drops the queued segments whose audio mostly aired already', async (t) => {
  const aired = [segment(0), segment(1), segment(2)]; // aired until T0 + 3000
  const queued = (starts: number[]) => starts.map((start) => ({ programDateTime: T0 + start, durationSeconds: 1 }));
  const rows: [name: string, window: WindowSegment[], starts: number[], expected: number][] = [
    ['nothing stored: nothing aired', [], [0, 1000], 0],
    ['nothing queued', aired, [], 0],
    ['segments wholly before the end go', aired, [1000, 2000, 3000], 2],
    ['a segment at most half past the end goes', aired, [2500, 3500], 1],
    ['a segment more than half past the end stays', aired, [2600, 3600], 0],
    ['the first one kept keeps every later one', aired, [3000, 0], 0],
  ];
  for (const [name, window, starts, expected] of rows) t.equal(alreadyAiredCount(window, queued(starts)), expected, `${name}: ${expected}`);
});

t.test('a queue over the window drops its oldest segment, or the next one when the oldest is locked', async (t) => {
  const rows: [queueLength: number, size: number, headLocked: boolean, expected: number | undefined][] = [
    [0, 6, false, undefined],
    [6, 6, false, undefined],
    [6, 6, true, undefined],
    [7, 6, false, 0],
    [7, 6, true, 1],
    [13, 12, true, 1],
  ];
  for (const [queueLength, size, headLocked, expected] of rows) {
    t.equal(overflowDropIndex(queueLength, size, headLocked), expected, `${queueLength} queued, window ${size}, head ${headLocked ? 'locked' : 'free'}: ${expected ?? 'keep all'}`);
  }
});

t.test('a takeover goes on from the stored state, or past the highest MSN seen and the wall-clock MSN when the store lost it', async (t) => {
  const ours = stateOf([5, 6, 7], { targetDuration: 4 });
  const fresh = { ...stateOf([]), nextMsn: 40 }; // a packager that started with the store empty and has seen nothing since
  type Row = { name: string; current: ChannelState; stored: ChannelState | undefined; wallClockMsn: number; nextMsn: number; window: number[]; storeLost: boolean };
  const rows: Row[] = [
    { name: 'the stored state is ahead', current: ours, stored: stateOf([8, 9, 10]), wallClockMsn: 0, nextMsn: 11, window: [8, 9, 10], storeLost: false },
    { name: 'the stored state is where we are', current: ours, stored: stateOf([6, 7]), wallClockMsn: 0, nextMsn: 8, window: [6, 7], storeLost: false },
    { name: 'the stored state is ahead, whatever the wall clock says', current: ours, stored: stateOf([8, 9, 10]), wallClockMsn: 100, nextMsn: 11, window: [8, 9, 10], storeLost: false },
    { name: 'the store went back', current: ours, stored: stateOf([1]), wallClockMsn: 0, nextMsn: 14, window: [], storeLost: true },
    { name: 'the store is empty', current: ours, stored: undefined, wallClockMsn: 0, nextMsn: 14, window: [], storeLost: true },
    { name: 'the store went back, the wall-clock MSN is further', current: ours, stored: stateOf([1]), wallClockMsn: 100, nextMsn: 100, window: [], storeLost: true },
    { name: 'the store is empty, the wall-clock MSN is further', current: ours, stored: undefined, wallClockMsn: 100, nextMsn: 100, window: [], storeLost: true },
    { name: 'nothing published anywhere yet', current: stateOf([]), stored: undefined, wallClockMsn: 0, nextMsn: 0, window: [], storeLost: false },
    { name: 'nothing published anywhere yet: a new channel starts at the wall-clock MSN', current: fresh, stored: undefined, wallClockMsn: 45, nextMsn: 45, window: [], storeLost: false },
    { name: 'we know no segment: the stored state is adopted even behind our start', current: fresh, stored: stateOf([8, 9]), wallClockMsn: 45, nextMsn: 10, window: [8, 9], storeLost: false },
  ];
  for (const row of rows) {
    const { state, storeLost } = takeoverState(row.current, row.stored, { windowSize: 6 }, 2, row.wallClockMsn);
    t.equal(state.nextMsn, row.nextMsn, `${row.name}: next MSN ${row.nextMsn}`);
    t.same(
      state.window.map((entry) => entry.msn),
      row.window,
      `${row.name}: window ${row.window.join(',') || 'empty'}`,
    );
    t.equal(storeLost, row.storeLost, `${row.name}: store lost ${row.storeLost}`);
    t.equal(state.targetDuration, 2, `${row.name}: our target duration`);
    if (knowsNoSegment(row.current) === false) t.ok(state.nextMsn >= row.current.nextMsn, `${row.name}: MSN never goes back`);
  }
});

t.test("a predecessor's open segment is completed from its parts, and the timeline goes on after them", async (t) => {
  const open = { msn: 9, run: 3, discontinuity: true, programDateTime: T0, parts: [0.5, 0.5, 0.25] };
  const { entry, endPts } = completedOpenSegment(open, { hifi: 3000 }, PTS_WRAP - 45_000);
  t.same(entry, { msn: 9, run: 3, durationSeconds: 1.25, programDateTime: T0, discontinuity: true, bytes: { hifi: 3000 }, parts: [0.5, 0.5, 0.25] });
  t.equal(endPts, PTS_WRAP + 67_500, 'the packager timeline goes on past 2^33 (containers wrap when they write)');
});
