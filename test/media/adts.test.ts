import t from 'tap';
import { AdtsReader, type AacFrame, buildAdtsHeader, parseAdtsHeader, sampleRateIndex } from '../../src/media/adts.js';
import { PTS_WRAP } from '../../src/media/pts.js';

/** A 48 kHz stereo AAC-LC frame: 7-byte header, then `payloadLength` bytes that never hold 0xFF. */
function lcFrame(payloadLength: number, seed = 0, sampleRate = 48000): Uint8Array {
  const header = buildAdtsHeader({ sampleRate, channelCount: 2, objectType: 2, payloadLength });
  const frame = new Uint8Array(header.length + payloadLength);
  frame.set(header);
  for (let index = 0; index < payloadLength; index++) frame[header.length + index] = (seed * 31 + index) % 200;
  return frame;
}

/** The same frame with a 9-byte header (protection_absent = 0) and a CRC word. */
function crcFrame(payloadLength: number): Uint8Array {
  const frame = new Uint8Array(9 + payloadLength);
  const view = new DataView(frame.buffer);
  view.setUint16(0, 0xfff0); // syncword, MPEG-4, layer 0, protection_absent 0
  view.setUint8(2, (1 << 6) | (3 << 2)); // profile LC, 48 kHz, private 0, channel_configuration bit 2 = 0
  view.setUint32(3, ((2 << 30) | (frame.length << 13) | (0x7ff << 2)) >>> 0); // stereo, frame_length, fullness
  view.setUint16(7, 0xbeef); // crc_check (not verified)
  return frame;
}

