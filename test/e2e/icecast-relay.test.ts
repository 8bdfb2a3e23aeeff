/**
 * A real Icecast takes onair as its master: Debian's icecast2, configured as a relay
 * (`<relay>` with relay-shoutcast-metadata), pulls onair's progressive mount /fip-hifi.aac and
 * republishes it; FFmpeg (`-icy 1`) listens to the relay, decodes a continuous tone, and reads
 * the StreamTitle that was set on onair, then a changed one, through the relay
 * (docs/architecture.md, "Icecast relay tests and benchmark").
 */
import t from 'tap';
import { displayTitle, serializeNowPlaying, type NowPlaying } from '../../src/media/now-playing.js';
import { icecastSources, icecastUnavailable, startIcecastRelay } from '../helpers/icecast.js';
import { originUrl, startRole, startSender, testConfig, waitFor, waitForThreeSegments } from '../helpers/onair-harness.js';
import { minimumBufferSeconds, startProgressiveListener } from '../helpers/ffmpeg-listener.js';
import { analyseContinuity, describeToneRuns } from '../helpers/tone-continuity.js';
import { sleep } from '../helpers/wait-until.js';

const TONE_HZ = 500;
/** One AAC frame at 48 kHz is 21.3 ms; a silence longer than a frame (with the analysis's 5 ms window) is a gap. */
const ONE_FRAME_MS = 26;
const FIRST: Omit<NowPlaying, 'setAt'> = { artist: 'Relay Test', title: 'First Light' };
const SECOND: Omit<NowPlaying, 'setAt'> = { artist: 'Relay Test', title: "Second Wind (l'été)" };
/** What a StreamTitle carries for SECOND: a single quote would end the value, so it becomes ’ (src/media/icy.ts). */
const SECOND_ON_AIR = displayTitle(SECOND).replace("'", '\u2019');

const unavailable = icecastUnavailable();
if (unavailable) t.fail(unavailable);

t.test('icecast2 relays onair’s /fip-hifi.aac: FFmpeg hears the tone without a break and a StreamTitle set on onair arrives through the relay', { skip: unavailable !== undefined }, async (t) => {
  const config = await testConfig({ segmentSeconds: 1, channel: { icy: { name: 'FIP relay test', genre: 'Eclectic' } } });
  const onair = await startRole(t, config, 'start');
  startSender(t, config, TONE_HZ);
  const base = originUrl(config);
  await waitForThreeSegments(base);
  await onair.store.putNowPlaying('fip', serializeNowPlaying({ ...FIRST, setAt: Date.now() }));

  const relay = await startIcecastRelay(t, { host: config.origin.host, port: config.origin.port, mount: '/fip-hifi.aac' });
  const relayed = await waitFor('icecast2 to list the relayed mount', async () => {
    const source = icecastSources(await relay.status()).find((each) => each.listenurl.endsWith('/fip-hifi.aac'));
    return source?.server_type === undefined ? undefined : source;
  });
  t.equal(relayed.server_type, 'audio/aac', 'icecast2 took the mount’s Content-Type from onair');

  const listener = startProgressiveListener(t, `${relay.url}/fip-hifi.aac`);
  await listener.waitForTitle(displayTitle(FIRST), 15_000);
  await listener.waitForSeconds(6, 15_000);
  const changedAt = Date.now();
  await onair.store.putNowPlaying('fip', serializeNowPlaying({ ...SECOND, setAt: Date.now() }));
  await listener.waitForTitle(SECOND_ON_AIR, 15_000);
  const titleDelayMs = Date.now() - changedAt;
  await sleep(6000);
  const status = icecastSources(await relay.status()).find((each) => each.listenurl.endsWith('/fip-hifi.aac'));
  const heard = await listener.stop();

  t.comment(`the new title reached the relay's listener ${titleDelayMs} ms after it was set on onair`);
  t.same(
    heard.titles.filter((title) => title !== ''),
    [displayTitle(FIRST), SECOND_ON_AIR],
    'FFmpeg read the first title, then the changed one (a quote in a StreamTitle becomes ’), and no other',
  );
  t.equal(status?.title, SECOND_ON_AIR, 'icecast2’s own status shows the title onair sent');
  t.equal(status?.server_name, 'FIP relay test', 'and the station name from onair’s icy-name');
  t.equal(status?.listeners, 1, 'icecast2 counted its one listener');

  // The last second may hold the decoder's flush at SIGTERM: not part of the stream.
  const report = analyseContinuity(heard.pcm.subarray(0, heard.pcm.length - heard.sampleRate), heard.sampleRate, [TONE_HZ]);
  t.ok(report.seconds >= 10, `${report.seconds.toFixed(1)} s of audio decoded through the relay`);
  t.same(report.toneRuns.map((run) => run.tone), [TONE_HZ], `the whole stream is the ${TONE_HZ} Hz tone (${describeToneRuns(report.toneRuns)})`);
  t.ok(report.longestSilenceMs <= ONE_FRAME_MS, `no silence longer than one frame (longest ${report.longestSilenceMs.toFixed(0)} ms)`);
  t.ok(report.beeps.length >= 9, `${report.beeps.length} one-second beeps heard`);
  t.same(report.splices, [], 'every second of the tone is whole: no frame lost or repeated through onair and the relay');
  const buffered = minimumBufferSeconds(heard, 2000);
  t.ok(buffered > 0, `a player would never have run dry (at least ${buffered.toFixed(2)} s buffered after the start)`);
});
