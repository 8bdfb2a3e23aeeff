/**
 * hls.js plays a live `encryption: cbcs` channel whose playlists carry the ClearKey EXT-X-KEY
 * (`hlsKeyFormats: [clearkey]`: KEYFORMAT="org.w3.clearkey", the KID as a data: URI) through
 * its EME path in Chromium, across key rotations, its licenses answered by the origin's own
 * ClearKey route (`POST /{ch}/clearkey?token=…`, the channel's token); then dash.js (its
 * protection build) plays the channel's MPD with the same route as its ClearKey server. A real
 * `onair start`, FFmpeg's tone over SRT, a new key every 2 segments.
 * docs/architecture.md, "ClearKey playlists and licenses".
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { launchChromium, playDashInPage } from '../helpers/browser.js';
import { startLiveCbcsChannel } from '../helpers/live-cbcs.js';
import { waitForBody } from '../helpers/onair-harness.js';

// The full build: the light one the player page serves has no EME.
const HLS = readFileSync(new URL('../../node_modules/hls.js/dist/hls.min.js', import.meta.url), 'utf8');
// dash.js's build with its protection controller (the player page's mediaplayer build has none).
const DASH = readFileSync(new URL('../../node_modules/dashjs/dist/modern/umd/dash.all.min.js', import.meta.url), 'utf8');

t.test('hls.js (ClearKey EXT-X-KEY tags) and dash.js (the MPD) play a live cbcs channel across key rotations, licensed by the origin', async (t) => {
  const rotation = 2;
  const { base, token } = await startLiveCbcsChannel(t, { rotation, hlsKeyFormats: ['clearkey'] });
  const browserStarting = launchChromium(t);
  const playlist = await waitForBody('a media playlist of two key periods', `${base}/fip/fip_hifi.m3u8?token=${token}`, '#EXT-X-KEY:', 2);
  t.match(playlist, /#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text\/plain;base64,[A-Za-z0-9+/]{22}==",IV=0x[0-9a-f]{32},KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"\n/, 'the ClearKey tag names the KID');
  t.notMatch(playlist, /KEYFORMAT="identity"/, 'and no identity tag, which hls.js would take for MPEG-TS SAMPLE-AES');

  const browser = await browserStarting;
  const page = await browser.newPage();
  const inits = new Set<string>();
  const licenses: number[] = [];
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (/\/init-\d+-k\d+\.mp4$/.test(path) && response.status() === 200) inits.add(path);
    if (path === '/fip/clearkey') licenses.push(response.status());
  });
  await page.goto(`${base}/time`);
  await page.addScriptTag({ content: HLS });
  const result = await page.evaluate(
    async ({ url, licenseUrl, playSeconds, waitMs }) => {
      const errors: string[] = [];
      const notes: string[] = [];
      const audio = document.createElement('audio');
      audio.muted = true;
      document.body.append(audio);
      audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
      const Hls = (window as unknown as { Hls: any }).Hls; // eslint-disable-line @typescript-eslint/no-explicit-any
      const hls = new Hls({ emeEnabled: true, drmSystems: { 'org.w3.clearkey': { licenseUrl } }, lowLatencyMode: false });
      hls.on(Hls.Events.ERROR, (_: unknown, data: { fatal: boolean; type: string; details: string; error?: Error }) => {
        const text = `${data.type} ${data.details}${data.error ? `: ${data.error.message}` : ''}`;
        if (data.fatal) errors.push(`fatal ${text}`);
        else notes.push(text);
      });
      hls.attachMedia(audio);
      hls.loadSource(url);
      // Not awaited: it stays pending while nothing plays, and the loop below is the bound.
      void audio.play().catch((error: unknown) => errors.push(`play: ${String(error)}`));
      const deadline = Date.now() + waitMs;
      let started: number | undefined;
      // Bounded: until playSeconds of audio have played (or a fatal error, or the deadline).
      while (Date.now() < deadline && errors.length === 0) {
        if (started === undefined && audio.currentTime > 0) started = audio.currentTime;
        if (started !== undefined && audio.currentTime - started >= playSeconds) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const played = started === undefined ? 0 : audio.currentTime - started;
      hls.destroy();
      return { played, errors, notes };
    },
    { url: `${base}/fip/fip_hifi.m3u8?token=${token}`, licenseUrl: `${base}/fip/clearkey?token=${token}`, playSeconds: 2 * rotation + 1, waitMs: 35_000 },
  );
  t.same(result.errors, [], `no fatal hls.js, CDM or media error (non-fatal: ${result.notes.join('; ') || 'none'})`);
  t.ok(result.played >= 2 * rotation + 1, `played ${result.played.toFixed(1)} s of the live channel`);
  // 5 s of 2-s key periods span two rotations at least: three periods.
  t.ok(inits.size >= 3, `across two key rotations at least: ${inits.size} key periods' inits fetched`);
  t.ok(licenses.length >= 3 && licenses.every((status) => status === 200), `a license per key period from the origin: ${licenses.join(', ')}`);
  await page.close();

  // dash.js, its ClearKey license server the same route, plays the channel's MPD (a Period per key period).
  const dashPage = await browser.newPage();
  const dashLicenses: number[] = [];
  dashPage.on('response', (response) => {
    if (new URL(response.url()).pathname === '/fip/clearkey') dashLicenses.push(response.status());
  });
  await dashPage.goto(`${base}/time`);
  await dashPage.addScriptTag({ content: DASH });
  const dash = await playDashInPage(dashPage, { url: `${base}/fip/fip.mpd?token=${token}`, licenseUrl: `${base}/fip/clearkey?token=${token}`, playSeconds: 2 * rotation + 1, waitMs: 30_000 });
  t.same(dash.errors, [], 'dash.js: no player, CDM or media error');
  t.ok(dash.played >= 2 * rotation + 1, `dash.js played ${dash.played.toFixed(1)} s of the live MPD`);
  t.ok(dashLicenses.length >= 3 && dashLicenses.every((status) => status === 200), `dash.js: a license per key period from the origin: ${dashLicenses.join(', ')}`);
});
