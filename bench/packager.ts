/**
 * `npm run bench:packager`: onair's packager against FFmpeg's HLS muxer (`-c copy -f hls`)
 * on the same hour of pre-encoded AAC, one process per run, alternating, in the same run
 * of this script. Prints CPU seconds per hour of audio for both, their ratio, and the
 * segment bytes per second against the ADTS AAC bit rate for both. Targets (docs/architecture.md, "Scale"):
 * ratio ≤ 1.0 and container overhead within 1 point of the MPEG-TS floor. Timings are reported as
 * medians, never asserted.
 *
 * The fMP4 rows (bench/packager-fmp4.ts) run in the same alternation: onair's CMAF packaging
 * against FFmpeg's `-hls_segment_type fmp4` and `-f dash`, and Low-Latency channels (0.5 s parts)
 * on both containers, with overhead against the raw AAC payload. `--ts-only` leaves them out.
 *
 * With `--against <git ref>` it also runs the packager as it was at that commit (built beside
 * this checkout), in the same alternation, and prints this build's CPU over that one's.
 *
 *   node dist/bench/packager.js [--quick] [--bitrate 128k[,96k…]] [--runs N] [--against <git ref>] [--ts-only]
 */
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureFixtures, FIXTURE_SAMPLE_RATE, type AacFixture } from './aac-fixture.js';
import { prepareBaseline, type Baseline } from './packager-baseline.js';
import { emptyFmp4Runs, FMP4_SIDES, fmp4ReportLines, runFmp4Side, type Fmp4Runs, type Fmp4Side } from './packager-fmp4.js';
import { ffmpegVersion, runFfmpegHls, runOnairWorker, scratchRoot, type SideRun } from './packager-runs.js';
import { formatTable, median } from './report.js';

const DEFAULT_BITRATES = ['32k', '96k', '128k', '192k'];
const HOUR_SECONDS = 3600;
const QUICK_SECONDS = 600;
const SPEED_TARGET_RATIO = 1.0;
/** The overhead may exceed the MPEG-TS floor (see floorPercent) by at most this many points. */
const FLOOR_MARGIN_POINTS = 1;
const TS_PACKET_BYTES = 188;
const TS_PAYLOAD_BYTES = 184;
/** PAT and PMT, one packet each, at the start of every segment. */
const PSI_BYTES_PER_SEGMENT = 2 * TS_PACKET_BYTES;
/** One PCR adaptation field (length, flags, 6-byte PCR) every 100 ms (ISO/IEC 13818-1 §2.7.2). */
const PCR_BYTES_PER_SECOND = 8 * 10;
/** bench/.cache in the source tree, also when running from dist/bench. */
const CACHE_DIRECTORY = fileURLToPath(new URL('../../bench/.cache/', import.meta.url));
const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface BenchOptions {
  bitrates: string[];
  runs: number;
  seconds: number;
  /** A git ref whose packager runs beside this one. */
  against: string | undefined;
  /** Leave out the fMP4 and Low-Latency rows. */
  tsOnly: boolean;
}

