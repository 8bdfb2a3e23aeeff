/**
 * A progressive mount (src/origin/progressive/mount.ts) following a real packager's playlists
 * in a MemoryStore: the burst on connect, every frame once and in order across segments, LL-HLS
 * parts and a packager takeover (one jump at most), a slow listener cut off, and the mount
 * stopping when its last listener left; the same on an fMP4 channel (`.m4s` read with their
 * EXT-X-MAP init segment), and an fMP4 MP3 rendition. Every frame carries its index in its payload, so the
 * listener's bytes say exactly which frames it got.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ChannelPackager } from '../../../src/hls/channel-packager.js';
import { AdtsReader, buildAdtsHeader, type AacFrame } from '../../../src/media/adts.js';
import { Fmp4Muxer, formatFor } from '../../../src/media/fmp4-muxer.js';
import { Mount } from '../../../src/origin/progressive/mount.js';
import type { ListenerSink } from '../../../src/origin/progressive/mount-listener.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { testChannel } from '../../helpers/channel-config.js';
import { ManualClock, settle } from '../../helpers/manual-clock.js';

const SAMPLE_RATE = 48000;
const FRAME_MS = (1024 * 1000) / SAMPLE_RATE;
const logger = pino({ level: 'silent' });

/** An ADTS frame whose payload starts with its index (4 bytes, big-endian). */
function indexedFrame(index: number, bytes: number): AacFrame {
  const data = new Uint8Array(bytes);
  data.set(buildAdtsHeader({ sampleRate: SAMPLE_RATE, channelCount: 2, objectType: 2, payloadLength: bytes - 7 }));
  new DataView(data.buffer).setUint32(7, index);
  return { data, sampleRate: SAMPLE_RATE, channelCount: 2, objectType: 2, samples: 1024 };
}

/** A listener's connection: keeps what it is written; `stuck` makes it never drain. */
class CollectingSink implements ListenerSink {
  readonly chunks: Uint8Array[] = [];
  destroyed = false;
  stuck = false;
  private unsent = 0;

  write(chunk: Uint8Array): boolean {
    this.chunks.push(chunk);
    if (this.stuck) this.unsent += chunk.length;
    return !this.stuck;
  }

  get writableLength(): number {
    return this.unsent;
  }

  destroy(): void {
    this.destroyed = true;
  }

  /** The indices of the whole frames received, in order. */
  frameIndices(): number[] {
    const reader = new AdtsReader();
    return reader.push(Buffer.concat(this.chunks)).map((frame) => new DataView(frame.data.buffer, frame.data.byteOffset).getUint32(7));
  }
}

/** Places where the indices do not go up by one. */
function breaks(indices: number[]): string[] {
  return indices.flatMap((index, at) => (at > 0 && index !== indices[at - 1]! + 1 ? [`${indices[at - 1]} → ${index}`] : []));
}

interface Setup {
  clock: ManualClock;
  store: MemoryStore;
  mount: Mount;
  /** Feeds `seconds` of frame groups to the packagers, in clock time. */
  feed(packagers: ChannelPackager[], seconds: number): Promise<void>;
  packager(options?: { standby?: boolean }): Promise<ChannelPackager>;
  lastIndex(): number;
}

async function setup(t: Test, options: { lowLatency?: boolean; segmentSeconds?: number; maxBacklogBytes?: number; container?: 'ts' | 'fmp4' } = {}): Promise<Setup> {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
  const store = new MemoryStore({ now: () => clock.now() });
  await store.start();
  t.teardown(() => store.close());
  const segmentSeconds = options.segmentSeconds ?? 1;
  const channel = testChannel({ ...(options.lowLatency ? { lowLatency: true, partSeconds: 0.5 } : {}), ...(options.container === 'fmp4' ? { container: 'fmp4' } : {}) }, segmentSeconds);
  const mount = new Mount({
    channel: 'fip',
    rendition: 'hifi',
    store,
    burstSeconds: 2,
    maxBacklogBytes: options.maxBacklogBytes ?? 1024 * 1024,
    idleGraceMs: 3000,
    storeTimeoutMs: 1000,
    recheckMs: 1000,
    clock,
    logger,
  });
  t.teardown(() => mount.close());
  const unsubscribe = await store.subscribe(() => mount.notify());
  t.teardown(unsubscribe);
  let index = 0;
  return {
    clock,
    store,
    mount,
    lastIndex: () => index - 1,
    async packager(packagerOptions = {}) {
      const packager = new ChannelPackager({ channel, segmentSeconds, windowSegments: 6, store, logger, clock, standby: packagerOptions.standby });
      await packager.start();
      t.teardown(() => packager.close(100));
      return packager;
    },
    async feed(packagers, seconds) {
      for (let frame = 0; frame < Math.round((seconds * 1000) / FRAME_MS); frame++) {
        const group = [indexedFrame(index, 40), indexedFrame(index, 200)];
        index += 1;
        await clock.advance(FRAME_MS);
        for (const packager of packagers) packager.pushFrameGroup(group);
        // Let publishes and the mount's reads run.
        for (let turn = 0; turn < 3; turn++) await settle();
      }
    },
  };
}

