/**
 * A channel's pipeline follows its now playing in the store (src/pipeline/channel-pipeline.ts):
 * FFmpeg plays a tone file into a real pipeline on a MemoryStore, and the segments it
 * publishes carry, as ID3 timed metadata, the now playing stored before the start, then each
 * one put while it runs. The store refuses the first reads (an outage a MemoryStore cannot
 * have, injected through a delegating store): the pipeline retries until it gets it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { segmentName } from '../../src/hls/published-names.js';
import type { WindowSegment } from '../../src/hls/sequence-state.js';
import { serializeNowPlaying } from '../../src/media/now-playing.js';
import { TsDemuxer } from '../../src/media/ts-demuxer.js';
import { ChannelPipeline } from '../../src/pipeline/channel-pipeline.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { readNowPlayingTag } from '../helpers/id3-reader.js';
import { waitFor } from '../helpers/onair-harness.js';
import { run } from '../helpers/recording.js';

class FlakyNowPlayingStore extends DelegatingStore {
  failures = 2;
  reads = 0;

  override async getNowPlaying(channel: string): Promise<string | null> {
    this.reads += 1;
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('store unreachable');
    }
    return this.inner.getNowPlaying(channel);
  }
}

t.test('segments carry the stored now playing from the start (after failed reads) and each change put while airing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-now-playing-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tone = join(dir, 'tone.wav');
  const made = await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '30', tone]);
  t.equal(made.code, 0, made.stderr);
  const config = resolveConfig({
    hls: { segmentSeconds: 1 },
    log: { level: 'silent' },
    channels: [{ id: 'fip', renditions: [{ id: 'hifi', bitrate: '64k' }], inputs: [{ id: 'main', url: tone }] }],
  });
  const memory = new MemoryStore();
  await memory.start();
  t.teardown(() => memory.close());
  const store = new FlakyNowPlayingStore(memory);
  await store.putNowPlaying('fip', serializeNowPlaying({ title: 'So What', artist: 'Miles Davis', setAt: 1 }));

  const pipeline = new ChannelPipeline(config.channels[0]!, { config, store, logger: pino({ level: 'silent' }) });
  /** The titles of each published segment's ID3 events, in order. */
  const titles: string[][] = [];
  pipeline.packager.on('segment', (entry: WindowSegment) => {
    void store.getSegment('fip', 'hifi', segmentName(entry.msn, entry.run)).then((bytes) => {
      const demuxer = new TsDemuxer();
      const events = [...demuxer.push(bytes!), ...demuxer.flush()];
      titles.push(events.flatMap((event) => (event.kind === 'pes' && event.streamId === 0xbd ? [readNowPlayingTag(event.payload)['title']!] : [])));
    });
  });
  await pipeline.start();
  t.teardown(() => pipeline.close());

  await waitFor('a segment with the stored now playing', async () => (titles.some((segment) => segment[0] === 'So What') ? true : undefined), 20_000);
  t.ok(store.reads >= 3, `read ${store.reads} times: two failures, then retried`);
  await store.putNowPlaying('fip', serializeNowPlaying({ title: 'Blue in Green', artist: 'Miles Davis', setAt: 2 }));
  const changedAt = await waitFor('a segment with the change', async () => {
    const index = titles.findIndex((segment) => segment.includes('Blue in Green'));
    return index >= 0 ? index : undefined;
  }, 10_000);
  await waitFor('a segment after the change', async () => (titles.length > changedAt + 1 ? true : undefined), 10_000);
  const fromFirst = titles.slice(titles.findIndex((segment) => segment[0] === 'So What'));
  const changed = fromFirst.findIndex((segment) => segment.includes('Blue in Green'));
  t.ok(fromFirst.slice(0, changed).every((segment) => segment.length === 1 && segment[0] === 'So What'), 'each segment until the change starts with the first');
  t.ok(['So What,Blue in Green', 'Blue in Green'].includes(fromFirst[changed]!.join()), `the change lands inside a segment, or at its start: ${fromFirst[changed]!.join()}`);
  t.same(fromFirst[changed + 1], ['Blue in Green'], 'and repeats at the start of the next one');
});
