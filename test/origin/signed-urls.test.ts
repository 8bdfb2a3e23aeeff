import { createHmac } from 'node:crypto';
import * as crypto from 'node:crypto';
import t from 'tap';
import { addTokenToMpd, addTokenToPlaylist, channelPathPrefix, signPath, verifyToken } from '../../src/origin/signed-urls.js';
import { renderChannelMpds } from '../../src/dash/channel-mpd.js';

const KEY = 'onair-test-signing-key-0123456789abcdef';
const EXPIRES_AT = 1893456000; // 2030-01-01T00:00:00Z
const BEFORE = EXPIRES_AT - 3600;
/** Computed with `openssl dgst -sha256 -hmac "$KEY"` over `1893456000~L2ZpcC8`, base64url without padding. */
const GOLDEN_FIP_TOKEN = '1893456000~L2ZpcC8~WrTzPUGEX-ZSt_XrpRVQGqXqyfjtBAYBOr7a4ZenmAk';

const fipToken = signPath({ key: KEY, pathPrefix: '/fip/', expiresAt: EXPIRES_AT });

t.test('a token is the documented text, byte for byte, and needs no URL encoding', async (t) => {
  t.equal(fipToken, GOLDEN_FIP_TOKEN);
  t.equal(encodeURIComponent(fipToken), fipToken);
  t.equal(channelPathPrefix('fip'), '/fip/');
});

t.test('a backend that mints tokens with a few lines of node:crypto gets tokens the origin accepts', async (t) => {
  // The snippet of the README's "Protected channels" section.
  const mint = (key: string, prefix: string, expiresAt: number): string => {
    const signed = `${expiresAt}~${Buffer.from(prefix).toString('base64url')}`;
    return `${signed}~${createHmac('sha256', key).update(signed).digest('base64url')}`;
  };
  const minted = mint(KEY, '/fip/', EXPIRES_AT);
  t.equal(minted, fipToken);
  t.same(verifyToken(KEY, minted, '/fip/fip.m3u8', BEFORE), { ok: true, expiresAt: EXPIRES_AT });
});

t.test('a token for a channel prefix covers every playlist, part and segment of that channel', async (t) => {
  for (const path of ['/fip/fip.m3u8', '/fip/fip_hifi.m3u8', '/fip/hifi/100-1.ts', '/fip/hifi/100-1.2.ts']) {
    t.same(verifyToken(KEY, fipToken, path, BEFORE), { ok: true, expiresAt: EXPIRES_AT }, path);
  }
});

t.test('a token is valid until its expiry second, then refused as expired', async (t) => {
  t.ok(verifyToken(KEY, fipToken, '/fip/fip.m3u8', EXPIRES_AT - 0.001).ok);
  t.same(verifyToken(KEY, fipToken, '/fip/fip.m3u8', EXPIRES_AT), { ok: false, reason: 'expired' });
  t.same(verifyToken(KEY, fipToken, '/fip/fip.m3u8', EXPIRES_AT + 86400), { ok: false, reason: 'expired' });
  t.same(verifyToken(KEY, fipToken, '/fip/fip.m3u8', Number.NaN), { ok: false, reason: 'expired' }, 'a broken clock accepts nothing');
});

t.test('a token for another channel, or for a look-alike path, is refused as wrong-path', async (t) => {
  const jazzToken = signPath({ key: KEY, pathPrefix: channelPathPrefix('jazz'), expiresAt: EXPIRES_AT });
  t.same(verifyToken(KEY, jazzToken, '/fip/fip.m3u8', BEFORE), { ok: false, reason: 'wrong-path' });
  for (const path of ['/fip2/fip2.m3u8', '/fip', '/fip.m3u8', '/jazz/jazz.m3u8']) {
    t.same(verifyToken(KEY, fipToken, path, BEFORE), { ok: false, reason: 'wrong-path' }, path);
  }
});

t.test('a path a proxy could normalise into another channel is refused even under the right prefix', async (t) => {
  for (const path of ['/fip/../jazz/jazz.m3u8', '/fip/./fip.m3u8', '/fip/..', '/fip//jazz/jazz.m3u8', '/fip/%2e%2e/jazz/jazz.m3u8', '/fip/..\\jazz']) {
    t.same(verifyToken(KEY, fipToken, path, BEFORE), { ok: false, reason: 'wrong-path' }, path);
  }
});

