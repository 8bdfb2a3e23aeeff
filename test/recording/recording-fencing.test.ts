/**
 * Stitch jobs fenced by the channel lease (src/recording/recording-jobs.ts), on a real
 * redis-server and a shared recordings dir, with real FFmpeg: packager A starts a session's
 * job under its lease and is held (a frozen host) right after FFmpeg; its lease expires,
 * B takes the channel and runs the same job to the end; when A wakes, every write it tries
 * is refused, and the session has one file, one record, and one event on the stream.
 * Then the store's once-per-session event itself, on every store (memory, Redis, Sentinel,
 * Cluster): a second append returns the first id, and a stale token writes nothing.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import t from 'tap';
import { probeMedia, stitchSession } from '../../src/ffmpeg/recording-stitch.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import { RecordingJobs, type Stitcher } from '../../src/recording/recording-jobs.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Lease } from '../../src/store/store.js';
import { decodeToEnd, toneSegments } from '../helpers/recording.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { startBackends } from '../helpers/store-backends.js';

const T0 = Date.parse('2026-11-21T23:15:00.000Z');
const LEASE_MS = 400;

t.test('a job cut off by a takeover changes nothing: one stitch, one record, one event across the pair', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const dir = await mkdtemp(join(tmpdir(), 'onair-fencing-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cuts = await toneSegments(dir, 4);

  // Two packager processes: each its own store connection, one shared recordings dir.
  const storeA = new RedisStore({ url: redis.url });
  const storeB = new RedisStore({ url: redis.url });
  for (const store of [storeA, storeB]) {
    await store.start();
    t.teardown(() => store.close());
  }
  const files = new RecordingFiles(join(dir, 'recordings'));
  const catalogA = new RecordingCatalog({ store: storeA, files });
  const catalogB = new RecordingCatalog({ store: storeB, files });
  const opened = await catalogA.open({ channel: 'fip', rendition: 'hifi', trigger: 'manual', startedAt: T0 });
  for (const [msn, cut] of cuts.entries()) {
    await files.addSegment('fip', opened.session, { type: 'segment', msn, durationSeconds: cut.durationSeconds, programDateTime: T0 + cut.startSeconds * 1000, fallback: false }, await readFile(cut.path));
  }
  const session = (await catalogA.finish(opened, 'stopped'))!.session;

  let leaseA: Lease | null = await storeA.acquireLease('fip', 'packager-a', LEASE_MS);
  let leaseB: Lease | null = null;
  t.ok(leaseA, 'A leads');
  // A's FFmpeg runs for real; A itself is then held, as a SIGSTOPped host would be.
  let releaseA!: () => void;
  const heldA = new Promise<void>((resolve) => (releaseA = resolve));
  let aStitched!: () => void;
  const aReachedHold = new Promise<void>((resolve) => (aStitched = resolve));
  const heldStitcher: Stitcher = {
    async stitch(spec, options) {
      await stitchSession(spec, options);
      aStitched();
      await heldA;
    },
    probe: probeMedia,
  };
  const logger = pino({ level: 'silent' });
  const jobsA = new RecordingJobs({ catalog: catalogA, store: storeA, logger, publicUrl: 'http://a.example', stitcher: heldStitcher, fence: () => leaseA?.token });
  const jobsB = new RecordingJobs({ catalog: catalogB, store: storeB, logger, publicUrl: 'http://b.example', fence: () => leaseB?.token });

  const runA = jobsA.run('fip', session).then(
    (record) => ({ record, error: undefined }),
    (error: unknown) => ({ record: undefined, error: error as { code?: string } }),
  );
  await aReachedHold;
  // A is frozen: its lease lapses and B takes the channel over.
  await sleep(LEASE_MS + 100);
  leaseB = await storeB.acquireLease('fip', 'packager-b', 10_000);
  t.ok(leaseB, 'B leads once A’s lease lapsed');
  const doneByB = await jobsB.run('fip', session);
  t.equal(doneByB.state, 'done', 'B stitched and announced the session');

  releaseA(); // A wakes up, still holding its old token
  const outcome = await runA;
  t.equal(outcome.error?.code, 'ONAIR_FENCED', 'A’s late writes are refused with ONAIR_FENCED');
  leaseA = null;

  const record = await catalogB.require('fip', session);
  t.match(record, { state: 'done', eventId: doneByB.eventId, durationSeconds: doneByB.durationSeconds }, 'the record is B’s');
  const events = (await storeB.readEvents(100)).filter((event) => event.fields.session === session);
  t.equal(events.length, 1, 'one recording.ready event for the session');
  t.equal(events[0]!.id, doneByB.eventId);
  t.equal(events[0]!.fields.url, `http://b.example/recordings/fip/${session}.m4a`);
  t.same(await readdir(files.sessionDir('fip', session)), ['index.jsonl'], 'no work directory of either attempt is left, and the segments went after the check');
  const decoded = await decodeToEnd(files.filePath('fip', session));
  t.equal(decoded.code, 0);
  t.equal(decoded.errors, '', 'the file in place decodes cleanly');
  await jobsA.close();
  await jobsB.close();
});

t.test('every store appends a session’s event once, and never under a stale lease', async (t) => {
  for (const backend of await startBackends(t)) {
    t.test(backend.name, async (t) => {
      const harness = backend.harness(t);
      const store = await harness.open();
      const first = (await store.acquireLease('fip', 'a', 300))!;
      const id = await store.appendEventOnce('fip', '20261121T231500Z', { event: 'recording.ready' }, first.token);
      t.equal(await store.appendEventOnce('fip', '20261121T231500Z', { event: 'recording.ready' }, first.token), id, 'the same id, nothing appended');
      await harness.elapse(400);
      const second = (await store.acquireLease('fip', 'b', 5000))!;
      await t.rejects(store.appendEventOnce('fip', '20261121T231501Z', { event: 'recording.ready' }, first.token), { code: 'ONAIR_FENCED' });
      await t.rejects(store.putRecording('fip', '20261121T231501Z', '{}', first.token), { code: 'ONAIR_FENCED' });
      t.equal(await store.getRecording('fip', '20261121T231501Z'), null, 'nothing written under the stale token');
      await store.putRecording('fip', '20261121T231501Z', '{}', second.token);
      await store.appendEventOnce('fip', '20261121T231501Z', { event: 'recording.ready' }, second.token);
      const events = (await store.readEvents(10)).filter((event) => event.fields.event === 'recording.ready');
      t.equal(events.length, 2, 'two sessions, two events');
      await store.deleteRecording('fip', '20261121T231500Z');
      t.not(await store.appendEventOnce('fip', '20261121T231500Z', { event: 'recording.ready' }), id, 'a deleted session’s key is forgotten');
    });
  }
});
