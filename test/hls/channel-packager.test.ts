/**
 * One channel's packager (src/hls/channel-packager.ts) on a real MemoryStore, fed synthetic
 * AAC frame groups at 48 kHz: the live window, the write order (segment, then playlist),
 * exact EXTINF, continuous PTS shared by every rendition, discontinuity sequence rules
 * (RFC 8216 §6.2.2), restarts, BANDWIDTH, segment TTLs and store outages.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitUntil } from '../helpers/wait-until.js';
import t, { type Test } from 'tap';
import type { Clock } from '../../src/clock.js';
import type { ChannelConfig } from '../../src/config/config-schema.js';
import { OnairError } from '../../src/errors.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { wallClockMsn, type WindowSegment } from '../../src/hls/sequence-state.js';
import { AdtsReader, type AacFrame } from '../../src/media/adts.js';
import type { MuxerFactory } from '../../src/media/muxer.js';
import { aacFrame, FrameSource, pushUntilCut, SAMPLE_RATE } from '../helpers/aac-frames.js';
import { testChannel } from '../helpers/channel-config.js';
import { ptsAdd, ptsDelta, samplesToTicks } from '../../src/media/pts.js';
import { TsDemuxer } from '../../src/media/ts-demuxer.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { redisCli, startRedisServer } from '../helpers/redis-server.js';
import type { PublishRequest, Store } from '../../src/store/store.js';
import { parsePlaylist } from '../helpers/m3u8.js';

const FRAME_TICKS = samplesToTicks(1024, SAMPLE_RATE); // 1920
const FIRST_PTS = 900_000;
const RENDITIONS = ['lofi', 'hifi'];
const logger = pino({ level: 'silent' });

function channelConfig(): ChannelConfig {
  return testChannel({ sampleRate: SAMPLE_RATE });
}

/** Cuts `count` segments, waiting for each to be published, as a live feed would pace them. */
async function produce(packager: ChannelPackager, source: FrameSource, count: number, afterEach?: (entry: WindowSegment) => void | Promise<void>): Promise<void> {
  for (let index = 0; index < count; index++) {
    const published = once(packager, 'segment') as Promise<[WindowSegment]>;
    pushUntilCut(packager, source);
    const [entry] = await published;
    await afterEach?.(entry);
  }
}


type StoreCall = { kind: 'put'; rendition: string; name: string } | { kind: 'publish'; playlists: Record<string, string> };

/**
 * The MemoryStore behind a thin wrapper that records calls in the order they take effect,
 * checks that every published playlist lists only readable segments, and can simulate an
 * outage (calls reject) or a stall (calls hang, then succeed).
 */
class TestStore extends DelegatingStore {
  readonly calls: StoreCall[] = [];
  /** Segment URIs a playlist listed while they were not readable. */
  readonly listedMissing: string[] = [];
  failing = false;
  private stall: Promise<void> | undefined;
  private releaseStall: (() => void) | undefined;

  constructor(readonly memory: MemoryStore) {
    super(memory);
  }

  startStall(): void {
    this.stall = new Promise((resolve) => (this.releaseStall = resolve));
  }

  endStall(): void {
    this.releaseStall?.();
    this.stall = undefined;
  }

  async putSegment(channel: string, rendition: string, name: string, bytes: Uint8Array, ttlSeconds: number, fence?: string): Promise<void> {
    await this.interfere();
    await this.inner.putSegment(channel, rendition, name, bytes, ttlSeconds, fence);
    this.calls.push({ kind: 'put', rendition, name });
  }

  async publish(request: PublishRequest): Promise<void> {
    await this.interfere();
    for (const [file, body] of Object.entries(request.playlists)) {
      if (file === `${request.channel}.m3u8`) continue;
      for (const uri of segmentUris(body)) {
        const [rendition, name] = uri.split('/') as [string, string];
        if ((await this.inner.getSegment(request.channel, rendition, name)) === null) this.listedMissing.push(uri);
      }
    }
    this.calls.push({ kind: 'publish', playlists: request.playlists });
    await this.inner.publish(request);
  }


  private async interfere(): Promise<void> {
    if (this.stall) await this.stall;
    if (this.failing) throw new OnairError('ONAIR_STORE_UNAVAILABLE', 'simulated outage');
  }
}

function segmentUris(playlist: string): string[] {
  return playlist.split('\n').filter((line) => line.endsWith('.ts'));
}

interface Harness {
  store: TestStore;
  memory: MemoryStore;
  packager(options?: { windowSegments?: number; segmentSeconds?: number; clock?: Clock }): Promise<ChannelPackager>;
}

/** `clock`, when given, is the store's and every packager's (unless a packager gets its own). */
function harness(t: Test, options: { clock?: Clock } = {}): Harness {
  const { clock } = options;
  const memory = new MemoryStore({ now: clock && (() => clock.now()) });
  const store = new TestStore(memory);
  t.teardown(() => store.close());
  return {
    store,
    memory,
    async packager(packagerOptions = {}) {
      const packager = new ChannelPackager({
        channel: channelConfig(),
        segmentSeconds: packagerOptions.segmentSeconds ?? 4,
        windowSegments: packagerOptions.windowSegments ?? 6,
        store,
        logger,
        clock: packagerOptions.clock ?? clock,
      });
      await packager.start();
      t.teardown(() => packager.close(100));
      return packager;
    },
  };
}

