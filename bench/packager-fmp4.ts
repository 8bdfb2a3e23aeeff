/**
 * The fMP4 rows of `npm run bench:packager` (issue 14; docs/architecture.md, "CMAF container"):
 * on the same ADTS file and in the same alternation as the MPEG-TS rows, onair's CMAF packaging
 * (`container: fmp4`) against FFmpeg's `-f hls -hls_segment_type fmp4` and `-f dash`, all
 * copying the same AAC; and Low-Latency HLS channels (0.5 s parts) on both containers, with
 * FFmpeg's DASH muxer cutting a CMAF chunk every 0.5 s as the reference for the fMP4 one.
 *
 * Overhead here is against the raw payload: the AAC access units without their ADTS headers,
 * which is what an fMP4 sample is. MPEG-TS figures are given on the same basis (so the 7-byte
 * ADTS header counts as container for TS too) beside the ADTS-based ones of the main table.
 * Init segments are not in the wire bytes (a player fetches one per session); their size is printed.
 */
import { FIXTURE_SAMPLE_RATE, type AacFixture } from './aac-fixture.js';
import { runFfmpeg, runOnairWorker, type SideRun } from './packager-runs.js';
import { formatTable, median } from './report.js';

/** LL-HLS part duration of the Low-Latency rows (the issue's measurement used 0.5 s parts). */
export const PART_SECONDS = 0.5;
const HOUR_SECONDS = 3600;
const TARGET_RATIO = 1.0;

export const FMP4_SIDES = ['onair-fmp4', 'ffmpeg-hls-fmp4', 'ffmpeg-dash', 'onair-ts-ll', 'onair-fmp4-ll', 'ffmpeg-dash-chunks'] as const;
export type Fmp4Side = (typeof FMP4_SIDES)[number];
export type Fmp4Runs = Record<Fmp4Side, SideRun[]>;

export function emptyFmp4Runs(): Fmp4Runs {
  return Object.fromEntries(FMP4_SIDES.map((side) => [side, []])) as unknown as Fmp4Runs;
}

/** One run of one fMP4-row side, in its own process. */
export function runFmp4Side(side: Fmp4Side, fixture: AacFixture): Promise<SideRun> {
  const onair = { path: fixture.path, bitrate: fixture.bitrate, sampleRate: FIXTURE_SAMPLE_RATE };
  switch (side) {
    case 'onair-fmp4':
      return runOnairWorker({ ...onair, container: 'fmp4' });
    case 'onair-ts-ll':
      return runOnairWorker({ ...onair, container: 'ts', partSeconds: PART_SECONDS });
    case 'onair-fmp4-ll':
      return runOnairWorker({ ...onair, container: 'fmp4', partSeconds: PART_SECONDS });
    case 'ffmpeg-hls-fmp4':
      return runFfmpeg(fixture, 'hls-fmp4');
    case 'ffmpeg-dash':
      return runFfmpeg(fixture, 'dash');
    case 'ffmpeg-dash-chunks':
      return runFfmpeg(fixture, 'dash-chunks', PART_SECONDS);
  }
}

export interface Fmp4BitrateResult {
  fixture: AacFixture;
  /** The main rows' onair MPEG-TS runs (4 s segments, no parts). */
  onairTs: SideRun[];
  fmp4: Fmp4Runs;
}

interface Verdict {
  bitrate: string;
  met: boolean;
  value: string;
}

