/**
 * Opus and FLAC renditions end to end below the packager
 * (docs/architecture.md, "Opus and FLAC renditions"): FFmpeg run with the live encoder's own output options (AAC + Opus + FLAC in one
 * MPEG-TS), the encoder output reader (TS demux, Opus and FLAC framing, the aligner), the fMP4
 * muxer; FFmpeg decodes each init segment + segments back to the exact sample count, ffprobe
 * reads every init and media segment alone and joined without a word, mp4box.js sees `Opus` and
 * `fLaC` tracks. The safety source's silence, muxed the same way, decodes to zeros.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { loadConfigFile } from '../../src/config/load-config.js';
import { ffmpegOutputOptions, type EncoderRendition } from '../../src/ffmpeg/encoder-arguments.js';
import { EncoderOutputReader } from '../../src/ingest/input-worker.js';
import { loadSafetySource } from '../../src/ingest/safety-source.js';
import type { AacFrame } from '../../src/media/adts.js';
import { fmp4MuxerFor } from '../../src/media/fmp4-muxer.js';
import { parseWithMp4box } from '../helpers/mp4box.js';

const SECONDS = 3;
const GROUP_TICKS = 1920;
const RENDITIONS: (EncoderRendition & { id: string })[] = [
  { id: 'aac', bitrate: 96_000, audioChannels: 2, codec: 'aac' },
  { id: 'opus', bitrate: 64_000, audioChannels: 2, codec: 'opus' },
  { id: 'flac', bitrate: 0, audioChannels: 2, codec: 'flac' },
  { id: 'flac24', bitrate: 0, audioChannels: 1, codec: 'flac', bitDepth: 24 },
];

function temporaryDirectory(t: Test): string {
  const directory = mkdtempSync(join(tmpdir(), 'onair-opus-flac-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

/** Runs a tool and returns its stdout; a non-zero exit or anything on stderr (at `-v error`) fails. */
function quietRun(command: string, args: string[]): Buffer {
  const run = spawnSync(command, args, { timeout: 30_000, maxBuffer: 64 << 20 });
  const errors = run.stderr?.toString() ?? '';
  if (run.status !== 0 || errors !== '') throw new Error(`${command} ${args.join(' ')}: exit ${run.status}, ${errors}`);
  return run.stdout;
}

/** Init segment + 1-s segments of rendition `index` of the groups. */
function muxed(groups: readonly AacFrame[][], index: number, rendition: { id: string; codec?: string; audioChannels: number; bitDepth?: number }, sampleRate: number): Uint8Array[] {
  const muxer = fmp4MuxerFor({ id: rendition.id, codec: rendition.codec, sampleRate, channelCount: rendition.audioChannels, ...(rendition.bitDepth ? { bitDepth: rendition.bitDepth } : {}) });
  const segments: Uint8Array[] = [muxer.initSegment()];
  const perSegment = Math.round(sampleRate / 1024);
  for (let start = 0; start < groups.length; start += perSegment) {
    segments.push(muxer.muxSegment(groups.slice(start, start + perSegment).map((group) => ({ data: group[index]!.data, pts: group[index]!.pts!, durationTicks: GROUP_TICKS }))));
  }
  return segments;
}

