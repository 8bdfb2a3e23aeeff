/**
 * The packager puts the channel's now playing into its MPEG-TS segments as ID3 timed metadata
 * (src/hls/segmenter.ts, channel-packager.ts): at the first frame after a change, and again at
 * the start of every segment (the first part of a Low-Latency HLS segment), in every
 * rendition. Real packager, real MemoryStore, a manual clock; the stored bytes are read back
 * with the demuxer, the ADTS reader and an ID3 reader.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { AdtsReader } from '../../src/media/adts.js';
import type { NowPlaying } from '../../src/media/now-playing.js';
import { TsDemuxer } from '../../src/media/ts-demuxer.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FrameSource, pushUntilCut } from '../helpers/aac-frames.js';
import { testChannel } from '../helpers/channel-config.js';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { readNowPlayingTag } from '../helpers/id3-reader.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitUntil } from '../helpers/wait-until.js';

const FIRST: NowPlaying = { title: 'So What', artist: 'Miles Davis', setAt: 1 };
const SECOND: NowPlaying = { title: 'Blue in Green', artist: 'Miles Davis', artworkUrl: 'https://art.example/kob.jpg', setAt: 2 };

/** Every segment and part the packager stores, in the order it stores them. */
class RecordingStore extends DelegatingStore {
  readonly stored: { rendition: string; name: string; bytes: Uint8Array }[] = [];

  override async putSegment(channel: string, rendition: string, name: string, bytes: Uint8Array, ttlSeconds: number, fence?: string): Promise<void> {
    this.stored.push({ rendition, name, bytes });
    return this.inner.putSegment(channel, rendition, name, bytes, ttlSeconds, fence);
  }

  /** Waits until `count` segments of every rendition are stored (the publisher writes them asynchronously). */
  async segmentsStored(t: Test, count: number): Promise<void> {
    await waitUntil(t, `${count} segments stored`, () => ['lofi', 'hifi'].every((rendition) => this.segments(rendition).length >= count));
  }

  /** Stored segments (not parts) of `rendition`, oldest first. */
  segments(rendition: string): Uint8Array[] {
    return this.stored.filter((entry) => entry.rendition === rendition && /^\d+-\d+\.ts$/.test(entry.name)).map((entry) => entry.bytes);
  }

  /** Stored parts of `rendition`, oldest first, with their index in their segment. */
  parts(rendition: string): { index: number; bytes: Uint8Array }[] {
    return this.stored.flatMap((entry) => {
      const match = entry.rendition === rendition ? /^\d+-\d+\.(\d+)\.ts$/.exec(entry.name) : null;
      return match ? [{ index: Number(match[1]), bytes: entry.bytes }] : [];
    });
  }
}

/** The audio frames' PTS and the ID3 events (PTS and fields) of one stored segment or part. */
function read(bytes: Uint8Array): { audioPts: number[]; metadata: { pts: number; fields: Record<string, string> }[] } {
  const demuxer = new TsDemuxer();
  const events = [...demuxer.push(bytes), ...demuxer.flush()];
  const reader = new AdtsReader();
  const audioPts: number[] = [];
  const metadata: { pts: number; fields: Record<string, string> }[] = [];
  for (const event of events) {
    if (event.kind !== 'pes') continue;
    if (event.streamId === 0xbd) metadata.push({ pts: event.pts!, fields: readNowPlayingTag(event.payload) });
    else audioPts.push(...reader.push(event.payload, event.pts).map((frame) => frame.pts!));
  }
  return { audioPts, metadata };
}

async function startPackager(t: Test, channelOverrides: Record<string, unknown>, segmentSeconds: number) {
  const store = new RecordingStore(new MemoryStore());
  await store.start();
  const packager = new ChannelPackager({
    channel: testChannel(channelOverrides, segmentSeconds),
    segmentSeconds,
    windowSegments: 6,
    store,
    logger: pino({ level: 'silent' }),
    clock: new ManualClock(),
  });
  await packager.start();
  t.teardown(async () => {
    await packager.close();
    await store.close();
  });
  return { packager, store, source: new FrameSource() };
}

