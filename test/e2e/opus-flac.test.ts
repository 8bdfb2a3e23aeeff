/**
 * Opus and FLAC renditions end to end (docs/architecture.md, "Opus and FLAC renditions"): the
 * built CLI packages a tone FFmpeg sends over SRT on a `container: fmp4` channel with AAC, Opus
 * and FLAC renditions from one encoder. The master lists them with CODECS `opus` and `fLaC`, the
 * MPD has an AdaptationSet per codec, ffprobe reads every init segment and every media segment
 * (behind its init) without a word, and hls.js in Chromium plays the Opus and the FLAC media
 * playlists through MSE (`audio/mp4; codecs="opus"` / `"flac"`) with no error. Neither has a
 * progressive mount.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parseMasterPlaylist, parseMediaPlaylist } from '../../src/hls/playlist/index.js';
import { launchChromium } from '../helpers/browser.js';
import { originUrl, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';

const READY = /"msg":"ingest started"/;
const RENDITIONS = [
  { id: 'hifi', bitrate: '96k' },
  { id: 'opus', bitrate: '64k', codec: 'opus' },
  { id: 'flac', codec: 'flac' },
];
const PLAY_SECONDS = 3;

async function fetchBytes(t: Test, url: string): Promise<Buffer> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
  t.equal(response.headers.get('content-type'), 'audio/mp4', `${url.split('/').slice(-2).join('/')} is audio/mp4`);
  return Buffer.from(await response.arrayBuffer());
}

/** ffprobe's codec for `bytes`; anything it says at -v error fails. */
function probe(t: Test, bytes: Buffer, name: string): string {
  const directory = mkdtempSync(join(tmpdir(), 'onair-opus-flac-e2e-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const file = join(directory, name);
  writeFileSync(file, bytes);
  const run = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', file], { encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0 || run.stderr !== '') throw new Error(`ffprobe ${name}: ${run.status} ${run.stderr}`);
  return run.stdout.trim();
}

interface Playback {
  supported: boolean;
  advanced: number;
  errors: string[];
}

t.test('an fmp4 channel with AAC, Opus and FLAC: master, MPD, every init and segment read by ffprobe, hls.js plays Opus and FLAC', async (t) => {
  const config = await testConfig({ segmentSeconds: 1, channel: { container: 'fmp4', renditions: RENDITIONS } });
  const base = originUrl(config);
  startSender(t, config);
  await startOnairProcess(t, { role: 'start', config, readyPattern: READY, readyTimeoutMs: 30_000 });
  const browserStarting = launchChromium(t);
  for (const rendition of RENDITIONS) {
    await waitFor(`three ${rendition.id} segments`, async () => {
      const response = await fetch(`${base}/fip/fip_${rendition.id}.m3u8`);
      return response.status === 200 && (await response.text()).split('#EXTINF').length > 3 ? true : undefined;
    }, 45_000);
  }

  const master = parseMasterPlaylist(await (await fetch(`${base}/fip/fip.m3u8`)).text());
  t.same(master.variants.map((variant) => [variant.uri, variant.codecs]), [['fip_hifi.m3u8', 'mp4a.40.2'], ['fip_opus.m3u8', 'opus'], ['fip_flac.m3u8', 'fLaC']], 'CODECS per variant');
  const flacBandwidth = master.variants[2]!.bandwidth;
  t.ok(flacBandwidth > 96_000 && flacBandwidth < 48_000 * 2 * 16 * 1.05, `FLAC's BANDWIDTH is measured: ${flacBandwidth}`);
  t.comment(`BANDWIDTH: AAC 96k ${master.variants[0]!.bandwidth}, Opus 64k ${master.variants[1]!.bandwidth}, FLAC 16 bit ${flacBandwidth}`);
  // Opus and FLAC renditions have no progressive mount; the AAC one has.
  t.equal((await fetch(`${base}/fip-flac.aac`, { method: 'HEAD' })).status, 404, 'no mount for FLAC');
  t.equal((await fetch(`${base}/fip-opus.aac`, { method: 'HEAD' })).status, 404, 'no mount for Opus');
  const mount = new AbortController();
  t.equal((await fetch(`${base}/fip-hifi.aac`, { signal: mount.signal })).status, 200, 'the AAC mount plays');
  mount.abort();
  const mpd = await (await fetch(`${base}/fip/fip.mpd`)).text();
  for (const codecs of ['mp4a.40.2', 'opus', 'flac']) t.match(mpd, new RegExp(`<AdaptationSet[^>]*codecs="${codecs}"`), `an AdaptationSet for ${codecs}`);

  const expected: Record<string, string> = { hifi: 'aac', opus: 'opus', flac: 'flac' };
  for (const rendition of RENDITIONS) {
    const media = parseMediaPlaylist(await (await fetch(`${base}/fip/fip_${rendition.id}.m3u8`)).text());
    const inits = new Map<string, Buffer>();
    let initUri = '';
    for (const segment of media.segments) {
      // EXT-X-MAP applies to the segments after it until the next one (RFC 8216 §4.3.2.5).
      initUri = segment.map?.uri ?? initUri;
      if (!inits.has(initUri)) {
        const init = await fetchBytes(t, `${base}/fip/${initUri}`);
        inits.set(initUri, init);
        t.equal(probe(t, init, 'init.mp4'), expected[rendition.id], `${rendition.id}: ffprobe reads ${initUri}`);
      }
      const bytes = await fetchBytes(t, `${base}/fip/${segment.uri}`);
      t.equal(probe(t, Buffer.concat([inits.get(initUri)!, bytes]), 'segment.mp4'), expected[rendition.id], `${rendition.id}: ffprobe reads ${segment.uri}`);
    }
  }

  const browser = await browserStarting;
  for (const [rendition, mime] of [['opus', 'audio/mp4; codecs="opus"'], ['flac', 'audio/mp4; codecs="flac"']] as const) {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${base}/`);
    await page.addScriptTag({ url: `${base}/_player/hls/hls.light.min.js` });
    const playback = await page.evaluate(
      async ({ url, mime, seconds }): Promise<Playback> => {
        const errors: string[] = [];
        const supported = MediaSource.isTypeSupported(mime);
        const audio = document.createElement('audio');
        audio.muted = true;
        document.body.append(audio);
        interface HlsPlayer {
          loadSource(url: string): void;
          attachMedia(media: HTMLMediaElement): void;
          on(event: string, listener: (event: string, data: { fatal: boolean; details: string }) => void): void;
          destroy(): void;
        }
        const Hls = (window as unknown as { Hls: { new (): HlsPlayer; Events: { ERROR: string } } }).Hls;
        const hls = new Hls();
        hls.on(Hls.Events.ERROR, (_event, data) => {
          if (data.fatal) errors.push(`hls.js fatal: ${data.details}`);
        });
        audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
        hls.loadSource(url);
        hls.attachMedia(audio);
        // Bounded: 40 s for the first frame and `seconds` of media time on a loaded machine.
        const deadline = Date.now() + 40_000;
        let startTime: number | undefined;
        while (Date.now() < deadline && errors.length === 0) {
          if (audio.paused) await audio.play().catch(() => undefined);
          if (startTime === undefined && audio.currentTime > 0) startTime = audio.currentTime;
          if (startTime !== undefined && audio.currentTime - startTime >= seconds) break;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        const advanced = startTime === undefined ? 0 : audio.currentTime - startTime;
        hls.destroy();
        return { supported, advanced, errors };
      },
      { url: `${base}/fip/fip_${rendition}.m3u8`, mime, seconds: PLAY_SECONDS },
    );
    t.ok(playback.supported, `Chromium's MSE takes ${mime}`);
    t.same([...playback.errors, ...pageErrors], [], `${rendition}: no hls.js, media or page error`);
    t.ok(playback.advanced >= PLAY_SECONDS, `${rendition}: hls.js played ${playback.advanced.toFixed(2)} s of media`);
    await page.close();
  }
});
