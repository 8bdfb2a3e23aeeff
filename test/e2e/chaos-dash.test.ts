/**
 * DASH players across chaos (docs/architecture.md, "MPEG-DASH manifests" and "Failure model"):
 * dash.js and shaka-player, each in its own Chromium page, play the live MPD of a
 * `container: fmp4` channel while (1) its main input is killed (the backup takes over) and then
 * (2) the leading packager is SIGKILLed (the standby `onair ingest` takes over on the same
 * redis-server, which starts a new Period). Each player must raise no error, keep its media
 * time advancing (no stall of more than a few seconds) and play past the new Period's start.
 *
 * A Period's start is the wall-clock time of its first segment (availabilityStartTime is the
 * Unix epoch), and both players present media on that timeline, so `currentTime` past the new
 * Period's `start` means the player is in it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { resolveConfig } from '../../src/config/load-config.js';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { launchChromium } from '../helpers/browser.js';
import { BACKUP_HZ, leaderPid, MAIN_HZ, startToneSender, watchStatus } from '../helpers/chaos.js';
import { openDashPage } from '../helpers/dash-page.js';
import { loopbackSettings, originUrl, startRole, waitFor, waitForThreeSegments } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { freeUdpPort } from '../helpers/ports.js';
import { startRedisServer } from '../helpers/redis-server.js';

const READY = /"msg":"ingest started"/;
/** Longest wall-clock stretch a player's media time may stand still once playing. */
const MAX_STALL_MS = 5000;
/** Media seconds each player must play, all told. */
const MIN_PLAYED_SECONDS = 20;

interface PlayerState {
  time: number;
  /** For failure messages: the media element and page at that instant. */
  detail?: string;
  errors: string[];
  periods: string[];
}

declare global {
  interface Window {
    playerState: () => PlayerState;
  }
}

/** One fmp4 channel, one rendition (2 cores), `inputs` SRT listeners. */
async function dashConfig(store: string, inputs: string[]): Promise<OnairConfig> {
  const configured = [];
  for (const id of inputs) configured.push({ id, url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { latency: 120, passphrase: 'onair-test-passphrase' } });
  return resolveConfig({
    store,
    ...(await loopbackSettings(2)),
    channels: [{ id: 'fip', container: 'fmp4', renditions: [{ id: 'hifi', bitrate: '128k' }], inputs: configured, recoverSeconds: 3 }],
  });
}


async function startDashJs(page: Page, url: string): Promise<void> {
  await page.evaluate((url) => {
    const errors: string[] = [];
    const periods: string[] = [];
    const audio = document.createElement('audio');
    document.body.append(audio);
    audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
    const player = window.dashjs.MediaPlayer().create();
    const events = window.dashjs.MediaPlayer.events;
    player.on(events.ERROR, (event: { error?: unknown }) => errors.push(`dash.js: ${JSON.stringify(event.error ?? event)}`));
    player.on(events.PERIOD_SWITCH_COMPLETED, (event: { toStreamInfo?: { id?: string } | null }) => periods.push(String(event.toStreamInfo?.id)));
    player.initialize(audio, url, true);
    window.playerState = () => ({ time: audio.currentTime, errors: [...errors], periods: [...periods], detail: `${audio.readyState}/${audio.paused ? 'paused' : 'playing'}/${document.visibilityState} buffered ${Array.from({ length: audio.buffered.length }, (_, i) => `${audio.buffered.start(i).toFixed(1)}-${audio.buffered.end(i).toFixed(1)}`).join(',')}` });
  }, url);
}

async function startShaka(page: Page, url: string): Promise<void> {
  await page.evaluate(async (url) => {
    const errors: string[] = [];
    const periods: string[] = [];
    const audio = document.createElement('audio');
    audio.autoplay = true;
    document.body.append(audio);
    audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
    // shaka-player's compiled build has no typings on window here.
    const shaka = (window as unknown as { shaka: any }).shaka;
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    player.addEventListener('error', (event: { detail?: { code?: number; data?: unknown } }) => errors.push(`shaka: ${event.detail?.code} ${JSON.stringify(event.detail?.data ?? null).slice(0, 500)}`));
    window.playerState = () => ({ time: audio.currentTime, errors: [...errors], periods: [...periods], detail: `${audio.readyState}/${audio.paused ? 'paused' : 'playing'}/${document.visibilityState} buffered ${Array.from({ length: audio.buffered.length }, (_, i) => `${audio.buffered.start(i).toFixed(1)}-${audio.buffered.end(i).toFixed(1)}`).join(',')}` });
    await player.attach(audio);
    await player.load(url).catch((error: { code?: number; data?: unknown }) => errors.push(`shaka load: ${error.code} ${JSON.stringify(error.data ?? null).slice(0, 500)}`));
  }, url);
}

