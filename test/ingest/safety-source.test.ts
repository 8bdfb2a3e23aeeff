/**
 * The safety source (src/ingest/safety-source.ts), checked with real FFmpeg: groups shaped
 * like an input worker's (one frame per rendition, the channel's rate, 1024 samples apart),
 * silence frames identical to FFmpeg's own, and what a listener would hear when the groups
 * are decoded: digital silence, a tone file looping, a file played once then silence, and
 * silence instead of a file that cannot be used.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { ChannelConfig } from '../../src/config/config-schema.js';
import { loadSafetySource, silentAacFrame, type SafetySource } from '../../src/ingest/safety-source.js';
import { AdtsReader, type AacFrame } from '../../src/media/adts.js';
import { MP3_OBJECT_TYPE, MpegAudioReader, parseMpegAudioHeader } from '../../src/media/mpeg-audio.js';
import { samplesToTicks } from '../../src/media/pts.js';
import { decodePcm, identifyTone, longestDropoutSeconds } from '../helpers/tone.js';

const silentLogger = pino({ level: 'silent' });

function channelWith(options: { fallback?: unknown; sampleRate?: number; renditions?: unknown[] } = {}): ChannelConfig {
  return resolveConfig({
    channels: [
      {
        id: 'fip',
        ...(options.sampleRate ? { sampleRate: options.sampleRate } : {}),
        ...(options.fallback ? { fallback: options.fallback } : {}),
        renditions: options.renditions ?? [
          { id: 'mono', bitrate: '32k', audioChannels: 1 },
          { id: 'hifi', bitrate: '128k' },
        ],
        inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }],
      },
    ],
  }).channels[0]!;
}

function take(source: SafetySource, count: number): AacFrame[][] {
  return Array.from({ length: count }, () => source.nextGroup());
}

/** Decodes one rendition's frames (whole ADTS frames, back to back) with FFmpeg into mono 16-bit PCM. */
function decode(groups: AacFrame[][], rendition: number, sampleRate = 48000): Int16Array {
  const adts = Buffer.concat(groups.map((group) => group[rendition]!.data));
  const pcm = execFileSync(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-f', 'aac', '-i', 'pipe:0', '-ac', '1', '-ar', String(sampleRate), '-f', 's16le', 'pipe:1'],
    { input: adts, maxBuffer: 64 * 1024 * 1024, timeout: 20_000 },
  );
  return new Int16Array(pcm.buffer, pcm.byteOffset, pcm.byteLength / 2);
}

/** Share of a window's energy at `frequency` (Goertzel): near 1 for a pure tone there, near 0 for another. */
function toneShare(samples: Int16Array, frequency: number, sampleRate: number): number {
  const coefficient = 2 * Math.cos((2 * Math.PI * frequency) / sampleRate);
  let previous = 0;
  let beforePrevious = 0;
  let energy = 0;
  for (const sample of samples) {
    const current = sample + coefficient * previous - beforePrevious;
    beforePrevious = previous;
    previous = current;
    energy += sample * sample;
  }
  const power = previous * previous + beforePrevious * beforePrevious - coefficient * previous * beforePrevious;
  return energy === 0 ? 0 : (2 * power) / (samples.length * energy);
}

function windows(samples: Int16Array, size: number): Int16Array[] {
  const result: Int16Array[] = [];
  for (let at = 0; at + size <= samples.length; at += size) result.push(samples.subarray(at, at + size));
  return result;
}

function peak(samples: Int16Array): number {
  return samples.reduce((max, sample) => Math.max(max, Math.abs(sample)), 0);
}

/** The smallest period after which rendition 0's frames repeat byte for byte (0 if none within the groups). */
function loopPeriod(groups: AacFrame[][]): number {
  const frames = groups.map((group) => Buffer.from(group[0]!.data));
  for (let period = 2; period <= frames.length / 2; period++) {
    if (frames.every((frame, index) => index + period >= frames.length || frame.equals(frames[index + period]!))) return period;
  }
  return 0;
}

async function tempDirectory(t: Test): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'onair-safety-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

