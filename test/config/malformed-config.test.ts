/**
 * Malformed config files, as a user would write them, loaded through the real loader
 * (src/config/load-config.ts `loadConfigFile`, from a temp dir): each one mistake must give
 * exactly one OnairError ONAIR_CONFIG_INVALID whose `where` is the key path of the mistake
 * (or `file:line:col` when the text is not YAML at all), whose message starts with it, and
 * which says what was expected, on a single line: no second issue for the same mistake.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfigFile } from '../../src/config/load-config.js';
import { isOnairError, type OnairError } from '../../src/errors.js';
import { rawTestChannel } from '../helpers/channel-config.js';

/** A valid channel list each YAML case adds to or edits in one place. */
const CHANNELS = `channels:
  - id: fip
    renditions:
      - { id: lofi, bitrate: 32k }
      - { id: hifi, bitrate: 192k }
    inputs:
      - { id: main, url: "srt://0.0.0.0:9000?mode=listener", srt: { passphrase: onair-test-passphrase } }
`;

/**
 * The same as JSON; `change` edits the object before it is written out as text. Typed `any`
 * on purpose: each case breaks a different key.
 */
function json(change: (config: Record<string, any>) => void = () => undefined): string {
  const config: Record<string, any> = {
    store: 'memory',
    hls: { segmentSeconds: '4s', windowSegments: 6 },
    channels: [rawTestChannel()],
  };
  change(config);
  return JSON.stringify(config, null, 2);
}

interface MalformedCase {
  name: string;
  /** `yaml` or `json`: the file's extension. */
  format: 'yaml' | 'json';
  text: string;
  /** The key path; `{file}` stands for the file's path (syntax errors give file:line:col). */
  where: string;
  /** The gist of what the message must say was expected. */
  expected: RegExp;
  /** Set for a known defect outside the loader: its message check is a tap todo until it is fixed. */
  todo?: string;
}

