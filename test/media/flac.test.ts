/**
 * FLAC framing (src/media/flac.ts): the frame header with its CRC-8, the reader that cuts
 * FFmpeg's FLAC-in-MPEG-TS (several frames per PES) into frames by the CRC-16, STREAMINFO, and
 * the silent frame, which FFmpeg must decode to digital silence.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { FLAC_BLOCK_SIZE, FlacReader, flacCrc16, flacCrc8, flacStreamInfo, parseFlacFrameHeader, silentFlacFrame } from '../../src/media/flac.js';
import { TsDemuxer } from '../../src/media/ts-demuxer.js';
import { SeededRandom } from '../helpers/seeded-random.js';

/** The PES payloads (with PTS) of FFmpeg's FLAC stream in MPEG-TS: a 48 kHz stereo tone, `bits` per sample. */
function flacPes(seconds: number, bits: 16 | 24): { payload: Uint8Array; pts?: number }[] {
  const ts = execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-ac', '2', '-c:a', 'flac', '-frame_size', '1024', '-sample_fmt', bits === 24 ? 's32' : 's16', '-f', 'mpegts', 'pipe:1',
  ], { timeout: 30_000, maxBuffer: 64 << 20 });
  const demuxer = new TsDemuxer();
  return [...demuxer.push(ts), ...demuxer.flush()].flatMap((event) => (event.kind === 'pes' ? [{ payload: event.payload, pts: event.pts }] : []));
}

t.test('a frame header FFmpeg wrote parses: 1024 samples, 48 kHz, its CRC-8 checked', async (t) => {
  // fff8 (fixed block size), 0xa: 1024 samples, 0xa: 48 kHz; 0x1: 2 channels, 0b100: 16 bit; frame number 0; CRC-8.
  const header = Uint8Array.from([0xff, 0xf8, 0xaa, 0x18, 0x00, 0]);
  header[5] = flacCrc8(header, 0, 5);
  t.same(parseFlacFrameHeader(header, 0), { variableBlockSize: false, blockSize: 1024, sampleRate: 48000, channelCount: 2, bitsPerSample: 16, headerLength: 6 });
  const damaged = header.slice();
  damaged[4] = 0x01; // frame number 1 with the CRC-8 of frame 0
  t.equal(parseFlacFrameHeader(damaged, 0), null, 'a wrong CRC-8 is no header');
  t.equal(parseFlacFrameHeader(header.subarray(0, 5), 0), null, 'a cut header is none');
  // CRC-8 of "123456789" (poly 0x07, init 0) is 0xF4; CRC-16 (0x8005, init 0, not reflected) 0xFEE8.
  const check = new TextEncoder().encode('123456789');
  t.equal(flacCrc8(check), 0xf4);
  t.equal(flacCrc16(check), 0xfee8);
});

t.test('the reader cuts FFmpeg FLAC-in-TS into every frame, each with a checking CRC-16 and a PTS 1024 samples on', async (t) => {
  for (const bits of [16, 24] as const) {
    const pes = flacPes(2, bits);
    const reader = new FlacReader();
    const perPes = pes.map((each) => reader.push(each.payload, each.pts));
    if (bits === 16) t.ok(perPes.some((frames) => frames.length > 2), 'several frames share a PES');
    const frames = perPes.flat();
    t.equal(frames.length, Math.ceil((2 * 48000) / FLAC_BLOCK_SIZE), `every frame (${bits} bit)`);
    t.equal(frames.reduce((sum, frame) => sum + frame.samples, 0), 2 * 48000, 'every sample');
    t.ok(frames.every((frame) => flacCrc16(frame.data) === 0), 'each frame ends with its own CRC-16');
    t.ok(frames.every((frame) => parseFlacFrameHeader(frame.data, 0)?.bitsPerSample === bits), `${bits}-bit frames`);
    t.ok(frames.slice(1).every((frame, index) => frame.pts === frames[index]!.pts! + 1920), 'PTS 1024 samples apart');
    t.same(reader.stats, { frames: frames.length, skippedBytes: 0, resyncs: 0 });
    // The same bytes in 1000-byte pieces without PTS (frames cut across pushes) give the same frames.
    const whole = Buffer.concat(pes.map((each) => each.payload));
    const pieces = new FlacReader();
    const again = [];
    for (let offset = 0; offset < whole.length; offset += 1000) again.push(...pieces.push(whole.subarray(offset, offset + 1000)));
    t.same(again.map((frame) => Buffer.from(frame.data).toString('hex')), frames.map((frame) => Buffer.from(frame.data).toString('hex')), 'the same frames from any pieces');
  }
});

