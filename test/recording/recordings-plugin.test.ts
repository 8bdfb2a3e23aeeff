/**
 * Recordings on the origin (src/recording/recordings-plugin.ts, through buildOrigin and
 * app.inject()): the listing, the file with byte ranges, the VOD playlist and its segments,
 * and what is refused: unknown channels, sessions not finished yet, malformed and
 * traversing names (4xx JSON, never a file outside the recordings directory).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { channelPathPrefix, signPath } from '../../src/origin/signed-urls.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles } from '../../src/recording/recording-files.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const T0 = Date.parse('2026-11-21T23:15:00.000Z');
const FILE_BYTES = Buffer.from(Array.from({ length: 1000 }, (_, index) => index % 251));
const CUE_TEXT = 'FILE "x.m4a" WAVE\n  TRACK 01 AUDIO\n    TITLE "Café"\n    INDEX 01 00:00:00\n';

/** An origin with fip's recordings: one done (file and 2 segments), one still recording. */
async function originWithRecordings(t: Test, signingKey?: string): Promise<{ app: FastifyInstance; catalog: RecordingCatalog; done: string; recording: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-recordings-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir), now: () => T0 });
  const first = await catalog.open({ channel: 'fip', rendition: 'hifi', trigger: 'auto', startedAt: T0 });
  for (const msn of [7, 8]) {
    await catalog.files.addSegment('fip', first.session, { type: 'segment', msn, durationSeconds: 1.002667, programDateTime: T0 + msn * 1000, fallback: false }, Uint8Array.from([0x47, msn]));
  }
  const ended = await catalog.finish(first, 'input-lost');
  await writeFile(catalog.files.filePath('fip', first.session), FILE_BYTES);
  await writeFile(catalog.files.cuePath('fip', first.session), CUE_TEXT);
  await catalog.update(ended!, { state: 'done', durationSeconds: 2.005, sizeBytes: FILE_BYTES.length, chapters: 1 });
  const second = await catalog.open({ channel: 'fip', rendition: 'hifi', trigger: 'manual', startedAt: T0 + 60_000 });
  const app = await buildOrigin({ store, channels: [{ id: 'fip', renditions: ['hifi'] }], targetDurationSeconds: 1, storeTimeoutMs: 200, recordings: catalog,
    ...(signingKey ? { signing: { key: signingKey, signedChannels: () => new Set(['fip']) } } : {}),
  });
  t.teardown(() => app.close());
  await app.ready();
  return { app, catalog, done: first.session, recording: second.session };
}

t.test('the listing names every session with its state and relative URLs', async (t) => {
  const { app, done, recording } = await originWithRecordings(t);
  const response = await app.inject('/recordings/fip.json');
  t.equal(response.statusCode, 200);
  t.equal(response.headers['cache-control'], 'public, max-age=2');
  t.match(response.json(), {
    channel: 'fip',
    sessions: [
      { session: done, state: 'done', trigger: 'auto', durationSeconds: 2.005, sizeBytes: 1000, file: `fip/${done}.m4a`, playlist: `fip/${done}.m3u8`, endReason: 'input-lost', chapters: 1, cue: `fip/${done}.cue` },
      { session: recording, state: 'recording', trigger: 'manual', file: null, playlist: null, endedAt: null, chapters: null, cue: null },
    ],
  });
  t.equal((await app.inject('/recordings/jazz.json')).statusCode, 404, 'an unknown channel');
});

t.test('the file is served whole and in byte ranges, as audio/mp4', async (t) => {
  const { app, done } = await originWithRecordings(t);
  const whole = await app.inject(`/recordings/fip/${done}.m4a`);
  t.equal(whole.statusCode, 200);
  t.equal(whole.headers['content-type'], 'audio/mp4');
  t.equal(whole.headers['accept-ranges'], 'bytes');
  t.same(whole.rawPayload, FILE_BYTES);
  const part = await app.inject({ url: `/recordings/fip/${done}.m4a`, headers: { range: 'bytes=100-199' } });
  t.equal(part.statusCode, 206);
  t.equal(part.headers['content-range'], 'bytes 100-199/1000');
  t.same(part.rawPayload, FILE_BYTES.subarray(100, 200));
  t.equal((await app.inject({ url: `/recordings/fip/${done}.m4a`, headers: { range: 'bytes=5000-' } })).statusCode, 416);
  const head = await app.inject({ method: 'HEAD', url: `/recordings/fip/${done}.m4a` });
  t.equal(head.statusCode, 200);
  t.equal(head.headers['content-length'], '1000');
});