async function mediaPlaylist(store: Store, rendition: string) {
  const stored = await store.getPlaylist('fip', `fip_${rendition}.m3u8`);
  if (!stored) throw new Error(`no playlist for ${rendition}`);
  return { text: stored.body, ...parsePlaylist(stored.body) };
}

/**
 * The MSN of the first segment `packager` will publish, once it has: a new channel starts at
 * the wall-clock MSN (src/hls/sequence-state.ts), so tests count from there.
 */
function firstPublished(packager: ChannelPackager): () => number {
  let first: number | undefined;
  packager.once('segment', (entry: WindowSegment) => (first = entry.msn));
  return () => {
    if (first === undefined) throw new Error('no segment published yet');
    return first;
  };
}

/** MSN of a segment URI like `hifi/12-3.ts`, and the packager run that wrote it. */
function parseUri(uri: string): { rendition: string; msn: number; run: number } {
  const match = /^([a-z0-9-]+)\/(\d+)-(\d+)\.ts$/.exec(uri);
  if (!match) throw new Error(`unexpected segment URI ${uri}`);
  return { rendition: match[1]!, msn: Number(match[2]), run: Number(match[3]) };
}

/** Every AAC frame of a stored segment with its PTS, through the real demuxer and ADTS reader. */
async function segmentFrames(store: Store, uri: string): Promise<AacFrame[]> {
  const [rendition, name] = uri.split('/') as [string, string];
  const bytes = await store.getSegment('fip', rendition, name);
  if (!bytes) throw new Error(`segment ${uri} is not readable`);
  const demuxer = new TsDemuxer();
  const reader = new AdtsReader();
  const events = [...demuxer.push(bytes), ...demuxer.flush()];
  return events.flatMap((event) => (event.kind === 'pes' ? reader.push(event.payload, event.pts) : []));
}

/**
 * What a player checks across reloads (hls.js): the media sequence never goes back, an MSN
 * always maps to the same URI and the same discontinuity count (timeline).
 */
class ReloadChecker {
  readonly problems: string[] = [];
  private lastMediaSequence = -1;
  private readonly uris = new Map<number, string>();
  private readonly timelines = new Map<number, number>();

  observe(text: string): void {
    const { manifest } = parsePlaylist(text);
    const mediaSequence = manifest.mediaSequence ?? 0;
    if (mediaSequence < this.lastMediaSequence) this.problems.push(`media sequence went back to ${mediaSequence}`);
    this.lastMediaSequence = mediaSequence;
    manifest.segments.forEach((segment, index) => {
      const msn = mediaSequence + index;
      const uri = this.uris.get(msn) ?? segment.uri;
      const timeline = this.timelines.get(msn) ?? segment.timeline;
      if (uri !== segment.uri) this.problems.push(`MSN ${msn} was ${uri}, now ${segment.uri}`);
      if (timeline !== segment.timeline) this.problems.push(`MSN ${msn} was on timeline ${timeline}, now ${segment.timeline}`);
      this.uris.set(msn, segment.uri);
      this.timelines.set(msn, segment.timeline);
    });
  }
}

t.test('the media playlists list exactly the live window, with consecutive media sequence numbers', async (t) => {
  for (const [windowSegments, listed] of [
    [6, 6],
    [8, 8],
    [3, 6], // never below 6 segments (Apple HLS authoring spec)
  ]) {
    const { store, packager: makePackager } = harness(t);
    const packager = await makePackager({ windowSegments });
    const first = firstPublished(packager);
    t.equal(packager.windowSize, listed);
    await produce(packager, new FrameSource(), 12, async (entry) => {
      for (const rendition of RENDITIONS) {
        const { manifest } = await mediaPlaylist(store, rendition);
        if (manifest.segments.length !== Math.min(entry.msn - first() + 1, listed)) t.fail(`after MSN ${entry.msn}, ${manifest.segments.length} segments listed`);
      }
    });
    for (const rendition of RENDITIONS) {
      const { manifest, warnings } = await mediaPlaylist(store, rendition);
      t.strictSame(warnings, []);
      t.equal(manifest.mediaSequence, first() + 12 - listed, `window ${windowSegments}: ${rendition} starts at the ${13 - listed}th MSN`);
      t.same(
        manifest.segments.map((segment) => parseUri(segment.uri).msn),
        Array.from({ length: listed }, (_, index) => first() + 12 - listed + index),
      );
      t.ok(manifest.segments.every((segment) => parseUri(segment.uri).rendition === rendition));
    }
  }
});

t.test('every listed segment is stored before the playlist that first lists it is published', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const packager = await makePackager();
  await produce(packager, new FrameSource(), 10);
  t.strictSame(store.listedMissing, [], 'no playlist ever listed a segment that could not be read');
  const stored = new Set<string>();
  const listed = new Set<string>();
  const problems: string[] = [];
  for (const call of store.calls) {
    if (call.kind === 'put') {
      stored.add(`${call.rendition}/${call.name}`);
      continue;
    }
    for (const [file, body] of Object.entries(call.playlists)) {
      if (file === 'fip.m3u8') continue;
      for (const uri of segmentUris(body)) {
        if (!listed.has(uri) && !stored.has(uri)) problems.push(`${uri} listed before it was stored`);
        listed.add(uri);
      }
    }
  }
  t.strictSame(problems, []);
  t.equal(listed.size, 10 * RENDITIONS.length);
  for (const uri of listed) t.ok(await store.getSegment('fip', ...(uri.split('/') as [string, string])), `${uri} is readable`);
});