/** A 1 kHz tone of `seconds`, as a jingle file (`.aac` or `.wav`). */
async function toneFile(t: Test, seconds: number, extension: 'aac' | 'wav'): Promise<string> {
  const path = join(await tempDirectory(t), `tone.${extension}`);
  const codec = extension === 'aac' ? ['-c:a', 'aac', '-b:a', '128k'] : ['-c:a', 'pcm_s16le'];
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=1000:duration=${seconds}:sample_rate=48000`, '-ac', '2', ...codec, path], { timeout: 20_000 });
  return path;
}

t.test('silence gives one AAC-LC frame per rendition, at the channel’s rate, 1024 samples apart', async (t) => {
  const channel = channelWith({ sampleRate: 44100 });
  const source = await loadSafetySource(channel, { logger: silentLogger });
  t.equal(source.description, 'silence');
  const groups = take(source, 300); // several times round the loop
  t.ok(
    groups.every((group) => group.length === 2),
    'two frames per group: one per rendition',
  );
  t.ok(
    groups.every((group) => group.every((frame) => frame.sampleRate === 44100 && frame.objectType === 2 && frame.samples === 1024)),
    'every frame is AAC-LC at 44.1 kHz with 1024 samples',
  );
  t.ok(groups.every((group) => group[0]!.channelCount === 1 && group[1]!.channelCount === 2), 'rendition i has rendition i’s channel count');
  t.ok(
    groups.every((group, index) => group.every((frame) => frame.pts === samplesToTicks(index * 1024, 44100))),
    'PTS counts samples exactly (no rounding drift at 44.1 kHz), the same in every rendition',
  );
});

t.test('silence frames are bit for bit what FFmpeg’s encoder makes of digital silence', async (t) => {
  for (const [channels, sampleRate] of [[1, 48000], [2, 48000], [2, 44100]] as const) {
    const adts = execFileSync(
      'ffmpeg',
      ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `anullsrc=r=${sampleRate}:cl=stereo`, '-t', '0.5', '-ac', String(channels), '-c:a', 'aac', '-b:a', '128k', '-f', 'adts', 'pipe:1'],
      { timeout: 20_000 },
    );
    const frames = new AdtsReader().push(adts);
    const ours = silentAacFrame(sampleRate, channels);
    t.same(Buffer.from(frames[5]!.data), Buffer.from(ours.data), `${channels} channel(s) at ${sampleRate} Hz: ${ours.data.length} bytes`);
    t.match(ours, { sampleRate, channelCount: channels, objectType: 2, samples: 1024 });
  }
});

t.test('silence decodes to digital silence in every rendition', async (t) => {
  const source = await loadSafetySource(channelWith(), { logger: silentLogger });
  const groups = take(source, 250);
  for (const rendition of [0, 1]) {
    const pcm = decode(groups, rendition);
    t.ok(pcm.length >= 240 * 1024, `rendition ${rendition}: ${pcm.length} samples decoded`);
    t.equal(peak(pcm), 0, `rendition ${rendition}: every sample is zero`);
  }
});

t.test('a tone file loops, and decodes to that tone across the seam', async (t) => {
  // 1.6 s = 75 frames exactly, and a 1 kHz tone ends where it starts: a perfect loop to test the seam with.
  const path = await toneFile(t, 1.6, 'wav');
  // Kept, so that a file the loader refuses says why in the failure.
  const logged: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
  const source = await loadSafetySource(channelWith({ fallback: { file: path, loop: true } }), { logger });
  t.equal(source.description, `file ${path} (looped)`, logged.join(''));
  const groups = take(source, 300);
  t.equal(loopPeriod(groups), 75, 'the file repeats every 75 frames (1.6 s): nothing added, nothing lost');
  for (const rendition of [0, 1]) {
    const pcm = decode(groups, rendition);
    const frames = windows(pcm, 1024);
    const dips = frames.map((frame, index) => ({ index, share: toneShare(frame, 1000, 48000) })).filter((frame) => frame.share < 0.85);
    // The start of the stream and each seam (every 75 frames) decode as one softer frame: the
    // encoder's MDCT overlap saw silence before the file's first frame. Everything else is the tone.
    t.ok(
      dips.every((dip) => dip.index % 75 === 0),
      `rendition ${rendition}: every frame is the 1 kHz tone except at the seams (${dips.map((dip) => `${dip.index}: ${dip.share.toFixed(2)}`).join(', ')})`,
    );
    const seamPeak = Math.max(...frames.filter((_, index) => index % 75 === 0).map(peak));
    const otherPeak = Math.max(...frames.filter((_, index) => index % 75 !== 0).map(peak));
    t.ok(seamPeak <= otherPeak, `no click: the seams peak at ${seamPeak}, the rest of the tone at ${otherPeak}`);
    t.ok(Math.max(...frames.map((frame) => toneShare(frame, 1500, 48000))) < 0.05, 'and no other tone');
  }
  source.rewind();
  t.same(source.nextGroup()[0]!.data, groups[0]![0]!.data, 'rewind() starts the file again');
});

t.test('a file that does not loop plays once, then silence', async (t) => {
  const path = await toneFile(t, 1, 'aac');
  const source = await loadSafetySource(channelWith({ fallback: { file: path, loop: false } }), { logger: silentLogger });
  t.equal(source.description, `file ${path} (once, then silence)`);
  const pcm = decode(take(source, 200), 1);
  const tone = pcm.subarray(2048, 40_000);
  t.ok(toneShare(tone, 1000, 48000) > 0.9, 'first the tone');
  t.equal(peak(pcm.subarray(Math.round(1.1 * 48000))), 0, 'then, from just after its end, digital silence');
});

t.test('a fallback file that cannot be used is logged with the channel, and silence plays instead', async (t) => {
  const directory = await tempDirectory(t);
  const notAudio = join(directory, 'notes.txt');
  await writeFile(notAudio, 'this is not audio\n');
  for (const path of [join(directory, 'missing.aac'), notAudio]) {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const source = await loadSafetySource(channelWith({ fallback: { file: path, loop: true } }), { logger: pino({ level: 'info' }, sink) });
    t.equal(source.description, `silence (${path} could not be used)`);
    t.match(lines, [{ level: 50, channel: 'fip', file: path }], `${path}: one error naming the channel and the file`);
    t.equal(peak(decode(take(source, 100), 1)), 0, 'the safety source is digital silence');
  }
});

// MP3 renditions (docs/architecture.md, "MP3 renditions"): chunks of MP3 frames on the AAC grid.
const WITH_MP3 = [
  { id: 'hifi', bitrate: '128k' },
  { id: 'mp3', bitrate: '128k', codec: 'mp3' },
  { id: 'mp3-mono', bitrate: '64k', codec: 'mp3', audioChannels: 1 },
];

/** An MP3 rendition's chunks back to back: its raw MP3 stream. */
function mp3Of(groups: AacFrame[][], rendition: number): Uint8Array {
  return Buffer.concat(groups.map((group) => group[rendition]!.data));
}

t.test('silence gives MP3 renditions 8 silent frames every 9 groups, which decode to digital silence', async (t) => {
  for (const sampleRate of [48000, 44100]) {
    const source = await loadSafetySource(channelWith({ sampleRate, renditions: WITH_MP3 }), { logger: silentLogger });
    const groups = take(source, 900);
    t.ok(groups.every((group) => group[0]!.objectType === 2 && group[1]!.objectType === MP3_OBJECT_TYPE && group[2]!.objectType === MP3_OBJECT_TYPE));
    t.same(groups.slice(0, 9).map((group) => group[1]!.data.length > 0 ? 1 : 0), [1, 1, 1, 1, 1, 1, 1, 1, 0], `${sampleRate} Hz: frame k in group floor(k × 1152 / 1024)`);
    const frames = new MpegAudioReader().push(mp3Of(groups, 1));
    t.equal(frames.length, 800, '1152 samples per frame over 900 × 1024 samples');
    t.match(parseMpegAudioHeader(frames[0]!.data, 0), { sampleRate, bitrate: 128000, channelCount: 2 });
    t.match(parseMpegAudioHeader(mp3Of(groups, 2), 0), { sampleRate, bitrate: 64000, channelCount: 1 });
    const pcm = await decodePcm(mp3Of(groups, 2), { format: 'mp3', sampleRate });
    t.equal(pcm.length, 800 * 1152, `${sampleRate} Hz: every sample decoded`);
    t.ok(pcm.every((sample) => sample === 0), `${sampleRate} Hz: digital silence`);
    t.equal(peak(decode(groups, 0, sampleRate)), 0, 'and the AAC rendition is silent as before');
  }
});

t.test('a fallback file is encoded into MP3 renditions too, and loops as the tone on the AAC grid', async (t) => {
  const path = await toneFile(t, 1.6, 'wav');
  const logged: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
  const source = await loadSafetySource(channelWith({ fallback: { file: path, loop: true }, renditions: WITH_MP3 }), { logger });
  t.equal(source.description, `file ${path} (looped)`, logged.join(''));
  const groups = take(source, 300);
  t.equal(loopPeriod(groups), 72, 'the file (75 groups) loops every 72 groups: a whole number of 9-group MP3 periods');
  const frames = new MpegAudioReader().push(mp3Of(groups.slice(0, 288), 1));
  t.equal(frames.length, 4 * 64, 'exactly 8 MP3 frames per 9 groups in every loop: the MP3 timeline keeps time');
  t.ok(frames.every((frame) => frame.sampleRate === 48000 && frame.channelCount === 2));
  for (const rendition of [1, 2]) {
    const reading = await identifyTone(mp3Of(groups, rendition), [1000, 1500], { format: 'mp3' });
    t.equal(reading.tone, 1000, `rendition ${rendition}: the tone`);
  }
  // A loop seam may overlap or gap by less than an MP3 frame (24 ms).
  const dropout = longestDropoutSeconds(await decodePcm(mp3Of(groups, 1), { format: 'mp3' }), 16000);
  t.ok(dropout <= 0.024, `no dropout longer than one MP3 frame at the seams (${dropout} s)`);
});
