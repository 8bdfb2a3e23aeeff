/**
 * Recordings and the disk, for real.
 *
 * A full disk: `onair start` records onto a small tmpfs (mounted here; the test runs as root),
 * FFmpeg sends a tone; the tmpfs is filled up mid-session. Live audio goes on; the session
 * ends (`disk-full`), its stitch cannot write either and waits (ONAIR_RECORDING_DISK_FULL),
 * and the alert metrics show it. Once room is made, the session goes on in a new one and the
 * waiting job completes.
 *
 * Durability: `onair record stitch` on a real redis-server, traced with strace: the stitched
 * file is fsynced, renamed into place, and its directory fsynced, all before the record that
 * says `stitched` is written to Redis.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { originUrl, playlistSegmentCount, startRole, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { CLI_PATH } from '../helpers/onair-process.js';
import { run, toneSegments } from '../helpers/recording.js';
import { startRedisServer } from '../helpers/redis-server.js';

/** A tmpfs of `size` at a fresh directory, unmounted in teardown. */
async function smallDisk(t: Test, size: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-full-disk-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) throw new Error(`mount -t tmpfs failed (the test needs root): ${mounted.stderr}`);
  t.teardown(async () => {
    spawnSync('umount', ['-l', dir]);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** The value of one sample of a Prometheus text exposition; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

t.test('a full recordings disk ends the session and holds its job, live audio goes on, the alert metric fires; room brings both back', async (t) => {
  const dir = await smallDisk(t, '2m');
  const base = await testConfig({ segmentSeconds: 1, channel: { record: true, endAfterSeconds: 3 } });
  const config = resolveConfig({ ...structuredClone(base), recordings: { dir } });
  const running = await startRole(t, config, 'start');
  const catalog = new RecordingCatalog({ store: running.store, files: new RecordingFiles(dir) });
  startSender(t, config);
  const baseUrl = originUrl(config);
  const metrics = async (): Promise<string> => (await fetch(running.metricsUrl)).text();

  const first = await waitFor('a session with 3 segments', async () => {
    const record = (await catalog.list('fip')).find((candidate) => candidate.state === 'recording');
    return record && (await catalog.files.readIndex('fip', record.session))!.lines.length >= 3 ? record : undefined;
  });
  const filler = join(dir, 'filler');
  const filled = await writeFile(filler, new Uint8Array(64 * 1024 * 1024)).catch((error: unknown) => error);
  t.equal((filled as NodeJS.ErrnoException).code, 'ENOSPC', 'the tmpfs is full');

  const ended = await waitFor('the session ended by the full disk', async () => {
    const record = await catalog.get('fip', first.session);
    return record?.endReason === 'disk-full' ? record : undefined;
  });
  t.match(ended, { endReason: 'disk-full' });
  const waiting = await waitFor('its job held by the full disk', async () => {
    const record = await catalog.get('fip', first.session);
    return record?.errorCode === 'ONAIR_RECORDING_DISK_FULL' ? record : undefined;
  });
  t.equal(waiting.state, 'ended', 'the job waits, it has not failed');
  const full = await metrics();
  t.equal(sample(full, 'onair_recording_disk_full{channel="fip"}'), 1, 'the alert metric fires');
  t.equal(sample(full, 'onair_recording_disk_full_total{channel="fip"}'), 1);
  t.ok(sample(full, 'onair_recording_jobs_total{outcome="disk_full"}')! >= 1, 'the held job is counted');
  t.equal(sample(full, 'onair_recording_active{channel="fip"}'), 0, 'nothing is being recorded');
  const published = sample(full, 'onair_segments_published_total{channel="fip"}')!;
  await waitFor('live segments going on', async () => (sample(await metrics(), 'onair_segments_published_total{channel="fip"}')! >= published + 2 ? true : undefined));
  t.ok((await playlistSegmentCount(`${baseUrl}/fip/fip_hifi.m3u8`)) >= 3, 'the live playlist is served meanwhile');

  await rm(filler);
  const done = await waitFor('the held job done once there is room', async () => {
    const record = await catalog.get('fip', first.session);
    return record?.state === 'done' ? record : undefined;
  }, 30_000);
  t.ok(Math.abs(done.durationSeconds! - done.segmentsSeconds!) <= 0.1, `the file lasts ${done.durationSeconds} s, the segments ${done.segmentsSeconds} s`);
  const next = await waitFor('the session going on in a new one', async () => (await catalog.list('fip')).find((record) => record.continues === first.session));
  t.match(next, { state: 'recording', trigger: 'auto' });
  t.equal(sample(await metrics(), 'onair_recording_disk_full{channel="fip"}'), 0, 'the alert clears');
});

t.test('strace: the stitched file and its directory are fsynced before Redis records the session stitched', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const dir = await mkdtemp(join(tmpdir(), 'onair-durable-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cuts = await toneSegments(dir, 3);
  const recordingsDir = join(dir, 'recordings');
  const store = new RedisStore({ url: redis.url });
  await store.start();
  t.teardown(() => store.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(recordingsDir) });
  const opened = await catalog.open({ channel: 'fip', rendition: 'hifi', trigger: 'manual', startedAt: Date.parse('2026-11-21T23:15:00Z') });
  for (const [msn, cut] of cuts.entries()) {
    await catalog.files.addSegment('fip', opened.session, { type: 'segment', msn, durationSeconds: cut.durationSeconds, programDateTime: opened.startedAt + cut.startSeconds * 1000, fallback: false }, await readFile(cut.path));
  }
  const session = (await catalog.finish(opened, 'stopped'))!.session;
  const base = await testConfig({ store: redis.url });
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify({ ...base, log: { level: 'warn' }, recordings: { dir: recordingsDir } }));

  const trace = join(dir, 'strace.txt');
  const traced = await run('strace', ['-f', '-y', '-s', '100000', '-o', trace, '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,write,writev,sendto,sendmsg', process.execPath, CLI_PATH, 'record', 'stitch', session, '--config', configPath]);
  t.equal(traced.code, 0, traced.stderr);
  const lines = (await readFile(trace, 'utf8')).split('\n');
  const file = catalog.files.filePath('fip', session);
  const channelDir = join(recordingsDir, 'fip');
  const at = (what: string, test: (line: string) => boolean): number => {
    const index = lines.findIndex(test);
    t.ok(index >= 0, `${what} is in the trace`);
    return index;
  };
  const fileSynced = at('fsync of the stitched file', (line) => /\bf(data)?sync\(\d+<[^>]*\/stitch-[0-9a-f]+\/[^>]*\.m4a>\)\s+= 0/.test(line));
  const renamed = at('its rename into place', (line) => /\brename(at2?)?\(/.test(line) && line.includes(`${file}"`) && / = 0$/.test(line));
  const dirSynced = at('fsync of its directory', (line) => new RegExp(`\\bfsync\\(\\d+<${channelDir.replace(/[/.]/g, '\\$&')}>\\)\\s+= 0`).test(line));
  const recorded = at('the record written as stitched', (line) => /\b(write|writev|sendto|sendmsg)\(\d+<(TCP|socket)/.test(line) && line.includes('\\"state\\":\\"stitched\\"'));
  t.ok(fileSynced < renamed && renamed < dirSynced && dirSynced < recorded, `in order: fsync file (${fileSynced}), rename (${renamed}), fsync dir (${dirSynced}), record (${recorded})`);
  t.equal((await catalog.require('fip', session)).state, 'done');
});
