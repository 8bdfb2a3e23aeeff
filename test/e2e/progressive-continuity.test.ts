/**
 * A progressive listener (FFmpeg decoding /fip-hifi.aac as it arrives) hears the channel run on
 * across the two faults that change where the audio comes from
 * (docs/architecture.md, "Failure model"; and its "Icecast relay tests and benchmark"):
 *
 * - an input switch: the main sender (500 Hz) is SIGKILLed and the backup (800 Hz) covers;
 * - a packager takeover: two `onair ingest` processes on one redis-server, each with its own
 *   copy of the feed (500 Hz for A, 800 Hz for B, as in test/e2e/chaos-packagers.test.ts); the
 *   leader is SIGKILLed and the standby takes over.
 *
 * The decoded tone is read by test/helpers/tone-continuity.ts: silent stretches, and the beep
 * every second of each sender's sample clock, whose interval changes by a frame when a frame is
 * lost or repeated. Rule: no break longer than one frame; at a takeover, at most one.
 *
 * A verifying HLS listener fetches the same rendition's segments meanwhile, and their audio is
 * read the same way: every break the mount's listener hears must be in the published segments
 * too (the mount adds none of its own). A break that is in the segments comes from the ingest:
 * the end-to-end rule is then reported as a TODO naming it, so the mount is still tested strictly.
 */
import { spawnSync } from 'node:child_process';
import t, { type Test } from 'tap';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { BACKUP_HZ, chaosConfig, leaderPid, MAIN_HZ, startPackagerPair, startToneSender, watchStatus } from '../helpers/chaos.js';
import { HlsVerifier, type VerifierReport } from '../helpers/hls-verifier.js';
import { originUrl, startRole, waitFor, waitForThreeSegments } from '../helpers/onair-harness.js';
import { minimumBufferSeconds, startProgressiveListener, type Heard } from '../helpers/ffmpeg-listener.js';
import { analyseContinuity, describeToneRuns, type ContinuityReport } from '../helpers/tone-continuity.js';
import { sleep } from '../helpers/wait-until.js';

/** One AAC frame at 48 kHz is 21.3 ms; the analysis's 5 ms window makes a frame of silence read up to ~26 ms. */
const ONE_FRAME_MS = 26;

/** The tones heard in order; unclear blocks (a switch inside one) and silence (checked as breaks) left out. */
function toneOrder(report: ContinuityReport): (number | string)[] {
  const order: (number | string)[] = [];
  for (const run of report.toneRuns) if (typeof run.tone === 'number' && order.at(-1) !== run.tone) order.push(run.tone);
  return order;
}

/** Where the stream last became the tone `to` (seconds into the audio): the switch the test made. */
function switchSeconds(report: ContinuityReport, to: number): number {
  const runs = report.toneRuns.filter((run) => typeof run.tone === 'number');
  for (let index = runs.length - 1; index > 0; index--) {
    if (runs[index]!.tone === to && runs[index - 1]!.tone !== to) return runs[index]!.fromSeconds;
  }
  return runs.find((run) => run.tone === to)?.fromSeconds ?? Number.NaN;
}

/**
 * The listener heard the sources in the order the published segments carry them (the mount
 * follows the timeline), and that order is `expected`: a TODO naming the ingest when the
 * segments themselves differ (a loaded machine can make the selector fill a late main from the
 * backup for a moment).
 */
function assertOrder(t: Test, heard: ContinuityReport, published: ContinuityReport, expected: number[], what: string, strict = false): void {
  let order = toneOrder(heard);
  if (strict && order[0] !== expected[0] && order.includes(expected[0]!)) {
    // The connect burst reached back to the channel's start, when the other input happened to
    // be steady first and aired until the first one had recovered (recoverSeconds): not the switch tested.
    t.comment(`the connect burst began before ${expected[0]} was on air: ${order.join(' → ')}`);
    order = order.slice(order.indexOf(expected[0]!));
  }
  const publishedOrder = toneOrder(published);
  const tail = publishedOrder.slice(Math.max(0, publishedOrder.length - order.length));
  t.same(order, tail, `the listener heard the sources in the order the published segments carry them (${order.join(' → ')})`);
  t.same(order, expected, what, {
    todo: strict || JSON.stringify(tail) === JSON.stringify(expected) ? false : `the published segments carry ${tail.join(' → ')} themselves: the ingest's input selector, not the mount`,
  });
}

