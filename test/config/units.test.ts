/**
 * Units in config files (src/config/units.ts): bitrates like `96k` and durations like
 * `500ms` parse to bits per second and seconds; anything else is rejected (undefined).
 */
import t from 'tap';
import { formatBitrate, parseBitrate, parseByteSize, parseDurationSeconds } from '../../src/config/units.js';

t.test('bitrates written the way people write them parse to bits per second', async (t) => {
  const cases: [unknown, number][] = [
    ['96k', 96000],
    ['96K', 96000],
    ['96000', 96000],
    [96000, 96000],
    [95999.6, 96000],
    ['1.5M', 1500000],
    ['1.5m', 1500000],
    ['128 kbps', 128000],
    ['128kbps', 128000],
    ['64kb/s', 64000],
    ['  192k  ', 192000],
    ['32 k', 32000],
  ];
  for (const [input, expected] of cases) t.equal(parseBitrate(input), expected, `${JSON.stringify(input)} is ${expected} bit/s`);
});

t.test('anything that is not a positive bitrate is rejected', async (t) => {
  const cases: unknown[] = ['x', '', ' ', -1, 0, '0', '0k', '96q', 'k', '-96k', '96kk', '1.5.0M', '96 kilobits', NaN, Infinity, null, undefined, true, {}, ['96k']];
  for (const input of cases) t.equal(parseBitrate(input), undefined, `${String(JSON.stringify(input))} is not a bitrate`);
});

t.test('durations are seconds by default and accept ms, s, m, h and d', async (t) => {
  const cases: [unknown, number][] = [
    ['4', 4],
    ['4s', 4],
    [' 4 s ', 4],
    ['500ms', 0.5],
    ['1.5s', 1.5],
    ['2m', 120],
    ['1h', 3600],
    ['30d', 30 * 86400],
    [4, 4],
    [0.5, 0.5],
    [0, 0],
  ];
  for (const [input, expected] of cases) t.equal(parseDurationSeconds(input), expected, `${JSON.stringify(input)} is ${expected} s`);
});

t.test('anything that is not a non-negative duration is rejected', async (t) => {
  const cases: unknown[] = ['abc', '', 's', '-1', -1, '4sec', '4 seconds', '4w', '1:30', NaN, Infinity, null, undefined, false, {}];
  for (const input of cases) t.equal(parseDurationSeconds(input), undefined, `${String(JSON.stringify(input))} is not a duration`);
});

t.test('sizes are bytes by default; k, M, G and T are powers of 1024; anything else is refused', async (t) => {
  const cases: [unknown, number][] = [
    ['512', 512],
    ['4k', 4096],
    ['500M', 500 * 1024 ** 2],
    ['500MB', 500 * 1024 ** 2],
    ['20G', 20 * 1024 ** 3],
    ['1.5TiB', 1.5 * 1024 ** 4],
    [1024, 1024],
  ];
  for (const [input, expected] of cases) t.equal(parseByteSize(input), expected, `${JSON.stringify(input)} is ${expected} bytes`);
  for (const input of ['lots', '', '-1', -1, '20 gigs', '1P', NaN, null]) t.equal(parseByteSize(input), undefined, `${String(JSON.stringify(input))} is not a size`);
});

t.test('resolved bitrates print back in the short form when they are whole kilobits', async (t) => {
  t.equal(formatBitrate(96000), '96k');
  t.equal(formatBitrate(parseBitrate('192k')!), '192k');
  t.equal(formatBitrate(96500), '96500');
});
