/**
 * The fMP4/CMAF muxer (src/media/fmp4-muxer.ts) against real tools: FFmpeg's AAC and LAME
 * encoders make the frames; ffprobe and FFmpeg read the init segment with segments or LL-HLS
 * parts joined after it; mp4box.js (an independent parser) reports the track, the fragments
 * and every sample. Also: the decode timeline across segments, the PTS wrap and jumps, the
 * ID3 emsg, and the container overhead against the MPEG-TS muxer's.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFile, MP4BoxBuffer } from 'mp4box';
import t, { type Test } from 'tap';
import { AdtsReader, parseAdtsHeader } from '../../src/media/adts.js';
import { Fmp4Muxer, codecsAttribute, fmp4MuxerFor, fmp4Muxers, formatFor } from '../../src/media/fmp4-muxer.js';
import { MpegAudioReader, mp3Chunk, type MpegAudioFrame } from '../../src/media/mpeg-audio.js';
import { joinParts, type TimedFrame } from '../../src/media/muxer.js';
import { PTS_WRAP, ptsAdd } from '../../src/media/pts.js';
import { TsSegmentMuxer } from '../../src/media/ts-muxer.js';
import { parseWithMp4box } from '../helpers/mp4box.js';

const AAC_TICKS = 1920; // 1024 samples at 48 kHz
const MP3_TICKS = 2160; // 1152 samples at 48 kHz

/** ADTS AAC-LC frames of a 48 kHz stereo tone from FFmpeg's encoder, timed from `startPts`. */
function aacFrames(seconds: number, bitrate: string, startPts: number): TimedFrame[] {
  const adts = execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-ac', '2', '-c:a', 'aac', '-b:a', bitrate, '-f', 'adts', 'pipe:1',
  ], { timeout: 30_000, maxBuffer: 64 << 20 });
  return new AdtsReader().push(adts).map((frame, index) => ({ data: frame.data, pts: ptsAdd(startPts, index * AAC_TICKS), durationTicks: AAC_TICKS }));
}

/** Raw MP3 frames of a 48 kHz stereo tone from FFmpeg's LAME. */
function lameFrames(seconds: number): MpegAudioFrame[] {
  const mp3 = execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '128k', '-write_xing', '0', '-id3v2_version', '0', '-f', 'mp3', 'pipe:1',
  ], { timeout: 30_000 });
  return new MpegAudioReader().push(mp3);
}

/** The MP3 frames as the aligner chunks them on the 1024-sample groups (frame k goes to group floor(k·2160/1920)). */
function chunked(frames: readonly MpegAudioFrame[], groupPts: number): TimedFrame[] {
  const groupCount = Math.floor((frames.length * MP3_TICKS) / AAC_TICKS);
  return Array.from({ length: groupCount }, (_, group) => {
    const inGroup = frames.filter((_, k) => Math.floor((k * MP3_TICKS) / AAC_TICKS) === group);
    return { data: mp3Chunk(inGroup, 48000, 2).data, pts: groupPts + group * AAC_TICKS, durationTicks: AAC_TICKS };
  });
}

/** Consecutive slices of `frames`, `size` each (the last may be shorter). */
function slices<T>(frames: readonly T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(frames.length / size) }, (_, index) => frames.slice(index * size, (index + 1) * size));
}

function tempFile(t: Test, name: string, bytes: Uint8Array): string {
  const directory = mkdtempSync(join(tmpdir(), 'onair-fmp4-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, name);
  writeFileSync(path, bytes);
  return path;
}

interface Probe {
  streams: { codec_name: string; sample_rate: string; channels: number; nb_read_packets: string; time_base: string }[];
  packets: { pts: number }[];
}

/** Runs a tool and returns its stdout; a non-zero exit or anything on stderr (at `-v error`) fails. */
function quietRun(command: string, args: string[]): Buffer {
  const run = spawnSync(command, args, { timeout: 30_000, maxBuffer: 64 << 20 });
  const errors = run.stderr?.toString() ?? '';
  if (run.status !== 0 || errors !== '') throw new Error(`${command} ${args.join(' ')}: exit ${run.status}, ${errors}`);
  return run.stdout;
}

/** ffprobe's view of a file: stream facts and every packet's PTS; any error fails. */
function probe(path: string): Probe {
  const json = quietRun('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=codec_name,sample_rate,channels,nb_read_packets,time_base:packet=pts', '-of', 'json', path]);
  return JSON.parse(json.toString()) as Probe;
}

/** Samples FFmpeg decodes (mono s16) from a file; any error fails. */
function decodedSamples(path: string): number {
  return quietRun('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-f', 's16le', '-ac', '1', 'pipe:1']).length / 2;
}

