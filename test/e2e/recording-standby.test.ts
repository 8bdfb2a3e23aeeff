/**
 * Recordings across a hot-standby pair, all real: two `onair ingest` processes (the built CLI)
 * on one redis-server share one recordings dir, each with its own copy of the feed (a tone
 * over SRT on its own port, as two packager hosts would have). A leads and records; its feed
 * is cut, the session ends, and A starts stitching it: A is SIGSTOPped right then (a frozen
 * host). B takes the channel over and, leading, runs the session's job to the end. A is woken:
 * its late writes are refused by the lease. The session is stitched and announced exactly
 * once across the pair: one `recording stitched`, one `recording.ready` event, one file that
 * decodes cleanly and lasts what was recorded.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { onAnotherHost } from '../helpers/chaos.js';
import { startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { decodeToEnd, probeSeconds } from '../helpers/recording.js';
import { startRedisServer } from '../helpers/redis-server.js';

const READY = /"msg":"ingest started"/;
const RECORDED = 8;

/** The same config with the channel's SRT listener on another port: the second packager host. */

/** Lines of a process's output about `session` with message `msg`. */
function logLines(output: string, session: string, msg: string): string[] {
  return output.split('\n').filter((line) => line.includes(`"session":"${session}"`) && line.includes(`"msg":"${msg}"`));
}

t.test('a standby pair stitches and announces a session exactly once, even when the leader freezes mid-stitch', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const dir = await mkdtemp(join(tmpdir(), 'onair-standby-recordings-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const base = await testConfig({ store: redis.url, segmentSeconds: 1, channel: { record: true, endAfterSeconds: 2 } });
  const configA = resolveConfig({ ...structuredClone(base), recordings: { dir } });
  const configB = await onAnotherHost(configA);
  const store = new RedisStore({ url: redis.url });
  await store.start();
  t.teardown(() => store.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir) });

  const a = await startOnairProcess(t, { role: 'ingest', config: configA, readyPattern: READY });
  const senderA = startSender(t, configA, 440);
  const session = (await waitFor('A recording a session', async () => (await catalog.list('fip')).find((record) => record.state === 'recording'), 30_000)).session;
  const b = await startOnairProcess(t, { role: 'ingest', config: configB, readyPattern: READY });
  startSender(t, configB, 660);
  await waitFor(`${RECORDED} segments recorded`, async () => ((await catalog.files.readIndex('fip', session))!.lines.length >= RECORDED ? true : undefined), 30_000);

  // A's feed is cut: A ends the session and starts its job. A freezes as soon as it says so.
  await senderA.close('SIGKILL');
  const started = await waitFor('A starting the stitch', async () => (logLines(a.output(), session, 'stitch started').length > 0 ? true : undefined), 30_000).catch(() => false);
  a.kill('SIGSTOP');
  t.ok(started, 'A started stitching the session');
  const ended = await catalog.require('fip', session);
  t.match(ended, { endReason: 'input-lost' }, 'the session ended when A’s input was gone');

  // B takes over and runs the job.
  const done = await waitFor('the session done', async () => {
    const record = await catalog.get('fip', session);
    return record?.state === 'done' || record?.state === 'failed' ? record : undefined;
  }, 30_000);
  t.equal(done.state, 'done', done.error ?? 'stitched and announced');

  // A stays frozen until B has taken the lease over (a stitch can finish before the freeze
  // lands, and a short freeze would leave A leading), then wakes up with its stale lease.
  await waitFor('B leading', async () => (/"msg":"leading the channel"/.test(b.output()) ? true : undefined), 15_000);
  a.kill('SIGCONT');
  await waitFor('A standing by', async () => (/no longer leading the channel; standing by/.test(a.output()) ? true : undefined), 15_000);
  await sleep(2000);

  const outputs = a.output() + b.output();
  const stitched = logLines(outputs, session, 'recording stitched');
  t.equal(stitched.length, 1, `one stitch made it (${logLines(b.output(), session, 'recording stitched').length ? 'B’s' : 'A’s'})`);
  t.equal(logLines(outputs, session, 'recording announced').length, 1, 'one announcement');
  const fenced = logLines(a.output(), session, 'another packager leads the channel now: its job, not ours');
  t.comment(fenced.length > 0 ? 'A’s late job was refused by the lease' : 'A had finished its stitch before it froze; B announced');
  const events = (await store.readEvents(100)).filter((event) => event.fields.session === session && event.fields.event === 'recording.ready');
  t.equal(events.length, 1, 'one recording.ready event on the stream');
  const record = await catalog.require('fip', session);
  t.match(record, { state: 'done', eventId: events[0]!.id });
  const file = catalog.files.filePath('fip', session);
  const decoded = await decodeToEnd(file);
  t.equal(decoded.code, 0);
  t.equal(decoded.errors, '', 'the file decodes cleanly');
  const probed = await probeSeconds(file);
  t.ok(Math.abs(probed - record.segmentsSeconds!) <= 0.1, `ffprobe: ${probed.toFixed(3)} s against ${record.segmentsSeconds!.toFixed(3)} s recorded`);
  await a.stop();
  await b.stop();
});
