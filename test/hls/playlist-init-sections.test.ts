/**
 * EXT-X-MAP in our media playlists (fMP4 channels; src/hls/playlist-writer.ts and the codec's
 * media-segment-tags.ts): golden text for live, Low-Latency (full and delta) and DVR-like
 * playlists, where the tag goes (first listed segment, a new run's init, every
 * discontinuity), the version it needs (RFC 8216 §7), and a player-side parser
 * (m3u8-parser) giving every segment its map.
 */
import t from 'tap';
import { parseMediaPlaylist, marshalMediaPlaylist, PlaylistParseError } from '../../src/hls/playlist/index.js';
import { renderMediaPlaylist, type MediaPlaylist, type PlaylistSegment } from '../../src/hls/playlist-writer.js';
import { parsePlaylist } from '../helpers/m3u8.js';

const D = (96 * 1024) / 48000; // 2.048 s
const NOON = Date.UTC(2024, 0, 1, 12, 0, 0, 0);

function segment(msn: number, run: number, discontinuity = false, parts = 0): PlaylistSegment {
  const entry: PlaylistSegment = {
    uri: `hifi/${msn}-${run}.m4s`,
    durationSeconds: D,
    programDateTime: NOON + (msn - 100) * D * 1000,
    discontinuity,
    initUri: `hifi/init-${run}.mp4`,
  };
  if (parts > 0) entry.parts = Array.from({ length: parts }, (_, part) => ({ uri: `hifi/${msn}-${run}.${part}.m4s`, durationSeconds: D / parts }));
  return entry;
}

/** A run change (a restart: a discontinuity and a new init) and an input switch within the new run. */
const WINDOW: MediaPlaylist = {
  targetDuration: 3,
  mediaSequence: 100,
  discontinuitySequence: 0,
  segments: [segment(100, 7), segment(101, 7), segment(102, 8, true), segment(103, 8), segment(104, 8, true), segment(105, 8)],
};

t.test('a live fMP4 playlist: version 6, EXT-X-MAP before the first segment, at the new run and at every discontinuity', async (t) => {
  const text = renderMediaPlaylist(WINDOW);
  t.equal(
    text,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:6',
      '#EXT-X-TARGETDURATION:3',
      '#EXT-X-MEDIA-SEQUENCE:100',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-MAP:URI="hifi/init-7.mp4"',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00.000Z',
      '#EXTINF:2.04800,',
      'hifi/100-7.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:02.048Z',
      '#EXTINF:2.04800,',
      'hifi/101-7.m4s',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-MAP:URI="hifi/init-8.mp4"',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:04.096Z',
      '#EXTINF:2.04800,',
      'hifi/102-8.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:06.144Z',
      '#EXTINF:2.04800,',
      'hifi/103-8.m4s',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-MAP:URI="hifi/init-8.mp4"',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:08.192Z',
      '#EXTINF:2.04800,',
      'hifi/104-8.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:10.240Z',
      '#EXTINF:2.04800,',
      'hifi/105-8.m4s',
      '',
    ].join('\n'),
  );
  const { manifest, warnings } = parsePlaylist(text);
  t.strictSame(warnings, []);
  t.equal(manifest.version, 6);
  t.same(
    manifest.segments.map((parsed) => parsed.map?.uri),
    ['hifi/init-7.mp4', 'hifi/init-7.mp4', 'hifi/init-8.mp4', 'hifi/init-8.mp4', 'hifi/init-8.mp4', 'hifi/init-8.mp4'],
    'a player gives every segment the init of the run that wrote it',
  );
});

t.test('a TS playlist is unchanged: no EXT-X-MAP, version 3', async (t) => {
  const ts: MediaPlaylist = { ...WINDOW, segments: WINDOW.segments.map(({ initUri: _initUri, ...rest }) => ({ ...rest, uri: rest.uri.replace('.m4s', '.ts') })) };
  const text = renderMediaPlaylist(ts);
  t.notMatch(text, 'EXT-X-MAP');
  t.match(text, '#EXT-X-VERSION:3\n');
});

t.test('an empty fMP4 window needs no EXT-X-MAP and stays at version 3', async (t) => {
  const text = renderMediaPlaylist({ ...WINDOW, segments: [] });
  t.notMatch(text, 'EXT-X-MAP');
  t.match(text, '#EXT-X-VERSION:3\n');
});

