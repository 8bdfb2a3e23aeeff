/**
 * The segmenter (src/hls/segmenter.ts) on its own: segments and parts cut on the schedule's
 * frame edges, PTS running on from a start, every rendition cut alike, the discontinuity
 * flag given to one segment, program date time from the first frame's arrival, and a
 * segment ended early by close.
 */
import t from 'tap';
import { SegmentSchedule } from '../../src/hls/segment-schedule.js';
import { Segmenter, type PartCut, type SegmentCut } from '../../src/hls/segmenter.js';
import { ptsAdd } from '../../src/media/pts.js';
import { FrameSource, SAMPLE_RATE } from '../helpers/aac-frames.js';

const FRAME_TICKS = 1920;
const START_PTS = 900_000;
const ARRIVAL = Date.UTC(2024, 5, 1, 12);

function segmenter(segmentSeconds: number, partCount?: number) {
  const schedule = new SegmentSchedule(segmentSeconds, SAMPLE_RATE);
  const cuts: ({ kind: 'part'; part: PartCut } | { kind: 'segment'; segment: SegmentCut })[] = [];
  let now = ARRIVAL;
  const cutter = new Segmenter({
    schedule,
    renditionCount: 2,
    partCount,
    now: () => now,
    onPart: (part) => cuts.push({ kind: 'part', part }),
    onSegment: (segment) => cuts.push({ kind: 'segment', segment }),
  });
  cutter.start(START_PTS);
  const source = new FrameSource();
  const push = (frames: number) => {
    for (let frame = 0; frame < frames; frame++) cutter.push(source.next());
  };
  return { schedule, cuts, cutter, push, setNow: (value: number) => (now = value) };
}

t.test('segments end on the schedule with every rendition’s frames, PTS running on from the start', async (t) => {
  const { schedule, cuts, push } = segmenter(4);
  push(schedule.endFrame(2));
  const segments = cuts.flatMap((cut) => (cut.kind === 'segment' ? [cut.segment] : []));
  t.equal(cuts.length, 3, 'three segments and no part');
  let pts = START_PTS;
  segments.forEach((segment, index) => {
    t.equal(segment.frames!.length, 2, `segment ${index}: both renditions`);
    t.same(
      segment.frames!.map((frames) => frames.length),
      [schedule.frameCount(index), schedule.frameCount(index)],
    );
    t.same(
      segment.frames![1]!.map((frame) => frame.pts),
      segment.frames![0]!.map((frame) => frame.pts),
      `segment ${index}: the renditions share PTS`,
    );
    t.equal(segment.frames![0]![0]!.pts, pts, `segment ${index} starts where the last ended`);
    t.ok(segment.frames![0]!.every((frame, at) => frame.pts === ptsAdd(pts, at * FRAME_TICKS) && frame.durationTicks === FRAME_TICKS));
    pts = ptsAdd(pts, schedule.frameCount(index) * FRAME_TICKS);
    t.equal(segment.endPts, pts, `segment ${index} ends where the next starts`);
    t.equal(segment.durationSeconds, schedule.frameSeconds(schedule.frameCount(index)));
  });
});

t.test('program date time is the first frame’s arrival plus the audio before each segment, whatever the clock does later', async (t) => {
  const { schedule, cuts, cutter, push, setNow } = segmenter(1);
  t.equal(cutter.timelineDriftSeconds(ARRIVAL), undefined, 'no drift before the first frame');
  push(1);
  setNow(ARRIVAL + 60_000);
  push(schedule.endFrame(1) - 1);
  const stamps = cuts.map((cut) => (cut.kind === 'segment' ? cut.segment.programDateTime : Number.NaN));
  t.same(stamps, [ARRIVAL, ARRIVAL + schedule.frameSeconds(schedule.endFrame(0)) * 1000]);
  const drift = cutter.timelineDriftSeconds(ARRIVAL + 1000)!;
  t.ok(Math.abs(drift - (schedule.frameSeconds(schedule.endFrame(1)) - 1)) < 1e-9, `the audio is ${drift.toFixed(3)} s ahead of one second of wall clock`);
});

t.test('a marked discontinuity goes to the next segment only', async (t) => {
  const { schedule, cuts, cutter, push } = segmenter(1);
  push(schedule.endFrame(0));
  cutter.markDiscontinuity();
  push(schedule.endFrame(2) - schedule.endFrame(0));
  t.same(
    cuts.map((cut) => cut.kind === 'segment' && cut.segment.discontinuity),
    [false, true, false],
  );
});

t.test('Low-Latency HLS: parts on frame edges come before the segment they end, which carries no frames of its own', async (t) => {
  const { schedule, cuts, cutter, push } = segmenter(2, 4);
  push(schedule.endFrame(0));
  t.same(
    cuts.map((cut) => (cut.kind === 'part' ? `part ${cut.part.index}` : 'segment')),
    ['part 0', 'part 1', 'part 2', 'part 3', 'segment'],
  );
  const parts = cuts.flatMap((cut) => (cut.kind === 'part' ? [cut.part] : []));
  const ends = schedule.partEnds(0, 4);
  t.same(
    parts.map((part) => part.frames[0]!.length),
    ends.map((end, index) => end - (index === 0 ? 0 : ends[index - 1]!)),
  );
  t.same(
    parts.map((part) => part.frames[0]![0]!.pts),
    ends.map((_, index) => ptsAdd(START_PTS, (index === 0 ? 0 : ends[index - 1]!) * FRAME_TICKS)),
    'each part starts where the previous ended',
  );
  const segment = cuts.at(-1)!;
  t.equal(segment.kind === 'segment' && segment.segment.frames, undefined);
  t.equal(cutter.openSegmentStart().programDateTime, ARRIVAL + schedule.frameSeconds(ends.at(-1)!) * 1000, 'the next segment starts after it');

  cuts.length = 0;
  push(ends[0]! + 5);
  cutter.cutNow();
  t.same(
    cuts.map((cut) => (cut.kind === 'part' ? `part ${cut.part.index}: ${cut.part.frames[0]!.length}` : `segment ${cut.segment.durationSeconds}`)),
    [`part 0: ${ends[0]}`, 'part 1: 5', `segment ${schedule.frameSeconds(ends[0]! + 5)}`],
    'close ends the segment short, its last frames a part of their own',
  );
});
