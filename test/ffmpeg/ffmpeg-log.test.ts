/** How FFmpeg's stderr lines are read (src/ffmpeg/ffmpeg-log.ts). */
import t from 'tap';
import { readFfmpegLogLine } from '../../src/ffmpeg/ffmpeg-log.js';

t.test('stderr lines: problems, silence reports and information are told apart', async (t) => {
  const cases: [string, ReturnType<typeof readFfmpegLogLine>][] = [
    ['[srt @ 0x55d] Connection to srt://0.0.0.0:9000 failed: Input/output error', { kind: 'problem' }],
    ['[aac @ 0x1] [warning] Queue input is backward in time', { kind: 'problem' }],
    ['[error] Error while decoding stream #0:0', { kind: 'problem' }],
    ['[fatal] Conversion failed!', { kind: 'problem' }],
    ['[info] Stream mapping:', { kind: 'info' }],
    ['[aac @ 0x5573b413e980] [info] Qavg: 33071.723', { kind: 'info' }],
    ['[silencedetect @ 0x5573b4159580] [info] silence_start: 1', { kind: 'silence', silent: true }],
    ['[silencedetect @ 0x5573b4159580] [info] silence_end: 4.00002 | silence_duration: 3.00002', { kind: 'silence', silent: false }],
  ];
  for (const [line, meaning] of cases) t.same(readFfmpegLogLine(line), meaning, line);
});

t.test("the MPEG-TS muxer's warnings about a FLAC rendition, expected on every run, are information", async (t) => {
  const cases: [string, ReturnType<typeof readFfmpegLogLine>][] = [
    ['[mpegts @ 0x5635c5150700] frame size not set', { kind: 'info' }],
    ['[mpegts @ 0x5635c5150700] Stream 2, codec flac, is muxed as a private data stream and may not be recognized upon reading.', { kind: 'info' }],
    ['[mpegts @ 0x5625d40ab2c0] [warning] Stream 0, codec flac, is muxed as a private data stream and may not be recognized upon reading.', { kind: 'info' }],
    ['[mpegts @ 0x5635c5150700] Stream 2, codec vorbis, is muxed as a private data stream and may not be recognized upon reading.', { kind: 'problem' }],
  ];
  for (const [line, meaning] of cases) t.same(readFfmpegLogLine(line), meaning, line);
});
