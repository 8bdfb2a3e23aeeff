/**
 * A progressive listener (FFmpeg decoding /fip-hifi.aac as it arrives) hears the channel run on
 * across the two faults that change where the audio comes from (docs/architecture.md, "Failure
 * model" and "Progressive mounts"):
 *
 * - an input switch: the main sender (500 Hz) is SIGKILLed and the backup (800 Hz) covers;
 * - a packager takeover: two `onair ingest` processes on one redis-server, each with its own
 *   copy of the feed (500 Hz for A, 800 Hz for B, as in test/e2e/chaos-packagers.test.ts); the
 *   leader is SIGKILLed and the standby takes over.
 *
 * The decoded tone is read by test/helpers/tone-continuity.ts: silent stretches, and the beep
 * every second of each sender's sample clock, whose interval changes by a frame when a frame is
 * lost or repeated. Rule: no break longer than one frame; at a takeover, at most one.
 */
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { BACKUP_HZ, chaosConfig, MAIN_HZ, startToneSender, watchStatus } from '../helpers/chaos.js';
import { originUrl, startRole, waitFor, waitForThreeSegments } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { freeUdpPort } from '../helpers/ports.js';
import { minimumBufferSeconds, startProgressiveListener, type Heard } from '../helpers/progressive-listener.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { analyseContinuity, describeToneRuns, type ContinuityReport } from '../helpers/tone-continuity.js';
import { sleep } from '../helpers/wait-until.js';

/** One AAC frame at 48 kHz is 21.3 ms; the analysis's 5 ms window makes a frame of silence read up to ~26 ms. */
const ONE_FRAME_MS = 26;
const READY = /"msg":"ingest started"/;

/** The tones heard in order, unclear blocks (a switch inside one) left out. */
function toneOrder(report: ContinuityReport): (number | string)[] {
  const order: (number | string)[] = [];
  for (const run of report.toneRuns) if (run.tone !== 'unclear' && order.at(-1) !== run.tone) order.push(run.tone);
  return order;
}

/** Where the stream stopped being one tone and became the other (seconds into the audio). */
function switchSeconds(report: ContinuityReport, to: number): number {
  return report.toneRuns.find((run) => run.tone === to)?.fromSeconds ?? Number.NaN;
}

/** Silences longer than a frame and splices (a sender's second not 1 s long): the breaks a listener hears. */
function breaks(report: ContinuityReport): string[] {
  return [
    ...report.silences.filter((silence) => silence.ms > ONE_FRAME_MS).map((silence) => `${silence.ms.toFixed(0)} ms of silence at ${silence.atSeconds.toFixed(2)} s`),
    ...report.splices.map((splice) => `${splice.offsetMs > 0 ? 'repeated' : 'lost'} ${Math.abs(splice.offsetMs).toFixed(1)} ms of the ${splice.carrierHz} Hz sender before ${splice.atSeconds.toFixed(2)} s`),
  ];
}

/** The audio without its last second (the decoder's flush when FFmpeg is stopped). */
function analyse(heard: Heard): ContinuityReport {
  return analyseContinuity(heard.pcm.subarray(0, Math.max(0, heard.pcm.length - heard.sampleRate)), heard.sampleRate, [MAIN_HZ, BACKUP_HZ]);
}

t.test('an input switch: the listener hears the main, then the backup, with no break longer than one frame', async (t) => {
  const config = await chaosConfig({ store: 'memory' });
  const [main] = [startToneSender(t, config, 0, MAIN_HZ), startToneSender(t, config, 1, BACKUP_HZ)];
  const onair = await startRole(t, config, 'start');
  const status = watchStatus(t, onair.store);
  await waitFor('the main input on air', async () => (status.current()?.activeInput === 'main' ? true : undefined), 30_000);
  await waitForThreeSegments(originUrl(config));

  const listener = startProgressiveListener(t, `${originUrl(config)}/fip-hifi.aac`);
  await listener.waitForSeconds(8, 15_000);
  await main!.close('SIGKILL');
  await waitFor('the backup on air', async () => (status.current()?.activeInput === 'backup' ? true : undefined), 10_000);
  await sleep(6000);
  const heard = await listener.stop();

  const report = analyse(heard);
  t.comment(`${report.seconds.toFixed(1)} s heard: ${describeToneRuns(report.toneRuns)}; ${report.beeps.length} beeps; longest silence ${report.longestSilenceMs.toFixed(0)} ms`);
  t.same(toneOrder(report), [MAIN_HZ, BACKUP_HZ], 'the main, then the backup');
  t.same(breaks(report), [], 'no silence longer than a frame and no frame lost or repeated, across segment boundaries and the switch');
  t.ok(report.beeps.filter((beep) => beep.carrierHz === BACKUP_HZ).length >= 4, 'the backup’s seconds were checked too');
  const buffered = minimumBufferSeconds(heard, 2000);
  t.ok(buffered > 0, `the listener never ran dry (at least ${buffered.toFixed(2)} s buffered after the start)`);
});

