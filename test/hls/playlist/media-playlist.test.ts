/**
 * The media playlist codec (src/hls/playlist/media-playlist.ts): tables of structure ↔ text
 * in both directions (structure → text → structure and text → structure → text), for live,
 * Low-Latency, delta and VOD playlists, and the errors bad text gets.
 */
import t from 'tap';
import { marshalMediaPlaylist, parseMediaPlaylist, parsePlaylist, PlaylistParseError, type MediaPlaylist } from '../../../src/hls/playlist/index.js';

const NOON = Date.UTC(2024, 0, 1, 12, 0, 0, 0);

function playlist(fields: Partial<MediaPlaylist>): MediaPlaylist {
  return { version: 3, targetDuration: 4, mediaSequence: 0, segments: [], preloadHints: [], renditionReports: [], endList: false, ...fields };
}

const cases: { name: string; playlist: MediaPlaylist; text: string[] }[] = [
  {
    name: 'an empty live window',
    playlist: playlist({ mediaSequence: 33, discontinuitySequence: 1 }),
    text: ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:4', '#EXT-X-MEDIA-SEQUENCE:33', '#EXT-X-DISCONTINUITY-SEQUENCE:1'],
  },
  {
    name: 'a live window with a discontinuity and program date times',
    playlist: playlist({
      mediaSequence: 120,
      discontinuitySequence: 2,
      segments: [
        { uri: 'hifi/120-3.ts', durationSeconds: 3.98933, discontinuity: false, programDateTime: NOON, parts: [] },
        { uri: 'hifi/121-4.ts', durationSeconds: 4.01067, discontinuity: true, programDateTime: NOON + 60_000, parts: [] },
      ],
    }),
    text: [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:4',
      '#EXT-X-MEDIA-SEQUENCE:120',
      '#EXT-X-DISCONTINUITY-SEQUENCE:2',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00.000Z',
      '#EXTINF:3.98933,',
      'hifi/120-3.ts',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:01:00.000Z',
      '#EXTINF:4.01067,',
      'hifi/121-4.ts',
    ],
  },
  {
    name: 'a Low-Latency playlist with parts, a partial segment, a preload hint and rendition reports',
    playlist: playlist({
      version: 9,
      targetDuration: 2,
      serverControl: { canBlockReload: true, canSkipUntilSeconds: 12, holdBackSeconds: 6, partHoldBackSeconds: 1.5 },
      partInf: { partTargetSeconds: 0.5 },
      mediaSequence: 7,
      discontinuitySequence: 0,
      segments: [
        {
          uri: 'hifi/7-1.ts',
          durationSeconds: 2,
          discontinuity: false,
          programDateTime: NOON,
          parts: [
            { uri: 'hifi/7-1.0.ts', durationSeconds: 1, independent: true },
            { uri: 'hifi/7-1.1.ts', durationSeconds: 1, independent: true },
          ],
        },
      ],
      partialSegment: { discontinuity: true, parts: [{ uri: 'hifi/8-2.0.ts', durationSeconds: 0.48, independent: true }] },
      preloadHints: [{ type: 'PART', uri: 'hifi/8-2.1.ts' }],
      renditionReports: [{ uri: 'fip_lofi.m3u8', lastMsn: 8, lastPart: 0 }],
    }),
    text: [
      '#EXTM3U',
      '#EXT-X-VERSION:9',
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.50000',
      '#EXT-X-PART-INF:PART-TARGET=0.50000',
      '#EXT-X-MEDIA-SEQUENCE:7',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00.000Z',
      '#EXT-X-PART:DURATION=1.00000,URI="hifi/7-1.0.ts",INDEPENDENT=YES',
      '#EXT-X-PART:DURATION=1.00000,URI="hifi/7-1.1.ts",INDEPENDENT=YES',
      '#EXTINF:2.00000,',
      'hifi/7-1.ts',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-PART:DURATION=0.48000,URI="hifi/8-2.0.ts",INDEPENDENT=YES',
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="hifi/8-2.1.ts"',
      '#EXT-X-RENDITION-REPORT:URI="fip_lofi.m3u8",LAST-MSN=8,LAST-PART=0',
    ],
  },
  {
    name: 'a delta update skipping segments, a dependent part and a report without LAST-PART',
    playlist: playlist({
      version: 9,
      serverControl: { canBlockReload: false, canSkipUntilSeconds: 24.5 },
      partInf: { partTargetSeconds: 1.00267 },
      mediaSequence: 100,
      skip: { skippedSegments: 3 },
      segments: [{ uri: 'lofi/103-1.ts', durationSeconds: 4, discontinuity: false, parts: [{ uri: 'lofi/103-1.0.ts', durationSeconds: 4, independent: false }] }],
      preloadHints: [
        { type: 'MAP', uri: 'init.mp4' },
        { type: 'PART', uri: 'lofi/104-1.0.ts' },
      ],
      renditionReports: [{ uri: 'fip_hifi.m3u8', lastMsn: 103 }],
    }),
    text: [
      '#EXTM3U',
      '#EXT-X-VERSION:9',
      '#EXT-X-TARGETDURATION:4',
      '#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=24.5',
      '#EXT-X-PART-INF:PART-TARGET=1.00267',
      '#EXT-X-MEDIA-SEQUENCE:100',
      '#EXT-X-SKIP:SKIPPED-SEGMENTS=3',
      '#EXT-X-PART:DURATION=4.00000,URI="lofi/103-1.0.ts"',
      '#EXTINF:4.00000,',
      'lofi/103-1.ts',
      '#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="init.mp4"',
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="lofi/104-1.0.ts"',
      '#EXT-X-RENDITION-REPORT:URI="fip_hifi.m3u8",LAST-MSN=103',
    ],
  },
  {
    name: 'a VOD playlist with its type and end',
    playlist: playlist({
      targetDuration: 1,
      playlistType: 'VOD',
      discontinuitySequence: 0,
      segments: [{ uri: 's/41.ts', durationSeconds: 1.024, discontinuity: false, programDateTime: NOON, parts: [] }],
      endList: true,
    }),
    text: [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:1',
      '#EXT-X-PLAYLIST-TYPE:VOD',
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00.000Z',
      '#EXTINF:1.02400,',
      's/41.ts',
      '#EXT-X-ENDLIST',
    ],
  },
  {
    name: 'an EVENT playlist without program date times',
    playlist: playlist({ playlistType: 'EVENT', segments: [{ uri: 'a.ts', durationSeconds: 3.5, discontinuity: false, parts: [] }] }),
    text: ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:4', '#EXT-X-PLAYLIST-TYPE:EVENT', '#EXT-X-MEDIA-SEQUENCE:0', '#EXTINF:3.50000,', 'a.ts'],
  },
];

