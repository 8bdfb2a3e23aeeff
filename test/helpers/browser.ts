/**
 * Browser tests: Debian's Chromium (/usr/bin/chromium, installed by `scripts/setup.sh --test`)
 * driven by playwright-core, closed in teardown even on failure, and `PlayerPage`, onair's
 * player page (GET /) as a listener uses it: play a channel, wait until its media time has
 * advanced, read the live latency and every error the page saw. Built to be reused for
 * latency measurements (LL-HLS against plain HLS).
 */
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { Test } from 'tap';

export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  // Without these Chromium calls Google's servers at start-up, which a test machine may not reach.
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Audio starts after a click anyway; this keeps a slow start inside the activation window.
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Chromium with a fresh profile (playwright makes a temporary --user-data-dir), closed in teardown.
 * `env` replaces its environment, e.g. a HOME whose NSS db (~/.pki/nssdb) trusts a test CA.
 */
export async function launchChromium(t: Test, options: { env?: NodeJS.ProcessEnv } = {}): Promise<Browser> {
  const env = options.env ? Object.fromEntries(Object.entries(options.env).filter((entry): entry is [string, string] => entry[1] !== undefined)) : undefined;
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, ...(env ? { env } : {}) });
  t.teardown(() => browser.close());
  return browser;
}

/** `window.onairPlayer` of the page (src/origin/player/player.js), read at one instant. */
export interface PlayerState {
  channel: string | null;
  playing: boolean;
  currentTime: number;
  /** Seconds behind the playlist's live edge (hls.js `latency`). */
  latency: number | null;
  /** Wall clock minus the PROGRAM-DATE-TIME being heard: end to end when the clocks agree. */
  wallClockLatency: number | null;
  level: number;
  rendition: string | null;
  autoLevel: boolean;
  errors: string[];
}

export interface PlaybackMeasurement {
  /** Media time played between the first frame and the end of the wait. */
  advancedSeconds: number;
  /** Wall-clock seconds the same stretch took: close to advancedSeconds when nothing stalls. */
  wallSeconds: number;
  latencySeconds: number | null;
  wallClockLatencySeconds: number | null;
  /** Errors of the player (hls.js, media, channel list), uncaught page errors and console errors. */
  errors: string[];
}

declare global {
  interface Window {
    onairPlayer: PlayerState;
  }
}

export class PlayerPage {
  private readonly pageErrors: string[] = [];

