/**
 * Low-Latency HLS on the packager side (draft-pantos-hls-rfc8216bis): parts cut on frame
 * edges and published before their segment, EXT-X-PART-INF / SERVER-CONTROL values, parts
 * dropped from the playlist 3 target durations from the live edge, the preload hint,
 * rendition reports and delta updates, on a real MemoryStore fed synthetic AAC.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { deltaPlaylistName } from '../../src/hls/channel-playlists.js';
import { parseSegmentUri, partName, partUri } from '../../src/hls/published-names.js';
import { wallClockMsn } from '../../src/hls/sequence-state.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { PublishRequest } from '../../src/store/store.js';
import { FrameSource, SAMPLE_RATE } from '../helpers/aac-frames.js';
import { testChannel } from '../helpers/channel-config.js';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { parsePlaylist } from '../helpers/m3u8.js';
import { waitUntil } from '../helpers/wait-until.js';

const SEGMENT_SECONDS = 2;
const PART_SECONDS = 0.5;
const TARGET_DURATION = 2;

/**
 * Records every part URI a playlist listed before its bytes were readable, and every MSN
 * (or part of one) that a later playlist gave another URI.
 */
class CheckingStore extends DelegatingStore {
  readonly listedMissing: string[] = [];
  readonly reusedMsns: string[] = [];
  failing = false;
  private readonly uris = new Map<string, string>();

  override async putSegment(...args: Parameters<MemoryStore['putSegment']>): Promise<void> {
    if (this.failing) throw new Error('store down');
    return this.inner.putSegment(...args);
  }

  override async publish(request: PublishRequest): Promise<void> {
    if (this.failing) throw new Error('store down');
    for (const [name, body] of Object.entries(request.playlists)) {
      if (name === 'fip_hifi.m3u8') this.remember(body);
      for (const uri of listedUris(body)) {
        const [rendition, name] = uri.split('/') as [string, string];
        if ((await this.inner.getSegment(request.channel, rendition, name)) === null) this.listedMissing.push(uri);
      }
    }
    return this.inner.publish(request);
  }

  private remember(body: string): void {
    const { segments, openParts } = readSegments(body);
    const named = new Map<string, string>();
    for (const segment of segments) {
      named.set(`${segment.msn}`, segment.uri);
      segment.parts.forEach((part, index) => named.set(`${segment.msn}.${index}`, part.uri));
    }
    const openMsn = (segments.at(-1)?.msn ?? Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(body)![1]) - 1) + 1;
    openParts.forEach((part, index) => named.set(`${openMsn}.${index}`, part.uri));
    for (const [key, uri] of named) {
      const earlier = this.uris.get(key);
      if (earlier !== undefined && earlier !== uri) this.reusedMsns.push(`${key}: ${earlier} then ${uri}`);
      this.uris.set(key, uri);
    }
  }
}

