/**
 * AES-128 content encryption (docs/architecture.md, "Content encryption"): the cipher against
 * a published vector and in round trips, keys per rotation period kept in the store, and a real
 * packager on a MemoryStore whose stored segments and LL-HLS parts decrypt, under the key and
 * IV their playlists name, to exactly the bytes a clear channel stores, with EXT-X-KEY where the
 * key rotates in the live, delta and DVR playlists.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { parseContentKeyName, parseSegmentUri, partName, segmentName } from '../../src/hls/published-names.js';
import { aes128CbcBlocks, cbcsSealer, ContentKeys, contentKeyId, contentKeyIv, decryptAes128Cbc, encryptAes128Cbc, StoredSegmentOpener, type OpenedSegment } from '../../src/hls/segment-encryption.js';
import { initSegmentFor, formatFor } from '../../src/media/fmp4-muxer.js';
import { cbcsProtectionOf } from '../../src/hls/segment-encryption.js';
import { Fmp4Muxer } from '../../src/media/fmp4-muxer.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { feedSideBySide, FrameSource } from '../helpers/aac-frames.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { rawTestChannel } from '../helpers/channel-config.js';

const SEGMENT_SECONDS = 1;

t.test('AES-128-CBC matches NIST SP 800-38A F.2.1 and pads with PKCS7', async (t) => {
  const key = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
  const iv = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const plain = Buffer.from('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51', 'hex');
  const sealed = Buffer.from(encryptAes128Cbc(plain, key, iv));
  t.equal(sealed.subarray(0, 32).toString('hex'), '7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2');
  t.equal(sealed.byteLength, 48, 'whole blocks get a whole block of padding');
  t.same(Buffer.from(decryptAes128Cbc(sealed, key, iv)), plain);
  for (const length of [0, 1, 15, 16, 17, 188 * 7]) {
    const bytes = Buffer.alloc(length, 7);
    const round = encryptAes128Cbc(bytes, key, iv);
    t.equal(round.byteLength, (Math.floor(length / 16) + 1) * 16, `${length} bytes pad to the next block`);
    t.same(Buffer.from(decryptAes128Cbc(round, key, iv)), bytes);
  }
  t.throws(() => decryptAes128Cbc(sealed, Buffer.alloc(16, 1), iv), 'a wrong key fails the padding check');
});

t.test('cbcs: the block cipher is AES-128-CBC without padding (NIST F.2.1); a segment sealed whole is its parts sealed one by one', async (t) => {
  const key = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
  const iv = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const plain = Buffer.from('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51', 'hex');
  const sealed = Buffer.from(aes128CbcBlocks(key, 'encrypt')(plain, iv));
  t.equal(sealed.toString('hex'), '7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2', 'no padding block');
  t.same(Buffer.from(aes128CbcBlocks(key, 'decrypt')(sealed, iv)), plain);
  const source = new FrameSource([300]);
  const frames = Array.from({ length: 40 }, (_, index) => ({ data: source.next()[0]!.data, pts: index * 1920, durationTicks: 1920 }));
  const muxer = new Fmp4Muxer({ codec: 'aac' });
  const parts = [frames.slice(0, 13), frames.slice(13, 26), frames.slice(26)].map((run) => muxer.muxSegment(run));
  const sealer = cbcsSealer(3, key, iv);
  const whole = Buffer.concat(parts);
  const sealedWhole = sealer.seal(whole);
  t.same(Buffer.from(sealedWhole), Buffer.concat(parts.map((part) => sealer.seal(part))), 'the parts sealed one by one are the segment sealed whole');
  t.not(Buffer.from(sealedWhole).toString('hex'), whole.toString('hex'), 'sealing changed the bytes');
  t.same(Buffer.from(sealer.open(sealedWhole)), whole, 'open restores the clear segment');
  t.equal(sealer.keyId, 3);
});

t.test('a key period is keyRotationSegments MSNs; its IV is its id, big-endian', async (t) => {
  t.equal(contentKeyId(0, 4), 0);
  t.equal(contentKeyId(7, 4), 1);
  t.equal(contentKeyId(8, 4), 2);
  t.equal(Buffer.from(contentKeyIv(0x0102)).toString('hex'), '00000000000000000000000000000102');
  t.equal(Buffer.from(contentKeyIv(2 ** 40)).toString('hex'), '00000000000000000000010000000000');
});

t.test('keys are made once per period and shared by every writer through the store', async (t) => {
  const store = new MemoryStore();
  const first = new ContentKeys({ channel: 'fip', store, rotationSegments: 2, ttlSeconds: () => 60 });
  const second = new ContentKeys({ channel: 'fip', store, rotationSegments: 2, ttlSeconds: () => 60 });
  const a = await first.forSegment(10);
  const b = await second.forSegment(11);
  t.equal(a.keyId, 5);
  t.equal(b.keyId, 5);
  const bytes = Buffer.from('a segment of the same period');
  t.same(Buffer.from(b.open(a.seal(bytes))), bytes, 'a takeover encrypts with the key already stored');
  const next = await first.forSegment(12);
  t.equal(next.keyId, 6);
  t.not(Buffer.from((await store.getContentKey('fip', 6))!).toString('hex'), Buffer.from((await store.getContentKey('fip', 5))!).toString('hex'), 'a new period, a new key');
  t.equal((await store.getContentKey('fip', 5))!.byteLength, 16);
  t.equal(await store.getContentKey('fip', 7), null, 'no key before a segment needs it');
});

t.test('a store that lost a key gets the same key back with the next segment of its period', async (t) => {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now });
  const keys = new ContentKeys({ channel: 'fip', store, rotationSegments: 4, ttlSeconds: () => 10 });
  const before = await keys.forSegment(40);
  const stored = Buffer.from((await store.getContentKey('fip', 10))!);
  now += 10_000;
  t.equal(await store.getContentKey('fip', 10), null, 'gone from the store (expired, or a Redis restarted empty)');
  const after = await keys.forSegment(41);
  t.same(Buffer.from((await store.getContentKey('fip', 10))!), stored, 'written again, the same bytes');
  const bytes = Buffer.from('segment 41');
  t.same(Buffer.from(before.open(after.seal(bytes))), bytes, 'and segments 40 and 41 share it');
});

/** The clear bytes an open gave, as a Buffer; the failure otherwise. */
function clearOf(opened: OpenedSegment): Buffer | string {
  return 'clear' in opened ? Buffer.from(opened.clear) : opened.failure;
}