  private constructor(readonly page: Page) {
    page.on('pageerror', (error) => this.pageErrors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') this.pageErrors.push(`console: ${message.text()} (${message.location().url})`);
    });
  }

  /** Opens `${baseUrl}/` in a new page and waits until the channel list has loaded. */
  static async open(browser: Browser, baseUrl: string): Promise<PlayerPage> {
    const player = new PlayerPage(await browser.newPage());
    await player.page.goto(`${baseUrl}/`);
    await player.page.locator('#channels li').first().waitFor({ timeout: 10_000 });
    return player;
  }

  async state(): Promise<PlayerState> {
    return this.page.evaluate(() => {
      const player = window.onairPlayer;
      return {
        channel: player.channel,
        playing: player.playing,
        currentTime: player.currentTime,
        latency: player.latency,
        wallClockLatency: player.wallClockLatency,
        level: player.level,
        rendition: player.rendition,
        autoLevel: player.autoLevel,
        errors: [...player.errors],
      };
    });
  }

  /** Everything that went wrong so far, in the page or in the player. */
  async errors(): Promise<string[]> {
    return [...this.pageErrors, ...(await this.state()).errors];
  }

  /** Clicks Play on `channel`, then measures as `playFor` does. */
  async play(channel: string, advanceSeconds: number, timeoutMs = 30_000): Promise<PlaybackMeasurement> {
    await this.page.getByRole('button', { name: `Play ${channel}` }).click();
    return this.playFor(advanceSeconds, timeoutMs);
  }

  /**
   * Waits until media is playing, then until its time has advanced by `advanceSeconds`.
   * Returns early (with the errors) as soon as the player reports one; throws on timeout.
   */
  async playFor(advanceSeconds: number, timeoutMs = 30_000): Promise<PlaybackMeasurement> {
    const deadline = Date.now() + timeoutMs;
    await this.explainTimeout(
      'playback to start',
      this.page.waitForFunction(
        () => window.onairPlayer.errors.length > 0 || (window.onairPlayer.playing && window.onairPlayer.currentTime > 0),
        undefined,
        { timeout: timeoutMs, polling: 100 },
      ),
    );
    const start = await this.state();
    const startedAt = Date.now();
    if (start.errors.length === 0) {
      await this.explainTimeout(
        `media time to advance by ${advanceSeconds} s`,
        this.page.waitForFunction(
          (target) => window.onairPlayer.errors.length > 0 || window.onairPlayer.currentTime >= target,
          start.currentTime + advanceSeconds,
          { timeout: Math.max(1, deadline - Date.now()), polling: 100 },
        ),
      );
    }
    const end = await this.state();
    return {
      advancedSeconds: end.currentTime - start.currentTime,
      wallSeconds: (Date.now() - startedAt) / 1000,
      latencySeconds: end.latency,
      wallClockLatencySeconds: end.wallClockLatency,
      errors: [...this.pageErrors, ...end.errors],
    };
  }

  /** A wait that times out throws with the player's state and the page's errors: what a reader of the failure needs. */
  private async explainTimeout(what: string, wait: Promise<unknown>): Promise<void> {
    try {
      await wait;
    } catch (error) {
      const state = await this.state().catch(() => 'unreadable');
      throw new Error(`gave up waiting for ${what}: player ${JSON.stringify(state)}, page errors ${JSON.stringify(this.pageErrors)}`, { cause: error });
    }
  }

  /** Picks an entry of the Quality list by its label, e.g. /^hifi/ or 'auto'. */
  async chooseQuality(label: string | RegExp): Promise<void> {
    const select = this.page.getByLabel('Quality');
    const labels = await select.locator('option').allTextContents();
    const choice = labels.find((text) => (typeof label === 'string' ? text === label : label.test(text)));
    if (choice === undefined) throw new Error(`no quality ${String(label)} among ${labels.join(', ')}`);
    await select.selectOption({ label: choice });
  }
}

/**
 * Plays `url` (a DASH MPD) in dash.js on `page`, which has dash.js loaded, until `playSeconds`
 * of audio have played, an error comes, or `waitMs` pass (bounded); then resets the player.
 * With `licenseUrl`, ClearKey licenses come from it (setProtectionData); without, dash.js uses the
 * MPD's own license URL, if any.
 */
export async function playDashInPage(page: Page, options: { url: string; licenseUrl?: string; playSeconds: number; waitMs: number }): Promise<{ played: number; errors: string[] }> {
  return page.evaluate(
    async ({ url, licenseUrl, playSeconds, waitMs }) => {
      const errors: string[] = [];
      const audio = document.createElement('audio');
      audio.muted = true;
      document.body.append(audio);
      audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
      const dashjs = (window as unknown as { dashjs: any }).dashjs; // eslint-disable-line @typescript-eslint/no-explicit-any
      const player = dashjs.MediaPlayer().create();
      player.on(dashjs.MediaPlayer.events.ERROR, (event: { error?: unknown }) => errors.push(`dash.js: ${JSON.stringify(event.error ?? event).slice(0, 300)}`));
      if (licenseUrl !== undefined) player.setProtectionData({ 'org.w3.clearkey': { serverURL: licenseUrl } });
      player.initialize(audio, url, true);
      const deadline = Date.now() + waitMs;
      let started: number | undefined;
      // Bounded: until playSeconds of audio have played (or an error, or the deadline).
      while (Date.now() < deadline && errors.length === 0) {
        if (started === undefined && audio.currentTime > 0) started = audio.currentTime;
        if (started !== undefined && audio.currentTime - started >= playSeconds) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const played = started === undefined ? 0 : audio.currentTime - started;
      player.reset();
      return { played, errors };
    },
    { url: options.url, licenseUrl: options.licenseUrl, playSeconds: options.playSeconds, waitMs: options.waitMs },
  );
}
