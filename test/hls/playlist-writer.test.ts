/**
 * Playlist text (src/hls/playlist-writer.ts): golden text for media and master playlists,
 * tables of struct ↔ text, and a real player-side parser (m3u8-parser) reading them back
 * the way a player would (RFC 8216 §4.3).
 */
import t from 'tap';
import {
  AAC_LC_CODECS,
  renderMasterPlaylist,
  renderMediaPlaylist,
  type MediaPlaylist,
  type PlaylistSegment,
} from '../../src/hls/playlist-writer.js';
import { parsePlaylist } from '../helpers/m3u8.js';

/** Exact durations at 48 kHz: 187 and 188 AAC frames of 1024 samples. */
const SHORT = (187 * 1024) / 48000; // 3.98933…
const LONG = (188 * 1024) / 48000; // 4.01066…
const NOON = Date.UTC(2024, 0, 1, 12, 0, 0, 0);

function segment(uri: string, durationSeconds: number, programDateTime: number, discontinuity = false): PlaylistSegment {
  return { uri, durationSeconds, programDateTime, discontinuity };
}

const THREE_SEGMENTS: MediaPlaylist = {
  targetDuration: 4,
  mediaSequence: 120,
  discontinuitySequence: 2,
  segments: [
    segment('hifi/120-3.ts', SHORT, NOON),
    segment('hifi/121-3.ts', LONG, NOON + SHORT * 1000),
    segment('hifi/122-4.ts', SHORT, NOON + 60_000, true),
  ],
};

t.test('a media playlist renders to the exact expected text', async (t) => {
  t.equal(
    renderMediaPlaylist(THREE_SEGMENTS),
    [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:4',
      '#EXT-X-MEDIA-SEQUENCE:120',
      '#EXT-X-DISCONTINUITY-SEQUENCE:2',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00.000Z',
      '#EXTINF:3.98933,',
      'hifi/120-3.ts',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:03.989Z',
      '#EXTINF:4.01067,',
      'hifi/121-3.ts',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:01:00.000Z',
      '#EXTINF:3.98933,',
      'hifi/122-4.ts',
      '',
    ].join('\n'),
  );
});

t.test('media playlists in a table of struct ↔ text', async (t) => {
  const cases: { name: string; playlist: MediaPlaylist; text: string[] }[] = [
    {
      name: 'no segments yet',
      playlist: { targetDuration: 4, mediaSequence: 0, discontinuitySequence: 0, segments: [] },
      text: ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:4', '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-DISCONTINUITY-SEQUENCE:0'],
    },
    {
      name: 'a discontinuity in the middle',
      playlist: {
        targetDuration: 6,
        mediaSequence: 7,
        discontinuitySequence: 0,
        segments: [segment('lofi/7-1.ts', 6, NOON), segment('lofi/8-2.ts', 6.016, NOON + 90_500, true), segment('lofi/9-2.ts', 5.994666, NOON + 96_516)],
      },
      text: [
        '#EXTM3U',
        '#EXT-X-VERSION:3',
        '#EXT-X-TARGETDURATION:6',
        '#EXT-X-MEDIA-SEQUENCE:7',
        '#EXT-X-DISCONTINUITY-SEQUENCE:0',
        '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00.000Z',
        '#EXTINF:6.00000,',
        'lofi/7-1.ts',
        '#EXT-X-DISCONTINUITY',
        '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:01:30.500Z',
        '#EXTINF:6.01600,',
        'lofi/8-2.ts',
        '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:01:36.516Z',
        '#EXTINF:5.99467,',
        'lofi/9-2.ts',
      ],
    },
    {
      name: 'a discontinuity on the first segment is kept',
      playlist: {
        targetDuration: 1,
        mediaSequence: 41,
        discontinuitySequence: 5,
        segments: [segment('midfi/41-9.ts', 0.49067, NOON + 1, true), segment('midfi/42-9.ts', 0.512, NOON + 492)],
      },
      text: [
        '#EXTM3U',
        '#EXT-X-VERSION:3',
        '#EXT-X-TARGETDURATION:1',
        '#EXT-X-MEDIA-SEQUENCE:41',
        '#EXT-X-DISCONTINUITY-SEQUENCE:5',
        '#EXT-X-DISCONTINUITY',
        '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00.001Z',
        '#EXTINF:0.49067,',
        'midfi/41-9.ts',
        '#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:00.492Z',
        '#EXTINF:0.51200,',
        'midfi/42-9.ts',
      ],
    },
  ];
  for (const { name, playlist, text } of cases) {
    t.equal(renderMediaPlaylist(playlist), `${text.join('\n')}\n`, name);
  }
});

