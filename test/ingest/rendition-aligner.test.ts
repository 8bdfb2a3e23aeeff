/**
 * Pairing the renditions of one encoder into frame groups (src/ingest/rendition-aligner.ts):
 * frames with the same PTS go together, frames without a partner are dropped and counted,
 * the 33-bit PTS wrap is crossed, and a stuck rendition cannot grow memory without bound.
 */
import t from 'tap';
import { RenditionAligner } from '../../src/ingest/rendition-aligner.js';
import { buildAdtsHeader, type AacFrame } from '../../src/media/adts.js';
import { MP3_OBJECT_TYPE, parseMpegAudioHeader, silentMp3Frame, type MpegAudioFrame } from '../../src/media/mpeg-audio.js';
import { PTS_WRAP, ptsAdd, ptsDelta, samplesToTicks } from '../../src/media/pts.js';

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

// MP3 renditions (docs/architecture.md, "MP3 renditions"): chunks of 1152-sample frames on the AAC grid.

/** `count` MP3 frames at `sampleRate`, 1152 samples apart from `firstPts`; frame k carries k in its main data. */
function mp3Frames(firstPts: number, count: number, sampleRate = 48000, firstIndex = 0): MpegAudioFrame[] {
  const silent = silentMp3Frame(sampleRate, 2, 128000);
  return Array.from({ length: count }, (_, index) => {
    const data = Uint8Array.from(silent.data);
    new DataView(data.buffer).setUint32(40, firstIndex + index);
    return { data, sampleRate, channelCount: 2, samples: 1152, pts: ptsAdd(firstPts, samplesToTicks((firstIndex + index) * 1152, sampleRate)) };
  });
}

