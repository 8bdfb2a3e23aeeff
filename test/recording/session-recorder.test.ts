/**
 * The session recorder (src/recording/session-recorder.ts) driven by hand: published
 * segments (their bytes in a MemoryStore, as the packager leaves them) and input switches
 * with a fake clock, a temp recordings dir, and a fake jobs queue. What a broadcaster
 * notices: when a session starts and ends, what is kept, that gaps are kept as silence,
 * that manual sessions follow the operator, and that a crash loses nothing recorded.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { ChannelConfig } from '../../src/config/config-schema.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { segmentName, type WindowSegment } from '../../src/hls/sequence-state.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { isOnairError } from '../../src/errors.js';
import { RecordingFiles, sessionSegments } from '../../src/recording/recording-files.js';
import { recordedRendition, SessionRecorder } from '../../src/recording/session-recorder.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const T0 = Date.parse('2026-11-21T23:15:00.000Z');

function channelConfig(keys: Record<string, unknown> = {}): ChannelConfig {
  return resolveConfig({
    channels: [
      {
        id: 'fip',
        renditions: [
          { id: 'lofi', bitrate: '32k' },
          { id: 'hifi', bitrate: '192k' },
          { id: 'midfi', bitrate: '96k' },
        ],
        inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }],
        ...keys,
      },
    ],
  }).channels[0]!;
}

interface Rig {
  recorder: SessionRecorder;
  catalog: RecordingCatalog;
  files: RecordingFiles;
  store: MemoryStore;
  enqueued: string[];
  resumed: string[];
  /** Publishes segment `msn` (1 s, program date time T0 + msn s) and waits until it is recorded. */
  publish(msn: number, options?: { discontinuity?: boolean; gone?: boolean }): Promise<void>;
  /** A recorder of the same channel over the same store and dir: a restarted process. */
  restart(): Rig;
}

async function rig(t: Test, keys: Record<string, unknown> = {}, shared?: { store: MemoryStore; dir: string }): Promise<Rig> {
  const dir = shared?.dir ?? (await mkdtemp(join(tmpdir(), 'onair-recorder-')));
  if (!shared) t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = shared?.store ?? new MemoryStore();
  if (!shared) {
    await store.start();
    t.teardown(() => store.close());
  }
  const channel = channelConfig(keys);
  const files = new RecordingFiles(dir);
  const catalog = new RecordingCatalog({ store, files, now: () => T0 });
  const build = (): Rig => {
    const enqueued: string[] = [];
    const resumed: string[] = [];
    const recorder = new SessionRecorder({
      channel,
      catalog,
      store,
      logger: pino({ level: 'silent' }),
      jobs: { enqueue: (_, session) => enqueued.push(session), resume: (id) => resumed.push(id) },
      now: () => T0,
    });
    return {
      recorder,
      catalog,
      files,
      store,
      enqueued,
      resumed,
      async publish(msn, options = {}) {
        const entry: WindowSegment = { msn, run: 1, durationSeconds: 1, programDateTime: T0 + msn * 1000, discontinuity: options.discontinuity ?? false, bytes: {} };
        if (!options.gone) await store.putSegment('fip', 'hifi', segmentName(msn, 1), Uint8Array.from([0x47, msn & 0xff]), 60);
        await recorder.segmentPublished(entry);
      },
      restart: build,
    };
  };
  return build();
}

/** Switches at the wall-clock time segment `msn` starts. */
const at = (msn: number): number => T0 + msn * 1000;

t.test('the highest bitrate is recorded unless a rendition is named', async (t) => {
  t.equal(recordedRendition(channelConfig()), 'hifi');
  t.equal(recordedRendition(channelConfig({ recordRendition: 'lofi' })), 'lofi');
});

