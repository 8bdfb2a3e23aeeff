/**
 * The stitch jobs (src/recording/recording-jobs.ts) as a state machine over the store,
 * with a stand-in for FFmpeg (the real one runs in test/e2e/recording.test.ts and in the
 * gap test below) and a real HTTP webhook receiver on loopback: each step is recorded before
 * the next, a resumed job does not redo what is done, a wrong duration fails the job, a
 * missing segment file is stitched as silence of its length (real FFmpeg: the gap decodes
 * as digital silence), the segments go once the file is checked, and the webhook is retried
 * with backoff and signed.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import type { SessionStitchSpec } from '../../src/ffmpeg/recording-stitch.js';
import { RecordingJobs, type RecordingJobsOptions, type Stitcher } from '../../src/recording/recording-jobs.js';
import type { RecordingRecord } from '../../src/recording/recording-record.js';
import { retryDelayMs, webhookSignature, type WebhookRetry } from '../../src/recording/webhook-sender.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const T0 = Date.parse('2026-11-21T23:15:00.000Z');
const FAST_RETRY: WebhookRetry = { attempts: 4, baseDelayMs: 40, maxDelayMs: 1000, timeoutMs: 2000 };

interface Received {
  at: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A webhook receiver answering `statuses` in turn (then 200). */
async function receiver(t: Test, statuses: number[]): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ at: Date.now(), headers: request.headers, body });
      response.writeHead(statuses[received.length - 1] ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/onair`, received };
}

/** An ended three-segment session (3.0 s) on disk and in the store. */
async function endedSession(t: Test): Promise<{ catalog: RecordingCatalog; store: MemoryStore; record: RecordingRecord }> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-jobs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir), now: () => T0 });
  const opened = await catalog.open({ channel: 'fip', rendition: 'hifi', trigger: 'auto', startedAt: T0 });
  for (let msn = 0; msn < 3; msn++) {
    await catalog.files.addSegment('fip', opened.session, { type: 'segment', msn, durationSeconds: 1, programDateTime: T0 + msn * 1000, fallback: false }, Uint8Array.from([msn]));
  }
  return { catalog, store, record: (await catalog.finish(opened, 'stopped'))! };
}

/** Writes a file where FFmpeg would and reports `durationSeconds` for it; counts its calls and keeps the last spec. */
function fakeStitcher(durationSeconds: number): Stitcher & { stitches: number; last?: SessionStitchSpec } {
  const stitcher: Stitcher & { stitches: number; last?: SessionStitchSpec } = {
    stitches: 0,
    async stitch(spec: SessionStitchSpec, options: { onProgress?: (seconds: number) => void }) {
      stitcher.stitches += 1;
      stitcher.last = spec;
      options.onProgress?.(1.5);
      await writeFile(spec.outputPath, 'm4a bytes');
    },
    async probe() {
      return { durationSeconds, sizeBytes: 9, audioCodec: 'aac' };
    },
  };
  return stitcher;
}

function jobs(catalog: RecordingCatalog, store: MemoryStore, stitcher?: Stitcher, webhook?: { url: string; secret?: string }, more: Partial<RecordingJobsOptions> = {}): RecordingJobs {
  return new RecordingJobs({ catalog, store, stitcher, logger: pino({ level: 'silent' }), publicUrl: 'https://radio.example/', webhook, webhookRetry: FAST_RETRY, ...more });
}

t.test('a job stitches, checks, announces once on the events stream and the webhook, and records each step', async (t) => {
  const { catalog, store, record } = await endedSession(t);
  const hook = await receiver(t, []);
  const stitcher = fakeStitcher(3.04);
  const progress: number[] = [];
  const done = await jobs(catalog, store, stitcher, { url: hook.url, secret: 'a-shared-secret-0123' }).run('fip', record.session, { onProgress: (percent) => progress.push(percent) });
  t.match(done, { state: 'done', durationSeconds: 3.04, sizeBytes: 9, webhook: { delivered: true, attempts: 1 } });
  t.same(progress, [50, 100], 'progress in percent of the segments, ending at 100');
  t.ok(await catalog.files.exists(catalog.files.filePath('fip', record.session)), 'the checked file is in place');
  t.same(await readdir(catalog.files.sessionDir('fip', record.session)), ['index.jsonl'], 'the segments are removed once the file is checked, and no work directory is left');
  t.equal(done.segmentsRemoved, true);
  const [event] = await store.readEvents(10);
  t.equal(event!.id, done.eventId);
  t.match(event!.fields, { event: 'recording.ready', channel: 'fip', session: record.session, url: `https://radio.example/recordings/fip/${record.session}.m4a`, durationSeconds: '3.04', sizeBytes: '9' });
  const [call] = hook.received;
  const payload = JSON.parse(call!.body) as Record<string, unknown>;
  t.match(payload, { event: 'recording.ready', url: `https://radio.example/recordings/fip/${record.session}.m4a`, durationSeconds: 3.04, sizeBytes: 9 });
  t.notOk('playlistUrl' in payload, 'no VOD playlist once the segments are gone');
  await t.rejects(jobs(catalog, store, stitcher).run('fip', record.session, { restitch: true }), { code: 'ONAIR_RECORDING_STITCH_FAILED' }, 'nothing to stitch again from');
  t.equal((await catalog.require('fip', record.session)).state, 'done', 'and the recording stays done');
  t.equal(call!.headers['x-onair-signature'], webhookSignature('a-shared-secret-0123', call!.body), 'signed with the shared secret');
  t.equal(call!.headers['x-onair-delivery'], `fip/${record.session}/${done.eventId}`);
});

