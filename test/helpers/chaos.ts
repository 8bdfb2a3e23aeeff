/**
 * What the chaos tests share: a channel with a main and a backup SRT listener, each fed
 * by its own real FFmpeg sender playing its own tone; a watcher of the channel status the
 * leader keeps in the store; and the listener's view of what was aired: each segment's
 * decoded audio classified as one of the tones, silence, or unclear (a switch inside it).
 */
import type { Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { FALLBACK_SOURCE_ID } from '../../src/ingest/input-selector.js';
import { TestSignalSender } from '../../src/ffmpeg/test-signal-sender.js';
import { inputUrlWithOptions } from '../../src/ingest/input-worker.js';
import type { Store } from '../../src/store/store.js';
import type { VerifierReport } from './hls-verifier.js';
import { loopbackSettings, originUrl, startRole, waitFor, waitForThreeSegments } from './onair-harness.js';
import { startOnairProcess, type OnairProcess } from './onair-process.js';
import { freeUdpPort } from './ports.js';
import { startRedisServer } from './redis-server.js';
import { identifyTones, type ToneVerdict } from './tone.js';

export const MAIN_HZ = 500;
export const BACKUP_HZ = 800;
export const CHAOS_RENDITIONS = ['lofi', 'hifi'];

/** Two renditions (the machine has 2 cores), 1 s segments unless told, a 3 s recovery hold-off. */
export async function chaosConfig(options: { store: string; inputs?: number; recoverSeconds?: number; segmentSeconds?: number }): Promise<OnairConfig> {
  const names = ['main', 'backup'];
  const inputs = [];
  for (let index = 0; index < (options.inputs ?? 2); index++) {
    inputs.push({ id: names[index]!, url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { latency: 120, passphrase: 'onair-test-passphrase' } });
  }
  return resolveConfig({
    store: options.store,
    ...(await loopbackSettings(options.segmentSeconds ?? 1)),
    channels: [
      {
        id: 'fip',
        renditions: [
          { id: 'lofi', bitrate: '32k' },
          { id: 'hifi', bitrate: '128k' },
        ],
        inputs,
        recoverSeconds: options.recoverSeconds ?? 3,
      },
    ],
  });
}

/** A sender calling input `index` of the channel with a tone; killed (SIGKILL) in teardown. */
export function startToneSender(t: Test, config: OnairConfig, index: number, frequency: number): TestSignalSender {
  const sender = new TestSignalSender({
    outputUrl: inputUrlWithOptions(config.channels[0]!.inputs[index]!).replace('mode=listener', 'mode=caller'),
    frequency,
    initialDelayMs: 300,
  });
  sender.start();
  t.teardown(() => sender.close('SIGKILL'));
  return sender;
}

export interface StatusChange {
  /** When the poll saw it. */
  at: number;
  /**
   * When the audio changed: for a switch by the same leader, the switch time the status
   * itself carries (`since`), which neither the store write nor the poll delays (under load
   * they lag by more than the switch margin); for a takeover, `at`.
   */
  switchedAt: number;
  activeInput: string | undefined;
  leader: string | undefined;
  reason: string | undefined;
}

/** Polls the channel status in the store every 100 ms and records each change of active input or leader. */
export function watchStatus(t: Test, store: Store, channel = 'fip'): { changes: StatusChange[]; current: () => StatusChange | undefined } {
  const changes: StatusChange[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const text = await store.getStatus(channel).catch(() => null);
      if (text) {
        const status = JSON.parse(text) as { activeInput?: string; leader?: string; reason?: string; since?: number };
        const last = changes.at(-1);
        if (!last || last.activeInput !== status.activeInput || last.leader !== status.leader) {
          const at = Date.now();
          const sameLeader = last !== undefined && last.leader === status.leader;
          const switchedAt = sameLeader && typeof status.since === 'number' && status.since <= at ? Math.max(status.since, last.switchedAt) : at;
          changes.push({ at, switchedAt, activeInput: status.activeInput, leader: status.leader, reason: status.reason });
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  t.teardown(async () => {
    stopped = true;
    await loop;
  });
  return { changes, current: () => changes.at(-1) };
}

export interface AiredSegment {
  msn: number;
  tone: ToneVerdict;
  discontinuity: boolean;
  seenAt: number;
  /** EXT-X-PROGRAM-DATE-TIME (ms) and EXTINF (s): when the audio was on air. */
  programDateTime: number;
  duration: number;
}

/**
 * Every segment the listener fetched (one rendition) that went on air at or after `since`
 * (ms; the window listed at the first poll may hold older audio), with its decoded tone.
 */
export async function airedTones(report: VerifierReport, since = 0, rendition = 'hifi'): Promise<AiredSegment[]> {
  const segments = (report.segments[rendition] ?? []).filter((segment) => (segment.programDateTime ?? 0) >= since);
  const readings = await identifyTones(
    segments.map((segment) => segment.audio),
    [MAIN_HZ, BACKUP_HZ],
  );
  return segments.map((segment, index) => ({
    msn: segment.msn,
    tone: readings[index]!.tone,
    discontinuity: segment.discontinuity,
    seenAt: segment.seenAt,
    programDateTime: segment.programDateTime ?? 0,
    duration: segment.extinf,
  }));
}

/** Margin around a status change within which a segment may carry either source. */
const SWITCH_MARGIN_MS = 600;
/**
 * A feed that stops is covered by the next one at once, but declared dead (the status
 * change) only after inputTimeoutMs: the audio changes up to that long before the status.
 */
const INPUT_TIMEOUT_MS = 2000;

/**
 * The audio comes from the source the store said was on air: every segment that lies
 * wholly inside one status period (with a margin around the changes) decodes to the tone
 * `expected` gives for that period. Returns the mismatches, described.
 */
export function tonesAgainstStatus(
  aired: AiredSegment[],
  changes: StatusChange[],
  expected: (change: StatusChange) => ToneVerdict | undefined,
): { checked: number; mismatches: string[] } {
  let checked = 0;
  const mismatches: string[] = [];
  for (const segment of aired) {
    const start = segment.programDateTime;
    const end = start + segment.duration * 1000;
    let index = -1;
    while (index + 1 < changes.length && changes[index + 1]!.switchedAt <= start - SWITCH_MARGIN_MS) index += 1;
    if (index === -1) continue;
    const next = changes[index + 1];
    const early = next?.reason === 'no-audio' ? INPUT_TIMEOUT_MS : 0;
    if (next && next.switchedAt < end + SWITCH_MARGIN_MS + early) continue;
    const tone = expected(changes[index]!);
    if (tone === undefined) continue;
    checked += 1;
    if (segment.tone !== tone) mismatches.push(`MSN ${segment.msn}: ${segment.tone}, expected ${tone} (${changes[index]!.activeInput} on air)`);
  }
  return { checked, mismatches };
}

/** The tone each input plays in the input chaos tests. */
export function inputTone(change: StatusChange): ToneVerdict | undefined {
  if (change.activeInput === 'main') return MAIN_HZ;
  if (change.activeInput === 'backup') return BACKUP_HZ;
  if (change.activeInput === FALLBACK_SOURCE_ID) return 'silence';
  return undefined;
}

/** The run-length sequence of verdicts, e.g. `500×6 unclear×1 800×9`, for messages and order checks. */
export function toneRuns(aired: AiredSegment[]): { tone: ToneVerdict; count: number }[] {
  const runs: { tone: ToneVerdict; count: number }[] = [];
  for (const segment of aired) {
    const last = runs.at(-1);
    if (last && last.tone === segment.tone) last.count += 1;
    else runs.push({ tone: segment.tone, count: 1 });
  }
  return runs;
}

export function describeRuns(aired: AiredSegment[]): string {
  return toneRuns(aired)
    .map((run) => `${run.tone}×${run.count}`)
    .join(' ');
}

/** The tones heard in order, ignoring `unclear` segments (a switch inside a segment) and repeats. */
export function toneOrder(aired: AiredSegment[]): ToneVerdict[] {
  return toneRuns(aired.filter((segment) => segment.tone !== 'unclear')).map((run) => run.tone);
}

/** The rules every chaos run must keep, whatever the fault (docs/architecture.md, "Timeline" and "Sequence"). */
export function assertListenerRules(t: Test, report: VerifierReport, what: string): void {
  t.same(report.errors, [], `${what}: the verifying listener saw no broken rule (no MSN going back, no 404, PTS/CC continuous, renditions aligned)`);
  // RFC 8216 §6.2.1: a new playlist within 1.5 × TD of the previous one. The verifier sees each
  // new MSN up to one polling interval after it appeared, so a measured gap can exceed the real
  // one by that much: the bound allows the measurement's resolution, nothing more.
  const limit = 1.5 * (report.targetDuration ?? 1) * 1000;
  t.ok(
    report.maxNewSegmentGapMs <= limit + report.pollIntervalMs,
    `${what}: new segments at most ${report.maxNewSegmentGapMs} ms apart (≤ 1.5 × TD = ${limit} ms, measured every ${report.pollIntervalMs} ms)`,
  );
}

/** The same config for a packager on another host: its own copy of the feed on its own SRT port. */
export async function onAnotherHost(config: OnairConfig): Promise<OnairConfig> {
  const [channel] = config.channels;
  const port = await freeUdpPort();
  return resolveConfig({
    ...config,
    channels: [{ ...channel!, renditions: channel!.renditions.map((rendition) => ({ ...rendition })), inputs: [{ ...channel!.inputs[0]!, url: `srt://127.0.0.1:${port}?mode=listener` }] }],
  });
}

/** The PID in a leader's lease owner (`host:pid:random`). */
export function leaderPid(leader: string | undefined): number | undefined {
  const pid = leader?.split(':').at(-2);
  return pid === undefined ? undefined : Number(pid);
}

const INGEST_READY = /"msg":"ingest started"/;

/**
 * Redis, an origin, packager A leading and packager B standing by, each with its own copy of the
 * feed (A: MAIN_HZ, B: BACKUP_HZ), 2 s segments: the takeover bound (a TD) and the stall bound
 * (1.5 × TD) leave room for a verifier's polling on a busy 2-core machine.
 */
export async function startPackagerPair(t: Test): Promise<{
  configA: OnairConfig;
  status: ReturnType<typeof watchStatus>;
  first: OnairProcess;
  second: OnairProcess;
}> {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const configA = await chaosConfig({ store: redis.url, inputs: 1, segmentSeconds: 2 });
  const configB = await onAnotherHost(configA);
  startToneSender(t, configA, 0, MAIN_HZ);
  startToneSender(t, configB, 0, BACKUP_HZ);
  const origin = await startRole(t, configA, 'origin');
  const status = watchStatus(t, origin.store);
  const first = await startOnairProcess(t, { role: 'ingest', config: configA, readyPattern: INGEST_READY });
  await waitFor('packager A leading', async () => (leaderPid(status.current()?.leader) === first.pid ? true : undefined), 20_000);
  const second = await startOnairProcess(t, { role: 'ingest', config: configB, readyPattern: INGEST_READY });
  await waitForThreeSegments(originUrl(configA));
  return { configA, status, first, second };
}
