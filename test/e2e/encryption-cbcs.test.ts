/**
 * CMAF cbcs (src/media/cbcs.ts) against a browser's own MP4 parser, CDM and decoder: Chromium
 * with ClearKey (EME, `encryptionScheme: 'cbcs'`, on a loopback origin: a secure context)
 * takes the protected init segment (enca/sinf/tenc, a ClearKey pssh: the `encrypted` event
 * names our KID), then encrypted segments and LL-HLS-sized parts, and plays them to the last
 * sample with the key and no media error; with a wrong key it does not play them.
 * docs/architecture.md, "Content encryption".
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { AdtsReader } from '../../src/media/adts.js';
import { cryptChunkCbcs, type CbcBlockCipher, type CbcsProtection } from '../../src/media/cbcs.js';
import { codecsAttribute, Fmp4Muxer, initSegmentFor } from '../../src/media/fmp4-muxer.js';
import type { TimedFrame } from '../../src/media/muxer.js';
import { launchChromium } from '../helpers/browser.js';

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
