/**
 * A stitch job with `recordings.storage.s3` (src/recording/recording-jobs.ts) against a real
 * S3-compatible server on loopback (s3rver): the stitched file goes to the bucket, the
 * webhook carries a presigned URL that fetches it, the origin answers 302 to the object
 * and the redirect leads to the same bytes; a job cut mid-upload resumes with only the
 * missing parts; with local disk (the default) nothing changes: no objects, the origin
 * streams the file from disk.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { SessionStitchSpec } from '../../src/ffmpeg/recording-stitch.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import { RecordingJobs, type Stitcher } from '../../src/recording/recording-jobs.js';
import { MIN_PART_SIZE } from '../../src/recording/s3-multipart-upload.js';
import { S3RecordingStorage } from '../../src/recording/s3-storage.js';
import type { RecordingRecord } from '../../src/recording/recording-record.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { RecordingStore } from '../../src/store/store.js';
import { startS3Server } from '../helpers/s3-server.js';

const T0 = Date.parse('2026-11-21T23:15:00.000Z');
const FILE = randomBytes(MIN_PART_SIZE * 2 + 777);

/** Writes FILE where FFmpeg would write the stitched file (FFmpeg's own stitch is tested elsewhere). */
const stitcher: Stitcher = {
  async stitch(spec: SessionStitchSpec) {
    await writeFile(spec.outputPath, FILE);
  },
  async probe() {
    return { durationSeconds: 3, sizeBytes: FILE.length, audioCodec: 'aac' };
  },
};

async function endedSession(t: Test, objects?: S3RecordingStorage): Promise<{ catalog: RecordingCatalog; store: MemoryStore; session: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-s3-jobs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir), now: () => T0, ...(objects ? { objects } : {}) });
  const opened = await catalog.open({ channel: 'fip', rendition: 'hifi', trigger: 'auto', startedAt: T0 });
  for (let msn = 0; msn < 3; msn++) {
    await catalog.files.addSegment('fip', opened.session, { type: 'segment', msn, durationSeconds: 1, programDateTime: T0 + msn * 1000, fallback: false }, Uint8Array.from([msn]));
  }
  await catalog.finish(opened, 'stopped');
  return { catalog, store, session: opened.session };
}

/** The memory store, telling `onRecord` each recording record written (to cut a job at a chosen step). */
function watchedStore(store: MemoryStore, onRecord: (record: RecordingRecord) => void): RecordingStore {
  return {
    async putRecording(channel, session, text, fence) {
      await store.putRecording(channel, session, text, fence);
      onRecord(JSON.parse(text) as RecordingRecord);
    },
    getRecording: (channel, session) => store.getRecording(channel, session),
    listRecordings: (channel) => store.listRecordings(channel),
    deleteRecording: (channel, session) => store.deleteRecording(channel, session),
  };
}

async function webhookReceiver(t: Test): Promise<{ url: string; payloads: Record<string, unknown>[] }> {
  const payloads: Record<string, unknown>[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      payloads.push(JSON.parse(body) as Record<string, unknown>);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, payloads };
}

