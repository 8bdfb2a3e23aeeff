/**
 * The channel MPDs read by the players' own MPD parsers, in Chromium: dash.js
 * (`MediaPlayer.retrieveManifest`) and shaka-player (`shaka.dash.DashParser`, the segment index
 * it builds). Both must accept a live MPD with a discontinuity (two Periods) with no error and
 * report the Periods, the Representations and the segment numbers (= HLS MSNs) and names we wrote.
 * No DASH schema validator that works offline is on npm, so these parsers are the check.
 */
import t from 'tap';
import { renderChannelMpds, type MpdChannel } from '../../src/dash/channel-mpd.js';
import type { ChannelState, WindowSegment } from '../../src/hls/sequence-state.js';
import { launchChromium } from '../helpers/browser.js';
import { openDashPage } from '../helpers/dash-page.js';
import { addTokenToMpd, signPath } from '../../src/origin/signed-urls.js';

/** A host no request leaves the browser for: playwright answers everything. */
const BASE = 'http://onair.test';
const SAMPLE_RATE = 48_000;
const LONG = (94 * 1024) / SAMPLE_RATE;
const SHORT = (93 * 1024) / SAMPLE_RATE;

const channel: MpdChannel = {
  id: 'fip',
  sampleRate: SAMPLE_RATE,
  renditions: [
    { id: 'lofi', codec: 'aac', bitrate: 32_000 },
    { id: 'hifi', codec: 'aac', bitrate: 192_000 },
  ],
};

/** Six segments ending now: MSN 500–502 of run 7, then a takeover, 503–505 of run 9. */
function liveState(): ChannelState {
  const durations = [LONG, SHORT, LONG, LONG, SHORT, LONG];
  const total = durations.reduce((sum, duration) => sum + duration, 0);
  let pdt = Date.now() - total * 1000 - 1000;
  const window: WindowSegment[] = durations.map((durationSeconds, index) => {
    const segment = { msn: 500 + index, run: index < 3 ? 7 : 9, durationSeconds, programDateTime: pdt, discontinuity: index === 3, bytes: { lofi: 8000, hifi: 48_000 } };
    pdt += durationSeconds * 1000;
    return segment;
  });
  return { version: 1, targetDuration: 2, nextMsn: 506, discontinuitySequence: 2, nextPts: 900_000 + Math.round(total * 90_000), window, bandwidth: {} };
}

interface ParsedByDashjs {
  error: string | null;
  type?: string;
  periods: { id: string; representations: string[]; startNumber: number; segments: number; initialization: string }[];
}

interface ParsedByShaka {
  errors: string[];
  live: boolean;
  variants: { id: string; bandwidth: number; codecs: string }[];
  references: { uri: string; start: number; end: number }[];
}

