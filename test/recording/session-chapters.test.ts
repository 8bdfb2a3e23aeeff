/**
 * A session's chapters and its cue sheet (src/recording/session-chapters.ts): from index lines
 * to ordered, clipped chapters, and a cue sheet that a real reader (cuetools' cueprint and
 * cuebreakpoints, installed by scripts/setup.sh --test) reads back as written, whatever the
 * titles hold: quotes, backslashes, `=`, `;`, `#`, newlines.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RecordedChapter } from '../../src/recording/recording-files.js';
import { chapterTitle, cueString, cueTime, MAX_CUE_TRACKS, renderCueSheet, sessionChapters } from '../../src/recording/session-chapters.js';
import { run } from '../helpers/recording.js';

const chapter = (offsetSeconds: number, title: string, artist?: string): RecordedChapter => ({ type: 'chapter', offsetSeconds, title, ...(artist ? { artist } : {}) });

t.test('chapters come in offset order, each ending where the next starts, none past the session', async (t) => {
  const recorded = [chapter(0, 'Intro'), chapter(61.44, 'So What', 'Miles Davis'), chapter(30, 'Jingle'), chapter(61.44, 'Blue in Green', 'Miles Davis'), chapter(90, 'Dropped tail')];
  t.same(sessionChapters(recorded, 90), [
    { title: 'Intro', startSeconds: 0, endSeconds: 30 },
    { title: 'Jingle', startSeconds: 30, endSeconds: 61.44 },
    { title: 'Blue in Green', artist: 'Miles Davis', startSeconds: 61.44, endSeconds: 90 },
  ]);
  t.same(sessionChapters([chapter(0, 'A'), chapter(10, 'A'), chapter(20, 'B')], 30).map((kept) => [kept.title, kept.startSeconds, kept.endSeconds]), [['A', 0, 20], ['B', 20, 30]], 'a repeat is no chapter');
  t.same(sessionChapters([chapter(5, 'Late start')], 8), [{ title: 'Late start', startSeconds: 5, endSeconds: 8 }], 'nothing known at the start: the first chapter starts later');
  t.same(sessionChapters([], 8), []);
  t.equal(chapterTitle({ title: 'So What', artist: 'Miles Davis' }), 'Miles Davis - So What');
  t.equal(chapterTitle({ title: 'News' }), 'News');
});

t.test('cue times are mm:ss:ff at 75 frames a second, minutes past 99', async (t) => {
  t.equal(cueTime(0), '00:00:00');
  t.equal(cueTime(61.44), '01:01:33');
  t.equal(cueTime(2 * 3600 + 0.5), '120:00:38');
  t.equal(cueTime(59.999), '01:00:00', 'rounded to the nearest frame');
});

t.test('cue strings carry no quote, control character or line break, and end on no backslash', async (t) => {
  t.equal(cueString('12" Mix'), `"12' Mix"`);
  t.equal(cueString('two\nlines\r\tend'), '"two lines end"');
  t.equal(cueString('a = b; #1 \\ back\\'), '"a = b; #1 \\ back"');
});

t.test('the cue sheet reads back with cuetools exactly as written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-cue-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const chapters = sessionChapters(
    [chapter(0, 'Le Jazz = "cool"; #1', 'Ella \\ Louis'), chapter(184.32, 'Sans artiste'), chapter(3725.5, 'Tard', 'Émilie Simon')],
    4000,
  );
  const text = renderCueSheet(chapters, { fileName: '20261121T231500Z.m4a', channel: 'fip', session: '20261121T231500Z' });
  t.equal(
    text,
    [
      'REM COMMENT "onair"',
      'PERFORMER "fip"',
      'TITLE "fip 20261121T231500Z"',
      'FILE "20261121T231500Z.m4a" WAVE',
      '  TRACK 01 AUDIO',
      `    TITLE "Le Jazz = 'cool'; #1"`,
      '    PERFORMER "Ella \\ Louis"',
      '    INDEX 01 00:00:00',
      '  TRACK 02 AUDIO',
      '    TITLE "Sans artiste"',
      '    INDEX 01 03:04:24',
      '  TRACK 03 AUDIO',
      '    TITLE "Tard"',
      '    PERFORMER "Émilie Simon"',
      '    INDEX 01 62:05:38',
      '',
    ].join('\n'),
  );
  const path = join(dir, 'session.cue');
  await writeFile(path, text);
  const titles = await run('cueprint', ['-d', '%T\\n', '-t', '%n|%p|%t\\n', path]);
  t.equal(titles.code, 0, titles.stderr);
  t.equal(titles.stdout, `fip 20261121T231500Z\n1|Ella \\ Louis|Le Jazz = 'cool'; #1\n2||Sans artiste\n3|Émilie Simon|Tard\n`);
  const breakpoints = await run('cuebreakpoints', [path]);
  t.equal(breakpoints.stdout, '3:04.24\n62:05.38\n', 'the tracks start where the chapters do');
});

t.test('a cue sheet holds 99 tracks; the others are in the .m4a, and it says so', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-cue-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const many = sessionChapters(Array.from({ length: 130 }, (_, index) => chapter(index * 180, `Track ${index + 1}`)), 130 * 180);
  const text = renderCueSheet(many, { fileName: 'x.m4a', channel: 'fip', session: 'x' });
  t.match(text, /REM COMMENT "31 more chapters in the .m4a"/);
  const path = join(dir, 'many.cue');
  await writeFile(path, text);
  const read = await run('cueprint', ['-d', '%N\\n', '-t', '', path]);
  t.equal(read.code, 0);
  t.equal(read.stderr, '', 'no "too many tracks"');
  t.equal(read.stdout.trim(), String(MAX_CUE_TRACKS));
});