t.test('every segment starts with the now playing; a change lands on the first frame after it, in every rendition', async (t) => {
  const { packager, store, source } = await startPackager(t, {}, 1);
  pushUntilCut(packager, source); // a segment before anything is on air: no metadata
  packager.setNowPlaying(FIRST);
  pushUntilCut(packager, source);
  for (let frame = 0; frame < 20; frame++) packager.pushFrameGroup(source.next());
  packager.setNowPlaying(SECOND);
  pushUntilCut(packager, source);
  pushUntilCut(packager, source);
  await store.segmentsStored(t, 4);

  for (const rendition of ['lofi', 'hifi']) {
    const [silent, first, changed, after] = store.segments(rendition).map(read);
    t.same(silent!.metadata, [], `${rendition}: nothing before a now playing is set`);
    t.same(first!.metadata, [{ pts: first!.audioPts[0], fields: { title: 'So What', artist: 'Miles Davis' } }], `${rendition}: at the segment's first frame`);
    t.same(
      changed!.metadata,
      [
        { pts: changed!.audioPts[0], fields: { title: 'So What', artist: 'Miles Davis' } },
        { pts: changed!.audioPts[20], fields: { title: 'Blue in Green', artist: 'Miles Davis', artworkUrl: 'https://art.example/kob.jpg' } },
      ],
      `${rendition}: repeated at the start, the change at frame 20, the first pushed after it`,
    );
    t.same(after!.metadata.map((event) => [event.pts, event.fields['title']]), [[after!.audioPts[0], 'Blue in Green']], `${rendition}: the new one repeats from the next segment on`);
  }
});

t.test('a cleared now playing is no longer repeated', async (t) => {
  const { packager, store, source } = await startPackager(t, {}, 1);
  packager.setNowPlaying(FIRST);
  for (let frame = 0; frame < 10; frame++) packager.pushFrameGroup(source.next());
  packager.setNowPlaying(undefined);
  pushUntilCut(packager, source);
  pushUntilCut(packager, source);
  await store.segmentsStored(t, 2);
  const [first, second] = store.segments('hifi').map(read);
  t.equal(first!.metadata.length, 1, 'the segment it was on air in carries it once');
  t.same(second!.metadata, [], 'not repeated once cleared');
});

t.test('Low-Latency HLS: the first part of every segment carries the now playing, a later part only a change', async (t) => {
  const { packager, store, source } = await startPackager(t, { lowLatency: true, partSeconds: 0.5 }, 2);
  packager.setNowPlaying(FIRST);
  pushUntilCut(packager, source);
  // Into the second segment's third part (parts of 23-24 frames), then a change.
  for (let frame = 0; frame < 50; frame++) packager.pushFrameGroup(source.next());
  packager.setNowPlaying(SECOND);
  pushUntilCut(packager, source);
  await store.segmentsStored(t, 2);

  const parts = store.parts('hifi').map((part) => ({ index: part.index, ...read(part.bytes) }));
  t.equal(parts.length, 8, 'two segments of four parts');
  for (const part of parts) {
    const expected = part.index === 0 ? [[part.audioPts[0], 'So What']] : [];
    if (part === parts[6]) {
      const changeAt = 50 - (parts[4]!.audioPts.length + parts[5]!.audioPts.length);
      t.same(part.metadata.map((event) => [event.pts, event.fields['title']]), [[part.audioPts[changeAt], 'Blue in Green']], 'the change, in the part it falls in, at its frame');
      continue;
    }
    t.same(part.metadata.map((event) => [event.pts, event.fields['title']]), expected, `part ${part.index}: ${expected.length === 0 ? 'nothing' : 'the now playing at its first frame'}`);
  }
  const segments = store.segments('hifi').map(read);
  t.same(segments[1]!.metadata.map((event) => event.fields['title']), ['So What', 'Blue in Green'], 'a segment is its parts: both events');
});
