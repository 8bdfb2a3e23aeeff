/**
 * `hlsKeyFormats` of cbcs channels (docs/architecture.md, "ClearKey playlists and licenses"): the EXT-X-KEY tags of
 * each key period in the configured formats, `clearkey` (KEYFORMAT="org.w3.clearkey", the
 * period's KID as a data: URI, KEYFORMATVERSIONS="1") beside or instead of `identity`, written
 * wherever the key tag is: the first segment listed, each rotation, after a discontinuity,
 * after EXT-X-SKIP in a delta update, in the DVR playlist and before the segment being made.
 * Without the key the playlists are exactly those of before.
 */
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { renderChannelPlaylists } from '../../src/hls/channel-playlists.js';
import { parseMediaPlaylist, marshalMediaPlaylist } from '../../src/hls/playlist/index.js';
import { cbcsKeyIdOf } from '../../src/hls/segment-encryption.js';
import type { ChannelState } from '../../src/hls/sequence-state.js';
import { readPlaylistPosition } from '../../src/origin/playlist-position.js';
import { rawTestChannel } from '../helpers/channel-config.js';

const LOW_LATENCY = { partCount: 2, partTargetSeconds: 0.5 };

function channelWith(hlsKeyFormats: string[] | undefined) {
  const overrides = {
    container: 'fmp4',
    access: 'signed',
    encryption: 'cbcs',
    keyRotationSegments: 2,
    lowLatency: true,
    partSeconds: 0.5,
    dvrSeconds: 60,
    renditions: [{ id: 'hifi', bitrate: '128k' }],
    ...(hlsKeyFormats ? { hlsKeyFormats } : {}),
  };
  return resolveConfig({ hls: { segmentSeconds: 1 }, signing: { key: 'an-hmac-key-of-thirty-two-characters!' }, channels: [rawTestChannel(overrides)] }).channels[0]!;
}

function segment(msn: number) {
  return { msn, run: 7, durationSeconds: 1, programDateTime: 1_767_225_600_000 + msn * 1000, discontinuity: msn === 13, bytes: { hifi: 16000 }, parts: [0.5, 0.5] };
}

/** Segments 10–18 live (a discontinuity at 13), 8–18 in the DVR window, and the first part of 20 (key period 10) being made. */
function state(): ChannelState {
  const window = [10, 11, 12, 13, 14, 15, 16, 17, 18].map(segment);
  return {
    version: 1,
    targetDuration: 1,
    nextMsn: 20,
    discontinuitySequence: 0,
    nextPts: 0,
    window: [...window, { ...segment(19), parts: [0.5, 0.5] }],
    bandwidth: {},
    open: { msn: 20, run: 7, discontinuity: false, programDateTime: 1_767_225_620_000, parts: [0.5] },
    dvr: [8, 9, ...window.map((entry) => entry.msn), 19].map(segment),
  };
}

function kidUri(keyId: number): string {
  return `data:text/plain;base64,${Buffer.from(cbcsKeyIdOf('fip', keyId)).toString('base64')}`;
}

function clearKeyTag(keyId: number): string {
  return `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="${kidUri(keyId)}",IV=0x${keyId.toString(16).padStart(32, '0')},KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`;
}

function identityTag(keyId: number): string {
  return `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key-${keyId}.key",IV=0x${keyId.toString(16).padStart(32, '0')},KEYFORMAT="identity"`;
}

const render = (formats: string[] | undefined) => renderChannelPlaylists(channelWith(formats), state(), { run: 7, lowLatency: LOW_LATENCY });

