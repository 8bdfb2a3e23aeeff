/**
 * The session recorder keeping the now playing as chapters (src/recording/session-recorder.ts,
 * now-playing-timeline.ts), driven by hand on a ManualClock: now-playing updates go into a
 * MemoryStore as the control API writes them, segments are published as the packager does
 * (1.002667 s, 47 frames at 48 kHz). What a listener of the recording notices: the title at
 * the start, each change on the frame where it aired, offsets in audio seconds, nothing lost
 * to a crash, and a flood that cannot grow the index without bound.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { ChannelConfig } from '../../src/config/config-schema.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { segmentName, type WindowSegment } from '../../src/hls/sequence-state.js';
import { isNowPlayingProblem, nowPlayingFrom, serializeNowPlaying } from '../../src/media/now-playing.js';
import { RecordingCatalog } from '../../src/recording/recording-catalog.js';
import { RecordingFiles, sessionSegments } from '../../src/recording/recording-files.js';
import { sessionChapters } from '../../src/recording/session-chapters.js';
import { MAX_CHAPTERS_PER_SESSION, SessionRecorder } from '../../src/recording/session-recorder.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { ManualClock, settle } from '../helpers/manual-clock.js';

const FRAME = 1024 / 48000;
const SEGMENT_FRAMES = 47;
const SEGMENT = SEGMENT_FRAMES * FRAME;
const SEGMENT_MS = SEGMENT * 1000;
/** Offsets as the index keeps them: audio seconds to the microsecond. */
const offset = (frames: number): number => Math.round(frames * FRAME * 1e6) / 1e6;

function channelConfig(keys: Record<string, unknown> = {}): ChannelConfig {
  return resolveConfig({
    channels: [
      {
        id: 'fip',
        renditions: [{ id: 'hifi', bitrate: '192k' }],
        inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }],
        ...keys,
      },
    ],
  }).channels[0]!;
}

interface Rig {
  recorder: SessionRecorder;
  catalog: RecordingCatalog;
  store: MemoryStore;
  clock: ManualClock;
  /** Fills and publishes segment `msn`: the clock moves through it, `during` runs `atMs` into it (and may move the clock on). */
  publish(msn: number, during?: { atMs: number; run: () => Promise<void> }): Promise<void>;
  /** Sets the now playing as the control API does. */
  setNowPlaying(update: Record<string, unknown>): Promise<void>;
  /** Another recorder over the same store, dir and clock: a restarted process. */
  restart(): Rig;
}

async function rig(t: Test, keys: Record<string, unknown> = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-chapters-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const clock = new ManualClock(Date.parse('2026-11-21T23:15:00.000Z'));
  const catalog = new RecordingCatalog({ store, files: new RecordingFiles(dir), now: () => clock.now() });
  const channel = channelConfig(keys);
  const build = (): Rig => {
    const recorder = new SessionRecorder({
      channel,
      catalog,
      store,
      nowPlaying: store,
      logger: pino({ level: 'silent' }),
      jobs: { enqueue: () => undefined, resume: () => undefined },
      now: () => clock.now(),
    });
    return {
      recorder,
      catalog,
      store,
      clock,
      async publish(msn, during) {
        const end = clock.now() + SEGMENT_MS;
        if (during) {
          await clock.advance(during.atMs);
          await during.run();
        }
        await clock.advance(Math.max(0, end - clock.now()));
        const entry: WindowSegment = { msn, run: 1, durationSeconds: SEGMENT, programDateTime: clock.now() - SEGMENT_MS, discontinuity: false, bytes: {} };
        await store.putSegment('fip', 'hifi', segmentName(msn, 1), Uint8Array.from([0x47, msn & 0xff]), 600);
        await recorder.segmentPublished(entry);
      },
      async setNowPlaying(update) {
        const nowPlaying = nowPlayingFrom(update, clock.now());
        if (isNowPlayingProblem(nowPlaying)) throw new Error(nowPlaying.message);
        await store.putNowPlaying('fip', serializeNowPlaying(nowPlaying));
        await settle();
      },
      restart: build,
    };
  };
  return build();
}