interface Break {
  kind: 'silence' | 'lost' | 'repeated';
  /** Where it is, in seconds of audio after the switch from one tone to the other. */
  afterSwitchSeconds: number;
  ms: number;
}

/** Silences longer than a frame and splices (a sender's second not 1 s long): the breaks a listener hears. */
function breaks(report: ContinuityReport, to: number): Break[] {
  const switchedAt = switchSeconds(report, to);
  return [
    ...report.silences.filter((silence) => silence.ms > ONE_FRAME_MS).map((silence) => ({ kind: 'silence' as const, afterSwitchSeconds: silence.atSeconds - switchedAt, ms: silence.ms })),
    ...report.splices.map((splice) => ({ kind: splice.offsetMs > 0 ? ('repeated' as const) : ('lost' as const), afterSwitchSeconds: splice.atSeconds - switchedAt, ms: Math.abs(splice.offsetMs) })),
  ].sort((a, b) => a.afterSwitchSeconds - b.afterSwitchSeconds);
}

function describeBreaks(found: Break[]): string {
  return found.map((each) => `${each.ms.toFixed(0)} ms ${each.kind} at ${each.afterSwitchSeconds >= 0 ? '+' : ''}${each.afterSwitchSeconds.toFixed(2)} s`).join('; ') || 'none';
}

/** The breaks of `heard` that the published segments do not have (same kind, ±5 ms, ±0.1 s from the switch). */
function notPublished(heard: Break[], published: ContinuityReport, to: number): Break[] {
  const first = published.toneRuns[0]?.fromSeconds ?? 0;
  const last = published.toneRuns.at(-1)?.toSeconds ?? 0;
  const switchedAt = switchSeconds(published, to);
  const inSegments = breaks(published, to);
  return heard.filter((each) => {
    const at = switchedAt + each.afterSwitchSeconds;
    if (at < first + 1.5 || at > last - 0.5) return false; // outside what the segments cover: nothing to compare
    return !inSegments.some((other) => other.kind === each.kind && Math.abs(other.ms - each.ms) <= 5 && Math.abs(other.afterSwitchSeconds - each.afterSwitchSeconds) <= 0.1);
  });
}

/** The published segments of `hifi` the verifier fetched, decoded by FFmpeg and read like the listener's audio. */
function publishedAudio(report: VerifierReport): ContinuityReport {
  const adts = Buffer.concat((report.segments.hifi ?? []).map((segment) => Buffer.from(segment.audio)));
  const decoded = spawnSync('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'aac', '-i', 'pipe:0', '-f', 's16le', '-ac', '1', '-ar', '16000', 'pipe:1'], {
    input: adts,
    maxBuffer: 64 * 1024 * 1024,
    timeout: 30_000,
  });
  const bytes = decoded.stdout;
  const pcm = new Float32Array(bytes.length >> 1);
  for (let index = 0; index < pcm.length; index++) pcm[index] = bytes.readInt16LE(index * 2) / 32768;
  return analyseContinuity(pcm, 16000, [MAIN_HZ, BACKUP_HZ]);
}

/**
 * The mount adds no break of its own; and the end-to-end rule (`allowed` breaks at most). Unless
 * `strict`, a TODO naming the ingest when the published segments carry breaks themselves.
 */
function assertContinuity(t: Test, heard: ContinuityReport, published: ContinuityReport, to: number, allowed: number, strict = false): void {
  const found = breaks(heard, to);
  const inSegments = breaks(published, to);
  t.comment(`mount listener: ${heard.seconds.toFixed(1)} s, ${describeToneRuns(heard.toneRuns)}; ${heard.beeps.length} beeps; breaks: ${describeBreaks(found)}`);
  t.comment(`published segments: ${published.seconds.toFixed(1)} s, ${describeToneRuns(published.toneRuns)}; breaks: ${describeBreaks(inSegments)}`);
  t.same(describeBreaks(notPublished(found, published, to)), 'none', 'the mount adds no break of its own: every break heard is in the published segments');
  const ingestBreaks = !strict && inSegments.length > allowed;
  t.ok(found.length <= allowed, `the listener heard at most ${allowed} break(s) longer than a frame: ${describeBreaks(found)}`, {
    todo: ingestBreaks ? `the published HLS segments carry these breaks themselves (${describeBreaks(inSegments)}): the ingest's input selector, not the mount` : false,
  });
}