t.test('media playlists in a table of structure → text → structure', async (t) => {
  for (const { name, playlist, text } of cases) {
    const written = marshalMediaPlaylist(playlist);
    t.equal(written, `${text.join('\n')}\n`, `${name}: the text`);
    t.strictSame(parseMediaPlaylist(written), playlist, `${name}: read back`);
  }
});

t.test('media playlists in a table of text → structure → text', async (t) => {
  for (const { name, playlist, text } of cases) {
    const parsed = parseMediaPlaylist(`${text.join('\n')}\n`);
    t.strictSame(parsed, playlist, `${name}: the structure`);
    t.equal(marshalMediaPlaylist(parsed), `${text.join('\n')}\n`, `${name}: written back`);
    t.equal(parsePlaylist(`${text.join('\n')}\n`).kind, 'media', `${name}: is a media playlist`);
  }
});

t.test('the reader takes what the spec allows beyond what we write', async (t) => {
  const parsed = parseMediaPlaylist(
    [
      '#EXTM3U',
      '# a comment',
      '#EXT-X-TARGETDURATION:6',
      '#EXT-X-UNKNOWN-TAG:X=1',
      '',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T14:00:00.123456+02:00',
      '#EXTINF:5.5,a title',
      'a.ts',
      '#EXT-X-PART:DURATION=1,URI="b.0.ts",FUTURE-ATTRIBUTE=9',
      '#EXT-X-PRELOAD-HINT:TYPE=FUTURE,URI="x"',
    ].join('\r\n'),
  );
  t.strictSame(parsed, {
    version: 1,
    targetDuration: 6,
    mediaSequence: 0,
    segments: [{ uri: 'a.ts', durationSeconds: 5.5, discontinuity: false, programDateTime: NOON + 123, parts: [] }],
    partialSegment: { discontinuity: false, parts: [{ uri: 'b.0.ts', durationSeconds: 1, independent: false }] },
    preloadHints: [],
    renditionReports: [],
    endList: false,
  });
});

