/**
 * Recordings in S3-compatible storage, all real, in one process (`onair start`, embedded store)
 * with `recordings.storage.s3` on an s3rver on loopback (test/helpers/s3-server.ts): an operator
 * records a few seconds of an SRT tone through the control API, with a now playing set (so a cue
 * sheet too); the job stitches, uploads and announces. The webhook's presigned URLs fetch the
 * `.m4a` and `.cue` byte for byte as stitched; the origin answers the file with a 302 to the
 * bucket, and FFmpeg, following it, decodes the whole session without an error.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { nowPlayingFromSong, serializeNowPlaying, type NowPlaying } from '../../src/media/now-playing.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import { originUrl, startRole, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { decodeToEnd, flakyReceiver } from '../helpers/recording.js';
import { startS3Server } from '../helpers/s3-server.js';

const TOKEN = 'operator-token-0123456789';

t.test('a recorded session goes to the bucket; the webhook URLs and the origin redirect give its bytes', async (t) => {
  const s3 = await startS3Server(t, { prefix: 'radio/', presignSeconds: 900 });
  const hook = await flakyReceiver(t, 0);
  const dir = await mkdtemp(join(tmpdir(), 'onair-recordings-s3-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const base = await testConfig({ segmentSeconds: 1, channel: { record: false } });
  const config = resolveConfig({ ...structuredClone(base), recordings: { dir, webhook: { url: hook.url }, storage: { s3: s3.config } }, api: { tokens: [TOKEN] } });
  const running = await startRole(t, config, 'start');
  const catalog = new RecordingCatalog({ store: running.store, files: new RecordingFiles(dir) });
  await running.store.putNowPlaying('fip', serializeNowPlaying(nowPlayingFromSong('Nina Simone - Sinnerman', Date.now()) as NowPlaying));
  startSender(t, config);
  const origin = originUrl(config);
  await waitFor('the playlist lists segments', async () => ((await fetch(`${origin}/fip/fip_hifi.m3u8`)).ok ? true : undefined), 30_000);

  const api = (action: string): Promise<Response> =>
    fetch(`${running.apiUrl}/api/channels/fip/recording`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action }) });
  const { session } = (await (await api('start')).json()) as { session: string };
  await waitFor('4 segments recorded', async () => (((await catalog.files.readIndex('fip', session))?.lines.length ?? 0) >= 4 ? true : undefined), 30_000);
  t.equal((await api('stop')).status, 200);
  const done = await waitFor('the session uploaded and announced', async () => {
    const record = await catalog.get('fip', session);
    return record?.state === 'done' || record?.state === 'failed' ? record : undefined;
  }, 30_000);
  t.match(done, { state: 'done', chapters: 1, objects: { file: `radio/fip/${session}.m4a`, cue: `radio/fip/${session}.cue` } });

  const payload = JSON.parse(hook.calls[0]!.body) as { url: string; objectUrl: string; cueObjectUrl: string };
  t.match(payload.objectUrl, /X-Amz-Expires=900/);
  const stitched = await readFile(catalog.files.filePath('fip', session));
  t.ok(Buffer.from(await (await fetch(payload.objectUrl)).arrayBuffer()).equals(stitched), 'the webhook URL gives the stitched file');
  t.equal(await (await fetch(payload.cueObjectUrl)).text(), await readFile(catalog.files.cuePath('fip', session), 'utf8'), 'and its cue sheet');

  const redirect = await fetch(`${origin}/recordings/fip/${session}.m4a`, { redirect: 'manual' });
  t.equal(redirect.status, 302);
  t.match(redirect.headers.get('location'), new RegExp(`^${s3.endpoint}/${s3.bucket}/radio/fip/${session}\\.m4a\\?`));
  const expectedSeconds = done.segmentsSeconds!;
  const decoded = await decodeToEnd(`${origin}/recordings/fip/${session}.m4a`);
  t.equal(decoded.code, 0, 'FFmpeg follows the redirect');
  t.equal(decoded.errors, '', 'and decodes without one error');
  t.ok(Math.abs(decoded.decodedSeconds - expectedSeconds) <= 0.1, `${decoded.decodedSeconds.toFixed(3)} s decoded of ${expectedSeconds.toFixed(3)} s`);
});
