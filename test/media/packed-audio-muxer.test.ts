/**
 * HLS packed audio for MP3 renditions (src/media/packed-audio-muxer.ts): the ID3 timestamp
 * tag byte for byte, segments FFmpeg's HLS reader plays at the stamped time, parts that join
 * into a segment, and a timeline that runs on across segments and re-anchors after a jump.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { MpegAudioReader, mp3Chunk, type MpegAudioFrame } from '../../src/media/mpeg-audio.js';
import type { TimedFrame } from '../../src/media/muxer.js';
import { codecMuxers, PackedAudioMuxer, readTransportStreamTimestamp, TIMESTAMP_TAG_BYTES, transportStreamTimestampTag } from '../../src/media/packed-audio-muxer.js';
import { PTS_WRAP, samplesToTicks } from '../../src/media/pts.js';
import { TsSegmentMuxer } from '../../src/media/ts-muxer.js';

const GROUP_TICKS = 1920; // 1024 samples at 48 kHz
const MP3_TICKS = 2160; // 1152 samples

/** Raw MP3 frames of a 48 kHz stereo tone from FFmpeg's LAME. */
function lameFrames(seconds: number): MpegAudioFrame[] {
  const mp3 = execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '128k', '-write_xing', '0', '-id3v2_version', '0', '-f', 'mp3', 'pipe:1',
  ], { timeout: 20_000 });
  return new MpegAudioReader().push(mp3);
}

/**
 * The frames as the aligner chunks them: MP3 frame k at `offsetTicks` + k × 2160 goes to group
 * floor(·/1920); chunks stamped with the group PTS from `groupPts`, as the segmenter times them.
 */
function chunked(frames: readonly MpegAudioFrame[], groupPts: number, offsetTicks: number): TimedFrame[] {
  const groupCount = Math.floor((offsetTicks + frames.length * MP3_TICKS) / GROUP_TICKS);
  return Array.from({ length: groupCount }, (_, group) => {
    const inGroup = frames.filter((_, k) => Math.floor((offsetTicks + k * MP3_TICKS) / GROUP_TICKS) === group);
    return { data: mp3Chunk(inGroup, 48000, 2).data, pts: groupPts + group * GROUP_TICKS, durationTicks: GROUP_TICKS };
  });
}

/** MP3 frames in chunks of 384-byte frames (128k at 48 kHz). */
function frameCount(chunks: readonly TimedFrame[]): number {
  return chunks.reduce((count, chunk) => count + chunk.data.length / 384, 0);
}

/** Samples FFmpeg decodes from raw MP3 bytes. */
function decode(bytes: Uint8Array): number {
  return execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'mp3', '-i', 'pipe:0', '-f', 's16le', '-ac', '1', 'pipe:1'], { input: bytes }).length / 2;
}

t.test('the timestamp tag is an ID3v2.4 PRIV frame with the 33-bit PTS, byte for byte', async (t) => {
  const tag = transportStreamTimestampTag(0x1_2345_6789);
  t.equal(tag.length, TIMESTAMP_TAG_BYTES);
  t.equal(
    Buffer.from(tag).toString('hex'),
    '494433040000' + '0000003f' + // "ID3" v2.4.0, no flags, 63 bytes follow (synchsafe)
      '50524956' + '00000035' + '0000' + // "PRIV", 53 bytes, no flags
      Buffer.from('com.apple.streaming.transportStreamTimestamp\0').toString('hex') +
      '0000000123456789', // the PTS, big-endian, upper 31 bits zero
  );
  t.equal(readTransportStreamTimestamp(tag), 0x1_2345_6789);
  t.equal(readTransportStreamTimestamp(transportStreamTimestampTag(PTS_WRAP + 5)), 5, 'wrapped at 2^33');
  t.equal(readTransportStreamTimestamp(Uint8Array.from([0x47, 0x40])), undefined);
});

t.test("the packager's unwrapped timeline (past 2^33) gives the very bytes of the wrapped one", async (t) => {
  const unwrapped = chunked(lameFrames(2), PTS_WRAP - 20 * GROUP_TICKS, 700);
  const wrapped = unwrapped.map((chunk) => ({ ...chunk, pts: chunk.pts % PTS_WRAP }));
  t.ok(unwrapped.at(-1)!.pts > PTS_WRAP, 'the chunks cross the wrap');
  const [a, b] = [new PackedAudioMuxer(), new PackedAudioMuxer()];
  const half = Math.floor(unwrapped.length / 2);
  for (const [from, to] of [[0, half], [half, unwrapped.length]] as const) {
    t.same(Buffer.from(b.muxSegment(unwrapped.slice(from, to))), Buffer.from(a.muxSegment(wrapped.slice(from, to))), `chunks ${from}-${to}`);
  }
});