t.test('EXTINF is the exact duration of the frames in the segment', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const packager = await makePackager();
  const durations: number[] = [];
  await produce(packager, new FrameSource(), 6, (entry) => {
    durations.push(entry.durationSeconds);
  });
  for (const rendition of RENDITIONS) {
    const { manifest } = await mediaPlaylist(store, rendition);
    for (const [index, segment] of manifest.segments.entries()) {
      const frames = await segmentFrames(store, segment.uri);
      t.ok([187, 188].includes(frames.length), `${segment.uri} holds ${frames.length} frames`);
      t.equal(frames.length, packager.schedule.frameCount(index), `${segment.uri} follows the segment schedule`);
      t.ok(Math.abs(segment.duration - (frames.length * 1024) / SAMPLE_RATE) < 5e-6, `${segment.uri} EXTINF ${segment.duration} matches its frames`);
      t.ok(Math.round(segment.duration) <= manifest.targetDuration!, 'EXTINF rounded is within the target duration');
    }
  }
  t.equal(durations.length, 6);
  t.ok(durations.every((duration, index) => duration === (packager.schedule.frameCount(index) * 1024) / SAMPLE_RATE));
});

t.test('PTS runs on from segment to segment, and every rendition shares MSN, PTS, EXTINF and program date time', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const packager = await makePackager();
  await produce(packager, new FrameSource(), 6);
  const playlists = await Promise.all(RENDITIONS.map((rendition) => mediaPlaylist(store, rendition)));
  const [lofi, hifi] = playlists as [Awaited<ReturnType<typeof mediaPlaylist>>, Awaited<ReturnType<typeof mediaPlaylist>>];
  t.equal(lofi.manifest.mediaSequence, hifi.manifest.mediaSequence);
  t.equal(lofi.manifest.discontinuitySequence, hifi.manifest.discontinuitySequence);
  t.equal(lofi.manifest.targetDuration, hifi.manifest.targetDuration);
  const strip = (manifest: typeof lofi.manifest) =>
    manifest.segments.map((segment) => ({ msn: parseUri(segment.uri).msn, duration: segment.duration, pdt: segment.dateTimeString }));
  t.same(strip(lofi.manifest), strip(hifi.manifest));

  const ptsByRendition: number[][] = [];
  for (const { manifest } of playlists) {
    const demuxer = new TsDemuxer();
    const pts: number[] = [];
    for (const segment of manifest.segments) {
      const frames = await segmentFrames(store, segment.uri);
      pts.push(...frames.map((frame) => frame.pts!));
      // One demuxer across segments: TS continuity counters run on too.
      const [rendition, name] = segment.uri.split('/') as [string, string];
      demuxer.push((await store.getSegment('fip', rendition, name))!);
    }
    demuxer.flush();
    t.equal(demuxer.stats.continuityErrors, 0, 'continuity counters run on across segments');
    ptsByRendition.push(pts);
  }
  const [lofiPts, hifiPts] = ptsByRendition as [number[], number[]];
  t.equal(lofiPts[0], FIRST_PTS, 'a new channel starts at PTS 900000 (10 s)');
  t.ok(lofiPts.every((pts, index) => index === 0 || ptsDelta(lofiPts[index - 1]!, pts) === FRAME_TICKS), 'every frame is 1920 ticks after the one before');
  t.same(hifiPts, lofiPts, 'renditions carry identical PTS');
});

t.test('the discontinuity sequence increments exactly when a discontinuity leaves the window', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const packager = await makePackager();
  const first = firstPublished(packager);
  const source = new FrameSource();
  const checker = new ReloadChecker();
  // MSNs counted from the channel's first one.
  const history: { newest: number; mediaSequence: number; dsn: number; taggedMsns: number[] }[] = [];
  const observe = async (entry: WindowSegment) => {
    const { text, manifest } = await mediaPlaylist(store, 'hifi');
    checker.observe(text);
    const taggedMsns = manifest.segments.filter((segment) => segment.discontinuity).map((segment) => parseUri(segment.uri).msn - first());
    history.push({ newest: entry.msn - first(), mediaSequence: manifest.mediaSequence! - first(), dsn: manifest.discontinuitySequence!, taggedMsns });
  };
  await produce(packager, source, 3, observe);
  packager.markDiscontinuity();
  await produce(packager, source, 9, observe);

  for (const { newest, mediaSequence, dsn, taggedMsns } of history) {
    const listsTagged = mediaSequence <= 3 && newest >= 3;
    t.equal(dsn, mediaSequence > 3 ? 1 : 0, `after MSN ${newest} (window from ${mediaSequence}): DSN ${dsn}`);
    t.same(taggedMsns, listsTagged ? [3] : [], `after MSN ${newest}: the tag stays on MSN 3 while it is listed, first or not`);
  }
  t.ok(history.some((entry) => entry.mediaSequence === 3), 'MSN 3 was once the first segment of the window');
  t.strictSame(checker.problems, [], 'each MSN keeps its URI and timeline across reloads');
});

