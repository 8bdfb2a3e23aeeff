/**
 * One contribution input (src/ingest/input-worker.ts) with a fake encoder injected through
 * `startEncoder`: its stdout carries REAL MPEG-TS that FFmpeg made with the very options the
 * live encoder uses (src/ffmpeg/encoder-arguments.ts), one AAC stream per rendition. Frame groups
 * come out, garbage is counted and skipped, a dead encoder is restarted with backoff, a mute
 * one is killed by the watchdog, `running`/`silent` follow the encoder and close() stops it.
 * test/ingest/ffmpeg-supervision.test.ts does the same supervision with real FFmpeg; the
 * restart backoff's own table is test/ffmpeg/restart-backoff.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { PassThrough, Writable } from 'node:stream';
import { pino } from 'pino';
import { ManualClock } from '../helpers/manual-clock.js';
import { decodePcm, identifyTone, longestDropoutSeconds } from '../helpers/tone.js';
import { waitUntil } from '../helpers/wait-until.js';
import t, { type Test } from 'tap';
import type { ChannelConfig, InputConfig } from '../../src/config/config-schema.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { ffmpegOutputOptions, type EncoderSpec } from '../../src/ffmpeg/encoder-arguments.js';
import type { FfmpegExit, FfmpegHandlers } from '../../src/ffmpeg/ffmpeg-process.js';
import type { EncoderProcess } from '../../src/ffmpeg/live-encoder.js';
import { EncoderOutputReader, encoderSpecFor, InputWorker, inputUrlWithOptions, renditionCodecs } from '../../src/ingest/input-worker.js';
import { buildAdtsHeader, type AacFrame } from '../../src/media/adts.js';
import { MP3_OBJECT_TYPE, MpegAudioReader } from '../../src/media/mpeg-audio.js';
import { ptsDelta, samplesToTicks } from '../../src/media/pts.js';
import { TsSegmentMuxer } from '../../src/media/ts-muxer.js';

const FRAME_TICKS = samplesToTicks(1024, 48000);
const silent = pino({ level: 'silent' });

function channelWith(inputs: unknown[], renditions: unknown[] = [
  { id: 'lofi', bitrate: '32k' },
  { id: 'hifi', bitrate: '96k' },
]): ChannelConfig {
  return resolveConfig({ channels: [{ id: 'fip', renditions, inputs }] }).channels[0]!;
}

const CHANNEL = channelWith([{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { latency: 120, passphrase: 'onair-test-passphrase' } }]);
const INPUT = CHANNEL.inputs[0]!;

/** Two seconds of tone, encoded by real FFmpeg with the options the live encoder gives it for CHANNEL. */
function encodeWithFfmpeg(spec: EncoderSpec, seconds = 2): Buffer {
  return execFileSync(
    'ffmpeg',
    ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}:sample_rate=48000`, ...ffmpegOutputOptions(spec), '-f', 'mpegts', 'pipe:1'],
    { maxBuffer: 16 * 1024 * 1024 },
  );
}

/** Audio packets (AAC frames) per stream, as FFmpeg's own demuxer counts them. */
function ffprobeFramesPerStream(ts: Buffer): number[] {
  const csv = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'packet=stream_index', '-of', 'csv=p=0', '-i', 'pipe:0'], { input: ts }).toString();
  const counts: number[] = [];
  for (const line of csv.split('\n')) {
    const index = Number.parseInt(line, 10);
    if (Number.isInteger(index)) counts[index] = (counts[index] ?? 0) + 1;
  }
  return counts;
}

const TS = encodeWithFfmpeg(encoderSpecFor(CHANNEL, INPUT));
const FFPROBE_FRAMES = ffprobeFramesPerStream(TS);

interface FakeEncoder {
  spec: EncoderSpec;
  stdout: PassThrough;
  signals: string[];
  /** Makes the encoder exit (as FFmpeg would on a lost feed or a crash). */
  exit(result?: FfmpegExit): void;
  warn(line: string): void;
  /** What FFmpeg's silencedetect would report. */
  silence(silent: boolean): void;
}

/** An encoder factory for `startEncoder` that hands out fakes and keeps them for the test. */
function fakeEncoders(options: { ignoresSigterm?: boolean } = {}) {
  const started: FakeEncoder[] = [];
  function startEncoder(spec: EncoderSpec, handlers: FfmpegHandlers): EncoderProcess {
    const stdout = new PassThrough();
    let exited = false;
    const fake: FakeEncoder = {
      spec,
      stdout,
      signals: [],
      exit(result = { code: 1, signal: null, reason: 'Connection lost' }) {
        if (exited) return;
        exited = true;
        stdout.end();
        handlers.onExit(result);
      },
      warn(line) {
        handlers.onStderrLine(line);
      },
      silence(silent) {
        handlers.onSilence?.(silent);
      },
    };
    started.push(fake);
    return {
      stdout,
      pid: () => 40_000 + started.indexOf(fake),
      kill(signal = 'SIGTERM') {
        fake.signals.push(signal);
        if (signal === 'SIGKILL' || !options.ignoresSigterm) setImmediate(() => fake.exit({ code: null, signal }));
      },
    };
  }
  return { started, startEncoder };
}

interface WorkerOptions {
  ignoresSigterm?: boolean;
  channel?: ChannelConfig;
  logger?: pino.Logger;
  stallTimeoutMs?: number;
  startTimeoutMs?: number;
  /** The worker's clock: a manual one where its timers are what is under test. */
  clock?: ManualClock;
}

function startWorker(t: Test, options: WorkerOptions = {}) {
  const encoders = fakeEncoders(options);
  const groups: AacFrame[][] = [];
  const channel = options.channel ?? CHANNEL;
  /** The worker's state each time it announced a change. */
  const changes: { running: boolean; silent: boolean }[] = [];
  const worker: InputWorker = new InputWorker({
    channel,
    input: channel.inputs[0]!,
    logger: options.logger ?? silent,
    onFrameGroups: (batch) => groups.push(...batch),
    onStateChange: () => changes.push({ running: worker.running, silent: worker.silent }),
    startEncoder: encoders.startEncoder,
    stallTimeoutMs: options.stallTimeoutMs,
    startTimeoutMs: options.startTimeoutMs,
    clock: options.clock,
  });
  worker.start();
  t.teardown(async () => {
    const closing = worker.close(50);
    await options.clock?.advance(50);
    await closing;
  });
  return { worker, groups, changes, started: encoders.started };
}


/** Writes `chunks` into the fake encoder's stdout and waits until the worker has read them all. */
async function feed(t: Test, worker: InputWorker, encoder: FakeEncoder, chunks: Uint8Array[]): Promise<void> {
  const target = worker.stats.bytesReceived + chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  for (const chunk of chunks) encoder.stdout.write(chunk);
  await waitUntil(t, 'the worker has read every byte', () => worker.stats.bytesReceived === target);
}

function split(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

/** One frame per rendition, same PTS, and one frame duration after the group before. */
function wellFormed(groups: AacFrame[][], renditionCount: number): boolean {
  return groups.every(
    (group, index) =>
      group.length === renditionCount &&
      group.every((frame) => frame.pts === group[0]!.pts && frame.sampleRate === 48000 && frame.objectType === 2) &&
      (index === 0 || ptsDelta(groups[index - 1]![0]!.pts!, group[0]!.pts!) === FRAME_TICKS),
  );
}

function meanFrameBytes(groups: AacFrame[][], rendition: number): number {
  return groups.reduce((sum, group) => sum + group[rendition]!.data.length, 0) / groups.length;
}

t.test('FFmpeg output becomes frame groups with one frame per rendition', async (t) => {
  const { worker, groups, started } = startWorker(t);
  t.equal(started.length, 1);
  t.strictSame(started[0]!.spec, encoderSpecFor(CHANNEL, INPUT), 'the encoder is asked for what the config says');
  // Chunk sizes unrelated to the 188-byte packets, as a pipe delivers them.
  await feed(t, worker, started[0]!, split(TS, 1000));
  t.same(FFPROBE_FRAMES, [95, 95], 'FFmpeg made 95 frames per stream');
  t.ok(groups.length >= FFPROBE_FRAMES[0]! - 1, `${groups.length} groups out of ${FFPROBE_FRAMES[0]} frames (the last PES may wait for more bytes)`);
  t.ok(wellFormed(groups, 2), 'every group pairs equal-PTS frames of both renditions, in sequence');
  t.ok(meanFrameBytes(groups, 0) < meanFrameBytes(groups, 1) / 2, 'stream i is rendition i: 32k frames before 96k frames');
  t.equal(worker.stats.frameGroups, groups.length);
  t.equal(worker.stats.bytesReceived, TS.length);
  t.equal(worker.stats.garbageEvents, 0);
  t.ok(worker.stats.lastFrameAt);
});

t.test("an MP3 rendition's frames from FFmpeg ride in the groups as chunks: each frame once, in order, decoding to the tone", async (t) => {
  const channel = channelWith(
    [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }],
    [{ id: 'hifi', bitrate: '96k' }, { id: 'mp3', bitrate: '128k', codec: 'mp3' }],
  );
  const ts = encodeWithFfmpeg(encoderSpecFor(channel, channel.inputs[0]!));
  const reader = new EncoderOutputReader(renditionCodecs(channel));
  const groups = split(ts, 1000).flatMap((chunk) => reader.push(chunk));
  const frameCounts = ffprobeFramesPerStream(ts);
  t.ok(groups.length >= frameCounts[0]! - 2, `${groups.length} groups of ${frameCounts[0]} AAC frames`);
  t.ok(groups.every((group) => group[0]!.objectType === 2 && group[1]!.objectType === MP3_OBJECT_TYPE && group[1]!.pts === group[0]!.pts));
  const mp3 = Buffer.concat(groups.map((group) => group[1]!.data));
  const carried = new MpegAudioReader().push(mp3);
  // FFmpeg's own MP3 packets, from its MPEG-TS demuxer.
  const probe = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a:1', '-show_entries', 'packet=size', '-of', 'json', '-i', 'pipe:0'], { input: ts });
  const sizes = (JSON.parse(probe.toString()) as { packets: { size: string }[] }).packets.map((packet) => Number(packet.size));
  t.same(carried.map((frame) => frame.data.length), sizes.slice(0, carried.length), 'the MP3 frames FFmpeg wrote, in order, none twice');
  t.ok(carried.length >= sizes.length - 3, `all but the last few, still waiting (${carried.length} of ${sizes.length})`);
  t.equal(reader.garbage, 0, 'nothing dropped or skipped');
  const reading = await identifyTone(mp3, [440, 1000], { format: 'mp3' });
  t.equal(reading.tone, 440, 'the chunks decode to the tone');
  t.equal(longestDropoutSeconds(await decodePcm(mp3, { format: 'mp3' }), 16000), 0, 'without a dropout');
});

t.test('garbage between chunks is counted and skipped, and never throws', async (t) => {
  const reference = startWorker(t);
  await feed(t, reference.worker, reference.started[0]!, [TS]);
  const referencePts = reference.groups.map((group) => group[0]!.pts!);

  const { worker, groups, started } = startWorker(t);
  const packets = split(TS, 188 * 20);
  const garbled = packets.slice(0, Math.floor(packets.length * 0.6));
  const clean = packets.slice(garbled.length);
  const chunks: Uint8Array[] = [];
  for (const [index, chunk] of garbled.entries()) {
    chunks.push(chunk);
    if (index % 3 === 1) chunks.push(Buffer.from('this is not a transport stream, just noise on the line\n'));
  }
  // And random bytes in the middle of it.
  let seed = 7;
  const noise = Uint8Array.from({ length: 4000 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff);
  chunks.splice(chunks.length >> 1, 0, noise);
  await feed(t, worker, started[0]!, chunks);
  const garbageEvents = worker.stats.garbageEvents;
  t.ok(garbageEvents > 0, `${garbageEvents} garbage events counted`);

  await feed(t, worker, started[0]!, clean);
  t.ok(worker.stats.garbageEvents - garbageEvents <= 2, 'clean bytes after the garbage add next to no garbage events');
  t.ok(groups.length >= referencePts.length * 0.8, `${groups.length} of ${referencePts.length} groups still came out`);
  t.ok(
    groups.every((group) => group.length === 2 && group[0]!.pts === group[1]!.pts),
    'every group that comes out still pairs equal-PTS frames',
  );
  const seen = new Set(groups.map((group) => group[0]!.pts));
  const tail = referencePts.slice(-Math.floor(referencePts.length * 0.3));
  t.ok(tail.every((pts) => seen.has(pts)), 'once the garbage stops, every frame group is read again');
});

t.test('an encoder that exits is restarted with backoff, and the new one is read from scratch', async (t) => {
  const clock = new ManualClock();
  const { worker, groups, started } = startWorker(t, { clock });
  await feed(t, worker, started[0]!, split(TS.subarray(0, 188 * 100), 500));
  started[0]!.exit();
  await waitUntil(t, 'the exit is seen', () => !worker.running);
  await clock.advance(374);
  t.equal(started.length, 1, 'not restarted at once (the first backoff is 500 ms ± 25 %)');
  await clock.advance(251);
  t.equal(started.length, 2, 'restarted within the first backoff');
  t.equal(worker.stats.encoderStarts, 2);
  t.equal(worker.stats.encoderRestarts, 1);
  t.strictSame(started[1]!.spec, started[0]!.spec);
  const before = groups.length;
  await feed(t, worker, started[1]!, split(TS, 1000));
  t.ok(groups.length - before >= FFPROBE_FRAMES[0]! - 1, 'the new encoder’s output is paired from its own start');
  t.ok(wellFormed(groups.slice(before), 2));
});

t.test('close() stops the encoder with SIGTERM and does not restart it', async (t) => {
  const clock = new ManualClock();
  const { worker, started } = startWorker(t, { clock });
  await worker.close();
  t.same(started[0]!.signals, ['SIGTERM']);
  await clock.advance(60_000); // far longer than any backoff
  t.equal(started.length, 1);
  t.equal(worker.stats.encoderStarts, 1);
});

t.test('close() kills an encoder that ignores SIGTERM after the grace period', async (t) => {
  const clock = new ManualClock();
  const { worker, started } = startWorker(t, { ignoresSigterm: true, clock });
  const closing = worker.close(100);
  await clock.advance(99);
  t.same(started[0]!.signals, ['SIGTERM'], 'no SIGKILL within the grace period');
  await clock.advance(1);
  await closing;
  t.same(started[0]!.signals, ['SIGTERM', 'SIGKILL'], 'SIGKILL once it is over');
});

t.test('close() while waiting to restart cancels the restart', async (t) => {
  const clock = new ManualClock();
  const { worker, started } = startWorker(t, { clock });
  started[0]!.exit();
  await waitUntil(t, 'the exit is seen', () => !worker.running);
  await worker.close();
  await clock.advance(60_000);
  t.equal(started.length, 1);
  t.equal(worker.stats.encoderRestarts, 0);
});

t.test('FFmpeg warnings are counted, blank lines are not', async (t) => {
  const { worker, started } = startWorker(t);
  started[0]!.warn('[srt @ 0x1] Connection to srt://0.0.0.0:9000 failed: Input/output error');
  started[0]!.warn('   ');
  t.equal(worker.stats.ffmpegWarnings, 1);
});

t.test('a feed with the wrong number of AAC streams is logged with its channel and input', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const { worker, groups, started } = startWorker(t, { logger: pino({ level: 'warn' }, sink) });
  // One audio stream where the channel has two renditions.
  const single = new TsSegmentMuxer().muxSegment(
    Array.from({ length: 10 }, (_, index) => {
      const data = new Uint8Array(100);
      data.set(buildAdtsHeader({ sampleRate: 48000, channelCount: 2, objectType: 2, payloadLength: 93 }));
      return { data, pts: 90000 + index * FRAME_TICKS };
    }),
  );
  await feed(t, worker, started[0]!, [single, single.subarray(0, 188)]);
  t.equal(groups.length, 0, 'no groups: the second rendition never arrives');
  await waitUntil(t, 'the problem is logged', () => lines.some((line) => line.streams === 1));
  t.match(lines.find((line) => line.streams === 1), { level: 50, channel: 'fip', input: 'main' });
});

t.test('an encoder that stops writing is killed by the watchdog and restarted with backoff', async (t) => {
  const clock = new ManualClock();
  const { worker, groups, started } = startWorker(t, { stallTimeoutMs: 200, clock });
  const packets = split(TS, 188 * 10);
  // Output every 50 ms keeps the watchdog quiet, well past its 200 ms.
  for (const chunk of packets.slice(0, 12)) {
    await clock.advance(50);
    await feed(t, worker, started[0]!, [chunk]);
  }
  t.equal(worker.stats.hangKills, 0, 'a writing encoder is left alone');
  t.same(started[0]!.signals, []);
  await clock.advance(199);
  t.same(started[0]!.signals, [], 'not killed 199 ms after its last output');
  await clock.advance(1);
  t.same(started[0]!.signals, ['SIGKILL'], 'killed 200 ms after its last output, with SIGKILL: a hung FFmpeg may not answer SIGTERM');
  t.equal(worker.stats.hangKills, 1);
  await waitUntil(t, 'the kill is seen', () => !worker.running);
  await clock.advance(625);
  t.equal(started.length, 2, 'a new encoder is started after the backoff');
  t.equal(worker.stats.encoderRestarts, 1);
  const before = groups.length;
  await feed(t, worker, started[1]!, split(TS, 1000));
  t.ok(groups.length - before >= FFPROBE_FRAMES[0]! - 1, 'and its frames flow');
});

t.test('an SRT listener waiting for its caller is never killed before its first output', async (t) => {
  const clock = new ManualClock();
  const { worker, started } = startWorker(t, { startTimeoutMs: 100, stallTimeoutMs: 100, clock });
  await clock.advance(60_000);
  t.equal(worker.stats.hangKills, 0);
  t.same(started[0]!.signals, []);
  t.ok(worker.running);
  await feed(t, worker, started[0]!, [TS.subarray(0, 188 * 20)]);
  await clock.advance(100);
  t.equal(worker.stats.hangKills, 1, 'once it has written and stopped, the stall watchdog applies');
});

t.test('any other input that writes nothing within the start timeout is killed and restarted', async (t) => {
  const channel = channelWith([{ id: 'icecast', url: 'http://127.0.0.1:1/fip.aac' }]);
  const { worker, started } = startWorker(t, { channel, startTimeoutMs: 200 });
  await waitUntil(t, 'the mute encoder is killed', () => worker.stats.hangKills === 1, 2000);
  t.same(started[0]!.signals, ['SIGKILL']);
  await waitUntil(t, 'and restarted', () => started.length === 2, 2000);
});

t.test('running, silent and onStateChange follow the encoder and its silence reports', async (t) => {
  const channel = channelWith([{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }]);
  const { worker, changes, started } = startWorker(t, { channel });
  t.same(changes, [{ running: true, silent: false }], 'the start is announced');
  t.ok(worker.running);
  t.equal(worker.encoderPid, 40_000);
  started[0]!.silence(true);
  started[0]!.silence(true); // a repeated report changes nothing
  t.ok(worker.silent);
  started[0]!.silence(false);
  t.notOk(worker.silent);
  started[0]!.silence(true);
  started[0]!.exit();
  t.notOk(worker.running);
  t.notOk(worker.silent, 'a dead encoder’s silence is forgotten');
  t.equal(worker.encoderPid, undefined);
  await waitUntil(t, 'the restart', () => started.length === 2, 2000);
  t.same(changes, [
    { running: true, silent: false },
    { running: true, silent: true },
    { running: true, silent: false },
    { running: true, silent: true },
    { running: false, silent: false },
    { running: true, silent: false },
  ]);
});

t.test('SRT options become URL parameters, verbatim, with the latency in microseconds', async (t) => {
  t.equal(inputUrlWithOptions(INPUT), 'srt://0.0.0.0:9000?mode=listener&latency=120000&passphrase=onair-test-passphrase');
  const [caller, bare] = channelWith([
    { id: 'main', url: 'srt://203.0.113.7:9000?mode=caller', srt: { latency: 2000, passphrase: 'correct-horse-battery', streamid: 'fip/main' } },
    { id: 'backup', url: 'srt://203.0.113.8:9000', srt: { latency: 0 } },
  ]).inputs;
  const url = inputUrlWithOptions(caller!);
  t.equal(url, 'srt://203.0.113.7:9000?mode=caller&latency=2000000&passphrase=correct-horse-battery&streamid=fip/main');
  const parsed = new URL(url);
  t.equal(parsed.searchParams.get('mode'), 'caller', 'the URL’s own parameters are kept');
  t.equal(parsed.searchParams.get('latency'), '2000000');
  t.equal(inputUrlWithOptions(bare!), 'srt://203.0.113.8:9000?latency=0', 'a URL without a query gets one');
});

t.test('non-SRT URLs and SRT URLs without options are passed through unchanged', async (t) => {
  const inputs: InputConfig[] = [
    { id: 'a', url: 'srt://0.0.0.0:9000?mode=listener' },
    { id: 'b', url: 'udp://239.0.0.1:5000' },
    { id: 'c', url: 'https://icecast.example/fip.aac' },
    { id: 'd', url: '/srv/audio/loop.mp3' },
  ];
  for (const input of inputs) t.equal(inputUrlWithOptions(input), input.url);
});
