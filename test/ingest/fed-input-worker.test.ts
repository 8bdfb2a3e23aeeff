/**
 * An input worker with a feed (src/ingest/input-feed.ts): no encoder runs while the feed has
 * no stream (the input is not running, hence unhealthy); a stream starts FFmpeg on `pipe:0`
 * in the stream's container with the stream's bytes on its stdin; a source client that left
 * (clean exit) is waited for again at once, without backoff, and its stream released; a feed
 * that cannot be had (a pulled stream that failed) is retried with backoff; close() closes
 * the feed. Encoders are fakes that record their stdin.
 */
import { PassThrough, type Readable } from 'node:stream';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { EncoderSpec } from '../../src/ffmpeg/encoder-arguments.js';
import type { FfmpegExit, FfmpegHandlers } from '../../src/ffmpeg/ffmpeg-process.js';
import type { EncoderProcess } from '../../src/ffmpeg/live-encoder.js';
import type { FeedStream, InputFeed } from '../../src/ingest/input-feed.js';
import { InputWorker } from '../../src/ingest/input-worker.js';
import { ManualClock, settle } from '../helpers/manual-clock.js';
import { waitUntil } from '../helpers/wait-until.js';

const CHANNEL = resolveConfig({
  channels: [{ id: 'fip', renditions: [{ id: 'hifi', bitrate: '96k' }], inputs: [{ id: 'studio', url: 'icecast://127.0.0.1:8010/live', source: { password: 'hackme-please' } }] }],
}).channels[0]!;

interface Run {
  spec: EncoderSpec;
  stdin: Buffer[];
  exit(result: FfmpegExit): void;
}

/** A feed the test drives: `offer` resolves the pending next(), `fail` rejects it. */
class TestFeed implements InputFeed {
  readonly waitsForSender: boolean;
  asked = 0;
  released = 0;
  closed = false;
  private pending: { resolve: (stream: FeedStream | undefined) => void; reject: (error: Error) => void } | undefined;
  constructor(waitsForSender: boolean) {
    this.waitsForSender = waitsForSender;
  }
  start(): void {}
  next(): Promise<FeedStream | undefined> {
    this.asked += 1;
    return new Promise((resolve, reject) => (this.pending = { resolve, reject }));
  }
  offer(audio: Readable, format: string): void {
    this.pending?.resolve({ audio, format, release: () => (this.released += 1) });
    this.pending = undefined;
  }
  fail(): void {
    this.pending?.reject(new Error('upstream answered 503'));
    this.pending = undefined;
  }
  async close(): Promise<void> {
    this.closed = true;
    this.pending?.resolve(undefined);
  }
}

function fedWorker(t: Test, feed: TestFeed) {
  const clock = new ManualClock();
  const runs: Run[] = [];
  const startEncoder = (spec: EncoderSpec, handlers: FfmpegHandlers, stdin?: Readable): EncoderProcess => {
    const run: Run = { spec, stdin: [], exit: (result) => handlers.onExit(result) };
    stdin?.on('data', (chunk: Buffer) => run.stdin.push(chunk));
    runs.push(run);
    return { stdout: new PassThrough(), pid: () => 1, kill: () => run.exit({ code: null, signal: 'SIGTERM' }) };
  };
  const worker = new InputWorker({
    channel: CHANNEL,
    input: CHANNEL.inputs[0]!,
    logger: pino({ level: 'silent' }),
    onFrameGroups: () => undefined,
    startEncoder,
    feed,
    clock,
  });
  worker.start();
  t.teardown(() => worker.close(10));
  return { worker, runs, clock };
}

t.test('no stream: no encoder; a stream: FFmpeg on pipe:0 with its bytes; the source leaves: waited for again at once', async (t) => {
  const feed = new TestFeed(true);
  const { worker, runs, clock } = fedWorker(t, feed);
  await settle();
  t.equal(runs.length, 0, 'nothing runs without a source');
  t.equal(worker.running, false, 'so the input is unhealthy');
  const body = new PassThrough();
  feed.offer(body, 'mp3');
  await settle();
  t.equal(runs.length, 1);
  t.match(runs[0]!.spec, { inputUrl: 'pipe:0', inputFormat: 'mp3', realtime: false, loop: false });
  t.equal(worker.running, true);
  body.write('ID3 audio bytes');
  await waitUntil(t, 'the bytes reached stdin', () => Buffer.concat(runs[0]!.stdin).toString() === 'ID3 audio bytes');

  runs[0]!.exit({ code: 0, signal: null });
  await clock.advance(0);
  await settle();
  t.equal(feed.released, 1, 'the stream is released when its run ends');
  t.equal(feed.asked, 2, 'the next source is waited for at once, no backoff');
  t.equal(worker.running, false);
});

t.test('a pulled feed that fails is tried again with backoff', async (t) => {
  const feed = new TestFeed(false);
  const { runs, clock } = fedWorker(t, feed);
  await settle();
  feed.fail();
  await settle();
  t.equal(feed.asked, 1);
  await clock.advance(300);
  t.equal(feed.asked, 1, 'not at once');
  await clock.advance(1000);
  await settle();
  t.equal(feed.asked, 2, 'after the backoff');
  t.equal(runs.length, 0);
});

t.test('close() closes the feed and ends the wait for a stream', async (t) => {
  const feed = new TestFeed(true);
  const { worker, runs } = fedWorker(t, feed);
  await worker.close(10);
  t.equal(runs.length, 0);
  t.ok(feed.closed);
});