t.test('a restarted packager continues after the last MSN with one discontinuity and a new run in its URIs', async (t) => {
  const startedAt = Date.UTC(2026, 5, 1, 12);
  const { store, packager: makePackager } = harness(t);
  const checker = new ReloadChecker();
  const observe = async () => checker.observe((await mediaPlaylist(store, 'hifi')).text);
  const runs = new Set<number>();
  const noteRun = (entry: WindowSegment) => {
    runs.add(entry.run);
    return observe();
  };

  const first = await makePackager({ clock: new ManualClock(startedAt) });
  const firstMsn = firstPublished(first);
  await produce(first, new FrameSource(), 8, noteRun);
  await first.close();
  const before = await mediaPlaylist(store, 'hifi');
  t.equal(firstMsn(), wallClockMsn(startedAt), 'a new channel starts at the wall-clock MSN');

  // The second run's wall clock is an hour behind: program date time must not go back anyway,
  // and the stored MSN, not the wall clock, says where the channel goes on.
  const second = await makePackager({ clock: new ManualClock(startedAt - 3_600_000) });
  await produce(second, new FrameSource(), 3, noteRun);
  const after = await mediaPlaylist(store, 'hifi');

  const [firstRun, secondRun] = [...runs] as [number, number];
  t.equal(runs.size, 2, 'one run id per run');
  t.equal(Math.floor(firstRun / 1000), startedAt, "a run id starts with its run's start in milliseconds");
  t.equal(Math.floor(secondRun / 1000), startedAt - 3_600_000, '…whatever the store remembers');
  t.strictSame(after.warnings, []);
  t.same(
    after.manifest.segments.map((segment) => parseUri(segment.uri)),
    [5, 6, 7, 8, 9, 10].map((offset) => ({ rendition: 'hifi', msn: firstMsn() + offset, run: offset < 8 ? firstRun : secondRun })),
    'MSNs go on from the 9th, and the new run id is in the new URIs',
  );
  t.same(
    after.manifest.segments.map((segment) => segment.discontinuity === true),
    [false, false, false, true, false, false],
    'exactly one EXT-X-DISCONTINUITY, before the first segment of the new run',
  );
  t.equal(after.manifest.discontinuitySequence, before.manifest.discontinuitySequence);
  t.strictSame(checker.problems, [], 'MSN never went back and no URI changed meaning');

  const lastOld = await segmentFrames(store, `hifi/${firstMsn() + 7}-${firstRun}.ts`);
  const firstNew = await segmentFrames(store, `hifi/${firstMsn() + 8}-${secondRun}.ts`);
  t.equal(firstNew[0]!.pts, ptsAdd(lastOld.at(-1)!.pts!, FRAME_TICKS), 'the PTS timeline continues where the last run stopped');

  const pdts = after.manifest.segments.map((segment) => segment.programDateTime!);
  t.ok(pdts.every((pdt, index) => index === 0 || pdt > pdts[index - 1]!), 'program date time never goes back');

  // Once the tagged segment leaves the window the discontinuity sequence counts it.
  await produce(second, new FrameSource(), 4, observe);
  const later = await mediaPlaylist(store, 'hifi');
  t.equal(later.manifest.mediaSequence, firstMsn() + 9);
  t.equal(later.manifest.discontinuitySequence, before.manifest.discontinuitySequence! + 1);
  t.strictSame(checker.problems, []);
});

t.test('the master playlist BANDWIDTH covers every segment’s bit rate and AVERAGE-BANDWIDTH is the mean', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const packager = await makePackager();
  const uris: string[] = [];
  await produce(packager, new FrameSource([60, 300]), 12, (entry) => {
    for (const rendition of RENDITIONS) uris.push(`${rendition}/${entry.msn}-${entry.run}.ts`);
  });
  const master = await store.getPlaylist('fip', 'fip.m3u8');
  const { manifest, warnings } = parsePlaylist(master!.body);
  t.strictSame(warnings, []);
  const variants = manifest.playlists ?? [];
  t.same(
    variants.map((variant) => variant.uri),
    ['fip_lofi.m3u8', 'fip_hifi.m3u8'],
  );
  for (const [index, rendition] of RENDITIONS.entries()) {
    let peak = 0;
    let bits = 0;
    let seconds = 0;
    for (const uri of uris.filter((candidate) => candidate.startsWith(`${rendition}/`))) {
      const [, name] = uri.split('/') as [string, string];
      const bytes = (await store.getSegment('fip', rendition, name))!;
      const duration = ((await segmentFrames(store, uri)).length * 1024) / SAMPLE_RATE;
      peak = Math.max(peak, (bytes.byteLength * 8) / duration);
      bits += bytes.byteLength * 8;
      seconds += duration;
    }
    const attributes = variants[index]!.attributes;
    const bandwidth = attributes.BANDWIDTH!;
    const average = Number(attributes['AVERAGE-BANDWIDTH']);
    t.equal(attributes.CODECS, 'mp4a.40.2');
    t.ok(bandwidth >= peak, `${rendition}: BANDWIDTH ${bandwidth} ≥ every segment's ${Math.round(peak)} bit/s`);
    t.ok(bandwidth <= Math.ceil(peak) + 1, `${rendition}: BANDWIDTH is the measured peak, not inflated`);
    t.ok(Math.abs(average - bits / seconds) / (bits / seconds) < 0.01, `${rendition}: AVERAGE-BANDWIDTH ${average} ≈ ${Math.round(bits / seconds)}`);
    t.ok(average < bandwidth, `${rendition}: average below peak`);
  }
});

