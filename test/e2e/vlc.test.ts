/**
 * VLC 3 plays a live channel: FFmpeg pushes a test tone over SRT, onair packages it, and cvlc
 * (as an unprivileged user: it refuses root) plays one rendition's media playlist for 20 s
 * with its audio going to a WAV file: 32k and 192k with 4 s segments, and 192k as LL-HLS.
 * VLC clocks audio by the PCR and hands an audio PES on only once it is complete, so the
 * PCR layout decides whether it drops audio: with a long PES and the PCR at its PTS it drops
 * most of the audio as "buffer too late"; with a lead longer than a segment it re-buffers at
 * every segment. Asserts no timestamp, buffering or decoder error line in VLC's -vv log (see
 * DECODER_ERROR in test/helpers/vlc.ts) and at least 18 s of decoded audio.
 *
 * The three plays are independent (each its own onair, sender and VLC on free ports) and run at
 * the same time, so the file takes one play's time, not three.
 *
 * The master playlist is not played here: VLC starts on its first rendition and switches
 * renditions after one segment, restarting its decoder, and in some runs discards what the
 * first decoder held (about a second) and logs "Timestamp conversion failed", with any PCR
 * layout, the old one included; that is VLC's adaptive start-up, not the stream's clock.
 */
import t from 'tap';
import { originUrl, playlistSegmentCount, startRole, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { DEMO_RENDITIONS } from '../../src/demo.js';
import { playWithVlc, vlcUnavailable } from '../helpers/vlc.js';

const PLAY_SECONDS = 20;
const MINIMUM_AUDIO_SECONDS = 18;

const unavailable = vlcUnavailable();
if (unavailable) t.fail(unavailable);

// The CASES run at once: they share nothing but the machine.
t.jobs = 3;

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
