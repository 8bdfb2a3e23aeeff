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