t.test('ffprobe reads init + 2-s segments as AAC 48 kHz stereo, every frame a packet on a continuous timeline', async (t) => {
  const startPts = 900_000; // 10 s
  const frames = aacFrames(6, '96k', startPts);
  const muxer = new Fmp4Muxer();
  const segments = slices(frames, 94).map((segment) => muxer.muxSegment(segment));
  const path = tempFile(t, 'aac.mp4', joinParts([muxer.initSegment(), ...segments]));
  const facts = probe(path);
  t.match(facts.streams, [{ codec_name: 'aac', sample_rate: '48000', channels: 2, nb_read_packets: String(frames.length), time_base: '1/48000' }]);
  t.equal(facts.packets[0]!.pts, 480_000, 'the first sample at the first PTS (10 s) in samples');
  t.ok(facts.packets.every((packet, index) => packet.pts === 480_000 + index * 1024), 'each packet 1024 samples after the previous, across segments');
  t.equal(decodedSamples(path), frames.length * 1024, 'FFmpeg decodes exactly every sample');
});

t.test('LL-HLS parts joined after the init segment decode like the segment, and each part is one moof + mdat', async (t) => {
  const frames = aacFrames(4, '32k', 0);
  const whole = new Fmp4Muxer();
  const segment = whole.muxSegment(frames);
  const partMuxer = new Fmp4Muxer();
  const parts = slices(frames, 24).map((part) => partMuxer.muxSegment(part));
  const joined = joinParts(parts);
  const payload = frames.reduce((total, frame) => total + frame.data.length - parseAdtsHeader(frame.data, 0)!.headerLength, 0);
  t.equal(joined.length - payload, parts.length * (segment.length - payload - 4 * frames.length) + 4 * frames.length, 'a moof and mdat header per part, a size per sample');
  const path = tempFile(t, 'parts.mp4', joinParts([partMuxer.initSegment(), joined]));
  t.equal(probe(path).streams[0]!.nb_read_packets, String(frames.length));
  t.equal(decodedSamples(path), frames.length * 1024, 'every sample of every part');
  const parsed = parseWithMp4box(joinParts([partMuxer.initSegment(), joined]));
  t.same(parsed.topLevel, ['ftyp', 'moov', ...parts.flatMap(() => ['moof', 'mdat'])], 'mp4box: the init then a moof + mdat per part');
});

t.test("FFmpeg's HLS reader plays an fMP4 playlist (EXT-X-MAP, segments and parts) to the exact sample count", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-fmp4-hls-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const frames = aacFrames(6, '96k', 90_000);
  const muxer = new Fmp4Muxer();
  // Segment 0 whole, segment 1 as four parts joined (what the packager publishes), segment 2 whole.
  const segments = [
    muxer.muxSegment(frames.slice(0, 94)),
    joinParts(slices(frames.slice(94, 188), 24).map((part) => muxer.muxSegment(part))),
    muxer.muxSegment(frames.slice(188)),
  ];
  writeFileSync(join(directory, 'init.mp4'), muxer.initSegment());
  segments.forEach((segment, index) => writeFileSync(join(directory, `${index}.m4s`), segment));
  const entries = [94, 94, frames.length - 188].map((count, index) => `#EXTINF:${((count * 1024) / 48000).toFixed(5)},\n${index}.m4s\n`);
  const playlist = join(directory, 'audio.m3u8');
  writeFileSync(playlist, `#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI="init.mp4"\n${entries.join('')}#EXT-X-ENDLIST\n`);
  t.match(probe(playlist).streams, [{ codec_name: 'aac', sample_rate: '48000', channels: 2 }]);
  t.equal(decodedSamples(playlist), frames.length * 1024, 'every sample of every segment, none twice');
});

