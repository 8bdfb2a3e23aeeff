/**
 * How FFmpeg's stderr lines are read: a problem with the feed or the encoder, a
 * silencedetect report, or information to ignore.
 */

export type FfmpegLogLine = { kind: 'problem' } | { kind: 'silence'; silent: boolean } | { kind: 'info' };

/**
 * Warnings every run of an encoder with a FLAC rendition prints, by design: FFmpeg's MPEG-TS muxer
 * carries FLAC as PES private data (docs/architecture.md, "Opus and FLAC renditions").
 */
const EXPECTED_WARNINGS: readonly RegExp[] = [
  /^\[mpegts @ [^\]]*\] (?:\[warning\] )?frame size not set$/,
  /^\[mpegts @ [^\]]*\] (?:\[warning\] )?Stream \d+, codec flac, is muxed as a private data stream and may not be recognized upon reading\.$/,
];

/**
 * What a stderr line means. With `-loglevel level+…` FFmpeg tags each line with its level
 * (`[srt @ 0x…] [warning] …`); only warning and worse are problems. An untagged line comes
 * from `-loglevel warning`, which prints nothing below warning.
 */
export function readFfmpegLogLine(line: string): FfmpegLogLine {
  if (EXPECTED_WARNINGS.some((expected) => expected.test(line))) return { kind: 'info' };
  const silence = /^\[silencedetect @ [^\]]*\] (?:\[info\] )?silence_(start|end):/.exec(line);
  if (silence) return { kind: 'silence', silent: silence[1] === 'start' };
  const level = /^(?:\[[^\]]*\] )?\[(panic|fatal|error|warning|info|verbose|debug|trace)\] /.exec(line)?.[1];
  return level === undefined || ['panic', 'fatal', 'error', 'warning'].includes(level) ? { kind: 'problem' } : { kind: 'info' };
}
