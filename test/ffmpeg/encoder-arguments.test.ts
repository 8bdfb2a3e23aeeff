/**
 * What the live encoder asks of FFmpeg (src/ffmpeg/encoder-arguments.ts, and `encoderSpecFor`
 * in src/ingest/input-worker.ts): input and output options per input kind and rendition,
 * and silence detection. FFmpeg itself checks that it accepts the options.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import type { ChannelConfig } from '../../src/config/config-schema.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { ffmpegInputOptions, ffmpegOutputOptions } from '../../src/ffmpeg/encoder-arguments.js';
import { encoderSpecFor } from '../../src/ingest/input-worker.js';

const LISTENER = { id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } };

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
    { id: 'srt', url: 'srt://0.0.0.0:9001?mode=listener', srt: { passphrase: 'onair-test-passphrase' } },
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
