/**
 * Reading fMP4 back (src/media/fmp4-demux.ts, and src/media/segment-audio.ts on `.m4s`), as
 * progressive mounts on fMP4 channels do: FFmpeg's AAC and LAME frames through the real fMP4
 * muxer and back come out identical (ADTS headers rebuilt from the init's AudioSpecificConfig);
 * FFmpeg's own fragmented MP4 (absolute base data offsets) reads back as FFmpeg's ADTS; the
 * AudioSpecificConfig forms (HE-AAC, explicit rate); hostile and truncated bytes never throw
 * and never give more samples than bytes.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { AdtsReader } from '../../src/media/adts.js';
import { audioSpecificConfig, fragmentSamples, parseInitSegment } from '../../src/media/fmp4-demux.js';
import { Fmp4Muxer, formatFor } from '../../src/media/fmp4-muxer.js';
import { box, fullBox, u32 } from '../../src/media/mp4-boxes.js';
import { MpegAudioReader, mp3Chunk } from '../../src/media/mpeg-audio.js';
import { containerOfName, segmentAudio } from '../../src/media/segment-audio.js';
import { fuzzSeed, SeededRandom } from '../helpers/seeded-random.js';

const AAC_TICKS = 1920;

function ffmpeg(args: string[], input?: Uint8Array): Buffer {
  return execFileSync('ffmpeg', [...(input ? [] : ['-nostdin']), '-v', 'error', ...args], { timeout: 30_000, maxBuffer: 64 << 20, ...(input ? { input } : {}) });
}

const sine = (seconds: number): string[] => ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`, '-ac', '2'];
const adtsTone = ffmpeg([...sine(3), '-c:a', 'aac', '-b:a', '96k', '-f', 'adts', 'pipe:1']);
const aacFrames = new AdtsReader().push(adtsTone);
const mp3Frames = new MpegAudioReader().push(ffmpeg([...sine(3), '-c:a', 'libmp3lame', '-b:a', '128k', '-write_xing', '0', '-id3v2_version', '0', '-f', 'mp3', 'pipe:1']));

const concat = (pieces: Uint8Array[]): Buffer => Buffer.concat(pieces);

t.test('AAC: ADTS frames → the fMP4 muxer (segments and LL-HLS parts) → segmentAudio gives the same ADTS frames, byte for byte', async (t) => {
  const muxer = new Fmp4Muxer({ codec: 'aac', format: formatFor('aac', 48000, 2)! });
  const track = parseInitSegment(muxer.initSegment());
  t.match(track, { codec: 'aac', trackId: 1, timescale: 48000, sampleRate: 48000, channelCount: 2, adts: { objectType: 2, samplingIndex: 3, channelConfiguration: 2 } });
  const out: Uint8Array[] = [];
  let pts = 900_000;
  for (let start = 0; start < aacFrames.length; start += 23) {
    const chunk = muxer.muxSegment(aacFrames.slice(start, start + 23).map((frame) => ({ data: frame.data, pts: (pts += AAC_TICKS), durationTicks: AAC_TICKS })), []);
    t.equal(containerOfName('12-1767225600000417.3.m4s'), 'fmp4');
    const audio = segmentAudio(chunk, 'fmp4', track);
    t.equal(audio.skippedBytes, 0);
    for (const frame of audio.frames) {
      t.equal(frame.samples, 1024);
      t.equal(frame.sampleRate, 48000);
    }
    out.push(...audio.frames.map((frame) => frame.data));
  }
  t.equal(out.length, aacFrames.length, `every frame (${out.length})`);
  t.ok(concat(out).equals(concat(aacFrames.map((frame) => frame.data))), 'identical bytes');
});

t.test('AAC parts joined (several moof + mdat, emsg boxes between) read as one segment', async (t) => {
  const muxer = new Fmp4Muxer({ codec: 'aac' });
  let pts = 0;
  const parts = [0, 10, 20].map((start) => muxer.muxSegment(aacFrames.slice(start, start + 10).map((frame) => ({ data: frame.data, pts: (pts += AAC_TICKS), durationTicks: AAC_TICKS })), [{ pts, nowPlaying: { title: 'Song', artist: 'Artist', setAt: 0 } }]));
  const track = parseInitSegment(muxer.initSegment())!;
  const audio = segmentAudio(concat(parts), 'fmp4', track);
  t.equal(audio.skippedBytes, 0);
  t.ok(concat(audio.frames.map((frame) => frame.data)).equals(concat(aacFrames.slice(0, 30).map((frame) => frame.data))));
});

t.test('MP3: LAME frames → the fMP4 muxer → segmentAudio gives the same frames, each one sample', async (t) => {
  const muxer = new Fmp4Muxer({ codec: 'mp3', format: formatFor('mp3', 48000, 2)! });
  const track = parseInitSegment(muxer.initSegment());
  t.match(track, { codec: 'mp3', timescale: 48000, channelCount: 2 });
  t.equal(track!.adts, undefined);
  const chunk = muxer.muxSegment([{ data: mp3Chunk(mp3Frames, 48000, 2).data, pts: 0, durationTicks: 2160 * mp3Frames.length }], []);
  const audio = segmentAudio(chunk, 'fmp4', track);
  t.equal(audio.skippedBytes, 0);
  t.equal(audio.frames.length, mp3Frames.length);
  t.ok(concat(audio.frames.map((frame) => frame.data)).equals(concat(mp3Frames.map((frame) => frame.data))), 'identical frames');
  t.ok(audio.frames.every((frame) => frame.samples === 1152 && frame.sampleRate === 48000));
});

t.test("FFmpeg's own fragmented MP4 (tfhd base-data-offset from the file start) reads back as FFmpeg's ADTS of the same file", async (t) => {
  const mp4 = ffmpeg([...sine(3), '-c:a', 'aac', '-b:a', '96k', '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov', '-frag_duration', '500000', 'pipe:1']);
  const tfhd = mp4.indexOf('tfhd');
  t.ok(tfhd > 0 && (mp4.readUInt32BE(tfhd + 4) & 0x1) === 1, 'FFmpeg wrote tfhd with base-data-offset');
  const reference = new AdtsReader().push(ffmpeg(['-f', 'mp4', '-i', 'pipe:0', '-c:a', 'copy', '-f', 'adts', 'pipe:1'], mp4));
  const track = parseInitSegment(mp4);
  t.match(track, { codec: 'aac', sampleRate: 48000, channelCount: 2, adts: { objectType: 2, samplingIndex: 3, channelConfiguration: 2 } });
  const audio = segmentAudio(mp4, 'fmp4', track);
  t.equal(audio.frames.length, reference.length, `every frame (${audio.frames.length})`);
  t.ok(concat(audio.frames.map((frame) => frame.data)).equals(concat(reference.map((frame) => frame.data))), "FFmpeg's ADTS frames, identical");
});

t.test('an AAC sample entry without AudioSpecificConfig (FFmpeg empty_moov from ADTS): AAC-LC at the entry\'s rate and channels', async (t) => {
  const mp4 = ffmpeg(['-f', 'aac', '-i', 'pipe:0', '-c:a', 'copy', '-bsf:a', 'aac_adtstoasc', '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov', '-frag_duration', '500000', 'pipe:1'], adtsTone);
  const track = parseInitSegment(mp4);
  t.match(track, { codec: 'aac', sampleRate: 48000, channelCount: 2, adts: { objectType: 2, samplingIndex: 3, channelConfiguration: 2 } });
  const audio = segmentAudio(mp4, 'fmp4', track);
  t.ok(audio.frames.length >= aacFrames.length - 1, `every frame (${audio.frames.length} of ${aacFrames.length})`);
  t.ok(concat(aacFrames.slice(0, audio.frames.length).map((frame) => frame.data)).equals(concat(audio.frames.map((frame) => frame.data))), 'the ADTS frames it was made of');
});

t.test('AudioSpecificConfig: AAC-LC, HE-AAC (the core rate and type for ADTS), an explicit rate, the escape object type, and short configs', async (t) => {
  t.strictSame(audioSpecificConfig(Uint8Array.of(0x11, 0x90)), { objectType: 2, samplingIndex: 3, sampleRate: 48000, channelConfiguration: 2 });
  // HE-AAC v1 explicit: AOT 5, index 6 (24 kHz core), 2 channels, extension index 3 (48 kHz), core AOT 2.
  const heAac = (5 << 11) | (6 << 7) | (2 << 3) | (3 >> 1);
  t.strictSame(audioSpecificConfig(Uint8Array.of(heAac >> 8, heAac & 0xff, ((3 & 1) << 7) | (2 << 2))), { objectType: 2, samplingIndex: 6, sampleRate: 24000, channelConfiguration: 2 });
  // Explicit 24-bit rate (index 15): 00010 1111 (48000 in 24 bits) 0010 000.
  t.strictSame(audioSpecificConfig(Uint8Array.of(0x17, 0x80, 0x5d, 0xc0, 0x10)), { objectType: 2, samplingIndex: 15, sampleRate: 48000, channelConfiguration: 2 });
  t.equal(audioSpecificConfig(Uint8Array.of(0x11)), undefined, 'too short');
  t.equal(audioSpecificConfig(new Uint8Array(0)), undefined);
});

t.test('hostile bytes: truncations, flipped bytes and huge sample counts never throw and never give more samples than bytes', async (t) => {
  const muxer = new Fmp4Muxer({ codec: 'aac' });
  let pts = 0;
  const chunk = muxer.muxSegment(aacFrames.slice(0, 40).map((frame) => ({ data: frame.data, pts: (pts += AAC_TICKS), durationTicks: AAC_TICKS })), []);
  const init = muxer.initSegment();
  const track = parseInitSegment(init)!;
  const whole = Buffer.concat(segmentAudio(chunk, 'fmp4', track).frames.map((frame) => frame.data));
  const wrongCuts: number[] = [];
  for (let cut = 1; cut < chunk.length; cut += 7) {
    // A cut chunk gives the whole samples still inside it (a prefix), and counts the rest as skipped.
    const audio = segmentAudio(chunk.subarray(0, cut), 'fmp4', track);
    const got = Buffer.concat(audio.frames.map((frame) => frame.data));
    if (audio.skippedBytes === 0 || audio.frames.length >= 40 || !whole.subarray(0, got.length).equals(got)) wrongCuts.push(cut);
  }
  t.strictSame(wrongCuts, [], 'every truncation gives a prefix of the frames and counts skipped bytes');
  for (let cut = 0; cut < init.length; cut++) parseInitSegment(init.subarray(0, cut));
  t.equal(parseInitSegment(init.subarray(0, init.length - 1)), undefined, 'a truncated init has no track');
  const random = new SeededRandom(fuzzSeed(14));
  for (let round = 0; round < 2000; round++) {
    const bytes = Buffer.from(round % 2 ? chunk : init);
    for (let flip = 0; flip < 1 + (round % 8); flip++) bytes[random.int(0, bytes.length - 1)] = random.int(0, 255);
    // A flipped init's track (whatever it says) reads the real chunk; a flipped chunk is read with the real track.
    const parsed = round % 2 ? track : parseInitSegment(bytes);
    const segment = round % 2 ? bytes : chunk;
    const audio = segmentAudio(segment, 'fmp4', parsed ?? track);
    if (audio.frames.length > segment.length) t.fail('more frames than bytes');
  }
  // A trun of 2^32-1 samples, each taking the default size of 1 byte: bounded by the bytes.
  const tfhd = fullBox('tfhd', 0, 0x020010, u32(1), u32(1));
  const trun = fullBox('trun', 0, 0x000001, u32(0xffffffff), { int32: 0 });
  const moof = box('moof', fullBox('mfhd', 0, 0, u32(1)), box('traf', tfhd, trun));
  const hostile = concat([moof, box('mdat', new Uint8Array(100))]);
  const samples = fragmentSamples(hostile, { trackId: 1, defaultSampleDuration: 1024, defaultSampleSize: 0 });
  t.ok(samples.samples.length <= hostile.length, `${samples.samples.length} samples from ${hostile.length} bytes`);
  t.ok(samples.skippedBytes > 0, 'and the fragment counted as skipped');
  t.strictSame(segmentAudio(chunk, 'fmp4'), { frames: [], skippedBytes: chunk.length }, 'no init: no frames');
});