t.test('[clearkey]: the delta update after EXT-X-SKIP, golden', async (t) => {
  const delta = render(['clearkey'])['fip_hifi.delta.m3u8']!;
  t.equal(
    delta,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:9',
      '#EXT-X-TARGETDURATION:1',
      '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6,HOLD-BACK=3,PART-HOLD-BACK=1.50000',
      '#EXT-X-PART-INF:PART-TARGET=0.50000',
      '#EXT-X-MEDIA-SEQUENCE:10',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-SKIP:SKIPPED-SEGMENTS=5',
      `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="${kidUri(7)}",IV=0x00000000000000000000000000000007,KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`,
      '#EXT-X-MAP:URI="hifi/init-7-k7.mp4"',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:15.000Z',
      '#EXTINF:1.00000,',
      'hifi/15-7.m4s',
      clearKeyTag(8),
      '#EXT-X-MAP:URI="hifi/init-7-k8.mp4"',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:16.000Z',
      '#EXTINF:1.00000,',
      'hifi/16-7.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:17.000Z',
      '#EXT-X-PART:DURATION=0.50000,URI="hifi/17-7.0.m4s",INDEPENDENT=YES',
      '#EXT-X-PART:DURATION=0.50000,URI="hifi/17-7.1.m4s",INDEPENDENT=YES',
      '#EXTINF:1.00000,',
      'hifi/17-7.m4s',
      clearKeyTag(9),
      '#EXT-X-MAP:URI="hifi/init-7-k9.mp4"',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:18.000Z',
      '#EXT-X-PART:DURATION=0.50000,URI="hifi/18-7.0.m4s",INDEPENDENT=YES',
      '#EXT-X-PART:DURATION=0.50000,URI="hifi/18-7.1.m4s",INDEPENDENT=YES',
      '#EXTINF:1.00000,',
      'hifi/18-7.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:19.000Z',
      '#EXT-X-PART:DURATION=0.50000,URI="hifi/19-7.0.m4s",INDEPENDENT=YES',
      '#EXT-X-PART:DURATION=0.50000,URI="hifi/19-7.1.m4s",INDEPENDENT=YES',
      '#EXTINF:1.00000,',
      'hifi/19-7.m4s',
      clearKeyTag(10),
      '#EXT-X-MAP:URI="hifi/init-7-k10.mp4"',
      '#EXT-X-PART:DURATION=0.50000,URI="hifi/20-7.0.m4s",INDEPENDENT=YES',
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="hifi/20-7.1.m4s"',
      '',
    ].join('\n'),
  );
  t.equal(kidUri(7).length, 'data:text/plain;base64,'.length + 24, 'the URI carries the 16-byte KID');
});

t.test('[identity, clearkey]: both tags, identity first, wherever the key tag goes (live, delta, DVR, the segment being made)', async (t) => {
  const playlists = render(['identity', 'clearkey']);
  const tagsOf = (text: string) => text.split('\n').filter((line) => line.startsWith('#EXT-X-KEY'));
  const expectPeriods = (keyIds: number[]) => keyIds.flatMap((keyId) => [identityTag(keyId), clearKeyTag(keyId)]);
  t.same(tagsOf(playlists['fip_hifi.m3u8']!), expectPeriods([5, 6, 6, 7, 8, 9, 10]), 'live: first segment, rotations, the discontinuity at 13, the open segment');
  t.same(tagsOf(playlists['fip_hifi.delta.m3u8']!), expectPeriods([7, 8, 9, 10]), 'delta: again after EXT-X-SKIP');
  t.same(tagsOf(playlists['fip_hifi_dvr.m3u8']!), expectPeriods([4, 5, 6, 6, 7, 8, 9]), 'DVR');
  t.ok(playlists['fip_hifi.m3u8']!.includes(`${identityTag(10)}\n${clearKeyTag(10)}\n#EXT-X-MAP:URI="hifi/init-7-k10.mp4"\n#EXT-X-PART:DURATION=0.50000,URI="hifi/20-7.0.m4s"`), 'before the parts of the segment being made');
  const [clearKeyFirst] = tagsOf(render(['clearkey', 'identity'])['fip_hifi.m3u8']!);
  t.equal(clearKeyFirst, clearKeyTag(5), 'in the configured order');
});

t.test('the playlists read back whole (the origin reads them for blocking reloads)', async (t) => {
  for (const formats of [['clearkey'], ['identity', 'clearkey']]) {
    for (const [name, text] of Object.entries(render(formats))) {
      if (!name.endsWith('.m3u8') || name === 'fip.m3u8') continue;
      t.equal(marshalMediaPlaylist(parseMediaPlaylist(text)), text, `${formats.join(',')} ${name}`);
    }
    const position = readPlaylistPosition(render(formats)['fip_hifi.m3u8']!);
    t.equal(position?.lastSegmentMsn, 19, `${formats.join(',')}: the blocking reload position is read`);
  }
});

t.test('without hlsKeyFormats, or with [identity], the playlists are exactly those of before', async (t) => {
  const before = render(undefined);
  t.same(render(['identity']), before);
  t.notMatch(before['fip_hifi.m3u8']!, /clearkey|data:/);
  t.equal(before['fip_hifi.m3u8']!.split('\n').filter((line) => line.startsWith('#EXT-X-KEY')).join('\n'), [5, 6, 6, 7, 8, 9, 10].map(identityTag).join('\n'));
});