/** The same channel config with its main input on another SRT port: the second packager host. */
async function onAnotherHost(config: OnairConfig): Promise<OnairConfig> {
  const [channel] = config.channels;
  const port = await freeUdpPort();
  return resolveConfig({
    ...config,
    channels: [{ ...channel!, renditions: channel!.renditions.map((rendition) => ({ ...rendition })), inputs: [{ ...channel!.inputs[0]!, url: `srt://127.0.0.1:${port}?mode=listener` }] }],
  });
}

function leaderPid(leader: string | undefined): number | undefined {
  const pid = leader?.split(':').at(-2);
  return pid === undefined ? undefined : Number(pid);
}

async function startPair(t: Test) {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  // 2 s segments, as the packager chaos test: a takeover within one TD.
  const configA = await chaosConfig({ store: redis.url, inputs: 1, segmentSeconds: 2 });
  const configB = await onAnotherHost(configA);
  startToneSender(t, configA, 0, MAIN_HZ);
  startToneSender(t, configB, 0, BACKUP_HZ);
  const origin = await startRole(t, configA, 'origin');
  const status = watchStatus(t, origin.store);
  const first = await startOnairProcess(t, { role: 'ingest', config: configA, readyPattern: READY });
  await waitFor('packager A leading', async () => (leaderPid(status.current()?.leader) === first.pid ? true : undefined), 20_000);
  const second = await startOnairProcess(t, { role: 'ingest', config: configB, readyPattern: READY });
  await waitForThreeSegments(originUrl(configA));
  return { configA, status, first, second };
}

t.test('a packager takeover: the listener hears A’s feed, then B’s, with at most one break, at the takeover', async (t) => {
  const { configA, status, first, second } = await startPair(t);
  const listener = startProgressiveListener(t, `${originUrl(configA)}/fip-hifi.aac`);
  await listener.waitForSeconds(10, 20_000);
  t.equal(leaderPid(status.current()?.leader), first.pid, 'A still leads while the listener listens');
  first.kill('SIGKILL');
  await first.exited;
  await waitFor('packager B leading', async () => (leaderPid(status.current()?.leader) === second.pid ? true : undefined), 10_000);
  await sleep(8000);
  const heard = await listener.stop();

  const report = analyse(heard);
  const found = breaks(report);
  const takeoverAt = switchSeconds(report, BACKUP_HZ);
  t.comment(`${report.seconds.toFixed(1)} s heard: ${describeToneRuns(report.toneRuns)}; ${report.beeps.length} beeps; breaks: ${found.join('; ') || 'none'}`);
  t.same(toneOrder(report), [MAIN_HZ, BACKUP_HZ], 'A’s feed, then B’s');
  t.ok(found.length <= 1, `at most one break (${found.length})`);
  const breakTimes = [...report.silences.filter((silence) => silence.ms > ONE_FRAME_MS).map((silence) => silence.atSeconds), ...report.splices.map((splice) => splice.atSeconds)];
  // A splice is found at the beep after it, up to a second later; a silence where it starts.
  t.ok(breakTimes.every((at) => Math.abs(at - takeoverAt) <= 2.5), `any break lies at the takeover (${takeoverAt.toFixed(2)} s into the audio)`);
  t.ok(report.beeps.filter((beep) => beep.carrierHz === MAIN_HZ).length >= 8 && report.beeps.filter((beep) => beep.carrierHz === BACKUP_HZ).length >= 5, 'both packagers’ seconds were checked');
  t.comment(`least audio buffered after the start: ${minimumBufferSeconds(heard, 2000).toFixed(2)} s (a stall at the takeover is allowed)`);
});