const LOW_LATENCY: MediaPlaylist = {
  targetDuration: 3,
  mediaSequence: 100,
  discontinuitySequence: 0,
  segments: [segment(100, 7), segment(101, 7), segment(102, 7), segment(103, 7), segment(104, 7), segment(105, 7), segment(106, 7, false, 4)],
  lowLatency: {
    partTargetSeconds: D / 4,
    openParts: [{ uri: 'hifi/107-7.0.m4s', durationSeconds: D / 4 }],
    openDiscontinuity: false,
    openInitUri: 'hifi/init-7.mp4',
    preloadHintUri: 'hifi/107-7.1.m4s',
    renditionReports: [],
  },
};

t.test('Low-Latency fMP4: version 9, one EXT-X-MAP for one run; parts and hints name .m4s', async (t) => {
  const text = renderMediaPlaylist(LOW_LATENCY);
  t.match(text, '#EXT-X-VERSION:9\n');
  t.equal(text.split('#EXT-X-MAP:URI="hifi/init-7.mp4"').length - 1, 1, 'written once, before the first segment');
  t.ok(text.indexOf('#EXT-X-MAP') < text.indexOf('hifi/100-7.m4s'));
  t.match(text, '#EXT-X-PART:DURATION=0.51200,URI="hifi/107-7.0.m4s",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="hifi/107-7.1.m4s"');
  const { manifest, warnings } = parsePlaylist(text);
  t.strictSame(warnings, []);
  t.ok(manifest.segments.every((parsed) => parsed.map?.uri === 'hifi/init-7.mp4'));
});

t.test('the segment being made by a new run gets its EXT-X-MAP before its parts', async (t) => {
  const text = renderMediaPlaylist({
    ...LOW_LATENCY,
    lowLatency: { ...LOW_LATENCY.lowLatency!, openParts: [{ uri: 'hifi/107-9.0.m4s', durationSeconds: D / 4 }], openDiscontinuity: true, openInitUri: 'hifi/init-9.mp4', preloadHintUri: 'hifi/107-9.1.m4s' },
  });
  t.match(text, 'hifi/106-7.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="hifi/init-9.mp4"\n#EXT-X-PART:DURATION=0.51200,URI="hifi/107-9.0.m4s"');
  const parsed = parseMediaPlaylist(text);
  t.strictSame(parsed.partialSegment?.map, { uri: 'hifi/init-9.mp4' }, 'the codec reads the open segment’s map back');
});

t.test('a delta update keeps EXT-X-MAP: the first segment after EXT-X-SKIP carries it', async (t) => {
  const text = renderMediaPlaylist({ ...LOW_LATENCY, lowLatency: { ...LOW_LATENCY.lowLatency!, skippedSegments: 3 } });
  t.match(text, '#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-MAP:URI="hifi/init-7.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:06.144Z\n#EXTINF:2.04800,\nhifi/103-7.m4s');
  t.equal(text.split('#EXT-X-MAP').length - 1, 1);
});

t.test('the codec reads EXT-X-MAP back onto its segment, and text → structure → text is exact', async (t) => {
  const text = renderMediaPlaylist(WINDOW);
  const parsed = parseMediaPlaylist(text);
  t.same(
    parsed.segments.map((parsed) => parsed.map?.uri),
    ['hifi/init-7.mp4', undefined, 'hifi/init-8.mp4', undefined, 'hifi/init-8.mp4', undefined],
    'the structure holds the tag where it is written',
  );
  t.equal(marshalMediaPlaylist(parsed), text);
  t.throws(() => parseMediaPlaylist('#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:BYTERANGE="10@0"\n#EXTINF:2,\na.m4s\n'), PlaylistParseError, 'URI is required');
  t.throws(() => parseMediaPlaylist('#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI="i.mp4",BYTERANGE="10@0"\n#EXTINF:2,\na.m4s\n'), PlaylistParseError, 'byte ranges are refused');
  t.throws(() => parseMediaPlaylist('#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=i.mp4\n#EXTINF:2,\na.m4s\n'), PlaylistParseError, 'an unquoted URI is refused');
});
