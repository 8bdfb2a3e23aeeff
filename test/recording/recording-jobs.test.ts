/**
 * The stitch jobs (src/recording/recording-jobs.ts) as a state machine over the store,
 * with a stand-in for FFmpeg (the real one runs in test/e2e/recording.test.ts) and a real
 * HTTP webhook receiver on loopback: each step is recorded before the next, a resumed job
 * does not redo what is done, a wrong duration or a missing segment fails the job, and the
 * webhook is retried with backoff and signed.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import { RecordingJobs, type Stitcher } from '../../src/recording/recording-jobs.js';
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

/** Writes a file where FFmpeg would and reports `durationSeconds` for it; counts its calls. */
function fakeStitcher(durationSeconds: number): Stitcher & { stitches: number } {
  const stitcher = {
    stitches: 0,
    async stitch(spec: { outputPath: string }, options: { onProgress?: (seconds: number) => void }) {
      stitcher.stitches += 1;
      options.onProgress?.(1.5);
      await writeFile(spec.outputPath, 'm4a bytes');
    },
    async probe() {
      return { durationSeconds, sizeBytes: 9, audioCodec: 'aac' };
    },
  };
  return stitcher;
}

function jobs(catalog: RecordingCatalog, store: MemoryStore, stitcher: Stitcher, webhook?: { url: string; secret?: string }): RecordingJobs {
  return new RecordingJobs({ catalog, store, stitcher, logger: pino({ level: 'silent' }), publicUrl: 'https://radio.example/', webhook, webhookRetry: FAST_RETRY });
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
  t.notOk(await catalog.files.exists(catalog.files.partialFilePath('fip', record.session)), 'no partial file left');
  const [event] = await store.readEvents(10);
  t.equal(event!.id, done.eventId);
  t.match(event!.fields, { event: 'recording.ready', channel: 'fip', session: record.session, url: `https://radio.example/recordings/fip/${record.session}.m4a`, durationSeconds: '3.04', sizeBytes: '9' });
  const [call] = hook.received;
  const payload = JSON.parse(call!.body) as Record<string, unknown>;
  t.match(payload, { event: 'recording.ready', url: `https://radio.example/recordings/fip/${record.session}.m4a`, playlistUrl: `https://radio.example/recordings/fip/${record.session}.m3u8`, durationSeconds: 3.04, sizeBytes: 9 });
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

t.test('a missing segment file fails the job, naming it', async (t) => {
  const { catalog, store, record } = await endedSession(t);
  await catalog.files.deleteSegments('fip', record.session, [1]);
  const failed = await jobs(catalog, store, fakeStitcher(3)).run('fip', record.session);
  t.match(failed, { state: 'failed', error: /1 of 3 segment files are missing \(first: 1\.ts\)/ });
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
