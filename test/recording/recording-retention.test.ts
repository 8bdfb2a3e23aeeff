/**
 * Recordings retention (src/recording/recording-retention.ts) over a real recordings dir and
 * store, with a clock moved by hand: sessions past `maxAge` go, the oldest finished ones go
 * while the channel is over `maxSize`, sessions still recorded or waiting for their job stay,
 * channels are swept apart, and a process that does not lead the channel sweeps nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import type { RecordingRecord } from '../../src/recording/recording-record.js';
import { RecordingRetention, type RetentionLimits } from '../../src/recording/recording-retention.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const T0 = Date.parse('2026-11-21T00:00:00.000Z');
const HOUR = 3600_000;
const KB = 1024;

async function rig(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), 'onair-retention-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  let now = T0;
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir), now: () => now });
  /** A session of `channel` started at `hoursIn` h, ended 1 h later, with a `kilobytes` file, in `state`. */
  const session = async (channel: string, hoursIn: number, kilobytes: number, state: RecordingRecord['state'] = 'done'): Promise<string> => {
    const opened = await catalog.open({ channel, rendition: 'hifi', trigger: 'auto', startedAt: T0 + hoursIn * HOUR });
    await catalog.files.addSegment(channel, opened.session, { type: 'segment', msn: 1, durationSeconds: 1, programDateTime: T0 + hoursIn * HOUR, fallback: false }, new Uint8Array(KB));
    if (state === 'recording') return opened.session;
    now = T0 + (hoursIn + 1) * HOUR;
    const ended = (await catalog.finish(opened, 'stopped'))!;
    await writeFile(catalog.files.filePath(channel, ended.session), new Uint8Array(kilobytes * KB));
    await catalog.update(ended, { state });
    return ended.session;
  };
  const retention = (limits: RetentionLimits, leads = true) =>
    new RecordingRetention({ catalog, limitsOf: () => limits, logger: pino({ level: 'silent' }), leads: () => leads, now: () => now });
  const sessions = async (channel: string) => (await catalog.list(channel)).map((record) => record.session);
  return { catalog, session, retention, sessions, setNow: (at: number) => (now = at) };
}

t.test('sessions that ended more than maxAge ago are removed with their files; newer and unfinished ones stay', async (t) => {
  const { catalog, session, retention, sessions, setNow } = await rig(t);
  const old = await session('fip', 0, 10);
  const failedOld = await session('fip', 1, 10, 'failed');
  const waiting = await session('fip', 2, 10, 'ended'); // its job has not run yet
  const recent = await session('fip', 30, 10);
  setNow(T0 + 48 * HOUR);
  const removed = await retention({ maxAge: 24 * 3600 }).sweep('fip');
  t.same(removed, [old, failedOld], 'the two finished sessions that ended over 24 h ago');
  t.same(await sessions('fip'), [waiting, recent]);
  t.notOk(await catalog.files.exists(catalog.files.filePath('fip', old)), 'its file is gone');
  t.notOk(await catalog.files.exists(catalog.files.sessionDir('fip', old)), 'its segments and index are gone');
});

t.test('over maxSize, the oldest finished sessions go until the channel fits; other channels are not touched', async (t) => {
  const { session, retention, sessions } = await rig(t);
  const first = await session('fip', 0, 100);
  const second = await session('fip', 2, 100);
  const open = await session('fip', 4, 0, 'recording');
  const third = await session('fip', 6, 100);
  const jazz = await session('jazz', 0, 500);
  const sweeper = retention({ maxSize: 250 * KB });
  t.same(await sweeper.sweep('fip'), [first], 'one session freed enough');
  t.same(await sessions('fip'), [second, open, third]);
  t.ok(sweeper.stats.bytes.get('fip')! <= 250 * KB, `${sweeper.stats.bytes.get('fip')} bytes left`);
  t.same(sweeper.stats.removed.get('fip'), { age: 0, size: 1 });
  t.same(await retention({ maxSize: 50 * KB }).sweep('fip'), [second, third], 'never the session being recorded');
  t.same(await sessions('jazz'), [jazz], 'another channel keeps its own');
});

t.test('a process that does not lead the channel, or a channel without limits, removes nothing', async (t) => {
  const { session, retention, setNow } = await rig(t);
  await session('fip', 0, 100);
  setNow(T0 + 100 * HOUR);
  t.same(await retention({ maxAge: 60, maxSize: 1024 * KB }, false).sweep('fip'), []);
  t.same(await retention({}).sweep('fip'), []);
});
