/**
 * Chaos on the packagers and on Redis, with the real system: `onair ingest` processes on
 * a real redis-server, real FFmpeg senders with distinct tones, an origin, and the
 * verifying listener (docs/architecture.md, "Failure model").
 *
 * Hot standby: two packagers share one config and one Redis. On one machine they cannot
 * bind the same SRT ports, so each gets its own copy of the feed on its own port (as two
 * packager hosts would) with its own tone: what the listener hears says who leads.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { airedTones, assertListenerRules, BACKUP_HZ, CHAOS_RENDITIONS, chaosConfig, describeRuns, leaderPid, MAIN_HZ, startPackagerPair, startToneSender, toneOrder } from '../helpers/chaos.js';
import { HlsVerifier } from '../helpers/hls-verifier.js';
import { originUrl, startRole, waitFor, waitForThreeSegments } from '../helpers/onair-harness.js';
import { isAlive, startOnairProcess, type OnairProcess } from '../helpers/onair-process.js';
import { startRedisServer } from '../helpers/redis-server.js';

/** The same channel config with its main input on another SRT port: the second packager host. */


/** The pair (startPackagerPair), once the standby is up for a while, and a verifying listener. */
async function startPair(t: Test) {
  const { configA, status, first, second } = await startPackagerPair(t);
  await sleep(3000);
  t.equal(leaderPid(status.current()?.leader), first.pid, 'the first packager still leads once the standby is up');
  const verifier = new HlsVerifier({ baseUrl: originUrl(configA), channel: 'fip', renditions: CHAOS_RENDITIONS, pollIntervalMs: 100 });
  verifier.start();
  return { configA, status, first, second, verifier, since: Date.now() };
}

const READY = /"msg":"ingest started"/;

/**
 * Once the store is back at `backAt`: waits (bounded) until the origin served a playlist again and
 * the listener checked audio that aired 2 s after that: whatever the packager buffered meanwhile
 * is published and checked before it, in order.
 */
async function caughtUp(verifier: HlsVerifier, backAt: number): Promise<void> {
  await waitFor('the listener served again and past the outage', async () => {
    const { latestProgramDateTime, unavailable } = verifier.progress();
    return unavailable.firstOkAfterAt !== undefined && (latestProgramDateTime ?? 0) >= backAt + 2000 ? true : undefined;
  }, 30_000).catch(() => undefined);
}

t.test('the leading packager is SIGKILLed: the standby takes over within a target duration; the old one comes back as standby', async (t) => {
  const { configA, status, first, second, verifier, since } = await startPair(t);
  await sleep(6000);
  const encoders = first.children();
  const killedAt = Date.now();
  first.kill('SIGKILL');
  await first.exited;
  await waitFor('packager B leading', async () => (leaderPid(status.current()?.leader) === second.pid ? true : undefined), 10_000);
  const takeoverMs = status.current()!.at - killedAt;
  await sleep(1500);
  t.same(encoders.filter(isAlive), [], 'the killed packager’s FFmpeg children died with it');

  // The old packager comes back (same config): it must stand by.
  const restarted = await startOnairProcess(t, { role: 'ingest', config: configA, readyPattern: READY });
  await sleep(8000);
  const report = await verifier.stop();

  assertListenerRules(t, report, 'leader killed');
  t.ok(takeoverMs <= 2000, `the standby led ${takeoverMs} ms after the leader died (TD 2 s; status polled every 100 ms)`);
  t.ok(report.discontinuities <= 1, `${report.discontinuities} EXT-X-DISCONTINUITY seen across the takeover`);
  const aired = await airedTones(report, since);
  t.same(toneOrder(aired), [MAIN_HZ, BACKUP_HZ], `A’s feed, then B’s, and no switch back when A returned (${describeRuns(aired)})`);
  t.equal(leaderPid(status.current()?.leader), second.pid, 'the restarted packager stands by');
  t.ok(isAlive(restarted.pid), 'the restarted packager runs');
});

t.test('a frozen leader that wakes up is fenced: its late writes change nothing, and it stands by', async (t) => {
  const { status, first, second, verifier, since } = await startPair(t);
  await sleep(4000);
  first.kill('SIGSTOP');
  await waitFor('packager B leading', async () => (leaderPid(status.current()?.leader) === second.pid ? true : undefined), 10_000);
  await sleep(3000);
  // Thawed, A still believes it leads until its next renewal or write tells it otherwise.
  first.kill('SIGCONT');
  await sleep(6000);
  const report = await verifier.stop();

  assertListenerRules(t, report, 'leader frozen and thawed');
  t.ok(report.discontinuities <= 1, `${report.discontinuities} EXT-X-DISCONTINUITY seen`);
  const aired = await airedTones(report, since);
  t.same(toneOrder(aired), [MAIN_HZ, BACKUP_HZ], `A’s feed, then B’s only: A’s late writes never reached a playlist (${describeRuns(aired)})`);
  t.equal(leaderPid(status.current()?.leader), second.pid, 'B still leads');
  t.match(first.output(), /no longer leading the channel; standing by/, 'A noticed and stood by');
});

