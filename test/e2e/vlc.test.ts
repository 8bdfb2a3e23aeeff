/**
 * VLC 3 plays a live channel from its first second: FFmpeg pushes a test tone over SRT, onair
 * packages it, and cvlc (as an unprivileged user: it refuses root) plays the master playlist
 * for 20 s with its audio going to a WAV file. VLC places every audio block on the clock
 * it recovers from the PCR (ISO/IEC 13818-1 §2.7.2: at most 100 ms apart); with a PCR only
 * every ~2 s it threw the first second away ("Timestamp conversion failed", "Could not
 * convert timestamp … for faad", "buffer deadlock prevented"). Asserts none of those lines
 * and at least 18 s of decoded audio.
 */
import t from 'tap';
import { originUrl, playlistSegmentCount, startRole, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { playWithVlc, vlcUnavailable } from '../helpers/vlc.js';
import { DEMO_RENDITIONS } from '../../src/demo.js';

const PLAY_SECONDS = 20;
const MINIMUM_AUDIO_SECONDS = 18;

const unavailable = vlcUnavailable();
if (unavailable) t.fail(unavailable);

const CASES = [
  { rendition: 'hifi', segmentSeconds: 4, lowLatency: false },
  { rendition: 'lofi', segmentSeconds: 4, lowLatency: false },
  { rendition: 'hifi', segmentSeconds: 2, lowLatency: true },
] as const;

for (const { rendition, segmentSeconds, lowLatency } of CASES) {
  const label = `${rendition} (${DEMO_RENDITIONS.find((entry) => entry.id === rendition)!.bitrate}), ${segmentSeconds} s segments${lowLatency ? ' of 1 s parts' : ''}`;
  t.test(`VLC plays ${label} for ${PLAY_SECONDS} s with no decoder error`, { skip: unavailable !== undefined }, async (t) => {
    const config = await testConfig({
      segmentSeconds,
      ...(lowLatency ? { channel: { lowLatency: true, partSeconds: 1 } } : {}),
    });
    await startRole(t, config, 'start');
    startSender(t, config);
    const base = originUrl(config);
    await waitFor('three segments', async () => ((await playlistSegmentCount(`${base}/fip/fip_${rendition}.m3u8`)) >= 3 ? true : undefined));

    // One rendition's media playlist: VLC's adaptive switching between renditions at start-up
    // restarts its decoder, a separate matter from the PCR this test is about.
    const played = await playWithVlc(`${base}/fip/fip_${rendition}.m3u8`, PLAY_SECONDS);
    t.comment(`VLC exited ${played.code}, ${played.audioSeconds.toFixed(2)} s of audio, ${played.decoderErrors.length} decoder error lines`);
    t.same(played.decoderErrors.slice(0, 10), [], 'VLC logged no timestamp, buffering or decoder error');
    t.ok(played.audioSeconds >= MINIMUM_AUDIO_SECONDS, `VLC wrote ${played.audioSeconds.toFixed(2)} s of audio (≥ ${MINIMUM_AUDIO_SECONDS} s)`);
    t.match(played.log, /using audio decoder module "faad"/, 'VLC decoded AAC with faad');
  });
}