interface BitrateResult {
  fixture: AacFixture;
  onair: SideRun[];
  ffmpeg: SideRun[];
  /** The `--against` build's runs (empty without it). */
  baseline: SideRun[];
  /** The fMP4 and Low-Latency rows' runs (empty with --ts-only). */
  fmp4: Fmp4Runs;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      bitrate: { type: 'string', multiple: true },
      runs: { type: 'string' },
      against: { type: 'string' },
      'ts-only': { type: 'boolean', default: false },
    },
  });
  const bitrates = (values.bitrate ?? DEFAULT_BITRATES).flatMap((value) => value.split(',')).map((value) => value.trim().toLowerCase());
  for (const bitrate of bitrates) {
    if (!/^\d+k$/.test(bitrate)) throw new Error(`--bitrate: expected a bitrate like 128k, got "${bitrate}"`);
  }
  const runs = values.runs === undefined ? (values.quick ? 1 : 3) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got "${values.runs}"`);
  return { bitrates, runs, seconds: values.quick ? QUICK_SECONDS : HOUR_SECONDS, against: values.against, tsOnly: values['ts-only'] };
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = performance.now();
  const fixtures = await ensureFixtures({
    cacheDirectory: CACHE_DIRECTORY,
    seconds: options.seconds,
    bitrates: options.bitrates,
    parallel: availableParallelism(),
    progress,
  });

  const baseline = options.against === undefined ? undefined : await prepareBaseline(REPOSITORY_ROOT, CACHE_DIRECTORY, options.against, progress);

  const results: BitrateResult[] = [];
  for (const bitrate of options.bitrates) {
    const fixture = fixtures.get(bitrate)!;
    const result: BitrateResult = { fixture, onair: [], ffmpeg: [], baseline: [], fmp4: emptyFmp4Runs() };
    const sides: ('ffmpeg' | 'onair' | 'baseline' | Fmp4Side)[] = ['ffmpeg', 'onair', ...(baseline ? (['baseline'] as const) : []), ...(options.tsOnly ? [] : FMP4_SIDES)];
    for (let run = 0; run < options.runs; run++) {
      // Rotate which side goes first, so none always runs on a warmer machine.
      const order = sides.map((_, index) => sides[(index + run) % sides.length]!);
      for (const side of order) {
        if (side === 'ffmpeg') result.ffmpeg.push(await runFfmpegHls(fixture));
        else if (side === 'onair') result.onair.push(await runOnairWorker({ path: fixture.path, bitrate, sampleRate: FIXTURE_SAMPLE_RATE }));
        else if (side === 'baseline') result.baseline.push(await runOnairWorker({ path: fixture.path, bitrate, sampleRate: FIXTURE_SAMPLE_RATE, workerPath: baseline!.workerPath }));
        else result.fmp4[side].push(await runFmp4Side(side, fixture));
      }
      progress(
        `${bitrate} run ${run + 1}/${options.runs}: onair ${result.onair[run]!.cpuSeconds.toFixed(3)} s CPU, `
          + `ffmpeg ${result.ffmpeg[run]!.cpuSeconds.toFixed(3)} s CPU`
          + (baseline ? `, ${baseline.commit} ${result.baseline[run]!.cpuSeconds.toFixed(3)} s CPU` : '')
          + (options.tsOnly ? '' : `, fmp4: onair ${result.fmp4['onair-fmp4'][run]!.cpuSeconds.toFixed(3)} s, ffmpeg hls ${result.fmp4['ffmpeg-hls-fmp4'][run]!.cpuSeconds.toFixed(3)} s, dash ${result.fmp4['ffmpeg-dash'][run]!.cpuSeconds.toFixed(3)} s`),
      );
    }
    results.push(result);
  }

  printReport(options, results, baseline, {
    versions: `node ${process.version}; ${await ffmpegVersion()}; ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
    elapsedSeconds: (performance.now() - started) / 1000,
  });
}