t.test('a reader opens stored segments with the writer\'s key from the store; a missing key or bytes that do not decrypt are failures, never ciphertext', async (t) => {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now });
  const writer = new ContentKeys({ channel: 'fip', store, rotationSegments: 3, ttlSeconds: () => 10 });
  let keyReads = 0;
  const keys = { getContentKey: (channel: string, keyId: number) => ((keyReads += 1), store.getContentKey(channel, keyId)) };
  const reader = new StoredSegmentOpener({ channel: 'fip', scheme: 'aes-128', rotationSegments: 3, keys });
  const clear = Buffer.from('a TS segment, any length: '.repeat(9));
  for (const msn of [4, 5]) t.same(clearOf(await reader.open(msn, (await writer.forSegment(msn)).seal(clear))), clear, `segment ${msn} opens to its clear bytes`);
  t.equal(keyReads, 1, 'one key read per period (kept after)');
  t.same(await reader.open(6, clear), { failure: 'key-missing' }, 'a period with no key in the store');
  const stranger = new StoredSegmentOpener({ channel: 'jazz', scheme: 'aes-128', rotationSegments: 3, keys: { getContentKey: (_, keyId) => store.getContentKey('fip', keyId + 1) } });
  await writer.forSegment(7);
  t.same(await stranger.open(4, (await writer.forSegment(4)).seal(clear)), { failure: 'undecryptable' }, 'another key: the padding is wrong');
  now += 20_000;
  const late = new StoredSegmentOpener({ channel: 'fip', scheme: 'aes-128', rotationSegments: 3, keys: store });
  t.same(await late.open(4, clear), { failure: 'key-missing' }, 'an expired key is missing');
  t.same(await new StoredSegmentOpener({ channel: 'fip', scheme: 'aes-128', rotationSegments: 3 }).open(0, clear), { failure: 'key-missing' }, 'no key store: every key is missing');
  const failing = new StoredSegmentOpener({ channel: 'fip', scheme: 'aes-128', rotationSegments: 3, keys: { getContentKey: () => Promise.reject(new Error('store down')) } });
  await t.rejects(failing.open(0, clear), /store down/, 'a store failure rejects (the caller retries or marks a gap)');
});

