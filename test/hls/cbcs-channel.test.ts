/**
 * `encryption: cbcs` channels (docs/architecture.md, "Content encryption"): a real packager on a
 * MemoryStore beside a clear fMP4 channel fed the same frames. Every stored segment and LL-HLS
 * part opens, with the key and IV its playlist names, to exactly the clear channel's bytes; each
 * key period has its own init segment (tenc with the period's KID), named by EXT-X-MAP where the
 * key rotates, next to `EXT-X-KEY:METHOD=SAMPLE-AES,…,KEYFORMAT="identity"`; the MPD has a
 * Period per key period with mp4protection `cbcs` + cenc:default_KID and ClearKey's
 * ContentProtection. (That FFmpeg and Chromium decode such init + segments with the key is
 * test/media/cbcs.test.ts's and test/e2e/encryption-cbcs.test.ts's: these frames are synthetic.)
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { renderChannelMpds } from '../../src/dash/channel-mpd.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { parseContentKeyName, parseSegmentUri, partName, segmentName } from '../../src/hls/published-names.js';
import { cbcsKeyIdOf, cbcsSealer, contentKeyIv } from '../../src/hls/segment-encryption.js';
import { uuidText } from '../../src/media/cbcs.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { feedSideBySide } from '../helpers/aac-frames.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { rawTestChannel } from '../helpers/channel-config.js';

const SEGMENT_SECONDS = 1;
const ROTATION = 2;
const SIGNING = { key: 'an-hmac-key-of-thirty-two-characters!' };

interface Channel {
  packager: ChannelPackager;
  store: MemoryStore;
}

async function startChannel(t: Test, clock: ManualClock, encrypted: boolean): Promise<Channel> {
  const overrides = {
    container: 'fmp4',
    lowLatency: true,
    partSeconds: 0.25,
    access: 'signed',
    ...(encrypted ? { encryption: 'cbcs', keyRotationSegments: ROTATION } : {}),
  };
  const config = resolveConfig({ hls: { segmentSeconds: SEGMENT_SECONDS }, signing: SIGNING, channels: [rawTestChannel(overrides)] });
  const channel = config.channels[0]!;
  const store = new MemoryStore({ now: () => clock.now() });
  const packager = new ChannelPackager({
    channel,
    segmentSeconds: SEGMENT_SECONDS,
    windowSegments: 12,
    store,
    logger: pino({ level: 'silent' }),
    clock,
    contentKeys: store,
    manifests: (state) => renderChannelMpds(channel, state),
  });
  await packager.start();
  t.teardown(() => packager.close());
  return { packager, store };
}

t.test('a cbcs channel stores what a clear fMP4 one does, its samples encrypted, with an init per key period', async (t) => {
  const clock = new ManualClock();
  const clear = await startChannel(t, clock, false);
  const sealed = await startChannel(t, clock, true);
  await feedSideBySide([clear.packager, sealed.packager], 12);
  t.ok(sealed.packager.stats.segmentsPublished >= 12, 'twelve segments out');

  const playlist = (await sealed.store.getPlaylist('fip', 'fip_hifi.m3u8'))!.body;
  const clearPlaylist = (await clear.store.getPlaylist('fip', 'fip_hifi.m3u8'))!.body;
  t.notMatch(clearPlaylist, /EXT-X-KEY|-k\d+\.mp4/, 'a clear channel has no key tag and one init per run');
  t.equal(
    clearPlaylist.replace(/#EXT-X-MAP:[^\n]*\n/g, '').replace(/\d{16,}/g, 'RUN'),
    playlist.replace(/#EXT-X-(KEY|MAP):[^\n]*\n/g, '').replace(/\d{16,}/g, 'RUN'),
    'the playlists differ by the key and map tags only',
  );

  const run = parseSegmentUri(playlist.split('\n').find((line) => line.startsWith('hifi/') && line.endsWith('.m4s'))!)!.run;
  const clearRun = parseSegmentUri(clearPlaylist.split('\n').find((line) => line.startsWith('hifi/') && line.endsWith('.m4s'))!)!.run;
  t.ok(await clear.store.getSegment('fip', 'hifi', `init-${clearRun}.mp4`), 'the clear channel has its one init');

  // Walk the playlist: the key and the init in force for each segment and part.
  let key: { uri: string; iv: string } | undefined;
  let map: string | undefined;
  const keyTagMsns: number[] = [];
  const mapTagMsns: number[] = [];
  let msn = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)![1]);
  let checkedParts = 0;
  let checkedSegments = 0;
  for (const line of playlist.split('\n')) {
    const keyTag = /^#EXT-X-KEY:METHOD=SAMPLE-AES,URI="([^"]+)",IV=0x([0-9a-f]{32}),KEYFORMAT="identity"$/.exec(line);
    if (keyTag) {
      key = { uri: keyTag[1]!, iv: keyTag[2]! };
      keyTagMsns.push(msn);
      continue;
    }
    t.notMatch(line, /^#EXT-X-KEY/, 'every key tag is SAMPLE-AES with KEYFORMAT identity');
    const mapTag = /^#EXT-X-MAP:URI="([^"]+)"$/.exec(line);
    if (mapTag) {
      map = mapTag[1]!;
      mapTagMsns.push(msn);
      continue;
    }
    const part = /^#EXT-X-PART:.*URI="([^"]+)"/.exec(line);
    const uri = part ? part[1]! : line !== '' && !line.startsWith('#') ? line : undefined;
    if (!uri) continue;
    const keyId = parseContentKeyName(key!.uri)!;
    t.equal(keyId, Math.floor(msn / ROTATION), `${uri}: the key of its period`);
    t.equal(key!.iv, Buffer.from(contentKeyIv(keyId)).toString('hex'));
    t.equal(map, `hifi/init-${run}-k${keyId}.mp4`, `${uri}: the init of its run and key period`);
    const keyBytes = (await sealed.store.getContentKey('fip', keyId))!;
    const init = (await sealed.store.getSegment('fip', 'hifi', `init-${run}-k${keyId}.mp4`))!;
    t.ok(init, `init of key period ${keyId} stored`);
    t.ok(Buffer.from(init).includes(Buffer.from(cbcsKeyIdOf('fip', keyId))), "its tenc (and pssh) name the period's KID");
    t.ok(Buffer.from(init).includes(Buffer.from('enca')) && Buffer.from(init).includes(Buffer.from('cbcs')), 'a protected sample entry, scheme cbcs');
    const address = parseSegmentUri(uri)!;
    const name = address.part === undefined ? segmentName(address.msn, address.run, 'm4s') : partName(address.msn, address.run, address.part, 'm4s');
    const stored = (await sealed.store.getSegment('fip', 'hifi', name))!;
    const clearName = address.part === undefined ? segmentName(address.msn, clearRun, 'm4s') : partName(address.msn, clearRun, address.part, 'm4s');
    const clearBytes = Buffer.from((await clear.store.getSegment('fip', 'hifi', clearName))!);
    t.not(Buffer.from(stored).toString('hex'), clearBytes.toString('hex'), `${uri} is stored encrypted`);
    t.same(Buffer.from(cbcsSealer(keyId, keyBytes, contentKeyIv(keyId)).open(stored)), clearBytes, `${uri} opens to the clear bytes`);
    if (address.part !== undefined) {
      checkedParts += 1;
    } else {
      checkedSegments += 1;
      msn += 1;
    }
  }
  t.ok(checkedSegments >= 5 && checkedParts >= 4, `checked ${checkedSegments} segments and ${checkedParts} parts`);
  const first = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)![1]);
  t.same(
    keyTagMsns.filter((at) => at !== first),
    keyTagMsns.filter((at) => at !== first && at % ROTATION === 0),
    'EXT-X-KEY again only where the key rotates',
  );
  t.same(mapTagMsns, keyTagMsns, 'EXT-X-MAP changes with it');
  t.ok(keyTagMsns.length >= 3, 'two rotations at least in the window');

  // DASH: a Period per key period, with the KID of its key and its init segment.
  const mpd = (await sealed.store.getPlaylist('fip', 'fip.mpd'))!.body;
  const clearMpd = (await clear.store.getPlaylist('fip', 'fip.mpd'))!.body;
  t.notMatch(clearMpd, /ContentProtection|cenc/, 'a clear channel has no ContentProtection');
  t.match(mpd, /<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013"/);
  const periods = [...mpd.matchAll(/<Period id="([^"]+)"[^>]*>([\s\S]*?)<\/Period>/g)];
  t.ok(periods.length >= 3, `${periods.length} periods`);
  for (const [, id, body] of periods) {
    const keyId = Number(/-k(\d+)$/.exec(id!)![1]);
    const startNumber = Number(/startNumber="(\d+)"/.exec(body!)![1]);
    t.equal(Math.floor(startNumber / ROTATION), keyId, `period ${id} starts in its key period`);
    const timeline = [...body!.matchAll(/<S [^>]*?(?:r="(\d+)")?\/>/g)].reduce((count, entry) => count + 1 + Number(entry[1] ?? 0), 0) / 2;
    t.ok(startNumber + timeline - 1 < (keyId + 1) * ROTATION, `period ${id} ends in its key period`);
    const kid = uuidText(cbcsKeyIdOf('fip', keyId));
    t.equal(
      [...body!.matchAll(/<ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cbcs" cenc:default_KID="([^"]+)"\/>/g)].map((match) => match[1]).join(),
      [...body!.matchAll(/<AdaptationSet /g)].map(() => kid).join(),
      `period ${id}: each AdaptationSet names the KID`,
    );
    t.match(body!, /<ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0"\/>/);
    t.match(body!, new RegExp(`initialization="\\$RepresentationID\\$/init-${run}-k${keyId}\\.mp4"`), `period ${id}: the init of its key period`);
  }
});
