/**
 * Mirrored segments (src/recording/segment-mirror.ts, recordings.storage.s3.mirrorSegments)
 * against a real Ceph RGW (test/helpers/ceph-rgw.ts, one for the file): leader A records real
 * MPEG-TS segments of a tone (FFmpeg) and mirrors them; A's recordings dir is then deleted (the
 * other host's disk), and a job on "B" (its own dir, the same store and bucket) reads the index
 * and segments back from the bucket and stitches the session, checked with ffprobe against the
 * EXTINF as every stitch is. Covered: a session A ended on shutdown, one cut without its end
 * line (A lost the lead) with a segment missing in both places (silence), a kept session whose
 * VOD playlist and segments a third origin serves from the bucket, and a bucket that hangs while
 * recording: the recorder writes every segment, the mirror's queue stays at its cap, drops and
 * failures are counted.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { ChannelConfig } from '../../src/config/config-schema.js';
import { initSegmentName, segmentName } from '../../src/hls/published-names.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles, parseSessionIndex, sessionSegments } from '../../src/recording/recording-files.js';
import { RecordingJobs } from '../../src/recording/recording-jobs.js';
import { MIN_PART_SIZE } from '../../src/recording/s3-multipart-upload.js';
import { S3RecordingStorage, type S3StorageConfig } from '../../src/recording/s3-storage.js';
import { readMirroredIndex } from '../../src/recording/segment-mirror.js';
import { SessionRecorder } from '../../src/recording/session-recorder.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startCephRgw } from '../helpers/ceph-rgw.js';
import { decodeToEnd, fmp4ToneSegments, probeSeconds, toneSegments, type CutSegment } from '../helpers/recording.js';
import { freeTcpPort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait-until.js';

const T0 = Date.parse('2026-12-05T07:00:00.000Z');
const AUDIO = { sampleRate: 48000, channels: 2, bitrate: 128_000 };
const channelOf = (keys: Record<string, unknown> = {}): ChannelConfig =>
  resolveConfig({
    channels: [{ id: 'fip', renditions: [{ id: 'hifi', bitrate: '128k' }], inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }], ...keys }],
  }).channels[0]!;
const tsChannel = channelOf();
const logger = pino({ level: 'silent' });

const rgw = await startCephRgw(t, { prefix: 'radio/' });
t.comment(`Ceph RGW answered ${rgw.startMs} ms after the first command`);
const toneDir = await mkdtemp(join(tmpdir(), 'onair-mirror-tone-'));
t.teardown(() => rm(toneDir, { recursive: true, force: true }));
const CUTS: CutSegment[] = await toneSegments(toneDir, 8);
const FMP4 = await fmp4ToneSegments(toneDir, 5, 'f-');

/** One host: its own recordings dir, the shared store and bucket (mirroring on). */
async function host(t: Test, store: MemoryStore, options: { keepSegments?: boolean; s3?: S3StorageConfig; mirror?: { queueLimit?: number; retryDelaysMs?: number[] }; channel?: ChannelConfig } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'onair-mirror-host-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const storage = new S3RecordingStorage({ ...(options.s3 ?? rgw.config), presignSeconds: 300, mirrorSegments: true });
  t.teardown(() => storage.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir), objects: storage });
  const jobs = new RecordingJobs({ catalog, store, logger, publicUrl: 'https://radio.example', keepSegments: options.keepSegments ?? false, uploadPartSize: MIN_PART_SIZE, audioOf: () => AUDIO });
  t.teardown(() => jobs.close());
  // The host's own jobs never run here: a host that leaves stitches nothing, the next one is driven by hand.
  const recorder = new SessionRecorder({ channel: options.channel ?? tsChannel, catalog, store, logger, jobs: { enqueue: () => undefined, resume: () => undefined }, now: () => T0, ...(options.mirror ? { mirror: options.mirror } : {}) });
  t.teardown(() => recorder.close());
  return { dir, storage, catalog, jobs, recorder };
}

async function sharedStore(t: Test): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  return store;
}