t.test('a segment stays readable for its duration plus the playlist duration after it leaves the playlist', async (t) => {
  const clock = new ManualClock(Date.UTC(2024, 5, 1, 12));
  const { store, memory, packager: makePackager } = harness(t, { clock });
  const packager = await makePackager();
  /** URI → the time until which it must stay readable (RFC 8216 §6.2.2). */
  const deadlines = new Map<string, number>();
  /** URI → EXTINF, for every segment a playlist has listed. */
  const listedBefore = new Map<string, number>();
  const problems: string[] = [];
  const step = async (entry: WindowSegment) => {
    for (const rendition of RENDITIONS) {
      const { manifest } = await mediaPlaylist(store, rendition);
      const listed = new Set(manifest.segments.map((segment) => segment.uri));
      const playlistSeconds = manifest.segments.reduce((sum, segment) => sum + segment.duration, 0);
      for (const [uri, duration] of listedBefore) {
        if (uri.startsWith(`${rendition}/`) && !listed.has(uri) && !deadlines.has(uri)) {
          deadlines.set(uri, clock.now() + (duration + playlistSeconds) * 1000);
        }
      }
      for (const segment of manifest.segments) listedBefore.set(segment.uri, segment.duration);
    }
    for (const [uri, deadline] of deadlines) {
      if (deadline < clock.now()) continue;
      const [rendition, name] = uri.split('/') as [string, string];
      if (!(await store.getSegment('fip', rendition, name))) problems.push(`${uri} gone at ${clock.now()}, needed until ${deadline}`);
    }
    // Real time passes: the next segment is ready one segment duration later.
    await clock.advance(entry.durationSeconds * 1000);
  };
  await produce(packager, new FrameSource(), 30, step);
  t.ok(deadlines.size >= 20 * RENDITIONS.length, `${deadlines.size} segments left the playlist`);
  // Go to each remaining deadline in turn: the segment must still be there.
  for (const [uri, deadline] of [...deadlines].sort((a, b) => a[1] - b[1])) {
    if (deadline < clock.now()) continue;
    await clock.advance(deadline - clock.now());
    memory.sweepExpired();
    const [rendition, name] = uri.split('/') as [string, string];
    if (!(await store.getSegment('fip', rendition, name))) problems.push(`${uri} gone at its deadline ${deadline}`);
  }
  t.strictSame(problems, []);
});

t.test('the store holds a bounded number of segments after 500 segments (memory stays flat)', async (t) => {
  const clock = new ManualClock(Date.UTC(2024, 5, 1, 12));
  const { store, memory, packager: makePackager } = harness(t, { clock });
  const packager = await makePackager();
  let most = 0;
  await produce(packager, new FrameSource([12, 20]), 500, async (entry) => {
    await clock.advance(entry.durationSeconds * 1000);
    memory.sweepExpired();
    most = Math.max(most, memory.segmentCount());
  });
  const perRendition = Math.ceil(packager.segmentTtlSeconds() / packager.schedule.frameSeconds(187)) + 1;
  t.ok(most <= RENDITIONS.length * perRendition, `at most ${most} segments held (bound ${RENDITIONS.length * perRendition})`);
  t.ok(memory.segmentCount() < 100, `${memory.segmentCount()} segments held after 500 were made`);
  const { manifest } = await mediaPlaylist(store, 'hifi');
  t.equal(manifest.mediaSequence, 494);
});

t.test('segments cut during a short store outage are published later, in order, without MSN gaps', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const clock = new ManualClock();
  const packager = await makePackager({ clock });
  const first = wallClockMsn(clock.now());
  const source = new FrameSource();
  const published: WindowSegment[] = [];
  packager.on('segment', (entry: WindowSegment) => published.push(entry));
  await produce(packager, source, 3);
  store.failing = true;
  for (let index = 0; index < 3; index++) pushUntilCut(packager, source);
  await waitUntil(t, 'the packager has met the outage', () => packager.stats.storeErrors > 0);
  t.equal(packager.stats.segmentsPublished, 3, 'nothing is published while the store is down');
  store.failing = false;
  await clock.advance(500); // the retry delay
  await waitUntil(t, 'the backlog is published', () => packager.stats.segmentsPublished === 6);

  t.same(
    published.map((entry) => entry.msn - first),
    [0, 1, 2, 3, 4, 5],
  );
  t.equal(packager.stats.segmentsDropped, 0);
  const { manifest } = await mediaPlaylist(store, 'hifi');
  t.same(
    manifest.segments.map((segment) => parseUri(segment.uri).msn - first),
    [0, 1, 2, 3, 4, 5],
  );
  t.ok(manifest.segments.every((segment) => !segment.discontinuity), 'no discontinuity: nothing was lost');
  const pts = (await Promise.all(manifest.segments.map((segment) => segmentFrames(store, segment.uri)))).flat().map((frame) => frame.pts!);
  t.ok(pts.every((value, index) => index === 0 || ptsDelta(pts[index - 1]!, value) === FRAME_TICKS), 'PTS continuous through the outage');
});