t.test('a token whose expiry, prefix or signature was changed is refused as forged', async (t) => {
  const [expiresAt, prefix, signature] = fipToken.split('~') as [string, string, string];
  const jazzPrefix = Buffer.from('/jazz/').toString('base64url');
  const forged = {
    'later expiry': `${Number(expiresAt) + 3600}~${prefix}~${signature}`,
    'another prefix': `${expiresAt}~${jazzPrefix}~${signature}`,
    'first signature character': `${expiresAt}~${prefix}~${flip(signature, 0)}`,
    'last signature character': `${expiresAt}~${prefix}~${flip(signature, 42)}`,
    'another key': signPath({ key: `${KEY}-other`, pathPrefix: '/fip/', expiresAt: EXPIRES_AT }),
  };
  for (const [change, token] of Object.entries(forged)) {
    t.same(verifyToken(KEY, token, '/fip/fip.m3u8', BEFORE), { ok: false, reason: 'forged' }, change);
  }
  t.same(verifyToken('', fipToken, '/fip/fip.m3u8', BEFORE), { ok: false, reason: 'forged' }, 'without a key nothing is accepted');
});

t.test('a token that is absent is missing; anything not shaped like a token is malformed', async (t) => {
  t.same(verifyToken(KEY, undefined, '/fip/fip.m3u8', BEFORE), { ok: false, reason: 'missing' });
  t.same(verifyToken(KEY, '', '/fip/fip.m3u8', BEFORE), { ok: false, reason: 'missing' });
  const [expiresAt, prefix, signature] = fipToken.split('~') as [string, string, string];
  const malformed: Record<string, unknown> = {
    'a repeated parameter': [fipToken, fipToken],
    'a number': 1893456000,
    null: null,
    'an object': { token: fipToken },
    'plain text': 'letmein',
    'separators only': '~~',
    'a short signature': `${expiresAt}~${prefix}~${signature.slice(1)}`,
    'a long signature': `${expiresAt}~${prefix}~${signature}A`,
    'a padded signature': `${expiresAt}~${prefix}~${signature}=`,
    'a standard base64 signature': `${expiresAt}~${prefix}~${signature.replace(/[-_]/g, '+')}`,
    'a leading zero': `0${fipToken}`,
    'milliseconds': `${expiresAt}000~${prefix}~${signature}`,
    'a fourth part': `${fipToken}~x`,
    'a space': ` ${fipToken}`,
    'an empty prefix': `${expiresAt}~~${signature}`,
    'a huge string': 'A'.repeat(10_000_000),
    'a huge token-like string': `${expiresAt}~${'A'.repeat(1_000_000)}~${signature}`,
  };
  for (const [what, token] of Object.entries(malformed)) {
    t.same(verifyToken(KEY, token, '/fip/fip.m3u8', BEFORE), { ok: false, reason: 'malformed' }, what);
  }
});

t.test('no single-character change of a valid token is accepted, and none throws', async (t) => {
  const replacements = ['A', 'z', '0', '9', '-', '_', '~', '.', '%', '/', ' ', 'é', '\u0000'];
  let refused = 0;
  for (let position = 0; position < fipToken.length; position++) {
    for (const replacement of replacements) {
      if (fipToken[position] === replacement) continue;
      const changed = fipToken.slice(0, position) + replacement + fipToken.slice(position + 1);
      if (!verifyToken(KEY, changed, '/fip/fip.m3u8', BEFORE).ok) refused += 1;
      else t.fail(`accepted ${changed}`);
    }
  }
  t.ok(refused > fipToken.length * 10, `${refused} changed tokens refused`);
});

t.test('random strings and random paths never throw and are never accepted', async (t) => {
  const random = xorshift(0x5eed);
  const alphabet = 'AZaz09-_~.%/?&=+ \u00e9\u2028';
  for (let round = 0; round < 5000; round++) {
    const length = random() % 120;
    let token = '';
    for (let i = 0; i < length; i++) token += alphabet[random() % alphabet.length];
    const path = `/${token.slice(0, random() % 20)}`;
    const check = verifyToken(KEY, token, path, BEFORE);
    if (check.ok) t.fail(`accepted ${JSON.stringify(token)}`);
  }
  t.pass('5000 random tokens refused without an exception');
});

t.test('signatures are compared in constant time, on equal lengths only', async (t) => {
  const compared: [number, number][] = [];
  const { verifyToken: verifyWithSpy } = await t.mockImport<typeof import('../../src/origin/signed-urls.js')>(
    '../../src/origin/signed-urls.js',
    {
      'node:crypto': {
        ...crypto,
        timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
          compared.push([a.byteLength, b.byteLength]);
          return crypto.timingSafeEqual(a, b);
        },
      },
    },
  );
  const [expiresAt, prefix, signature] = fipToken.split('~') as [string, string, string];
  t.ok(verifyWithSpy(KEY, fipToken, '/fip/fip.m3u8', BEFORE).ok);
  t.same(verifyWithSpy(KEY, `${expiresAt}~${prefix}~${flip(signature, 0)}`, '/fip/fip.m3u8', BEFORE), { ok: false, reason: 'forged' });
  t.same(compared, [[43, 43], [43, 43]], 'both checks went through timingSafeEqual with 43-byte signatures');
  verifyWithSpy(KEY, `${expiresAt}~${prefix}~${signature.slice(1)}`, '/fip/fip.m3u8', BEFORE);
  t.equal(compared.length, 2, 'a signature of another length is malformed before any comparison');
});