t.test('mp4box.js reports a fragmented AAC-LC track with every sample, its size and decode time', async (t) => {
  const frames = aacFrames(3, '192k', 123_456);
  const muxer = new Fmp4Muxer();
  const bytes = joinParts([new Uint8Array(0), ...slices(frames, 47).map((segment) => muxer.muxSegment(segment))]);
  const { info, samples } = parseWithMp4box(joinParts([muxer.initSegment(), bytes]));
  t.equal(info.isFragmented, true);
  t.match(info.brands, ['cmfc', 'cmfc', 'iso6', 'mp41', 'dash']);
  t.equal(info.tracks.length, 1);
  t.match(info.tracks[0], { codec: 'mp4a.40.2', timescale: 48000, audio: { sample_rate: 48000, channel_count: 2, sample_size: 16 } });
  t.equal(info.tracks[0]!.codec, codecsAttribute({ codec: 'aac' }), 'the CODECS helper agrees with the parser');
  t.equal(samples.length, frames.length, 'every frame a sample');
  const firstDts = Math.round((123_456 * 48000) / 90000);
  t.ok(samples.every((sample, index) => sample.dts === firstDts + index * 1024 && sample.duration === 1024), 'decode times count samples from the first PTS');
  t.same(samples.map((sample) => sample.size), frames.map((frame) => frame.data.length - 7), 'each sample is the raw access unit, the ADTS header stripped');
});

t.test('across the 2^33 PTS wrap the decode time keeps counting, and a jump re-anchors by its distance', async (t) => {
  const nearWrap = PTS_WRAP - 50 * AAC_TICKS;
  const frames = aacFrames(3, '64k', nearWrap);
  const muxer = new Fmp4Muxer();
  const chunks = slices(frames, 40).map((segment) => muxer.muxSegment(segment));
  const base = Math.round((nearWrap * 48000) / 90000);
  t.equal(muxer.nextDecodeTime(), base + frames.length * 1024, 'no wrap in tfdt: the count runs past 2^33 ticks');
  const path = tempFile(t, 'wrap.mp4', joinParts([muxer.initSegment(), ...chunks]));
  const packets = probe(path).packets;
  t.ok(packets.every((packet, index) => packet.pts === base + index * 1024), 'ffprobe sees one continuous timeline');
  // An input switch onto a new grid, 1 s later than the count says.
  const expectedPts = ptsAdd(nearWrap, frames.length * AAC_TICKS);
  const later = muxer.muxSegment([{ ...frames[0]!, pts: ptsAdd(expectedPts, 90_000) }]);
  t.ok(later.length > 0);
  t.equal(muxer.nextDecodeTime(), base + frames.length * 1024 + 48000 + 1024, 'moved 48000 samples on, then the frame');
});

t.test('MP3 renditions: each MP3 frame one sample of 1152, decode times counted across chunks, FFmpeg decodes them all', async (t) => {
  const frames = lameFrames(4);
  const chunks = chunked(frames, 90_000);
  const muxer = fmp4Muxers({ id: 'mp3', codec: 'mp3' }) as Fmp4Muxer;
  const segments = slices(chunks, 47).map((segment) => muxer.muxSegment(segment));
  const bytes = joinParts([muxer.initSegment(), ...segments]);
  const path = tempFile(t, 'mp3.mp4', bytes);
  const facts = probe(path);
  t.match(facts.streams, [{ codec_name: 'mp3', sample_rate: '48000', channels: 2, nb_read_packets: String(frames.length) }]);
  t.ok(facts.packets.every((packet, index) => packet.pts === 48000 + index * 1152), 'one timeline of 1152-sample frames from the first group (1 s)');
  t.equal(decodedSamples(path), frames.length * 1152, 'FFmpeg decodes every sample');
  const { info, samples } = parseWithMp4box(bytes);
  t.match(info.tracks[0], { codec: 'mp4a.6b', timescale: 48000 });
  t.equal(codecsAttribute({ codec: 'mp3' }), 'mp4a.40.34');
  t.same(samples.map((sample) => sample.size), frames.map((frame) => frame.data.length), 'each MP3 frame whole');
});

