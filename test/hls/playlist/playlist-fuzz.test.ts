/**
 * A seeded fuzz corpus for the playlist codec: playlists the codec and the live writer
 * produce, garbled by random edits (characters, lines, numbers, tag fragments), fed to
 * the parser. It must throw nothing but PlaylistParseError, never hang, and whatever it
 * accepts must marshal and read back to the same text. The origin's live-edge reader must
 * not throw either. Replay a failure with `ONAIR_FUZZ_SEED=<seed>`.
 */
import t from 'tap';
import { renderMasterPlaylist, renderMediaPlaylist } from '../../../src/hls/playlist-writer.js';
import { marshalPlaylist, parsePlaylist, PlaylistParseError, type Playlist } from '../../../src/hls/playlist/index.js';
import { readPlaylistPosition } from '../../../src/origin/playlist-position.js';
import { fuzzSeed, SeededRandom } from '../../helpers/seeded-random.js';

const SEED = fuzzSeed(0x9e3779b9);
const CASES = 4000;
const NOON = Date.UTC(2024, 0, 1, 12, 0, 0, 0);

const CORPUS = [
  renderMediaPlaylist({
    targetDuration: 2,
    mediaSequence: 40,
    discontinuitySequence: 1,
    segments: [40, 41, 42].map((msn) => ({
      uri: `hifi/${msn}-2.ts`,
      durationSeconds: 1.98667,
      programDateTime: NOON + (msn - 40) * 1987,
      discontinuity: msn === 42,
      parts: [0, 1, 2].map((part) => ({ uri: `hifi/${msn}-2.${part}.ts`, durationSeconds: 0.66222 })),
    })),
    lowLatency: {
      partTargetSeconds: 0.68267,
      openParts: [{ uri: 'hifi/43-2.0.ts', durationSeconds: 0.66222 }],
      openDiscontinuity: true,
      preloadHintUri: 'hifi/43-2.1.ts',
      renditionReports: [{ uri: 'fip_lofi.m3u8', lastMsn: 43, lastPart: 0 }],
      skippedSegments: 1,
    },
  }),
  renderMediaPlaylist({
    targetDuration: 4,
    mediaSequence: 120,
    discontinuitySequence: 2,
    segments: [{ uri: 'lofi/120-3.ts', durationSeconds: 3.98933, programDateTime: NOON, discontinuity: false }],
  }),
  ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:1', '#EXT-X-PLAYLIST-TYPE:VOD', '#EXT-X-MEDIA-SEQUENCE:0', '#EXTINF:1.02400,', 's/41.ts', '#EXT-X-ENDLIST', ''].join('\n'),
  renderMasterPlaylist([
    { uri: 'fip_lofi.m3u8', bandwidth: 35_117.4, averageBandwidth: 34_002.1, codecs: 'mp4a.40.2' },
    { uri: 'fip_hifi.m3u8', bandwidth: 201_600, averageBandwidth: 199_000, codecs: 'mp4a.40.2' },
  ]),
];

const ALPHABET = '#EXT-X:=,"\n\r.0123456789ABCDEFINPRSTUVY/ _-éZ';
const FRAGMENTS = [
  '#EXTINF:',
  '#EXT-X-PART:',
  'URI="',
  '"',
  ',',
  '=',
  '\n',
  '\r\n',
  'DURATION=',
  '9007199254740993',
  '1e21',
  '-1',
  '0.000001',
  '999999999999999.999999',
];
/** Whole tag lines with values at the edges of what is valid, inserted between lines. */
const TAG_LINES = [
  '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="x"',
  '#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=""',
  '#EXT-X-STREAM-INF:BANDWIDTH=1',
  '#EXT-X-SKIP:SKIPPED-SEGMENTS=9007199254740991',
  '#EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:59:59.999-01:00',
  '#EXT-X-PROGRAM-DATE-TIME:0000-01-01T00:30:00+01:00',
  '#EXT-X-PROGRAM-DATE-TIME:2024-02-29T23:59:59.9999999+14:00',
  '#EXT-X-DISCONTINUITY',
  '#EXT-X-ENDLIST',
  '#EXTM3U',
  '#EXTINF:999999999999999.999999,',
  '#EXTINF:0.000004,title, with comma',
  '#EXT-X-PART:DURATION=0.000001,URI="p.ts",INDEPENDENT=NO',
  '#EXT-X-SERVER-CONTROL:HOLD-BACK=0.1,PART-HOLD-BACK=999999999999999.999999',
  '#EXT-X-PART-INF:PART-TARGET=0',
  '#EXT-X-RENDITION-REPORT:URI="r"',
  '#EXT-X-TARGETDURATION:9007199254740991',
  '#EXT-X-VERSION:0',
  '# a comment',
  '   ',
  'segment.ts',
];
const NUMBER = /[0-9]+(\.[0-9]+)?/g;

