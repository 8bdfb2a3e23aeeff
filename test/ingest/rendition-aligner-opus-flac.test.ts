/**
 * The aligner with Opus and FLAC renditions (src/ingest/rendition-aligner.ts): FLAC frames are
 * matched 1:1 with the AAC frames by PTS (part of the clock); Opus packets (960 samples) are
 * chunked per 1024-sample group as MP3 frames are, each packet once, in order.
 */
import t from 'tap';
import type { AacFrame } from '../../src/media/adts.js';
import { forEachOpusPacket, silentOpusUnit, type OpusUnit } from '../../src/media/opus.js';
import { silentFlacFrame } from '../../src/media/flac.js';
import { RenditionAligner } from '../../src/ingest/rendition-aligner.js';

const GROUP_TICKS = 1920;
const OPUS_TICKS = 1800;

function aac(pts: number): AacFrame {
  return { data: Uint8Array.of(pts & 0xff), sampleRate: 48000, channelCount: 2, objectType: 2, samples: 1024, pts };
}

function flac(pts: number): AacFrame {
  return { ...silentFlacFrame({ sampleRate: 48000, channelCount: 2, bitsPerSample: 16 }), pts };
}

/** Opus unit k (a distinct one-byte size so chunks show which), at `start` + k × 960 samples. */
function opus(k: number, start: number): OpusUnit {
  const unit = silentOpusUnit(2);
  return { ...unit, data: Uint8Array.of(0x7f, 0xe0, 3 + (k % 50), 0xfc, ...new Uint8Array(2 + (k % 50))), pts: start + k * OPUS_TICKS };
}

t.test('FLAC frames pair with AAC frames by PTS; a FLAC line starting a frame late drops the unpaired AAC frame', async (t) => {
  const aligner = new RenditionAligner(['aac', 'flac']);
  const groups = [
    ...aligner.push(0, Array.from({ length: 10 }, (_, n) => aac(90_000 + n * GROUP_TICKS))),
    ...aligner.push(1, Array.from({ length: 9 }, (_, n) => flac(90_000 + (n + 1) * GROUP_TICKS))),
  ];
  t.equal(groups.length, 9);
  t.ok(groups.every((group) => group[0]!.pts === group[1]!.pts), 'each group one PTS');
  t.equal(aligner.stats.droppedFrames, 1);
});

t.test('Opus packets go to the group their PTS falls in, each once, 16 packets per 15 groups', async (t) => {
  const aligner = new RenditionAligner(['aac', 'opus']);
  const start = 90_000;
  const units = Array.from({ length: 40 }, (_, k) => opus(k, start + 1335)); // the Opus line off the AAC one, as libopus's delay puts it
  const groups = [...aligner.push(1, units), ...aligner.push(0, Array.from({ length: 35 }, (_, n) => aac(start + n * GROUP_TICKS)))];
  t.ok(groups.length >= 30, `${groups.length} groups`);
  const sizes: number[] = [];
  for (const [index, group] of groups.entries()) {
    const inGroup: number[] = [];
    forEachOpusPacket(group[1]!.data, (packet) => inGroup.push(packet.length));
    t.ok(inGroup.length === 1 || inGroup.length === 2, `group ${index}: ${inGroup.length} packets`);
    t.equal(group[1]!.pts, group[0]!.pts, 'the chunk carries the group PTS');
    sizes.push(...inGroup);
  }
  const first = sizes[0]! - 3;
  t.same(sizes, sizes.map((_, k) => 3 + ((first + k) % 50)), 'every packet once, in order');
  const perFifteen = groups.slice(0, 15).reduce((count, group) => {
    let packets = 0;
    forEachOpusPacket(group[1]!.data, () => (packets += 1));
    return count + packets;
  }, 0);
  t.ok(perFifteen === 16 || perFifteen === 15, `${perFifteen} packets in 15 groups`);
});
