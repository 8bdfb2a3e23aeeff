/**
 * The player page in a real browser against the real pipeline: FFmpeg sends a tone over SRT,
 * onair packages it (memory store) and serves the page; Debian's Chromium (playwright-core)
 * opens `/`, sees fip live with its renditions, plays it through hls.js, and must hear media
 * time advance in real time, with no hls.js, media or page error, across a quality switch.
 * An fmp4 channel is played through DASH (dash.js, loaded from the origin) and the page shows
 * the codec and bit rate heard.
 */
import type { Browser } from 'playwright-core';
import t, { type Test } from 'tap';
import { PlayerPage, launchChromium } from '../helpers/browser.js';
import { originUrl, RENDITIONS, startRole, startSender, testConfig, waitForThreeSegments } from '../helpers/onair-harness.js';

const PLAY_SECONDS = 5;
const AFTER_SWITCH_SECONDS = 3;
const LOW_LATENCY_PLAY_SECONDS = 8;
const DASH_PLAY_SECONDS = 4;

/** onair with fip fed by FFmpeg over SRT, three segments out, and Chromium starting meanwhile. */
async function startLive(t: Test, options: Parameters<typeof testConfig>[0]): Promise<{ base: string; browserStarting: Promise<Browser> }> {
  const config = await testConfig(options);
  await startRole(t, config, 'start');
  startSender(t, config);
  const base = originUrl(config);
  const browserStarting = launchChromium(t);
  await waitForThreeSegments(base);
  return { base, browserStarting };
}
/** Seconds of audio aired before the DVR test seeks back (the live window is 6 s). */
const DVR_HISTORY_SECONDS = 12;

// The scenarios share nothing but the machine (each its own onair, sender and Chromium): two run at a time.
t.jobs = 2;

t.test('the player page plays fip in Chromium: live, renditions listed, time advancing, no error, quality switch', async (t) => {
  const { base, browserStarting } = await startLive(t, { segmentSeconds: 1 });
  const player = await PlayerPage.open(await browserStarting, base);

  const row = player.page.getByRole('listitem').filter({ has: player.page.getByRole('heading', { name: /^fip\b/ }) });
  await row.getByText('live', { exact: true }).waitFor({ timeout: 10_000 });
  const renditionsText = await row.locator('.renditions').textContent();
  for (const rendition of RENDITIONS) t.match(renditionsText, new RegExp(`\\b${rendition}\\b`), `fip lists ${rendition}`);

  const playback = await player.play('fip', PLAY_SECONDS);
  t.same(playback.errors, [], 'no hls.js, media or page error while starting');
  t.ok(playback.advancedSeconds >= PLAY_SECONDS, `media time advanced ${playback.advancedSeconds.toFixed(2)} s`);
  t.ok(
    playback.advancedSeconds >= 0.8 * playback.wallSeconds,
    `in real time: ${playback.advancedSeconds.toFixed(2)} s of audio in ${playback.wallSeconds.toFixed(2)} s`,
  );
  t.comment(`latency behind the live edge ${playback.latencySeconds?.toFixed(2)} s, by the wall clock ${playback.wallClockLatencySeconds?.toFixed(2)} s`);
  t.ok(playback.latencySeconds !== null && playback.latencySeconds > 0 && playback.latencySeconds < 10, `live latency ${playback.latencySeconds} s`);
  t.match(await player.page.locator('#latency').textContent(), /^\d+\.\d s$/, 'the page shows the latency');
  t.equal(await player.page.getByRole('button', { name: 'Stop fip' }).count(), 1, 'the Play button became Stop');

  const before = await player.state();
  const target = RENDITIONS.find((rendition) => rendition !== before.rendition)!;
  await player.chooseQuality(new RegExp(`^${target} `));
  await player.page.waitForFunction((rendition) => window.onairPlayer.rendition === rendition, target, { timeout: 15_000, polling: 100 });
  const afterSwitch = await player.playFor(AFTER_SWITCH_SECONDS);
  const after = await player.state();
  t.equal(after.rendition, target, `switched from ${before.rendition} to ${target}`);
  t.notOk(after.autoLevel, 'the chosen rendition holds (auto is off)');
  t.ok(afterSwitch.advancedSeconds >= AFTER_SWITCH_SECONDS, `media time advanced ${afterSwitch.advancedSeconds.toFixed(2)} s after the switch`);
  t.same(afterSwitch.errors, [], 'no error across the switch');
  t.match(await player.page.locator('#codec').textContent(), /^mp4a\.40\.2, \d+ kb\/s$/, 'the page shows the codec and bit rate heard');
  t.equal(await player.page.locator('#format').textContent(), 'HLS', 'played through HLS');

  await player.page.getByRole('button', { name: 'Stop fip' }).click();
  const stopped = await player.state();
  t.notOk(stopped.playing, 'Stop stops');
  t.same(await player.errors(), [], 'no error at all');
});

