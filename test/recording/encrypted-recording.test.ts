/**
 * Recordings of encrypted channels
 * (docs/architecture.md, "Recordings and mounts of encrypted channels"): a real packager of an `aes-128` (TS) and of a `cbcs` (fMP4) channel on a
 * MemoryStore, fed real AAC of a 440 Hz tone, its segments stored as ciphertext; the session
 * recorder decrypts each with its key from the store, keeps a cbcs run's init clear, and the
 * stitch job (real FFmpeg) makes a file that FFmpeg decodes to the tone. A key missing from the
 * store is a gap of silence of its length, never ciphertext in the file.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { initSegmentName, segmentName } from '../../src/hls/published-names.js';
import { contentKeyId } from '../../src/hls/segment-encryption.js';
import type { WindowSegment } from '../../src/hls/sequence-state.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles, sessionSegments } from '../../src/recording/recording-files.js';
import { RecordingJobs } from '../../src/recording/recording-jobs.js';
import { SessionRecorder } from '../../src/recording/session-recorder.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { rawTestChannel } from '../helpers/channel-config.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { classify, SILENCE_DBFS } from '../helpers/tone.js';
import { decodeFileToPcm, toneAacFrames } from '../helpers/tone-frames.js';
import { waitUntil } from '../helpers/wait-until.js';

const SIGNING = { key: 'an-hmac-key-of-thirty-two-characters!' };
const TONE_HZ = 440;
const PCM_RATE = 16000;
const logger = pino({ level: 'silent' });

for (const scheme of ['aes-128', 'cbcs'] as const) {
  const container = scheme === 'cbcs' ? 'fmp4' : 'ts';
  const extension = scheme === 'cbcs' ? 'm4s' : 'ts';

  t.test(`real FFmpeg: a recording of an ${scheme} channel decodes to the source tone; a key missing from the store is a silent gap, never ciphertext`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), `onair-encrec-${scheme}-`));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const clock = new ManualClock();
    const store = new MemoryStore({ now: () => clock.now() });
    await store.start();
    t.teardown(() => store.close());
    const config = resolveConfig({
      hls: { segmentSeconds: 1 },
      signing: SIGNING,
      recordings: { dir },
      channels: [rawTestChannel({ access: 'signed', container, encryption: scheme, keyRotationSegments: 2, record: true })],
    });
    const channel = config.channels[0]!;
    const packager = new ChannelPackager({ channel, segmentSeconds: 1, windowSegments: 12, store, logger, clock, contentKeys: store });
    await packager.start();
    t.teardown(() => packager.close());

    const files = new RecordingFiles(dir);
    const catalog = new RecordingCatalog({ store, files, now: () => clock.now() });
    const ended: string[] = [];
    // The key of the period after the first segment's (two MSNs) is not found when the recorder asks (expired, a store that lost it).
    let missingKey: number | undefined;
    const recorderStore = {
      getSegment: (...args: Parameters<MemoryStore['getSegment']>) => store.getSegment(...args),
      getContentKey: (id: string, keyId: number) => (keyId === missingKey ? Promise.resolve(null) : store.getContentKey(id, keyId)),
    };
    const recorder = new SessionRecorder({ channel, catalog, store: recorderStore, logger, jobs: { enqueue: (_, session) => ended.push(session), resume: () => undefined }, now: () => clock.now() });
    await recorder.lead();
    recorder.sourceChanged('main', clock.now());
    const recorded: Promise<void>[] = [];
    let run = 0;
    packager.on('segment', (entry: WindowSegment) => {
      run = entry.run;
      missingKey ??= contentKeyId(entry.msn, 2) + 1;
      recorded.push(recorder.segmentPublished(entry));
    });

    const frames = await toneAacFrames(7, TONE_HZ);
    for (const frame of frames) {
      packager.pushFrameGroup([frame, frame]);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitUntil(t, 'six segments published', () => packager.stats.segmentsPublished >= 6, 10_000);
    await Promise.all(recorded);
    await recorder.close();
    t.equal(ended.length, 1, 'one session, ended and handed to the stitch job');
    const session = ended[0]!;
    t.equal(recorder.stats.undecryptable, 2, 'the two segments of the missing key');

    const lines = sessionSegments((await files.readIndex('fip', session))!);
    const first = lines[0]!.msn;
    const missing = (msn: number): boolean => contentKeyId(msn, 2) === missingKey;
    t.same(lines.map((line) => line.msn - first), [...lines.keys()], 'one session through the gap: the index keeps every segment');
    t.same(lines.filter((line) => missing(line.msn)).length, 2, 'two of them in the period of the missing key');
    const directory = files.sessionDir('fip', session);
    const onDisk = await readdir(directory);
    t.notOk(lines.some((line) => missing(line.msn) && onDisk.includes(`${line.msn}.${extension}`)), 'no file for the segments whose key was missing');
    for (const line of lines.filter((line) => !missing(line.msn))) {
      const kept = await readFile(join(directory, `${line.msn}.${extension}`));
      const stored = (await store.getSegment('fip', 'hifi', segmentName(line.msn, run, extension)))!;
      t.not(kept.toString('hex'), Buffer.from(stored).toString('hex'), `segment ${line.msn}: the recording keeps other bytes than the stored ciphertext`);
    }
    if (scheme === 'cbcs') {
      const init = await readFile(join(directory, files.initFile(run)));
      const storedInit = Buffer.from((await store.getSegment('fip', 'hifi', initSegmentName(run, contentKeyId(first, 2))))!);
      t.ok(storedInit.includes(Buffer.from('enca')), 'the stored init is protected');
      t.ok(init.includes(Buffer.from('mp4a')), 'the recorded init is clear: mp4a');
      for (const gone of ['enca', 'sinf', 'pssh']) t.notOk(init.includes(Buffer.from(gone)), `no ${gone} in it`);
    }

    const jobs = new RecordingJobs({ catalog, store, logger, publicUrl: 'https://radio.example/', audioOf: () => ({ sampleRate: 48000, channels: 2, bitrate: 128_000 }) });
    const done = await jobs.run('fip', session);
    t.equal(done.state, 'done', done.error ?? '');
    const gapFirst = lines.findIndex((line) => missing(line.msn));
    const gapStart = lines.slice(0, gapFirst).reduce((sum, line) => sum + line.durationSeconds, 0);
    const gapEnd = gapStart + lines.slice(gapFirst, gapFirst + 2).reduce((sum, line) => sum + line.durationSeconds, 0);
    t.ok(Math.abs(done.silenceSeconds! - (gapEnd - gapStart)) < 0.001, `${done.silenceSeconds} s of silence for the two segments without a key`);

    const pcm = await decodeFileToPcm(files.filePath('fip', session), PCM_RATE);
    const total = lines.reduce((sum, line) => sum + line.durationSeconds, 0);
    t.ok(Math.abs(pcm.length / PCM_RATE - total) < 0.1, `the file lasts the session (${(pcm.length / PCM_RATE).toFixed(3)} s of ${total.toFixed(3)} s)`);
    const range = (from: number, to: number): Float32Array => pcm.subarray(Math.round(from * PCM_RATE), Math.round(to * PCM_RATE));
    const before = classify(range(0.2, gapStart - 0.1), [TONE_HZ, 1000], PCM_RATE);
    const gap = classify(range(gapStart + 0.1, gapEnd - 0.1), [TONE_HZ, 1000], PCM_RATE);
    const after = classify(range(gapEnd + 0.1, total - 0.1), [TONE_HZ, 1000], PCM_RATE);
    t.equal(before.tone, TONE_HZ, `before the gap: the source tone (${before.rmsDb.toFixed(1)} dBFS)`);
    t.equal(after.tone, TONE_HZ, `after the gap: the source tone (${after.rmsDb.toFixed(1)} dBFS)`);
    t.ok(gap.tone === 'silence' && gap.rmsDb < SILENCE_DBFS, `the gap is silence (${gap.rmsDb.toFixed(1)} dBFS), not decoded ciphertext`);
  });
}
