/**
 * MPEG audio frames and packed-audio segments (src/media/mpeg-audio.ts, segment-audio.ts):
 * header table, ID3v2 tags skipped (an HLS packed-audio segment's PRIV timestamp tag), whole
 * frames split out of hand-built bytes, garbage skipped, and a TS segment's ADTS frames.
 */
import t from 'tap';
import { parseMpegAudioHeader, skipId3Tags, splitMpegAudioFrames } from '../../src/media/mpeg-audio.js';
import { containerOfName, segmentAudio } from '../../src/media/segment-audio.js';
import { mpegTsMuxers } from '../../src/media/ts-muxer.js';
import { aacFrame } from '../helpers/aac-frames.js';

/** A Layer III frame: header bytes then a payload filled with `fill` (the length from the header). */
function mp3Frame(header: [number, number, number, number], fill: number): Uint8Array {
  const parsed = parseMpegAudioHeader(Uint8Array.from(header), 0)!;
  const frame = new Uint8Array(parsed.frameLength).fill(fill);
  frame.set(header);
  return frame;
}

/** An ID3v2.4 tag with one PRIV frame, as RFC 8216 §3.4 puts before packed audio. */
function id3Tag(): Uint8Array {
  const owner = Buffer.from('com.apple.streaming.transportStreamTimestamp\0');
  const body = Buffer.concat([owner, Buffer.from([0, 0, 0, 0, 0, 0, 0x1a, 0x2b])]);
  const frame = Buffer.concat([Buffer.from('PRIV'), Buffer.from([0, 0, 0, body.length, 0, 0]), body]);
  const size = frame.length;
  const header = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, (size >> 21) & 0x7f, (size >> 14) & 0x7f, (size >> 7) & 0x7f, size & 0x7f]);
  return Uint8Array.from(Buffer.concat([header, frame]));
}

t.test('MPEG audio headers give rate, bitrate, samples and frame length', async (t) => {
  const table: [number[], Partial<ReturnType<typeof parseMpegAudioHeader>>][] = [
    // MPEG-1 Layer III, 128 kb/s, 44.1 kHz, no padding: 144 × 128000 / 44100 = 417.
    [[0xff, 0xfb, 0x90, 0x00], { version: 1, layer: 3, bitrate: 128000, sampleRate: 44100, frameLength: 417, samples: 1152, channelCount: 2 }],
    // The same with the padding bit: 418.
    [[0xff, 0xfb, 0x92, 0x00], { frameLength: 418 }],
    // MPEG-1 Layer III, 192 kb/s, 48 kHz, mono: 144 × 192000 / 48000 = 576.
    [[0xff, 0xfb, 0xb4, 0xc0], { bitrate: 192000, sampleRate: 48000, frameLength: 576, channelCount: 1 }],
    // MPEG-2 Layer III, 64 kb/s, 24 kHz: 72 × 64000 / 24000 = 192, 576 samples.
    [[0xff, 0xf3, 0x84, 0x00], { version: 2, bitrate: 64000, sampleRate: 24000, frameLength: 192, samples: 576 }],
  ];
  for (const [bytes, expected] of table) t.match(parseMpegAudioHeader(Uint8Array.from(bytes), 0), expected, bytes.map((b) => b.toString(16)).join(' '));
  for (const bad of [[0xff, 0xfb, 0xf0, 0x00], [0xff, 0xfb, 0x0c, 0x00], [0xff, 0xe9, 0x90, 0x00], [0xfe, 0xfb, 0x90, 0x00]]) {
    t.equal(parseMpegAudioHeader(Uint8Array.from(bad), 0), null, `not a header: ${bad.map((b) => b.toString(16)).join(' ')}`);
  }
});

t.test('a packed-audio segment gives its frames after the ID3 tag, whole, with garbage skipped', async (t) => {
  const frames = [mp3Frame([0xff, 0xfb, 0x90, 0x00], 1), mp3Frame([0xff, 0xfb, 0x92, 0x00], 2), mp3Frame([0xff, 0xfb, 0x90, 0x00], 3)];
  const tag = id3Tag();
  t.equal(skipId3Tags(tag), tag.length, 'the tag is skipped whole');
  t.equal(skipId3Tags(Uint8Array.from(Buffer.concat([tag, tag]))), 2 * tag.length, 'and several tags');
  const segment = Uint8Array.from(Buffer.concat([tag, ...frames]));
  const { frames: split, skippedBytes } = segmentAudio(segment, containerOfName('1234-56.mp3'));
  t.equal(skippedBytes, 0);
  t.strictSame(split.map((frame) => [...frame.data]), frames.map((frame) => [...frame]), 'the same frames, byte for byte');
  t.ok(split.every((frame) => frame.samples === 1152 && frame.sampleRate === 44100));

  const garbled = Uint8Array.from(Buffer.concat([tag, Buffer.from([0xff, 0xfb, 0x12]), ...frames, Buffer.from([0xff, 0xfb])]));
  const recovered = splitMpegAudioFrames(garbled);
  t.equal(recovered.frames.length, 3, 'garbage before and a truncated header after are skipped');
  t.equal(recovered.skippedBytes, 5);
});

t.test('an MPEG-TS segment gives the ADTS frames of its audio stream', async (t) => {
  const muxer = mpegTsMuxers({ id: 'hifi' }, { segmentSeconds: 4 });
  const frames = Array.from({ length: 20 }, (_, index) => aacFrame(100 + index, index));
  const segment = muxer.muxSegment(frames.map((frame, index) => ({ ...frame, pts: 90_000 + index * 1920 })));
  t.equal(containerOfName('1234-56.ts'), 'ts');
  const audio = segmentAudio(segment, 'ts');
  t.strictSame(audio.frames.map((frame) => [...frame.data]), frames.map((frame) => [...frame.data]), 'every frame, in order');
  t.ok(audio.frames.every((frame) => frame.samples === 1024 && frame.sampleRate === 48000));
});