// The same on a `container: fmp4` channel: `.m4s` CMAF chunks read with their EXT-X-MAP init segment.
for (const container of ['ts', 'fmp4'] as const) {
  const on = container === 'fmp4' ? ' (fMP4 channel)' : '';

  t.test(`a new listener gets the burst at once, then every frame once and in order across segments${on}`, async (t) => {
    const { mount, feed, packager, lastIndex } = await setup(t, { container });
    const leader = await packager();
    await feed([leader], 5);
    await mount.wake();
    t.ok(mount.onAir, 'the mount has audio');
    const sink = new CollectingSink();
    mount.attach(sink);
    const burst = sink.frameIndices();
    const burstSeconds = (burst.length * FRAME_MS) / 1000;
    t.ok(burstSeconds >= 2 && burstSeconds < 2.1, `about 2 s of burst (${burstSeconds.toFixed(2)} s)`);
    await feed([leader], 6);
    const indices = sink.frameIndices();
    t.strictSame(breaks(indices), [], 'no frame repeated or skipped across six segment boundaries');
    t.ok(lastIndex() - indices.at(-1)! < 1000 / FRAME_MS + 2, 'and it is at most a segment behind the feed');
    t.ok(sink.chunks.length >= 6, 'delivered segment by segment');
    t.equal(mount.stats.jumps, 0);
    t.equal(mount.stats.initReads, container === 'fmp4' ? 1 : 0, 'fMP4: the one run\'s init segment read once');
  });

  t.test(`with LL-HLS parts the mount delivers each part as it is published, then goes on after the segment without repeating it${on}`, async (t) => {
    const { mount, feed, packager, lastIndex } = await setup(t, { lowLatency: true, segmentSeconds: 2, container });
    const leader = await packager();
    await feed([leader], 5);
    await mount.wake();
    const sink = new CollectingSink();
    mount.attach(sink);
    await feed([leader], 7);
    const indices = sink.frameIndices();
    t.strictSame(breaks(indices), [], 'no frame repeated or skipped across parts and segments');
    t.ok(lastIndex() - indices.at(-1)! <= 500 / FRAME_MS + 2, `at most a part (0.5 s) behind the feed (${lastIndex() - indices.at(-1)!} frames)`);
  });

  t.test(`a packager takeover (new run id, the MSN going on) leaves at most one jump, and listeners stay${on}`, async (t) => {
    const { clock, store, mount, feed, packager } = await setup(t, { container });
    const leader = await packager({ standby: true });
    const standby = await packager({ standby: true });
    await leader.promote((await store.acquireLease('fip', 'leader', 6000))!.token);
    await feed([leader, standby], 4);
    await mount.wake();
    const sink = new CollectingSink();
    mount.attach(sink);
    await feed([leader, standby], 2);
    const runs = async (): Promise<string[]> => [...(await store.getPlaylist('fip', 'fip_hifi.m3u8'))!.body.matchAll(/-(\d+)\.(?:ts|m4s)/g)].map((match) => match[1]!);
    const leaderRun = (await runs()).at(-1);
    // The leader freezes; its lease lapses; the standby takes over.
    await feed([standby], 1.5);
    await clock.advance(100);
    const lease = await store.acquireLease('fip', 'standby', 60_000);
    t.ok(lease, 'the standby gets the lease');
    await standby.promote(lease!.token);
    await feed([standby], 5);
    t.not((await runs()).at(-1), leaderRun, 'the successor publishes under its own run id');
    const indices = sink.frameIndices();
    const found = breaks(indices);
    t.ok(found.length <= 1, `at most one jump (${found.join(', ') || 'none'})`);
    t.ok(indices.length > (9 * 1000) / FRAME_MS * 0.8, 'and the audio goes on after it');
    t.equal(sink.destroyed, false);
    if (container === 'fmp4') t.equal(mount.stats.initReads, 2, 'fMP4: each run\'s init segment read once');
  });
}

