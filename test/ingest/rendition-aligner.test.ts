/**
 * Pairing the renditions of one encoder into frame groups (src/ingest/rendition-aligner.ts):
 * frames with the same PTS go together, frames without a partner are dropped and counted,
 * the 33-bit PTS wrap is crossed, and a stuck rendition cannot grow memory without bound.
 */
import t from 'tap';
import { RenditionAligner } from '../../src/ingest/rendition-aligner.js';
import { buildAdtsHeader, type AacFrame } from '../../src/media/adts.js';
import { PTS_WRAP, ptsAdd, samplesToTicks } from '../../src/media/pts.js';

const FRAME_TICKS = samplesToTicks(1024, 48000); // 1920

/** `count` frames of rendition `rendition` (its frame size tells renditions apart), PTS from `firstPts`. */
function frames(rendition: number, firstPts: number, count: number): AacFrame[] {
  const frameBytes = 20 + rendition * 10;
  return Array.from({ length: count }, (_, index) => {
    const data = new Uint8Array(frameBytes);
    data.set(buildAdtsHeader({ sampleRate: 48000, channelCount: 2, objectType: 2, payloadLength: frameBytes - 7 }));
    return { data, sampleRate: 48000, channelCount: 2, objectType: 2, samples: 1024, pts: ptsAdd(firstPts, index * FRAME_TICKS) };
  });
}

function renditionOf(frame: AacFrame): number {
  return (frame.data.length - 20) / 10;
}

/** Checks that every group holds one frame per rendition, in rendition order, all with the same PTS. */
function wellFormed(groups: AacFrame[][], renditionCount: number): boolean {
  return groups.every(
    (group) =>
      group.length === renditionCount &&
      group.every((frame, index) => renditionOf(frame) === index && frame.pts === group[0]!.pts),
  );
}

t.test('frames with equal PTS are paired into one group per frame, in rendition order', async (t) => {
  const aligner = new RenditionAligner(3);
  const groups: AacFrame[][] = [];
  // Chunks arrive per rendition, in any order and size, as the demuxer hands out PES packets.
  groups.push(...aligner.push(0, frames(0, 90000, 10)));
  t.same(groups, [], 'nothing is complete until every rendition has the frame');
  groups.push(...aligner.push(2, frames(2, 90000, 4)));
  groups.push(...aligner.push(1, frames(1, 90000, 7)));
  t.equal(groups.length, 4);
  groups.push(...aligner.push(2, frames(2, 90000 + 4 * FRAME_TICKS, 6)));
  groups.push(...aligner.push(1, frames(1, 90000 + 7 * FRAME_TICKS, 3)));
  t.equal(groups.length, 10);
  t.ok(wellFormed(groups, 3));
  t.same(
    groups.map((group) => group[0]!.pts),
    Array.from({ length: 10 }, (_, index) => 90000 + index * FRAME_TICKS),
  );
  t.same(aligner.stats, { groups: 10, droppedFrames: 0 });
});

t.test('PTS within half a frame of each other still pair', async (t) => {
  const aligner = new RenditionAligner(2);
  const late = frames(1, 90000 + 900, 5); // 900 ticks < half a frame (960)
  const groups = [...aligner.push(0, frames(0, 90000, 5)), ...aligner.push(1, late)];
  t.equal(groups.length, 5);
  t.equal(aligner.stats.droppedFrames, 0);
});

t.test('a rendition that starts later drops the earlier frames of the others', async (t) => {
  const aligner = new RenditionAligner(3);
  const groups = [
    ...aligner.push(0, frames(0, 90000, 20)),
    ...aligner.push(1, frames(1, 90000 + 2 * FRAME_TICKS, 18)),
    ...aligner.push(2, frames(2, 90000 + 5 * FRAME_TICKS, 15)),
  ];
  t.equal(groups.length, 15);
  t.ok(wellFormed(groups, 3));
  t.equal(groups[0]![0]!.pts, 90000 + 5 * FRAME_TICKS, 'the first group is the first frame every rendition has');
  t.same(aligner.stats, { groups: 15, droppedFrames: 5 + 3 });
});

t.test('a rendition whose first frames arrive first but start later still pairs from the common start', async (t) => {
  const aligner = new RenditionAligner(2);
  const groups = [...aligner.push(1, frames(1, 90000 + 3 * FRAME_TICKS, 10)), ...aligner.push(0, frames(0, 90000, 13))];
  t.equal(groups.length, 10);
  t.ok(wellFormed(groups, 2));
  t.equal(groups[0]![0]!.pts, 90000 + 3 * FRAME_TICKS);
  t.equal(aligner.stats.droppedFrames, 3);
});