const cases: MalformedCase[] = [
  // Unknown keys.
  { name: 'an unknown key at the top', format: 'yaml', text: `stores: memory\n${CHANNELS}`, where: 'stores', expected: /^unknown key$/ },
  { name: 'a misspelled section', format: 'yaml', text: `hsl:\n  segmentSeconds: 4\n${CHANNELS}`, where: 'hsl', expected: /^unknown key$/ },
  {
    name: 'an unknown key in a rendition',
    format: 'yaml',
    text: CHANNELS.replace('{ id: hifi, bitrate: 192k }', '{ id: hifi, bitrate: 192k, codecs: aac }'),
    where: 'channels[0].renditions[1].codecs',
    expected: /^unknown key$/,
  },
  {
    name: 'an MP3 rendition above what LAME encodes',
    format: 'yaml',
    text: CHANNELS.replace('{ id: hifi, bitrate: 192k }', '{ id: hifi, bitrate: 448k, codec: mp3 }'),
    where: 'channels[0].renditions[1].bitrate',
    expected: /MP3 bitrate between 32k and 320k/,
  },
  { name: 'an unknown key in a channel (JSON)', format: 'json', text: json((c) => (c.channels[0].bitrate = '96k')), where: 'channels[0].bitrate', expected: /^unknown key$/ },

  // Wrong types: the message says what was expected and, where it helps, what was found.
  {
    name: 'renditions given as one string',
    format: 'yaml',
    text: CHANNELS.replace(/renditions:\n(?: {6}-.*\n)+/, 'renditions: lofi\n'),
    where: 'channels[0].renditions',
    expected: /expected array, received string/,
  },
  { name: 'origin given as a bare port', format: 'yaml', text: `origin: 8080\n${CHANNELS}`, where: 'origin', expected: /expected object, received number/ },
  {
    name: 'a port quoted as text (a wrong type, not a missing key)',
    format: 'yaml',
    text: `origin:\n  port: "8080"\n${CHANNELS}`,
    where: 'origin.port',
    expected: /^expected a TCP port number \(got the text "8080"\)$/,
  },
  {
    name: 'a window given as text (JSON)',
    format: 'json',
    text: json((c) => (c.hls.windowSegments = '6')),
    where: 'hls.windowSegments',
    expected: /^expected a number of segments \(got the text "6"\)$/,
  },
  {
    name: 'a window too large to be an integer (one mistake, one line)',
    format: 'yaml',
    text: `hls:\n  windowSegments: 99999999999999999999999\n${CHANNELS}`,
    where: 'hls.windowSegments',
    expected: /^expected a number of segments$/,
  },
  { name: 'a fractional window', format: 'yaml', text: `hls:\n  windowSegments: 6.5\n${CHANNELS}`, where: 'hls.windowSegments', expected: /^expected a number of segments \(got 6\.5\)$/ },
  {
    name: 'a store given as a number',
    format: 'yaml',
    text: `store: 6379\n${CHANNELS}`,
    where: 'store',
    expected: /^expected "memory" or a redis:\/\/ URL \(got 6379\)$/,
  },

  // Bitrates and durations.
  {
    name: 'a bitrate with a bad unit',
    format: 'yaml',
    text: CHANNELS.replace('bitrate: 192k', 'bitrate: 192q'),
    where: 'channels[0].renditions[1].bitrate',
    expected: /^expected a bitrate like 96k, between 8k and 512k$/,
  },
  {
    name: 'a bitrate out of range',
    format: 'yaml',
    text: CHANNELS.replace('bitrate: 192k', 'bitrate: 2M'),
    where: 'channels[0].renditions[1].bitrate',
    expected: /^expected a bitrate like 96k, between 8k and 512k$/,
  },
  {
    name: 'a bitrate in bits that is too low (JSON)',
    format: 'json',
    text: json((c) => (c.channels[0].renditions[0].bitrate = 96)),
    where: 'channels[0].renditions[0].bitrate',
    expected: /^expected a bitrate like 96k, between 8k and 512k$/,
  },
  {
    name: 'a bitrate given as a list',
    format: 'yaml',
    text: CHANNELS.replace('bitrate: 192k', 'bitrate: [192k]'),
    where: 'channels[0].renditions[1].bitrate',
    expected: /^expected a bitrate like 96k/,
  },
  {
    name: 'a duration in words',
    format: 'yaml',
    text: `hls:\n  segmentSeconds: 4 seconds\n${CHANNELS}`,
    where: 'hls.segmentSeconds',
    expected: /^expected a duration like 4s, between 0\.5s and 12s$/,
  },
  { name: 'a duration out of range', format: 'yaml', text: `hls:\n  segmentSeconds: 20s\n${CHANNELS}`, where: 'hls.segmentSeconds', expected: /between 0\.5s and 12s$/ },
  {
    name: 'a negative recovery time',
    format: 'yaml',
    text: CHANNELS.replace('  - id: fip\n', '  - id: fip\n    recoverSeconds: -5s\n'),
    where: 'channels[0].recoverSeconds',
    expected: /^expected a duration like 5s, between 0s and 600s$/,
  },

  // Duplicates.
  {
    name: 'two channels with one id',
    format: 'yaml',
    text: `${CHANNELS}  - id: fip\n    renditions: [{ id: lofi, bitrate: 32k }]\n    inputs: [{ id: main, url: /srv/loop.mp3 }]\n`,
    where: 'channels[1].id',
    expected: /^duplicate id "fip"$/,
  },
  {
    name: 'two renditions with one id (JSON)',
    format: 'json',
    text: json((c) => (c.channels[0].renditions[1].id = 'lofi')),
    where: 'channels[0].renditions[1].id',
    expected: /^duplicate id "lofi"$/,
  },
  {
    name: 'two SRT listeners on one port in two channels',
    format: 'yaml',
    text: `${CHANNELS}  - id: jazz\n    renditions: [{ id: lofi, bitrate: 32k }]\n    inputs: [{ id: main, url: "srt://0.0.0.0:9000?mode=listener", srt: { passphrase: onair-test-passphrase } }]\n`,
    where: 'channels[1].inputs[0].url',
    expected: /^SRT listener port 9000 is already used by channels\[0\]\.inputs\[0\]$/,
  },

  // Store, ports, channels, ids.
  { name: 'a store URL with one slash', format: 'yaml', text: `store: redis:/localhost:6379\n${CHANNELS}`, where: 'store', expected: /^expected "memory", redis:\/\/host:6379\/0/ },
  { name: 'a store of another kind (JSON)', format: 'json', text: json((c) => (c.store = 'memcached://127.0.0.1:11211')), where: 'store', expected: /^expected "memory", redis:\/\// },
  { name: 'a port above 65535', format: 'yaml', text: `origin:\n  port: 70000\n${CHANNELS}`, where: 'origin.port', expected: /^expected a TCP port number between 0 and 65535$/ },
  { name: 'a fractional port (JSON)', format: 'json', text: json((c) => (c.origin = { port: 8080.5 })), where: 'origin.port', expected: /^expected a TCP port number \(got 8080\.5\)$/ },
  { name: 'no channels', format: 'yaml', text: 'store: memory\nchannels: []\n', where: 'channels', expected: /^expected at least one channel$/ },
  { name: 'channels left out', format: 'yaml', text: 'store: memory\n', where: 'channels', expected: /^required$/ },
  { name: 'an empty JSON channel list', format: 'json', text: json((c) => (c.channels = [])), where: 'channels', expected: /^expected at least one channel$/ },
  {
    name: 'a channel id with an underscore',
    format: 'yaml',
    text: CHANNELS.replace('id: fip', 'id: fip_rock'),
    where: 'channels[0].id',
    expected: /^expected an id of 1–32 lowercase letters, digits and dashes \(no underscores\)$/,
  },
  {
    name: 'a rendition id with capitals',
    format: 'yaml',
    text: CHANNELS.replace('id: hifi', 'id: HiFi'),
    where: 'channels[0].renditions[1].id',
    expected: /lowercase letters, digits and dashes/,
  },

  // Not a config at all.
  { name: 'a list at the top', format: 'yaml', text: '- store: memory\n- channels: []\n', where: '(root)', expected: /^expected a mapping with store, origin, hls and channels$/ },
  { name: 'a JSON array at the top', format: 'json', text: '[{"store": "memory"}]', where: '(root)', expected: /^expected a mapping/ },
  { name: 'a bare string', format: 'yaml', text: 'channels.yaml\n', where: '(root)', expected: /^expected a mapping/ },
  {
    name: 'invalid YAML syntax (an unclosed flow sequence)',
    format: 'yaml',
    text: 'store: memory\nchannels:\n  - id: fip\n    renditions: [ { id: lofi, bitrate: 32k }\n',
    where: '{file}:5:1',
    expected: /^not valid YAML: .*end with a \]$/,
  },
  { name: 'a key given twice', format: 'yaml', text: `store: memory\nstore: memory\n${CHANNELS}`, where: '{file}:2:1', expected: /^not valid YAML: Map keys must be unique$/ },
  { name: 'tabs for indentation', format: 'yaml', text: 'channels:\n\t- id: fip\n', where: '{file}:2:1', expected: /^not valid YAML: Tabs are not allowed as indentation$/ },
  { name: 'invalid JSON (a missing comma)', format: 'json', text: '{\n  "store": "memory"\n  "channels": []\n}\n', where: '{file}:3:3', expected: /^not valid YAML: / },
  // Regressions: YAML resolves aliases after parsing, and its ReferenceError escaped the loader.
  { name: 'an alias to an undefined anchor', format: 'yaml', text: `store: *redis\n${CHANNELS}`, where: '{file}', expected: /^not valid YAML: Unresolved alias .*: redis$/ },
  {
    name: 'an alias bomb',
    format: 'yaml',
    text: `${['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((key, index) => `${key}: &${key} [${Array(9).fill(`*${'abcdefgh'[index]}`).join(', ')}]`)].join('\n')}\n${CHANNELS}`,
    where: '{file}',
    expected: /^not valid YAML: Excessive alias count/,
  },

  // Unions and ranges say what they expect (they once said zod's bare "Invalid input").
  {
    name: 'an unsupported sample rate',
    format: 'yaml',
    text: CHANNELS.replace('  - id: fip\n', '  - id: fip\n    sampleRate: 32000\n'),
    where: 'channels[0].sampleRate',
    expected: /44100.*48000/,
  },
  {
    name: 'six audio channels',
    format: 'yaml',
    text: CHANNELS.replace('  - id: fip\n', '  - id: fip\n    audioChannels: 6\n'),
    where: 'channels[0].audioChannels',
    expected: /\b1\b.*\b2\b/,
  },
  {
    name: 'a window larger than allowed',
    format: 'yaml',
    text: `hls:\n  windowSegments: 5000\n${CHANNELS}`,
    where: 'hls.windowSegments',
    expected: /1000/,
  },
];