t.test('dash.js and shaka-player parse a live MPD with two Periods: Periods, Representations, segment numbers and names', async (t) => {
  const mpd = renderChannelMpds(channel, liveState())['fip.mpd']!;
  const browser = await launchChromium(t);
  const { page, errors } = await openDashPage(browser, BASE);
  await page.route(`${BASE}/fip/fip.mpd`, (route) => route.fulfill({ body: mpd, contentType: 'application/dash+xml' }));
  await page.route(`${BASE}/time`, (route) => route.fulfill({ body: new Date().toISOString(), contentType: 'text/plain' }));

  const byDashjs = await page.evaluate(
    (url) =>
      new Promise<ParsedByDashjs>((resolve) => {
        const player = window.dashjs.MediaPlayer().create();
        // retrieveManifest needs the player's controllers: initialized with no element and no source.
        player.initialize();
        player.retrieveManifest(url, (manifest, error) => {
          type Node = Record<string, unknown>;
          const list = (value: unknown): Node[] => (Array.isArray(value) ? (value as Node[]) : value ? [value as Node] : []);
          const periods = list((manifest as Node | null)?.Period).map((period) => {
            const set = list(period.AdaptationSet)[0] ?? {};
            const template = (set.SegmentTemplate ?? {}) as Node;
            const timeline = list((template.SegmentTimeline as Node | undefined)?.S);
            return {
              id: String(period.id),
              representations: list(set.Representation).map((representation) => String(representation.id)),
              startNumber: Number(template.startNumber),
              segments: timeline.reduce((count, entry) => count + 1 + Number(entry.r ?? 0), 0),
              initialization: String(template.initialization),
            };
          });
          resolve({ error: error ? JSON.stringify(error) : null, type: String((manifest as Node | null)?.type), periods });
        });
      }),
    `${BASE}/fip/fip.mpd`,
  );
  t.equal(byDashjs.error, null, 'dash.js reports no error');
  t.equal(byDashjs.type, 'dynamic');
  t.same(byDashjs.periods, [
    { id: '2', representations: ['lofi', 'hifi'], startNumber: 500, segments: 3, initialization: '$RepresentationID$/init-7.mp4' },
    { id: '3', representations: ['lofi', 'hifi'], startNumber: 503, segments: 3, initialization: '$RepresentationID$/init-9.mp4' },
  ], "dash.js sees both Periods, both Representations, MSNs 500–502 and 503–505, each Period with its run's init segment");

  const byShaka: ParsedByShaka = await page.evaluate(async (url) => {
    // shaka's compiled build has no typings here: reached as a plain object.
    const shaka = (window as unknown as { shaka: any }).shaka;
    const errors: string[] = [];
    const noop = (): void => undefined;
    const parser = new shaka.dash.DashParser();
    const config = shaka.util.PlayerConfiguration.createDefault();
    parser.configure(config.manifest);
    const networkingEngine = new shaka.net.NetworkingEngine();
    networkingEngine.configure(config.networking);
    const manifest = await parser.start(url, {
      networkingEngine,
      filter: async () => undefined,
      makeTextStreamsForClosedCaptions: noop,
      onTimelineRegionAdded: noop,
      onEvent: noop,
      onError: (error: { code: number }) => errors.push(`shaka error ${error.code}`),
      isLowLatencyMode: () => false,
      isAutoLowLatencyMode: () => false,
      enableLowLatencyMode: noop,
      updateDuration: noop,
      newDrmInfo: noop,
      onManifestUpdated: noop,
      getBandwidthEstimate: () => 1_000_000,
      onMetadata: async () => undefined,
      disableStream: noop,
      addFont: noop,
      getStreamingRetryParameters: () => shaka.net.NetworkingEngine.defaultRetryParameters(),
      onSegmentReceived: noop,
    });
    const variants = manifest.variants.map((variant: { bandwidth: number; audio: { originalId: string; codecs: string } }) => ({ id: String(variant.audio.originalId), bandwidth: variant.bandwidth, codecs: variant.audio.codecs }));
    const audio = manifest.variants.find((variant: { audio: { originalId: string } }) => variant.audio.originalId === 'hifi').audio;
    await audio.createSegmentIndex();
    const references: ParsedByShaka['references'] = [];
    for (const reference of audio.segmentIndex) {
      if (reference) references.push({ uri: reference.getUris()[0], start: reference.getStartTime(), end: reference.getEndTime() });
    }
    const live = manifest.presentationTimeline.isLive();
    await parser.stop();
    return { errors, live, variants, references } satisfies ParsedByShaka;
  }, `${BASE}/fip/fip.mpd`);
  t.same(byShaka.errors, [], 'shaka reports no error');
  t.ok(byShaka.live, 'shaka sees a live presentation');
  t.same(
    byShaka.variants.map((variant) => [variant.id, variant.codecs]).sort(),
    [
      ['hifi', 'mp4a.40.2'],
      ['lofi', 'mp4a.40.2'],
    ],
    'shaka sees both Representations as AAC-LC',
  );
  t.same(
    byShaka.references.map((reference) => reference.uri.replace(`${BASE}/fip/`, '')),
    ['hifi/500-7.m4s', 'hifi/501-7.m4s', 'hifi/502-7.m4s', 'hifi/503-9.m4s', 'hifi/504-9.m4s', 'hifi/505-9.m4s'],
    'shaka lists every segment by its HLS name, across the Period boundary',
  );
  const gaps = byShaka.references.slice(1).map((reference, index) => reference.start - byShaka.references[index]!.end);
  t.ok(gaps.every((gap) => Math.abs(gap) < 0.05), `the presentation is continuous across segments and Periods (gaps ${gaps.map((gap) => gap.toFixed(3)).join(', ')} s)`);
  t.same(errors, [], 'no page error');
});

