/**
 * The master playlist of a channel with Opus and FLAC renditions (src/hls/channel-playlists.ts;
 * docs/architecture.md, "Opus and FLAC renditions"): CODECS `opus` and `fLaC`, and a FLAC
 * variant's BANDWIDTH its PCM rate + 5 % until a segment is measured, then the measured peak,
 * which only rises.
 */
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { renderChannelPlaylists } from '../../src/hls/channel-playlists.js';
import { parseMasterPlaylist } from '../../src/hls/playlist/index.js';
import { emptyChannelState, type ChannelState } from '../../src/hls/sequence-state.js';

const config = resolveConfig({
  channels: [
    {
      id: 'hifi',
      container: 'fmp4',
      renditions: [{ id: 'aac', bitrate: '96k' }, { id: 'opus', bitrate: '64k', codec: 'opus' }, { id: 'flac', codec: 'flac' }, { id: 'mp3', bitrate: '128k', codec: 'mp3' }],
      inputs: [{ id: 'main', url: 'srt://127.0.0.1:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }],
    },
  ],
});
const channel = config.channels[0]!;

function master(state: ChannelState) {
  return parseMasterPlaylist(renderChannelPlaylists(channel, state, { run: 1, lowLatency: undefined })['hifi.m3u8']!);
}

t.test('CODECS opus and fLaC beside mp4a.40.2; MP3 left out', async (t) => {
  const variants = master(emptyChannelState(2, 0)).variants;
  t.same(variants.map((variant) => [variant.uri, variant.codecs]), [['hifi_aac.m3u8', 'mp4a.40.2'], ['hifi_opus.m3u8', 'opus'], ['hifi_flac.m3u8', 'fLaC']]);
  t.equal(variants[2]!.bandwidth, Math.round(48000 * 2 * 16 * 1.05), 'FLAC before a measurement: its PCM rate + 5 %');
});

t.test("FLAC's BANDWIDTH follows the measured peak", async (t) => {
  const state = { ...emptyChannelState(2, 0), bandwidth: { flac: { peak: 912_345, bits: 1_600_000, seconds: 2 } } };
  t.equal(master(state).variants[2]!.bandwidth, 912_345);
});
