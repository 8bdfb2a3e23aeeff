/**
 * EXT-X-KEY tags of several KEYFORMATs before one segment (RFC 8216 §4.3.2.4: they may, yielding one key; a
 * player uses one it supports), as cbcs channels with `hlsKeyFormats` write them: `identity`
 * and `org.w3.clearkey` (KEYFORMATVERSIONS) read into one key with `otherFormats`, written back
 * in the same order; two tags of one format before one segment are refused.
 */
import t from 'tap';
import { marshalMediaPlaylist, parseMediaPlaylist, PlaylistParseError } from '../../../src/hls/playlist/index.js';

const IV = '0000000000000000000000000000002a';
const IDENTITY = `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key-42.key",IV=0x${IV},KEYFORMAT="identity"`;
const CLEARKEY = `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;base64,AAECAwQFBgcICQoLDA0ODw==",IV=0x${IV},KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`;

function playlist(keyLines: string[]): string {
  return ['#EXTM3U', '#EXT-X-VERSION:6', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:84', ...keyLines, '#EXT-X-MAP:URI="hifi/init-1-k42.mp4"', '#EXTINF:2.00000,', 'hifi/84-1.m4s', '#EXTINF:2.00000,', 'hifi/85-1.m4s', ''].join('\n');
}

const clearKey = { method: 'SAMPLE-AES', uri: 'data:text/plain;base64,AAECAwQFBgcICQoLDA0ODw==', iv: IV, keyFormat: 'org.w3.clearkey', keyFormatVersions: '1' };
const identity = { method: 'SAMPLE-AES', uri: 'key-42.key', iv: IV, keyFormat: 'identity' };

t.test('a ClearKey tag alone round-trips', async (t) => {
  const text = playlist([CLEARKEY]);
  const parsed = parseMediaPlaylist(text);
  t.same(parsed.segments[0]!.key, clearKey);
  t.equal(marshalMediaPlaylist(parsed), text);
});

t.test('identity and ClearKey tags before one segment: one key, its other format, in order', async (t) => {
  for (const [first, second, firstKey, secondKey] of [
    [IDENTITY, CLEARKEY, identity, clearKey],
    [CLEARKEY, IDENTITY, clearKey, identity],
  ] as const) {
    const text = playlist([first, second]);
    const parsed = parseMediaPlaylist(text);
    t.same(parsed.segments[0]!.key, { ...firstKey, otherFormats: [secondKey] });
    t.equal(parsed.segments[1]!.key, undefined, 'not repeated on the next segment');
    t.equal(marshalMediaPlaylist(parsed), text);
  }
});

t.test('two tags of one KEYFORMAT before one segment, or another KEYFORMAT, are refused', async (t) => {
  t.throws(() => parseMediaPlaylist(playlist([IDENTITY, IDENTITY.replace('key-42', 'key-43')])), PlaylistParseError);
  t.throws(() => parseMediaPlaylist(playlist([CLEARKEY, CLEARKEY])), PlaylistParseError);
  t.throws(() => parseMediaPlaylist(playlist([IDENTITY.replace('KEYFORMAT="identity"', 'KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"')])), PlaylistParseError);
});