t.test('the player page plays an fmp4 channel through DASH in Chromium and shows its codec', async (t) => {
  const { base, browserStarting } = await startLive(t, { segmentSeconds: 2, channel: { container: 'fmp4' } });
  const player = await PlayerPage.open(await browserStarting, base);
  const requests: string[] = [];
  player.page.on('request', (request) => requests.push(new URL(request.url()).pathname));

  const row = player.page.getByRole('listitem').filter({ has: player.page.getByRole('heading', { name: /^fip\b/ }) });
  await row.getByText('live', { exact: true }).waitFor({ timeout: 10_000 });
  t.match(await row.locator('.renditions').textContent(), /\(mp4a\.40\.2\)/, 'the renditions are listed with their codecs');
  const format = row.getByLabel('Format of fip');
  await format.waitFor({ state: 'visible', timeout: 10_000 });
  t.equal(await format.inputValue(), 'hls', 'HLS by default');
  await format.selectOption('dash');

  const playback = await player.play('fip', DASH_PLAY_SECONDS, 40_000);
  t.same(playback.errors, [], 'no dash.js, media or page error');
  t.ok(playback.advancedSeconds >= DASH_PLAY_SECONDS, `media time advanced ${playback.advancedSeconds.toFixed(2)} s in ${playback.wallSeconds.toFixed(2)} s`);
  t.ok(requests.includes('/_player/dash/dash.mediaplayer.min.js'), 'dash.js came from the origin');
  t.ok(requests.includes('/fip/fip.mpd'), 'the live MPD was loaded');
  t.ok(requests.some((path) => /^\/fip\/[a-z0-9-]+\/.+\.m4s$/.test(path)), 'fMP4 segments were loaded');
  t.notOk(requests.some((path) => path.endsWith('.m3u8')), 'no HLS playlist was loaded');

  await player.page.waitForFunction(() => window.onairPlayer.rendition !== null, undefined, { timeout: 10_000, polling: 100 });
  const heard = await player.page.evaluate(() => {
    const state = window.onairPlayer as unknown as { format: string | null; codecs: string | null; bitrate: number | null; rendition: string | null };
    return { format: state.format, codecs: state.codecs, bitrate: state.bitrate, rendition: state.rendition };
  });
  t.comment(JSON.stringify(heard));
  t.equal(heard.format, 'dash', 'played through DASH');
  t.equal(heard.codecs, 'mp4a.40.2', 'the codec heard');
  t.ok(heard.bitrate !== null && heard.bitrate > 10_000, `its bit rate ${heard.bitrate} b/s`);
  await player.page.waitForFunction(() => document.getElementById('codec')!.textContent !== '–', undefined, { timeout: 5_000, polling: 100 });
  t.match(await player.page.locator('#codec').textContent(), /^mp4a\.40\.2, \d+ kb\/s$/, 'the page shows codec and bit rate');
  t.equal(await player.page.locator('#format').textContent(), 'DASH', 'and the format');

  await player.page.getByRole('button', { name: 'Stop fip' }).click();
  t.notOk((await player.state()).playing, 'Stop stops');
  t.same(await player.errors(), [], 'no error at all');
});