/** The two tables, their notes and the verdicts against the issue's targets. */
export function fmp4ReportLines(results: Fmp4BitrateResult[], runs: number): string[] {
  const cpuHeader = [
    'bitrate',
    'raw AAC kb/s',
    'onair fMP4 CPU s/h',
    'ffmpeg hls-fmp4 CPU s/h',
    'ffmpeg dash CPU s/h',
    'onair/hls-fmp4',
    'onair/dash',
    'onair/hls-fmp4 w/o start-up',
    'onair/dash w/o start-up',
    'onair fMP4 overhead %',
    'ffmpeg hls-fmp4 overhead %',
    'ffmpeg dash overhead %',
    'onair TS overhead % (raw)',
    'init bytes onair/hls/dash',
  ];
  const llHeader = [
    'bitrate',
    'onair TS-LL CPU s/h',
    'onair fMP4-LL CPU s/h',
    'ffmpeg dash 0.5 s chunks CPU s/h',
    'onair fMP4-LL/ffmpeg',
    'onair TS-LL overhead % (ADTS)',
    'onair TS-LL overhead % (raw)',
    'onair fMP4-LL overhead % (raw)',
    'ffmpeg dash chunks overhead %',
    'TS-LL/fMP4-LL overhead',
  ];
  const cpuRows: string[][] = [];
  const llRows: string[][] = [];
  const overheadVerdicts: Verdict[] = [];
  const llOverheadVerdicts: Verdict[] = [];
  const speedVerdicts: Verdict[] = [];
  const steadySpeedVerdicts: Verdict[] = [];
  for (const { fixture, onairTs, fmp4 } of results) {
    const perHour = (sideRuns: SideRun[]): number => (median(sideRuns.map((run) => run.cpuSeconds)) * HOUR_SECONDS) / fixture.audioSeconds;
    const onairFmp4 = perHour(fmp4['onair-fmp4']);
    const onairFmp4Steady = perHour(withoutStartup(fmp4['onair-fmp4']));
    const hlsFmp4 = perHour(fmp4['ffmpeg-hls-fmp4']);
    const dash = perHour(fmp4['ffmpeg-dash']);
    // Byte counts do not vary between runs; the first run stands for all.
    const fmp4Overhead = rawOverhead(fmp4['onair-fmp4'][0]!);
    const tsOverhead = rawOverhead(onairTs[0]!);
    const worstRatio = Math.max(onairFmp4 / hlsFmp4, onairFmp4 / dash);
    const worstSteadyRatio = Math.max(onairFmp4Steady / hlsFmp4, onairFmp4Steady / dash);
    overheadVerdicts.push({ bitrate: fixture.bitrate, met: fmp4Overhead <= tsOverhead, value: `${fmp4Overhead.toFixed(2)} % vs ${tsOverhead.toFixed(2)} %` });
    speedVerdicts.push({ bitrate: fixture.bitrate, met: worstRatio <= TARGET_RATIO, value: worstRatio.toFixed(2) });
    steadySpeedVerdicts.push({ bitrate: fixture.bitrate, met: worstSteadyRatio <= TARGET_RATIO, value: worstSteadyRatio.toFixed(2) });
    cpuRows.push([
      fixture.bitrate,
      ((fixture.rawBytes * 8) / fixture.audioSeconds / 1000).toFixed(1),
      onairFmp4.toFixed(2),
      hlsFmp4.toFixed(2),
      dash.toFixed(2),
      (onairFmp4 / hlsFmp4).toFixed(2),
      (onairFmp4 / dash).toFixed(2),
      (onairFmp4Steady / hlsFmp4).toFixed(2),
      (onairFmp4Steady / dash).toFixed(2),
      fmp4Overhead.toFixed(2),
      rawOverhead(fmp4['ffmpeg-hls-fmp4'][0]!).toFixed(2),
      rawOverhead(fmp4['ffmpeg-dash'][0]!).toFixed(2),
      tsOverhead.toFixed(2),
      [fmp4['onair-fmp4'][0]!, fmp4['ffmpeg-hls-fmp4'][0]!, fmp4['ffmpeg-dash'][0]!].map((run) => run.initBytes).join('/'),
    ]);

    const tsLl = fmp4['onair-ts-ll'][0]!;
    const fmp4Ll = fmp4['onair-fmp4-ll'][0]!;
    const onairFmp4LlPerHour = perHour(fmp4['onair-fmp4-ll']);
    const chunksPerHour = perHour(fmp4['ffmpeg-dash-chunks']);
    llOverheadVerdicts.push({
      bitrate: fixture.bitrate,
      met: rawOverhead(fmp4Ll) <= rawOverhead(tsLl),
      value: `${rawOverhead(fmp4Ll).toFixed(2)} % vs ${rawOverhead(tsLl).toFixed(2)} %`,
    });
    llRows.push([
      fixture.bitrate,
      perHour(fmp4['onair-ts-ll']).toFixed(2),
      onairFmp4LlPerHour.toFixed(2),
      chunksPerHour.toFixed(2),
      (onairFmp4LlPerHour / chunksPerHour).toFixed(2),
      ((tsLl.wireBytes / tsLl.adtsBytes - 1) * 100).toFixed(2),
      rawOverhead(tsLl).toFixed(2),
      rawOverhead(fmp4Ll).toFixed(2),
      rawOverhead(fmp4['ffmpeg-dash-chunks'][0]!).toFixed(2),
      `${(rawOverhead(tsLl) / rawOverhead(fmp4Ll)).toFixed(1)} ×`,
    ]);
  }
  return [
    '',
    `fMP4 (CMAF), 4 s segments: onair (container: fmp4) vs FFmpeg -c copy -f hls -hls_segment_type fmp4 and -f dash -seg_duration 4, same audio, same alternation, median of ${runs} run(s)`,
    '',
    ...formatTable(cpuHeader, cpuRows),
    '',
    `Low-Latency, ${PART_SECONDS} s parts (lowLatency: true, partSeconds: ${PART_SECONDS}) on both containers; FFmpeg 5.1 has no LL-HLS, so its reference is`,
    `-f dash -frag_type duration -frag_duration ${PART_SECONDS} (a CMAF chunk every ${PART_SECONDS} s inside 4 s segments)`,
    '',
    ...formatTable(llHeader, llRows),
    '',
    'overhead % (raw) = segment bytes / raw AAC access-unit bytes (ADTS headers stripped) of the same frames − 1; for MPEG-TS the',
    '  7-byte ADTS headers then count as container. (ADTS) = the main table\'s basis. An LL segment is its parts end to end, so',
    '  the figure is the same for a player that loads parts or segments. Init segments are not in the wire bytes (one per session).',
    `verdict, fMP4 overhead ≤ onair's MPEG-TS overhead, same raw basis: 4 s segments ${describeVerdicts(overheadVerdicts)}; ${PART_SECONDS} s parts ${describeVerdicts(llOverheadVerdicts)}.`,
    `verdict, fMP4 CPU (worse of onair/hls-fmp4 and onair/dash ≤ ${TARGET_RATIO.toFixed(1)}): ${describeVerdicts(speedVerdicts)}; without Node start-up: ${describeVerdicts(steadySpeedVerdicts)}.`,
  ];
}

function rawOverhead(run: SideRun): number {
  return (run.wireBytes / run.rawBytes - 1) * 100;
}

function withoutStartup(runs: SideRun[]): SideRun[] {
  return runs.map((run) => ({ ...run, cpuSeconds: run.cpuSeconds - (run.startupCpuSeconds ?? 0) }));
}

function describeVerdicts(verdicts: Verdict[]): string {
  const missed = verdicts.filter((verdict) => !verdict.met);
  if (missed.length === 0) return `met at every bit rate (${verdicts.map((verdict) => `${verdict.bitrate} ${verdict.value}`).join(', ')})`;
  const met = verdicts.filter((verdict) => verdict.met);
  const missedText = `missed at ${missed.map((verdict) => `${verdict.bitrate} (${verdict.value})`).join(', ')}`;
  return met.length === 0 ? missedText : `met at ${met.map((verdict) => `${verdict.bitrate} (${verdict.value})`).join(', ')}; ${missedText}`;
}
