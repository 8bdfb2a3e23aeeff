/**
 * Recordings and progressive mounts of an encrypted channel end to end
 * (docs/architecture.md, "Recordings and mounts of encrypted channels"): onair (in this process,
 * memory store) packages FFmpeg's 440 Hz tone on a signed fMP4 channel with `encryption: cbcs`, a
 * new key every 2 segments of 1 s, and `record: true`. The channel's mount needs its token and
 * plays the tone (FFmpeg decodes what a listener gets); the session recorded while the input is on
 * air ends 2 s after it is lost, is stitched, and FFmpeg decodes the file to the tone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { DEMO_RENDITIONS } from '../../src/demo.js';
import { AdtsReader } from '../../src/media/adts.js';
import { channelPathPrefix, signPath } from '../../src/origin/signed-urls.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles, sessionSegments } from '../../src/recording/recording-files.js';
import { loopbackSettings, originUrl, startRole, startSender, waitFor, waitForBody } from '../helpers/onair-harness.js';
import { freeUdpPort } from '../helpers/ports.js';
import { openStream } from '../helpers/progressive-listener.js';
import { classify, identifyTone } from '../helpers/tone.js';
import { decodeFileToPcm } from '../helpers/tone-frames.js';

const SIGNING_KEY = 'an-hmac-key-of-thirty-two-characters!';
const TONE_HZ = 440;

const dir = await mkdtemp(join(tmpdir(), 'onair-encrypted-recordings-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const config = resolveConfig({
  store: 'memory',
  ...(await loopbackSettings(1)),
  signing: { key: SIGNING_KEY },
  recordings: { dir },
  channels: [
    {
      id: 'fip',
      renditions: DEMO_RENDITIONS,
      inputs: [{ id: 'main', url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { latency: 120, passphrase: 'onair-test-passphrase' } }],
      access: 'signed',
      container: 'fmp4',
      encryption: 'cbcs',
      keyRotationSegments: 2,
      record: true,
      endAfterSeconds: 2,
    },
  ],
});
const base = originUrl(config);
const token = signPath({ key: SIGNING_KEY, pathPrefix: channelPathPrefix('fip'), expiresAt: Math.floor(Date.now() / 1000) + 3600 });

const running = await startRole(t, config, 'start');
const sender = startSender(t, config, TONE_HZ);
await waitForBody('three encrypted segments', `${base}/fip/fip_hifi.m3u8?token=${token}`, '#EXTINF', 3);

t.test("the encrypted channel's mount needs its token and plays the tone", async (t) => {
  const refused = await fetch(`${base}/fip-hifi.aac`);
  t.equal(refused.status, 403, 'without the token: refused');
  await refused.body?.cancel();
  const listener = await openStream(config.origin.port, `/fip-hifi.aac?token=${token}`);
  t.teardown(() => listener.close());
  t.equal(listener.head.status, 200);
  const frames = await waitFor('4 s of frames', async () => {
    const parsed = new AdtsReader().push(listener.body());
    return parsed.length >= 4 * 47 ? parsed : undefined;
  }, 20_000);
  listener.close();
  const reading = await identifyTone(Buffer.concat(frames.map((frame) => frame.data)), [TONE_HZ, 1000]);
  t.equal(reading.tone, TONE_HZ, `FFmpeg decodes the mount's ${frames.length} frames to the tone (${reading.rmsDb.toFixed(1)} dBFS)`);
});

t.test('the session recorded while the input was on air is stitched clear: FFmpeg decodes the tone', async (t) => {
  const catalog = new RecordingCatalog({ store: running.store, files: new RecordingFiles(dir) });
  const session = await waitFor('a session being recorded', async () => (await catalog.list('fip')).find((record) => record.state === 'recording'), 20_000);
  const recordedSeconds = async (): Promise<number> => {
    const index = await catalog.files.readIndex('fip', session.session);
    return index ? sessionSegments(index).reduce((sum, line) => sum + line.durationSeconds, 0) : 0;
  };
  await waitFor('6 s recorded (three key periods)', async () => ((await recordedSeconds()) >= 6 ? true : undefined), 20_000);
  await sender.close('SIGKILL');
  const done = await waitFor('the session stitched', async () => {
    const record = await catalog.get('fip', session.session);
    return record?.state === 'done' || record?.state === 'failed' ? record : undefined;
  }, 30_000);
  t.match(done, { state: 'done', endReason: 'input-lost' }, done.error ?? '');
  t.notOk(done.silenceSeconds, 'every segment decrypted: no gap');
  const pcm = await decodeFileToPcm(catalog.files.filePath('fip', session.session));
  t.ok(pcm.length / 16000 >= 6, `${(pcm.length / 16000).toFixed(2)} s in the file`);
  const reading = classify(pcm.subarray(0.2 * 16000, 5.8 * 16000), [TONE_HZ, 1000], 16000);
  t.equal(reading.tone, TONE_HZ, `the file decodes to the tone (${reading.rmsDb.toFixed(1)} dBFS)`);
});