t.test('a cbcs reader opens chunks sample by sample and gives the period\'s protected init back clear', async (t) => {
  const store = new MemoryStore();
  const writer = new ContentKeys({ channel: 'fip', store, rotationSegments: 2, scheme: 'cbcs', ttlSeconds: () => 60 });
  const reader = new StoredSegmentOpener({ channel: 'fip', scheme: 'cbcs', rotationSegments: 2, keys: store });
  const muxer = new Fmp4Muxer();
  const source = new FrameSource();
  const chunk = muxer.muxSegment(Array.from({ length: 30 }, (_, index) => ({ data: source.next()[1]!.data, pts: index * 1920, durationTicks: 1920 })));
  const sealed = (await writer.forSegment(5)).seal(chunk);
  t.not(Buffer.from(sealed).toString('hex'), Buffer.from(chunk).toString('hex'), 'stored encrypted');
  t.same(clearOf(await reader.open(5, sealed)), Buffer.from(chunk), 'opens to the muxer\'s chunk');
  t.equal(reader.initNameKeyId(5), 2, 'the init of its key period');
  const format = formatFor('aac', 48000, 2)!;
  t.same(reader.clearInit(initSegmentFor(format, cbcsProtectionOf('fip', 2))), initSegmentFor(format), 'the clear init');
  t.equal(reader.clearInit(Uint8Array.from([0, 0, 0, 9, 0x6d])), undefined, 'an unreadable init gives none');
  t.equal(new StoredSegmentOpener({ channel: 'fip', scheme: 'aes-128', rotationSegments: 2 }).initNameKeyId(5), undefined, 'aes-128: one init per run');
});

t.test('a key expires with the TTL its writer gave', async (t) => {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now });
  await store.putContentKey('fip', 1, Buffer.alloc(16, 1), 30);
  t.ok(await store.getContentKey('fip', 1));
  now += 30_000;
  t.equal(await store.getContentKey('fip', 1), null);
  const fresh = await store.putContentKey('fip', 1, Buffer.alloc(16, 2), 30);
  t.equal(fresh[0], 2, 'an expired key is replaced');
});

interface Channel {
  packager: ChannelPackager;
  store: MemoryStore;
}

async function startChannel(t: Test, clock: ManualClock, encrypted: boolean): Promise<Channel> {
  const overrides = { lowLatency: true, partSeconds: 0.25, dvrSeconds: 30, access: 'signed', ...(encrypted ? { encryption: 'aes-128', keyRotationSegments: 2 } : {}) };
  const config = resolveConfig({ hls: { segmentSeconds: SEGMENT_SECONDS }, signing: { key: 'an-hmac-key-of-thirty-two-characters!' }, channels: [rawTestChannel(overrides)] });
  const store = new MemoryStore({ now: () => clock.now() });
  const packager = new ChannelPackager({
    channel: config.channels[0]!,
    segmentSeconds: SEGMENT_SECONDS,
    windowSegments: 12,
    store,
    logger: pino({ level: 'silent' }),
    clock,
    contentKeys: store,
  });
  await packager.start();
  t.teardown(() => packager.close());
  return { packager, store };
}

