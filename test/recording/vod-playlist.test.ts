/**
 * The VOD playlist of a finished session (src/recording/vod-playlist.ts): expected text,
 * and what a player-side parser (m3u8-parser) makes of it.
 */
import t from 'tap';
import type { RecordedSegment } from '../../src/recording/recording-files.js';
import { renderVodPlaylist } from '../../src/recording/vod-playlist.js';
import { parsePlaylist } from '../helpers/m3u8.js';

const T0 = Date.parse('2026-11-21T23:15:00.000Z');

function segment(msn: number, durationSeconds: number, programDateTime: number): RecordedSegment {
  return { type: 'segment', msn, durationSeconds, programDateTime, fallback: false };
}

t.test('a session renders as a complete VOD playlist with exact EXTINF and PDT', async (t) => {
  const text = renderVodPlaylist('20261121T231500Z', [segment(41, 1.024, T0), segment(42, 0.981333, T0 + 1024), segment(43, 1.002667, T0 + 2005.333)]);
  t.equal(
    text,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:1',
      '#EXT-X-PLAYLIST-TYPE:VOD',
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:15:00.000Z',
      '#EXTINF:1.02400,',
      '20261121T231500Z/41.ts',
      '#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:15:01.024Z',
      '#EXTINF:0.98133,',
      '20261121T231500Z/42.ts',
      '#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:15:02.005Z',
      '#EXTINF:1.00267,',
      '20261121T231500Z/43.ts',
      '#EXT-X-ENDLIST',
      '',
    ].join('\n'),
  );
  const { manifest, warnings } = parsePlaylist(text);
  t.same(warnings, [], 'the parser has nothing to say');
  t.equal(manifest.playlistType, 'VOD');
  t.equal(manifest.endList, true);
  t.equal(manifest.segments.length, 3);
  t.same(manifest.segments.map((parsed) => parsed.duration), [1.024, 0.98133, 1.00267]);
});

t.test('the target duration is the longest EXTINF rounded (RFC 8216 §4.3.3.1)', async (t) => {
  t.match(renderVodPlaylist('20261121T231500Z', [segment(1, 4.010667, T0), segment(2, 3.989333, T0 + 4010)]), /#EXT-X-TARGETDURATION:4\n/);
  t.match(renderVodPlaylist('20261121T231500Z', [segment(1, 0.5, T0)]), /#EXT-X-TARGETDURATION:1\n/);
});

t.test('an empty session has no playlist', async (t) => {
  t.throws(() => renderVodPlaylist('20261121T231500Z', []), RangeError);
});

t.test("an fMP4 session's playlist lists .m4s segments behind EXT-X-MAP, again where the init segment changes", async (t) => {
  const fmp4 = (msn: number, initRun: number): RecordedSegment => ({ ...segment(msn, 1.002667, T0 + msn * 1000), initRun });
  const text = renderVodPlaylist('20261121T231500Z', [fmp4(1, 7), fmp4(2, 7), fmp4(3, 9)]);
  t.match(text, /#EXT-X-VERSION:6\n/, 'EXT-X-MAP needs version 6');
  t.same(
    text.split('\n').filter((line) => line.startsWith('#EXT-X-MAP') || (line !== '' && !line.startsWith('#'))),
    ['#EXT-X-MAP:URI="20261121T231500Z/init-7.mp4"', '20261121T231500Z/1.m4s', '20261121T231500Z/2.m4s', '#EXT-X-MAP:URI="20261121T231500Z/init-9.mp4"', '20261121T231500Z/3.m4s'],
  );
  const { manifest, warnings } = parsePlaylist(text);
  t.same(warnings, []);
  t.same(manifest.segments.map((parsed) => parsed.map?.uri), ['20261121T231500Z/init-7.mp4', '20261121T231500Z/init-7.mp4', '20261121T231500Z/init-9.mp4']);
});
