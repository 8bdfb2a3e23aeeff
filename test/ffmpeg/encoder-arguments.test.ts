/**
 * What the live encoder asks of FFmpeg (src/ffmpeg/encoder-arguments.ts, and `encoderSpecFor`
 * in src/ingest/input-worker.ts): input and output options per input kind and rendition,
 * and silence detection. FFmpeg itself checks that it accepts the options.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    { bitrate: 24000, audioChannels: 1, codec: 'aac' },
    { bitrate: 96000, audioChannels: 2, codec: 'aac' },
    { bitrate: 192000, audioChannels: 2, codec: 'aac' },
  ]);
  const options = ffmpegOutputOptions(spec);
  const pairs = options.map((option, index) => `${option} ${options[index + 1]}`);
  t.equal(pairs.filter((pair) => pair === '-map 0:a:0').length, 3, 'one output audio stream per rendition, all from the first input audio');
  t.ok(pairs.includes('-ar 48000'));
  for (const [index, rendition] of spec.renditions.entries()) {
    t.ok(pairs.includes(`-c:a:${index} aac`) && pairs.includes(`-profile:a:${index} aac_low`), `stream ${index} is AAC-LC`);
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

t.test('an MP3 rendition is encoded by LAME in the same MPEG-TS, on the same timeline as the AAC ones', async (t) => {
  const channel = channelWith(
    [LISTENER],
    [
      { id: 'hifi', bitrate: '128k' },
      { id: 'mp3', bitrate: '128k', codec: 'mp3' },
      { id: 'mp3-mono', bitrate: '64k', codec: 'mp3', audioChannels: 1 },
    ],
  );
  const options = ffmpegOutputOptions(encoderSpecFor(channel, channel.inputs[0]!));
  t.equal(optionValue(options, '-c:a:1'), 'libmp3lame');
  t.equal(optionValue(options, '-profile:a:1'), undefined, 'no AAC profile on an MP3 stream');
  const ts = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=duration=1', ...options, '-f', 'mpegts', 'pipe:1'], { timeout: 20_000 });
  const probe = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,sample_rate,channels,bit_rate', '-of', 'json', '-i', 'pipe:0'], { input: ts }).toString(),
  ) as { streams: { codec_name: string; sample_rate: string; channels: number; bit_rate: string }[] };
  t.match(probe.streams, [
    { codec_name: 'aac', sample_rate: '48000', channels: 2 },
    { codec_name: 'mp3', sample_rate: '48000', channels: 2, bit_rate: '128000' },
    { codec_name: 'mp3', sample_rate: '48000', channels: 1, bit_rate: '64000' },
  ]);
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

/** The value FFmpeg gets for `option`, or undefined. */
function optionValue(options: string[], option: string): string | undefined {
  const index = options.indexOf(option);
  return index < 0 ? undefined : options[index + 1];
}

t.test('each input type gets its container and only the protocols it needs', async (t) => {
  const channel = channelWith([
    LISTENER,
    { id: 'caller', url: 'srt://studio.example:9001?mode=caller' },
    { id: 'udp', url: 'udp://0.0.0.0:5000', allowUnauthenticated: true },
    { id: 'rtp', url: 'rtp://0.0.0.0:5004', allowUnauthenticated: true },
    { id: 'rtmp', url: 'rtmp://live.example/app/fip' },
    { id: 'icecast', url: 'https://icecast.example/fip.aac' },
    { id: 'path', url: '/srv/audio/loop.mp3' },
    { id: 'file', url: 'file:/srv/audio/loop.wav' },
  ]);
  const table = channel.inputs.map((input) => {
    const options = ffmpegInputOptions(encoderSpecFor(channel, input));
    return [input.id, optionValue(options, '-f'), optionValue(options, '-protocol_whitelist'), optionValue(options, '-format_whitelist')];
  });
  const probed = 'aac,mp3,ogg,flac,wav,mpegts,mov,matroska';
  t.same(table, [
    ['main', 'mpegts', 'srt', undefined],
    ['caller', 'mpegts', 'srt', undefined],
    ['udp', 'mpegts', 'udp', undefined],
    ['rtp', 'rtp', 'rtp,udp', undefined],
    ['rtmp', 'flv', 'rtmp,tcp', undefined],
    ['icecast', undefined, 'http,https,tcp,tls', probed],
    ['path', undefined, 'file', probed],
    ['file', undefined, 'file', probed],
  ]);
  for (const [id, format, , formats] of table) t.ok((format === undefined) !== (formats === undefined), `${id}: a fixed container or a whitelist, never neither`);
});

t.test('FFmpeg reads a file input in a plain audio container, and refuses a playlist or a concat list in its place', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-demux-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const audio = join(directory, 'programme.aac');
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=duration=1', '-c:a', 'aac', '-f', 'adts', audio]);
  const playlist = join(directory, 'programme.m3u8');
  writeFileSync(playlist, `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\nfile://${audio}\n#EXT-X-ENDLIST\n`);
  const concat = join(directory, 'programme.txt');
  // A relative entry: FFmpeg's concat "safe" mode would let it through.
  writeFileSync(concat, `ffconcat version 1.0\nfile 'programme.aac'\n`);
  const channel = channelWith([
    { id: 'audio', url: audio },
    { id: 'playlist', url: playlist },
    { id: 'concat', url: concat },
  ]);
  const [ok, hls, list] = channel.inputs.map((input) => {
    // The live encoder's input options, without real time and looping (they would run forever).
    const options = ffmpegInputOptions({ ...encoderSpecFor(channel, input), realtime: false, loop: false });
    return spawnSync('ffmpeg', [...options, '-i', input.url, '-f', 'null', '-'], { encoding: 'utf8', timeout: 20_000 });
  });
  t.equal(ok!.status, 0, 'the ADTS file is read');
  t.not(hls!.status, 0, 'the playlist is refused');
  t.match(hls!.stderr, /not on whitelist/);
  t.not(list!.status, 0, 'the concat list is refused');
  t.match(list!.stderr, /not on whitelist/);
});