const directory = mkdtempSync(join(tmpdir(), 'onair-malformed-config-'));
t.teardown(() => rmSync(directory, { recursive: true, force: true }));

t.test('the unbroken YAML and JSON files load, so each case below fails for its one mistake only', async (t) => {
  const yamlPath = join(directory, 'valid.yaml');
  const jsonPath = join(directory, 'valid.json');
  writeFileSync(yamlPath, `store: memory\n${CHANNELS}`);
  writeFileSync(jsonPath, json());
  t.equal((await loadConfigFile(yamlPath, {})).channels[0]!.renditions[1]!.bitrate, 192000);
  t.equal((await loadConfigFile(jsonPath, {})).channels[0]!.renditions[1]!.bitrate, 192000);
});

t.test('each malformed file gives one ONAIR_CONFIG_INVALID that names its key path and what was expected', async (t) => {
  t.ok(cases.length >= 12, `${cases.length} cases`);
  for (const [index, { name, format, text, where, expected, todo }] of cases.entries()) {
    t.test(name, async (t) => {
      // A known defect runs with its assertions marked todo: they show, but do not fail the run.
      const extra = todo ? { todo } : {};
      const path = join(directory, `case-${index}.${format}`);
      writeFileSync(path, text);
      const started = performance.now();
      const error = await loadConfigFile(path, {}).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      t.ok(performance.now() - started < 2000, 'answered within 2 s');
      t.ok(isOnairError(error, 'ONAIR_CONFIG_INVALID'), `an OnairError ONAIR_CONFIG_INVALID (got ${String(error)})`);
      if (!isOnairError(error)) return;
      const expectedWhere = where.replace('{file}', path);
      t.equal(error.where, expectedWhere, `reported at ${expectedWhere}`);
      t.ok(error.message.startsWith(`${expectedWhere}: `), 'the message starts with the key path');
      const reason = (error as OnairError).message.slice(expectedWhere.length + 2);
      t.notOk(reason.includes('\n'), `one issue, on one line: ${JSON.stringify(error.message)}`);
      t.match(reason, expected, `says what was expected: ${reason}`, extra);
    });
  }
});
