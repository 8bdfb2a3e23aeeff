/**
 * FFmpeg reading audio onair pipes to its stdin (a source client's body, a pulled ICY stream):
 * `-protocol_whitelist pipe` and the container the Content-Type named (`-f mp3|aac|ogg`), else
 * probed among the audio containers only. Run for real: MP3 on stdin becomes the live
 * encoder's MPEG-TS; a playlist on stdin is refused, so a source cannot make FFmpeg fetch URLs.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { ffmpegInputOptions, ffmpegOutputOptions, inputDemuxing, type EncoderSpec } from '../../src/ffmpeg/encoder-arguments.js';

const spec = (inputFormat?: string): EncoderSpec => ({ inputUrl: 'pipe:0', inputFormat, sampleRate: 48000, renditions: [{ bitrate: 64000, audioChannels: 2 }] });

function encodeFromStdin(input: Buffer, inputFormat?: string): { status: number | null; output: Buffer; stderr: string } {
  const args = [...ffmpegInputOptions(spec(inputFormat)), '-i', 'pipe:0', ...ffmpegOutputOptions(spec(inputFormat)), '-f', 'mpegts', 'pipe:1'];
  const result = spawnSync('ffmpeg', args, { input, maxBuffer: 16 * 1024 * 1024, timeout: 30_000 });
  return { status: result.status, output: result.stdout, stderr: result.stderr.toString() };
}

t.test('a piped input opens only the pipe, in the container it was told, else probed among audio containers', async (t) => {
  t.same(inputDemuxing('pipe:0', 'mp3'), { format: 'mp3', protocols: ['pipe'] });
  t.same(inputDemuxing('pipe:0', 'ogg'), { format: 'ogg', protocols: ['pipe'] });
  t.match(inputDemuxing('pipe:0', 'hls'), { format: undefined, protocols: ['pipe'], formats: Array }, 'a container not on the list is probed among audio ones instead');
  t.match(inputDemuxing('pipe:0'), { protocols: ['pipe'], formats: Array });
  const options = ffmpegInputOptions(spec('mp3'));
  t.same(options.slice(options.indexOf('-protocol_whitelist'), options.indexOf('-protocol_whitelist') + 4), ['-protocol_whitelist', 'pipe', '-f', 'mp3']);
});

t.test('real FFmpeg: MP3 on stdin becomes the encoder output; a playlist on stdin is refused', async (t) => {
  const mp3 = spawnSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=500:duration=2:sample_rate=44100', '-c:a', 'libmp3lame', '-b:a', '128k', '-f', 'mp3', 'pipe:1'], { maxBuffer: 8 * 1024 * 1024 }).stdout;
  t.ok(mp3.length > 10_000, 'an MP3 to send');
  for (const format of ['mp3', undefined]) {
    const encoded = encodeFromStdin(mp3, format);
    t.equal(encoded.status, 0, `${format ?? 'probed'}: ${encoded.stderr}`);
    t.ok(encoded.output.length > 188 * 10 && encoded.output[0] === 0x47, `${format ?? 'probed'}: MPEG-TS out`);
  }
  const playlist = Buffer.from('#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nhttp://127.0.0.1:9/secret.ts\n#EXT-X-ENDLIST\n');
  const refused = encodeFromStdin(playlist);
  t.not(refused.status, 0, 'a playlist is not an audio container');
  t.equal(refused.output.length, 0);
});