/** Samples each page's state every 500 ms until stopped: the longest stall once playing, the last state. */
function watchPlayer(t: Test, page: Page) {
  let stopped = false;
  let last: PlayerState = { time: 0, errors: [], periods: [] };
  let firstTime: number | undefined;
  let advancedAt: number | undefined;
  let maxStallMs = 0;
  const loop = (async () => {
    while (!stopped) {
      const state = await page.evaluate(() => window.playerState()).catch(() => undefined);
      const now = Date.now();
      if (state) {
        if (state.time > 0 && firstTime === undefined) firstTime = state.time;
        if (state.time > last.time) advancedAt = now;
        else if (advancedAt !== undefined) maxStallMs = Math.max(maxStallMs, now - advancedAt);
        last = state;
      }
      await sleep(500);
    }
  })();
  t.teardown(async () => {
    stopped = true;
    await loop;
  });
  return {
    state: () => last,
    played: () => (firstTime === undefined ? 0 : last.time - firstTime),
    maxStallMs: () => maxStallMs,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** The Periods of the live MPD: id and start (seconds since the epoch). */
async function mpdPeriods(url: string): Promise<{ id: string; start: number }[]> {
  const text = await (await fetch(url)).text();
  return [...text.matchAll(/<Period id="([^"]+)" start="PT([0-9.]+)S"/g)].map((match) => ({ id: match[1]!, start: Number(match[2]) }));
}

t.test('dash.js and shaka-player play an fmp4 channel across an input switch and a packager takeover (a new Period)', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const configA = await dashConfig(redis.url, ['main', 'backup']);
  // Packager B: the same channel fed on its own port, as a second packager host would be.
  const configB = await resolveConfig({ ...configA, channels: [{ ...configA.channels[0]!, inputs: (await dashConfig(redis.url, ['main'])).channels[0]!.inputs }] });
  const mainA = startToneSender(t, configA, 0, MAIN_HZ);
  startToneSender(t, configA, 1, BACKUP_HZ);
  startToneSender(t, configB, 0, BACKUP_HZ);
  const origin = await startRole(t, configA, 'origin');
  const status = watchStatus(t, origin.store);
  const browserStarting = launchChromium(t);
  const first = await startOnairProcess(t, { role: 'ingest', config: configA, readyPattern: READY });
  // Should the backup's sender connect first, the main is back on air recoverSeconds after its own.
  await waitFor('packager A leading on its main input', async () => (leaderPid(status.current()?.leader) === first.pid && status.current()?.activeInput === 'main' ? true : undefined), 45_000).catch(
    (error: Error) => Promise.reject(new Error(`${error.message}; status changes: ${JSON.stringify(status.changes)}`)),
  );
  const second = await startOnairProcess(t, { role: 'ingest', config: configB, readyPattern: READY });
  const base = originUrl(configA);
  const mpdUrl = `${base}/fip/fip.mpd`;
  await waitForThreeSegments(base, 40_000);
  t.equal((await mpdPeriods(mpdUrl)).length, 1, 'one Period before the takeover');

  const browser = await browserStarting;
  const dashPage = await openDashPage(browser, base);
  const shakaPage = await openDashPage(browser, base);
  await startDashJs(dashPage.page, mpdUrl);
  await startShaka(shakaPage.page, mpdUrl);
  const players = { 'dash.js': { ...dashPage, watch: watchPlayer(t, dashPage.page) }, 'shaka-player': { ...shakaPage, watch: watchPlayer(t, shakaPage.page) } };
  await waitFor('both players playing', async () => (Object.values(players).every((player) => player.watch.played() > 0.5) ? true : undefined), 40_000).catch((error: Error) =>
    Promise.reject(new Error(`${error.message}: ${Object.entries(players).map(([name, player]) => `${name} ${JSON.stringify({ ...player.watch.state(), page: player.errors })}`).join('; ')}`)),
  );
  await sleep(5000);

  // (1) The main input dies: the backup takes over inside packager A.
  await mainA.close('SIGKILL');
  await waitFor('the backup on air', async () => (status.current()?.activeInput === 'backup' ? true : undefined), 15_000).catch((error: Error) =>
    Promise.reject(new Error(`${error.message}; status changes: ${JSON.stringify(status.changes)}`)),
  );
  await sleep(5000);
  t.comment(`Periods after the input switch: ${(await mpdPeriods(mpdUrl)).map((period) => period.id).join(', ')}`);

  // (2) The leader dies: B takes over and the MPD gains a Period.
  const before = new Set((await mpdPeriods(mpdUrl)).map((period) => period.id));
  first.kill('SIGKILL');
  await first.exited;
  await waitFor('packager B leading', async () => (leaderPid(status.current()?.leader) === second.pid ? true : undefined), 15_000);
  const newPeriod = await waitFor('the takeover’s Period in the MPD', async () => (await mpdPeriods(mpdUrl)).find((period) => !before.has(period.id)), 20_000);
  // Until each player is 4 s into the new Period and has played its 20 s, or a player fails (bounded).
  await waitFor(
    'both players past the new Period',
    async () =>
      Object.values(players).every((player) => player.watch.state().errors.length > 0 || (player.watch.state().time >= newPeriod.start + 4 && player.watch.played() >= MIN_PLAYED_SECONDS))
        ? true
        : undefined,
    40_000,
  ).catch(() => undefined);

  for (const [name, player] of Object.entries(players)) {
    await player.watch.stop();
    const state = player.watch.state();
    t.same([...player.errors, ...state.errors], [], `${name}: no player, media or page error`);
    t.ok(player.watch.played() >= MIN_PLAYED_SECONDS, `${name}: played ${player.watch.played().toFixed(1)} s of media`);
    t.ok(player.watch.maxStallMs() <= MAX_STALL_MS, `${name}: media time stood still at most ${player.watch.maxStallMs()} ms (${state.detail})`);
    t.ok(state.time >= newPeriod.start + 4, `${name}: at ${state.time.toFixed(1)}, 4 s past the new Period ${newPeriod.id} starting at ${newPeriod.start.toFixed(1)}`);
  }
  // dash.js also names the Periods it switched to (shaka-player flattens Periods into one timeline).
  t.ok(players['dash.js'].watch.state().periods.includes(newPeriod.id), `dash.js switched to Period ${newPeriod.id} (switches: ${players['dash.js'].watch.state().periods.join(', ')})`);
});
