/**
 * The recordings' stitch and probe (src/ffmpeg/recording-stitch.ts): its refusals, and the
 * chapters (the session's now playing) written into the `.m4a` with real FFmpeg, read back
 * with ffprobe: titles as written (ffmetadata escaping), starts on the exact frame, the
 * duration and the audio packets unchanged (no re-encoding). The whole stitch job runs in
 * test/e2e/recording.test.ts.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { escapeFfmetadata, probeMedia, renderFfmetadata, stitchSegments, stitchSession, type StitchChapter } from '../../src/ffmpeg/recording-stitch.js';
import { decodeToEnd, fmp4ToneSegments, run, toneSegments } from '../helpers/recording.js';

const FRAME = 1024 / 48000;
const AUDIO = { sampleRate: 48000, channels: 2, bitrate: 128_000 };

t.test('stitching refuses relative or no segment paths, and reports what FFmpeg could not read; probing garbage fails', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-stitch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const spec = { listPath: join(dir, 'segments.txt'), outputPath: join(dir, 'out.m4a') };
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [] }), RangeError);
  await t.rejects(stitchSegments({ ...spec, segmentPaths: ['0.ts'] }), RangeError);
  await writeFile(join(dir, '0.ts'), 'not a transport stream');
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [join(dir, '0.ts')] }), { code: 'ONAIR_FFMPEG_FAILED', message: /FFmpeg could not stitch/ });
  const aborted = new AbortController();
  aborted.abort();
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [join(dir, '0.ts')] }, { signal: aborted.signal }), /aborted/);
  await t.rejects(probeMedia(join(dir, '0.ts')));
});

t.test('ffmetadata escapes =, ;, #, backslashes and newlines, and counts in samples', async (t) => {
  t.equal(escapeFfmetadata('a=b;c#d\\e\nf "g"'), 'a\\=b\\;c\\#d\\\\e\\\nf "g"');
  t.equal(
    renderFfmetadata([{ startSeconds: 0, endSeconds: 100 * FRAME, title: 'One' }, { startSeconds: 100 * FRAME, endSeconds: 5, title: 'Two' }], 48000),
    ';FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/48000\nSTART=0\nEND=102400\ntitle=One\n[CHAPTER]\nTIMEBASE=1/48000\nSTART=102400\nEND=240000\ntitle=Two\n',
  );
});

interface ProbedChapter {
  start_time: string;
  end_time: string;
  tags?: { title?: string };
}

async function chaptersOf(path: string): Promise<ProbedChapter[]> {
  const probed = await run('ffprobe', ['-v', 'error', '-show_chapters', '-of', 'json', path]);
  return (JSON.parse(probed.stdout) as { chapters: ProbedChapter[] }).chapters;
}

/** MD5 of the file's audio packets as they are (no decode): equal means not re-encoded. */
async function packetsMd5(path: string): Promise<string> {
  return (await run('ffmpeg', ['-v', 'error', '-i', path, '-map', '0:a:0', '-c', 'copy', '-f', 'md5', '-'])).stdout.trim();
}

const CHAPTERS: StitchChapter[] = [
  { startSeconds: 0, endSeconds: 100 * FRAME, title: 'Intro' },
  // Titles as they come from automation systems, and what ffmetadata must escape.
  { startSeconds: 100 * FRAME, endSeconds: 211 * FRAME, title: 'Art=ist; #1 \\ - "Quoted"\nsecond line' },
  { startSeconds: 211 * FRAME, endSeconds: 6, title: 'Élodie – Fin' },
];

async function checkChapters(t: Test, path: string, endSeconds: number): Promise<void> {
  const chapters = await chaptersOf(path);
  t.same(chapters.map((chapter) => chapter.tags?.title), CHAPTERS.map((chapter) => chapter.title), 'the titles, exactly as written');
  for (const [index, chapter] of chapters.entries()) {
    const expected = CHAPTERS[index]!.startSeconds;
    // Read back in ms: within half of one, the frame (21.3 ms) is the exact one.
    t.ok(Math.abs(Number(chapter.start_time) - expected) <= 0.0005, `chapter ${index + 1} starts at ${chapter.start_time} s: frame ${Math.round(expected / FRAME)} (${expected.toFixed(6)} s)`);
  }
  t.ok(Math.abs(Number(chapters.at(-1)!.end_time) - endSeconds) <= 0.0005, 'the last one ends at the end');
}

