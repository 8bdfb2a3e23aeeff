/**
 * MPEG audio Layer III framing (src/media/mpeg-audio.ts): known headers, the frames FFmpeg's
 * LAME encoder writes (counted against ffprobe), resynchronisation on garbage, PTS per frame,
 * and the silent frame, which FFmpeg decodes to digital silence.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { buildAdtsHeader } from '../../src/media/adts.js';
import {
  MP3_OBJECT_TYPE,
  MpegAudioReader,
  mp3Bitrates,
  mp3Chunk,
  mp3FrameSamples,
  parseMpegAudioHeader,
  silentMp3Frame,
  type MpegAudioFrame,
} from '../../src/media/mpeg-audio.js';
import { PTS_WRAP } from '../../src/media/pts.js';

/** Raw MP3 frames from FFmpeg's LAME encoder (no Xing/LAME tag frame, no ID3). */
function lameFrames(options: { sampleRate: number; channels: number; bitrate: string; seconds: number }): Uint8Array {
  return execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${options.sampleRate}:duration=${options.seconds}`,
    '-ac', String(options.channels), '-c:a', 'libmp3lame', '-b:a', options.bitrate, '-write_xing', '0', '-id3v2_version', '0', '-f', 'mp3', 'pipe:1',
  ], { timeout: 20_000 });
}

/** The packet sizes ffprobe sees in raw MP3 bytes. */
function probedPacketSizes(mp3: Uint8Array): number[] {
  const out = execFileSync('ffprobe', ['-v', 'error', '-f', 'mp3', '-show_entries', 'packet=size', '-of', 'csv=p=0', '-i', 'pipe:0'], { input: mp3 });
  return out.toString().trim().split('\n').map(Number);
}

/** FFmpeg's decode of MP3 bytes to 16-bit mono samples. */
function decodeMp3(mp3: Uint8Array): Int16Array {
  const pcm = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'mp3', '-i', 'pipe:0', '-f', 's16le', '-ac', '1', 'pipe:1'], { input: mp3 });
  return new Int16Array(pcm.buffer, pcm.byteOffset, pcm.byteLength >> 1);
}

function joined(frames: readonly MpegAudioFrame[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(frames.map((frame) => frame.data)));
}

t.test('parses a known MPEG-1 Layer III header: 128 kbit/s, 48 kHz, joint stereo', async (t) => {
  const bytes = Uint8Array.from(Buffer.from('fffb9464', 'hex'));
  t.same(parseMpegAudioHeader(bytes, 0), {
    version: 1,
    hasCrc: false,
    bitrate: 128000,
    bitrateIndex: 9,
    sampleRate: 48000,
    padding: false,
    mode: 1,
    channelCount: 2,
    samples: 1152,
    frameLength: 384, // 144 × 128000 / 48000
    sideInfoLength: 32,
  });
  // 44.1 kHz, padded: 144 × 128000 / 44100 = 417.9 → 417 + 1.
  t.match(parseMpegAudioHeader(Uint8Array.from(Buffer.from('fffb9264', 'hex')), 0), { sampleRate: 44100, padding: true, frameLength: 418 });
  // MPEG-2 (24 kHz), mono, 64 kbit/s: 576 samples, 72 × 64000 / 24000 = 192.
  t.match(parseMpegAudioHeader(Uint8Array.from(Buffer.from('fff384c4', 'hex')), 0), { version: 2, sampleRate: 24000, channelCount: 1, samples: 576, frameLength: 192, sideInfoLength: 9 });
});

t.test('refuses what is not a Layer III header', async (t) => {
  const cases: [string, string][] = [
    ['fff1', 'too short'],
    ['fff99464', 'layer 00 (as in an ADTS header)'],
    ['fffd9464', 'Layer II'],
    ['fffb0464', 'free format (bitrate index 0)'],
    ['fffbf464', 'bitrate index 15'],
    ['fffb9c64', 'reserved sample rate'],
    ['ffeb9464', 'the reserved version'],
    ['fffb9466', 'the reserved emphasis'],
    ['7ffb9464', 'no sync word'],
  ];
  for (const [hex, why] of cases) t.equal(parseMpegAudioHeader(Uint8Array.from(Buffer.from(hex, 'hex')), 0), null, why);
  t.equal(parseMpegAudioHeader(buildAdtsHeader({ sampleRate: 48000, channelCount: 2, objectType: 2, payloadLength: 300 }), 0), null, 'a real ADTS header');
});

t.test("reads every frame FFmpeg's LAME writes, as ffprobe counts them", async (t) => {
  for (const options of [
    { sampleRate: 48000, channels: 2, bitrate: '128k', seconds: 2 },
    { sampleRate: 44100, channels: 2, bitrate: '192k', seconds: 2 },
    { sampleRate: 48000, channels: 1, bitrate: '32k', seconds: 2 },
    { sampleRate: 24000, channels: 1, bitrate: '48k', seconds: 2 },
  ]) {
    const mp3 = lameFrames(options);
    const reader = new MpegAudioReader();
    // In uneven pieces, as PES payloads arrive.
    const frames: MpegAudioFrame[] = [];
    for (let offset = 0; offset < mp3.length; offset += 1000) frames.push(...reader.push(mp3.subarray(offset, offset + 1000)));
    const label = `${options.sampleRate} Hz, ${options.channels} ch, ${options.bitrate}`;
    t.same(frames.map((frame) => frame.data.length), probedPacketSizes(mp3), `${label}: the same frames as ffprobe`);
    t.same(reader.stats, { frames: frames.length, skippedBytes: 0, resyncs: 0 }, `${label}: no resync`);
    t.ok(frames.every((frame) => frame.sampleRate === options.sampleRate && frame.channelCount === options.channels), label);
    t.equal(frames[0]!.samples, mp3FrameSamples(options.sampleRate));
  }
});

t.test('resynchronises after garbage and counts it, and stamps each frame with its PTS', async (t) => {
  const mp3 = lameFrames({ sampleRate: 48000, channels: 2, bitrate: '128k', seconds: 1 });
  const clean = new MpegAudioReader().push(mp3);
  const garbage = Uint8Array.from([0xff, 0xfb, 0x00, 0x12, 0xff, 0x00, 0x34, 0x56, 0x78]);
  const reader = new MpegAudioReader();
  const cut = clean[3]!.data.byteOffset - mp3.byteOffset;
  const frames = [...reader.push(mp3.subarray(0, cut), PTS_WRAP - 2160), ...reader.push(garbage), ...reader.push(mp3.subarray(cut), 5000)];
  t.same(frames.map((frame) => frame.data.length), clean.map((frame) => frame.data.length), 'every frame, none invented');
  t.equal(reader.stats.resyncs, 1);
  t.equal(reader.stats.skippedBytes, garbage.length);
  t.same(frames.slice(0, 5).map((frame) => frame.pts), [PTS_WRAP - 2160, 0, 2160, 5000, 7160], 'PTS per 1152 samples, wrapped at 2^33, re-anchored by the next PES PTS');
});

t.test('a silent frame is a valid Layer III frame at the nearest bit rate, and FFmpeg decodes it to digital silence', async (t) => {
  t.same(mp3Bitrates(48000).slice(0, 3), [32000, 40000, 48000]);
  const frame = silentMp3Frame(48000, 2, 128000);
  t.match(parseMpegAudioHeader(frame.data, 0), { version: 1, bitrate: 128000, sampleRate: 48000, channelCount: 2, frameLength: 384, hasCrc: false });
  t.match(parseMpegAudioHeader(silentMp3Frame(44100, 1, 100000).data, 0), { bitrate: 96000, channelCount: 1, frameLength: 313 }, '100k → 96k, 144 × 96000 / 44100');
  t.equal(silentMp3Frame(48000, 2, 500000).data.length, 960, 'above the table: 320k');
  for (const [sampleRate, channels, bitrate] of [[48000, 2, 128000], [44100, 1, 64000], [24000, 2, 32000]] as const) {
    const silent = silentMp3Frame(sampleRate, channels, bitrate);
    const frames = Array.from({ length: 40 }, () => silent);
    const samples = decodeMp3(joined(frames));
    t.equal(samples.length, 40 * silent.samples, `${sampleRate} Hz ${channels} ch: one frame's samples per frame`);
    t.ok(samples.every((sample) => sample === 0), `${sampleRate} Hz ${channels} ch: all zero`);
  }
  // And after real audio, silence follows at once: no frame leans on the bit reservoir.
  const tone = lameFrames({ sampleRate: 48000, channels: 2, bitrate: '128k', seconds: 1 });
  const mixed = decodeMp3(Uint8Array.from(Buffer.concat([tone, ...Array.from({ length: 20 }, () => silentMp3Frame(48000, 2, 128000).data)])));
  t.ok(mixed.subarray(mixed.length - 18 * 1152).every((sample) => sample === 0), 'silent frames after a tone decode to silence');
  t.throws(() => silentMp3Frame(96000, 2, 128000), RangeError);
});

t.test('a chunk is its frames back to back, marked as MP3, spanning a 1024-sample group', async (t) => {
  const frame = silentMp3Frame(48000, 2, 128000);
  const empty = mp3Chunk([], 48000, 2, 1920);
  t.same({ ...empty, data: empty.data.length }, { data: 0, sampleRate: 48000, channelCount: 2, objectType: MP3_OBJECT_TYPE, samples: 1024, pts: 1920 });
  t.equal(mp3Chunk([frame], 48000, 2).data, frame.data, 'one frame: no copy');
  t.equal(mp3Chunk([frame, frame], 48000, 2).data.length, 768);
});
