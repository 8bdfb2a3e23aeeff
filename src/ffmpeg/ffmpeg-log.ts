/**
 * How FFmpeg's stderr lines are read: a problem with the feed or the encoder, a
 * silencedetect report, or information to ignore.
 */

export type FfmpegLogLine = { kind: 'problem' } | { kind: 'silence'; silent: boolean } | { kind: 'info' };

/**
 * What a stderr line means. With `-loglevel level+…` FFmpeg tags each line with its level
 * (`[srt @ 0x…] [warning] …`); only warning and worse are problems. An untagged line comes
 * from `-loglevel warning`, which prints nothing below warning.
 */
export function readFfmpegLogLine(line: string): FfmpegLogLine {
  const silence = /^\[silencedetect @ [^\]]*\] (?:\[info\] )?silence_(start|end):/.exec(line);
  if (silence) return { kind: 'silence', silent: silence[1] === 'start' };
  const level = /^(?:\[[^\]]*\] )?\[(panic|fatal|error|warning|info|verbose|debug|trace)\] /.exec(line)?.[1];
  return level === undefined || ['panic', 'fatal', 'error', 'warning'].includes(level) ? { kind: 'problem' } : { kind: 'info' };
}
