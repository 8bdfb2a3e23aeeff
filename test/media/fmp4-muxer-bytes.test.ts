/**
 * Golden bytes of the fMP4 muxer (src/media/fmp4-muxer.ts): the chunks it writes for fixed,
 * synthetic input (AAC segments and LL-HLS parts with timed metadata, a PTS jump, empty calls;
 * MP3 chunks whose samples differ in duration, so trun carries each one) hashed together. The
 * hashes were taken from the muxer as it was before it wrote its moof in place (commit 9a9fd25,
 * box by box), so a change to how chunks are written cannot change one byte unnoticed.
 * docs/architecture.md, "CMAF container".
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { buildAdtsHeader } from '../../src/media/adts.js';
import { Fmp4Muxer, formatFor, moofBox, type Fmp4MuxerOptions } from '../../src/media/fmp4-muxer.js';
import { silentMp3Frame } from '../../src/media/mpeg-audio.js';
import type { TimedFrame, TimedMetadata } from '../../src/media/muxer.js';

const AAC_TICKS = 1920; // 1024 samples at 48 kHz

/** An ADTS frame whose payload's length and bytes follow from `index`. */
function adtsFrame(index: number): Uint8Array {
  const payloadLength = 60 + ((index * 37) % 700);
  const header = buildAdtsHeader({ sampleRate: 48000, channelCount: 2, objectType: 2, payloadLength });
  const frame = new Uint8Array(header.length + payloadLength);
  frame.set(header);
  for (let at = header.length; at < frame.length; at += 1) frame[at] = (index * 31 + at) & 0xff;
  return frame;
}

const aacFrames: TimedFrame[] = Array.from({ length: 1200 }, (_, index) => ({ data: adtsFrame(index), pts: index * AAC_TICKS, durationTicks: AAC_TICKS }));

/** The muxer's chunks for `frames` cut into runs of `sizes` (in turn), metadata on every third, the PTS jumping by 12345 ticks from the `jumpAt`th run, an empty call every 7 runs; then the init segment. */
function muxAll(options: Fmp4MuxerOptions, frames: readonly TimedFrame[], sizes: readonly number[], jumpAt: number): { sha256: string; bytes: number } {
  const muxer = new Fmp4Muxer(options);
  const hash = createHash('sha256');
  let bytes = 0;
  const take = (chunk: Uint8Array): void => {
    hash.update(chunk);
    bytes += chunk.length;
  };
  for (let start = 0, run = 0; start < frames.length; run += 1) {
    const count = sizes[run % sizes.length]!;
    const slice = frames.slice(start, start + count).map((frame) => ({ ...frame, pts: frame.pts + (run >= jumpAt ? 12345 : 0) }));
    const metadata: TimedMetadata[] = run % 3 === 0 && slice.length > 0
      ? [{ pts: slice[0]!.pts + 10, nowPlaying: { title: `title ${run}`, artist: 'artist é', setAt: run } }, { pts: slice[0]!.pts + 900, nowPlaying: { title: 'second', setAt: 0 } }]
      : [];
    take(muxer.muxSegment(slice, metadata));
    if (run % 7 === 6) take(muxer.muxSegment([]));
    start += count;
  }
  take(muxer.initSegment());
  return { sha256: hash.digest('hex'), bytes };
}

t.test('AAC segments and LL-HLS parts, with emsg, jumps and empty chunks, are byte for byte as before', async (t) => {
  t.same(muxAll({}, aacFrames, [188, 187], 4), { sha256: '45527c0d87ab45b29cf1dfcefc79397f79ee98b4f3516860e4743bc22ce920c5', bytes: 496293 });
  t.same(muxAll({ format: formatFor('aac', 48000, 2)! }, aacFrames, [24, 23, 0, 1], 30), { sha256: 'd7bab36aaa25b56345f52b7613a7f5d41aae7920d508a0c30172d95fd2344855', bytes: 511341 });
  t.same(muxAll({ timedMetadata: false }, aacFrames, [50], 10), { sha256: '1928cb80bf9a604b7ca9411fe4ef061ce973ef0ce61b0905ebf2419cb04d8e3d', bytes: 497588 });
});

t.test('MP3 chunks of one or two frames of 1152 or 576 samples (a trun with a duration per sample) are byte for byte as before', async (t) => {
  const long = [silentMp3Frame(48000, 2, 128_000), silentMp3Frame(48000, 2, 192_000)];
  const short = silentMp3Frame(24000, 2, 64_000);
  const frames: TimedFrame[] = Array.from({ length: 600 }, (_, index) => {
    const parts = index % 5 === 2 ? [long[0]!.data, short.data] : index % 3 === 0 ? [long[index % 2]!.data] : [long[1]!.data, long[0]!.data];
    const data = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
    parts.reduce((offset, part) => (data.set(part, offset), offset + part.length), 0);
    return { data, pts: index * AAC_TICKS, durationTicks: AAC_TICKS };
  });
  t.same(muxAll({ codec: 'mp3' }, frames, [80, 3, 1], 5), { sha256: '69f7646c6b290de3cd98bb73e773ac56d9d5b0310750b2f8c428a7ce0e7c09db', bytes: 465960 });
});

t.test('moofBox refuses numbers its fields cannot hold', async (t) => {
  t.throws(() => moofBox(2 ** 32, 0, []), RangeError);
  t.throws(() => moofBox(1, -1, []), RangeError);
  t.throws(() => moofBox(1, 2 ** 53, []), RangeError);
});
