/**
 * A standby pair without a shared disk, all real: two `onair ingest` processes (the built CLI)
 * on one redis-server, each with its OWN recordings dir and its own copy of the feed, and
 * `recordings.storage.s3` with `mirrorSegments` on one Ceph RGW (test/helpers/ceph-rgw.ts).
 * A leads and records; A is killed (SIGKILL) mid-session. B takes the channel over, ends the
 * session A left open and, though none of it is on its disk, stitches it from the bucket: the
 * file decodes and lasts what the index says (ffprobe against the EXTINF), it is uploaded, and
 * the mirrored segments are gone from the bucket once it is checked.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import { S3RecordingStorage } from '../../src/recording/s3-storage.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { startCephRgw } from '../helpers/ceph-rgw.js';
import { onAnotherHost } from '../helpers/chaos.js';
import { startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { decodeToEnd, probeSeconds } from '../helpers/recording.js';
import { startRedisServer } from '../helpers/redis-server.js';

const READY = /"msg":"ingest started"/;
const RECORDED = 6;

t.test('B stitches from the bucket the session killed leader A recorded on its own disk', async (t) => {
  const rgw = await startCephRgw(t, { prefix: 'radio/' });
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const [dirA, dirB] = [await mkdtemp(join(tmpdir(), 'onair-mirror-a-')), await mkdtemp(join(tmpdir(), 'onair-mirror-b-'))];
  t.teardown(() => Promise.all([dirA, dirB].map((dir) => rm(dir, { recursive: true, force: true }))));
  const base = await testConfig({ store: redis.url, segmentSeconds: 1, channel: { record: true, endAfterSeconds: 2 } });
  const s3 = { ...rgw.config, mirrorSegments: true };
  const configA = resolveConfig({ ...structuredClone(base), recordings: { dir: dirA, storage: { s3 } } });
  const other = await onAnotherHost(configA);
  const configB = resolveConfig({ ...other, recordings: { ...other.recordings, dir: dirB } });
  const store = new RedisStore({ url: redis.url });
  await store.start();
  t.teardown(() => store.close());
  const filesA = new RecordingFiles(dirA);
  const catalogB = new RecordingCatalog({ store, files: new RecordingFiles(dirB) });
  const storage = new S3RecordingStorage({ ...s3, presignSeconds: 300 });
  t.teardown(() => storage.close());

  const a = await startOnairProcess(t, { role: 'ingest', config: configA, readyPattern: READY });
  startSender(t, configA, 440);
  const session = (await waitFor('A recording a session', async () => (await catalogB.list('fip')).find((record) => record.state === 'recording'), 30_000)).session;
  const b = await startOnairProcess(t, { role: 'ingest', config: configB, readyPattern: READY });
  startSender(t, configB, 660);
  await waitFor(`${RECORDED} segments recorded by A`, async () => (((await filesA.readIndex('fip', session))?.lines.length ?? 0) >= RECORDED ? true : undefined), 30_000);
  const prefix = storage.sessionPrefix('fip', session);
  await waitFor('A mirroring them', async () => ((await storage.listKeys(prefix)).filter((key) => key.endsWith('.ts')).length >= RECORDED - 1 ? true : undefined), 20_000);

  // A host that dies: its disk goes with it.
  a.kill('SIGKILL');
  await rm(dirA, { recursive: true, force: true });

  const done = await waitFor('B done with the session', async () => {
    const record = await catalogB.get('fip', session);
    return record?.state === 'done' || record?.state === 'failed' ? record : undefined;
  }, 40_000);
  t.equal(done.state, 'done', done.error ?? 'stitched from the bucket, uploaded and announced');
  t.equal(done.endReason, 'interrupted');
  t.ok(done.segments! >= 2, `${done.segments} segments kept`);
  t.match(b.output(), /the session's index was read back from the bucket/);
  const file = catalogB.files.filePath('fip', session);
  const decoded = await decodeToEnd(file);
  t.equal(decoded.code, 0);
  t.equal(decoded.errors, '', 'the file decodes cleanly');
  const probed = await probeSeconds(file);
  t.ok(Math.abs(probed - done.segmentsSeconds!) <= 0.1, `ffprobe: ${probed.toFixed(3)} s against ${done.segmentsSeconds!.toFixed(3)} s of EXTINF`);
  t.equal((await fetch(await storage.urlOf(done.objects!.file))).status, 200, 'the file is in the bucket');
  t.same(await storage.listKeys(prefix), [], 'its mirrored segments and index are gone');
  await b.stop();
});
