/**
 * DASH players in Chromium: a blank page at `{base}/_dash/` with dash.js and shaka-player
 * (their npm builds), fulfilled by playwright's routing so that the page has the origin's
 * address (relative URLs such as the MPD's UTCTiming `/time` reach the real origin) while
 * everything else it loads (MPDs, segments, /time) goes to the network as usual.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';

const require = createRequire(import.meta.url);
const DASHJS = readFileSync(require.resolve('dashjs'), 'utf8');
const SHAKA = readFileSync(require.resolve('shaka-player'), 'utf8');
const PAGE = `<!doctype html><meta charset="utf-8"><title>dash</title>
<script src="dash.all.min.js"></script><script src="shaka-player.compiled.js"></script><body></body>`;

/** A page at `${base}/_dash/` with `window.dashjs` and `window.shaka`; page errors collected in `errors`. */
export async function openDashPage(browser: Browser, base: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  await page.route(`${base}/_dash/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path.endsWith('/dash.all.min.js')) return route.fulfill({ body: DASHJS, contentType: 'text/javascript' });
    if (path.endsWith('/shaka-player.compiled.js')) return route.fulfill({ body: SHAKA, contentType: 'text/javascript' });
    return route.fulfill({ body: PAGE, contentType: 'text/html' });
  });
  await page.goto(`${base}/_dash/`);
  await page.waitForFunction(() => 'dashjs' in window && 'shaka' in window, undefined, { timeout: 10_000 });
  return { page, errors };
}

declare global {
  interface Window {
    /** dash.js's UMD build (its own typings). */
    dashjs: typeof import('dashjs');
  }
}