t.test('an outage longer than the window drops the oldest segments and leaves a discontinuity, not an MSN gap', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const clock = new ManualClock();
  const packager = await makePackager({ clock });
  const first = wallClockMsn(clock.now());
  const source = new FrameSource();
  const runs: number[] = [];
  await produce(packager, source, 2, (entry) => void runs.push(entry.run));
  store.failing = true;
  for (let index = 0; index < 10; index++) pushUntilCut(packager, source);
  store.failing = false;
  await clock.advance(500); // the retry delay
  await waitUntil(t, 'the backlog is published', () => packager.stats.segmentsPublished === 8);
  await sleep(20);

  t.equal(packager.stats.segmentsProduced, 12);
  t.equal(packager.stats.segmentsPublished, 8);
  t.equal(packager.stats.segmentsDropped, 4);
  const { manifest } = await mediaPlaylist(store, 'hifi');
  t.same(
    manifest.segments.map((segment) => parseUri(segment.uri).msn - first),
    [2, 3, 4, 5, 6, 7],
    'no MSN gap',
  );
  const flags = manifest.segments.map((segment) => segment.discontinuity === true);
  t.equal(flags.filter(Boolean).length, 1, 'exactly one discontinuity is listed');
  const resumedAt = flags.indexOf(true);
  // The segment whose write was under way when the queue overflowed may be kept; either way
  // the first segment after the lost ones carries the discontinuity.
  const beforeUri = resumedAt === 0 ? `hifi/${first + 1}-${runs[0]}.ts` : manifest.segments[resumedAt - 1]!.uri;
  const before = parseUri(beforeUri).msn - first;
  const lastBefore = await segmentFrames(store, beforeUri);
  const firstAfter = await segmentFrames(store, manifest.segments[resumedAt]!.uri);
  const lostFrames = ptsDelta(ptsAdd(lastBefore.at(-1)!.pts!, FRAME_TICKS), firstAfter[0]!.pts!) / FRAME_TICKS;
  const dropped = [1, 2, 3, 4].map((offset) => packager.schedule.frameCount(before + offset));
  t.equal(lostFrames, dropped.reduce((sum, frames) => sum + frames, 0), 'the lost audio is exactly the dropped segments');
});

// Regression: an overflow while a store write was in flight once dropped the segment being
// written, and the write's success then removed the next one, leaving an unsignalled PTS jump.
t.test('a store that stalls longer than a window and then succeeds never leaves an unsignalled PTS jump', async (t) => {
  // Like Redis holding commands in its offline queue, then running them all.
  const { store, packager: makePackager } = harness(t);
  const packager = await makePackager();
  const source = new FrameSource();
  await produce(packager, source, 2);
  store.startStall();
  for (let index = 0; index < 10; index++) pushUntilCut(packager, source);
  store.endStall();
  await waitUntil(t, 'the packager is idle', () => packager.stats.segmentsPublished + packager.stats.segmentsDropped >= 12, 3000);
  await sleep(20);

  const { manifest } = await mediaPlaylist(store, 'hifi');
  const msns = manifest.segments.map((segment) => parseUri(segment.uri).msn);
  t.same(msns, msns.map((_, index) => msns[0]! + index), 'no MSN gap');
  const unsignalledJumps: string[] = [];
  let previousEnd: number | undefined;
  for (const segment of manifest.segments) {
    const frames = await segmentFrames(store, segment.uri);
    if (previousEnd !== undefined && !segment.discontinuity && frames[0]!.pts !== previousEnd) {
      unsignalledJumps.push(`${segment.uri} starts ${ptsDelta(previousEnd, frames[0]!.pts!)} ticks away from its predecessor`);
    }
    previousEnd = ptsAdd(frames.at(-1)!.pts!, FRAME_TICKS);
  }
  t.strictSame(unsignalledJumps, []);
  t.equal(
    packager.stats.segmentsPublished + packager.stats.segmentsDropped,
    packager.stats.segmentsProduced,
    'every segment cut is either published or counted as dropped',
  );
});

// Regression: close() once stranded the flush loop's retry wait, so segments cut before
// close() were never stored even when the store came back in time.
t.test('close() during a store outage still stores the cut segments if the store comes back in time', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const clock = new ManualClock();
  const packager = await makePackager({ clock });
  const source = new FrameSource();
  await produce(packager, source, 2);
  store.failing = true;
  pushUntilCut(packager, source);
  await waitUntil(t, 'the packager has met the outage', () => packager.stats.storeErrors > 0);
  clock.setTimeout(() => (store.failing = false), 100);
  const started = clock.now();
  let closedAt = Number.NaN;
  const closing = packager.close(1500).then(() => (closedAt = clock.now()));
  await clock.advance(1500);
  await closing;
  const took = closedAt - started;
  t.equal(packager.stats.segmentsPublished, 3, 'the segment cut before close() was published');
  t.ok(took < 1000, `close() returned ${took} ms after it was called, once the backlog was stored`);
});

t.test('frame groups that do not match the channel are counted and skipped without touching the timeline', async (t) => {
  const { store, packager: makePackager } = harness(t);
  const packager = await makePackager();
  const source = new FrameSource();
  packager.pushFrameGroup([aacFrame(40, 1)]);
  packager.pushFrameGroup([{ ...aacFrame(40, 1), sampleRate: 44100 }, aacFrame(200, 1)]);
  t.equal(packager.stats.framesRejected, 2);
  const published: WindowSegment[] = [];
  await produce(packager, source, 1, (entry) => void published.push(entry));
  const frames = await segmentFrames(store, `hifi/${published[0]!.msn}-${published[0]!.run}.ts`);
  t.equal(frames.length, packager.schedule.frameCount(0));
  t.equal(frames[0]!.pts, FIRST_PTS);
});

