/**
 * Segment boundaries on the sample-count timeline (src/hls/segment-schedule.ts): whole AAC
 * frames, lengths within one frame of nominal, no drift over time, and a target duration
 * that honours RFC 8216 §4.3.3.1 (every EXTINF rounded ≤ EXT-X-TARGETDURATION).
 */
import t from 'tap';
import { SAMPLES_PER_FRAME, SegmentSchedule } from '../../src/hls/segment-schedule.js';

const SEGMENTS = 1000;

function frameCounts(schedule: SegmentSchedule, count = SEGMENTS): number[] {
  return Array.from({ length: count }, (_, index) => schedule.frameCount(index));
}

/** EXTINF as a player sees it: the 5-decimal text the playlist writer prints, rounded to the nearest integer. */
function roundedExtinf(schedule: SegmentSchedule, frames: number): number {
  return Math.round(Number(schedule.frameSeconds(frames).toFixed(5)));
}

t.test('at 48 kHz and 4 s every segment holds 187 or 188 frames', async (t) => {
  const schedule = new SegmentSchedule(4, 48000);
  const counts = frameCounts(schedule);
  t.same([...new Set(counts)].sort(), [187, 188]);
  t.equal(schedule.frameSeconds(187), (187 * 1024) / 48000);
  t.equal(schedule.frameSeconds(188), (188 * 1024) / 48000);
  t.equal(schedule.maxFrameCount(), 188);
});

t.test('over 1000 segments the timeline never drifts more than one frame from the nominal duration', async (t) => {
  for (const [segmentSeconds, sampleRate] of [
    [4, 48000],
    [4, 44100],
    [1, 48000],
    [2, 44100],
    [6, 48000],
    [0.5, 44100],
    [3.3, 48000],
  ] as const) {
    const schedule = new SegmentSchedule(segmentSeconds, sampleRate);
    const frameSeconds = SAMPLES_PER_FRAME / sampleRate;
    let frames = 0;
    let worstDrift = 0;
    for (let index = 0; index < SEGMENTS; index++) {
      frames += schedule.frameCount(index);
      worstDrift = Math.max(worstDrift, Math.abs(schedule.frameSeconds(frames) - (index + 1) * segmentSeconds));
    }
    t.ok(worstDrift <= frameSeconds, `${segmentSeconds} s at ${sampleRate} Hz: worst drift ${worstDrift.toFixed(6)} s ≤ one frame`);
    t.ok(Math.abs(schedule.frameSeconds(frames) - SEGMENTS * segmentSeconds) <= frameSeconds, `after ${SEGMENTS} segments`);
  }
});

t.test('segment boundaries fall on frame edges and follow each other without gap or overlap', async (t) => {
  const schedule = new SegmentSchedule(4, 44100);
  let previousEnd = 0;
  for (let index = 0; index < SEGMENTS; index++) {
    const end = schedule.endFrame(index);
    if (!Number.isInteger(end) || end - previousEnd !== schedule.frameCount(index)) {
      t.fail(`segment ${index} ends at frame ${end}, after ${previousEnd}, with ${schedule.frameCount(index)} frames`);
      return;
    }
    previousEnd = end;
  }
  t.pass('1000 segments tile the timeline on whole frames');
});

t.test('segments at common durations hold whole frames within one frame of nominal', async (t) => {
  const cases: { segmentSeconds: number; sampleRate: number; frames: number[]; targetDuration: number }[] = [
    { segmentSeconds: 4, sampleRate: 48000, frames: [187, 188], targetDuration: 4 },
    { segmentSeconds: 4, sampleRate: 44100, frames: [172, 173], targetDuration: 4 },
    { segmentSeconds: 1, sampleRate: 48000, frames: [46, 47], targetDuration: 1 },
    { segmentSeconds: 1, sampleRate: 44100, frames: [43, 44], targetDuration: 1 },
    { segmentSeconds: 2, sampleRate: 48000, frames: [93, 94], targetDuration: 2 },
    { segmentSeconds: 2, sampleRate: 44100, frames: [86, 87], targetDuration: 2 },
    { segmentSeconds: 6, sampleRate: 48000, frames: [281, 282], targetDuration: 6 },
    { segmentSeconds: 6, sampleRate: 44100, frames: [258, 259], targetDuration: 6 },
    { segmentSeconds: 0.5, sampleRate: 48000, frames: [23, 24], targetDuration: 1 },
    { segmentSeconds: 0.5, sampleRate: 44100, frames: [21, 22], targetDuration: 1 },
  ];
  for (const { segmentSeconds, sampleRate, frames, targetDuration } of cases) {
    const schedule = new SegmentSchedule(segmentSeconds, sampleRate);
    const seen = [...new Set(frameCounts(schedule))].sort((a, b) => a - b);
    t.same(seen, frames, `${segmentSeconds} s at ${sampleRate} Hz: segments of ${frames.join(' or ')} frames`);
    t.equal(schedule.targetDuration(), targetDuration, `${segmentSeconds} s at ${sampleRate} Hz: target duration ${targetDuration}`);
  }
});

t.test('the target duration is an integer ≥ every EXTINF rounded, and never below 1', async (t) => {
  for (const sampleRate of [44100, 48000]) {
    // Every segment duration the config accepts (0.5 s to 12 s), in 10 ms steps.
    for (let centiseconds = 50; centiseconds <= 1200; centiseconds += 1) {
      const schedule = new SegmentSchedule(centiseconds / 100, sampleRate);
      const targetDuration = schedule.targetDuration();
      const counts = frameCounts(schedule, 200);
      const longest = Math.max(...counts.map((frames) => roundedExtinf(schedule, frames)));
      if (!Number.isInteger(targetDuration) || targetDuration < 1 || longest > targetDuration || counts.some((frames) => frames > schedule.maxFrameCount())) {
        t.fail(`${centiseconds / 100} s at ${sampleRate} Hz: target duration ${targetDuration}, longest EXTINF rounds to ${longest}`);
        return;
      }
    }
  }
  t.pass('holds for every duration from 0.5 s to 12 s at 44.1 and 48 kHz');
});

t.test('the target duration is not inflated: it is the longest segment rounded', async (t) => {
  const schedule = new SegmentSchedule(4, 48000);
  t.equal(schedule.targetDuration(), Math.max(...frameCounts(schedule).map((frames) => roundedExtinf(schedule, frames))));
});

t.test('even a very short segment duration gives a target duration of at least 1 and segments of at least one frame', async (t) => {
  const schedule = new SegmentSchedule(0.01, 48000);
  t.equal(schedule.targetDuration(), 1);
  t.ok(frameCounts(schedule, 100).every((frames) => frames >= 1));
});
