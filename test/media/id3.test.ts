import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildId3Tag, nowPlayingFrames, nowPlayingId3Tag, syncsafe } from '../../src/media/id3.js';
import type { NowPlaying } from '../../src/media/now-playing.js';
import { readId3Tag, readNowPlayingTag, readSyncsafe } from '../helpers/id3-reader.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

t.test('a one-frame tag is byte for byte the ID3v2.4 layout: header, syncsafe size, frame, UTF-8 encoding byte', async (t) => {
  t.equal(
    hex(buildId3Tag([{ id: 'TIT2', text: 'Hi' }])),
    '494433' + '0400' + '00' + '0000000d' // 'ID3', v2.4.0, no flags, 13 bytes of frames
      + '54495432' + '00000003' + '0000' // 'TIT2', a 3-byte body, no flags
      + '03' + '4869', // UTF-8, "Hi", no terminator
  );
  t.equal(
    hex(buildId3Tag([{ id: 'TXXX', description: 'artworkUrl', text: 'https://a' }])),
    '494433040000' + '0000001f' + '54585858' + '00000015' + '0000'
      + '03' + hex(Buffer.from('artworkUrl')) + '00' + hex(Buffer.from('https://a')),
    'TXXX: description, 0, value',
  );
});

t.test('sizes of 128 bytes and more are syncsafe: 7 bits per byte, top bits clear', async (t) => {
  t.equal(syncsafe(0x7f), 0x7f);
  t.equal(syncsafe(0x80), 0x0100);
  t.equal(syncsafe(201), 0x0149);
  t.equal(syncsafe(0x0fff_ffff), 0x7f7f_7f7f);
  t.throws(() => syncsafe(0x1000_0000), RangeError);
  const tag = buildId3Tag([{ id: 'TIT2', text: 'é'.repeat(200) }]); // 400 bytes of UTF-8 + the encoding byte
  t.equal(hex(tag.subarray(6, 10)), '0000031b', 'tag size 411 = 3·128 + 27');
  t.equal(hex(tag.subarray(14, 18)), '00000311', 'frame size 401 = 3·128 + 17');
  t.equal(readSyncsafe(tag, 6), tag.length - 10);
  t.same(readId3Tag(tag), [{ id: 'TIT2', text: 'é'.repeat(200) }]);
});

t.test('a now playing becomes TIT2, TPE1, TALB, TLEN and TXXX artworkUrl, only for what it has', async (t) => {
  const full: NowPlaying = { title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl: 'https://art.example/kob.jpg', durationSeconds: 562.4, setAt: 1 };
  t.same(readNowPlayingTag(nowPlayingId3Tag(full)), { title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue', lengthMs: '562400', artworkUrl: 'https://art.example/kob.jpg' });
  t.same(nowPlayingFrames({ title: 'Jingle', setAt: 1 }), [{ id: 'TIT2', text: 'Jingle' }]);
  t.same(readId3Tag(nowPlayingId3Tag({ title: 'Été — 夏 🎷', artist: 'Ünïcödé', setAt: 1 })), [{ id: 'TIT2', text: 'Été — 夏 🎷' }, { id: 'TPE1', text: 'Ünïcödé' }], 'UTF-8 round trip');
  t.throws(() => buildId3Tag([{ id: 'tit2', text: 'x' }]), RangeError, 'a frame id is four capitals or digits');
});

t.test('FFmpeg reads title, artist, album and the artwork URL from a tag at the head of an MP3 file', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-id3-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const mp3 = join(directory, 'tone.mp3');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=duration=1', '-c:a', 'libmp3lame', '-write_id3v2', '0', '-write_xing', '0', mp3]);
  const tagged = join(directory, 'tagged.mp3');
  const tag = nowPlayingId3Tag({ title: 'Été 夏', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl: 'https://art.example/kob.jpg', setAt: 1 });
  writeFileSync(tagged, Buffer.concat([tag, readFileSync(mp3)]));
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format_tags', '-of', 'json', tagged]).toString()) as { format: { tags: Record<string, string> } };
  t.match(probe.format.tags, { title: 'Été 夏', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl: 'https://art.example/kob.jpg' });
  const metadata = execFileSync('ffmpeg', ['-v', 'error', '-i', tagged, '-f', 'ffmetadata', '-']).toString();
  t.match(metadata, /^title=Été 夏$/m, 'ffmetadata: title');
  t.match(metadata, /^artist=Miles Davis$/m, 'ffmetadata: artist');
});