/** The audio without its last second (the decoder's flush when FFmpeg is stopped). */
function analyse(heard: Heard): ContinuityReport {
  return analyseContinuity(heard.pcm.subarray(0, Math.max(0, heard.pcm.length - heard.sampleRate)), heard.sampleRate, [MAIN_HZ, BACKUP_HZ]);
}

// The two runs share nothing (each its own store, channel, ports, senders and listener): they run at once.
t.jobs = 2;

t.test('an input switch: the listener hears the main, then the backup, with no break longer than one frame', async (t) => {
  const config = await chaosConfig({ store: 'memory' });
  const [main] = [startToneSender(t, config, 0, MAIN_HZ), startToneSender(t, config, 1, BACKUP_HZ)];
  const onair = await startRole(t, config, 'start');
  const status = watchStatus(t, onair.store);
  await waitFor('the main input on air', async () => (status.current()?.activeInput === 'main' ? true : undefined), 30_000);
  await waitForThreeSegments(originUrl(config));

  const verifier = startVerifier(config);
  const listener = startProgressiveListener(t, `${originUrl(config)}/fip-hifi.aac`);
  await listener.waitForSeconds(8, 15_000);
  await main!.close('SIGKILL');
  await waitFor('the backup on air', async () => (status.current()?.activeInput === 'backup' ? true : undefined), 10_000);
  await sleep(6000);
  const heard = await listener.stop();
  const published = publishedAudio(await verifier.stop());

  const report = analyse(heard);
  // Strict: the input selector commits to the backup for the gap (docs/architecture.md, "Gaps and switches without a break").
  assertOrder(t, report, published, [MAIN_HZ, BACKUP_HZ], 'the main, then the backup', true);
  assertContinuity(t, report, published, BACKUP_HZ, 0, true);
  t.ok(report.beeps.filter((beep) => beep.carrierHz === BACKUP_HZ).length >= 4, 'the backup’s seconds were checked too');
  const buffered = minimumBufferSeconds(heard, 2000);
  t.ok(buffered > 0, `the listener never ran dry (at least ${buffered.toFixed(2)} s buffered after the start)`);
});

/** The same channel config with its main input on another SRT port: the second packager host. */


function startVerifier(config: OnairConfig): HlsVerifier {
  const verifier = new HlsVerifier({ baseUrl: originUrl(config), channel: 'fip', renditions: ['hifi'], pollIntervalMs: 150 });
  verifier.start();
  return verifier;
}


t.test('a packager takeover: the listener hears the leader’s feed, then the standby’s, with at most one break, at the takeover', async (t) => {
  const { configA, status, first, second } = await startPackagerPair(t);
  const verifier = startVerifier(configA);
  const listener = startProgressiveListener(t, `${originUrl(configA)}/fip-hifi.aac`);
  await listener.waitForSeconds(10, 20_000);
  // A leads unless a loaded machine already made it miss a renewal: kill whichever leads.
  const [leader, standby] = leaderPid(status.current()?.leader) === second.pid ? [second, first] : [first, second];
  const [from, to] = leader === first ? [MAIN_HZ, BACKUP_HZ] : [BACKUP_HZ, MAIN_HZ];
  t.comment(`killing packager ${leader === first ? 'A' : 'B'} (the leader), ${from} Hz`);
  leader.kill('SIGKILL');
  await leader.exited;
  await waitFor('the standby leading', async () => (leaderPid(status.current()?.leader) === standby.pid ? true : undefined), 10_000);
  await sleep(8000);
  const heard = await listener.stop();
  const published = publishedAudio(await verifier.stop());

  const report = analyse(heard);
  assertOrder(t, report, published, [from, to], 'the leader’s feed, then the standby’s');
  assertContinuity(t, report, published, to, 1);
  // A splice is found at the beep after it, up to a second later; a silence where it starts.
  const found = breaks(report, to);
  t.ok(found.every((each) => Math.abs(each.afterSwitchSeconds) <= 2.5), `any break lies at the takeover (${describeBreaks(found)})`, {
    todo: breaks(published, to).length > 1 ? 'the published segments carry breaks away from the takeover themselves (the ingest)' : false,
  });
  t.ok(report.beeps.filter((beep) => beep.carrierHz === from).length >= 8 && report.beeps.filter((beep) => beep.carrierHz === to).length >= 5, 'both packagers’ seconds were checked');
  t.comment(`least audio buffered after the start: ${minimumBufferSeconds(heard, 2000).toFixed(2)} s (a stall at the takeover is allowed)`);
});