function joined(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function hexes(frames: AacFrame[]): string[] {
  return frames.map((frame) => Buffer.from(frame.data).toString('hex'));
}

t.test('parses a known 48 kHz stereo AAC-LC header', async (t) => {
  // Header written by FFmpeg's ADTS muxer for a 371-byte frame.
  const bytes = Uint8Array.from(Buffer.from('fff14c802e7ffc', 'hex'));
  t.same(parseAdtsHeader(bytes, 0), {
    mpegVersion: 4,
    objectType: 2,
    samplingIndex: 3,
    sampleRate: 48000,
    channelConfiguration: 2,
    channelCount: 2,
    protectionAbsent: true,
    headerLength: 7,
    frameLength: 371,
    bufferFullness: 0x7ff,
    rawDataBlocks: 1,
    samples: 1024,
  });
});

t.test('parses a header with CRC as 9 bytes long', async (t) => {
  const header = parseAdtsHeader(crcFrame(100), 0);
  t.equal(header?.protectionAbsent, false);
  t.equal(header?.headerLength, 9);
  t.equal(header?.frameLength, 109);
  t.equal(header?.sampleRate, 48000);
  t.equal(header?.channelCount, 2);
});

t.test('rejects bytes that cannot be an ADTS header', async (t) => {
  const good = Uint8Array.from(Buffer.from('fff14c802e7ffc', 'hex'));
  const variant = (index: number, value: number) => Uint8Array.from(good, (byte, at) => (at === index ? value : byte));
  t.equal(parseAdtsHeader(variant(0, 0xfe), 0), null, 'syncword');
  t.equal(parseAdtsHeader(variant(1, 0xf3), 0), null, 'layer must be 0');
  t.equal(parseAdtsHeader(variant(2, (1 << 6) | (13 << 2)), 0), null, 'reserved sampling index 13');
  t.equal(parseAdtsHeader(variant(2, (1 << 6) | (15 << 2)), 0), null, 'explicit rate 15 not allowed');
  t.equal(parseAdtsHeader(Uint8Array.from(Buffer.from('fff14c8000dffc', 'hex')), 0), null, 'frame_length 6 < 7');
  t.equal(parseAdtsHeader(good.subarray(0, 6), 0), null, 'too short');
  t.equal(parseAdtsHeader(good, 1), null, 'offset past the sync');
});

t.test('buildAdtsHeader round-trips through parseAdtsHeader', async (t) => {
  for (const sampleRate of [96000, 48000, 44100, 32000, 22050, 8000]) {
    for (const channelCount of [1, 2, 6, 8]) {
      const header = buildAdtsHeader({ sampleRate, channelCount, objectType: 2, payloadLength: 500 });
      t.equal(header.length, 7);
      const parsed = parseAdtsHeader(header, 0);
      t.match(parsed, { sampleRate, channelCount, objectType: 2, frameLength: 507, headerLength: 7, samples: 1024 });
    }
  }
  t.equal(sampleRateIndex(44100), 4);
  t.equal(sampleRateIndex(12345), -1);
  t.throws(() => buildAdtsHeader({ sampleRate: 12345, channelCount: 2, objectType: 2, payloadLength: 1 }), RangeError);
  t.throws(() => buildAdtsHeader({ sampleRate: 48000, channelCount: 2, objectType: 2, payloadLength: 8185 }), RangeError);
});

t.test('reads back-to-back frames from one chunk and stamps PTS by sample count', async (t) => {
  const reader = new AdtsReader();
  const frames = reader.push(joined(lcFrame(300, 1), lcFrame(310, 2), lcFrame(290, 3)), 1000);
  t.same(frames.map((frame) => frame.pts), [1000, 2920, 4840]);
  t.same(frames.map((frame) => frame.data.length), [307, 317, 297]);
  t.match(frames[0], { sampleRate: 48000, channelCount: 2, objectType: 2, samples: 1024 });
  t.same(reader.stats, { frames: 3, skippedBytes: 0, resyncs: 0 });
});

t.test('PTS at 44.1 kHz follows the exact sample count, and wraps at 2^33', async (t) => {
  const reader = new AdtsReader();
  const frames = reader.push(joined(lcFrame(200, 1, 44100), lcFrame(200, 2, 44100), lcFrame(200, 3, 44100)), PTS_WRAP - 3000);
  t.same(frames.map((frame) => frame.pts), [PTS_WRAP - 3000, PTS_WRAP - 911, 1179]);
});

t.test('frames split across pushes come out whole and identical', async (t) => {
  const stream = joined(...Array.from({ length: 12 }, (_, index) => lcFrame(100 + index * 37, index)));
  const whole = hexes(new AdtsReader().push(stream));
  const reader = new AdtsReader();
  const pieces: AacFrame[] = [];
  for (let offset = 0, step = 1; offset < stream.length; offset += step, step = (step % 7) + 1) {
    pieces.push(...reader.push(stream.subarray(offset, offset + step)));
  }
  t.equal(whole.length, 12);
  t.same(hexes(pieces), whole);
  t.equal(reader.stats.skippedBytes, 0);
});

t.test('a frame continued from the previous chunk keeps that chunk’s timeline; the next one takes the new PTS', async (t) => {
  const first = lcFrame(300, 1);
  const second = lcFrame(300, 2);
  const third = lcFrame(300, 3);
  const reader = new AdtsReader();
  const fromA = reader.push(joined(first, second.subarray(0, 100)), 90000);
  const fromB = reader.push(joined(second.subarray(100), third), 500000);
  t.same(fromA.map((frame) => frame.pts), [90000]);
  t.same(fromB.map((frame) => frame.pts), [91920, 500000]);
});

t.test('frames with a CRC header are read whole', async (t) => {
  const reader = new AdtsReader();
  const frames = reader.push(joined(crcFrame(120), crcFrame(80), crcFrame(99)), 0);
  t.same(frames.map((frame) => frame.data.length), [129, 89, 108]);
  t.same(frames.map((frame) => frame.pts), [0, 1920, 3840]);
});

t.test('garbage before the stream is skipped, counted once, and the frames survive', async (t) => {
  // Garbage that contains false syncs: 0xFFF1 followed by a plausible header of the wrong length.
  const garbage = joined(Uint8Array.from(Buffer.from('00112233fff14c8010bffc', 'hex')), new Uint8Array(40).fill(0x5a));
  const frames = [lcFrame(200, 1), lcFrame(210, 2), lcFrame(220, 3)];
  const reader = new AdtsReader();
  const out = reader.push(joined(garbage, ...frames), 7000);
  t.same(hexes(out), frames.map((frame) => Buffer.from(frame).toString('hex')));
  t.same(out.map((frame) => frame.pts), [7000, 8920, 10840]);
  t.same(reader.stats, { frames: 3, skippedBytes: garbage.length, resyncs: 1 });
});

t.test('garbage inside the stream resyncs on the next frame whose successor also syncs', async (t) => {
  const frames = Array.from({ length: 5 }, (_, index) => lcFrame(150 + index, index));
  const garbage = Uint8Array.from(Buffer.from('ff00fff1deadbeef0000000000ff', 'hex'));
  const reader = new AdtsReader();
  const out = reader.push(joined(frames[0], frames[1], garbage, frames[2], frames[3], frames[4]));
  t.equal(out.length, 5);
  t.same(hexes(out), frames.map((frame) => Buffer.from(frame).toString('hex')));
  t.same(reader.stats, { frames: 5, skippedBytes: garbage.length, resyncs: 1 });
});

t.test('garbage dribbled in small pushes is counted the same way', async (t) => {
  const frames = Array.from({ length: 6 }, (_, index) => lcFrame(90 + index, index));
  const garbage = new Uint8Array(33).fill(0x11);
  const stream = joined(garbage, frames[0], frames[1], frames[2], garbage, frames[3], frames[4], frames[5]);
  const reader = new AdtsReader();
  const out: AacFrame[] = [];
  for (let offset = 0; offset < stream.length; offset += 5) out.push(...reader.push(stream.subarray(offset, offset + 5)));
  t.equal(out.length, 6);
  t.same(reader.stats, { frames: 6, skippedBytes: 66, resyncs: 2 });
});

t.test('random bytes never throw', async (t) => {
  const reader = new AdtsReader();
  let state = 12345;
  const random = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) >> 16) & 0xff;
  for (let round = 0; round < 200; round++) {
    const chunk = Uint8Array.from({ length: 1 + (random() % 97) }, () => (random() % 5 === 0 ? 0xff : random()));
    reader.push(chunk, round * 1000);
  }
  t.ok(reader.stats.skippedBytes > 0);
});

t.test('reset drops a half-read frame', async (t) => {
  const reader = new AdtsReader();
  t.same(reader.push(lcFrame(300, 1).subarray(0, 150), 0), []);
  reader.reset();
  const frames = reader.push(joined(lcFrame(120, 2), lcFrame(130, 3)), 5000);
  t.same(frames.map((frame) => frame.pts), [5000, 6920]);
  t.equal(reader.stats.skippedBytes, 0);
});