t.test('the cue sheet is served beside the file, as application/x-cue in UTF-8', async (t) => {
  const { app, done, recording } = await originWithRecordings(t);
  const cue = await app.inject(`/recordings/fip/${done}.cue`);
  t.equal(cue.statusCode, 200);
  t.equal(cue.headers['content-type'], 'application/x-cue; charset=utf-8');
  t.equal(cue.headers['cache-control'], 'public, max-age=3600');
  t.equal(cue.body, CUE_TEXT);
  t.equal((await app.inject({ method: 'HEAD', url: `/recordings/fip/${done}.cue` })).statusCode, 200);
  t.equal((await app.inject(`/recordings/fip/${recording}.cue`)).statusCode, 404, 'not before the session is stitched');

  const signed = await originWithRecordings(t, 'a-signing-key-0123456789');
  t.equal((await signed.app.inject(`/recordings/fip/${signed.done}.cue`)).statusCode, 403, "a signed channel's cue sheet needs its token, like the file");
  const token = signPath({ key: 'a-signing-key-0123456789', pathPrefix: channelPathPrefix('fip'), expiresAt: Math.floor(Date.now() / 1000) + 3600 });
  const opened = await signed.app.inject(`/recordings/fip/${signed.done}.cue?token=${token}`);
  t.equal(opened.statusCode, 200);
  t.equal(opened.body, CUE_TEXT);
});

t.test('a finished session has a VOD playlist whose segments are served', async (t) => {
  const { app, done } = await originWithRecordings(t);
  const playlist = await app.inject(`/recordings/fip/${done}.m3u8`);
  t.equal(playlist.statusCode, 200);
  t.equal(playlist.headers['content-type'], 'application/vnd.apple.mpegurl');
  t.match(playlist.body, /#EXT-X-PLAYLIST-TYPE:VOD\n/);
  t.match(playlist.body, new RegExp(`${done}/7\\.ts\\n[^]*${done}/8\\.ts\\n#EXT-X-ENDLIST\\n$`));
  const segment = await app.inject(`/recordings/fip/${done}/8.ts`);
  t.equal(segment.statusCode, 200);
  t.equal(segment.headers['content-type'], 'video/mp2t');
  t.match(segment.headers['cache-control'], /immutable/);
  t.same(segment.rawPayload, Buffer.from([0x47, 8]));
});

t.test('once its segments are removed after the stitch, a session has its file and no VOD playlist', async (t) => {
  const { app, catalog, done } = await originWithRecordings(t);
  await catalog.files.deleteSegments('fip', done, [7, 8]);
  await catalog.update((await catalog.get('fip', done))!, { segmentsRemoved: true });
  t.match((await app.inject('/recordings/fip.json')).json(), { sessions: [{ session: done, file: `fip/${done}.m4a`, playlist: null }] });
  t.equal((await app.inject(`/recordings/fip/${done}.m3u8`)).statusCode, 404);
  t.equal((await app.inject(`/recordings/fip/${done}.m4a`)).statusCode, 200);
});

t.test('what does not exist yet, or never will, is a JSON 4xx', async (t) => {
  const { app, done, recording } = await originWithRecordings(t);
  const refused = [
    `/recordings/fip/${recording}.m3u8`, // still recording: no playlist yet
    `/recordings/fip/${recording}.m4a`, // nor a file
    `/recordings/fip/${recording}.cue`, // nor a cue sheet
    `/recordings/fip/${done}/9.ts`, // not a segment of the session
    `/recordings/fip/20200101T000000Z.m4a`, // unknown session
    `/recordings/jazz/${done}.m4a`, // unknown channel
    `/recordings/fip/${done}.mp3`,
    `/recordings/fip/..%2F..%2Fetc%2Fpasswd`,
    `/recordings/fip/${done}/..%2F${done}.m4a`,
    `/recordings/fip/${done}/index.jsonl`,
    `/recordings/FIP/${done}.m4a`,
  ];
  for (const url of refused) {
    const response = await app.inject(url);
    t.ok(response.statusCode >= 400 && response.statusCode < 500, `${url}: ${response.statusCode}`);
    t.match(response.headers['content-type'], /^application\/json/, `${url}: a JSON body`);
  }
});