function printReport(options: BenchOptions, results: BitrateResult[], baseline: Baseline | undefined, context: { versions: string; elapsedSeconds: number }): void {
  const audio = options.seconds === HOUR_SECONDS ? '1 h' : `${options.seconds / 60} min`;
  const header = [
    'bitrate',
    'ADTS AAC kb/s',
    'onair CPU s/h audio',
    'ffmpeg CPU s/h audio',
    'ratio onair/ffmpeg',
    'ratio w/o Node start-up',
    'onair wire kb/s',
    'onair overhead %',
    'MPEG-TS floor %',
    'ffmpeg wire kb/s',
    'ffmpeg overhead %',
    ...(baseline ? [`onair/${baseline.commit} CPU`, `onair/${baseline.commit} w/o start-up`, `${baseline.commit} overhead %`] : []),
  ];
  const rows: string[][] = [];
  const speed: Verdict[] = [];
  const steadySpeed: Verdict[] = [];
  const nearFloor: Verdict[] = [];
  const startupSeconds = median(results.flatMap((result) => result.onair.map((run) => run.startupCpuSeconds ?? 0)));
  for (const { fixture, onair, ffmpeg, baseline: earlier } of results) {
    const perHour = (runs: SideRun[]): number => (median(runs.map((run) => run.cpuSeconds)) * HOUR_SECONDS) / fixture.audioSeconds;
    const onairPerHour = perHour(onair);
    const ffmpegPerHour = perHour(ffmpeg);
    const ratio = onairPerHour / ffmpegPerHour;
    const steadyRatio = perHour(withoutStartup(onair)) / ffmpegPerHour;
    // Byte counts do not vary between runs; the first run stands for all.
    const onairOverhead = overheadPercent(onair[0]!);
    const floor = floorPercent(onair[0]!);
    speed.push({ bitrate: fixture.bitrate, met: ratio <= SPEED_TARGET_RATIO, value: ratio.toFixed(2) });
    steadySpeed.push({ bitrate: fixture.bitrate, met: steadyRatio <= SPEED_TARGET_RATIO, value: steadyRatio.toFixed(2) });
    nearFloor.push({ bitrate: fixture.bitrate, met: onairOverhead - floor <= FLOOR_MARGIN_POINTS, value: `+${(onairOverhead - floor).toFixed(2)} points` });
    rows.push([
      fixture.bitrate,
      ((fixture.bytes * 8) / fixture.audioSeconds / 1000).toFixed(1),
      onairPerHour.toFixed(2),
      ffmpegPerHour.toFixed(2),
      ratio.toFixed(2),
      steadyRatio.toFixed(2),
      wireKilobits(onair[0]!).toFixed(1),
      onairOverhead.toFixed(2),
      floor.toFixed(2),
      wireKilobits(ffmpeg[0]!).toFixed(1),
      overheadPercent(ffmpeg[0]!).toFixed(2),
      ...(baseline
        ? [(onairPerHour / perHour(earlier)).toFixed(2), (perHour(withoutStartup(onair)) / perHour(withoutStartup(earlier))).toFixed(2), overheadPercent(earlier[0]!).toFixed(2)]
        : []),
    ]);
  }

  const lines = [
    `onair packager vs FFmpeg HLS muxer (-c copy -f hls -hls_time 4): ${audio} of AAC-LC 48 kHz stereo per bit rate`,
    `median of ${options.runs} run(s) per side, alternating, one process per run; CPU = user + system of the whole process, start-up included`,
    context.versions,
    '',
    ...formatTable(header, rows),
    '',
    'wire = sum of .ts segment bytes per second of audio they carry; overhead % = wire bytes / ADTS bytes of the same frames − 1',
    '  (ADTS headers count as payload: with stream type 0x0F they travel inside the PES).',
    'MPEG-TS floor = what any conformant muxer of these segments pays: a 4-byte header per 184 payload bytes, PAT + PMT',
    '  (2 packets) per segment, and an 8-byte PCR adaptation field every 100 ms (ISO/IEC 13818-1 §2.7.2); not counted:',
    '  the PES headers and the stuffing that ends each PES in a whole packet.',
    `onair keeps segments in its in-memory store (as \`onair start\` does); FFmpeg writes files to ${scratchRoot()}.`,
    'onair: AdtsReader → ChannelPackager (4 s segments, window 6) → MemoryStore, fed 64 KiB read(2) chunks; not measured here:',
    '  the TS demuxer and rendition aligner in front of it in a live ingest.',
    `onair start-up (Node, imports, config) is included in its CPU: median ${startupSeconds.toFixed(2)} s per process, paid once per process`,
    '  (FFmpeg\'s is about 1 ms); "ratio w/o Node start-up" subtracts it, as an hours-long live process would see it.',
    `verdict, speed (ratio ≤ ${SPEED_TARGET_RATIO.toFixed(1)}): ${describeVerdicts(speed)}; without Node start-up: ${describeVerdicts(steadySpeed)}.`,
    `verdict, overhead over the MPEG-TS floor (≤ ${FLOOR_MARGIN_POINTS} point): ${describeVerdicts(nearFloor)}.`,
    ...(baseline ? [`against ${options.against} (${baseline.commit}), built beside this checkout and run in the same alternation: "onair/${baseline.commit} CPU" > 1 is a slowdown.`] : []),
    ...(options.tsOnly ? [] : fmp4ReportLines(results.map(({ fixture, onair, fmp4 }) => ({ fixture, onairTs: onair, fmp4 })), options.runs)),
    `(${context.elapsedSeconds.toFixed(0)} s in total)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The runs with each process's own start-up CPU (Node, imports, config) taken out. */
function withoutStartup(runs: SideRun[]): SideRun[] {
  return runs.map((run) => ({ ...run, cpuSeconds: run.cpuSeconds - (run.startupCpuSeconds ?? 0) }));
}

interface Verdict {
  bitrate: string;
  met: boolean;
  value: string;
}

/** `met at 192k; missed at 32k (4.86 %), 96k (3.13 %)`. */
function describeVerdicts(verdicts: Verdict[]): string {
  const met = verdicts.filter((verdict) => verdict.met);
  const missed = verdicts.filter((verdict) => !verdict.met);
  if (missed.length === 0) return `met at every bit rate (${verdicts.map((verdict) => `${verdict.bitrate} ${verdict.value}`).join(', ')})`;
  const missedText = `missed at ${missed.map((verdict) => `${verdict.bitrate} (${verdict.value})`).join(', ')}`;
  return met.length === 0 ? missedText : `met at ${met.map((verdict) => `${verdict.bitrate} (${verdict.value})`).join(', ')}; ${missedText}`;
}

function overheadPercent(run: SideRun): number {
  return (run.wireBytes / run.adtsBytes - 1) * 100;
}

/**
 * The least overhead MPEG-TS allows for these segments, in % of the ADTS bytes: every byte of
 * payload and of PCR adaptation field (8 bytes per 100 ms of audio) travels in packets of 184
 * payload bytes behind a 4-byte header, and each segment opens with a PAT and a PMT packet.
 */
function floorPercent(run: SideRun): number {
  const carried = run.adtsBytes + Math.ceil(run.audioSeconds * 10) * (PCR_BYTES_PER_SECOND / 10);
  const floorBytes = (carried * TS_PACKET_BYTES) / TS_PAYLOAD_BYTES + run.segments * PSI_BYTES_PER_SEGMENT;
  return (floorBytes / run.adtsBytes - 1) * 100;
}

function wireKilobits(run: SideRun): number {
  return (run.wireBytes * 8) / run.audioSeconds / 1000;
}



main().catch((error: unknown) => {
  process.stderr.write(`bench:packager: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