t.test('a signed channel’s MPD (addTokenToMpd): dash.js reads the token on every template, shaka-player resolves every segment URL with it', async (t) => {
  // A token whose query text needs no escaping in XML; a template query (`&amp;`) is tested in signed-urls.test.ts.
  const token = signPath({ key: 'onair-test-key', pathPrefix: '/fip/', expiresAt: 4_000_000_000 });
  const mpd = addTokenToMpd(renderChannelMpds(channel, liveState())['fip.mpd']!, token);
  const browser = await launchChromium(t);
  const { page, errors } = await openDashPage(browser, BASE);
  await page.route(`${BASE}/fip/fip.mpd?token=${token}`, (route) => route.fulfill({ body: mpd, contentType: 'application/dash+xml' }));
  await page.route(`${BASE}/time`, (route) => route.fulfill({ body: new Date().toISOString(), contentType: 'text/plain' }));
  const url = `${BASE}/fip/fip.mpd?token=${token}`;

  const byDashjs = await page.evaluate(
    (url) =>
      new Promise<{ error: string | null; templates: string[] }>((resolve) => {
        const player = window.dashjs.MediaPlayer().create();
        player.initialize();
        player.retrieveManifest(url, (manifest, error) => {
          type Node = Record<string, unknown>;
          const list = (value: unknown): Node[] => (Array.isArray(value) ? (value as Node[]) : value ? [value as Node] : []);
          const templates = list((manifest as Node | null)?.Period).flatMap((period) => {
            const template = (list(period.AdaptationSet)[0]?.SegmentTemplate ?? {}) as Node;
            return [String(template.initialization), String(template.media)];
          });
          resolve({ error: error ? JSON.stringify(error) : null, templates });
        });
      }),
    url,
  );
  t.equal(byDashjs.error, null, 'dash.js reports no error');
  t.same(
    byDashjs.templates,
    ['$RepresentationID$/init-7.mp4', '$RepresentationID$/$Number$-7.m4s', '$RepresentationID$/init-9.mp4', '$RepresentationID$/$Number$-9.m4s'].map((template) => `${template}?token=${token}`),
    'dash.js reads both Periods’ templates with the token after them',
  );

  const byShaka = await page.evaluate(async (url) => {
    const shaka = (window as unknown as { shaka: any }).shaka;
    const errors: string[] = [];
    const noop = (): void => undefined;
    const parser = new shaka.dash.DashParser();
    const config = shaka.util.PlayerConfiguration.createDefault();
    parser.configure(config.manifest);
    const networkingEngine = new shaka.net.NetworkingEngine();
    networkingEngine.configure(config.networking);
    const manifest = await parser.start(url, {
      networkingEngine,
      filter: async () => undefined,
      makeTextStreamsForClosedCaptions: noop,
      onTimelineRegionAdded: noop,
      onEvent: noop,
      onError: (error: { code: number }) => errors.push(`shaka error ${error.code}`),
      isLowLatencyMode: () => false,
      isAutoLowLatencyMode: () => false,
      enableLowLatencyMode: noop,
      updateDuration: noop,
      newDrmInfo: noop,
      onManifestUpdated: noop,
      getBandwidthEstimate: () => 1_000_000,
      onMetadata: async () => undefined,
      disableStream: noop,
      addFont: noop,
      getStreamingRetryParameters: () => shaka.net.NetworkingEngine.defaultRetryParameters(),
      onSegmentReceived: noop,
    });
    const uris: string[] = [];
    for (const variant of manifest.variants) {
      const audio = variant.audio;
      await audio.createSegmentIndex();
      for (const reference of audio.segmentIndex) {
        if (!reference) continue;
        // (shaka's compiled build exports no way to read an init segment's URIs: dash.js's templates above show those.)
        uris.push(reference.getUris()[0]);
      }
    }
    await parser.stop();
    return { errors, uris };
  }, url);
  t.same(byShaka.errors, [], 'shaka reports no error');
  const expected = ['lofi', 'hifi'].flatMap((id) =>
    [500, 501, 502, 503, 504, 505].flatMap((msn) => {
      const run = msn < 503 ? 7 : 9;
      return [`${BASE}/fip/${id}/${msn}-${run}.m4s?token=${token}`];
    }),
  );
  t.same([...byShaka.uris].sort(), [...expected].sort(), 'shaka resolves every segment URL of both Representations and Periods with the token');
  t.same(errors, [], 'no page error');
});