t.test('signPath refuses what would make an ambiguous or unverifiable token', async (t) => {
  const cases: Record<string, Parameters<typeof signPath>[0]> = {
    'an empty key': { key: '', pathPrefix: '/fip/', expiresAt: EXPIRES_AT },
    'a relative prefix': { key: KEY, pathPrefix: 'fip/', expiresAt: EXPIRES_AT },
    'a prefix with a query': { key: KEY, pathPrefix: '/fip/?a=b', expiresAt: EXPIRES_AT },
    'a prefix with a dot segment': { key: KEY, pathPrefix: '/fip/../', expiresAt: EXPIRES_AT },
    'a percent-encoded prefix': { key: KEY, pathPrefix: '/f%69p/', expiresAt: EXPIRES_AT },
    'an expiry in milliseconds': { key: KEY, pathPrefix: '/fip/', expiresAt: EXPIRES_AT * 1000 },
    'a fractional expiry': { key: KEY, pathPrefix: '/fip/', expiresAt: EXPIRES_AT + 0.5 },
  };
  for (const [what, options] of Object.entries(cases)) {
    t.throws(() => signPath(options), RangeError, what);
  }
});

const MEDIA_PLAYLIST = [
  '#EXTM3U',
  '#EXT-X-VERSION:9',
  '#EXT-X-TARGETDURATION:4',
  '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.0,CAN-SKIP-UNTIL=24',
  '#EXT-X-PART-INF:PART-TARGET=1.0',
  '#EXT-X-MEDIA-SEQUENCE:100',
  '#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z',
  '#EXTINF:3.989,',
  'hifi/100-1.ts',
  '#EXT-X-PART:DURATION=1.0,URI="hifi/101-1.0.ts",INDEPENDENT=YES',
  '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="hifi/101-1.1.ts"',
  '#EXT-X-RENDITION-REPORT:URI="fip_lofi.m3u8",LAST-MSN=101,LAST-PART=0',
  '',
].join('\n');

t.test('every URI of a media playlist gets the token: URI lines and URI attributes', async (t) => {
  t.equal(
    addTokenToPlaylist(MEDIA_PLAYLIST, 'T'),
    MEDIA_PLAYLIST.replace('hifi/100-1.ts', 'hifi/100-1.ts?token=T')
      .replace('"hifi/101-1.0.ts"', '"hifi/101-1.0.ts?token=T"')
      .replace('"hifi/101-1.1.ts"', '"hifi/101-1.1.ts?token=T"')
      .replace('"fip_lofi.m3u8"', '"fip_lofi.m3u8?token=T"'),
  );
});

t.test('master variants and EXT-X-MEDIA URIs get the token; a URI with a query gets it after &', async (t) => {
  const master = [
    '#EXTM3U',
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="hifi",URI="fip_hifi.m3u8?lang=fr"',
    '#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS="mp4a.40.2"',
    'fip_hifi.m3u8',
    '',
  ].join('\r\n');
  t.equal(
    addTokenToPlaylist(master, 'T'),
    master.replace('"fip_hifi.m3u8?lang=fr"', '"fip_hifi.m3u8?lang=fr&token=T"').replace('\r\nfip_hifi.m3u8\r\n', '\r\nfip_hifi.m3u8?token=T\r\n'),
    'CRLF line ends are kept',
  );
});

t.test('absolute URIs, comments and URI-like text inside other attributes are left alone', async (t) => {
  const playlist = [
    '#EXTM3U',
    '# a comment with URI="x.ts"',
    '#EXT-X-SESSION-DATA:DATA-ID="com.example",VALUE="a,URI=",LANGUAGE="fr"',
    '#EXT-X-DATERANGE:ID="ad",X-AD-URI="https://ads.example/x"',
    '#EXTINF:4,',
    'https://cdn.example/fip/hifi/1-1.ts',
    '#EXTINF:4,',
    '//cdn.example/fip/hifi/2-1.ts',
    '',
  ].join('\n');
  t.equal(addTokenToPlaylist(playlist, 'T'), playlist);
});