t.test('an automatic session starts with audio, keeps a short gap as silence, and ends endAfterSeconds after the input is gone', async (t) => {
  const { recorder, catalog, files, publish, enqueued } = await rig(t, { record: true, endAfterSeconds: 3 });
  await recorder.lead();
  await publish(0); // nothing on air yet: not recorded
  recorder.sourceChanged('main', at(1));
  for (let msn = 1; msn <= 4; msn++) await publish(msn);
  recorder.sourceChanged('fallback', at(4) + 500); // the input is lost during segment 4
  for (let msn = 5; msn <= 6; msn++) await publish(msn); // two seconds of silence
  recorder.sourceChanged('main', at(7));
  for (let msn = 7; msn <= 8; msn++) await publish(msn);
  recorder.sourceChanged('fallback', at(9));
  for (let msn = 9; msn <= 11; msn++) await publish(msn); // gone for endAfterSeconds
  await publish(12); // after the end, nothing more

  const [record] = await catalog.list('fip');
  t.match(record, { session: '20261121T231501Z', trigger: 'auto', state: 'ended', endReason: 'input-lost', segments: 8, segmentsSeconds: 8 });
  t.same(enqueued, [record!.session], 'handed to the stitch jobs');
  const index = (await files.readIndex('fip', record!.session))!;
  const kept = sessionSegments(index);
  t.same(kept.map((segment) => segment.msn), [1, 2, 3, 4, 5, 6, 7, 8], 'the 2 s gap stays in, the tail of silence does not');
  t.same(kept.map((segment) => segment.fallback), [false, false, false, false, true, true, false, false], 'the gap is marked as fallback audio');
  t.equal((await catalog.list('fip')).length, 1, 'one session through the gap');
  const onDisk = (await readdir(files.sessionDir('fip', record!.session))).filter((name) => name.endsWith('.ts')).sort((a, b) => parseInt(a) - parseInt(b));
  t.same(onDisk, kept.map((segment) => `${segment.msn}.ts`), 'the dropped tail is deleted from disk');
});

t.test('a channel without record: true records nothing until an operator starts a session, and stops when told', async (t) => {
  const { recorder, catalog, publish, enqueued } = await rig(t, { endAfterSeconds: 1 });
  await recorder.lead();
  recorder.sourceChanged('main', at(0));
  await publish(0);
  t.same(await catalog.list('fip'), [], 'nothing recorded');
  const started = await recorder.startManual();
  t.match(started, { trigger: 'manual', state: 'recording', session: '20261121T231500Z' });
  await publish(1);
  recorder.sourceChanged('fallback', at(2));
  for (let msn = 2; msn <= 5; msn++) await publish(msn); // silence longer than endAfterSeconds: a manual session goes on
  const stopped = await recorder.stopManual();
  t.match(stopped, { state: 'ended', endReason: 'stopped', segments: 5 });
  t.same(enqueued, [started.session]);
  await t.rejects(recorder.stopManual(), { code: 'ONAIR_RECORDING_NOT_RECORDING' }, 'a second stop finds nothing to stop');
});

t.test('a session ends at recordMaxSeconds: a forgotten manual one stops there, an automatic one goes on in a new session', async (t) => {
  const manual = await rig(t, { recordMaxSeconds: '1m' });
  await manual.recorder.lead();
  manual.recorder.sourceChanged('main', at(0));
  const started = await manual.recorder.startManual();
  for (let msn = 0; msn < 59; msn++) await manual.publish(msn);
  t.match(await manual.catalog.get('fip', started.session), { state: 'recording' }, 'still recording at 59 s');
  await manual.publish(59);
  t.match(await manual.catalog.get('fip', started.session), { state: 'ended', endReason: 'max-length', segments: 60 }, 'ended at 60 s');
  t.same(manual.enqueued, [started.session], 'and its job queued');
  await manual.publish(60);
  t.equal((await manual.catalog.list('fip')).length, 1, 'no new session: nobody asked for one');

  const automatic = await rig(t, { record: true, recordMaxSeconds: '1m' });
  await automatic.recorder.lead();
  automatic.recorder.sourceChanged('main', at(0));
  for (let msn = 0; msn < 61; msn++) await automatic.publish(msn);
  const sessions = await automatic.catalog.list('fip');
  t.equal(sessions.length, 2, 'the automatic recording went on in a second session');
  t.match(sessions.find((record) => record.endReason === 'max-length'), { segments: 60 });
});

t.test('an operator stop on a record: true channel holds automatic sessions back until audio starts again', async (t) => {
  const { recorder, catalog, publish } = await rig(t, { record: true, endAfterSeconds: 2 });
  await recorder.lead();
  recorder.sourceChanged('main', at(0));
  await publish(0);
  const first = (await catalog.list('fip'))[0]!;
  await recorder.stopManual();
  await publish(1);
  await publish(2);
  t.equal((await catalog.list('fip')).length, 1, 'no new session while the same audio goes on');
  recorder.sourceChanged('fallback', at(3));
  await publish(3);
  recorder.sourceChanged('main', at(4));
  await publish(4);
  const sessions = await catalog.list('fip');
  t.equal(sessions.length, 2, 'audio back after the input was gone: a new session');
  t.not(sessions[1]!.session, first.session);
  t.match(sessions[1], { trigger: 'auto', state: 'recording', startedAt: at(4) });
});