t.test('the title at the session start opens it, and a change lands on the frame where it aired, in audio seconds', async (t) => {
  const { recorder, catalog, publish, setNowPlaying } = await rig(t, { record: true });
  await setNowPlaying({ title: 'Le Café', artist: 'Oxmo Puccino' });
  await recorder.lead();
  recorder.sourceChanged('main');
  await publish(0);
  // A quarter into segment 1: frame 12 of its 47 (11.75 rounded).
  await publish(1, { atMs: SEGMENT_MS / 4, run: () => setNowPlaying({ title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue' }) });
  await publish(2, { atMs: 300, run: () => setNowPlaying({ title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue' }) }); // sent again: no chapter
  await publish(3, { atMs: SEGMENT_MS - 1, run: () => setNowPlaying({ title: 'Flash info' }) });
  await recorder.close();

  const [record] = await catalog.list('fip');
  const index = (await catalog.files.readIndex('fip', record!.session))!;
  t.same(index.chapters, [
    { type: 'chapter', offsetSeconds: 0, title: 'Le Café', artist: 'Oxmo Puccino' },
    { type: 'chapter', offsetSeconds: offset(SEGMENT_FRAMES + 12), title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue' },
    { type: 'chapter', offsetSeconds: offset(3 * SEGMENT_FRAMES + 46), title: 'Flash info' },
  ]);
  const total = sessionSegments(index).reduce((sum, segment) => sum + segment.durationSeconds, 0);
  t.same(
    sessionChapters(index.chapters, total).map((chapter) => [chapter.title, chapter.startSeconds, chapter.endSeconds]),
    [
      ['Le Café', 0, offset(SEGMENT_FRAMES + 12)],
      ['So What', offset(SEGMENT_FRAMES + 12), offset(3 * SEGMENT_FRAMES + 46)],
      ['Flash info', offset(3 * SEGMENT_FRAMES + 46), total],
    ],
    'as the stitch makes them the file\'s chapters',
  );
});

t.test('a change before a session starts is what opens it; one while nothing records is not lost', async (t) => {
  const { recorder, catalog, publish, setNowPlaying } = await rig(t, { record: true });
  await recorder.lead();
  await publish(0); // no input on air: not recorded
  await publish(1, { atMs: 500, run: () => setNowPlaying({ title: 'Before' }) });
  recorder.sourceChanged('main');
  await publish(2);
  await publish(3);
  const [record] = await catalog.list('fip');
  const index = (await catalog.files.readIndex('fip', record!.session))!;
  t.same(index.lines.map((line) => line.msn), [2, 3]);
  t.same(index.chapters, [{ type: 'chapter', offsetSeconds: 0, title: 'Before' }]);
});

t.test('the chapters survive a crash: the interrupted session keeps them, the one going on opens with the title then on air', async (t) => {
  const first = await rig(t);
  await first.setNowPlaying({ title: 'One', artist: 'A' });
  await first.recorder.lead();
  first.recorder.sourceChanged('main');
  const manual = await first.recorder.startManual();
  await first.publish(0);
  await first.publish(1, { atMs: 500, run: () => first.setNowPlaying({ title: 'Two', artist: 'B' }) });
  // The process dies here: nothing is closed. A change comes while no packager leads.
  await first.setNowPlaying({ title: 'Three', artist: 'C' });
  await first.recorder.standBy(); // (only to stop this instance reacting: a dead process would not)

  const second = first.restart();
  await second.recorder.lead();
  second.recorder.sourceChanged('main');
  await second.publish(2);
  await second.publish(3);
  const sessions = await second.catalog.list('fip');
  t.equal(sessions.length, 2);
  t.match(sessions[0], { session: manual.session, state: 'ended', endReason: 'interrupted' });
  t.match(sessions[1], { continues: manual.session, trigger: 'manual', state: 'recording' });
  const interrupted = (await second.catalog.files.readIndex('fip', manual.session))!;
  t.same(interrupted.chapters, [
    { type: 'chapter', offsetSeconds: 0, title: 'One', artist: 'A' },
    { type: 'chapter', offsetSeconds: offset(SEGMENT_FRAMES + Math.round(SEGMENT_FRAMES * (500 / SEGMENT_MS))), title: 'Two', artist: 'B' },
  ], 'on disk with their segments');
  const goingOn = (await second.catalog.files.readIndex('fip', sessions[1]!.session))!;
  t.same(goingOn.chapters, [{ type: 'chapter', offsetSeconds: 0, title: 'Three', artist: 'C' }]);
});

t.test('a flood of now-playing updates is bounded: a few marks per segment, at most MAX_CHAPTERS_PER_SESSION per session', async (t) => {
  const { recorder, catalog, clock, publish, setNowPlaying } = await rig(t, { record: true });
  await recorder.lead();
  recorder.sourceChanged('main');
  let sent = 0;
  const segments = Math.ceil(MAX_CHAPTERS_PER_SESSION / SEGMENT_FRAMES) + 3;
  for (let msn = 0; msn < segments; msn++) {
    // One update per frame, each a new title.
    await publish(msn, {
      atMs: 0,
      run: async () => {
        for (let frame = 0; frame < SEGMENT_FRAMES; frame++) {
          await setNowPlaying({ title: `Flood ${sent++}` });
          await clock.advance(FRAME * 1000);
        }
      },
    });
  }
  const [record] = await catalog.list('fip');
  const index = (await catalog.files.readIndex('fip', record!.session))!;
  t.equal(index.lines.length, segments, 'every segment recorded');
  t.equal(index.chapters.length, MAX_CHAPTERS_PER_SESSION, `${sent} updates, ${index.chapters.length} chapters`);
});
