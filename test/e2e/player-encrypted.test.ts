/**
 * The player page plays a signed, cbcs-encrypted channel in Chromium
 * (docs/architecture.md, "Player page and encrypted channels"): a real `onair start` (test/helpers/live-cbcs.ts:
 * FFmpeg's tone over SRT, a new key every 2 segments, ClearKey EXT-X-KEY tags, and the MPD's
 * dashif:Laurl from `mpdLicenseBaseUrl`).
 * - Without a token, Play says the channel needs one, and nothing of the channel is fetched.
 * - With `?token=` on the page's address (moved into the fragment at once), the page loads
 *   hls.js's full build from the origin and plays through EME ClearKey, licensed by the
 *   channel's route: media time advances, no error; then through DASH (dash.js's full build).
 * - dash.js's full build, as the origin serves it, plays the MPD with no setProtectionData:
 *   its license URL (and token) come from the MPD's dashif:Laurl.
 */
import t from 'tap';
import { launchChromium, PlayerPage, playDashInPage } from '../helpers/browser.js';
import { startLiveCbcsChannel } from '../helpers/live-cbcs.js';
import { waitForBody } from '../helpers/onair-harness.js';

const PLAY_SECONDS = 3;

t.test('the player page plays a signed cbcs channel with a token, and says what is missing without one; dash.js plays its MPD by the Laurl alone', async (t) => {
  const { base, token } = await startLiveCbcsChannel(t, { rotation: 2, hlsKeyFormats: ['clearkey'], licenseInMpd: true });
  const browserStarting = launchChromium(t);
  await waitForBody('a media playlist of two key periods', `${base}/fip/fip_hifi.m3u8?token=${token}`, '#EXT-X-KEY:', 2);
  const browser = await browserStarting;

  // Without a token: a clear message, and no request for the channel.
  const bare = await PlayerPage.open(browser, base);
  const bareRequests: string[] = [];
  bare.page.on('request', (request) => bareRequests.push(new URL(request.url()).pathname));
  const row = bare.page.getByRole('listitem').filter({ has: bare.page.getByRole('heading', { name: /^fip\b/ }) });
  await row.locator('.protection').waitFor({ state: 'visible', timeout: 10_000 });
  t.equal(await row.locator('.protection').textContent(), 'Signed: needs a token · encrypted (cbcs, ClearKey)', 'the row says the channel is signed and encrypted');
  await bare.page.getByRole('button', { name: 'Play fip' }).click();
  const alert = bare.page.getByRole('alert');
  await alert.waitFor({ state: 'visible', timeout: 5_000 });
  t.match(await alert.textContent(), /^fip is a signed channel: enter its access token/, 'Play says a token is needed');
  const bareState = await bare.state();
  t.notOk(bareState.playing, 'nothing plays');
  t.equal(bareState.channel, null, 'no channel taken');
  t.notOk(bareRequests.some((path) => path.startsWith('/fip/') || path.endsWith('hls.min.js')), `nothing of fip was asked for: ${bareRequests.join(', ') || 'no request'}`);
  t.equal(await bare.page.evaluate(() => document.activeElement?.id), 'token', 'the Token field has the focus');

  // With ?token= on the page's address: moved into the fragment, and the channel plays through hls.js's full build.
  const requests: { path: string; status: number }[] = [];
  bare.page.on('response', (response) => requests.push({ path: new URL(response.url()).pathname, status: response.status() }));
  await bare.page.goto(`${base}/?token=${token}`);
  await bare.page.locator('#channels li').first().waitFor({ timeout: 10_000 });
  t.equal(new URL(bare.page.url()).search, '', 'the token left the query');
  t.equal(new URL(bare.page.url()).hash, `#token=${token}`, 'for the fragment, which no request carries');
  t.equal(await bare.page.locator('#token').inputValue(), token, 'the Token field holds it');
  const playback = await bare.play('fip', PLAY_SECONDS, 35_000);
  t.same(playback.errors, [], 'no hls.js, CDM, media or page error');
  t.ok(playback.advancedSeconds >= PLAY_SECONDS, `media time advanced ${playback.advancedSeconds.toFixed(2)} s in ${playback.wallSeconds.toFixed(2)} s`);
  t.equal(await bare.page.evaluate(() => (window.onairPlayer as unknown as { hlsBuild: string | null }).hlsBuild), 'full', "hls.js's full build plays");
  t.ok(requests.some(({ path, status }) => path === '/_player/hls/hls.min.js' && status === 200), 'loaded from the origin');
  const licenses = requests.filter(({ path }) => path === '/fip/clearkey').map(({ status }) => status);
  t.ok(licenses.length >= 1 && licenses.every((status) => status === 200), `licenses from the channel's route: ${licenses.join(', ')}`);
  t.notOk(requests.some(({ path }) => path.endsWith('.mpd')), 'through HLS, not DASH');
  await bare.page.getByRole('button', { name: 'Stop fip' }).click();

  // The page's DASH choice: dash.js's full build, from the origin, with the license route as protection data.
  await row.getByLabel('Format of fip').selectOption('dash');
  const overDash = await bare.play('fip', PLAY_SECONDS, 35_000);
  // dash.js looks for the key in the protection data's `clearkeys` before asking the license server, and logs at
  // error level that there is none: its way, not a failure (the license then comes from the route, checked below).
  const dashErrors = overDash.errors.filter((error) => !/\[ProtectionKeyController\] Failed to retrieve clearkeys from ProtectionData/.test(error));
  t.same(dashErrors, [], `DASH: no dash.js, CDM, media or page error (${overDash.errors.length - dashErrors.length} of dash.js's "no clearkeys in the protection data")`);
  t.ok(overDash.advancedSeconds >= PLAY_SECONDS, `DASH: media time advanced ${overDash.advancedSeconds.toFixed(2)} s`);
  t.equal(await bare.page.locator('#format').textContent(), 'DASH', 'played through DASH');
  t.ok(requests.some(({ path, status }) => path === '/_player/dash/dash.all.min.js' && status === 200), "dash.js's full build came from the origin");
  const dashLicensesOfPage = requests.filter(({ path }) => path === '/fip/clearkey').map(({ status }) => status);
  t.ok(dashLicensesOfPage.length > licenses.length && dashLicensesOfPage.every((status) => status === 200), `DASH: licenses from the channel's route too: ${dashLicensesOfPage.join(', ')}`);
  await bare.page.getByRole('button', { name: 'Stop fip' }).click();
  await bare.page.close();

  // dash.js, the full build the origin serves, with no protection data: the MPD's Laurl names the license route, with the token.
  const mpd = await (await fetch(`${base}/fip/fip.mpd?token=${token}`)).text();
  t.match(mpd, `<dashif:Laurl>${base}/fip/clearkey?token=${token}</dashif:Laurl>`, 'the MPD names the license URL with the token');
  const dashPage = await browser.newPage();
  const dashLicenses: number[] = [];
  dashPage.on('response', (response) => {
    if (new URL(response.url()).pathname === '/fip/clearkey') dashLicenses.push(response.status());
  });
  await dashPage.goto(`${base}/time`);
  await dashPage.addScriptTag({ url: `${base}/_player/dash/dash.all.min.js` });
  const dash = await playDashInPage(dashPage, { url: `${base}/fip/fip.mpd?token=${token}`, playSeconds: PLAY_SECONDS, waitMs: 25_000 });
  t.same(dash.errors, [], 'dash.js: no player, CDM or media error');
  t.ok(dash.played >= PLAY_SECONDS, `dash.js played ${dash.played.toFixed(1)} s with no protection data`);
  t.ok(dashLicenses.length >= 1 && dashLicenses.every((status) => status === 200), `dash.js asked the Laurl for licenses: ${dashLicenses.join(', ')}`);
  await dashPage.close();
});