t.test('a standby records nothing and refuses an operator start', async (t) => {
  const { recorder, catalog, publish } = await rig(t, { record: true });
  recorder.sourceChanged('main', at(0));
  await publish(0);
  t.same(await catalog.list('fip'), []);
  await t.rejects(recorder.startManual(), { code: 'ONAIR_RECORDING_NOT_LEADING' });
});

t.test('a break in the timeline ends the session and the next one goes on from it: never a shifted timeline', async (t) => {
  const { recorder, catalog, files, publish, enqueued } = await rig(t, { endAfterSeconds: 1 });
  await recorder.lead();
  recorder.sourceChanged('main', at(0));
  const first = await recorder.startManual();
  await publish(0);
  await publish(1, { gone: true }); // gone from the store before it could be recorded
  await publish(2);
  await publish(3);
  await publish(4, { discontinuity: true }); // the packager dropped segments (store outage)
  const last = await recorder.stopManual();
  const sessions = await catalog.list('fip');
  t.equal(sessions.length, 3);
  t.match(sessions, [
    { session: first.session, endReason: 'discontinuity', segments: 1 },
    { trigger: 'manual', continues: first.session, endReason: 'discontinuity', segments: 2 },
    { session: last!.session, trigger: 'manual', continues: sessions[1]!.session, endReason: 'stopped', segments: 1 },
  ]);
  const msns = await Promise.all(sessions.map(async (record) => sessionSegments((await files.readIndex('fip', record.session))!).map((segment) => segment.msn)));
  t.same(msns, [[0], [2, 3], [4]]);
  t.same(enqueued, sessions.map((record) => record.session), 'each one is stitched');
});

t.test('after a crash the next leader ends the open session with everything recorded and goes on with a manual one', async (t) => {
  const first = await rig(t, { endAfterSeconds: 1 });
  await first.recorder.lead();
  first.recorder.sourceChanged('main', at(0));
  const manual = await first.recorder.startManual();
  for (let msn = 0; msn <= 3; msn++) await first.publish(msn);
  // The process dies here: no close(), the session stays `recording`.

  const second = first.restart();
  await second.recorder.lead();
  const interrupted = await second.catalog.require('fip', manual.session);
  t.match(interrupted, { state: 'ended', endReason: 'interrupted', segments: 4, resumeManual: false });
  t.same(second.resumed, ['fip'], "the channel's unfinished jobs, this one's included, resume");
  second.recorder.sourceChanged('main', at(5));
  await second.publish(5);
  const continued = second.recorder.current;
  t.match(continued, { trigger: 'manual', continues: manual.session, state: 'recording' }, 'the operator did not stop it: recording goes on');
});

t.test('sessions found on disk without a store record are adopted (the embedded store after a restart)', async (t) => {
  const first = await rig(t, { record: true });
  await first.recorder.lead();
  first.recorder.sourceChanged('main', at(0));
  await first.publish(0);
  await first.publish(1);
  const ended = await first.recorder.stopManual();
  const emptyStore = new MemoryStore();
  await emptyStore.start();
  t.teardown(() => emptyStore.close());
  const adopted = await new RecordingCatalog({ store: emptyStore, files: first.files }).adoptFromDisk('fip');
  t.match(adopted, [{ session: ended!.session, state: 'ended', segments: 2, segmentsSeconds: 2, endReason: 'stopped' }]);
});

t.test('a session that kept nothing is removed, and a removed session is gone from disk', async (t) => {
  const { recorder, catalog, files } = await rig(t);
  await recorder.lead();
  const started = await recorder.startManual();
  t.equal(await recorder.stopManual(), undefined, 'nothing was published meanwhile');
  t.same(await catalog.list('fip'), []);
  t.equal(await files.readIndex('fip', started.session), undefined);
  const busy = await recorder.startManual();
  const refused = await catalog.remove('fip', busy.session).catch((error: unknown) => error);
  t.ok(isOnairError(refused, 'ONAIR_RECORDING_BUSY'), 'refused while recording');
});