t.test('a listener that does not read is disconnected once its backlog passes the bound; the others go on', async (t) => {
  let slow = 0;
  // 4 s segments: a chunk (~37 kB) is larger than the bound, which a reading listener never reaches.
  const { mount, feed, packager } = await setup(t, { maxBacklogBytes: 20_000, segmentSeconds: 4 });
  (mount as unknown as { options: { onSlowListener: () => void } }).options.onSlowListener = () => (slow += 1);
  const leader = await packager();
  await feed([leader], 5);
  await mount.wake();
  const stuck = new CollectingSink();
  stuck.stuck = true;
  const reading = new CollectingSink();
  mount.attach(stuck);
  mount.attach(reading);
  await feed([leader], 13);
  t.equal(stuck.destroyed, true, 'the stuck listener is cut off');
  t.equal(slow, 1, 'and counted');
  const unsent = stuck.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  t.ok(unsent < 20_000 + 200 * 200, `it never held more than the bound and one chunk (${unsent} bytes)`);
  t.equal(reading.destroyed, false, 'the reading listener stays');
  t.strictSame(breaks(reading.frameIndices()), []);
  t.equal(mount.listenerCount, 1);
});

t.test('the mount stops reading the store a grace period after its last listener left, and starts again for the next one', async (t) => {
  const { clock, mount, feed, packager } = await setup(t);
  const leader = await packager();
  await feed([leader], 3);
  await mount.wake();
  const sink = new CollectingSink();
  const listener = mount.attach(sink);
  await feed([leader], 2);
  const readsWhileListening = mount.stats.reads;
  t.ok(readsWhileListening >= 3);
  listener.close();
  mount.detach(listener);
  await feed([leader], 2);
  t.ok(mount.stats.reads > readsWhileListening, 'it still follows during the grace');
  await clock.advance(1500);
  t.notOk(mount.onAir, 'after the grace it stopped and let go of its burst');
  const stoppedAt = mount.stats.reads;
  await feed([leader], 3);
  t.equal(mount.stats.reads, stoppedAt, 'no store read while nobody listens');
  await mount.wake();
  const next = new CollectingSink();
  mount.attach(next);
  t.ok(next.frameIndices().length > 0, 'the next listener gets a burst again');
});

t.test('an MP3 rendition’s packed-audio segments (ID3 tag, then MPEG audio frames) come out as their frames, the tags left out', async (t) => {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const clock = new ManualClock();
  const mount = new Mount({ channel: 'fip', rendition: 'midfi', store, burstSeconds: 60, maxBacklogBytes: 1 << 20, idleGraceMs: 1000, storeTimeoutMs: 1000, recheckMs: 1000, clock, logger });
  t.teardown(() => mount.close());
  // MPEG-1 Layer III, 128 kb/s, 48 kHz: 384-byte frames of 1152 samples (24 ms); the second byte of the payload numbers them.
  const frame = (index: number): Buffer => Buffer.concat([Buffer.from([0xff, 0xfb, 0x94, 0x00]), Buffer.from([index]), Buffer.alloc(379, index)]);
  const id3 = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5]);
  const segments: string[] = [];
  const publish = async (msn: number): Promise<void> => {
    const frames = Array.from({ length: 10 }, (_, at) => frame(msn * 10 + at));
    await store.putSegment('fip', 'midfi', `${msn}-7.mp3`, Buffer.concat([id3, ...frames]), 600);
    segments.push(`#EXTINF:0.24000,\nmidfi/${msn}-7.mp3`);
    const playlist = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0', ...segments, ''].join('\n');
    await store.publish({ channel: 'fip', playlists: { 'fip_midfi.m3u8': playlist }, state: '{}' });
  };
  for (let msn = 0; msn < 3; msn++) await publish(msn);
  await mount.wake();
  const sink = new CollectingSink();
  mount.attach(sink);
  await publish(3);
  mount.notify();
  await clock.advance(10);
  const received = Buffer.concat(sink.chunks);
  t.equal(received.length, 40 * 384, 'every frame of the four segments, nothing of their tags');
  const numbers = Array.from({ length: 40 }, (_, at) => received[at * 384 + 4]);
  t.strictSame(numbers, Array.from({ length: 40 }, (_, at) => at), 'in order, once');
});

