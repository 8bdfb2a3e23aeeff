/**
 * Opus framing (src/media/opus.ts): the MPEG-TS control header, TOC durations, the reader over
 * FFmpeg's Opus-in-TS, chunks per 1024-sample group and the dOps body.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { GROUP_SAMPLES } from '../../src/media/frame-chunk.js';
import { forEachOpusPacket, OPUS_OBJECT_TYPE, opusChunk, opusPacketSamples, OpusReader, opusSpecificBoxBody, parseOpusUnitHeader, silentOpusUnit } from '../../src/media/opus.js';
import { TsDemuxer } from '../../src/media/ts-demuxer.js';
import { SeededRandom } from '../helpers/seeded-random.js';

t.test('the control header FFmpeg writes: prefix, trim flags, the size in 0xFF runs, then the packet', async (t) => {
  // FFmpeg's first access unit: start_trim_flag, size 255 + 201 = 456, start_trim 312, TOC 0xF8 (CELT FB 20 ms).
  const unit = new Uint8Array(6 + 456);
  unit.set([0x7f, 0xf0, 0xff, 0xc9, 0x01, 0x38, 0xf8]);
  t.same(parseOpusUnitHeader(unit, 0), { frameLength: 462, headerLength: 6, sampleRate: 48000, samples: 960, channelCount: 1 });
  t.same(parseOpusUnitHeader(Uint8Array.of(0x7f, 0xe0, 0x03, 0xfc, 0xff, 0xfe), 0), { frameLength: 6, headerLength: 3, sampleRate: 48000, samples: 960, channelCount: 2 });
  t.equal(parseOpusUnitHeader(Uint8Array.of(0x7f, 0xc0, 0x03, 0xfc, 0xff, 0xfe), 0), null, 'a wrong prefix is none');
  t.equal(parseOpusUnitHeader(Uint8Array.of(0x7f, 0xe0, 0x00, 0xfc), 0), null, 'an empty unit is none');
});

t.test('TOC durations (RFC 6716 §3.1): SILK, hybrid and CELT frame sizes, codes 0–3', async (t) => {
  t.equal(opusPacketSamples(Uint8Array.of(0 << 3)), 480, 'SILK NB 10 ms');
  t.equal(opusPacketSamples(Uint8Array.of((3 << 3) | 1)), 2 * 2880, 'SILK 60 ms, two frames');
  t.equal(opusPacketSamples(Uint8Array.of(13 << 3)), 960, 'hybrid 20 ms');
  t.equal(opusPacketSamples(Uint8Array.of(16 << 3)), 120, 'CELT 2.5 ms');
  t.equal(opusPacketSamples(Uint8Array.of((31 << 3) | 3, 3)), 3 * 960, 'code 3: the frame count byte');
  t.equal(opusPacketSamples(Uint8Array.of((3 << 3) | 3, 3)), 0, 'more than 120 ms is no packet');
});

t.test('the reader cuts FFmpeg Opus-in-TS into every 960-sample packet, PTS 20 ms apart', async (t) => {
  const ts = execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=2',
    '-ac', '2', '-c:a', 'libopus', '-b:a', '96k', '-f', 'mpegts', 'pipe:1',
  ], { timeout: 30_000, maxBuffer: 64 << 20 });
  const demuxer = new TsDemuxer();
  const reader = new OpusReader();
  const units = [...demuxer.push(ts), ...demuxer.flush()].flatMap((event) => (event.kind === 'pes' ? reader.push(event.payload, event.pts) : []));
  // libopus: 312 samples of delay, so (96000 + 312) / 960 packets, rounded up.
  t.equal(units.length, Math.ceil((96000 + 312) / 960));
  t.ok(units.every((unit) => unit.samples === 960 && unit.channelCount === 2));
  t.ok(units.slice(1).every((unit, index) => unit.pts === units[index]!.pts! + 1800), 'PTS 960 samples apart');
  t.same(reader.stats, { frames: units.length, skippedBytes: 0, resyncs: 0 });
  // A chunk per group: the units that start within it, back to back; the packets come back out in order.
  const chunk = opusChunk(units.slice(0, 2), 2, 90_000);
  t.match(chunk, { sampleRate: 48000, channelCount: 2, objectType: OPUS_OBJECT_TYPE, samples: GROUP_SAMPLES, pts: 90_000 });
  const packets: number[] = [];
  forEachOpusPacket(chunk.data, (packet, samples) => packets.push(packet.length, samples));
  const expected = units.slice(0, 2).flatMap((unit) => [unit.data.length - parseOpusUnitHeader(unit.data, 0)!.headerLength, 960]);
  t.same(packets, expected);
});

t.test('dOps: version 0, channels, PreSkip, input rate, gain 0, mapping family 0', async (t) => {
  t.equal(Buffer.from(opusSpecificBoxBody(2, 312, 48000)).toString('hex'), '00' + '02' + '0138' + '0000bb80' + '0000' + '00');
  t.same([...silentOpusUnit(1).data], [0x7f, 0xe0, 3, 0xf8, 0xff, 0xfe]);
});

t.test('fuzz: random and bit-flipped Opus-in-TS bytes in random pieces never throw; units out parse whole', async (t) => {
  const seed = Number(process.env.ONAIR_FUZZ_SEED ?? 14);
  const random = new SeededRandom(seed);
  const units = Array.from({ length: 50 }, (_, k) => Uint8Array.of(0x7f, 0xe0, 3 + k, 0xfc, ...new Uint8Array(2 + k).fill(k))).flatMap((unit) => [...unit]);
  const stream = Uint8Array.from(units);
  let out = 0;
  for (let round = 0; round < 500; round += 1) {
    const bytes = Buffer.from(stream);
    for (let flip = Math.floor(random.next() * 6); flip > 0; flip -= 1) bytes[Math.floor(random.next() * bytes.length)]! ^= 1 << Math.floor(random.next() * 8);
    const reader = new OpusReader();
    for (let offset = 0; offset < bytes.length; ) {
      const size = 1 + Math.floor(random.next() * 200);
      for (const unit of reader.push(bytes.subarray(offset, offset + size), random.next() < 0.5 ? round : undefined)) {
        out += 1;
        const header = parseOpusUnitHeader(unit.data, 0);
        if (!header || header.frameLength !== unit.data.length) t.fail(`seed ${seed}, round ${round}: a unit that does not parse whole`);
      }
      offset += size;
    }
  }
  t.ok(out > 10_000, `${out} units out (seed ${seed})`);
});
