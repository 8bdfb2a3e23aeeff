/**
 * Now-playing changes put on the packager's timeline (src/recording/now-playing-timeline.ts):
 * a change lands at the frame of the segment that was being filled when it was announced,
 * the one playing at a segment's start is known, and repeats and floods collapse.
 */
import t from 'tap';
import { MAX_PENDING_CHANGES, NowPlayingTimeline } from '../../src/recording/now-playing-timeline.js';

const FRAME = 1024 / 48000;
/** A 1 s segment as the packager cuts it at 48 kHz: 47 frames. */
const SEGMENT = 47 * FRAME;
const T0 = Date.UTC(2026, 10, 21, 23, 15);

t.test('a change lands at the frame of the segment being filled when it was announced', async (t) => {
  const timeline = new NowPlayingTimeline();
  t.same(timeline.segment(T0, SEGMENT, FRAME), { atStart: undefined, changes: [] }, 'nothing known yet');
  // Segment 2 is filled from T0 to T0 + 1002.667 ms; the change comes a quarter of the way in.
  timeline.changed({ title: 'So What', artist: 'Miles Davis' }, T0 + SEGMENT * 250);
  const second = timeline.segment(T0 + SEGMENT * 1000, SEGMENT, FRAME);
  t.equal(second.atStart, undefined);
  t.equal(second.changes.length, 1);
  t.equal(second.changes[0]!.offsetSeconds, 12 * FRAME, 'frame 12 of 47 (a quarter is 11.75): on a frame edge, in audio seconds');
  t.same(second.changes[0]!.text, { title: 'So What', artist: 'Miles Davis' });
  const third = timeline.segment(T0 + SEGMENT * 2000, SEGMENT, FRAME);
  t.same(third, { atStart: { title: 'So What', artist: 'Miles Davis' }, changes: [] }, 'then it plays at the next one\'s start');
});

t.test('the span is the time between publications, so a late or slow publish scales, not shifts, the change', async (t) => {
  const timeline = new NowPlayingTimeline();
  timeline.segment(T0, SEGMENT, FRAME);
  // This segment took 2 s of wall clock to arrive (a stalled feed catching up): half way is half way in its audio.
  timeline.changed({ title: 'Half' }, T0 + 1000);
  const { changes } = timeline.segment(T0 + 2000, SEGMENT, FRAME);
  t.equal(changes[0]!.offsetSeconds, 24 * FRAME, 'frame 24 of 47 (23.5 rounded)');
});

t.test('a change announced before the segment started (read late) starts it; one at its very end takes its last frame', async (t) => {
  const timeline = new NowPlayingTimeline();
  timeline.segment(T0, SEGMENT, FRAME);
  timeline.changed({ title: 'Early' }, T0 - 300);
  t.same(timeline.segment(T0 + 1000, SEGMENT, FRAME).changes, [{ offsetSeconds: 0, text: { title: 'Early' } }]);
  timeline.changed({ title: 'Late' }, T0 + 1999.9);
  t.same(timeline.segment(T0 + 2000, SEGMENT, FRAME).changes, [{ offsetSeconds: 46 * FRAME, text: { title: 'Late' } }]);
});

t.test('a change announced after the segment was published waits for the next one', async (t) => {
  const timeline = new NowPlayingTimeline();
  timeline.segment(T0, SEGMENT, FRAME);
  timeline.changed({ title: 'Next' }, T0 + 1500);
  t.same(timeline.segment(T0 + 1000, SEGMENT, FRAME).changes, []);
  t.same(timeline.segment(T0 + 2000, SEGMENT, FRAME).changes, [{ offsetSeconds: 24 * FRAME, text: { title: 'Next' } }]);
});

t.test('repeats are not changes, several in one frame keep the last, and the first segment after a break spans its own duration', async (t) => {
  const timeline = new NowPlayingTimeline();
  timeline.changed({ title: 'A', artist: 'X' }, T0 - 5000);
  t.same(timeline.segment(T0, SEGMENT, FRAME).changes, [{ offsetSeconds: 0, text: { title: 'A', artist: 'X' } }], 'no span known: the segment spans its duration before its publication');
  timeline.changed({ title: 'A', artist: 'X' }, T0 + 100); // an automation system sending the same again
  timeline.changed({ title: 'B' }, T0 + 500);
  timeline.changed({ title: 'C' }, T0 + 501); // the same frame: C wins
  timeline.changed({ title: 'C' }, T0 + 800);
  const { atStart, changes } = timeline.segment(T0 + SEGMENT * 1000, SEGMENT, FRAME);
  t.same(atStart, { title: 'A', artist: 'X' });
  t.same(changes, [{ offsetSeconds: Math.round(47 * 500 / (SEGMENT * 1000)) * FRAME, text: { title: 'C' } }]);
  timeline.interrupt();
  timeline.changed({ title: 'D' }, T0 + 60_000 - 500);
  t.same(timeline.segment(T0 + 60_000, SEGMENT, FRAME).changes, [{ offsetSeconds: Math.round(47 * (1 - 500 / (SEGMENT * 1000))) * FRAME, text: { title: 'D' } }], 'after a break, the span is the last second, not the minute since');
});

t.test('a flood of changes keeps only the newest few waiting', async (t) => {
  const timeline = new NowPlayingTimeline();
  timeline.segment(T0, SEGMENT, FRAME);
  for (let index = 0; index < 10_000; index++) timeline.changed({ title: `T${index}` }, T0 + 1 + index * 0.09);
  const { changes } = timeline.segment(T0 + 1000, SEGMENT, FRAME);
  t.ok(changes.length <= MAX_PENDING_CHANGES, `${changes.length} changes kept`);
  t.equal(changes.at(-1)!.text.title, 'T9999', 'the last one wins');
});