t.test('an fMP4 MP3 rendition: its samples come out as the MP3 frames, read with the init segment its EXT-X-MAP names', async (t) => {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const clock = new ManualClock();
  const mount = new Mount({ channel: 'fip', rendition: 'midfi', store, burstSeconds: 60, maxBacklogBytes: 1 << 20, idleGraceMs: 1000, storeTimeoutMs: 1000, recheckMs: 1000, clock, logger });
  t.teardown(() => mount.close());
  const frame = (index: number): Buffer => Buffer.concat([Buffer.from([0xff, 0xfb, 0x94, 0x00]), Buffer.from([index]), Buffer.alloc(379, index)]);
  const muxer = new Fmp4Muxer({ format: formatFor('mp3', 48000, 2)! });
  // The init is named by EXT-X-MAP only (not the run's own name): the mount must follow the tag.
  await store.putSegment('fip', 'midfi', 'init-9.mp4', muxer.initSegment(), 600);
  const segments: string[] = ['#EXT-X-MAP:URI="midfi/init-9.mp4"'];
  const publish = async (msn: number): Promise<void> => {
    const frames = Array.from({ length: 10 }, (_, at) => ({ data: frame(msn * 10 + at), pts: (msn * 10 + at) * 2160, durationTicks: 2160 }));
    await store.putSegment('fip', 'midfi', `${msn}-7.m4s`, muxer.muxSegment(frames, []), 600);
    segments.push(`#EXTINF:0.24000,\nmidfi/${msn}-7.m4s`);
    const playlist = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0', ...segments, ''].join('\n');
    await store.publish({ channel: 'fip', playlists: { 'fip_midfi.m3u8': playlist }, state: '{}' });
  };
  for (let msn = 0; msn < 3; msn++) await publish(msn);
  await mount.wake();
  const sink = new CollectingSink();
  mount.attach(sink);
  await publish(3);
  mount.notify();
  await clock.advance(10);
  const received = Buffer.concat(sink.chunks);
  t.equal(received.length, 40 * 384, 'every frame of the four segments, nothing of the boxes');
  t.strictSame(Array.from({ length: 40 }, (_, at) => received[at * 384 + 4]), Array.from({ length: 40 }, (_, at) => at), 'in order, once');
  t.equal(mount.stats.initReads, 1, 'the init segment read once');
});

t.test('fMP4: init segments kept are bounded (the last four), whatever the runs in the window', async (t) => {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const clock = new ManualClock();
  const mount = new Mount({ channel: 'fip', rendition: 'hifi', store, burstSeconds: 60, maxBacklogBytes: 1 << 20, idleGraceMs: 1000, storeTimeoutMs: 1000, recheckMs: 1000, clock, logger });
  t.teardown(() => mount.close());
  // Eight segments, each of its own run (and init segment): the mount reads every init once and keeps four.
  const lines: string[] = [];
  for (let msn = 0; msn < 8; msn++) {
    const muxer = new Fmp4Muxer({ codec: 'aac' });
    const frames = Array.from({ length: 5 }, (_, at) => ({ data: indexedFrame(msn * 5 + at, 100).data, pts: (msn * 5 + at) * 1920, durationTicks: 1920 }));
    const segment = muxer.muxSegment(frames, []);
    await store.putSegment('fip', 'hifi', `init-${msn + 1}.mp4`, muxer.initSegment(), 600);
    await store.putSegment('fip', 'hifi', `${msn}-${msn + 1}.m4s`, segment, 600);
    lines.push('#EXT-X-DISCONTINUITY', `#EXT-X-MAP:URI="hifi/init-${msn + 1}.mp4"`, `#EXTINF:0.10667,\nhifi/${msn}-${msn + 1}.m4s`);
  }
  await store.publish({ channel: 'fip', playlists: { 'fip_hifi.m3u8': ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0', ...lines.slice(1), ''].join('\n') }, state: '{}' });
  await mount.wake();
  const sink = new CollectingSink();
  mount.attach(sink);
  t.strictSame(sink.frameIndices(), Array.from({ length: 40 }, (_, at) => at), 'every frame of the eight runs, in order');
  t.equal(mount.stats.initReads, 8);
  t.equal((mount as unknown as { inits: Map<string, unknown> }).inits.size, 4, 'four init segments kept');
});