t.test('AAC, Opus and FLAC from one FFmpeg: fMP4 that FFmpeg decodes to the exact sample count and ffprobe reads piece by piece', async (t) => {
  const directory = temporaryDirectory(t);
  const spec = { inputUrl: 'lavfi', sampleRate: 48000, renditions: RENDITIONS };
  const ts = execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`,
    ...ffmpegOutputOptions(spec), '-f', 'mpegts', 'pipe:1',
  ], { timeout: 60_000, maxBuffer: 64 << 20 });
  let unexpected = -1;
  const reader = new EncoderOutputReader(RENDITIONS.map((rendition) => rendition.codec!), (streams) => (unexpected = streams));
  const groups = [...reader.push(ts), ...reader.flush()];
  t.equal(unexpected, -1, 'the four streams are the four renditions');
  t.ok(groups.length >= (SECONDS * 48000) / 1024 - 2, `${groups.length} groups`);
  t.ok(groups.slice(1).every((group, index) => group[0]!.pts === groups[index]![0]!.pts! + GROUP_TICKS), 'groups 1024 samples apart');

  const expectedCodec = { aac: 'mp4a', opus: 'Opus', flac: 'fLaC', flac24: 'fLaC' } as Record<string, string>;
  for (const [index, rendition] of RENDITIONS.entries()) {
    const pieces = muxed(groups, index, rendition, 48000);
    const path = join(directory, `${rendition.id}.mp4`);
    writeFileSync(path, Buffer.concat(pieces));
    // Every piece alone (an init, an init + one segment) is read without a word.
    writeFileSync(join(directory, 'init.mp4'), pieces[0]!);
    quietRun('ffprobe', ['-v', 'error', join(directory, 'init.mp4')]);
    for (const segment of pieces.slice(1)) {
      writeFileSync(join(directory, 'one.mp4'), Buffer.concat([pieces[0]!, segment]));
      quietRun('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=nb_read_packets', join(directory, 'one.mp4')]);
    }
    const probe = JSON.parse(quietRun('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,sample_rate,channels,bits_per_raw_sample', '-of', 'json', path]).toString()) as {
      streams: { codec_name: string; sample_rate: string; channels: number; bits_per_raw_sample?: string }[];
    };
    t.match(probe.streams[0], { codec_name: rendition.codec, sample_rate: '48000', channels: rendition.audioChannels }, `${rendition.id}: ffprobe`);
    if (rendition.codec === 'flac') t.equal(probe.streams[0]!.bits_per_raw_sample, String(rendition.bitDepth ?? 16), `${rendition.id}: bits`);
    const decoded = quietRun('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-f', 's16le', '-ac', '1', 'pipe:1']).length / 2;
    const track = parseWithMp4box(Buffer.concat(pieces));
    t.equal(track.info.tracks[0]!.codec.split('.')[0], expectedCodec[rendition.id], `${rendition.id}: mp4box sees the sample entry`);
    const samples = track.samples.reduce((sum, sample) => sum + sample.duration, 0);
    t.ok(track.samples.slice(1).every((sample, at) => sample.dts === track.samples[at]!.dts + track.samples[at]!.duration), `${rendition.id}: one continuous decode timeline`);
    if (rendition.codec === 'opus') {
      t.ok(track.samples.every((sample) => sample.duration === 960), 'Opus: a sample per 960-sample packet');
      t.equal(decoded, samples - 312, 'Opus: every packet decoded, less the PreSkip of dOps');
    } else {
      t.equal(decoded, samples, `${rendition.id}: every sample decoded`);
      t.equal(samples, groups.length * 1024 - (rendition.codec === 'flac' ? 1024 - (groups.at(-1)![index]!.samples) : 0), `${rendition.id}: a frame per group`);
    }
  }
});

t.test("the safety source's silent Opus and FLAC decode to digital silence, one group per group", async (t) => {
  const directory = temporaryDirectory(t);
  const configPath = join(directory, 'onair.yaml');
  writeFileSync(configPath, [
    'channels:',
    '  - id: hifi',
    '    container: fmp4',
    '    renditions:',
    '      - { id: aac, bitrate: 64k }',
    '      - { id: opus, bitrate: 64k, codec: opus }',
    '      - { id: flac, codec: flac, bitDepth: 24, audioChannels: 1 }',
    '    inputs: [{ id: main, url: /dev/null }]',
  ].join('\n'));
  const config = await loadConfigFile(configPath);
  const channel = config.channels[0]!;
  const source = await loadSafetySource(channel, { logger: pino({ level: 'silent' }) });
  const groups = Array.from({ length: 3 * 15 }, () => source.nextGroup());
  for (const [index, rendition] of channel.renditions.entries()) {
    if (rendition.codec === 'aac') continue;
    const path = join(directory, `${rendition.id}.mp4`);
    writeFileSync(path, Buffer.concat(muxed(groups, index, { ...rendition, audioChannels: rendition.audioChannels ?? channel.audioChannels }, 48000)));
    const pcm = quietRun('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-f', 's16le', '-ac', '1', 'pipe:1']);
    const expected = rendition.codec === 'opus' ? 48 * 960 - 312 : 45 * 1024;
    t.equal(pcm.length / 2, expected, `${rendition.id}: ${expected} samples`);
    t.ok(pcm.every((byte) => byte === 0), `${rendition.id}: all zero`);
  }
});

t.test('a fallback file is encoded into Opus (beside an AAC clock) and FLAC: the clip decodes whole, as loud as the file', async (t) => {
  const directory = temporaryDirectory(t);
  const file = join(directory, 'jingle.wav');
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=1', '-ac', '2', file], { timeout: 30_000 });
  const configPath = join(directory, 'onair.yaml');
  writeFileSync(configPath, [
    'channels:',
    '  - id: hifi',
    '    container: fmp4',
    `    fallback: { file: ${file}, loop: true }`,
    '    renditions:',
    '      - { id: aac, bitrate: 64k }',
    '      - { id: opus, bitrate: 64k, codec: opus }',
    '      - { id: flac, codec: flac }',
    '    inputs: [{ id: main, url: /dev/null }]',
  ].join('\n'));
  const channel = (await loadConfigFile(configPath)).channels[0]!;
  const source = await loadSafetySource(channel, { logger: pino({ level: 'silent' }) });
  t.match(source.description, /^file .*jingle\.wav \(looped\)$/);
  // lavfi's sine is 1/8 of full scale (4096; 2896 once downmixed to mono). A loop of whole 15-group periods (the Opus grid): 45 groups of the 46.9 the second holds.
  const groups = Array.from({ length: 45 }, () => source.nextGroup());
  for (const [index, rendition] of channel.renditions.entries()) {
    if (rendition.codec === 'aac') continue;
    const path = join(directory, `${rendition.id}.mp4`);
    writeFileSync(path, Buffer.concat(muxed(groups, index, { ...rendition, audioChannels: channel.audioChannels }, 48000)));
    const pcm = quietRun('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-f', 's16le', '-ac', '1', 'pipe:1']);
    const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
    const peak = samples.reduce((max, sample) => Math.max(max, Math.abs(sample)), 0);
    t.ok(samples.length >= 44 * 1024, `${rendition.id}: ${samples.length} samples`);
    t.ok(peak > 1_500, `${rendition.id}: the tone, not silence (peak ${peak})`);
  }
});