/** Records `count` of the tone's segments (fMP4: `FMP4`'s, with its init) in a manual session on `recorder`; returns the session id. */
async function record(store: MemoryStore, recorder: SessionRecorder, count: number, fmp4 = false): Promise<string> {
  await recorder.lead();
  const { session } = await recorder.startManual();
  if (fmp4) await store.putSegment('fip', 'hifi', initSegmentName(1), await readFile(FMP4.initPath), 600);
  for (const [msn, cut] of (fmp4 ? FMP4.segments : CUTS).slice(0, count).entries()) {
    await store.putSegment('fip', 'hifi', segmentName(msn, 1, fmp4 ? 'm4s' : 'ts'), await readFile(cut.path), 600);
    await recorder.segmentPublished({ msn, run: 1, durationSeconds: cut.durationSeconds, programDateTime: T0 + cut.startSeconds * 1000, discontinuity: false, bytes: {} });
  }
  return session;
}

const extinf = (count: number): number => CUTS.slice(0, count).reduce((sum, cut) => sum + cut.durationSeconds, 0);

t.test('a session leader A ended on shutdown is stitched by B from the bucket alone, and its mirror goes once the file is checked', async (t) => {
  const store = await sharedStore(t);
  const a = await host(t, store);
  const session = await record(store, a.recorder, CUTS.length);
  await a.recorder.close();
  t.ok(a.recorder.mirror!.idle, 'the shutdown waited for the mirror');
  t.match(a.recorder.mirror!.stats, { failed: 0, dropped: 0 });
  // A's disk is on another host.
  await rm(a.dir, { recursive: true, force: true });

  const b = await host(t, store);
  const done = await b.jobs.run('fip', session);
  t.equal(done.state, 'done', done.error ?? '');
  t.equal(done.segments, CUTS.length);
  t.match(b.jobs.stats.mirror, { indexesPulled: 1, filesPulled: CUTS.length, failed: 0 });
  const file = b.catalog.files.filePath('fip', session);
  const seconds = await probeSeconds(file);
  t.ok(Math.abs(seconds - extinf(CUTS.length)) <= 0.1, `ffprobe: ${seconds} s, EXTINF ${extinf(CUTS.length)} s`);
  t.equal((await decodeToEnd(file)).code, 0, 'the file decodes');
  t.equal(done.silenceSeconds, undefined, 'no gap');
  t.same(await b.storage.listKeys(b.storage.sessionPrefix('fip', session)), [], 'the mirrored segments and index went with the segments');
  t.equal((await fetch(await b.storage.urlOf(done.objects!.file))).status, 200, 'the file is in the bucket');
});

t.test('a session cut without its end line (A lost the lead) is ended by B from the mirrored index; a segment in neither place is silence', async (t) => {
  const store = await sharedStore(t);
  const a = await host(t, store);
  const session = await record(store, a.recorder, CUTS.length);
  await waitUntil(t, "A's mirror has sent what it had", () => a.recorder.mirror!.idle, 20_000);
  await a.recorder.standBy();
  const prefix = a.storage.sessionPrefix('fip', session);
  await a.storage.delete(`${prefix}2.ts`);
  await rm(a.dir, { recursive: true, force: true });
  const mirrored = parseSessionIndex((await readMirroredIndex(a.storage, 'fip', session, { maxBytes: 1 << 20 }))!)!;
  t.notOk(mirrored.end, 'the bucket has no end line');
  const lines = mirrored.lines.length;
  t.ok(lines >= 3 && lines <= CUTS.length, `the mirrored index holds ${lines} of ${CUTS.length} segment lines (a crash loses at most the last chunk's)`);

  const b = await host(t, store);
  await b.recorder.lead(); // the takeover ends the session it finds recording (nothing of it on B's disk)
  t.match(await b.catalog.get('fip', session), { state: 'ended', endReason: 'interrupted' });
  const done = await b.jobs.run('fip', session);
  t.equal(done.state, 'done', done.error ?? '');
  t.equal(done.segments, lines, 'the session keeps the lines the bucket has');
  t.ok(Math.abs(done.segmentsSeconds! - extinf(lines)) < 0.001);
  t.ok(Math.abs(done.silenceSeconds! - CUTS[2]!.durationSeconds) < 0.001, `${done.silenceSeconds} s of silence for segment 2, gone from both places`);
  const seconds = await probeSeconds(b.catalog.files.filePath('fip', session));
  t.ok(Math.abs(seconds - extinf(lines)) <= 0.1, `ffprobe: ${seconds} s, EXTINF ${extinf(lines)} s`);
  const local = (await b.catalog.files.readIndex('fip', session))!;
  t.match(local.end, { reason: 'interrupted', lastMsn: lines - 1 }, "B's copy of the index is ended");
});