t.test('hls.js in low-latency mode plays an LL-HLS channel in Chromium, loading parts, close to the live edge', async (t) => {
  const { base, browserStarting } = await startLive(t, { segmentSeconds: 2, channel: { lowLatency: true, partSeconds: 0.5 } });
  const player = await PlayerPage.open(await browserStarting, base);
  const partRequests: string[] = [];
  player.page.on('request', (request) => {
    if (/\/\d+-\d+\.\d+\.ts$/.test(request.url())) partRequests.push(request.url());
  });
  const blockingReloads: string[] = [];
  player.page.on('request', (request) => {
    if (request.url().includes('_HLS_msn=')) blockingReloads.push(request.url());
  });

  const playback = await player.play('fip', LOW_LATENCY_PLAY_SECONDS);
  t.same(playback.errors, [], 'no hls.js, media or page error');
  t.ok(playback.advancedSeconds >= LOW_LATENCY_PLAY_SECONDS, `media time advanced ${playback.advancedSeconds.toFixed(2)} s`);
  t.ok(partRequests.length > 0, `hls.js loaded ${partRequests.length} parts`);
  t.ok(blockingReloads.length > 0, `hls.js made ${blockingReloads.length} blocking playlist reloads`);
  // Measured at the end of a steady play: hls.js's own distance to the live edge (what
  // PART-HOLD-BACK sets), and now minus the PROGRAM-DATE-TIME being heard (packager to ear).
  t.comment(`LL-HLS latency behind the live edge ${playback.latencySeconds?.toFixed(2)} s, by the wall clock ${playback.wallClockLatencySeconds?.toFixed(2)} s`);
  t.ok(playback.latencySeconds !== null && playback.latencySeconds < 3, `live latency ${playback.latencySeconds?.toFixed(2)} s < 3 s`);
  t.same(await player.errors(), [], 'no error at all');
});

t.test('hls.js seeks back in the DVR playlist and plays the past', async (t) => {
  const { base, browserStarting } = await startLive(t, { segmentSeconds: 1, channel: { dvrSeconds: 60 } });
  // Let the DVR window grow past the 6-segment live window.
  await new Promise((resolve) => setTimeout(resolve, DVR_HISTORY_SECONDS * 1000));
  const player = await PlayerPage.open(await browserStarting, base);
  const result = await player.page.evaluate(
    async ({ url, seekBackSeconds, playSeconds }) => {
      const Hls = (window as unknown as { Hls: typeof import('hls.js').default }).Hls;
      const media = document.createElement('audio');
      document.body.append(media);
      const hls = new Hls({ lowLatencyMode: false });
      const errors: string[] = [];
      hls.on(Hls.Events.ERROR, (_event, data) => errors.push(`${data.type}/${data.details}${data.fatal ? ' (fatal)' : ''}`));
      hls.loadSource(url);
      hls.attachMedia(media);
      await new Promise<void>((resolve) => hls.once(Hls.Events.LEVEL_LOADED, () => resolve()));
      await media.play();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const seekable = { start: media.seekable.start(0), end: media.seekable.end(media.seekable.length - 1) };
      const target = Math.max(seekable.start + 0.5, media.currentTime - seekBackSeconds);
      media.currentTime = target;
      await new Promise((resolve) => setTimeout(resolve, playSeconds * 1000));
      const result = { seekable, target, after: media.currentTime, edge: seekable.end, errors, paused: media.paused };
      hls.destroy();
      return result;
    },
    { url: `${base}/fip/fip_hifi_dvr.m3u8`, seekBackSeconds: DVR_HISTORY_SECONDS, playSeconds: 3 },
  );
  t.comment(JSON.stringify(result));
  t.ok(result.seekable.end - result.seekable.start > 10, `seekable over ${(result.seekable.end - result.seekable.start).toFixed(1)} s (the live window is 6)`);
  t.ok(result.after > result.target + 1.5, `playing from the seek point: ${result.target.toFixed(1)} → ${result.after.toFixed(1)}`);
  t.ok(result.edge - result.after > DVR_HISTORY_SECONDS / 2, `${(result.edge - result.after).toFixed(1)} s behind the live edge`);
  t.notOk(result.paused, 'still playing');
  t.same(result.errors.filter((error) => error.includes('fatal')), [], 'no fatal hls.js error');
});