t.test('a player-side parser reads the media playlist back without warnings', async (t) => {
  const { manifest, warnings } = parsePlaylist(renderMediaPlaylist(THREE_SEGMENTS));
  t.strictSame(warnings, []);
  t.equal(manifest.version, 3);
  t.equal(manifest.mediaSequence, 120);
  t.equal(manifest.discontinuitySequence, 2);
  t.equal(manifest.targetDuration, 4);
  t.equal(manifest.playlistType, undefined, 'a sliding window has no EXT-X-PLAYLIST-TYPE');
  t.notOk(manifest.endList, 'a live playlist has no EXT-X-ENDLIST');
  t.same(
    manifest.segments.map((parsed) => parsed.uri),
    THREE_SEGMENTS.segments.map((written) => written.uri),
  );
  manifest.segments.forEach((parsed, index) => {
    t.ok(Math.abs(parsed.duration - THREE_SEGMENTS.segments[index]!.durationSeconds) < 5e-6, `EXTINF of ${parsed.uri} is exact to 10 µs`);
  });
  t.same(
    manifest.segments.map((parsed) => parsed.timeline),
    [2, 2, 3],
    'timelines count from the discontinuity sequence and step at the discontinuity',
  );
  t.same(
    manifest.segments.map((parsed) => parsed.dateTimeString),
    ['2024-01-01T12:00:00.000Z', '2024-01-01T12:00:03.989Z', '2024-01-01T12:01:00.000Z'],
  );
  for (const parsed of manifest.segments) {
    t.match(parsed.dateTimeString, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO 8601 with milliseconds and a zone');
  }
  t.same(
    manifest.segments.map((parsed) => parsed.programDateTime),
    THREE_SEGMENTS.segments.map((written) => Math.floor(written.programDateTime)),
  );
});

t.test('a discontinuity on the first segment puts it on the next timeline for the parser', async (t) => {
  const { manifest, warnings } = parsePlaylist(
    renderMediaPlaylist({
      targetDuration: 4,
      mediaSequence: 10,
      discontinuitySequence: 0,
      segments: [segment('hifi/10-2.ts', SHORT, NOON, true), segment('hifi/11-2.ts', LONG, NOON + SHORT * 1000)],
    }),
  );
  t.strictSame(warnings, []);
  t.equal(manifest.discontinuitySequence, 0);
  t.same(
    manifest.segments.map((parsed) => parsed.timeline),
    [1, 1],
  );
});

t.test('an empty window still parses, with its media sequence and no segments', async (t) => {
  const { manifest, warnings } = parsePlaylist(
    renderMediaPlaylist({ targetDuration: 4, mediaSequence: 33, discontinuitySequence: 1, segments: [] }),
  );
  t.strictSame(warnings, []);
  t.equal(manifest.mediaSequence, 33);
  t.equal(manifest.discontinuitySequence, 1);
  t.same(manifest.segments, []);
});

t.test('EXTINF is the exact duration of any whole number of AAC frames, to 10 µs', async (t) => {
  for (const sampleRate of [44100, 48000]) {
    let worst = 0;
    let claimsWholeSecond = 0;
    for (let frames = 1; frames <= 600; frames++) {
      const exact = (frames * 1024) / sampleRate;
      const text = renderMediaPlaylist({ targetDuration: 13, mediaSequence: 0, discontinuitySequence: 0, segments: [segment('a.ts', exact, NOON)] });
      const written = Number(/^#EXTINF:([\d.]+),$/m.exec(text)?.[1]);
      worst = Math.max(worst, Math.abs(written - exact));
      if (Number.isInteger(written) && !Number.isInteger(exact)) claimsWholeSecond += 1;
    }
    t.ok(worst <= 5e-6, `at ${sampleRate} Hz the written EXTINF is off by at most 5 µs (worst ${worst})`);
    t.equal(claimsWholeSecond, 0, `at ${sampleRate} Hz no EXTINF claims a whole second it does not last`);
  }
});

t.test('a master playlist renders to the exact expected text', async (t) => {
  const text = renderMasterPlaylist([
    { uri: 'fip_lofi.m3u8', bandwidth: 35_117.4, averageBandwidth: 34_002.1, codecs: AAC_LC_CODECS },
    { uri: 'fip_hifi.m3u8', bandwidth: 201_600, averageBandwidth: 199_000, codecs: AAC_LC_CODECS },
  ]);
  t.equal(
    text,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-INDEPENDENT-SEGMENTS',
      '#EXT-X-STREAM-INF:BANDWIDTH=35118,AVERAGE-BANDWIDTH=34003,CODECS="mp4a.40.2"',
      'fip_lofi.m3u8',
      '#EXT-X-STREAM-INF:BANDWIDTH=201600,AVERAGE-BANDWIDTH=199000,CODECS="mp4a.40.2"',
      'fip_hifi.m3u8',
      '',
    ].join('\n'),
  );
});

t.test('a player-side parser reads BANDWIDTH, AVERAGE-BANDWIDTH and CODECS back from the master playlist', async (t) => {
  const variants = [
    { uri: 'fip_lofi.m3u8', bandwidth: 35_117.4, averageBandwidth: 34_002.1, codecs: AAC_LC_CODECS },
    { uri: 'fip_midfi.m3u8', bandwidth: 101_000, averageBandwidth: 100_400, codecs: AAC_LC_CODECS },
    { uri: 'fip_hifi.m3u8', bandwidth: 201_600, averageBandwidth: 199_000.5, codecs: AAC_LC_CODECS },
  ];
  const { manifest, warnings } = parsePlaylist(renderMasterPlaylist(variants));
  t.strictSame(warnings, []);
  t.equal(manifest.independentSegments, true);
  const playlists = manifest.playlists ?? [];
  t.same(
    playlists.map((variant) => variant.uri),
    variants.map((variant) => variant.uri),
  );
  playlists.forEach((parsed, index) => {
    const written = variants[index]!;
    t.equal(parsed.attributes.BANDWIDTH, Math.ceil(written.bandwidth), `${parsed.uri} BANDWIDTH is the peak rounded up`);
    t.equal(Number(parsed.attributes['AVERAGE-BANDWIDTH']), Math.ceil(written.averageBandwidth), `${parsed.uri} AVERAGE-BANDWIDTH rounded up`);
    t.equal(parsed.attributes.CODECS, 'mp4a.40.2', `${parsed.uri} is AAC-LC`);
  });
});
