/**
 * EXT-X-KEY in the playlist codec (RFC 8216 §4.3.2.4): written before the segment it starts
 * applying to, read back into the same structure, and anything onair does not write refused.
 */
import t from 'tap';
import { marshalMediaPlaylist, parseMediaPlaylist, PlaylistParseError } from '../../../src/hls/playlist/index.js';

const IV = '0000000000000000000000000000002a';
const TEXT = [
  '#EXTM3U',
  '#EXT-X-VERSION:3',
  '#EXT-X-TARGETDURATION:2',
  '#EXT-X-MEDIA-SEQUENCE:84',
  `#EXT-X-KEY:METHOD=AES-128,URI="key-42.key",IV=0x${IV}`,
  '#EXTINF:2.00000,',
  'hifi/84-1.ts',
  '#EXTINF:2.00000,',
  'hifi/85-1.ts',
  '#EXT-X-DISCONTINUITY',
  '#EXT-X-KEY:METHOD=AES-128,URI="key-43.key",IV=0x0000000000000000000000000000002B',
  '#EXTINF:2.00000,',
  'hifi/86-2.ts',
  '',
].join('\n');

t.test('EXT-X-KEY round-trips, after the discontinuity and before the segment', async (t) => {
  const playlist = parseMediaPlaylist(TEXT);
  t.same(playlist.segments[0]!.key, { method: 'AES-128', uri: 'key-42.key', iv: IV });
  t.equal(playlist.segments[1]!.key, undefined, 'the tag is not repeated on the next segment');
  t.same(playlist.segments[2]!.key, { method: 'AES-128', uri: 'key-43.key', iv: '0000000000000000000000000000002b' });
  t.equal(marshalMediaPlaylist(playlist), TEXT.replace('2B', '2b'));
});

t.test('SAMPLE-AES with KEYFORMAT identity (cbcs channels) round-trips', async (t) => {
  const text = TEXT.replace(`METHOD=AES-128,URI="key-42.key",IV=0x${IV}`, `METHOD=SAMPLE-AES,URI="key-42.key",IV=0x${IV},KEYFORMAT="identity"`);
  const playlist = parseMediaPlaylist(text);
  t.same(playlist.segments[0]!.key, { method: 'SAMPLE-AES', uri: 'key-42.key', iv: IV, keyFormat: 'identity' });
  t.equal(marshalMediaPlaylist(playlist), text.replace('2B', '2b'));
});

t.test('another method, a missing IV or URI, or a short IV is refused', async (t) => {
  for (const tag of [
    '#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="k",IV=0x' + IV,
    `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k",IV=0x${IV},KEYFORMAT="com.apple.streamingkeydelivery"`,
    '#EXT-X-KEY:METHOD=AES-128,URI="k"',
    `#EXT-X-KEY:METHOD=AES-128,IV=0x${IV}`,
    '#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0x1234',
  ]) {
    t.throws(() => parseMediaPlaylist(TEXT.replace(/#EXT-X-KEY:[^\n]*URI="key-42.key"[^\n]*/, tag)), PlaylistParseError, tag);
  }
  const playlist = parseMediaPlaylist(TEXT);
  playlist.segments[0]!.key = { method: 'AES-128', uri: 'k', iv: 'XYZ' };
  t.throws(() => marshalMediaPlaylist(playlist), RangeError);
});
