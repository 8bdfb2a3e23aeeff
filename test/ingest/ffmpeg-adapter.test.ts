/**
 * What FFmpeg is asked to do (src/ingest/ffmpeg-adapter.ts, and `encoderSpecFor` in
 * src/ingest/input-worker.ts): input and output options per input kind and rendition,
 * silence detection, how its stderr lines are read, the setpriv wrapper it runs under, and
 * the refusals of the recordings' stitch and probe (their success is test/e2e/recording.test.ts).
 * FFmpeg itself checks that it accepts the options.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ChannelConfig } from '../../src/config/config-schema.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { ffmpegInputOptions, ffmpegLaunchPath, ffmpegOutputOptions, probeMedia, readFfmpegLogLine, stitchSegments } from '../../src/ingest/ffmpeg-adapter.js';
import { encoderSpecFor } from '../../src/ingest/input-worker.js';

const LISTENER = { id: 'main', url: 'srt://0.0.0.0:9000?mode=listener' };

function channelWith(
  inputs: unknown[],
  renditions: unknown[] = [
    { id: 'lofi', bitrate: '32k' },
    { id: 'hifi', bitrate: '96k' },
  ],
  extra: Record<string, unknown> = {},
): ChannelConfig {
  return resolveConfig({ channels: [{ id: 'fip', renditions, inputs, ...extra }] }).channels[0]!;
}

t.test('file inputs are read in real time and looped; live inputs are not', async (t) => {
  const channel = channelWith([
    { id: 'path', url: '/srv/audio/loop.mp3' },
    { id: 'file', url: 'file:/srv/audio/loop.wav' },
    { id: 'http', url: 'http://icecast.example/fip.aac' },
    { id: 'srt', url: 'srt://0.0.0.0:9001?mode=listener' },
  ]);
  const [path, file, http, srt] = channel.inputs.map((input) => encoderSpecFor(channel, input));
  for (const spec of [path!, file!]) {
    t.match(spec, { realtime: true, loop: true });
    t.same(ffmpegInputOptions(spec).slice(-3), ['-re', '-stream_loop', '-1']);
  }
  for (const spec of [http!, srt!]) {
    t.match(spec, { realtime: false, loop: false });
    t.notOk(ffmpegInputOptions(spec).includes('-re'));
    t.notOk(ffmpegInputOptions(spec).includes('-stream_loop'));
  }
});

t.test('the encoder spec has one rendition per configured rendition, with its bit rate and channel count', async (t) => {
  const channel = channelWith(
    [LISTENER],
    [
      { id: 'mono', bitrate: '24k', audioChannels: 1 },
      { id: 'midfi', bitrate: '96k' },
      { id: 'hifi', bitrate: '192k' },
    ],
  );
  const spec = encoderSpecFor(channel, channel.inputs[0]!);
  t.equal(spec.sampleRate, 48000);
  t.same(spec.renditions, [
    { bitrate: 24000, audioChannels: 1 },
    { bitrate: 96000, audioChannels: 2 },
    { bitrate: 192000, audioChannels: 2 },
  ]);
  const options = ffmpegOutputOptions(spec);
  const pairs = options.map((option, index) => `${option} ${options[index + 1]}`);
  t.equal(pairs.filter((pair) => pair === '-map 0:a:0').length, 3, 'one output audio stream per rendition, all from the first input audio');
  t.ok(pairs.includes('-c:a aac'));
  t.ok(pairs.includes('-profile:a aac_low'));
  t.ok(pairs.includes('-ar 48000'));
  for (const [index, rendition] of spec.renditions.entries()) {
    t.ok(pairs.includes(`-b:a:${index} ${rendition.bitrate}`), `stream ${index} at ${rendition.bitrate} bit/s`);
    t.ok(pairs.includes(`-ac:a:${index} ${rendition.audioChannels}`), `stream ${index} with ${rendition.audioChannels} channels`);
  }
});

t.test('FFmpeg accepts the output options and makes one AAC stream per rendition at its bit rate', async (t) => {
  const channel = channelWith(
    [LISTENER],
    [
      { id: 'mono', bitrate: '24k', audioChannels: 1 },
      { id: 'hifi', bitrate: '192k' },
    ],
  );
  const ts = execFileSync(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=duration=1', ...ffmpegOutputOptions(encoderSpecFor(channel, channel.inputs[0]!)), '-f', 'mpegts', 'pipe:1'],
    { timeout: 20_000 },
  );
  const probe = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,profile,sample_rate,channels', '-of', 'json', '-i', 'pipe:0'], { input: ts }).toString(),
  ) as { streams: { codec_name: string; profile: string; sample_rate: string; channels: number }[] };
  t.match(probe.streams, [
    { codec_name: 'aac', profile: 'LC', sample_rate: '48000', channels: 1 },
    { codec_name: 'aac', profile: 'LC', sample_rate: '48000', channels: 2 },
  ]);
  t.equal(probe.streams.length, 2);
});
t.test('stderr lines: problems, silence reports and information are told apart', async (t) => {
  const cases: [string, ReturnType<typeof readFfmpegLogLine>][] = [
    ['[srt @ 0x55d] Connection to srt://0.0.0.0:9000 failed: Input/output error', { kind: 'problem' }],
    ['[aac @ 0x1] [warning] Queue input is backward in time', { kind: 'problem' }],
    ['[error] Error while decoding stream #0:0', { kind: 'problem' }],
    ['[fatal] Conversion failed!', { kind: 'problem' }],
    ['[info] Stream mapping:', { kind: 'info' }],
    ['[aac @ 0x5573b413e980] [info] Qavg: 33071.723', { kind: 'info' }],
    ['[silencedetect @ 0x5573b4159580] [info] silence_start: 1', { kind: 'silence', silent: true }],
    ['[silencedetect @ 0x5573b4159580] [info] silence_end: 4.00002 | silence_duration: 3.00002', { kind: 'silence', silent: false }],
  ];
  for (const [line, meaning] of cases) t.same(readFfmpegLogLine(line), meaning, line);
});

t.test('silenceSeconds asks FFmpeg for silencedetect on the first rendition only, at info level', async (t) => {
  const channel = channelWith([LISTENER], undefined, { silenceSeconds: '10s' });
  const spec = encoderSpecFor(channel, channel.inputs[0]!);
  t.equal(spec.silenceSeconds, 10);
  const output = ffmpegOutputOptions(spec);
  t.notOk(output.includes('-af'), 'one filter chain per output stream instead of -af for all');
  t.equal(output[output.indexOf('-filter:a:0') + 1], 'aresample=async=1,silencedetect=noise=-60dB:duration=10');
  t.equal(output[output.indexOf('-filter:a:1') + 1], 'aresample=async=1');
  const input = ffmpegInputOptions(spec);
  t.equal(input[input.indexOf('-loglevel') + 1], 'level+info', 'silencedetect reports at info level');
  t.ok(input.includes('-nostats'), 'without the progress lines that come with it');
  const plain = encoderSpecFor(channelWith([LISTENER]), channel.inputs[0]!);
  t.notOk('silenceSeconds' in plain, 'without silenceSeconds, no detection');
  t.equal(ffmpegInputOptions(plain)[ffmpegInputOptions(plain).indexOf('-loglevel') + 1], 'warning');
});

t.test('every FFmpeg is started through a setpriv wrapper that kills it when its parent dies', async (t) => {
  const path = ffmpegLaunchPath();
  t.ok(path.startsWith(tmpdir()), `the wrapper lives in ${tmpdir()}`);
  t.equal((await stat(path)).mode & 0o777, 0o755);
  t.match(await readFile(path, 'utf8'), /^#!\/bin\/sh\n(?:#.*\n)*exec '\/usr\/bin\/setpriv' --pdeathsig KILL -- '[^']*ffmpeg' "\$@"\n$/);
  t.equal(ffmpegLaunchPath(), path, 'made once');
});

t.test('stitching refuses relative or no segment paths, and reports what FFmpeg could not read; probing garbage fails', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-stitch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const spec = { listPath: join(dir, 'segments.txt'), outputPath: join(dir, 'out.m4a') };
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [] }), RangeError);
  await t.rejects(stitchSegments({ ...spec, segmentPaths: ['0.ts'] }), RangeError);
  await writeFile(join(dir, '0.ts'), 'not a transport stream');
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [join(dir, '0.ts')] }), /^FFmpeg could not stitch: /);
  const aborted = new AbortController();
  aborted.abort();
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [join(dir, '0.ts')] }, { signal: aborted.signal }), /aborted/);
  await t.rejects(probeMedia(join(dir, '0.ts')));
});
