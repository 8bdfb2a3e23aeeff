/** The attribute-list grammar (RFC 8216 §4.2, src/hls/playlist/attributes.ts): a table of lists and what they read as. */
import t from 'tap';
import { AttributeReader, formatAttributeList, parseAttributeList } from '../../../src/hls/playlist/attributes.js';

t.test('attribute lists read into names, values and whether each was quoted', async (t) => {
  const cases: [string, [string, string, boolean][]][] = [
    ['', []],
    ['A=1', [['A', '1', false]]],
    ['URI="a,b=c.ts",DURATION=1.00000', [['URI', 'a,b=c.ts', true], ['DURATION', '1.00000', false]]],
    ['EMPTY=""', [['EMPTY', '', true]]],
    ['TYPE=PART,X-1=0x1F,RES=640x360', [['TYPE', 'PART', false], ['X-1', '0x1F', false], ['RES', '640x360', false]]],
  ];
  for (const [text, expected] of cases) {
    const parsed = parseAttributeList(text, '#EXT-TEST');
    t.strictSame(
      [...parsed].map(([name, value]) => [name, value.text, value.quoted]),
      expected,
      JSON.stringify(text),
    );
  }
});

t.test('malformed attribute lists are refused', async (t) => {
  const bad = ['A', 'A=', 'a=1', 'A=1,', ',A=1', 'A="1', 'A="1"B=2', 'A=1,A=2', 'A=1 ', 'A=x"y', ' A=1', 'A=1,,B=2'];
  for (const text of bad) t.throws(() => parseAttributeList(text, '#EXT-TEST'), { code: 'ONAIR_PLAYLIST_INVALID' }, JSON.stringify(text));
});

t.test('typed readers insist on the type the spec gives the attribute', async (t) => {
  const reader = AttributeReader.parse('N=12,F=0.5,Q="q",E=YES', '#EXT-TEST');
  t.equal(reader.decimalInteger('N'), 12);
  t.equal(reader.decimalFloat('F'), 0.5);
  t.equal(reader.quotedString('Q'), 'q');
  t.equal(reader.yesNo('E'), true);
  t.equal(reader.decimalInteger('MISSING'), undefined);
  t.throws(() => reader.quotedString('N'), { code: 'ONAIR_PLAYLIST_INVALID' });
  t.throws(() => reader.decimalInteger('Q'), { code: 'ONAIR_PLAYLIST_INVALID' });
  t.throws(() => reader.decimalInteger('F'), { code: 'ONAIR_PLAYLIST_INVALID' });
  t.throws(() => reader.required('MISSING', reader.decimalInteger), { code: 'ONAIR_PLAYLIST_INVALID' });
});

t.test('a written list reads back the same', async (t) => {
  const text = formatAttributeList([
    ['URI', '"a,b.ts"'],
    ['DURATION', '1.00000'],
  ]);
  t.equal(text, 'URI="a,b.ts",DURATION=1.00000');
  t.strictSame([...parseAttributeList(text, '#EXT-TEST').keys()], ['URI', 'DURATION']);
});