t.test('each rendition is muxed by the muxer the factory made for it, and its bytes are stored as they come', async (t) => {
  const { store } = harness(t);
  const made: string[] = [];
  // A stand-in container: names the rendition, the frame count and the first PTS.
  const muxers: MuxerFactory = (rendition) => {
    made.push(rendition.id);
    return { muxSegment: (frames) => new TextEncoder().encode(`${rendition.id}:${frames.length}:${frames[0]!.pts}`) };
  };
  const packager = new ChannelPackager({ channel: channelConfig(), segmentSeconds: 4, windowSegments: 6, store, logger, muxers });
  await packager.start();
  t.teardown(() => packager.close(100));
  const names: string[] = [];
  await produce(packager, new FrameSource(), 2, (entry) => void names.push(`${entry.msn}-${entry.run}.ts`));
  t.same(made, RENDITIONS, 'one muxer per rendition, in order');
  const second = await store.getSegment('fip', 'hifi', names[1]!);
  const firstFrames = packager.schedule.frameCount(0);
  t.equal(new TextDecoder().decode(second!), `hifi:${packager.schedule.frameCount(1)}:${FIRST_PTS + firstFrames * FRAME_TICKS}`);
  const { manifest } = await mediaPlaylist(store, 'lofi');
  t.same(
    manifest.segments.map((segment) => segment.uri),
    names.map((name) => `lofi/${name}`),
  );
});

/** Two packagers on one shared store and clock, both starting as hot standbys. */
function standbyPair(t: Test) {
  const clock = new ManualClock(Date.UTC(2024, 5, 1, 12));
  const store = new TestStore(new MemoryStore({ now: () => clock.now() }));
  t.teardown(() => store.close());
  const make = async (): Promise<ChannelPackager> => {
    const packager = new ChannelPackager({ channel: channelConfig(), segmentSeconds: 1, windowSegments: 6, store, logger, clock, standby: true });
    await packager.start();
    t.teardown(() => packager.close(100));
    return packager;
  };
  return { clock, store, make };
}

t.test('a standby that takes over goes on with the MSN and one discontinuity, skips audio already aired, and fences the old leader', async (t) => {
  const { clock, store, make } = standbyPair(t);
  const leader = await make();
  const standby = await make();
  const checker = new ReloadChecker();
  // The lease outlives the 8 s the leader runs, then lapses while it is frozen.
  const leaderLease = await store.acquireLease('fip', 'leader', 9000);
  t.ok(leaderLease);
  await leader.promote(leaderLease!.token);
  t.equal(await store.acquireLease('fip', 'standby', 1000), null, 'the standby cannot take a held lease');

  // Both hear the same feed in real time; only the leader writes.
  const source = new FrameSource();
  const feed = async (packagers: ChannelPackager[], seconds: number): Promise<void> => {
    for (let frame = 0; frame < Math.round((seconds * SAMPLE_RATE) / 1024); frame++) {
      const group = source.next();
      await clock.advance((1024 * 1000) / SAMPLE_RATE);
      for (const packager of packagers) packager.pushFrameGroup(group);
      if (frame % 10 === 0) {
        await sleep(0);
        const playlist = await store.getPlaylist('fip', 'fip_hifi.m3u8');
        if (playlist) checker.observe(playlist.body);
      }
    }
    await sleep(10);
  };
  await feed([leader, standby], 8);
  t.equal(standby.stats.segmentsPublished, 0, 'the standby publishes nothing');
  const beforeTakeover = await mediaPlaylist(store, 'hifi');
  const lastLeaderMsn = beforeTakeover.manifest.mediaSequence! + beforeTakeover.manifest.segments.length - 1;

  // The leader freezes; its lease runs out while the standby keeps cutting.
  await feed([standby], 1.5);
  t.equal(await store.acquireLease('fip', 'standby', 1000) === null, false, 'the lease expired: the standby takes it');
  const standbyLease = await store.acquireLease('fip', 'standby', 1000);
  await standby.promote(standbyLease!.token);
  await feed([standby], 2);

  const after = await mediaPlaylist(store, 'hifi');
  const segments = after.manifest.segments.map((segment) => ({ ...parseUri(segment.uri), discontinuity: segment.discontinuity === true, pdt: segment.programDateTime! }));
  const firstNew = segments.findIndex((segment) => segment.msn > lastLeaderMsn);
  t.ok(firstNew > 0, 'the predecessor’s segments stay listed');
  t.same(segments.map((segment) => segment.msn), segments.map((_, index) => after.manifest.mediaSequence! + index), 'MSNs are consecutive');
  t.same(segments.filter((segment) => segment.discontinuity).map((segment) => segment.msn), [lastLeaderMsn + 1], 'one discontinuity, at the takeover');
  t.not(segments[firstNew]!.run, segments[firstNew - 1]!.run, 'the successor writes URIs of its own run');
  const leaderEnd = beforeTakeover.manifest.segments.at(-1)!;
  const airedUntil = leaderEnd.programDateTime! + leaderEnd.duration * 1000;
  t.ok(segments[firstNew]!.pdt >= airedUntil - 500, 'the first new segment does not replay audio the leader aired');
  t.ok(segments[firstNew]!.pdt <= airedUntil + 1000, 'and leaves no more than a segment out');
  t.ok(segments.every((segment, index) => index === 0 || segment.pdt > segments[index - 1]!.pdt), 'program date time goes on');

  // The old leader wakes up and writes with its old token: refused, nothing changes.
  const published = await store.getPlaylist('fip', 'fip_hifi.m3u8');
  const fenced = once(leader, 'fenced');
  await feed([leader], 1.2);
  await fenced;
  t.equal(leader.stats.fencedWrites, 1);
  t.notOk(leader.isLeading, 'the old leader stands by');
  t.equal((await store.getPlaylist('fip', 'fip_hifi.m3u8'))!.etag, published!.etag, 'the successor’s playlist is untouched');
  t.strictSame(checker.problems, [], 'MSN never went back and no URI changed meaning');
  t.strictSame(store.listedMissing, []);
});

