/**
 * The names onair publishes (src/hls/published-names.ts): each format reads back through
 * its parser, the route patterns accept exactly what the parsers accept, and names that
 * are not ours are refused.
 */
import t from 'tap';
import {
  deltaPlaylistName,
  dvrPlaylistName,
  INIT_SEGMENT_NAME_PATTERN,
  initSegmentName,
  initSegmentUri,
  masterPlaylistName,
  MEDIA_FILE_NAME_PATTERN,
  mediaPlaylistName,
  parseInitSegmentName,
  parsePlaylistName,
  parseSegmentName,
  parseSegmentUri,
  partName,
  partUri,
  PLAYLIST_NAME_PATTERN,
  SEGMENT_NAME_PATTERN,
  segmentExtension,
  segmentName,
  segmentUri,
} from '../../src/hls/published-names.js';
import { newRunId, partName as partNameFromState, segmentName as segmentNameFromState } from '../../src/hls/sequence-state.js';

t.test('segment and part names format as {msn}-{run}[.{part}].ts and read back', async (t) => {
  t.equal(segmentName(1234, 3), '1234-3.ts');
  t.equal(partName(1234, 3, 2), '1234-3.2.ts');
  t.equal(segmentUri('hifi', 0, 0), 'hifi/0-0.ts');
  t.equal(partUri('hifi', 7, 1, 0), 'hifi/7-1.0.ts');
  for (const [msn, run, part] of [
    [0, 0, undefined],
    [1234, 3, undefined],
    [1234, 3, 2],
    [2 ** 49, 999_999_999_999_999, 9999],
    [315_360_000, newRunId(Date.UTC(2026, 0, 1), 417), 3], // today's names: a wall-clock MSN, a run id of 16 digits
    [0, Number.MAX_SAFE_INTEGER, undefined],
  ] as const) {
    const name = part === undefined ? segmentName(msn, run) : partName(msn, run, part);
    t.strictSame(parseSegmentName(name), part === undefined ? { msn, run } : { msn, run, part }, name);
  }
  t.strictSame(parseSegmentUri('hifi/12-3.4.ts'), { rendition: 'hifi', msn: 12, run: 3, part: 4 });
  t.equal(segmentName(315_360_000, newRunId(Date.UTC(2026, 0, 1), 417)), '315360000-1767225600000417.ts');
  t.equal(segmentNameFromState, segmentName, 'sequence-state.ts still exports segmentName');
  t.equal(partNameFromState, partName, 'sequence-state.ts still exports partName');
});

t.test("an MP3 rendition's names end in .mp3 and read back the same", async (t) => {
  t.equal(segmentExtension({ codec: 'mp3' }), 'mp3');
  t.equal(segmentExtension({ codec: 'aac' }), 'ts');
  t.equal(segmentExtension({}), 'ts');
  t.equal(segmentName(1234, 3, 'mp3'), '1234-3.mp3');
  t.equal(partName(1234, 3, 2, 'mp3'), '1234-3.2.mp3');
  t.equal(segmentUri('midfi', 7, 1, 'mp3'), 'midfi/7-1.mp3');
  t.equal(partUri('midfi', 7, 1, 0, 'mp3'), 'midfi/7-1.0.mp3');
  t.strictSame(parseSegmentName('1234-3.mp3'), { msn: 1234, run: 3 });
  t.strictSame(parseSegmentUri('midfi/12-3.4.mp3'), { rendition: 'midfi', msn: 12, run: 3, part: 4 });
  for (const name of ['1-3.mp4', '1-3.MP3', '1-3.mp3.ts', '1-3.ts.mp3', '1-3.aac']) {
    t.equal(parseSegmentName(name), undefined, name);
    t.notMatch(name, new RegExp(SEGMENT_NAME_PATTERN), `${name}: the route refuses it too`);
  }
});