async function originOf(t: Test, catalog: RecordingCatalog, store: MemoryStore) {
  const app = await buildOrigin({ store, channels: [{ id: 'fip', renditions: ['hifi'] }], targetDurationSeconds: 1, storeTimeoutMs: 500, recordings: catalog });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

t.test('the stitched file goes to the bucket; the webhook URL fetches it and the origin redirects to it', async (t) => {
  const s3 = await startS3Server(t, { prefix: 'onair/', presignSeconds: 600 });
  const storage = new S3RecordingStorage(s3.config);
  t.teardown(() => storage.close());
  const { catalog, store, session } = await endedSession(t, storage);
  const hook = await webhookReceiver(t);
  const jobs = new RecordingJobs({ catalog, store, logger: pino({ level: 'silent' }), publicUrl: 'https://radio.example', webhook: { url: hook.url }, stitcher, uploadPartSize: MIN_PART_SIZE });
  t.teardown(() => jobs.close());
  const record = await jobs.run('fip', session);
  t.equal(record.state, 'done');
  t.same(record.objects, { file: `onair/fip/${session}.m4a` });
  t.equal(record.upload, undefined, 'the finished upload leaves no state behind');
  t.equal(jobs.stats.uploads.partsSent, 3);

  const payload = hook.payloads[0]!;
  t.equal(payload.url, `https://radio.example/recordings/fip/${session}.m4a`, 'the origin URL is kept');
  t.match(payload.objectUrl, /X-Amz-Expires=600/, 'a presigned URL with the configured expiry');
  t.type(payload.objectUrlExpiresAt, 'string');
  const fromWebhook = await fetch(payload.objectUrl as string);
  t.equal(fromWebhook.status, 200);
  t.ok(Buffer.from(await fromWebhook.arrayBuffer()).equals(FILE), 'the webhook URL fetches the file');

  const app = await originOf(t, catalog, store);
  const redirect = await app.inject(`/recordings/fip/${session}.m4a`);
  t.equal(redirect.statusCode, 302);
  t.equal(redirect.headers['cache-control'], 'public, max-age=300', 'cached half the URL life at most');
  const followed = await fetch(redirect.headers.location as string, { headers: { range: 'bytes=0-99' } });
  t.equal(followed.status, 206, 'the bucket serves ranges');
  t.ok(Buffer.from(await followed.arrayBuffer()).equals(FILE.subarray(0, 100)));
  t.equal((await app.inject(`/recordings/fip/${session}.cue`)).statusCode, 404, 'no chapters, no cue sheet');

  await catalog.remove('fip', session);
  t.equal((await fetch(payload.objectUrl as string)).status, 404, 'removing the session removes its object');
});

t.test('a job cut mid-upload resumes with only the parts the bucket lacks', async (t) => {
  const s3 = await startS3Server(t);
  const storage = new S3RecordingStorage(s3.config);
  t.teardown(() => storage.close());
  const { catalog, store, session } = await endedSession(t, storage);
  // The first run stops (its process closes) once the first part is saved in the record.
  let closing: Promise<void> | undefined;
  const watched = new RecordingCatalog({
    store: watchedStore(store, (record) => {
      if (record.upload?.parts.length === 1) closing ??= first.close();
    }),
    files: catalog.files,
    objects: storage,
    now: () => T0,
  });
  const first = new RecordingJobs({ catalog: watched, store, logger: pino({ level: 'silent' }), publicUrl: 'https://radio.example', stitcher, uploadPartSize: MIN_PART_SIZE });
  await t.rejects(first.run('fip', session));
  await closing;
  const cut = (await catalog.get('fip', session))!;
  t.equal(cut.state, 'stitched');
  t.equal(cut.upload?.parts.length, 1, 'the record keeps the confirmed part');

  const second = new RecordingJobs({ catalog, store, logger: pino({ level: 'silent' }), publicUrl: 'https://radio.example', stitcher, uploadPartSize: MIN_PART_SIZE });
  t.teardown(() => second.close());
  const record = await second.run('fip', session);
  t.equal(record.state, 'done');
  t.equal(second.stats.uploads.partsSent, 2, 'parts 2 and 3 only');
  const response = await fetch(await storage.urlOf(record.objects!.file));
  t.ok(Buffer.from(await response.arrayBuffer()).equals(FILE));
});

t.test('with local disk (the default) the file stays on disk only and the origin streams it', async (t) => {
  const { catalog, store, session } = await endedSession(t);
  const hook = await webhookReceiver(t);
  const jobs = new RecordingJobs({ catalog, store, logger: pino({ level: 'silent' }), publicUrl: 'https://radio.example', webhook: { url: hook.url }, stitcher });
  t.teardown(() => jobs.close());
  const record = await jobs.run('fip', session);
  t.equal(record.state, 'done');
  t.equal(record.objects, undefined);
  t.notOk('objectUrl' in hook.payloads[0]!, 'no object URL in the webhook');
  const app = await originOf(t, catalog, store);
  const response = await app.inject(`/recordings/fip/${session}.m4a`);
  t.equal(response.statusCode, 200);
  t.ok(response.rawPayload.equals(FILE));
});