t.test('timed metadata becomes an ID3 emsg before the moof, at its place on the decode timeline', async (t) => {
  const frames = aacFrames(1, '96k', 90_000);
  const muxer = new Fmp4Muxer();
  const nowPlaying = { title: 'Song', artist: 'Band', setAt: 0 };
  const chunk = muxer.muxSegment(frames, [{ pts: 90_000 + 10 * AAC_TICKS, nowPlaying }]);
  const bytes = joinParts([muxer.initSegment(), chunk]);
  const file = createFile();
  file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.slice().buffer, 0));
  file.flush();
  t.same(file.boxes.map((parsed: { type: string }) => parsed.type), ['ftyp', 'moov', 'emsg', 'moof', 'mdat']);
  const emsg = file.boxes[2] as unknown as { version: number; scheme_id_uri: string; timescale: number; presentation_time: number; message_data: Uint8Array };
  t.match(emsg, { version: 1, scheme_id_uri: 'https://aomedia.org/emsg/ID3', timescale: 48000, presentation_time: 48000 + 10 * 1024 });
  t.equal(Buffer.from(emsg.message_data).subarray(0, 3).toString('latin1'), 'ID3');
  t.ok(Buffer.from(emsg.message_data).includes(Buffer.from('Song')), 'the tag carries the title');
  t.equal(decodedSamples(tempFile(t, 'emsg.mp4', bytes)), frames.length * 1024, 'FFmpeg still decodes every sample');
  const quiet = new Fmp4Muxer({ timedMetadata: false });
  t.equal(quiet.muxSegment(frames, [{ pts: 90_000, nowPlaying }]).length, chunk.length - (file.boxes[2] as unknown as { size: number }).size, 'off: no emsg');
});

t.test('the factory is codec aware; the init segment waits for the first frame or a given format', async (t) => {
  t.type(fmp4Muxers({ id: 'hifi' }), Fmp4Muxer);
  t.throws(() => fmp4Muxers({ id: 'vorbis', codec: 'vorbis' }), RangeError);
  t.throws(() => new Fmp4Muxer().initSegment(), RangeError);
  const given = new Fmp4Muxer({ format: formatFor('aac', 44100, 1)! });
  t.match(parseWithMp4box(given.initSegment()).info.tracks[0], { codec: 'mp4a.40.2', timescale: 44100, audio: { sample_rate: 44100, channel_count: 1 } });
  // From a configured rendition: the same init segment as the first real frame gives.
  const frames = aacFrames(1, '96k', 0);
  const learned = new Fmp4Muxer();
  learned.muxSegment(frames);
  t.same(fmp4MuxerFor({ id: 'hifi', codec: 'aac', sampleRate: 48000, channelCount: 2 }).initSegment(), learned.initSegment(), 'AAC-LC 48 kHz stereo from the config');
  t.match(parseWithMp4box(fmp4MuxerFor({ id: 'mp3', codec: 'mp3', sampleRate: 44100, channelCount: 2 }).initSegment()).info.tracks[0], { codec: 'mp4a.6b', timescale: 44100 });
  t.equal(formatFor('aac', 12345, 2), undefined, 'a rate ADTS cannot say');
});

t.test('container overhead per byte of AAC payload: fMP4 against MPEG-TS, 2-s segments and 0.5-s parts', async (t) => {
  const rows: string[] = [];
  for (const bitrate of ['32k', '96k', '192k']) {
    const frames = aacFrames(20, bitrate, 900_000);
    const payload = frames.reduce((total, frame) => total + frame.data.length - parseAdtsHeader(frame.data, 0)!.headerLength, 0);
    for (const [label, size, segmentSeconds] of [['2-s segments', 94, 2], ['0.5-s parts', 24, 2]] as const) {
      const fmp4 = new Fmp4Muxer({ timedMetadata: false });
      const ts = new TsSegmentMuxer({ segmentSeconds, timedMetadata: false });
      const fmp4Bytes = slices(frames, size).reduce((total, chunk) => total + fmp4.muxSegment(chunk).length, 0);
      const tsBytes = slices(frames, size).reduce((total, chunk) => total + ts.muxSegment(chunk).length, 0);
      const fmp4Overhead = (fmp4Bytes - payload) / payload;
      const tsOverhead = (tsBytes - payload) / payload;
      rows.push(`${bitrate.padStart(4)} ${label}: fMP4 ${(100 * fmp4Overhead).toFixed(2)} %, MPEG-TS ${(100 * tsOverhead).toFixed(2)} %`);
      t.ok(fmp4Overhead < tsOverhead, `${bitrate} ${label}: fMP4 costs less than MPEG-TS`);
    }
  }
  t.comment(`overhead (container bytes per payload byte, 20 s of FFmpeg AAC at 48 kHz stereo, no metadata):\n${rows.join('\n')}`);
});