/** A tmpfs of `size` at a fresh directory, unmounted in teardown; undefined where mounting is not permitted. */
async function smallDisk(t: Test, size: string): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-full-disk-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  if (mounted.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
  t.teardown(async () => {
    spawnSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Writes zeros into `path` until the file system is full (ENOSPC). */
async function fillUp(path: string): Promise<void> {
  const error = await writeFile(path, new Uint8Array(64 * 1024 * 1024)).catch((caught: unknown) => caught);
  if ((error as NodeJS.ErrnoException | undefined)?.code !== 'ENOSPC') throw new Error(`expected the disk to fill up, got ${String(error)}`);
}

t.test('a full disk (a real tmpfs) ends the session, queues its job and waits; the session goes on in a new one once there is room', async (t) => {
  const dir = await smallDisk(t, '1m');
  if (!dir) {
    t.pass('SKIPPED: mount -t tmpfs is not permitted here (needs root), so the full disk cannot be shown for real');
    return;
  }
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const { recorder, catalog, files, publish, enqueued, resumed } = await rig(t, { record: true }, { store, dir });
  await recorder.lead();
  recorder.sourceChanged('main', at(0));
  for (let msn = 0; msn < 3; msn++) await publish(msn);
  const first = recorder.current!;

  const filler = join(dir, 'filler');
  await fillUp(filler);
  await publish(3);
  t.equal(recorder.diskFull, true, 'the recorder knows the disk is full');
  t.equal(recorder.stats.diskFullEvents, 1);
  t.equal(recorder.current, undefined, 'no session is open');
  t.match(await catalog.require('fip', first.session), { state: 'ended', endReason: 'disk-full', segments: 3, segmentsSeconds: 3 });
  t.same(enqueued, [first.session], 'its job is queued');
  t.notOk(await files.exists(join(files.sessionDir('fip', first.session), '3.ts')), 'no partial segment file is left');
  await publish(4);
  t.equal(recorder.stats.diskFullEvents, 1, 'still the same episode');
  t.equal((await catalog.list('fip')).length, 1, 'no empty session was opened meanwhile');
  t.equal((await readdir(join(dir, 'fip'))).filter((name) => name !== `${first.session}`).length, 0, 'and no directory is left of one');

  await rm(filler);
  await publish(5);
  t.equal(recorder.diskFull, false, 'room again');
  t.match(recorder.current, { state: 'recording', trigger: 'auto', continues: first.session }, 'the session goes on in a new one');
  t.same(resumed.slice(-1), ['fip'], 'the waiting jobs are resumed at once');
  t.same((await files.readIndex('fip', recorder.current!.session))!.lines.map((line) => line.msn), [5]);
});

t.test('an fMP4 channel records its .m4s segments with the init segment of each run, named in the index', async (t) => {
  const { recorder, catalog, files, store } = await rig(t, { container: 'fmp4', record: true, endAfterSeconds: 1 });
  await recorder.lead();
  recorder.sourceChanged('main', at(0));
  const initOf = (run: number): Uint8Array => Uint8Array.from([0x66, 0x74, 0x79, 0x70, run]);
  // Run 7 writes 0–1; run 9 (a successor) completes 2, and writes 3; run 9's init is gone when 4 comes.
  const publish = async (msn: number, run: number, withInit = true): Promise<void> => {
    await store.putSegment('fip', 'hifi', segmentName(msn, run, 'm4s'), Uint8Array.from([0x6d, msn]), 60);
    if (withInit) await store.putSegment('fip', 'hifi', `init-${run}.mp4`, initOf(run), 60);
    await recorder.segmentPublished({ msn, run, durationSeconds: 1, programDateTime: T0 + msn * 1000, discontinuity: false, bytes: {} });
  };
  await publish(0, 7);
  await publish(1, 7);
  await publish(2, 9);
  await publish(3, 9);
  const [record] = await catalog.list('fip');
  const directory = files.sessionDir('fip', record!.session);
  const index = (await files.readIndex('fip', record!.session))!;
  t.same(
    index.lines.map((line) => [line.msn, line.initRun]),
    [[0, 7], [1, 7], [2, 9], [3, 9]],
    'each segment line names the run whose init it needs',
  );
  t.same((await readdir(directory)).sort(), ['0.m4s', '1.m4s', '2.m4s', '3.m4s', 'index.jsonl', 'init-7.mp4', 'init-9.mp4']);
  t.same([...(await readFile(join(directory, 'init-9.mp4')))], [...initOf(9)], 'the init segment as published');
  t.same([...(await readFile(join(directory, '2.m4s')))], [0x6d, 2]);

  // An init segment gone from the store: the session ends before the segment that needs it.
  await publish(4, 11, false);
  const ended = (await catalog.list('fip'))[0]!;
  t.match(ended, { session: record!.session, endReason: 'discontinuity', segments: 4 });

  // Removing a stitched session's segments takes its init segments with them.
  const kept = sessionSegments((await files.readIndex('fip', record!.session))!);
  await files.deleteSegments('fip', record!.session, kept);
  await files.deleteInits('fip', record!.session, kept);
  t.same(await readdir(directory), ['index.jsonl']);
});