t.test('a stitched session carries its chapters, on the exact frames, with its audio copied as it was', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-stitch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const segments = await toneSegments(dir, 6);
  const totalSeconds = segments.reduce((sum, segment) => sum + segment.durationSeconds, 0);
  const chapters = CHAPTERS.map((chapter, index) => (index === CHAPTERS.length - 1 ? { ...chapter, endSeconds: totalSeconds } : chapter));
  const segmentPaths = segments.map((segment) => segment.path);

  const withChapters = join(dir, 'chapters.m4a');
  await stitchSession({ pieces: [{ segmentPaths }], workDir: dir, outputPath: withChapters, audio: AUDIO, chapters });
  await checkChapters(t, withChapters, totalSeconds);
  const probed = await probeMedia(withChapters);
  t.equal(probed.audioCodec, 'aac');
  t.ok(Math.abs(probed.durationSeconds - totalSeconds) <= 0.1, `lasts ${probed.durationSeconds} s, the segments ${totalSeconds.toFixed(3)} s`);

  const plain = join(dir, 'plain.m4a');
  await stitchSession({ pieces: [{ segmentPaths }], workDir: dir, outputPath: plain, audio: AUDIO });
  t.same(await chaptersOf(plain), [], 'no chapters given, none written');
  t.equal(await packetsMd5(withChapters), await packetsMd5(plain), 'the same audio packets: copied, not re-encoded');

  // A lost segment file: the pieces are joined, and the chapters still land where they were.
  const gapped = join(dir, 'gapped.m4a');
  const pieces = [{ segmentPaths: segmentPaths.slice(0, 2) }, { silenceSeconds: segments[2]!.durationSeconds }, { segmentPaths: segmentPaths.slice(3) }];
  await stitchSession({ pieces, workDir: dir, outputPath: gapped, audio: AUDIO, chapters });
  await checkChapters(t, gapped, totalSeconds);
});

t.test('fMP4 segments of onair muxer stitch without re-encoding: init + segments per run, runs and gaps joined, exact duration, chapters on their frames', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-stitch-fmp4-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await fmp4ToneSegments(dir, 4, 'a-');
  // A second packager run: its own init segment, its own timeline.
  const second = await fmp4ToneSegments(dir, 3, 'b-', 77_777_777);
  const seconds = (segments: readonly { durationSeconds: number }[]): number => segments.reduce((sum, segment) => sum + segment.durationSeconds, 0);

  // One run: the file holds exactly the segments' frames, copied as they are.
  const single = join(dir, 'single.m4a');
  await stitchSession({ pieces: [{ segmentPaths: first.segments.map((segment) => segment.path), initPath: first.initPath }], workDir: dir, outputPath: single, audio: AUDIO });
  const probed = await probeMedia(single);
  t.equal(probed.audioCodec, 'aac');
  t.ok(Math.abs(probed.durationSeconds - seconds(first.segments)) <= 0.002, `lasts ${probed.durationSeconds} s, the segments ${seconds(first.segments).toFixed(6)} s`);
  const joined = join(dir, 'joined.mp4');
  await writeFile(joined, Buffer.concat(await Promise.all([first.initPath, ...first.segments.map((segment) => segment.path)].map((path) => readFile(path)))));
  t.equal(await packetsMd5(single), await packetsMd5(joined), 'the same audio packets as the segments: copied, not re-encoded');
  const decoded = await decodeToEnd(single);
  t.equal(decoded.code, 0, decoded.errors);
  t.equal(decoded.errors, '', 'decodes without an error');

  // Two runs and a lost segment between them, with chapters.
  const gapSeconds = second.segments[0]!.durationSeconds;
  const totalSeconds = seconds(first.segments) + seconds(second.segments);
  const chapters = CHAPTERS.map((chapter, index) => (index === CHAPTERS.length - 1 ? { ...chapter, endSeconds: totalSeconds } : chapter));
  const gapped = join(dir, 'gapped.m4a');
  const pieces = [
    { segmentPaths: first.segments.map((segment) => segment.path), initPath: first.initPath },
    { silenceSeconds: gapSeconds },
    { segmentPaths: second.segments.slice(1).map((segment) => segment.path), initPath: second.initPath },
  ];
  await stitchSession({ pieces, workDir: dir, outputPath: gapped, audio: AUDIO, chapters });
  const whole = await probeMedia(gapped);
  t.ok(Math.abs(whole.durationSeconds - totalSeconds) <= 0.1, `two runs and a gap last ${whole.durationSeconds} s, the segments ${totalSeconds.toFixed(6)} s`);
  await checkChapters(t, gapped, totalSeconds);
  t.equal((await decodeToEnd(gapped)).code, 0, 'decodes to the end');

  // A segment whose init segment is not given is no MPEG-TS: FFmpeg refuses it, nothing passes as a recording.
  await t.rejects(stitchSegments({ segmentPaths: [first.segments[0]!.path], listPath: join(dir, 'bad.txt'), outputPath: join(dir, 'bad.m4a') }), { code: 'ONAIR_FFMPEG_FAILED' });
});