t.test('a job resumed after the stitch step neither stitches nor appends the event again', async (t) => {
  const { catalog, store, record } = await endedSession(t);
  const stitcher = fakeStitcher(3);
  const eventId = await store.appendEvent({ event: 'recording.ready' });
  await writeFile(catalog.files.filePath('fip', record.session), 'm4a bytes');
  await catalog.update(record, { state: 'stitched', durationSeconds: 3, sizeBytes: 9, eventId });
  const done = await jobs(catalog, store, stitcher).run('fip', record.session);
  t.equal(done.state, 'done');
  t.equal(stitcher.stitches, 0);
  t.equal((await store.readEvents(10)).length, 1, 'one event in all');
});

t.test('a stitched file whose duration is off by more than 0.1 s fails the job, and a restitch succeeds', async (t) => {
  const { catalog, store, record } = await endedSession(t);
  const failed = await jobs(catalog, store, fakeStitcher(3.2)).run('fip', record.session);
  t.match(failed, { state: 'failed', error: /lasts 3\.2 s, the segments 3 s/ });
  t.notOk(await catalog.files.exists(catalog.files.filePath('fip', record.session)), 'no file published');
  t.same(await store.readEvents(10), [], 'nothing announced');
  t.equal((await jobs(catalog, store, fakeStitcher(2.95)).run('fip', record.session, { restitch: true })).state, 'done');
});

t.test('with keepSegments the segments and the VOD playlist stay, and the announcement names the playlist', async (t) => {
  const { catalog, store, record } = await endedSession(t);
  const hook = await receiver(t, []);
  const done = await jobs(catalog, store, fakeStitcher(3), { url: hook.url }, { keepSegments: true }).run('fip', record.session);
  t.equal(done.segmentsRemoved, undefined);
  t.same((await readdir(catalog.files.sessionDir('fip', record.session))).sort(), ['0.ts', '1.ts', '2.ts', 'index.jsonl']);
  t.match(JSON.parse(hook.received[0]!.body), { playlistUrl: `https://radio.example/recordings/fip/${record.session}.m3u8` });
});

t.test('missing segment files become silence of their length in the stitch; with none on disk the job fails', async (t) => {
  const { catalog, store, record } = await endedSession(t);
  await catalog.files.deleteSegments('fip', record.session, [1]);
  const stitcher = fakeStitcher(3);
  const done = await jobs(catalog, store, stitcher).run('fip', record.session);
  t.match(done, { state: 'done', silenceSeconds: 1 });
  const directory = catalog.files.sessionDir('fip', record.session);
  t.same(stitcher.last!.pieces, [{ segmentPaths: [join(directory, '0.ts')] }, { silenceSeconds: 1 }, { segmentPaths: [join(directory, '2.ts')] }]);

  const second = await endedSession(t);
  await second.catalog.files.deleteSegments('fip', second.record.session, [0, 1, 2]);
  const failed = await jobs(second.catalog, second.store, fakeStitcher(3)).run('fip', second.record.session);
  t.match(failed, { state: 'failed', errorCode: 'ONAIR_RECORDING_STITCH_FAILED', error: /none of the 3 segment files is on disk/ });
});

