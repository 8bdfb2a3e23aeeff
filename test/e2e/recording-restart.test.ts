/**
 * Recording survives the process: `onair start` runs as a child (the built CLI) on a real
 * redis-server, with `record: true`, while FFmpeg sends a tone. It is SIGKILLed in the middle
 * of a session; the next one ends that session as interrupted and starts stitching it, and
 * is SIGKILLed as soon as the stitch starts; the third completes the job: every segment
 * recorded before the first kill is in the file, which ffprobe and a full decode accept,
 * and the webhook receiver, failing its first two calls, gets the announcement. Then the
 * CLI: `onair record list`, `stitch` (progress printed, the file rebuilt) and `rm`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles, sessionSegments } from '../../src/recording/recording-files.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { CLI_PATH, startOnairProcess } from '../helpers/onair-process.js';
import { decodeToEnd, flakyReceiver, probeSeconds } from '../helpers/recording.js';
import { startRedisServer } from '../helpers/redis-server.js';

const RECORDED_BEFORE_KILL = 8;
const READY = /"msg":"ingest started"/;

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('a kill mid-session and a kill mid-stitch lose nothing recorded; the job completes and is announced', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const hook = await flakyReceiver(t, 2);
  const dir = await mkdtemp(join(tmpdir(), 'onair-recordings-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const base = await testConfig({ store: `${redis.url}/0`, segmentSeconds: 1, channel: { record: true } });
  const config = resolveConfig({ ...structuredClone(base), recordings: { dir, webhook: { url: hook.url }, keepSegments: true } });
  const store = new RedisStore({ url: `${redis.url}/0` });
  await store.start();
  t.teardown(() => store.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir) });

  // 1. Killed in the middle of a session.
  let onair = await startOnairProcess(t, { role: 'start', config, readyPattern: READY });
  startSender(t, config);
  const session = (await waitFor('a session being recorded', async () => (await catalog.list('fip')).find((record) => record.state === 'recording'))).session;
  await waitFor(`${RECORDED_BEFORE_KILL} segments recorded`, async () => ((await catalog.files.readIndex('fip', session))!.lines.length >= RECORDED_BEFORE_KILL ? true : undefined));
  onair.kill('SIGKILL');
  await onair.exited;
  const recorded = (await catalog.files.readIndex('fip', session))!.lines;
  t.equal((await catalog.require('fip', session)).state, 'recording', 'the session was left open by the crash');

  // 2. The next process ends it as interrupted and starts stitching it: killed right then.
  onair = await startOnairProcess(t, { role: 'start', config, readyPattern: new RegExp(`"session":"${session}".*"msg":"stitch started"`) });
  onair.kill('SIGKILL');
  await onair.exited;
  const cut = await catalog.require('fip', session);
  t.match(cut, { state: 'ended', endReason: 'interrupted', segments: recorded.length }, 'killed mid-stitch: the job had not completed');

  // 3. The third process resumes the job and completes it. The stitch runs niced (10): on a
  // machine busy with other work it gets a small share of the CPU, hence the generous wait.
  onair = await startOnairProcess(t, { role: 'start', config, readyPattern: READY });
  const done = await waitFor('the job done', async () => {
    const record = await catalog.get('fip', session);
    return record?.state === 'done' || record?.state === 'failed' ? record : undefined;
  }, 90_000);
  t.match(done, { state: 'done', webhook: { delivered: true } });
  const kept = sessionSegments((await catalog.files.readIndex('fip', session))!);
  t.same(kept.map((segment) => segment.msn), recorded.map((segment) => segment.msn), 'every segment recorded before the kill is in the session');
  const expectedSeconds = kept.reduce((sum, segment) => sum + segment.durationSeconds, 0);
  const file = catalog.files.filePath('fip', session);
  const probed = await probeSeconds(file);
  t.ok(Math.abs(probed - expectedSeconds) <= 0.1, `ffprobe: ${probed.toFixed(3)} s against ${expectedSeconds.toFixed(3)} s recorded (error ${(probed - expectedSeconds).toFixed(3)} s)`);
  const decoded = await decodeToEnd(file);
  t.equal(decoded.code, 0, 'the file decodes');
  t.equal(decoded.errors, '', 'without one error');
  const forSession = hook.calls.filter((call) => (JSON.parse(call.body) as { session: string }).session === session);
  t.equal(forSession.length, 3, 'the receiver failed its first two calls, then got it');
  t.ok((await store.readEvents(20)).some((event) => event.fields.session === session && event.fields.event === 'recording.ready'), 'on the events stream');
  await onair.stop();

  // 4. The CLI, on the same store and directory.
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify({ ...config, log: { level: 'warn' } }));
  const listed = await runCli(['record', 'list', '--config', configPath]);
  t.equal(listed.code, 0, listed.stderr);
  t.match(listed.stdout, new RegExp(`^fip\\s+${session}\\s+done\\s+auto\\s+0:00:\\d\\d\\.\\d{3}\\s+\\d+\\.\\d kB\\s+${file}$`, 'm'), 'list shows the session');
  const stitched = await runCli(['record', 'stitch', session, '--config', configPath, '--channel', 'fip']);
  t.equal(stitched.code, 0, stitched.stderr);
  t.match(stitched.stdout, /stitching fip\/\S+: 100 %/, 'progress is printed');
  t.match(stitched.stdout, new RegExp(`fip/${session}: 0:00:\\d\\d\\.\\d{3}, .* webhook delivered`));
  t.equal((await runCli(['record', 'stitch', '20200101T000000Z', '--config', configPath])).code, 1, 'an unknown session');
  const removed = await runCli(['record', 'rm', session, '--config', configPath]);
  t.equal(removed.code, 0, removed.stderr);
  t.equal(await catalog.get('fip', session), undefined, 'the record is gone');
  t.notOk(await catalog.files.exists(file), 'the file is gone');
  t.equal(await catalog.files.readIndex('fip', session), undefined, 'the segments and index are gone');
});
