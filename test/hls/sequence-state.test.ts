/**
 * What keeps a URI from ever being reused without the store's help (src/hls/sequence-state.ts):
 * run ids made of the run's start time and random digits, and the wall-clock MSN a channel
 * without stored state starts from, which no channel can have reached.
 */
import t from 'tap';
import { SegmentSchedule } from '../../src/hls/segment-schedule.js';
import { emptyChannelState, knowsNoSegment, newRunId, SEQUENCE_EPOCH_MS, wallClockMsn } from '../../src/hls/sequence-state.js';
import { parseSegmentName, segmentName } from '../../src/hls/published-names.js';
import { SeededRandom } from '../helpers/seeded-random.js';

t.test('a run id is the run start in milliseconds followed by three random digits', async (t) => {
  const startedAt = Date.UTC(2026, 0, 1, 12, 30, 15, 250);
  t.equal(newRunId(startedAt, 0), startedAt * 1000);
  t.equal(newRunId(startedAt, 417), startedAt * 1000 + 417);
  t.not(newRunId(startedAt, 1), newRunId(startedAt, 2), 'two runs started in the same millisecond differ by their random digits');
  t.ok(newRunId(startedAt + 1, 0) > newRunId(startedAt, 999), 'a later run has a larger id, whatever the digits');
  t.ok(Number.isSafeInteger(newRunId(Date.UTC(2255, 0, 1), 999)), 'ids stay exact integers until 2255');
  const name = segmentName(wallClockMsn(startedAt), newRunId(startedAt, 999));
  t.strictSame(parseSegmentName(name), { msn: wallClockMsn(startedAt), run: startedAt * 1000 + 999 }, `${name} reads back`);
  for (const digits of [-1, 1000, 0.5, Number.NaN]) t.throws(() => newRunId(startedAt, digits), RangeError, `random digits ${digits} refused`);
});

t.test('the wall-clock MSN counts tenths of a second since 2025-01-01', async (t) => {
  t.equal(SEQUENCE_EPOCH_MS, Date.UTC(2025, 0, 1));
  const rows: [when: number, expected: number][] = [
    [SEQUENCE_EPOCH_MS, 0],
    [SEQUENCE_EPOCH_MS + 99, 0],
    [SEQUENCE_EPOCH_MS + 100, 1],
    [Date.UTC(2026, 0, 1), 315_360_000],
    [Date.UTC(2024, 5, 1), 0], // a clock before the epoch
  ];
  for (const [when, expected] of rows) t.equal(wallClockMsn(when), expected, `${new Date(when).toISOString()}: ${expected}`);
  t.ok(wallClockMsn(Date.UTC(2031, 0, 1)) < 2 ** 31, 'below 2^31 until 2031');
});

t.test('a new state starts at the MSN given and knows no segment', async (t) => {
  const state = emptyChannelState(4, 900_000, 1234);
  t.equal(state.nextMsn, 1234);
  t.ok(knowsNoSegment(state));
  t.notOk(knowsNoSegment({ ...state, bandwidth: { hifi: { peak: 1, bits: 1, seconds: 1 } } }), 'a state that measured a segment knows one');
  t.notOk(knowsNoSegment({ ...state, open: { msn: 1234, run: 1, discontinuity: false, programDateTime: 0, parts: [1] } }), 'so does one with published parts');
});

/**
 * A channel that starts at the wall-clock MSN publishes segments as fast as any channel can
 * (0.5-s segments, real time), sometimes restarts with its state (completing the open
 * Low-Latency segment: one more MSN) and sometimes loses the store entirely (then starts at
 * the wall-clock MSN again). Every MSN it ever used, the open one included, stays below every
 * later wall-clock start: no MSN, hence no URI, is given twice.
 */
t.test('no channel reaches the wall-clock MSN, however often it restarts or loses its store', async (t) => {
  const seed = Number(process.env.ONAIR_FUZZ_SEED ?? Date.now() % 2 ** 31);
  t.comment(`seed ${seed} (ONAIR_FUZZ_SEED=${seed} replays it)`);
  const random = new SeededRandom(seed);
  const schedule = new SegmentSchedule(0.5, 48_000);
  const problems: string[] = [];
  let now = Date.UTC(2026, 0, 1) + random.int(0, 86_400_000);
  let nextMsn = wallClockMsn(now);
  let highestUsed = -1;
  let losses = 0;
  for (let run = 0; run < 20_000; run++) {
    // A run lives between 0.2 s and a minute; the last segment it was making is open (its parts published).
    const lifeMs = random.chance(0.5) ? random.int(200, 2000) : random.int(2000, 60_000);
    let audioMs = 0;
    let segment = 0;
    while (audioMs + schedule.frameSeconds(schedule.frameCount(segment)) * 1000 <= lifeMs) audioMs += schedule.frameSeconds(schedule.frameCount(segment++)) * 1000;
    const openMsn = nextMsn + segment;
    highestUsed = Math.max(highestUsed, openMsn);
    now += lifeMs + random.int(100, 3000); // a restart takes at least a tenth of a second
    if (random.chance(0.3)) {
      losses += 1;
      nextMsn = wallClockMsn(now);
      if (nextMsn <= highestUsed) problems.push(`run ${run}: started at ${nextMsn} after a loss, MSN ${highestUsed} was used`);
    } else {
      nextMsn = openMsn + 1; // the open segment completed from its parts, then this run's own
    }
  }
  t.ok(losses > 1000, `${losses} total losses`);
  t.strictSame(problems, []);
});