t.test('the session\'s now playing becomes the file\'s chapters and a cue sheet beside it, and the announcement counts them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-jobs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir), now: () => T0 });
  const opened = await catalog.open({ channel: 'fip', rendition: 'hifi', trigger: 'auto', startedAt: T0 });
  const chapters = [
    [{ type: 'chapter', offsetSeconds: 0, title: 'Intro' }],
    [{ type: 'chapter', offsetSeconds: 1.5, title: 'So What', artist: 'Miles Davis' }],
    [],
    // In the tail of fallback audio the session drops: no chapter of the file.
    [{ type: 'chapter', offsetSeconds: 3.2, title: 'Gone', artist: 'Nobody' }],
  ] as const;
  for (const [msn, lines] of chapters.entries()) {
    const segment = { type: 'segment', msn, durationSeconds: 1, programDateTime: T0 + msn * 1000, fallback: msn === 3 } as const;
    await catalog.files.addSegment('fip', opened.session, segment, Uint8Array.from([msn]), lines);
  }
  const record = (await catalog.finish(opened, 'input-lost'))!;
  t.equal(record.segments, 3);
  const hook = await receiver(t, []);
  const stitcher = fakeStitcher(3);
  const done = await jobs(catalog, store, stitcher, { url: hook.url }).run('fip', record.session);
  t.match(done, { state: 'done', chapters: 2 });
  t.same(stitcher.last!.chapters, [
    { startSeconds: 0, endSeconds: 1.5, title: 'Intro' },
    { startSeconds: 1.5, endSeconds: 3, title: 'Miles Davis - So What' },
  ], 'handed to FFmpeg with their ends');
  const cue = await readFile(catalog.files.cuePath('fip', record.session), 'utf8');
  t.match(cue, `FILE "${record.session}.m4a" WAVE\n  TRACK 01 AUDIO\n    TITLE "Intro"\n    INDEX 01 00:00:00\n  TRACK 02 AUDIO\n    TITLE "So What"\n    PERFORMER "Miles Davis"\n    INDEX 01 00:01:38\n`);
  t.notMatch(cue, /Gone/);
  const [event] = await store.readEvents(10);
  t.match(event!.fields, { chapters: '2', cueUrl: `https://radio.example/recordings/fip/${record.session}.cue` });
  t.match(JSON.parse(hook.received[0]!.body), { chapters: 2, cueUrl: `https://radio.example/recordings/fip/${record.session}.cue` });
  const emptyStore = new MemoryStore();
  await emptyStore.start();
  t.teardown(() => emptyStore.close());
  t.match(await new RecordingCatalog({ store: emptyStore, files: catalog.files }).adoptFromDisk('fip'), [{ session: record.session, state: 'done', chapters: 2 }], 'a store that lost the record finds the chapters on disk');

  // A session without now playing: no cue sheet, and the announcement says 0.
  const plain = await endedSession(t);
  const plainHook = await receiver(t, []);
  const plainDone = await jobs(plain.catalog, plain.store, fakeStitcher(3), { url: plainHook.url }).run('fip', plain.record.session);
  t.match(plainDone, { state: 'done', chapters: 0 });
  t.notOk(await plain.catalog.files.exists(plain.catalog.files.cuePath('fip', plain.record.session)));
  const payload = JSON.parse(plainHook.received[0]!.body) as Record<string, unknown>;
  t.equal(payload['chapters'], 0);
  t.notOk('cueUrl' in payload);
});