/** URIs of the segments and parts a playlist lists (not the preload hint: it may not exist yet). */
function listedUris(body: string): string[] {
  const parts = [...body.matchAll(/#EXT-X-PART:.*URI="([^"]+)"/g)].map((match) => match[1]!);
  const segments = body.split('\n').filter((line) => line !== '' && !line.startsWith('#') && line.endsWith('.ts'));
  return [...parts, ...segments];
}

async function startPackager(t: Test, options: { windowSegments?: number; standby?: boolean; store?: CheckingStore; clock?: ManualClock } = {}) {
  const channel = testChannel({ lowLatency: true, partSeconds: PART_SECONDS }, SEGMENT_SECONDS);
  const store = options.store ?? new CheckingStore(new MemoryStore());
  const memory = store.inner as MemoryStore;
  if (!options.store) await memory.start();
  const packager = new ChannelPackager({
    channel,
    segmentSeconds: SEGMENT_SECONDS,
    windowSegments: options.windowSegments ?? 12,
    store,
    logger: pino({ level: 'silent' }),
    standby: options.standby,
    clock: options.clock,
  });
  await packager.start();
  t.teardown(async () => {
    await packager.close();
    await memory.close();
  });
  return { packager, store, memory, source: new FrameSource() };
}

async function playlist(store: MemoryStore, name: string): Promise<string> {
  const stored = await store.getPlaylist('fip', name);
  if (!stored) throw new Error(`${name} not published`);
  return stored.body;
}

/** Pushes frames one at a time, letting the event loop run, until `done()` holds. */
async function pushUntil(packager: ChannelPackager, source: FrameSource, done: () => boolean): Promise<void> {
  for (let frame = 0; frame < 10_000 && !done(); frame++) {
    packager.pushFrameGroup(source.next());
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (!done()) throw new Error('condition not reached within 10,000 frames');
}

function attribute(body: string, tag: string, name: string): string | undefined {
  const line = body.split('\n').find((candidate) => candidate.startsWith(`#${tag}:`));
  return line ? new RegExp(`[:,]${name}=("[^"]*"|[^,]*)`).exec(line)?.[1] : undefined;
}

interface ListedSegment {
  msn: number;
  duration: number;
  uri: string;
  parts: { duration: number; uri: string }[];
}

/** Segments with their parts, and the parts listed after the last segment. */
function readSegments(body: string): { segments: ListedSegment[]; openParts: { duration: number; uri: string }[] } {
  let msn = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(body)![1]) + Number(/SKIPPED-SEGMENTS=(\d+)/.exec(body)?.[1] ?? 0);
  const segments: ListedSegment[] = [];
  let parts: { duration: number; uri: string }[] = [];
  let duration = 0;
  for (const line of body.split('\n')) {
    const part = /^#EXT-X-PART:DURATION=([\d.]+),URI="([^"]+)"/.exec(line);
    if (part) parts.push({ duration: Number(part[1]), uri: part[2]! });
    else if (line.startsWith('#EXTINF:')) duration = Number.parseFloat(line.slice(8));
    else if (line !== '' && !line.startsWith('#')) {
      segments.push({ msn: msn++, duration, uri: line, parts });
      parts = [];
    }
  }
  return { segments, openParts: parts };
}

t.test('a part is published before its segment, with the next part as preload hint', async (t) => {
  const { packager, store, memory, source } = await startPackager(t);
  await pushUntil(packager, source, () => packager.stats.partsPublished === 1);
  const body = await playlist(memory, 'fip_lofi.m3u8');
  const { segments, openParts } = readSegments(body);
  t.equal(segments.length, 0, 'no complete segment yet');
  const mediaSequence = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(body)![1]);
  const run = parseSegmentUri(openParts[0]?.uri ?? '')?.run ?? -1;
  t.strictSame(
    openParts.map((part) => part.uri),
    [partUri('lofi', mediaSequence, run, 0)],
    'the first part of the first MSN',
  );
  t.match(body, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${partUri('lofi', mediaSequence, run, 1)}"\n`);
  const bytes = await memory.getSegment('fip', 'lofi', partName(mediaSequence, run, 0));
  t.ok(bytes && bytes[0] === 0x47 && bytes[1] === 0x40 && bytes[2] === 0x00, 'the part is MPEG-TS starting with its PAT');
  t.strictSame(store.listedMissing, []);
});

t.test('playlist header, part durations, and segments that are their parts end to end', async (t) => {
  const { packager, store, memory, source } = await startPackager(t);
  await pushUntil(packager, source, () => packager.stats.segmentsPublished >= 8);
  const body = await playlist(memory, 'fip_hifi.m3u8');
  const { manifest, warnings } = parsePlaylist(body);
  t.strictSame(warnings, [], 'm3u8-parser reads it without a warning');
  t.equal(manifest.targetDuration, TARGET_DURATION);
  t.match(body, /^#EXTM3U\n#EXT-X-VERSION:9\n/);

  const partTarget = Number(attribute(body, 'EXT-X-PART-INF', 'PART-TARGET'));
  t.ok(partTarget >= 0.5 && partTarget < 0.52, `PART-TARGET ${partTarget} is the longest part: 24 frames`);
  t.equal(attribute(body, 'EXT-X-SERVER-CONTROL', 'CAN-BLOCK-RELOAD'), 'YES');
  t.ok(Number(attribute(body, 'EXT-X-SERVER-CONTROL', 'PART-HOLD-BACK')) >= 3 * partTarget, 'PART-HOLD-BACK ≥ 3 part targets');
  t.ok(Number(attribute(body, 'EXT-X-SERVER-CONTROL', 'HOLD-BACK')) >= 3 * TARGET_DURATION, 'HOLD-BACK ≥ 3 TD');
  t.ok(Number(attribute(body, 'EXT-X-SERVER-CONTROL', 'CAN-SKIP-UNTIL')) >= 6 * TARGET_DURATION, 'CAN-SKIP-UNTIL ≥ 6 TD');

  const { segments } = readSegments(body);
  const withParts = segments.filter((segment) => segment.parts.length > 0);
  t.ok(withParts.length >= 2, 'the last segments list their parts');
  for (const segment of withParts) {
    t.equal(segment.parts.length, 4, `${segment.uri}: 2 s in 0.5 s parts`);
    const sum = segment.parts.reduce((total, part) => total + part.duration, 0);
    t.ok(Math.abs(sum - segment.duration) < 5e-5, `${segment.uri}: parts add up to EXTINF`);
    segment.parts.forEach((part, index) => {
      t.ok(part.duration <= partTarget, `${part.uri} ≤ PART-TARGET`);
      if (index < segment.parts.length - 1) t.ok(part.duration >= 0.85 * partTarget, `${part.uri} ≥ 85 % of PART-TARGET`);
    });
    const [rendition, name] = segment.uri.split('/') as [string, string];
    const whole = await memory.getSegment('fip', rendition, name);
    const pieces = await Promise.all(segment.parts.map((part) => memory.getSegment('fip', rendition, part.uri.split('/')[1]!)));
    t.same(Buffer.from(whole!), Buffer.concat(pieces.map((piece) => Buffer.from(piece!))), `${segment.uri} is its parts end to end`);
  }
  t.strictSame(store.listedMissing, [], 'nothing listed before it was readable');
});

t.test('parts leave the playlist 3 target durations from the live edge; reports and hint follow the last part', async (t) => {
  const { packager, memory, source } = await startPackager(t);
  await pushUntil(packager, source, () => packager.stats.segmentsPublished >= 8);
  const body = await playlist(memory, 'fip_lofi.m3u8');
  const { segments, openParts } = readSegments(body);
  const openSeconds = openParts.reduce((sum, part) => sum + part.duration, 0);
  let fromEnd = openSeconds;
  for (const segment of [...segments].reverse()) {
    const expected = fromEnd <= 3 * TARGET_DURATION;
    t.equal(segment.parts.length > 0, expected, `${segment.uri} ends ${fromEnd.toFixed(2)} s from the edge: parts ${expected ? 'listed' : 'gone'}`);
    fromEnd += segment.duration;
  }
  t.ok(segments.some((segment) => segment.parts.length === 0), 'older segments have no parts');

  const last = segments.at(-1)!;
  const lastPart = openParts.length > 0 ? { msn: last.msn + 1, part: openParts.length - 1 } : { msn: last.msn, part: last.parts.length - 1 };
  t.match(body, `#EXT-X-RENDITION-REPORT:URI="fip_hifi.m3u8",LAST-MSN=${lastPart.msn},LAST-PART=${lastPart.part}`);
  t.notMatch(body, 'URI="fip_lofi.m3u8"', 'no report on itself');
  const { run } = parseSegmentUri(last.uri)!;
  t.match(body, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${partUri('lofi', last.msn + 1, run, openParts.length)}"`);
  // The other rendition's playlist is published in the same step: its last part is this one.
  const other = readSegments(await playlist(memory, 'fip_hifi.m3u8'));
  t.equal(other.segments.at(-1)!.msn, last.msn);
  t.equal(other.openParts.length, openParts.length);
});

t.test('a delta update skips the segments older than CAN-SKIP-UNTIL and is the full playlist otherwise', async (t) => {
  const { packager, memory, source } = await startPackager(t);
  await pushUntil(packager, source, () => packager.stats.segmentsPublished >= 12);
  const full = await playlist(memory, 'fip_hifi.m3u8');
  const delta = await playlist(memory, deltaPlaylistName('fip_hifi.m3u8'));
  const skipped = Number(/#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)\n/.exec(delta)?.[1]);
  const { segments, openParts } = readSegments(full);
  let fromStart = segments.reduce((sum, segment) => sum + segment.duration, 0) + openParts.reduce((sum, part) => sum + part.duration, 0);
  let expected = 0;
  for (const segment of segments) {
    if (fromStart <= 6 * TARGET_DURATION) break;
    fromStart -= segment.duration;
    expected += 1;
  }
  t.ok(expected > 0, 'a 24 s window has segments older than 12 s');
  t.equal(skipped, expected, `SKIPPED-SEGMENTS=${skipped}`);
  t.equal(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(delta)![1], /#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(full)![1], 'same media sequence');
  t.match(delta, /#EXT-X-VERSION:9\n/);
  const afterSkip = delta.slice(delta.indexOf('\n', delta.indexOf('#EXT-X-SKIP')) + 1);
  t.ok(full.endsWith(afterSkip), 'the rest is the full playlist from the first segment not skipped');
  t.equal(readSegments(delta).segments[0]!.uri, segments[skipped]!.uri);
});

t.test('a standby publishes no part; a backlog is published with its parts once the store is back', async (t) => {
  const standby = await startPackager(t, { standby: true });
  await pushUntil(standby.packager, standby.source, () => standby.packager.stats.segmentsProduced >= 1);
  t.equal(standby.packager.stats.partsPublished, 0);
  t.equal(await standby.memory.getPlaylist('fip', 'fip_lofi.m3u8'), null);

  const clock = new ManualClock();
  const first = wallClockMsn(clock.now());
  const { packager, store, memory, source } = await startPackager(t, { clock });
  await pushUntil(packager, source, () => packager.stats.segmentsPublished >= 2);
  store.failing = true;
  const partsBefore = packager.stats.partsPublished;
  await pushUntil(packager, source, () => packager.stats.segmentsProduced >= 5);
  t.equal(packager.stats.partsPublished, partsBefore, 'no part while segments wait');
  store.failing = false;
  await clock.advance(500); // the retry delay
  await waitUntil(t, 'the backlog is published', () => packager.stats.segmentsPublished >= 5, 5000);
  const { segments } = readSegments(await playlist(memory, 'fip_lofi.m3u8'));
  t.strictSame(
    segments.map((segment) => segment.msn - first),
    [0, 1, 2, 3, 4],
    'every MSN once, in order',
  );
  for (const segment of segments.slice(-2)) t.equal(segment.parts.length, 4, `${segment.uri} lists its 4 parts`);
  t.strictSame(store.listedMissing, []);
  await pushUntil(packager, source, () => packager.stats.partsPublished > partsBefore);
  t.pass('parts flow again after the backlog');
});

t.test('part boundaries fall on frame edges: 93- and 94-frame segments split 23/24', async (t) => {
  const { packager } = await startPackager(t);
  const schedule = packager.schedule;
  for (let index = 0; index < 16; index++) {
    const ends = schedule.partEnds(index, 4);
    const sizes = ends.map((end, part) => end - (part === 0 ? 0 : ends[part - 1]!));
    t.equal(ends.at(-1), schedule.frameCount(index));
    t.ok(sizes.every((size) => size === 23 || size === 24), `segment ${index}: ${sizes.join('/')}`);
  }
  t.equal(schedule.partTargetSeconds(4), (24 * 1024) / SAMPLE_RATE);
});

t.test('a run that stops or dies mid-segment: the MSN players saw parts of keeps its URIs', async (t) => {
  for (const ending of ['close', 'crash'] as const) {
    const first = await startPackager(t);
    const { store, memory } = first;
    await pushUntil(first.packager, first.source, () => first.packager.stats.segmentsPublished >= 3);
    const partsBefore = first.packager.stats.partsPublished;
    await pushUntil(first.packager, first.source, () => first.packager.stats.partsPublished >= partsBefore + 2);
    const open = readSegments(await playlist(memory, 'fip_hifi.m3u8')).openParts;
    t.equal(open.length, 2, `${ending}: two parts of the segment being made are listed`);
    // A crash leaves them listed as they are; close() ends the segment short.
    if (ending === 'close') await first.packager.close();
    const second = await startPackager(t, { store });
    await pushUntil(second.packager, second.source, () => second.packager.stats.segmentsPublished >= 2);
    const { segments } = readSegments(await playlist(memory, 'fip_hifi.m3u8'));
    const completed = segments.find((segment) => segment.parts[0]?.uri === open[0]!.uri);
    t.ok(completed, `${ending}: the segment of those parts is listed, complete`);
    t.equal(completed?.parts.length, 2, `${ending}: with the two parts players saw`);
    const bytes = await memory.getSegment('fip', 'hifi', completed!.uri.split('/')[1]!);
    const parts = await Promise.all(open.map((part) => memory.getSegment('fip', 'hifi', part.uri.split('/')[1]!)));
    t.same(Buffer.from(bytes!), Buffer.concat(parts.map((part) => Buffer.from(part!))), `${ending}: its bytes are those parts`);
    t.strictSame(store.reusedMsns, [], `${ending}: no MSN or part changed URI`);
    t.strictSame(store.listedMissing, [], `${ending}: nothing listed before it was readable`);
  }
});