t.test('an encrypted channel stores what a clear one does, encrypted: segments whole, parts on their own', async (t) => {
  const clock = new ManualClock();
  const clear = await startChannel(t, clock, false);
  const sealed = await startChannel(t, clock, true);
  await feedSideBySide([clear.packager, sealed.packager], 14);
  t.ok(sealed.packager.stats.segmentsPublished >= 14, 'fourteen segments out');

  const playlist = (await sealed.store.getPlaylist('fip', 'fip_hifi.m3u8'))!.body;
  const clearPlaylist = (await clear.store.getPlaylist('fip', 'fip_hifi.m3u8'))!.body;
  t.notMatch(clearPlaylist, /EXT-X-KEY/, 'a clear channel has no key tag');
  t.equal(clearPlaylist.replace(/\d{16,}/g, 'RUN'), playlist.replace(/#EXT-X-KEY:[^\n]*\n/g, '').replace(/\d{16,}/g, 'RUN'), 'the playlists differ by the key tags only');

  // Walk the playlist: the key in force for each segment, and each part.
  const lines = playlist.split('\n');
  let key: { uri: string; iv: string } | undefined;
  const keyTagMsns: number[] = [];
  let msn = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)![1]);
  let checkedParts = 0;
  let checkedSegments = 0;
  const openParts: Buffer[] = [];
  for (const line of lines) {
    const tag = /^#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)",IV=0x([0-9a-f]{32})$/.exec(line);
    if (tag) {
      key = { uri: tag[1]!, iv: tag[2]! };
      keyTagMsns.push(msn);
      continue;
    }
    const part = /^#EXT-X-PART:.*URI="([^"]+)"/.exec(line);
    const uri = part ? part[1]! : line !== '' && !line.startsWith('#') ? line : undefined;
    if (!uri) continue;
    t.ok(key, `${uri} has a key tag before it`);
    const keyId = parseContentKeyName(key!.uri)!;
    t.equal(keyId, Math.floor(msn / 2), `${uri}: the key of its period`);
    const keyBytes = (await sealed.store.getContentKey('fip', keyId))!;
    const address = parseSegmentUri(uri)!;
    const name = address.part === undefined ? segmentName(address.msn, address.run) : partName(address.msn, address.run, address.part);
    const stored = (await sealed.store.getSegment('fip', 'hifi', name))!;
    const opened = Buffer.from(decryptAes128Cbc(stored, keyBytes, Buffer.from(key!.iv, 'hex')));
    t.equal(stored.byteLength % 16, 0);
    // The clear channel's bytes under its own run's name.
    const clearRun = parseSegmentUri(clearPlaylist.split('\n').find((candidate) => candidate.startsWith('hifi/'))!)!.run;
    const clearName = address.part === undefined ? segmentName(address.msn, clearRun) : partName(address.msn, clearRun, address.part);
    const clearBytes = await clear.store.getSegment('fip', 'hifi', clearName);
    t.ok(clearBytes, `${clearName} is stored on the clear channel`);
    t.same(opened, Buffer.from(clearBytes!), `${uri} decrypts to the clear bytes`);
    if (address.part !== undefined) {
      checkedParts += 1;
      openParts.push(opened);
    } else {
      checkedSegments += 1;
      if (openParts.length > 0) t.same(Buffer.concat(openParts), opened, `segment ${msn}: its parts, each decrypted alone, joined are the segment`);
      openParts.length = 0;
      msn += 1;
    }
  }
  t.ok(checkedSegments >= 5 && checkedParts >= 4, `checked ${checkedSegments} segments and ${checkedParts} parts`);
  const first = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)![1]);
  t.same(
    keyTagMsns.filter((at) => at !== first),
    keyTagMsns.filter((at) => at !== first && at % 2 === 0),
    'EXT-X-KEY again only where the key rotates (every 2 segments)',
  );
  t.ok(keyTagMsns.length >= 3, 'two rotations at least in the window');

  const delta = (await sealed.store.getPlaylist('fip', 'fip_hifi.delta.m3u8'))!.body;
  const dvr = (await sealed.store.getPlaylist('fip', 'fip_hifi_dvr.m3u8'))!.body;
  for (const [name, body] of [
    ['delta', delta],
    ['DVR', dvr],
  ] as const) {
    const firstKey = body.indexOf('#EXT-X-KEY:');
    const firstUri = body.split('\n').findIndex((line) => line.startsWith('hifi/'));
    t.ok(firstKey !== -1 && body.slice(0, firstKey).split('\n').length - 1 < firstUri, `the ${name} playlist names the key before its first segment`);
  }
  t.match(delta, /#EXT-X-SKIP:SKIPPED-SEGMENTS=\d+\n(#EXT-X-DISCONTINUITY\n)?#EXT-X-KEY:/, 'after EXT-X-SKIP, the key in force is named again');
});
