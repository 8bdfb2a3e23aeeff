/**
 * What the codec writes, read by a real player-side parser (m3u8-parser): every Low-Latency
 * tag, the delta update's skip, the VOD type and end, and the master playlist's variants
 * come back with the values written, and the parser has nothing to warn about.
 */
import t from 'tap';
import { marshalMasterPlaylist, marshalMediaPlaylist, type MediaPlaylist } from '../../../src/hls/playlist/index.js';
import { parsePlaylist } from '../../helpers/m3u8.js';

const NOON = Date.UTC(2024, 0, 1, 12, 0, 0, 0);

const LOW_LATENCY: MediaPlaylist = {
  version: 9,
  targetDuration: 2,
  serverControl: { canBlockReload: true, canSkipUntilSeconds: 12, holdBackSeconds: 6, partHoldBackSeconds: 1.5 },
  partInf: { partTargetSeconds: 0.5 },
  mediaSequence: 40,
  discontinuitySequence: 1,
  segments: [40, 41].map((msn) => ({
    uri: `hifi/${msn}-2.ts`,
    durationSeconds: 2,
    discontinuity: false,
    programDateTime: NOON + (msn - 40) * 2000,
    parts: [0, 1, 2, 3].map((part) => ({ uri: `hifi/${msn}-2.${part}.ts`, durationSeconds: 0.5, independent: true })),
  })),
  partialSegment: { discontinuity: false, parts: [{ uri: 'hifi/42-2.0.ts', durationSeconds: 0.5, independent: true }] },
  preloadHints: [{ type: 'PART', uri: 'hifi/42-2.1.ts' }],
  renditionReports: [{ uri: 'fip_lofi.m3u8', lastMsn: 42, lastPart: 0 }],
  endList: false,
};

t.test('a Low-Latency playlist reads back with its server control, parts, hint and reports', async (t) => {
  const { manifest, warnings } = parsePlaylist(marshalMediaPlaylist(LOW_LATENCY));
  t.strictSame(warnings, []);
  t.equal(manifest.version, 9);
  t.equal(manifest.mediaSequence, 40);
  t.equal(manifest.discontinuitySequence, 1);
  t.same(manifest.serverControl, { canBlockReload: true, canSkipUntil: 12, holdBack: 6, partHoldBack: 1.5 });
  t.same(manifest.partInf, { partTarget: 0.5 });
  t.same(
    manifest.segments.map((segment) => [segment.uri, segment.duration, segment.dateTimeString]),
    [
      ['hifi/40-2.ts', 2, '2024-01-01T12:00:00.000Z'],
      ['hifi/41-2.ts', 2, '2024-01-01T12:00:02.000Z'],
    ],
  );
  t.same(
    manifest.segments[1]!.parts?.map((part) => [part.uri, part.duration, part.independent]),
    [0, 1, 2, 3].map((part) => [`hifi/41-2.${part}.ts`, 0.5, true]),
  );
  t.same(manifest.preloadSegment?.parts?.map((part) => part.uri), ['hifi/42-2.0.ts']);
  t.same(manifest.preloadSegment?.preloadHints, [{ type: 'PART', uri: 'hifi/42-2.1.ts' }]);
  t.same(manifest.renditionReports, [{ uri: 'fip_lofi.m3u8', lastMsn: 42, lastPart: 0 }]);
});

t.test('a delta update reads back with its skipped segments', async (t) => {
  const { manifest, warnings } = parsePlaylist(marshalMediaPlaylist({ ...LOW_LATENCY, skip: { skippedSegments: 1 }, segments: LOW_LATENCY.segments.slice(1) }));
  t.strictSame(warnings, []);
  t.same(manifest.skip, { skippedSegments: 1 });
  t.same(
    manifest.segments.map((segment) => segment.uri),
    ['hifi/41-2.ts'],
  );
});

t.test('a VOD playlist reads back complete', async (t) => {
  const { manifest, warnings } = parsePlaylist(
    marshalMediaPlaylist({
      version: 3,
      targetDuration: 1,
      playlistType: 'VOD',
      mediaSequence: 0,
      discontinuitySequence: 0,
      segments: [{ uri: 's/1.ts', durationSeconds: 0.98133, discontinuity: false, programDateTime: NOON, parts: [] }],
      preloadHints: [],
      renditionReports: [],
      endList: true,
    }),
  );
  t.strictSame(warnings, []);
  t.equal(manifest.playlistType, 'VOD');
  t.equal(manifest.endList, true);
  t.same(
    manifest.segments.map((segment) => segment.duration),
    [0.98133],
  );
});

t.test('a master playlist reads back with BANDWIDTH, AVERAGE-BANDWIDTH and CODECS', async (t) => {
  const { manifest, warnings } = parsePlaylist(
    marshalMasterPlaylist({
      version: 3,
      independentSegments: true,
      variants: [
        { uri: 'fip_lofi.m3u8', bandwidth: 35118, averageBandwidth: 34003, codecs: 'mp4a.40.2' },
        { uri: 'fip_hifi.m3u8', bandwidth: 201600, codecs: 'mp4a.40.2' },
      ],
    }),
  );
  t.strictSame(warnings, []);
  t.equal(manifest.independentSegments, true);
  t.same(
    manifest.playlists?.map((variant) => [variant.uri, variant.attributes.BANDWIDTH, variant.attributes['AVERAGE-BANDWIDTH'], variant.attributes.CODECS]),
    [
      ['fip_lofi.m3u8', 35118, '34003', 'mp4a.40.2'],
      ['fip_hifi.m3u8', 201600, undefined, 'mp4a.40.2'],
    ],
  );
});