t.test('a bucket B cannot read leaves the session ended with ONAIR_RECORDING_BUCKET_UNREADABLE; the next run stitches it', async (t) => {
  const store = await sharedStore(t);
  const a = await host(t, store);
  const session = await record(store, a.recorder, 3);
  await a.recorder.close();
  await rm(a.dir, { recursive: true, force: true });
  // Nothing listens there: connections are refused.
  const down = await host(t, store, { s3: { ...rgw.config, endpoint: `http://127.0.0.1:${await freeTcpPort()}` } });
  const waiting = await down.jobs.run('fip', session);
  t.match(waiting, { state: 'ended', errorCode: 'ONAIR_RECORDING_BUCKET_UNREADABLE' });
  t.equal(down.jobs.stats.mirror.failed, 1);
  t.equal(down.jobs.stats.outcomes.failed, 0, 'not failed: it runs again');
  const b = await host(t, store);
  const done = await b.jobs.run('fip', session);
  t.match(done, { state: 'done', segments: 3, errorCode: undefined });
});

t.test('fMP4: the init segment is mirrored with the segments, and B stitches the session from the bucket', async (t) => {
  const store = await sharedStore(t);
  const channel = channelOf({ container: 'fmp4' });
  const a = await host(t, store, { channel });
  const count = FMP4.segments.length;
  const session = await record(store, a.recorder, count, true);
  await a.recorder.close();
  const keys = await a.storage.listKeys(a.storage.sessionPrefix('fip', session));
  t.ok(keys.includes(`${a.storage.sessionPrefix('fip', session)}init-1.mp4`), 'the init segment is in the bucket');
  t.equal(keys.filter((key) => key.endsWith('.m4s')).length, count);
  await rm(a.dir, { recursive: true, force: true });

  const b = await host(t, store, { channel });
  const done = await b.jobs.run('fip', session);
  t.equal(done.state, 'done', done.error ?? '');
  t.match(b.jobs.stats.mirror, { indexesPulled: 1, filesPulled: count + 1 });
  const expected = FMP4.segments.reduce((sum, cut) => sum + cut.durationSeconds, 0);
  const seconds = await probeSeconds(b.catalog.files.filePath('fip', session));
  t.ok(Math.abs(seconds - expected) <= 0.1, `ffprobe: ${seconds} s, EXTINF ${expected} s`);
});

t.test('index chunks join in offset order: a chunk covered by a longer one is skipped, a hole stops the text', async (t) => {
  const storage = new S3RecordingStorage({ ...rgw.config, mirrorSegments: true });
  t.teardown(() => storage.close());
  const prefix = storage.sessionPrefix('fip', '20261205T080000Z');
  const chunk = (offset: number): string => `${prefix}index-${String(offset).padStart(12, '0')}.jsonl`;
  const lines = ['{"type":"session"}\n', '{"type":"segment","msn":0}\n', '{"type":"segment","msn":1}\n', '{"type":"segment","msn":2}\n'];
  const put = (key: string, text: string): Promise<void> => storage.putBytes(key, Buffer.from(text), 'application/x-ndjson');
  // A first chunk sent again from 0 with more lines (its earlier answer was lost), a stale chunk after it, then the next one.
  const first = lines[0]! + lines[1]! + lines[2]!;
  await put(chunk(0), first);
  await put(chunk(lines[0]!.length), lines[1]!);
  await put(chunk(first.length), lines[3]!);
  t.equal(await readMirroredIndex(storage, 'fip', '20261205T080000Z', { maxBytes: 1 << 20 }), lines.join(''));
  // A hole: a chunk whose start nothing reaches is not joined.
  await put(chunk(first.length + lines[3]!.length + 10), '{"type":"segment","msn":9}\n');
  t.equal(await readMirroredIndex(storage, 'fip', '20261205T080000Z', { maxBytes: 1 << 20 }), lines.join(''));
  t.equal(await readMirroredIndex(storage, 'fip', '20261205T090000Z', { maxBytes: 1 << 20 }), undefined, 'no chunks: no index');
  await storage.deletePrefix(prefix);
});