t.test('bad text is a PlaylistParseError with its code and line', async (t) => {
  const head = ['#EXTM3U', '#EXT-X-TARGETDURATION:4'];
  const bad: { name: string; lines: string[]; line?: number }[] = [
    { name: 'no header', lines: ['#EXT-X-TARGETDURATION:4'], line: 1 },
    { name: 'empty text', lines: [''], line: 1 },
    { name: 'no target duration', lines: ['#EXTM3U', '#EXT-X-VERSION:3'] },
    { name: 'a fractional target duration', lines: ['#EXTM3U', '#EXT-X-TARGETDURATION:4.5'], line: 2 },
    { name: 'two versions', lines: [...head, '#EXT-X-VERSION:3', '#EXT-X-VERSION:9'], line: 4 },
    { name: 'a URI without EXTINF', lines: [...head, 'a.ts'], line: 3 },
    { name: 'EXTINF without a URI', lines: [...head, '#EXTINF:4,'] },
    { name: 'a negative duration', lines: [...head, '#EXTINF:-4,', 'a.ts'], line: 3 },
    { name: 'a duration that rounds to 10^15', lines: [...head, '#EXTINF:999999999999999.999999,', 'a.ts'], line: 3 },
    { name: 'a duration in exponent form', lines: [...head, '#EXTINF:4e3,', 'a.ts'], line: 3 },
    { name: 'a media sequence past 2^53', lines: [...head, '#EXT-X-MEDIA-SEQUENCE:9007199254740993'], line: 3 },
    { name: 'a date without a zone', lines: [...head, '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00', '#EXTINF:4,', 'a.ts'], line: 3 },
    { name: 'no such date', lines: [...head, '#EXT-X-PROGRAM-DATE-TIME:2024-02-30T12:00:00Z', '#EXTINF:4,', 'a.ts'], line: 3 },
    { name: 'an unknown playlist type', lines: [...head, '#EXT-X-PLAYLIST-TYPE:LIVE'], line: 3 },
    { name: 'a part without a URI', lines: [...head, '#EXT-X-PART:DURATION=1.0'], line: 3 },
    { name: 'an unquoted URI', lines: [...head, '#EXT-X-PART:DURATION=1.0,URI=a.ts'], line: 3 },
    { name: 'a quoted duration', lines: [...head, '#EXT-X-PART:DURATION="1.0",URI="a.ts"'], line: 3 },
    { name: 'INDEPENDENT=MAYBE', lines: [...head, '#EXT-X-PART:DURATION=1.0,URI="a.ts",INDEPENDENT=MAYBE'], line: 3 },
    { name: 'a skip without a count', lines: [...head, '#EXT-X-SKIP:RECENTLY-REMOVED-DATERANGES=""'], line: 3 },
    { name: 'a master playlist', lines: ['#EXTM3U', '#EXT-X-STREAM-INF:BANDWIDTH=1', 'a.m3u8'], line: 2 },
  ];
  for (const { name, lines, line } of bad) {
    t.throws(() => parseMediaPlaylist(lines.join('\n')), { code: 'ONAIR_PLAYLIST_INVALID', line }, name);
    t.throws(() => parseMediaPlaylist(lines.join('\n')), PlaylistParseError, name);
  }
});

t.test('a structure no text can carry is refused when written', async (t) => {
  const segment = { uri: 'a.ts', durationSeconds: 4, discontinuity: false, parts: [] };
  const bad: { name: string; playlist: MediaPlaylist }[] = [
    { name: 'a URI on two lines', playlist: playlist({ segments: [{ ...segment, uri: 'a.ts\n#EXT-X-ENDLIST' }] }) },
    { name: 'a URI that reads as a tag', playlist: playlist({ segments: [{ ...segment, uri: '#EXT-X-ENDLIST' }] }) },
    { name: 'a quote in a part URI', playlist: playlist({ partialSegment: { discontinuity: false, parts: [{ uri: 'a".ts', durationSeconds: 1, independent: true }] } }) },
    { name: 'a negative duration', playlist: playlist({ segments: [{ ...segment, durationSeconds: -1 }] }) },
    { name: 'a fractional media sequence', playlist: playlist({ mediaSequence: 1.5 }) },
    { name: 'an invalid date', playlist: playlist({ segments: [{ ...segment, programDateTime: Number.NaN }] }) },
  ];
  for (const { name, playlist } of bad) t.throws(() => marshalMediaPlaylist(playlist), RangeError, name);
});