t.test("an fMP4 channel's segments and parts end in .m4s, its init segments are init-{run}.mp4, and they read back", async (t) => {
  t.equal(segmentExtension({ codec: 'aac' }, 'fmp4'), 'm4s');
  t.equal(segmentExtension({ codec: 'mp3' }, 'fmp4'), 'm4s', 'MP3 renditions of an fMP4 channel are CMAF too');
  t.equal(segmentExtension({ codec: 'mp3' }, 'ts'), 'mp3');
  t.equal(segmentName(1234, 1767225600000417, 'm4s'), '1234-1767225600000417.m4s');
  t.equal(partUri('hifi', 7, 1, 3, 'm4s'), 'hifi/7-1.3.m4s');
  t.strictSame(parseSegmentName('1234-3.m4s'), { msn: 1234, run: 3 });
  t.strictSame(parseSegmentUri('hifi/12-3.4.m4s'), { rendition: 'hifi', msn: 12, run: 3, part: 4 });
  t.equal(initSegmentName(1767225600000417), 'init-1767225600000417.mp4');
  t.equal(initSegmentUri('hifi', 3), 'hifi/init-3.mp4');
  t.equal(initSegmentName(3, 7), 'init-3-k7.mp4', "a cbcs channel's init of key period 7");
  t.equal(initSegmentUri('hifi', 3, 7), 'hifi/init-3-k7.mp4');
  t.match('init-3-k7.mp4', new RegExp(INIT_SEGMENT_NAME_PATTERN), 'the origin routes it');
  t.notMatch('init-3-k.mp4', new RegExp(INIT_SEGMENT_NAME_PATTERN));
  t.equal(parseInitSegmentName('init-1767225600000417.mp4'), 1767225600000417);
  t.equal(parseInitSegmentName('init-0.mp4'), 0);
  const media = new RegExp(MEDIA_FILE_NAME_PATTERN);
  t.match('init-3.mp4', media, 'the segment route admits init segments');
  t.match('12-3.4.m4s', media, 'and .m4s parts');
  t.match('12-3.ts', media, 'and everything it admitted before');
  for (const name of ['init-03.mp4', 'init-3.m4s', 'init.mp4', 'init-3.mp4.ts', 'xinit-3.mp4', 'init-3.mp4x', 'init-12345678901234567.mp4', '3.mp4', '1-3.mp4', '1-3.M4S', '1-3.m4s.ts']) {
    t.equal(parseInitSegmentName(name), undefined, name);
    t.equal(parseSegmentName(name), undefined, name);
    t.notMatch(name, media, `${name}: the route refuses it`);
  }
  t.equal(parseInitSegmentName('init-9007199254740992.mp4'), undefined, 'a run past 2^53 - 1 is refused');
  t.notMatch('init-3.mp4', new RegExp(SEGMENT_NAME_PATTERN), 'an init segment is no segment: never held as a preload hint');
  t.match('init-3.mp4', new RegExp(INIT_SEGMENT_NAME_PATTERN));
});

t.test('names that are not a canonical segment or part are refused', async (t) => {
  for (const name of ['01-3.ts', '1-03.ts', '1-3.01.ts', '1-3.10000.ts', '1-3', '1.ts', '-1-3.ts', '1-3.ts.ts', '1234567890123456-1.ts', '1-12345678901234567.ts', 'a-b.ts', '1-3.2.1.ts']) {
    t.equal(parseSegmentName(name), undefined, name);
    t.notMatch(name, new RegExp(SEGMENT_NAME_PATTERN), `${name}: the route refuses it too`);
  }
  // 16 digits pass the route's pattern, but a run at or past 2^53 is not one onair makes.
  t.equal(parseSegmentName('1-9007199254740992.ts'), undefined, 'a run id past 2^53 - 1 is refused');
  for (const uri of ['12-3.ts', '/12-3.ts', 'HiFi/12-3.ts', 'a/b/12-3.ts']) t.equal(parseSegmentUri(uri), undefined, uri);
});

t.test('playlist names format and read back with their kind', async (t) => {
  const media = mediaPlaylistName('fip', 'hifi');
  const table: [string, ReturnType<typeof parsePlaylistName>][] = [
    [masterPlaylistName('fip'), { kind: 'master', channel: 'fip' }],
    [media, { kind: 'media', channel: 'fip', rendition: 'hifi' }],
    [dvrPlaylistName('fip', 'hifi'), { kind: 'dvr', channel: 'fip', rendition: 'hifi' }],
    [deltaPlaylistName(media), { kind: 'delta', channel: 'fip', rendition: 'hifi' }],
    ['fip_dvr.m3u8', { kind: 'media', channel: 'fip', rendition: 'dvr' }],
    ['fip_dvr_dvr.m3u8', { kind: 'dvr', channel: 'fip', rendition: 'dvr' }],
  ];
  t.same(
    table.map(([name]) => name),
    ['fip.m3u8', 'fip_hifi.m3u8', 'fip_hifi_dvr.m3u8', 'fip_hifi.delta.m3u8', 'fip_dvr.m3u8', 'fip_dvr_dvr.m3u8'],
  );
  for (const [name, parsed] of table) t.strictSame(parsePlaylistName(name), parsed, name);
});

t.test('playlist names onair does not publish are refused; the route admits no delta name', async (t) => {
  const pattern = new RegExp(PLAYLIST_NAME_PATTERN);
  for (const name of ['fip', 'fip.m3u', 'Fip.m3u8', 'fip_.m3u8', '_hifi.m3u8', 'fip_hifi_live.m3u8', 'fip_a_b_dvr.m3u8', 'fip.delta.m3u8', 'fip_hifi_dvr.delta.m3u8', `${'a'.repeat(33)}.m3u8`]) {
    t.equal(parsePlaylistName(name), undefined, name);
    t.notMatch(name, pattern, `${name}: the route refuses it too`);
  }
  t.notMatch('fip_hifi.delta.m3u8', pattern, 'a delta update is reached through ?_HLS_skip=YES only');
  for (const name of ['fip.m3u8', 'fip_hifi.m3u8', 'fip_hifi_dvr.m3u8']) t.match(name, pattern, name);
});