t.test('kept segments: an origin without either disk serves the VOD playlist from the bucket and redirects each segment to its object', async (t) => {
  const store = await sharedStore(t);
  const a = await host(t, store);
  const session = await record(store, a.recorder, 4);
  await a.recorder.close();
  await rm(a.dir, { recursive: true, force: true });
  const b = await host(t, store, { keepSegments: true });
  const done = await b.jobs.run('fip', session);
  t.equal(done.state, 'done', done.error ?? '');
  t.notOk(done.segmentsRemoved);

  const c = await host(t, store);
  const app = await buildOrigin({ store, channels: [{ id: 'fip', renditions: ['hifi'] }], targetDurationSeconds: 1, storeTimeoutMs: 500, recordings: c.catalog });
  t.teardown(() => app.close());
  const playlist = await app.inject(`/recordings/fip/${session}.m3u8`);
  t.equal(playlist.statusCode, 200, playlist.body);
  const uris = playlist.body.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  t.same(uris, [0, 1, 2, 3].map((msn) => `${session}/${msn}.ts`));
  t.match(playlist.body, /#EXT-X-ENDLIST/);
  const segment = await app.inject(`/recordings/fip/${uris[1]}`);
  t.equal(segment.statusCode, 302);
  t.match(segment.headers['cache-control'], /max-age=150/);
  const object = await fetch(segment.headers.location as string);
  t.equal(object.status, 200);
  t.ok(Buffer.from(await object.arrayBuffer()).equals(await readFile(CUTS[1]!.path)), 'the redirect leads to the segment recorded');
  t.equal((await app.inject(`/recordings/fip/${session}/9.ts`)).statusCode, 302, 'a name the playlist does not list redirects too (the bucket answers 404)');

  await c.catalog.remove('fip', session);
  t.same(await c.storage.listKeys(c.storage.sessionPrefix('fip', session)), [], 'removing the session removes its mirror');
});

t.test('a bucket that hangs while recording: every segment is recorded, the queue stays at its cap, drops and failures are counted', async (t) => {
  // Takes connections and never answers (then refuses them once closed).
  const sockets = new Set<Socket>();
  const blackHole = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}`;
  const closeHole = (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => blackHole.close(() => resolve()));
  };
  t.teardown(() => (blackHole.listening ? closeHole() : undefined));
  const store = await sharedStore(t);
  const a = await host(t, store, { s3: { ...rgw.config, endpoint }, mirror: { queueLimit: 3, retryDelaysMs: [] } });
  const session = await record(store, a.recorder, CUTS.length);
  const mirror = a.recorder.mirror!;
  const index = (await a.catalog.files.readIndex('fip', session))!;
  t.equal(sessionSegments(index).length, CUTS.length, 'every segment was recorded');
  t.equal(a.recorder.stats.writeErrors, 0);
  t.equal(mirror.stats.sent, 0, 'nothing reached the bucket');
  // One file in flight, three queued (the cap), the rest dropped; index chunks are coalesced (one queued per session).
  t.equal(mirror.stats.dropped, CUTS.length - 4);
  t.ok(mirror.pending <= 4, `${mirror.pending} waiting`);

  await closeHole();
  await waitUntil(t, 'the mirror gives up on what it held', () => mirror.idle, 60_000);
  t.ok(mirror.stats.failed >= 4, `${mirror.stats.failed} PUTs failed and were counted`);
  t.equal(mirror.stats.sent, 0);
});