t.test('a leader whose lease lapsed without a successor goes on without a discontinuity', async (t) => {
  const clock = new ManualClock(Date.UTC(2024, 5, 1, 12));
  const memory = new MemoryStore({ now: () => clock.now() });
  const store = new TestStore(memory);
  t.teardown(() => store.close());
  const packager = new ChannelPackager({ channel: channelConfig(), segmentSeconds: 1, windowSegments: 6, store, logger, clock, standby: true });
  await packager.start();
  t.teardown(() => packager.close(100));
  await packager.promote((await store.acquireLease('fip', 'a', 1000))!.token);
  const source = new FrameSource();
  await produce(packager, source, 3);
  packager.demote();
  pushUntilCut(packager, source);
  await clock.advance(5000);
  await packager.promote((await store.acquireLease('fip', 'a', 1000))!.token);
  await sleep(20);
  await produce(packager, source, 2);
  const playlist = await mediaPlaylist(store, 'hifi');
  t.same(playlist.manifest.segments.map((segment) => parseUri(segment.uri).msn), [0, 1, 2, 3, 4, 5]);
  t.same(playlist.manifest.segments.map((segment) => segment.discontinuity === true), [false, false, false, false, false, false]);
});

t.test('when Redis loses its data the leader is fenced, leads again and goes on past its MSN and the wall-clock MSN, with a discontinuity', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const store = new RedisStore({ url: redis.url });
  await store.start();
  t.teardown(() => store.close());
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const first = wallClockMsn(clock.now());
  const packager = new ChannelPackager({ channel: channelConfig(), segmentSeconds: 1, windowSegments: 6, store, logger, standby: true, clock });
  await packager.start();
  t.teardown(() => packager.close(100));
  // What the leadership loop does: take the lease, and again whenever a write is fenced.
  const lead = async (): Promise<void> => packager.promote((await store.acquireLease('fip', 'me', 60_000))!.token);
  packager.on('fenced', () => void lead());
  await lead();
  const source = new FrameSource();
  await produce(packager, source, 4);

  const checkWindow = async (expected: number[], why: string): Promise<void> => {
    const playlist = await mediaPlaylist(store, 'hifi');
    t.same(playlist.manifest.segments.map((segment) => parseUri(segment.uri).msn).slice(-3), expected, why);
    t.equal(playlist.manifest.segments[0]!.discontinuity, true, 'the new window starts with a discontinuity');
    for (const segment of playlist.manifest.segments) {
      const [rendition, name] = segment.uri.split('/') as [string, string];
      t.ok(await store.getSegment('fip', rendition, name), `${segment.uri} is readable: the window lists only what the store holds`);
    }
  };

  await redisCli(['-p', String(redis.port), 'FLUSHALL']);
  await produce(packager, source, 3);
  t.equal(packager.stats.fencedWrites, 1, 'the first write after the loss was refused: the lease was gone');
  await checkWindow(
    [first + 10, first + 11, first + 12],
    'the MSN goes on a window (6) past the 4 published: another leader may have used MSNs this one never saw',
  );

  // A minute later the wall-clock MSN (10 a second) is further ahead than a window: it wins.
  await clock.advance(60_000);
  await redisCli(['-p', String(redis.port), 'FLUSHALL']);
  await produce(packager, source, 3);
  t.equal(packager.stats.fencedWrites, 2);
  const wallClock = wallClockMsn(clock.now());
  t.equal(wallClock, first + 600);
  await checkWindow([wallClock, wallClock + 1, wallClock + 2], 'the MSN goes on from the wall-clock MSN');
});

t.test('a takeover never moves the MSN back, even when the store went back (a failover that lost writes)', async (t) => {
  const { clock, store, make } = standbyPair(t);
  const leader = await make();
  const standby = await make();
  await leader.promote((await store.acquireLease('fip', 'a', 60_000))!.token);
  const source = new FrameSource();
  // The standby cuts too, and follows the stored state while it stands by.
  for (let index = 0; index < 8; index++) {
    const published = once(leader, 'segment');
    while (leader.stats.segmentsProduced === index) {
      const group = source.next();
      await clock.advance((1024 * 1000) / SAMPLE_RATE);
      leader.pushFrameGroup(group);
      standby.pushFrameGroup(group);
    }
    await published;
    await sleep(5);
  }
  // The store goes back to an older state (its last writes lost), and the lease with it.
  await store.publish({ channel: 'fip', playlists: {}, state: JSON.stringify({ version: 1, targetDuration: 1, nextMsn: 2, discontinuitySequence: 0, nextPts: 900000, window: [], bandwidth: {} }) });
  await store.releaseLease((await store.acquireLease('fip', 'a', 60_000))!);
  await standby.promote((await store.acquireLease('fip', 'b', 60_000))!.token);
  await sleep(20);
  const playlist = await mediaPlaylist(store, 'hifi');
  const msns = playlist.manifest.segments.map((segment) => parseUri(segment.uri).msn);
  t.ok(msns.length > 0 && msns[0]! >= 8, `the MSN goes on from 8, not back to 2 (${msns.join(', ')})`);
  t.equal(playlist.manifest.segments[0]!.discontinuity, true);
});
