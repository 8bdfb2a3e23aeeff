/**
 * The fMP4/CMAF muxer (src/media/fmp4-muxer.ts) against a browser's own MP4 parser and
 * decoder: Chromium's Media Source Extensions take the init segment, then whole segments
 * and LL-HLS parts (with an ID3 emsg), as hls.js and dash.js hand them over, buffer one
 * continuous range of the right length, and play it to the end with no media error: AAC,
 * `mp4a.40.2` as `codecsAttribute` gives it. (MP3 in MP4 is left out: Debian's Chromium MSE
 * supports none of `mp4a.40.34`, `mp4a.6B`, `mp4a.69`; FFmpeg, ffprobe and mp4box.js read
 * our MP3 fragments in test/media/fmp4-muxer.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { AdtsReader } from '../../src/media/adts.js';
import { codecsAttribute, Fmp4Muxer } from '../../src/media/fmp4-muxer.js';
import type { TimedFrame } from '../../src/media/muxer.js';
import { launchChromium } from '../helpers/browser.js';

const GROUP_TICKS = 1920; // 1024 samples at 48 kHz
const SECONDS = 3;

function encodeAac(): Buffer {
  return execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`,
    '-ac', '2', '-c:a', 'aac', '-b:a', '96k', '-f', 'adts', 'pipe:1',
  ], { timeout: 30_000 });
}

function aacFrames(): TimedFrame[] {
  return new AdtsReader().push(encodeAac()).map((frame, index) => ({ data: frame.data, pts: 900_000 + index * GROUP_TICKS, durationTicks: GROUP_TICKS }));
}

/** Init, one whole segment of 47 frames, then the rest as parts of 12; a now playing on the first part. */
function chunksOf(muxer: Fmp4Muxer, frames: TimedFrame[]): Uint8Array[] {
  const chunks = [muxer.muxSegment(frames.slice(0, 47))];
  for (let start = 47; start < frames.length; start += 12) {
    const metadata = start === 47 ? [{ pts: frames[start]!.pts, nowPlaying: { title: 'Tone', setAt: 0 } }] : [];
    chunks.push(muxer.muxSegment(frames.slice(start, start + 12), metadata));
  }
  return [muxer.initSegment(), ...chunks];
}

interface MseResult {
  supported: boolean;
  ranges: [number, number][];
  ended: boolean;
  currentTime: number;
  errors: string[];
}

t.test('Chromium MSE buffers and plays AAC init + segments + parts with an emsg, to the last sample', async (t) => {
  const browser = await launchChromium(t);
  const page = await browser.newPage();
  await page.setContent('<audio></audio>');
  const cases = [
    { name: 'AAC', codec: codecsAttribute({ codec: 'aac' }), muxer: new Fmp4Muxer({ codec: 'aac' }), frames: aacFrames() },
  ];
  for (const { name, codec, muxer, frames } of cases) {
    const chunks = chunksOf(muxer, frames).map((chunk) => Buffer.from(chunk).toString('base64'));
    const firstDecodeTime = 900_000 / 90_000; // tfdt of the first chunk, in seconds
    const endTime = (muxer.nextDecodeTime() ?? 0) / 48000;
    const result = await page.evaluate(
      async ({ chunks, mime, startTime }): Promise<MseResult> => {
        const errors: string[] = [];
        const supported = MediaSource.isTypeSupported(mime);
        const audio = document.querySelector('audio')!;
        audio.addEventListener('error', () => errors.push(`media error ${audio.error?.code}: ${audio.error?.message}`));
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
        // Four times real speed: the point is that every sample decodes, not the wall clock.
        audio.playbackRate = 4;
        // Bounded: the audio is 3 s long (under a second at 4×); 40 s covers a loaded machine.
        const ended = await Promise.race([
          audio.play().then(() => new Promise<boolean>((resolve) => audio.addEventListener('ended', () => resolve(true), { once: true }))),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 40_000)),
        ]).catch((error: unknown) => {
          errors.push(`play: ${String(error)}`);
          return false;
        });
        return { supported, ranges, ended, currentTime: audio.currentTime, errors };
      },
      { chunks, mime: `audio/mp4; codecs="${codec}"`, startTime: firstDecodeTime },
    );
    t.ok(result.supported, `${name}: Chromium supports audio/mp4; codecs="${codec}"`);
    t.same(result.errors, [], `${name}: no SourceBuffer or media error`);
    t.equal(result.ranges.length, 1, `${name}: one continuous buffered range across segments and parts`);
    const [start, end] = result.ranges[0] ?? [0, 0];
    t.ok(Math.abs(start - firstDecodeTime) < 0.05, `${name}: buffered from the first decode time (${start.toFixed(3)} s)`);
    t.ok(Math.abs(end - endTime) < 0.05, `${name}: to the last sample (${end.toFixed(3)} s of ${endTime.toFixed(3)} s)`);
    t.ok(result.ended, `${name}: played to the end (at ${result.currentTime.toFixed(3)} s)`);
    await page.setContent('<audio></audio>');
  }
});
