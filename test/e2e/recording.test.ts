/**
 * Recording, all real, in one process on the embedded store: FFmpeg sends a tone over SRT,
 * the channel (`record: true`, `endAfterSeconds: 3`, 1 s segments) records a session from
 * the first audio; after 30 s the sender is killed, the safety source airs, and 3 s later
 * the session ends. The stitch job makes the `.m4a` with FFmpeg, checks it, and announces
 * it on the events stream and to a webhook receiver that fails its first two calls. Then:
 * ffprobe's duration against the segments' total, a clean decode of the file, byte ranges
 * from the origin, and FFmpeg playing the session's VOD playlist from start to end (the
 * segments are kept here: `keepSegments`). The now playing set before the session and changed
 * during it (in the store, as the control API sets it) is in the published `.m4a` as chapters
 * (ffprobe), the change where the index put it, and in the cue sheet the origin serves beside it.
 * Last, an operator records a short session through the control API.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { nowPlayingFromSong, serializeNowPlaying, type NowPlaying } from '../../src/media/now-playing.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles, sessionSegments } from '../../src/recording/recording-files.js';
import type { RecordingRecord } from '../../src/recording/recording-record.js';
import { originUrl, startRole, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { decodeToEnd, flakyReceiver, probeSeconds, run } from '../helpers/recording.js';

const RECORD_SECONDS = 30;
const TOKEN = 'operator-token-0123456789';

async function recordingConfig(t: Test, webhookUrl: string): Promise<OnairConfig> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-recordings-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const base = await testConfig({ segmentSeconds: 1, channel: { record: true, endAfterSeconds: 3 } });
  return resolveConfig({ ...structuredClone(base), recordings: { dir, webhook: { url: webhookUrl }, keepSegments: true }, api: { tokens: [TOKEN] } });
}

// The two runs stay one after the other: run at once in this process (two onair instances, both
// with a channel `fip`), the first one's recording stalled after its title change in CI, where
// the load was low; the cause is not found yet.

t.test('30 s recorded, the input lost, the session stitched, checked, announced and playable', async (t) => {
  const hook = await flakyReceiver(t, 2);
  const config = await recordingConfig(t, hook.url);
  const running = await startRole(t, config, 'start');
  const catalog = new RecordingCatalog({ store: running.store, files: new RecordingFiles(config.recordings.dir) });
  const setSong = (song: string): Promise<void> => running.store.putNowPlaying('fip', serializeNowPlaying(nowPlayingFromSong(song, Date.now()) as NowPlaying));
  await setSong('Oxmo Puccino - Le Café');
  const sender = startSender(t, config);
  const base = originUrl(config);

  const session = await waitFor('a session being recorded', async () => (await catalog.list('fip')).find((record) => record.state === 'recording'));
  const recordedSeconds = async (): Promise<number> => ((await catalog.files.readIndex('fip', session.session))?.lines ?? []).reduce((sum, line) => sum + line.durationSeconds, 0);
  await waitFor('10 s recorded', async () => ((await recordedSeconds()) >= 10 ? true : undefined), 30_000);
  const beforeChange = await recordedSeconds();
  await setSong('Miles Davis - So What = "1959"; #1');
  const afterChange = await waitFor('two more segments recorded', async () => {
    const seconds = await recordedSeconds();
    return seconds >= beforeChange + 2 ? seconds : undefined;
  });
  await waitFor(
    `${RECORD_SECONDS} s recorded`,
    async () => {
      const index = await catalog.files.readIndex('fip', session.session);
      const audio = index?.lines.filter((line) => !line.fallback).reduce((sum, line) => sum + line.durationSeconds, 0) ?? 0;
      return audio >= RECORD_SECONDS ? true : undefined;
    },
    60_000,
  );
  await sender.close('SIGKILL');
  const lostAt = Date.now();
  const done = await waitFor('the session stitched and announced', async () => {
    const record = await catalog.get('fip', session.session);
    return record?.state === 'done' || record?.state === 'failed' ? record : undefined;
  }, 30_000);
  t.comment(`input lost → announced in ${((Date.now() - lostAt) / 1000).toFixed(1)} s`);

  t.match(done, { state: 'done', trigger: 'auto', endReason: 'input-lost', webhook: { delivered: true, attempts: 3 } });
  const index = (await catalog.files.readIndex('fip', session.session))!;
  const kept = sessionSegments(index);
  const expectedSeconds = kept.reduce((sum, segment) => sum + segment.durationSeconds, 0);
  t.ok(expectedSeconds >= RECORD_SECONDS, `${expectedSeconds.toFixed(3)} s of segments kept`);
  t.notOk(kept.at(-1)!.fallback, 'the silence after the input was lost is not kept');
  const files = (await readdir(catalog.files.sessionDir('fip', session.session))).filter((name) => name.endsWith('.ts'));
  t.equal(files.length, kept.length, 'only the kept segments stay on disk');

  const file = catalog.files.filePath('fip', session.session);
  const probed = await probeSeconds(file);
  t.ok(Math.abs(probed - expectedSeconds) <= 0.1, `ffprobe: ${probed.toFixed(3)} s against ${expectedSeconds.toFixed(3)} s of segments (error ${(probed - expectedSeconds).toFixed(3)} s)`);
  const decoded = await decodeToEnd(file);
  t.equal(decoded.code, 0, 'the file decodes');
  t.equal(decoded.errors, '', 'without one error');

  // The now playing, as chapters of the file and tracks of the cue sheet.
  const [opening, change] = index.chapters;
  t.equal(index.chapters.length, 2, 'two chapter lines in the index');
  t.match(opening, { offsetSeconds: 0, title: 'Le Café', artist: 'Oxmo Puccino' }, 'what played when the session started opens it');
  t.match(change, { title: 'So What = "1959"; #1', artist: 'Miles Davis' });
  t.ok(change!.offsetSeconds >= beforeChange && change!.offsetSeconds <= afterChange, `the change at ${change!.offsetSeconds} s of audio, set when ${beforeChange.toFixed(3)} s were recorded`);
  const probedChapters = JSON.parse((await run('ffprobe', ['-v', 'error', '-show_chapters', '-of', 'json', `${base}/recordings/fip/${session.session}.m4a`])).stdout) as {
    chapters: { start_time: string; end_time: string; tags: { title: string } }[];
  };
  t.same(probedChapters.chapters.map((chapter) => chapter.tags.title), ['Oxmo Puccino - Le Café', 'Miles Davis - So What = "1959"; #1'], 'the published .m4a has the chapters');
  t.ok(Math.abs(Number(probedChapters.chapters[1]!.start_time) - change!.offsetSeconds) <= 0.0005, `the change's chapter starts at ${probedChapters.chapters[1]!.start_time} s, on its frame`);
  t.ok(Math.abs(Number(probedChapters.chapters[1]!.end_time) - expectedSeconds) <= 0.0005, 'and lasts to the end');
  t.equal(done.chapters, 2);
  const cue = await fetch(`${base}/recordings/fip/${session.session}.cue`);
  t.equal(cue.status, 200);
  t.equal(cue.headers.get('content-type'), 'application/x-cue; charset=utf-8');
  t.match(await cue.text(), /TRACK 02 AUDIO\n {4}TITLE "So What = '1959'; #1"\n {4}PERFORMER "Miles Davis"\n {4}INDEX 01 \d{2}:\d{2}:\d{2}\n$/);

  const [event] = await running.store.readEvents(10);
  t.match(event?.fields, { event: 'recording.ready', channel: 'fip', session: session.session, url: `${base}/recordings/fip/${session.session}.m4a`, chapters: '2', cueUrl: `${base}/recordings/fip/${session.session}.cue` });
  t.equal(hook.calls.length, 3, 'the receiver failed twice, then took it');
  t.ok(hook.calls[2]!.at - hook.calls[0]!.at >= 3000, 'after backing off 1 s, then 2 s');
  t.match(JSON.parse(hook.calls[2]!.body), { url: `${base}/recordings/fip/${session.session}.m4a`, durationSeconds: done.durationSeconds, sizeBytes: done.sizeBytes });

  const range = await fetch(`${base}/recordings/fip/${session.session}.m4a`, { headers: { range: 'bytes=0-1023' } });
  t.equal(range.status, 206, 'the origin serves byte ranges of the file');
  t.equal((await range.arrayBuffer()).byteLength, 1024);
  const playlistUrl = `${base}/recordings/fip/${session.session}.m3u8`;
  const playlist = await (await fetch(playlistUrl)).text();
  t.match(playlist, /#EXT-X-PLAYLIST-TYPE:VOD\n/);
  t.match(playlist, /#EXT-X-ENDLIST\n$/);
  const played = await decodeToEnd(playlistUrl);
  t.equal(played.code, 0, 'FFmpeg plays the VOD playlist');
  t.equal(played.errors, '', 'without one error');
  t.ok(Math.abs(played.decodedSeconds - expectedSeconds) <= 0.1, `from start to end: ${played.decodedSeconds.toFixed(3)} s decoded of ${expectedSeconds.toFixed(3)} s`);

  // The input is gone, the safety source airs: an operator records a session of it anyway.
  const api = (action: string): Promise<Response> =>
    fetch(`${running.apiUrl}/api/channels/fip/recording`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action }) });
  const started = (await (await api('start')).json()) as { session: string; state: string; trigger: string };
  t.match(started, { state: 'recording', trigger: 'manual' });
  await waitFor('3 s recorded by hand', async () => {
    const lines = (await catalog.files.readIndex('fip', started.session))?.lines ?? [];
    return lines.length >= 3 ? true : undefined;
  });
  const stopped = await api('stop');
  t.equal(stopped.status, 200);
  t.match(await stopped.json(), { session: started.session, state: 'ended' });
  t.equal((await api('stop')).status, 409, 'nothing left to stop');
  t.equal((await api('pause')).status, 400, 'an unknown action');
  const manual = await waitFor('the manual session done', async () => {
    const record = await catalog.get('fip', started.session);
    return record?.state === 'done' ? record : undefined;
  }, 20_000);
  t.match(manual, { trigger: 'manual', endReason: 'stopped' } satisfies Partial<RecordingRecord>);
  t.ok(Math.abs(manual.durationSeconds! - manual.segmentsSeconds!) <= 0.1, 'its file checks out too');
});

t.test('a container: fmp4 channel records: .m4s and init segments kept, the .m4a decodes with the segments duration and its chapter, the VOD and DVR playlists carry EXT-X-MAP', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-recordings-fmp4-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const base = await testConfig({ segmentSeconds: 1, channel: { container: 'fmp4', record: false, dvrSeconds: 60 } });
  const config = resolveConfig({ ...structuredClone(base), recordings: { dir, keepSegments: true }, api: { tokens: [TOKEN] } });
  const running = await startRole(t, config, 'start');
  const catalog = new RecordingCatalog({ store: running.store, files: new RecordingFiles(dir) });
  await running.store.putNowPlaying('fip', serializeNowPlaying(nowPlayingFromSong('Nina Simone - Sinnerman', Date.now()) as NowPlaying));
  startSender(t, config);
  const origin = originUrl(config);
  const dvr = await waitFor('the DVR playlist lists segments', async () => {
    const response = await fetch(`${origin}/fip/fip_hifi_dvr.m3u8`);
    const text = response.ok ? await response.text() : '';
    return /\.m4s\n/.test(text) ? text : undefined;
  }, 30_000);
  t.match(dvr, /#EXT-X-MAP:URI="hifi\/init-\d+\.mp4"\n/, 'the DVR playlist carries EXT-X-MAP');

  const api = (action: string): Promise<Response> =>
    fetch(`${running.apiUrl}/api/channels/fip/recording`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ action }) });
  const started = (await (await api('start')).json()) as { session: string };
  await waitFor('6 segments recorded', async () => (((await catalog.files.readIndex('fip', started.session))?.lines.length ?? 0) >= 6 ? true : undefined), 30_000);
  t.equal((await api('stop')).status, 200);
  const done = await waitFor('the fMP4 session done', async () => {
    const record = await catalog.get('fip', started.session);
    return record?.state === 'done' || record?.state === 'failed' ? record : undefined;
  }, 30_000);
  t.match(done, { state: 'done', trigger: 'manual', endReason: 'stopped', chapters: 1 });

  const index = (await catalog.files.readIndex('fip', started.session))!;
  const kept = sessionSegments(index);
  t.ok(kept.every((segment) => Number.isSafeInteger(segment.initRun)), 'each segment line names its init segment');
  const names = await readdir(catalog.files.sessionDir('fip', started.session));
  t.equal(names.filter((name) => name.endsWith('.m4s')).length, kept.length, 'the .m4s segments kept');
  t.ok(names.includes(`init-${kept[0]!.initRun}.mp4`), 'with their init segment');
  const expectedSeconds = kept.reduce((sum, segment) => sum + segment.durationSeconds, 0);
  const file = catalog.files.filePath('fip', started.session);
  const decoded = await decodeToEnd(file);
  t.equal(decoded.code, 0, 'the .m4a decodes');
  t.equal(decoded.errors, '', 'without one error');
  t.ok(Math.abs(decoded.decodedSeconds - expectedSeconds) <= 0.05, `${decoded.decodedSeconds.toFixed(3)} s decoded of ${expectedSeconds.toFixed(3)} s of segments`);
  t.ok(Math.abs((await probeSeconds(file)) - expectedSeconds) <= 0.1, 'ffprobe agrees');
  const chapters = JSON.parse((await run('ffprobe', ['-v', 'error', '-show_chapters', '-of', 'json', `${origin}/recordings/fip/${started.session}.m4a`])).stdout) as { chapters: { tags: { title: string } }[] };
  t.same(chapters.chapters.map((chapter) => chapter.tags.title), ['Nina Simone - Sinnerman'], 'the now playing is its chapter');

  const playlistUrl = `${origin}/recordings/fip/${started.session}.m3u8`;
  const playlist = await (await fetch(playlistUrl)).text();
  t.match(playlist, new RegExp(`#EXT-X-MAP:URI="${started.session}/init-${kept[0]!.initRun}\\.mp4"\\n`), 'the VOD playlist carries EXT-X-MAP');
  const init = await fetch(`${origin}/recordings/fip/${started.session}/init-${kept[0]!.initRun}.mp4`);
  t.equal(init.status, 200);
  t.equal(init.headers.get('content-type'), 'audio/mp4');
  const played = await decodeToEnd(playlistUrl);
  t.equal(played.code, 0, `FFmpeg plays the VOD playlist: ${played.errors}`);
  t.ok(Math.abs(played.decodedSeconds - expectedSeconds) <= 0.1, `from start to end: ${played.decodedSeconds.toFixed(3)} s decoded of ${expectedSeconds.toFixed(3)} s`);
});