t.test("a channel MPD's SegmentTemplate media and initialization get the token, and nothing else changes", async (t) => {
  const token = signPath({ key: 'k', pathPrefix: '/fip/', expiresAt: 2_000_000_000 });
  const mpd = renderChannelMpds(
    { id: 'fip', sampleRate: 48_000, renditions: [{ id: 'hifi', codec: 'aac', bitrate: 192_000 }] },
    {
      version: 1,
      targetDuration: 2,
      nextMsn: 12,
      discontinuitySequence: 0,
      nextPts: 900_000,
      bandwidth: {},
      window: [10, 11].map((msn) => ({ msn, run: msn === 10 ? 3 : 4, durationSeconds: 2, programDateTime: 1_700_000_000_000 + msn * 2000, discontinuity: msn === 11, bytes: { hifi: 1000 } })),
    },
  )['fip.mpd']!;
  t.match(mpd, 'media="$RepresentationID$/$Number$-3.m4s"', 'the fixture names segments by $Number$');
  const signed = addTokenToMpd(mpd, token);
  t.equal(
    signed,
    mpd.replaceAll(/(initialization|media)="([^"]*)"/g, `$1="$2?token=${token}"`),
    'both Periods: media and initialization (and only those) end in ?token=',
  );
  t.equal((signed.match(/\?token=/g) ?? []).length, 4, 'two Periods, two URLs each');
  t.match(signed, '<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="/time"/>', 'UTCTiming stays public');
  t.match(signed, `media="$RepresentationID$/$Number$-3.m4s?token=${token}"`, 'the token follows the template, whose identifiers stay whole');
});

t.test('MPD: a template with a query gets &amp;token; absolute URLs, BaseURL and look-alike attributes are left alone', async (t) => {
  const mpd = [
    '<MPD>',
    '<BaseURL>seg/</BaseURL>',
    `<SegmentTemplate timescale="48000" initialization='i.mp4?a=1&amp;b=2' media="$Number$.m4s?x=$$" index="idx.sidx"/>`,
    '<SegmentTemplate title="a media=&quot;x&quot; > initialization=y" media="https://cdn.example/$Number$.m4s" initialization="//cdn.example/i.mp4" xmedia="m.m4s" media2="n.m4s">',
    '</SegmentTemplate>',
    '<SegmentTemplateX media="z.m4s"/>',
    '<SegmentTemplate media=""/>',
    '</MPD>',
  ].join('\n');
  t.equal(
    addTokenToMpd(mpd, 'T'),
    mpd
      .replace(`'i.mp4?a=1&amp;b=2'`, `'i.mp4?a=1&amp;b=2&amp;token=T'`)
      .replace('"$Number$.m4s?x=$$"', () => '"$Number$.m4s?x=$$&amp;token=T"')
      .replace('"idx.sidx"', '"idx.sidx?token=T"'),
  );
});

t.test("MPD: a cbcs channel's dashif:Laurl (mpdLicenseBaseUrl) gets the token too, though absolute: onair wrote it", async (t) => {
  const token = signPath({ key: 'k', pathPrefix: '/fip/', expiresAt: 2_000_000_000 });
  const mpd = renderChannelMpds(
    { id: 'fip', sampleRate: 48_000, renditions: [{ id: 'hifi', codec: 'aac', bitrate: 192_000 }], encryption: 'cbcs', keyRotationSegments: 10, mpdLicenseBaseUrl: 'https://radio.example' },
    {
      version: 1,
      targetDuration: 2,
      nextMsn: 12,
      discontinuitySequence: 0,
      nextPts: 900_000,
      bandwidth: {},
      window: [10, 11].map((msn) => ({ msn, run: 3, durationSeconds: 2, programDateTime: 1_700_000_000_000 + msn * 2000, discontinuity: false, bytes: { hifi: 1000 } })),
    },
  )['fip.mpd']!;
  t.match(mpd, '<dashif:Laurl>https://radio.example/fip/clearkey</dashif:Laurl>', 'the fixture names its license URL');
  const signed = addTokenToMpd(mpd, token);
  t.equal(
    signed,
    mpd
      .replaceAll(/(initialization|media)="([^"]*)"/g, `$1="$2?token=${token}"`)
      .replace('https://radio.example/fip/clearkey<', `https://radio.example/fip/clearkey?token=${token}<`),
    'the templates and the Laurl, nothing else',
  );
  t.equal(addTokenToMpd('<dashif:Laurl>https://radio.example/fip/clearkey?a=1</dashif:Laurl>', 'T'), '<dashif:Laurl>https://radio.example/fip/clearkey?a=1&amp;token=T</dashif:Laurl>', 'after &amp; when it has a query');
});

function flip(text: string, index: number): string {
  const replacement = text[index] === 'A' ? 'B' : 'A';
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

/** A small deterministic generator, so a failing round can be replayed. */
function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}
