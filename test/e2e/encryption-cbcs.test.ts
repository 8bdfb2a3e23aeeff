/**
 * CMAF cbcs (src/media/cbcs.ts) against a browser's own MP4 parser, CDM and decoder: Chromium
 * with ClearKey (EME, `encryptionScheme: 'cbcs'`, on a loopback origin: a secure context)
 * takes the protected init segment (enca/sinf/tenc, a ClearKey pssh: the `encrypted` event
 * names our KID), then encrypted segments and LL-HLS-sized parts, and plays them to the last
 * sample with the key and no media error; with a wrong key it does not play them. And
 * shaka-player, given the key in its `clearKeys` map, plays a static MPD of such segments
 * whose AdaptationSet carries the ContentProtection a cbcs channel's MPD would
 * (`urn:mpeg:dash:mp4protection:2011` value `cbcs` with cenc:default_KID, and ClearKey's).
 * Then a live `encryption: cbcs` channel (a real `onair start`, FFmpeg's tone over SRT, a new
 * key every 2 segments): a key asked for without the token is refused, and shaka-player in
 * Chromium plays its MPD (a Period per key period) across key rotations, its ClearKey licenses
 * answered by a loopback license server of the test that fetches each key through the
 * token-checked key route. docs/architecture.md, "Content encryption".
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { AdtsReader } from '../../src/media/adts.js';
import { cryptChunkCbcs, uuidText, type CbcBlockCipher, type CbcsProtection } from '../../src/media/cbcs.js';
import { codecsAttribute, Fmp4Muxer, initSegmentFor } from '../../src/media/fmp4-muxer.js';
import type { TimedFrame } from '../../src/media/muxer.js';
import { cbcsKeyIdOf } from '../../src/hls/segment-encryption.js';
import { launchChromium } from '../helpers/browser.js';
import { startLiveCbcsChannel } from '../helpers/live-cbcs.js';
import { waitForBody } from '../helpers/onair-harness.js';

const GROUP_TICKS = 1920; // 1024 samples at 48 kHz
const SECONDS = 3;
const KEY = Uint8Array.from({ length: 16 }, (_, index) => 0x5a ^ (index * 7));
const PROTECTION: CbcsProtection = {
  keyId: Uint8Array.from({ length: 16 }, (_, index) => 0xc0 + index),
  constantIv: Uint8Array.from({ length: 16 }, (_, index) => 0x11 * (index + 1) & 0xff),
};

const encrypt: CbcBlockCipher = (blocks, iv) => {
  const cipher = createCipheriv('aes-128-cbc', KEY, iv);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(blocks), cipher.final()]);
};

function aacFrames(): TimedFrame[] {
  const adts = execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`,
    '-ac', '2', '-c:a', 'aac', '-b:a', '96k', '-f', 'adts', 'pipe:1',
  ], { timeout: 30_000 });
  return new AdtsReader().push(adts).map((frame, index) => ({ data: frame.data, pts: 900_000 + index * GROUP_TICKS, durationTicks: GROUP_TICKS }));
}

function base64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

interface EmeResult {
  initDataType: string;
  initDataHex: string;
  ranges: [number, number][];
  ended: boolean;
  currentTime: number;
  errors: string[];
}

t.test('Chromium ClearKey plays cbcs init + encrypted segments and parts with the key, and not with a wrong one', async (t) => {
  const server = createServer((_, reply) => reply.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><audio></audio>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const frames = aacFrames();
  const muxer = new Fmp4Muxer({ codec: 'aac' });
  const clear = [muxer.muxSegment(frames.slice(0, 47))];
  for (let start = 47; start < frames.length; start += 12) clear.push(muxer.muxSegment(frames.slice(start, start + 12)));
  const chunks = [initSegmentFor(muxer.trackFormat()!, PROTECTION), ...clear.map((chunk) => cryptChunkCbcs(chunk, PROTECTION.constantIv, encrypt))];
  const base64 = chunks.map((chunk) => Buffer.from(chunk).toString('base64'));
  const startTime = 900_000 / 90_000;
  const endTime = (muxer.nextDecodeTime() ?? 0) / 48000;

  const browser = await launchChromium(t);
  const play = async (key: Uint8Array, waitMs: number): Promise<EmeResult> => {
    const page = await browser.newPage();
    await page.goto(url);
    const result = await page.evaluate(
      async ({ chunks, mime, startTime, kid, k, waitMs }): Promise<EmeResult> => {
        const errors: string[] = [];
        let initDataType = '';
        let initDataHex = '';
        const audio = document.querySelector('audio')!;
        audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
        const access = await navigator.requestMediaKeySystemAccess('org.w3.clearkey', [
          { initDataTypes: ['cenc', 'keyids'], audioCapabilities: [{ contentType: mime, encryptionScheme: 'cbcs' } as MediaKeySystemMediaCapability] },
        ]);
        const mediaKeys = await access.createMediaKeys();
        await audio.setMediaKeys(mediaKeys);
        audio.addEventListener('encrypted', (event) => {
          initDataType = event.initDataType;
          initDataHex = [...new Uint8Array(event.initData!)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
          const session = mediaKeys.createSession('temporary');
          session.addEventListener('message', () => {
            const license = JSON.stringify({ keys: [{ kty: 'oct', kid, k }], type: 'temporary' });
            session.update(new TextEncoder().encode(license)).catch((error: unknown) => errors.push(`update: ${String(error)}`));
          });
          session.generateRequest(event.initDataType, event.initData!).catch((error: unknown) => errors.push(`generateRequest: ${String(error)}`));
        });
        const source = new MediaSource();
        audio.src = URL.createObjectURL(source);
        await new Promise((resolve) => source.addEventListener('sourceopen', resolve, { once: true }));
        const buffer = source.addSourceBuffer(mime);
        buffer.addEventListener('error', () => errors.push('SourceBuffer error'));
        for (const chunk of chunks) {
          buffer.appendBuffer(Uint8Array.from(atob(chunk), (character) => character.charCodeAt(0)));
          await new Promise((resolve) => buffer.addEventListener('updateend', resolve, { once: true }));
          if (errors.length > 0) break;
        }
        const ranges: [number, number][] = [];
        for (let index = 0; index < buffer.buffered.length; index++) ranges.push([buffer.buffered.start(index), buffer.buffered.end(index)]);
        if (errors.length === 0) source.endOfStream();
        audio.currentTime = startTime;
        audio.muted = true;
        audio.playbackRate = 4;
        // Bounded: 3 s of audio at 4× on a loaded machine.
        const ended = await Promise.race([
          audio.play().then(() => new Promise<boolean>((resolve) => audio.addEventListener('ended', () => resolve(true), { once: true }))),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), waitMs)),
        ]).catch((error: unknown) => {
          errors.push(`play: ${String(error)}`);
          return false;
        });
        return { initDataType, initDataHex, ranges, ended, currentTime: audio.currentTime, errors };
      },
      { chunks: base64, mime: `audio/mp4; codecs="${codecsAttribute({ codec: 'aac' })}"`, startTime, kid: base64Url(PROTECTION.keyId), k: base64Url(key), waitMs },
    );
    await page.close();
    return result;
  };

  const good = await play(KEY, 30_000);
  t.equal(good.initDataType, 'cenc', 'the encrypted event carries the pssh (cenc init data)');
  t.ok(good.initDataHex.includes(Buffer.from(PROTECTION.keyId).toString('hex')), 'naming our KID');
  t.same(good.errors, [], 'no SourceBuffer, CDM or media error');
  t.equal(good.ranges.length, 1, 'one continuous buffered range across segments and parts');
  const [start, end] = good.ranges[0] ?? [0, 0];
  t.ok(Math.abs(start - startTime) < 0.05 && Math.abs(end - endTime) < 0.05, `buffered ${start.toFixed(3)}..${end.toFixed(3)} s, the whole stream`);
  t.ok(good.ended, `decrypted and played to the end (at ${good.currentTime.toFixed(3)} s)`);

  const wrong = await play(new Uint8Array(16), 8_000);
  t.notOk(wrong.ended, `a wrong key does not play to the end (errors: ${wrong.errors.join('; ') || 'none'}, at ${wrong.currentTime.toFixed(3)} s)`);
});

const SHAKA = readFileSync(new URL('../../node_modules/shaka-player/dist/shaka-player.compiled.js', import.meta.url));

t.test('shaka-player with ClearKey plays a static MPD of cbcs segments (mp4protection cbcs + default_KID) to the end', async (t) => {
  const frames = aacFrames();
  const muxer = new Fmp4Muxer({ codec: 'aac' });
  const segments: Uint8Array[] = [];
  const durations: number[] = [];
  for (let start = 0; start < frames.length; start += 47) {
    const run = frames.slice(start, start + 47);
    segments.push(cryptChunkCbcs(muxer.muxSegment(run), PROTECTION.constantIv, encrypt));
    durations.push(run.length * 1024);
  }
  const firstDecodeTime = (900_000 / 90_000) * 48000;
  const totalSeconds = durations.reduce((sum, duration) => sum + duration, 0) / 48000;
  const timeline = durations.map((duration, index) => (index === 0 ? `<S t="${firstDecodeTime}" d="${duration}"/>` : `<S d="${duration}"/>`)).join('');
  const mpd = `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013" type="static" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT1S" mediaPresentationDuration="PT${totalSeconds.toFixed(3)}S">
  <Period id="0" start="PT0S">
    <AdaptationSet contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2" lang="und" segmentAlignment="true">
      <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cbcs" cenc:default_KID="${uuidText(PROTECTION.keyId)}"/>
      <ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0"/>
      <Representation id="a" bandwidth="96000" audioSamplingRate="48000">
        <SegmentTemplate timescale="48000" presentationTimeOffset="${firstDecodeTime}" initialization="init.mp4" media="$Number$.m4s" startNumber="0">
          <SegmentTimeline>${timeline}</SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>`;
  const files = new Map<string, { type: string; body: Uint8Array | string }>([
    ['/', { type: 'text/html', body: '<!doctype html><body></body>' }],
    ['/shaka.js', { type: 'text/javascript', body: SHAKA }],
    ['/cbcs.mpd', { type: 'application/dash+xml', body: mpd }],
    ['/init.mp4', { type: 'video/mp4', body: initSegmentFor(muxer.trackFormat()!, PROTECTION) }],
    ...segments.map((segment, index): [string, { type: string; body: Uint8Array }] => [`/${index}.m4s`, { type: 'video/mp4', body: segment }]),
  ]);
  const server = createServer((request, reply) => {
    const file = files.get(request.url ?? '');
    if (!file) return reply.writeHead(404).end();
    reply.writeHead(200, { 'content-type': file.type }).end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const browser = await launchChromium(t);
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  await page.addScriptTag({ url: `${origin}/shaka.js` });
  const result = await page.evaluate(
    async ({ url, clearKeys, waitMs }) => {
      const errors: string[] = [];
      const audio = document.createElement('audio');
      audio.muted = true;
      document.body.append(audio);
      audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
      // shaka-player's compiled build has no typings on window here.
      const shaka = (window as unknown as { shaka: any }).shaka;
      shaka.polyfill.installAll();
      const player = new shaka.Player();
      player.addEventListener('error', (event: { detail?: { code?: number; data?: unknown } }) => errors.push(`shaka: ${event.detail?.code} ${JSON.stringify(event.detail?.data ?? null).slice(0, 300)}`));
      player.configure({ drm: { clearKeys } });
      // Every wait is bounded by waitMs: a load or play() that never settles must not hold the test.
      const deadline = Date.now() + waitMs;
      const bounded = <T,>(promise: Promise<T>): Promise<T | 'timeout'> =>
        Promise.race([promise, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now())))]);
      if ((await bounded(player.attach(audio))) === 'timeout') errors.push('shaka attach: timeout');
      const ended = new Promise<boolean>((resolve) => audio.addEventListener('ended', () => resolve(true), { once: true }));
      const loaded = await bounded(player.load(url).catch((error: { code?: number; data?: unknown }) => errors.push(`shaka load: ${error.code} ${JSON.stringify(error.data ?? null).slice(0, 300)}`)));
      if (loaded === 'timeout') errors.push('shaka load: timeout');
      audio.playbackRate = 4;
      // Not awaited: it stays pending while nothing plays; the race below is the bound.
      void audio.play().catch((error: unknown) => errors.push(`play: ${String(error)}`));
      // Bounded: about 3 s of audio at 4× on a loaded machine.
      const done = (await bounded(ended)) === true;
      const keySystem = player.keySystem() as string;
      return { ended: done, currentTime: audio.currentTime, errors, keySystem };
    },
    { url: `${origin}/cbcs.mpd`, clearKeys: { [Buffer.from(PROTECTION.keyId).toString('hex')]: Buffer.from(KEY).toString('hex') }, waitMs: 30_000 },
  );
  t.same(result.errors, [], 'no shaka, CDM or media error');
  t.equal(result.keySystem, 'org.w3.clearkey', 'shaka played it through the ClearKey CDM');
  t.ok(result.ended, `shaka played the whole presentation (${totalSeconds.toFixed(3)} s; ended at ${result.currentTime.toFixed(3)} s)`);
});

t.test('a live cbcs channel: no key without the token; shaka plays its MPD across key rotations with ClearKey licenses from the key route', async (t) => {
  const rotation = 2;
  const { base, token } = await startLiveCbcsChannel(t, { rotation });
  const browserStarting = launchChromium(t);
  const mpd = await waitForBody('an MPD of three key periods', `${base}/fip/fip.mpd?token=${token}`, '<Period ', 3);
  const keyIds = [...mpd.matchAll(/<Period id="[^"]*-k(\d+)"/g)].map((match) => Number(match[1]));
  t.match(mpd, /cenc:default_KID="[0-9a-f-]{36}"/, 'the MPD names the KIDs');

  const playlist = await (await fetch(`${base}/fip/fip_hifi.m3u8?token=${token}`)).text();
  t.match(playlist, /#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key-\d+\.key\?token=[^"]+",IV=0x[0-9a-f]{32},KEYFORMAT="identity"/, 'the playlist names the key, signed');
  t.match(playlist, /#EXT-X-MAP:URI="hifi\/init-\d+-k\d+\.mp4\?token=/, 'and the key period\'s init');
  const refused = await fetch(`${base}/fip/key-${keyIds[0]}.key`);
  t.equal(refused.status, 403, 'a key without the token is refused');
  await refused.body?.cancel();
  const served = await fetch(`${base}/fip/key-${keyIds[0]}.key?token=${token}`);
  t.equal(served.status, 200);
  t.equal((await served.arrayBuffer()).byteLength, 16, 'with it, the 16-byte key');

  // A ClearKey license server (W3C EME §9.1.4 JSON): KID → key id (the KID is derived from channel and key id), key from the key route with the token.
  const kidToKeyId = new Map<string, number>();
  for (let keyId = keyIds[0]! - 10; keyId < keyIds[0]! + 200; keyId++) kidToKeyId.set(base64Url(cbcsKeyIdOf('fip', keyId)), keyId);
  const licensed = new Set<number>();
  const licenseServer = createServer((request, reply) => {
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', 'access-control-allow-methods': 'POST' };
    if (request.method === 'OPTIONS') return reply.writeHead(204, cors).end();
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      void (async () => {
        const { kids } = JSON.parse(Buffer.concat(chunks).toString()) as { kids: string[] };
        const keys = [];
        for (const kid of kids) {
          const keyId = kidToKeyId.get(kid);
          if (keyId === undefined) continue;
          const response = await fetch(`${base}/fip/key-${keyId}.key?token=${token}`);
          if (response.status !== 200) continue;
          licensed.add(keyId);
          keys.push({ kty: 'oct', kid, k: base64Url(new Uint8Array(await response.arrayBuffer())) });
        }
        reply.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify({ keys, type: 'temporary' }));
      })().catch(() => reply.writeHead(500, cors).end());
    });
  });
  await new Promise<void>((resolve) => licenseServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => licenseServer.close(() => resolve())));
  const licenseUrl = `http://127.0.0.1:${(licenseServer.address() as AddressInfo).port}/license`;

  const browser = await browserStarting;
  const page = await browser.newPage();
  const inits = new Set<string>();
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (/\/init-\d+-k\d+\.mp4$/.test(path) && response.status() === 200) inits.add(path);
  });
  await page.goto(`${base}/time`);
  await page.addScriptTag({ content: SHAKA.toString() });
  const result = await page.evaluate(
    async ({ url, licenseUrl, playSeconds, waitMs }) => {
      const errors: string[] = [];
      const audio = document.createElement('audio');
      audio.muted = true;
      document.body.append(audio);
      audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
      const shaka = (window as unknown as { shaka: any }).shaka; // eslint-disable-line @typescript-eslint/no-explicit-any
      shaka.polyfill.installAll();
      const player = new shaka.Player();
      player.addEventListener('error', (event: { detail?: { code?: number; data?: unknown } }) => errors.push(`shaka: ${event.detail?.code} ${JSON.stringify(event.detail?.data ?? null).slice(0, 300)}`));
      player.configure({ drm: { servers: { 'org.w3.clearkey': licenseUrl } } });
      // Every wait is bounded by waitMs: a load or play() that never settles must not hold the test.
      const deadline = Date.now() + waitMs;
      const bounded = <T,>(promise: Promise<T>): Promise<T | 'timeout'> =>
        Promise.race([promise, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now())))]);
      if ((await bounded(player.attach(audio))) === 'timeout') errors.push('shaka attach: timeout');
      const loaded = await bounded(player.load(url).catch((error: { code?: number; data?: unknown }) => errors.push(`shaka load: ${error.code} ${JSON.stringify(error.data ?? null).slice(0, 300)}`)));
      if (loaded === 'timeout') errors.push('shaka load: timeout');
      // Not awaited: it stays pending while nothing plays; the loop below is the bound.
      void audio.play().catch((error: unknown) => errors.push(`play: ${String(error)}`));
      let started: number | undefined;
      // Bounded: until playSeconds of audio have played (or an error, or the deadline).
      while (Date.now() < deadline && errors.length === 0) {
        if (started === undefined && audio.currentTime > 0) started = audio.currentTime;
        if (started !== undefined && audio.currentTime - started >= playSeconds) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return { played: started === undefined ? 0 : audio.currentTime - started, errors, keySystem: player.keySystem() as string };
    },
    { url: `${base}/fip/fip.mpd?token=${token}`, licenseUrl, playSeconds: 2 * rotation + 1, waitMs: 35_000 },
  );
  t.same(result.errors, [], 'no shaka, CDM or media error');
  t.equal(result.keySystem, 'org.w3.clearkey', 'through the ClearKey CDM');
  t.ok(result.played >= 2 * rotation + 1, `played ${result.played.toFixed(1)} s of the live channel`);
  t.ok(inits.size >= 2 && licensed.size >= 2, `across key rotations: ${inits.size} key periods' inits fetched, keys ${[...licensed].join(', ')} licensed`);
});