// The two store outages under one packager share nothing (each its own Redis, channel, ports and
// sender) and their bounds are the origin's recovery: they run at once. The takeover runs above
// stay alone: their new-segment gap includes the takeover, which a second run on the machine
// stretched from 2.1 s to 3.0 s (the bound is 3.1 s).
t.test('the store goes away under a single packager', async (group) => {
  group.jobs = 2;

  group.test('Redis is restarted mid-stream: the packager buffers and catches up, the origin answers 503 meanwhile and recovers by itself', async (t) => {
    const redis = await startRedisServer({ persist: true });
    t.teardown(() => redis.stop());
    const config = await chaosConfig({ store: redis.url, inputs: 1 });
    startToneSender(t, config, 0, MAIN_HZ);
    const onair = await startRole(t, config, 'start');
    await waitForThreeSegments(originUrl(config));
    const verifier = new HlsVerifier({ baseUrl: originUrl(config), channel: 'fip', renditions: CHAOS_RENDITIONS, pollIntervalMs: 100, allowUnavailable: true });
    verifier.start();
    await sleep(4000);

    await redis.stop({ signal: 'SIGKILL' });
    await sleep(4000);
    await redis.start();
    const backAt = Date.now();
    const packager = onair.ingest!.channels.get('fip')!.packager;
    await caughtUp(verifier, backAt);
    const report = await verifier.stop();

    t.same(report.errors, [], 'no broken rule: no MSN going back, no listed segment missing, PTS continuous');
    t.ok(report.unavailable.count > 0, `the origin answered 503 with Retry-After ${report.unavailable.count} times while Redis was down`);
    const recoveredMs = (report.unavailable.firstOkAfterAt ?? Infinity) - backAt;
    t.ok(recoveredMs <= 2000, `the origin served playlists again ${recoveredMs} ms after Redis came back`);
    t.ok(packager.stats.promotions >= 2, `the packager stood by while its lease could not be renewed and led again (${packager.stats.promotions} promotions)`);
    t.equal(packager.stats.segmentsDropped, 0, 'a 4 s outage is shorter than the window: nothing was dropped');
    const aired = await airedTones(report);
    const msns = aired.map((segment) => segment.msn);
    t.same(msns, msns.map((_, index) => msns[0]! + index), 'every MSN was published, none skipped');
    t.equal(report.discontinuities, 0, 'the packager kept the lead: no discontinuity');
    t.same(toneOrder(aired), [MAIN_HZ], `the buffered audio is the feed, not silence (${describeRuns(aired)})`);
  });

  group.test('Redis unreachable for longer than the window: the oldest queued segments are dropped with a discontinuity, never an MSN gap', async (t) => {
    const redis = await startRedisServer();
    t.teardown(() => redis.stop());
    const config = await chaosConfig({ store: redis.url, inputs: 1 });
    startToneSender(t, config, 0, MAIN_HZ);
    const onair = await startRole(t, config, 'start');
    await waitForThreeSegments(originUrl(config));
    const verifier = new HlsVerifier({ baseUrl: originUrl(config), channel: 'fip', renditions: CHAOS_RENDITIONS, pollIntervalMs: 200, allowUnavailable: true });
    verifier.start();
    await sleep(3000);

    // Frozen, Redis accepts connections and answers nothing: the worst kind of outage.
    redis.freeze(true);
    await sleep(12_000);
    redis.freeze(false);
    const backAt = Date.now();
    await caughtUp(verifier, backAt);
    const report = await verifier.stop();
    const packager = onair.ingest!.channels.get('fip')!.packager;

    t.same(report.errors, [], 'no broken rule: no MSN going back, no listed segment missing, PTS continuous except at the signalled discontinuity');
    t.ok(report.unavailable.count > 0, `the origin answered 503 with Retry-After ${report.unavailable.count} times while Redis was frozen`);
    const recoveredMs = (report.unavailable.firstOkAfterAt ?? Infinity) - backAt;
    t.ok(recoveredMs <= 2000, `the origin served playlists again ${recoveredMs} ms after Redis thawed`);
    t.ok(packager.stats.segmentsDropped > 0, `${packager.stats.segmentsDropped} segments that could never be listed were dropped`);
    const msns = (report.segments.hifi ?? []).map((segment) => segment.msn);
    t.same(msns, msns.map((_, index) => msns[0]! + index), 'no MSN gap');
    t.equal(report.discontinuities, 1, 'one discontinuity where the dropped audio was');
    const aired = await airedTones(report);
    t.same(toneOrder(aired), [MAIN_HZ], `the audio is the feed throughout (${describeRuns(aired)})`);
  });
});
