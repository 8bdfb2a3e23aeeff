/**
 * The MPD against the bytes it describes: a `container: fmp4` channel through the real packager
 * and fMP4 muxer (MemoryStore), the MPD published in the same step as the playlists, then a
 * restart (new run: a discontinuity). Every SegmentTimeline `t` must be the tfdt of the `.m4s`
 * its `$Number$` names, every `d` the next tfdt minus it, and the second Period's
 * presentationTimeOffset the new run's first tfdt, with its own init segment in the store.
 */
import { once } from 'node:events';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { mpdName, renderChannelMpds } from '../../src/dash/channel-mpd.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { PTS_WRAP, ticksToSamples } from '../../src/media/pts.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FrameSource } from '../helpers/aac-frames.js';
import { testChannel } from '../helpers/channel-config.js';

const logger = pino({ level: 'silent' });

/** baseMediaDecodeTime of the first `tfdt` box in a CMAF chunk (ISO/IEC 14496-12 §8.8.12: version 1 is 64-bit). */
function tfdtOf(bytes: Uint8Array): number {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = view.indexOf('tfdt', 0, 'latin1');
  if (at < 4) throw new Error('no tfdt box');
  return view[at + 4] === 1 ? Number(view.readBigUInt64BE(at + 8)) : view.readUInt32BE(at + 8);
}

interface ListedPeriod {
  id: string;
  presentationTimeOffset: number;
  startNumber: number;
  initialization: string;
  media: string;
  /** [number, t, d] per segment. */
  segments: [number, number, number][];
}

/** The first AdaptationSet of each Period, its timeline expanded. */
function periodsOf(mpd: string): ListedPeriod[] {
  return mpd.split('<Period').slice(1).map((text) => {
    const attribute = (name: string): string => new RegExp(` ${name}="([^"]*)"`).exec(text)![1]!;
    const set = text.slice(0, text.indexOf('</AdaptationSet>'));
    const startNumber = Number(attribute('startNumber'));
    const segments: [number, number, number][] = [];
    let time = 0;
    for (const match of set.matchAll(/<S( t="(\d+)")? d="(\d+)"( r="(\d+)")?\/>/g)) {
      if (match[2] !== undefined) time = Number(match[2]);
      for (let repeat = 0; repeat <= Number(match[5] ?? 0); repeat++) {
        segments.push([startNumber + segments.length, time, Number(match[3])]);
        time += Number(match[3]);
      }
    }
    return {
      id: attribute('id'),
      presentationTimeOffset: Number(attribute('presentationTimeOffset')),
      startNumber,
      initialization: attribute('initialization'),
      media: attribute('media'),
      segments,
    };
  });
}

/** Runs a packager of `channel` on `store` until it has published `segments` more segments. */
async function packagerRun(channel: ReturnType<typeof testChannel>, store: MemoryStore, source: FrameSource, segments: number, windowSegments = 10): Promise<void> {
  const packager = new ChannelPackager({ channel, segmentSeconds: 1, windowSegments, store, logger, manifests: (state) => renderChannelMpds(channel, state) });
  await packager.start();
  const target = packager.stats.segmentsPublished + segments;
  // 47 frames make a segment at 48 kHz: pushed in bounded rounds while publishes run.
  for (let round = 0; round < 10_000 && packager.stats.segmentsPublished < target; round++) {
    packager.pushFrameGroup(source.next());
    if (round % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  while (packager.stats.segmentsPublished < target) await once(packager, 'segment');
  await packager.close();
}

/** Every `t` and `d` of every Period against the tfdt of the `.m4s` its `$Number$` names. */
async function checkTimeline(t: Test, store: MemoryStore, periods: ListedPeriod[]): Promise<void> {
  for (const period of periods) {
    const run = /init-(\d+)\.mp4/.exec(period.initialization)![1]!;
    t.ok(await store.getSegment('fip', 'hifi', `init-${run}.mp4`), `Period ${period.id}: its init segment is stored`);
    t.equal(period.presentationTimeOffset, period.segments[0]![1], `Period ${period.id}: presentationTimeOffset is its first t`);
    for (const [number, time, duration] of period.segments) {
      const name = period.media.replace('$RepresentationID$/', '').replace('$Number$', String(number));
      const bytes = await store.getSegment('fip', 'hifi', name);
      t.ok(bytes, `${name} is stored`);
      t.equal(time, tfdtOf(bytes!), `${name}: t is its tfdt`);
      const next = await store.getSegment('fip', 'hifi', period.media.replace('$RepresentationID$/', '').replace('$Number$', String(number + 1)));
      if (next) t.equal(duration, tfdtOf(next) - tfdtOf(bytes!), `${name}: d is the next tfdt minus its own`);
    }
  }
}

t.test('the MPD timeline is the tfdt of the segments it names, across a restart (second Period)', async (t) => {
  const channel = testChannel({ container: 'fmp4' }, 1);
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const source = new FrameSource();
  await packagerRun(channel, store, source, 4);
  await packagerRun(channel, store, source, 4);

  const mpd = await store.getPlaylist('fip', mpdName('fip'));
  t.ok(mpd, 'the MPD is published with the playlists');
  const periods = periodsOf(mpd!.body);
  t.equal(periods.length, 2, 'the restart starts a second Period');
  const runs = periods.map((period) => /init-(\d+)\.mp4/.exec(period.initialization)![1]!);
  t.not(runs[0], runs[1], 'each Period names its own run');
  t.same(periods.map((period) => period.id), ['0', '1'], 'Period ids are the discontinuity sequence numbers');
  await checkTimeline(t, store, periods);
  const last = periods[0]!.segments.at(-1)!;
  t.equal(periods[1]!.presentationTimeOffset, last[1] + last[2], 'the new run goes on where the old one ended on the media timeline');
});

/** A memory store whose stored sequence state says, once, that the timeline is `ticksBeforeWrap` before the 2^33 wrap. */
class StoreNearTheWrap extends MemoryStore {
  constructor(private readonly ticksBeforeWrap: number) {
    super();
  }
  private moved = false;

  override async getState(channel: string): Promise<string | null> {
    const text = await super.getState(channel);
    if (text === null || this.moved) return text;
    this.moved = true;
    return JSON.stringify({ ...JSON.parse(text), nextPts: PTS_WRAP - this.ticksBeforeWrap });
  }
}

t.test('a channel that runs past the 2^33 PTS wrap (26.5 h): tfdt and the MPD\'s t go on counting together', async (t) => {
  const channel = testChannel({ container: 'fmp4' }, 1);
  const store = new StoreNearTheWrap(90_000 + 45_000);
  await store.start();
  t.teardown(() => store.close());
  const source = new FrameSource();
  await packagerRun(channel, store, source, 1, 4);
  // The second run continues 1.5 s before the wrap and goes 8 segments on: the live window
  // (4 segments) then lies wholly past the wrap, where a `t` taken from the 33-bit PTS would
  // start again from 0 while the tfdt goes on.
  await packagerRun(channel, store, source, 8, 4);

  const periods = periodsOf((await store.getPlaylist('fip', mpdName('fip')))!.body);
  t.equal(periods.length, 1, 'the window holds the second run only');
  const wrapInSamples = ticksToSamples(PTS_WRAP, channel.sampleRate);
  t.ok(periods[0]!.segments[0]![1] > wrapInSamples, `every t is past the wrap (${periods[0]!.segments[0]![1]} > ${wrapInSamples})`);
  await checkTimeline(t, store, periods);
});