/** The MP3 frame numbers a chunk carries. */
function frameNumbers(chunk: AacFrame): number[] {
  const numbers: number[] = [];
  const view = new DataView(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
  for (let offset = 0; offset < chunk.data.length; offset += parseMpegAudioHeader(chunk.data, offset)!.frameLength) numbers.push(view.getUint32(offset + 40));
  return numbers;
}

/** AAC frames of one rendition at `sampleRate`. */
function aacFrames(firstPts: number, count: number, sampleRate: number): AacFrame[] {
  return frames(0, firstPts, count).map((frame, index) => ({ ...frame, sampleRate, pts: ptsAdd(firstPts, samplesToTicks(index * 1024, sampleRate)) }));
}

t.test('an MP3 rendition gets in each group the frames that start within its 1024 samples, each frame once', async (t) => {
  // MP3 frames start `offset` ticks after the first AAC frame (LAME's delay differs from AAC's).
  for (const sampleRate of [48000, 44100]) {
    for (const offset of [0, 1, 700, samplesToTicks(1023, sampleRate), samplesToTicks(1100, sampleRate)]) {
      const aligner = new RenditionAligner(['aac', 'mp3']);
      const groups: AacFrame[][] = [];
      const aac = aacFrames(90000, 200, sampleRate);
      const mp3 = mp3Frames(90000 + offset, 180, sampleRate);
      // In PES-sized pieces, interleaved as FFmpeg writes them.
      for (let piece = 0; piece < 20; piece++) {
        groups.push(...aligner.push(0, aac.slice(piece * 10, piece * 10 + 10)));
        groups.push(...aligner.push(1, mp3.slice(piece * 9, piece * 9 + 9)));
      }
      const label = `${sampleRate} Hz, MP3 ${offset} ticks later`;
      const carried = groups.flatMap((group) => frameNumbers(group[1]!));
      t.same(carried, Array.from({ length: carried.length }, (_, index) => index), `${label}: every frame once, in order`);
      const groupTicks = (1024 * 90000) / sampleRate;
      const lastEnd = ptsDelta(90000, groups.at(-1)![0]!.pts!) + groupTicks;
      t.ok(groups.length >= 198, `${label}: groups up to the last AAC frames (${groups.length})`);
      t.equal(carried.length, mp3.filter((frame) => ptsDelta(90000, frame.pts!) < lastEnd).length, `${label}: every frame up to the last group's end`);
      const misplaced = groups.filter((group) =>
        frameNumbers(group[1]!).some((k) => {
          const delta = ptsDelta(group[0]!.pts!, mp3[k]!.pts!);
          return delta < -1 || delta > groupTicks + 1;
        }),
      );
      t.equal(misplaced.length, 0, `${label}: a frame is in the group whose span holds its PTS`);
      t.ok(groups.every((group) => group[1]!.objectType === MP3_OBJECT_TYPE && group[1]!.pts === group[0]!.pts && group[1]!.sampleRate === sampleRate), label);
      t.equal(aligner.stats.droppedFrames, offset >= groupTicks ? 1 : 0, `${label}: only an AAC group before the MP3 line starts is dropped`);
    }
  }
});

t.test("an MP3 chunk is final only once a later MP3 frame is queued: the group waits for it", async (t) => {
  const aligner = new RenditionAligner(['aac', 'mp3', 'aac']);
  const mp3 = mp3Frames(90000 + 100, 10);
  t.same(aligner.push(0, frames(0, 90000, 10)), []);
  t.same(aligner.push(2, frames(2, 90000, 10)), []);
  // Frames at 100, 2260, 4420: groups 0 and 1 (to 3840) have a later frame queued; group 2 (3840-5760) does not.
  const groups = aligner.push(1, mp3.slice(0, 3));
  t.same(groups.map((group) => frameNumbers(group[1]!)), [[0], [1]]);
  t.ok(groups.every((group) => renditionOf(group[0]!) === 0 && renditionOf(group[2]!) === 2), 'AAC renditions keep their slots');
  // Frames at 6580 and 8740: groups 2 and 3 (to 7680) are final; group 4 (7680-9600) waits.
  t.same(aligner.push(1, mp3.slice(3, 5)).map((group) => frameNumbers(group[1]!)), [[2], [3]]);
  t.same(aligner.push(1, mp3.slice(5, 6)).map((group) => frameNumbers(group[1]!)), [[4]], 'frame 5 (10900) makes group 4 final');
});

t.test('MP3 frames before the first AAC group are dropped; an empty chunk stands for a group without an MP3 frame', async (t) => {
  const aligner = new RenditionAligner(['aac', 'mp3']);
  const mp3 = mp3Frames(90000 - 3 * 2160, 30);
  const groups = [...aligner.push(1, mp3), ...aligner.push(0, frames(0, 90000, 20))];
  t.equal(aligner.stats.droppedFrames, 3, 'the three frames before the AAC line');
  t.same(frameNumbers(groups[0]!.at(1)!), [3]);
  t.ok(groups.some((group) => group[1]!.data.length === 0), '1152 > 1024: some groups have no MP3 frame');
  t.equal(groups.filter((group) => group[1]!.data.length === 0).length, Math.floor(groups.length / 9), 'one in nine at 48 kHz');
});

t.test('with two MP3 renditions a group waits for both, and reset() starts a new line for them too', async (t) => {
  const aligner = new RenditionAligner(['mp3', 'aac', 'mp3']);
  t.same(aligner.push(1, frames(1, 90000, 20)), []);
  t.same(aligner.push(0, mp3Frames(90000, 20)), [], 'the other MP3 rendition has nothing yet');
  const groups = aligner.push(2, mp3Frames(90000, 20));
  t.equal(groups.length, 20);
  t.ok(groups.every((group) => frameNumbers(group[0]!).join() === frameNumbers(group[2]!).join() && renditionOf(group[1]!) === 1));
  aligner.reset();
  const again = [...aligner.push(1, frames(1, 5_000_000, 10)), ...aligner.push(0, mp3Frames(5_000_000, 10)), ...aligner.push(2, mp3Frames(5_000_000, 10))];
  t.equal(again.length, 10);
  t.same(frameNumbers(again[0]![0]!), [0]);
});

t.test('a stuck MP3 rendition holds the AAC ones to a bounded queue', async (t) => {
  const aligner = new RenditionAligner(['aac', 'mp3']);
  for (let index = 0; index < 100; index++) aligner.push(0, frames(0, 90000 + index * 10 * FRAME_TICKS, 10));
  t.equal(aligner.stats.groups, 0);
  t.ok(aligner.stats.droppedFrames >= 1000 - 470, 'the oldest AAC frames are dropped');
});

t.test('flush() ends the stream: the last MP3 chunks are final without a later frame', async (t) => {
  const aligner = new RenditionAligner(['aac', 'mp3']);
  const groups = [...aligner.push(0, frames(0, 90000, 9)), ...aligner.push(1, mp3Frames(90000, 8))];
  t.equal(groups.length, 7, 'group 7 holds frame 7 and waits for frame 8');
  const last = aligner.flush();
  t.same(last.map((group) => frameNumbers(group[1]!)), [[7]], 'at the end it goes out; the AAC group after it has no MP3 to go with');
  t.same(aligner.flush(), [], 'nothing more');
  t.same(aligner.push(0, frames(0, 90000 + 9 * FRAME_TICKS, 2)), [], 'and pushing again waits as before');
});