t.test("FFmpeg's HLS reader plays packed segments from the stamped time, continuously", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-packed-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const frames = lameFrames(4);
  const chunks = chunked(frames, 900_000, 700);
  const muxer = new PackedAudioMuxer();
  const half = Math.floor(chunks.length / 2);
  const segments = [muxer.muxSegment(chunks.slice(0, half)), muxer.muxSegment(chunks.slice(half))];
  segments.forEach((segment, index) => writeFileSync(join(directory, `${index}.mp3`), segment));
  const seconds = (chunks.length * GROUP_TICKS) / 90000 / 2;
  writeFileSync(
    join(directory, 'playlist.m3u8'),
    `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXTINF:${seconds.toFixed(5)},\n0.mp3\n#EXTINF:${seconds.toFixed(5)},\n1.mp3\n#EXT-X-ENDLIST\n`,
  );
  const probe = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,sample_rate:format=start_time', '-of', 'json', join(directory, 'playlist.m3u8')]).toString(),
  ) as { streams: { codec_name: string; sample_rate: string }[]; format: { start_time: string } };
  t.match(probe.streams, [{ codec_name: 'mp3', sample_rate: '48000' }]);
  t.equal(Number(probe.format.start_time), 900_000 / 90000, 'the first segment starts at its tag\'s PTS (the first group\'s)');
  t.equal(
    readTransportStreamTimestamp(segments[1]!),
    900_000 + samplesToTicks(1152 * frameCount(chunks.slice(0, half)), 48000),
    "the second segment is stamped where the first one's MP3 frames end",
  );
  // A player strips each segment's tag and plays the frames: all of them, in order.
  const audio = Buffer.concat(segments.map((segment) => segment.subarray(TIMESTAMP_TAG_BYTES)));
  t.same(audio, Buffer.concat(frames.map((frame) => frame.data)), 'the frames back to back, none lost or repeated');
  t.equal(decode(audio), frames.length * 1152, 'FFmpeg decodes every sample');
});

t.test("a segment's parts joined end to end hold every frame and decode like the segment", async (t) => {
  const chunks = chunked(lameFrames(2), 0, 0);
  const whole = new PackedAudioMuxer().muxSegment(chunks);
  const partMuxer = new PackedAudioMuxer();
  const parts = [partMuxer.muxSegment(chunks.slice(0, 20)), partMuxer.muxSegment(chunks.slice(20, 35)), partMuxer.muxSegment(chunks.slice(35))];
  const joined = Buffer.concat(parts);
  t.equal(joined.length, whole.length + 2 * TIMESTAMP_TAG_BYTES, 'a tag per part, the same frames');
  // The tags inside are skipped as a player skips them (hls.js reads ID3 anywhere in packed audio).
  const reader = new MpegAudioReader();
  t.same(Buffer.concat(reader.push(joined).map((frame) => frame.data)), Buffer.from(whole.subarray(TIMESTAMP_TAG_BYTES)), 'every frame, in order');
  t.equal(reader.stats.skippedBytes, 3 * TIMESTAMP_TAG_BYTES, 'and only the tags between them');
  const ends = [0, 20, 35].map((groups) => samplesToTicks(1152 * frameCount(chunks.slice(0, groups)), 48000));
  t.same(parts.map((part) => readTransportStreamTimestamp(part)), ends, 'each part stamped where the previous one ends');
});

t.test('the MP3 timeline runs on while it stays inside the group, and re-anchors on the group after a jump', async (t) => {
  const frames = lameFrames(1);
  const muxer = new PackedAudioMuxer();
  const first = chunked(frames.slice(0, 16), 1000, 300);
  t.equal(readTransportStreamTimestamp(muxer.muxSegment(first)), 1000, 'the first segment: the group PTS');
  // Continuing: 16 frames later, on a group whose span holds that point.
  const expected = 1000 + 16 * MP3_TICKS;
  const next: TimedFrame[] = [{ data: frames[16]!.data, pts: expected - 500, durationTicks: GROUP_TICKS }];
  t.equal(readTransportStreamTimestamp(muxer.muxSegment(next)), expected, 'the counted timeline');
  // An input switch moved the grid: the next chunk's group lies a whole frame away.
  const moved: TimedFrame[] = [{ data: frames[17]!.data, pts: expected + 3 * MP3_TICKS, durationTicks: GROUP_TICKS }];
  t.equal(readTransportStreamTimestamp(muxer.muxSegment(moved)), expected + 3 * MP3_TICKS, 'the group PTS again');
  const empty = muxer.muxSegment([{ data: new Uint8Array(0), pts: 5, durationTicks: GROUP_TICKS }]);
  t.equal(empty.length, TIMESTAMP_TAG_BYTES, 'no frames: just the tag');
});

t.test('the muxer factory picks packed audio for MP3 renditions and MPEG-TS otherwise', async (t) => {
  t.type(codecMuxers({ id: 'mp3', codec: 'mp3' }), PackedAudioMuxer);
  t.type(codecMuxers({ id: 'hifi', codec: 'aac' }), TsSegmentMuxer);
  t.type(codecMuxers({ id: 'hifi' }), TsSegmentMuxer);
});
