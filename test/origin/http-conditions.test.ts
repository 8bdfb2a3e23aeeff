import t from 'tap';
import { acceptsGzip, decideRange, ifNoneMatchMatches, ifRangeAllowsPartial } from '../../src/origin/http-conditions.js';

t.test('one byte range is clamped to the representation', async (t) => {
  const cases: [string, number, ReturnType<typeof decideRange>][] = [
    ['bytes=0-0', 10, { kind: 'partial', start: 0, end: 0 }],
    ['bytes=2-', 10, { kind: 'partial', start: 2, end: 9 }],
    ['bytes=2-100', 10, { kind: 'partial', start: 2, end: 9 }],
    ['bytes=-3', 10, { kind: 'partial', start: 7, end: 9 }],
    ['bytes=-30', 10, { kind: 'partial', start: 0, end: 9 }],
    [' Bytes=1-2 ', 10, { kind: 'partial', start: 1, end: 2 }],
  ];
  for (const [header, size, expected] of cases) t.same(decideRange(header, size), expected, header);
});

t.test('a range with no byte inside the representation is unsatisfiable', async (t) => {
  for (const [header, size] of [['bytes=10-', 10], ['bytes=10-20', 10], ['bytes=-0', 10], ['bytes=0-', 0], ['bytes=-1', 0]] as const) {
    t.same(decideRange(header, size), { kind: 'unsatisfiable' }, `${header} of ${size}`);
  }
});

t.test('multiple, reversed or malformed ranges are ignored', async (t) => {
  const headers = [undefined, '', 'bytes=', 'bytes=-', 'bytes=5-2', 'bytes=0-1,3-4', 'bytes=a-b', 'pages=0-1', 'bytes=1.5-2', `bytes=0-${'1'.repeat(200)}`];
  for (const header of headers) t.same(decideRange(header, 10), { kind: 'full' }, String(header));
});

t.test('If-Range allows the range only for our exact strong ETag', async (t) => {
  t.ok(ifRangeAllowsPartial(undefined, '"a"'));
  t.ok(ifRangeAllowsPartial('"a"', '"a"'));
  t.notOk(ifRangeAllowsPartial('W/"a"', '"a"'));
  t.notOk(ifRangeAllowsPartial('"b"', '"a"'));
  t.notOk(ifRangeAllowsPartial('Wed, 01 May 2024 12:00:00 GMT', '"a"'));
});

t.test('If-None-Match matches with the weak comparison, in lists and for *', async (t) => {
  t.ok(ifNoneMatchMatches('"a"', ['"a"']));
  t.ok(ifNoneMatchMatches('W/"a"', ['"a"']));
  t.ok(ifNoneMatchMatches('"x", "b"', ['"a"', '"b"']));
  t.ok(ifNoneMatchMatches(' * ', ['"a"']));
  t.notOk(ifNoneMatchMatches(undefined, ['"a"']));
  t.notOk(ifNoneMatchMatches('"ab"', ['"a"']));
  t.notOk(ifNoneMatchMatches('a', ['"a"']));
});

t.test('gzip is accepted when named or covered by * with a non-zero quality', async (t) => {
  const cases: [string | undefined, boolean][] = [
    [undefined, false],
    ['', false],
    ['gzip', true],
    ['GZIP', true],
    ['x-gzip', true],
    ['deflate, gzip;q=0.5', true],
    ['gzip;q=0', false],
    ['gzip; q=0.000', false],
    ['*', true],
    ['*;q=0', false],
    ['gzip;q=0, *', false],
    ['br, identity', false],
    ['gzip;q=abc', false],
  ];
  for (const [header, expected] of cases) t.equal(acceptsGzip(header), expected, String(header));
  // The last header's answer is kept: repeats and alternations give each header its own answer.
  for (const [header, expected] of [...cases, ...cases.reverse()]) {
    t.equal(acceptsGzip(header), expected, `${String(header)} again`);
    t.equal(acceptsGzip(header), expected, `${String(header)} repeated`);
  }
});