t.test('a damaged frame is skipped and counted; the frames after it still come out', async (t) => {
  const pes = flacPes(1, 16);
  const whole = Buffer.concat(pes.map((each) => each.payload));
  const frames = new FlacReader().push(whole);
  const damaged = Buffer.from(whole);
  damaged[frames[0]!.data.length + 40] ^= 0x55; // inside frame 1's data
  const reader = new FlacReader();
  const out = reader.push(damaged);
  t.equal(out.length, frames.length - 1, 'all but the damaged frame');
  t.equal(Buffer.from(out[1]!.data).toString('hex'), Buffer.from(frames[2]!.data).toString('hex'), 'the next frame is whole');
  t.equal(reader.stats.resyncs, 1);
  t.equal(reader.stats.skippedBytes, frames[1]!.data.length);
  const garbage = new FlacReader();
  t.same(garbage.push(Uint8Array.from({ length: 5000 }, (_, index) => (index * 37) & 0xff)), [], 'garbage gives nothing');
  t.ok(garbage.stats.skippedBytes > 4900);
});

t.test('STREAMINFO: last block, 34 bytes, fixed 1024-sample blocks, rate, channels, bits; the rest unknown', async (t) => {
  t.equal(
    Buffer.from(flacStreamInfo({ sampleRate: 48000, channelCount: 2, bitsPerSample: 24 })).toString('hex'),
    '80000022' + '0400' + '0400' + '000000' + '000000' + '0bb80370' + '00000000' + '00'.repeat(16),
  );
});

t.test('the silent frame is a valid FLAC frame of 1024 zero samples', async (t) => {
  for (const [channelCount, bitsPerSample] of [[1, 16], [2, 16], [2, 24]] as const) {
    const frame = silentFlacFrame({ sampleRate: 44100, channelCount, bitsPerSample });
    t.same(parseFlacFrameHeader(frame.data, 0), { variableBlockSize: false, blockSize: 1024, sampleRate: 44100, channelCount, bitsPerSample, headerLength: 6 });
    t.equal(flacCrc16(frame.data), 0, 'its CRC-16 checks');
    t.equal(new FlacReader().push(frame.data).length, 1, 'the reader takes it');
  }
});

t.test('fuzz: bit-flipped and truncated FLAC in random pieces never throws, and every frame out checks', async (t) => {
  const seed = Number(process.env.ONAIR_FUZZ_SEED ?? 14);
  const random = new SeededRandom(seed);
  const whole = Buffer.concat(flacPes(1, 16).map((each) => each.payload));
  let frames = 0;
  for (let round = 0; round < 300; round += 1) {
    const bytes = Buffer.from(whole.subarray(0, 1 + Math.floor(random.next() * whole.length)));
    for (let flip = Math.floor(random.next() * 8); flip > 0; flip -= 1) bytes[Math.floor(random.next() * bytes.length)]! ^= 1 << Math.floor(random.next() * 8);
    const reader = new FlacReader();
    for (let offset = 0; offset < bytes.length; ) {
      const size = 1 + Math.floor(random.next() * 4000);
      for (const frame of reader.push(bytes.subarray(offset, offset + size))) {
        frames += 1;
        if (flacCrc16(frame.data) !== 0 || !parseFlacFrameHeader(frame.data, 0)) t.fail(`seed ${seed}, round ${round}: a frame that does not check`);
      }
      offset += size;
    }
  }
  t.ok(frames > 1000, `${frames} frames out, every one checked (seed ${seed})`);
});