function mutate(text: string, random: SeededRandom): string {
  let mutated = text;
  for (let edits = random.int(1, 4); edits > 0; edits--) {
    const at = random.int(0, mutated.length);
    const lines = mutated.split('\n');
    const line = random.int(0, lines.length - 1);
    const edit = random.weighted<() => string>([
      [3, () => mutated.slice(0, at) + mutated.slice(at + random.int(1, 12))],
      [3, () => mutated.slice(0, at) + random.text(random.int(1, 6), ALPHABET) + mutated.slice(at)],
      [3, () => mutated.slice(0, at) + random.pick(FRAGMENTS) + mutated.slice(at)],
      [2, () => [...lines.slice(0, line), lines[line], ...lines.slice(line)].join('\n')],
      [3, () => [...lines.slice(0, line), random.pick(TAG_LINES), ...lines.slice(line)].join('\n')],
      [2, () => [...lines.slice(0, line), ...lines.slice(line + 1)].join('\n')],
      [2, () => swapLines(lines, line, random.int(0, lines.length - 1)).join('\n')],
      [2, () => replaceNumber(mutated, random)],
      [1, () => mutated.slice(0, at)],
    ]);
    mutated = edit();
  }
  return mutated;
}

function swapLines(lines: string[], first: number, second: number): string[] {
  const swapped = [...lines];
  [swapped[first], swapped[second]] = [swapped[second]!, swapped[first]!];
  return swapped;
}

function replaceNumber(text: string, random: SeededRandom): string {
  const numbers = [...text.matchAll(NUMBER)];
  if (numbers.length === 0) return text;
  const chosen = random.pick(numbers);
  const replacement = random.pick(['0', '00', '4.5', '-3', '18446744073709551616', '1e3', String(random.int(0, 2 ** 31)), '', '0.1234567']);
  return text.slice(0, chosen.index) + replacement + text.slice(chosen.index! + chosen[0].length);
}

t.test(`garbled playlists throw only PlaylistParseError, and what parses writes back stably (seed ${SEED})`, async (t) => {
  const random = new SeededRandom(SEED);
  const failures: string[] = [];
  let accepted = 0;
  let refused = 0;
  for (let index = 0; index < CASES && failures.length < 5; index++) {
    const text = mutate(random.pick(CORPUS), random);
    let parsed: Playlist;
    try {
      parsed = parsePlaylist(text);
    } catch (error) {
      if (error instanceof PlaylistParseError && error.code === 'ONAIR_PLAYLIST_INVALID') refused += 1;
      else failures.push(`case ${index} threw ${String(error)} for ${JSON.stringify(text)}`);
      continue;
    }
    accepted += 1;
    try {
      const written = marshalPlaylist(parsed);
      const rewritten = marshalPlaylist(parsePlaylist(written));
      if (rewritten !== written) failures.push(`case ${index}: ${JSON.stringify(written)} wrote back as ${JSON.stringify(rewritten)}`);
      readPlaylistPosition(text);
    } catch (error) {
      failures.push(`case ${index}: accepted, then ${String(error)} for ${JSON.stringify(text)}`);
    }
  }
  t.strictSame(failures, [], 'no case misbehaves');
  t.ok(accepted > CASES / 20, `some garbled playlists still parse (${accepted})`);
  t.ok(refused > CASES / 20, `many are refused (${refused})`);
});

t.test('long hostile lines are read in linear time', async (t) => {
  const hostile = [
    `#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART:${'A=1,'.repeat(100_000)}`,
    `#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART:URI="${'"'.repeat(200_000)}`,
    `#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:${'9'.repeat(200_000)}.5,\na.ts`,
    `#EXTM3U\n#EXT-X-TARGETDURATION:4\n${'#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00'.repeat(10_000)}`,
    `#EXTM3U\n${'\n'.repeat(400_000)}#EXT-X-STREAM-INF:BANDWIDTH=1\n`,
    `#EXTM3U\n#EXT-X-TARGETDURATION:4\n${'#EXTINF:1,\na.ts\n'.repeat(50_000)}`,
  ];
  for (const text of hostile) {
    const started = performance.now();
    try {
      parsePlaylist(text);
    } catch (error) {
      t.type(error, PlaylistParseError);
    }
    const elapsed = performance.now() - started;
    t.ok(elapsed < 2000, `${text.length} characters read in ${elapsed.toFixed(0)} ms`);
  }
});
