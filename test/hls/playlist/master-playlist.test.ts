/**
 * The master playlist codec (src/hls/playlist/master-playlist.ts): structure ↔ text both
 * ways, what the reader tolerates (RFC 8216 §6.3.1) and what it refuses.
 */
import t from 'tap';
import { marshalMasterPlaylist, parseMasterPlaylist, parsePlaylist, type MasterPlaylist } from '../../../src/hls/playlist/index.js';

const cases: { name: string; playlist: MasterPlaylist; text: string[] }[] = [
  {
    name: 'our AAC-LC variants',
    playlist: {
      version: 3,
      independentSegments: true,
      variants: [
        { uri: 'fip_lofi.m3u8', bandwidth: 35118, averageBandwidth: 34003, codecs: 'mp4a.40.2' },
        { uri: 'fip_hifi.m3u8', bandwidth: 201600, averageBandwidth: 199000, codecs: 'mp4a.40.2' },
      ],
    },
    text: [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-INDEPENDENT-SEGMENTS',
      '#EXT-X-STREAM-INF:BANDWIDTH=35118,AVERAGE-BANDWIDTH=34003,CODECS="mp4a.40.2"',
      'fip_lofi.m3u8',
      '#EXT-X-STREAM-INF:BANDWIDTH=201600,AVERAGE-BANDWIDTH=199000,CODECS="mp4a.40.2"',
      'fip_hifi.m3u8',
    ],
  },
  {
    name: 'a variant with BANDWIDTH only, no independent segments',
    playlist: { version: 6, independentSegments: false, variants: [{ uri: 'https://cdn.example/a.m3u8?x=1', bandwidth: 1 }] },
    text: ['#EXTM3U', '#EXT-X-VERSION:6', '#EXT-X-STREAM-INF:BANDWIDTH=1', 'https://cdn.example/a.m3u8?x=1'],
  },
  {
    name: 'no variants at all',
    playlist: { version: 3, independentSegments: true, variants: [] },
    text: ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-INDEPENDENT-SEGMENTS'],
  },
];

t.test('master playlists in a table of structure → text → structure and text → structure → text', async (t) => {
  for (const { name, playlist, text } of cases) {
    const written = marshalMasterPlaylist(playlist);
    t.equal(written, `${text.join('\n')}\n`, `${name}: the text`);
    t.strictSame(parseMasterPlaylist(written), playlist, `${name}: read back`);
    t.equal(marshalMasterPlaylist(parseMasterPlaylist(written)), written, `${name}: written back`);
  }
});

t.test('a playlist with EXT-X-STREAM-INF reads as a master playlist', async (t) => {
  const text = `${cases[0]!.text.join('\n')}\n`;
  t.strictSame(parsePlaylist(text), { kind: 'master', playlist: cases[0]!.playlist });
});

t.test('unknown attributes and tags are ignored, the quoted CODECS list is kept whole', async (t) => {
  const parsed = parseMasterPlaylist(
    ['#EXTM3U', '#EXT-X-STREAM-INF:RESOLUTION=1x1,CODECS="mp4a.40.2,ac-3",BANDWIDTH=5,AUDIO="aac"', '#EXT-X-MEDIA:TYPE=AUDIO', 'v.m3u8'].join('\n'),
  );
  t.strictSame(parsed, { version: 1, independentSegments: false, variants: [{ uri: 'v.m3u8', bandwidth: 5, codecs: 'mp4a.40.2,ac-3' }] });
});

t.test('bad master playlists are refused with ONAIR_PLAYLIST_INVALID', async (t) => {
  const bad: Record<string, string[]> = {
    'a variant without BANDWIDTH': ['#EXTM3U', '#EXT-X-STREAM-INF:CODECS="mp4a.40.2"', 'a.m3u8'],
    'a variant without its URI': ['#EXTM3U', '#EXT-X-STREAM-INF:BANDWIDTH=1'],
    'two STREAM-INF in a row': ['#EXTM3U', '#EXT-X-STREAM-INF:BANDWIDTH=1', '#EXT-X-STREAM-INF:BANDWIDTH=2', 'a.m3u8'],
    'a URI without STREAM-INF': ['#EXTM3U', 'a.m3u8'],
    'a fractional BANDWIDTH': ['#EXTM3U', '#EXT-X-STREAM-INF:BANDWIDTH=1.5', 'a.m3u8'],
    'a media segment in it': ['#EXTM3U', '#EXT-X-STREAM-INF:BANDWIDTH=1', 'a.m3u8', '#EXTINF:4,', 'b.ts'],
    'BANDWIDTH twice': ['#EXTM3U', '#EXT-X-STREAM-INF:BANDWIDTH=1,BANDWIDTH=2', 'a.m3u8'],
  };
  for (const [name, lines] of Object.entries(bad)) {
    t.throws(() => parseMasterPlaylist(lines.join('\n')), { code: 'ONAIR_PLAYLIST_INVALID' }, name);
  }
});

t.test('a CODECS value no quoted-string can carry is refused when written', async (t) => {
  t.throws(() => marshalMasterPlaylist({ version: 3, independentSegments: false, variants: [{ uri: 'a.m3u8', bandwidth: 1, codecs: 'a"b' }] }), RangeError);
  t.throws(() => marshalMasterPlaylist({ version: 3, independentSegments: false, variants: [{ uri: 'a.m3u8', bandwidth: 1.5 }] }), RangeError);
});