/** Runs a command to its end; resolves with its exit code and output. */
function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('real FFmpeg: a lost segment in the middle is stitched as silence, the file lasts the whole session and the gap is silent', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-gap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Six 1-second MPEG-TS segments of one continuous tone (48 kHz stereo AAC), as a packager run writes them.
  const made = await run('ffmpeg', [
    '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-ac', '2', '-t', '6', '-c:a', 'aac', '-b:a', '128k',
    '-f', 'segment', '-segment_time', '1', '-segment_format', 'mpegts', '-segment_list', join(dir, 'list.csv'), '-segment_list_type', 'csv', join(dir, 'seg%d.ts'),
  ]);
  t.equal(made.code, 0, made.stderr);
  const cuts = (await readFile(join(dir, 'list.csv'), 'utf8')).trim().split('\n').map((line) => line.split(','));
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(join(dir, 'recordings')), now: () => T0 });
  const opened = await catalog.open({ channel: 'fip', rendition: 'hifi', trigger: 'manual', startedAt: T0 });
  for (const [msn, [name, start, end]] of cuts.entries()) {
    const segment = { type: 'segment', msn, durationSeconds: Number(end) - Number(start), programDateTime: T0 + Number(start) * 1000, fallback: false } as const;
    await catalog.files.addSegment('fip', opened.session, segment, await readFile(join(dir, name!)));
  }
  const record = (await catalog.finish(opened, 'stopped'))!;
  const [gapStart, gapEnd] = [Number(cuts[2]![1]), Number(cuts[3]![2])];
  await catalog.files.deleteSegments('fip', record.session, [2, 3]);

  const done = await jobs(catalog, store, undefined, undefined, { audioOf: () => ({ sampleRate: 48000, channels: 2, bitrate: 128_000 }) }).run('fip', record.session);
  t.equal(done.state, 'done', done.error ?? '');
  t.ok(Math.abs(done.silenceSeconds! - (gapEnd - gapStart)) < 0.001, `${done.silenceSeconds} s of silence for the two lost segments`);
  t.ok(Math.abs(done.durationSeconds! - record.segmentsSeconds!) <= 0.1, `the file lasts ${done.durationSeconds} s, the session ${record.segmentsSeconds} s`);
  const file = catalog.files.filePath('fip', record.session);
  const volume = async (from: number, to: number): Promise<number> => {
    const measured = await run('ffmpeg', ['-nostdin', '-v', 'info', '-ss', String(from), '-to', String(to), '-i', file, '-af', 'volumedetect', '-f', 'null', '-']);
    return Number(/max_volume: (-?[\d.]+|-inf) dB/.exec(measured.stderr)?.[1] ?? NaN);
  };
  const inGap = await volume(gapStart + 0.2, gapEnd - 0.2);
  const before = await volume(0.2, gapStart - 0.2);
  const after = await volume(gapEnd + 0.2, record.segmentsSeconds! - 0.2);
  t.ok(inGap < -80 || Number.isNaN(inGap), `the gap is silent (max ${inGap} dB)`);
  t.ok(before > -30 && after > -30, `the tone plays before (${before} dB) and after (${after} dB) it`);
  const decoded = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-']);
  t.equal(decoded.stderr.trim(), '', 'the file decodes without an error');
});

t.test('the webhook is retried with exponential backoff until the receiver takes it; a refusal is final', async (t) => {
  const { catalog, store, record } = await endedSession(t);
  const hook = await receiver(t, [500, 503]);
  const done = await jobs(catalog, store, fakeStitcher(3), { url: hook.url }).run('fip', record.session);
  t.match(done.webhook, { delivered: true, attempts: 3 });
  t.equal(hook.received.length, 3);
  const gaps = hook.received.slice(1).map((call, index) => call.at - hook.received[index]!.at);
  t.ok(gaps[0]! >= retryDelayMs(FAST_RETRY, 1) && gaps[1]! >= retryDelayMs(FAST_RETRY, 2), `waited ${gaps.join(' ms, ')} ms`);
  t.same(new Set(hook.received.map((call) => call.headers['x-onair-delivery'])).size, 1, 'every attempt is the same delivery');

  const second = await endedSession(t);
  const refusing = await receiver(t, [410]);
  const refused = await jobs(second.catalog, second.store, fakeStitcher(3), { url: refusing.url }).run('fip', second.record.session);
  t.match(refused, { state: 'done', webhook: { delivered: false, attempts: 1, error: 'HTTP 410' } }, 'the file is still stored and on the events stream');
  t.equal(refusing.received.length, 1);
});

t.test('a session still being recorded cannot be stitched, an unknown one is not found', async (t) => {
  const { catalog, store } = await endedSession(t);
  const open = await catalog.open({ channel: 'fip', rendition: 'hifi', trigger: 'manual', startedAt: T0 + 60_000 });
  const runner = jobs(catalog, store, fakeStitcher(3));
  await t.rejects(runner.run('fip', open.session), { code: 'ONAIR_RECORDING_BUSY' });
  await t.rejects(runner.run('fip', '20200101T000000Z'), { code: 'ONAIR_RECORDING_NOT_FOUND' });
});