t.test('a frame lost from one rendition costs one group, and pairing carries on', async (t) => {
  const aligner = new RenditionAligner(2);
  const withGap = frames(1, 90000, 10).filter((_, index) => index !== 4);
  const groups = [...aligner.push(0, frames(0, 90000, 10)), ...aligner.push(1, withGap)];
  t.equal(groups.length, 9);
  t.ok(wellFormed(groups, 2));
  t.notOk(groups.some((group) => group[0]!.pts === 90000 + 4 * FRAME_TICKS));
  t.equal(aligner.stats.droppedFrames, 1);
});

t.test('frames without a PTS are dropped and counted', async (t) => {
  const aligner = new RenditionAligner(2);
  const untimed = frames(1, 90000, 3).map(({ pts: _pts, ...frame }) => frame);
  t.same(aligner.push(1, untimed), []);
  t.equal(aligner.stats.droppedFrames, 3);
});

t.test('pairing continues across the 33-bit PTS wrap', async (t) => {
  const aligner = new RenditionAligner(2);
  const firstPts = PTS_WRAP - 10 * FRAME_TICKS - 500;
  const groups: AacFrame[][] = [];
  // Rendition 1 starts two frames later; the wrap happens in the middle of the chunks.
  for (let chunk = 0; chunk < 4; chunk++) {
    groups.push(...aligner.push(0, frames(0, ptsAdd(firstPts, chunk * 8 * FRAME_TICKS), 8)));
    groups.push(...aligner.push(1, frames(1, ptsAdd(firstPts, (2 + chunk * 8) * FRAME_TICKS), 8)));
  }
  t.equal(groups.length, 30);
  t.ok(wellFormed(groups, 2));
  t.ok(groups.some((group) => group[0]!.pts! > PTS_WRAP - FRAME_TICKS * 2), 'groups before the wrap');
  t.ok(groups.some((group) => group[0]!.pts! < FRAME_TICKS * 2), 'groups after the wrap');
  t.ok(
    groups.every((group, index) => index === 0 || group[0]!.pts === ptsAdd(groups[index - 1]![0]!.pts!, FRAME_TICKS)),
    'one frame after another, across the wrap',
  );
  t.equal(aligner.stats.droppedFrames, 2);
});

t.test('a rendition that starts just after the wrap pairs with one that started just before', async (t) => {
  const aligner = new RenditionAligner(2);
  const firstPts = PTS_WRAP - 3 * FRAME_TICKS;
  const groups = [...aligner.push(0, frames(0, firstPts, 10)), ...aligner.push(1, frames(1, ptsAdd(firstPts, 3 * FRAME_TICKS), 7))];
  t.equal(groups[0]![0]!.pts, 0);
  t.equal(groups.length, 7);
  t.ok(wellFormed(groups, 2));
});

t.test('a stuck rendition holds a bounded number of frames and pairing resumes when it comes back', async (t) => {
  const aligner = new RenditionAligner(2);
  let groups = 0;
  // Rendition 0 runs on for a minute while rendition 1 sends nothing.
  for (let chunk = 0; chunk < 60; chunk++) groups += aligner.push(0, frames(0, 90000 + chunk * 50 * FRAME_TICKS, 50)).length;
  t.equal(groups, 0);
  t.ok(aligner.stats.droppedFrames >= 3000 - 500, `${aligner.stats.droppedFrames} of 3000 frames dropped: at most ~10 s are kept`);
  // Rendition 1 comes back in step with the live edge.
  const resumed = aligner.push(1, frames(1, 90000 + 2990 * FRAME_TICKS, 10));
  t.equal(resumed.length, 10);
  t.ok(wellFormed(resumed, 2));
  t.equal(aligner.stats.droppedFrames, 2990, 'everything before the live edge was dropped, and counted');
});

t.test('reset() starts a new PTS line, for a restarted encoder', async (t) => {
  const aligner = new RenditionAligner(2);
  aligner.push(0, frames(0, 5_000_000, 5));
  aligner.reset();
  const groups = [...aligner.push(0, frames(0, 1000, 4)), ...aligner.push(1, frames(1, 1000, 4))];
  t.equal(groups.length, 4);
  t.ok(wellFormed(groups, 2));
  t.equal(groups[0]![0]!.pts, 1000);
});
