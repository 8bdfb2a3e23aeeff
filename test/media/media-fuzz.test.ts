/**
 * Fuzzing the byte parsers of src/media: random, truncated, bit-flipped, spliced and
 * field-mangled bytes, derived from valid MPEG-TS segments and ADTS streams (our muxer's and
 * FFmpeg's, made at test time), go into the TS demuxer and the ADTS reader the way the ingest
 * chains them (demuxer → one AdtsReader per PID of the PMT). Parsers must count bad bytes and
 * resynchronise, never throw (STYLE.md, Errors are values), so:
 * - no exception escapes, and every case returns within CASE_BUDGET_MS;
 * - what comes out is still well-formed: PIDs in range, 33-bit PTS, whole ADTS frames whose
 *   header matches their length;
 * - every byte is accounted for: the demuxer's packets × 188 + skipped bytes equal the bytes
 *   pushed, and the ADTS reader never holds back more than one maximal frame (8191 + 7 bytes),
 *   so garbage cannot pile up in a long-running ingest.
 *
 * The cases run in a worker thread (this same file, see `runFuzzWorker`) under a watchdog: a
 * parser stuck in a loop fails the test within STALL_MS, naming the case, instead of hanging
 * the run. The seed is printed; `ONAIR_FUZZ_SEED=<seed> npx tap test/media/media-fuzz.test.ts`
 * replays a run.
 */
import { execFileSync } from 'node:child_process';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { AdtsReader, buildAdtsHeader, parseAdtsHeader, type AacFrame } from '../../src/media/adts.js';
import { PTS_WRAP, ptsAdd, samplesToTicks } from '../../src/media/pts.js';
import { TsDemuxer, readPacketInfo, scanTsPackets, type DemuxEvent } from '../../src/media/ts-demuxer.js';
import { TsSegmentMuxer, type TimedAacFrame } from '../../src/media/ts-muxer.js';
import { SeededRandom, fuzzSeed } from '../helpers/seeded-random.js';

const DEFAULT_SEED = 0x0a1d_5eed;
const TS_CASES = 5000;
const ADTS_CASES = 3000;
/** A case is at most ~100 KB of input: linear parsing takes about a millisecond. */
const CASE_BUDGET_MS = 1000;
/** The watchdog's patience when no case completes at all. */
const STALL_MS = 5000;
/** A new worker loads and compiles this file first: on a loaded machine that alone took over 5 s. */
const WORKER_START_MS = 60_000;
const TS_PACKET_SIZE = 188;
/** The most an ADTS reader may hold back: one frame of the largest frame_length plus a header. */
const MAX_ADTS_CARRY = 0x1fff + 7;
const MAX_UNBOUNDED_PES_BYTES = 4 * 1024 * 1024;
const PMT_PID = 0x1000;
const AUDIO_PID = 0x100;

interface Fixture {
  name: string;
  kind: 'ts' | 'adts';
  bytes: Uint8Array;
}

interface FuzzWorkerInput {
  mediaFuzz: true;
  seed: number;
  fixtures: Fixture[];
  /** [0]: index + 1 of the case running, [1]: cases finished. */
  progress: SharedArrayBuffer;
}

interface FuzzReport {
  cases: number;
  tsCases: number;
  adtsCases: number;
  bytesPushed: number;
  pushCalls: number;
  maxCaseMs: number;
  slowestCase: string;
  failures: string[];
  /** What the fuzz reached, summed over cases: a run that reaches nothing proves nothing. */
  reached: {
    pmts: number;
    pes: number;
    frames: number;
    framesWithPts: number;
    resyncs: number;
    continuityErrors: number;
    droppedPes: number;
    badPackets: number;
    psiErrors: number;
    adtsResyncs: number;
  };
  mutations: Record<string, number>;
}

// ---------------------------------------------------------------------------------------
// Valid inputs: synthetic ADTS, our muxer's segments, FFmpeg's ADTS and MPEG-TS.
// ---------------------------------------------------------------------------------------

/** AAC-LC frames with random payloads (0xFF included: real AAC has false syncwords too). */
function syntheticFrames(random: SeededRandom, count: number, sampleRate: number, firstPts: number): TimedAacFrame[] {
  return Array.from({ length: count }, (_, index) => {
    const payload = random.bytes(random.int(0, 700));
    const header = buildAdtsHeader({ sampleRate, channelCount: random.pick([1, 2]), objectType: 2, payloadLength: payload.length });
    const data = new Uint8Array(header.length + payload.length);
    data.set(header);
    data.set(payload, header.length);
    return { data, pts: ptsAdd(firstPts, samplesToTicks(index * 1024, sampleRate)) };
  });
}

/** An ADTS frame with a CRC (9-byte header) and `blocks` raw data blocks, the rarer layout. */
function crcFrame(random: SeededRandom, blocks: number): Uint8Array {
  const headerLength = 7 + 2 * blocks;
  const frame = new Uint8Array(headerLength + random.int(10, 300));
  const view = new DataView(frame.buffer);
  view.setUint16(0, 0xfff0); // syncword, MPEG-4, layer 0, protection_absent 0
  view.setUint8(2, (1 << 6) | (4 << 2)); // AAC-LC, 44.1 kHz, channel_configuration bit 2 = 0
  view.setUint32(3, ((2 << 30) | (frame.length << 13) | (0x7ff << 2) | (blocks - 1)) >>> 0);
  frame.set(random.bytes(frame.length - 7), 7);
  return frame;
}

function joined(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function syntheticFixtures(random: SeededRandom): Fixture[] {
  const muxer = new TsSegmentMuxer();
  const nearWrap = PTS_WRAP - 20 * 1920;
  const segments = [0, 1, 2].map((index) => muxer.muxSegment(syntheticFrames(random, 40, 48000, ptsAdd(nearWrap, index * 40 * 1920))));
  const small = new TsSegmentMuxer({ audioPid: 0x1ffe, pmtPid: 0x20, maxPesPayloadBytes: 300 });
  return [
    { name: 'muxer segments across the PTS wrap', kind: 'ts', bytes: joined(segments) },
    { name: 'muxer segment with small PES', kind: 'ts', bytes: small.muxSegment(syntheticFrames(random, 30, 44100, 12345)) },
    { name: 'synthetic ADTS 48 kHz', kind: 'adts', bytes: joined(syntheticFrames(random, 60, 48000, 0).map((frame) => frame.data)) },
    { name: 'ADTS with CRC and raw data blocks', kind: 'adts', bytes: joined(Array.from({ length: 40 }, (_, index) => crcFrame(random, 1 + (index % 4)))) },
  ];
}

/** FFmpeg-encoded fixtures: an ADTS stream, and an MPEG-TS with two renditions as the ingest asks for. */
function ffmpegFixtures(): Fixture[] {
  const source = ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1.5'];
  const adts = execFileSync('ffmpeg', [...source, '-ac', '2', '-ar', '48000', '-c:a', 'aac', '-b:a', '96k', '-f', 'adts', '-']);
  const ts = execFileSync('ffmpeg', [
    ...source, '-map', '0:a:0', '-map', '0:a:0', '-c:a', 'aac', '-profile:a', 'aac_low', '-ar', '48000',
    '-b:a:0', '32k', '-ac:a:0', '1', '-b:a:1', '128k', '-ac:a:1', '2', '-muxdelay', '0', '-muxpreload', '0', '-f', 'mpegts', '-',
  ]);
  const frames = new AdtsReader().push(new Uint8Array(adts), 0).map((frame) => ({ data: frame.data, pts: frame.pts ?? 0 }));
  return [
    { name: 'FFmpeg ADTS', kind: 'adts', bytes: new Uint8Array(adts) },
    { name: 'FFmpeg MPEG-TS, two renditions', kind: 'ts', bytes: new Uint8Array(ts) },
    { name: 'muxer segment of FFmpeg AAC', kind: 'ts', bytes: new TsSegmentMuxer().muxSegment(frames) },
  ];
}

// ---------------------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------------------

type Mutation = (bytes: Uint8Array, random: SeededRandom, fixtures: Fixture[]) => Uint8Array;

function flipBits(bytes: Uint8Array, random: SeededRandom, count: number): Uint8Array {
  const copy = bytes.slice();
  if (copy.length === 0) return copy;
  for (let index = 0; index < count; index++) copy[random.int(0, copy.length - 1)] ^= 1 << random.int(0, 7);
  return copy;
}

function splice(bytes: Uint8Array, at: number, removed: number, inserted: Uint8Array): Uint8Array {
  return joined([bytes.subarray(0, at), inserted, bytes.subarray(Math.min(bytes.length, at + removed))]);
}

/** Offsets of the whole packets of an aligned TS buffer. */
function packetOffsets(bytes: Uint8Array): number[] {
  return scanTsPackets(bytes).map((_, index) => index * TS_PACKET_SIZE);
}

/** Offset of the payload of the packet at `offset` (after any adaptation field). */
function payloadOffset(bytes: Uint8Array, offset: number): number {
  const adaptation = (bytes[offset + 3] >> 4) & 0x2 ? 1 + bytes[offset + 4] : 0;
  return offset + 4 + adaptation;
}

/** Offsets of the frames of a clean ADTS stream, following frame_length. */
function frameOffsets(bytes: Uint8Array): number[] {
  const offsets: number[] = [];
  for (let offset = 0; ; ) {
    const header = parseAdtsHeader(bytes, offset);
    if (!header || offset + header.frameLength > bytes.length) return offsets;
    offsets.push(offset);
    offset += header.frameLength;
  }
}

const EXTREME_LENGTHS = [0, 1, 2, 5, 6, 7, 8, 9, 0xff, 0x100, 0xfff, 0x1000, 0x1fff, 0xffff];

const commonMutations: Record<string, Mutation> = {
  'a few bit flips': (bytes, random) => flipBits(bytes, random, random.int(1, 4)),
  'many bit flips': (bytes, random) => flipBits(bytes, random, random.int(5, 200)),
  truncated: (bytes, random) => bytes.slice(0, random.int(0, bytes.length)),
  'head cut off': (bytes, random) => bytes.slice(random.int(1, Math.max(1, bytes.length))),
  'middle cut out': (bytes, random) => {
    const at = random.int(0, bytes.length);
    return splice(bytes, at, random.int(1, 2000), new Uint8Array(0));
  },
  'garbage inserted': (bytes, random) => splice(bytes, random.int(0, bytes.length), 0, random.bytes(random.int(1, 600))),
  'random bytes overwritten': (bytes, random) => {
    const copy = bytes.slice();
    for (let count = random.int(1, 40); count > 0 && copy.length > 0; count--) copy[random.int(0, copy.length - 1)] = random.int(0, 255);
    return copy;
  },
  'range repeated': (bytes, random) => {
    const start = random.int(0, bytes.length);
    const range = bytes.slice(start, start + random.int(1, 3000));
    return splice(bytes, random.int(0, bytes.length), 0, range);
  },
  'spliced with another input': (bytes, random, fixtures) => {
    const other = random.pick(fixtures).bytes;
    return joined([bytes.subarray(0, random.int(0, bytes.length)), other.subarray(random.int(0, other.length))]);
  },
  'random bytes': (_bytes, random) => random.bytes(random.int(0, 20000)),
  'zeros and ones': (_bytes, random) => new Uint8Array(random.int(0, 20000)).fill(random.pick([0x00, 0xff, 0x47])),
};

const tsMutations: Record<string, Mutation> = {
  ...commonMutations,
  'packet header bits flipped': (bytes, random) => {
    const copy = bytes.slice();
    const offsets = packetOffsets(bytes);
    for (let count = random.int(1, 8); count > 0 && offsets.length > 0; count--) {
      copy[random.pick(offsets) + random.int(0, 5)] ^= 1 << random.int(0, 7);
    }
    return copy;
  },
  'packets dropped, repeated and reordered': (bytes, random) => {
    const packets = packetOffsets(bytes).map((offset) => bytes.subarray(offset, offset + TS_PACKET_SIZE));
    const out: Uint8Array[] = [];
    for (const packet of packets) {
      const roll = random.next();
      if (roll < 0.1) continue;
      if (roll < 0.2) out.push(packet, packet);
      else if (roll < 0.3 && out.length > 0) out.splice(random.int(0, out.length - 1), 0, packet);
      else out.push(packet);
    }
    return joined(out);
  },
  'length fields set to extremes': (bytes, random) => {
    const copy = bytes.slice();
    const view = new DataView(copy.buffer);
    const starts = packetOffsets(bytes).filter((offset) => readPacketInfo(bytes, offset)?.pusi);
    for (let count = random.int(1, 3); count > 0 && starts.length > 0; count--) {
      const offset = random.pick(starts);
      const payload = payloadOffset(copy, offset);
      if (payload + 10 > offset + TS_PACKET_SIZE) continue;
      const extreme = random.pick(EXTREME_LENGTHS);
      const field = random.int(0, 3);
      if (field === 0 && (copy[offset + 3] >> 4) & 0x2) copy[offset + 4] = extreme & 0xff; // adaptation_field_length
      else if (copy[payload] === 0 && copy[payload + 1] === 0 && copy[payload + 2] === 1) {
        if (field === 1) view.setUint16(payload + 4, extreme); // PES_packet_length
        else if (field === 2) copy[payload + 8] = extreme & 0xff; // PES_header_data_length
        else copy[payload + 7] = random.int(0, 255); // PTS_DTS_flags and friends
      } else {
        const section = payload + 1 + copy[payload]; // after pointer_field
        if (section + 3 > copy.length) continue;
        if (field === 1) view.setUint16(section + 1, (view.getUint16(section + 1) & 0xf000) | (extreme & 0xfff)); // section_length
        else if (field === 2) copy[payload] = extreme & 0xff; // pointer_field
        else if (section + 12 <= copy.length) view.setUint16(section + 10, 0xf000 | (extreme & 0xfff)); // program_info_length
      }
    }
    return copy;
  },
  'synced garbage packets': (_bytes, random) => {
    const packets: Uint8Array[] = [];
    for (let count = random.int(1, 150); count > 0; count--) {
      const packet = random.bytes(TS_PACKET_SIZE);
      packet[0] = 0x47;
      const pid = random.pick([0, PMT_PID, AUDIO_PID, 0x1fff, random.int(0, 0x1fff)]);
      packet[1] = (packet[1] & 0xe0) | (pid >> 8);
      packet[2] = pid & 0xff;
      if (random.chance(0.5)) packet[1] &= 0x7f; // mostly no transport_error_indicator
      packets.push(packet);
    }
    return joined(packets);
  },
};

const adtsMutations: Record<string, Mutation> = {
  ...commonMutations,
  'frame header bits flipped': (bytes, random) => {
    const copy = bytes.slice();
    const offsets = frameOffsets(bytes);
    for (let count = random.int(1, 8); count > 0 && offsets.length > 0; count--) {
      copy[random.pick(offsets) + random.int(0, 6)] ^= 1 << random.int(0, 7);
    }
    return copy;
  },
  'header fields set to extremes': (bytes, random) => {
    const copy = bytes.slice();
    const offsets = frameOffsets(bytes);
    for (let count = random.int(1, 4); count > 0 && offsets.length > 0; count--) {
      const offset = random.pick(offsets);
      const field = random.int(0, 4);
      const word = new DataView(copy.buffer).getUint32(offset + 3);
      if (field === 0) {
        const length = random.pick([...EXTREME_LENGTHS, random.int(0, 0x1fff)]) & 0x1fff;
        new DataView(copy.buffer).setUint32(offset + 3, ((word & ~(0x1fff << 13)) | (length << 13)) >>> 0); // frame_length
      } else if (field === 1) {
        copy[offset + 2] = (copy[offset + 2] & 0xc3) | (random.pick([3, 4, 12, 13, 14, 15]) << 2); // sampling_frequency_index
      } else if (field === 2) {
        copy[offset + 1] ^= 0x01; // protection_absent
      } else if (field === 3) {
        copy[offset + 6] = (copy[offset + 6] & 0xfc) | random.int(0, 3); // number_of_raw_data_blocks_in_frame
      } else {
        copy[offset + 2] = (copy[offset + 2] & 0x3f) | (random.int(0, 3) << 6); // profile
      }
    }
    return copy;
  },
  'false syncwords': (_bytes, random) => {
    const parts: Uint8Array[] = [];
    for (let count = random.int(1, 200); count > 0; count--) {
      const part = random.bytes(random.int(2, 80));
      part[0] = 0xff;
      part[1] = random.pick([0xf1, 0xf0, 0xf9, 0xf8]);
      parts.push(part);
    }
    return joined(parts);
  },
};

// ---------------------------------------------------------------------------------------
// Running one case and checking what comes out.
// ---------------------------------------------------------------------------------------

/** Chunk sizes to push: whole, packet-sized, random, or tiny (tiny only for small inputs). */
function chunking(random: SeededRandom, length: number): () => number {
  const mode = random.int(0, length <= 16_384 ? 4 : 3);
  const fixed = random.pick([188, 1000, 4096]);
  if (mode === 0) return () => Math.max(1, length);
  if (mode === 1) return () => fixed;
  if (mode === 2 || mode === 3) return () => random.int(1, 4096);
  return () => random.int(1, 16);
}

function isPts(value: number | undefined): boolean {
  return value === undefined || (Number.isInteger(value) && value >= 0 && value < PTS_WRAP);
}

class CaseChecker {
  readonly problems: string[] = [];
  frames = 0;
  framesWithPts = 0;

  frame(frame: AacFrame): void {
    this.frames += 1;
    if (frame.pts !== undefined) this.framesWithPts += 1;
    const header = parseAdtsHeader(frame.data, 0);
    if (!header) return this.fail('an ADTS frame without a valid header came out');
    if (header.frameLength !== frame.data.length) this.fail(`an ADTS frame of ${frame.data.length} bytes says frame_length ${header.frameLength}`);
    if (frame.sampleRate !== header.sampleRate || frame.samples !== header.samples) this.fail('an ADTS frame disagrees with its header');
    if (!isPts(frame.pts)) this.fail(`an ADTS frame has PTS ${frame.pts}`);
  }

  event(event: DemuxEvent): void {
    if (event.kind === 'pmt') {
      if (!Number.isInteger(event.programNumber) || event.programNumber < 0 || event.programNumber > 0xffff) this.fail(`program number ${event.programNumber}`);
      for (const stream of event.streams) {
        if (stream.pid < 0 || stream.pid > 0x1fff || stream.streamType < 0 || stream.streamType > 0xff) this.fail(`PMT stream ${JSON.stringify(stream)}`);
      }
      return;
    }
    if (event.pid < 0 || event.pid > 0x1fff) this.fail(`PES on PID ${event.pid}`);
    if (!(event.payload instanceof Uint8Array) || event.payload.length > MAX_UNBOUNDED_PES_BYTES + TS_PACKET_SIZE) this.fail('PES payload of an impossible size');
    if (!isPts(event.pts) || !isPts(event.dts)) this.fail(`PES with PTS ${event.pts} / DTS ${event.dts}`);
  }

  fail(problem: string): void {
    if (this.problems.length < 5) this.problems.push(problem);
  }
}

function checkAdtsAccounting(checker: CaseChecker, reader: AdtsReader, pushed: number, taken: number): void {
  const held = pushed - taken - reader.stats.skippedBytes;
  if (held < 0 || held >= MAX_ADTS_CARRY) checker.fail(`ADTS reader took ${taken} + skipped ${reader.stats.skippedBytes} of ${pushed} bytes (holds ${held})`);
}

/**
 * The ingest's chain: TS demuxer, then an ADTS reader per PID of the latest PMT. Every listed
 * PID gets one, whatever its stream type (the ingest reads 0x0F only), so that PMTs mangled by
 * the fuzz still send their PES into the ADTS reader.
 */
function runTsCase(input: Uint8Array, random: SeededRandom, checker: CaseChecker, report: FuzzReport): void {
  const demuxer = new TsDemuxer();
  const readers = new Map<number, { reader: AdtsReader; pushed: number; taken: number }>();
  const take = (events: DemuxEvent[]) => {
    for (const event of events) {
      checker.event(event);
      if (event.kind === 'pmt') {
        report.reached.pmts += 1;
        for (const pid of readers.keys()) if (!event.streams.some((stream) => stream.pid === pid)) readers.delete(pid);
        for (const stream of event.streams) if (!readers.has(stream.pid)) readers.set(stream.pid, { reader: new AdtsReader(), pushed: 0, taken: 0 });
        continue;
      }
      report.reached.pes += 1;
      const entry = readers.get(event.pid);
      if (!entry) continue;
      const frames = entry.reader.push(event.payload, event.pts);
      report.pushCalls += 1;
      entry.pushed += event.payload.length;
      for (const frame of frames) {
        checker.frame(frame);
        entry.taken += frame.data.length;
      }
      checkAdtsAccounting(checker, entry.reader, entry.pushed, entry.taken);
    }
  };
  const nextSize = chunking(random, input.length);
  for (let offset = 0; offset < input.length; ) {
    const size = nextSize();
    take(demuxer.push(input.subarray(offset, offset + size)));
    report.pushCalls += 1;
    offset += size;
  }
  take(demuxer.flush());
  for (const { reader } of readers.values()) report.reached.adtsResyncs += reader.stats.resyncs;
  const { stats } = demuxer;
  if (stats.packets * TS_PACKET_SIZE + stats.skippedBytes !== input.length) {
    checker.fail(`demuxer took ${stats.packets} packets and skipped ${stats.skippedBytes} bytes of ${input.length}`);
  }
  for (const [name, value] of Object.entries(stats)) {
    if (!Number.isSafeInteger(value) || value < 0) checker.fail(`demuxer stat ${name} is ${value}`);
  }
  report.reached.resyncs += stats.resyncs;
  report.reached.continuityErrors += stats.continuityErrors;
  report.reached.droppedPes += stats.droppedPes;
  report.reached.badPackets += stats.badPackets;
  report.reached.psiErrors += stats.psiErrors;
}

/** An ADTS byte stream pushed in pieces with PTS as a PES would give them, sometimes reset. */
function runAdtsCase(input: Uint8Array, random: SeededRandom, checker: CaseChecker, report: FuzzReport): void {
  const reader = new AdtsReader();
  const nextSize = chunking(random, input.length);
  const resets = random.chance(0.1);
  let pushed = 0;
  let taken = 0;
  for (let offset = 0; offset < input.length; ) {
    const size = nextSize();
    const chunk = input.subarray(offset, offset + size);
    const pts = random.pick([undefined, undefined, 0, PTS_WRAP - 1, random.int(0, PTS_WRAP - 1)]);
    for (const frame of reader.push(chunk, pts)) {
      checker.frame(frame);
      taken += frame.data.length;
    }
    report.pushCalls += 1;
    pushed += chunk.length;
    offset += size;
    if (resets && random.chance(0.05)) {
      reader.reset();
      pushed = taken + reader.stats.skippedBytes; // what the reset dropped is not counted anywhere
    } else {
      checkAdtsAccounting(checker, reader, pushed, taken);
    }
  }
  report.reached.adtsResyncs += reader.stats.resyncs;
}

function runFuzzWorker(input: FuzzWorkerInput): void {
  const random = new SeededRandom(input.seed);
  const progress = new Int32Array(input.progress);
  const fixtures = [...input.fixtures, ...syntheticFixtures(random)];
  const report: FuzzReport = {
    cases: 0, tsCases: 0, adtsCases: 0, bytesPushed: 0, pushCalls: 0, maxCaseMs: 0, slowestCase: '', failures: [],
    reached: { pmts: 0, pes: 0, frames: 0, framesWithPts: 0, resyncs: 0, continuityErrors: 0, droppedPes: 0, badPackets: 0, psiErrors: 0, adtsResyncs: 0 },
    mutations: {},
  };
  const total = TS_CASES + ADTS_CASES;
  for (let index = 0; index < total; index++) {
    const kind = index < TS_CASES ? 'ts' : 'adts';
    const sources = fixtures.filter((fixture) => fixture.kind === kind);
    const source = random.pick(sources);
    const mutations = kind === 'ts' ? tsMutations : adtsMutations;
    const names = Object.keys(mutations);
    // Most cases stack one to three mutations; a few feed the valid input as a control.
    const applied = random.chance(0.03) ? [] : Array.from({ length: random.weighted([[6, 1], [3, 2], [1, 3]]) }, () => random.pick(names));
    let bytes = source.bytes;
    for (const name of applied) bytes = mutations[name](bytes, random, sources);
    const label = `case ${index} (${kind}: ${source.name}; ${applied.join(' + ') || 'unchanged'}; ${bytes.length} bytes)`;
    for (const name of applied) report.mutations[name] = (report.mutations[name] ?? 0) + 1;

    Atomics.store(progress, 0, index + 1);
    parentPort!.postMessage({ type: 'case', label });
    const checker = new CaseChecker();
    const started = performance.now();
    try {
      if (kind === 'ts') runTsCase(bytes, random, checker, report);
      else runAdtsCase(bytes, random, checker, report);
    } catch (error) {
      checker.problems.unshift(`threw ${(error as Error)?.stack ?? String(error)}`);
    }
    const elapsed = performance.now() - started;
    if (elapsed > report.maxCaseMs) {
      report.maxCaseMs = elapsed;
      report.slowestCase = label;
    }
    if (elapsed > CASE_BUDGET_MS) checker.fail(`took ${elapsed.toFixed(0)} ms`);
    if (checker.problems.length > 0 && report.failures.length < 30) report.failures.push(`${label}: ${checker.problems.join('; ')}`);
    report.cases += 1;
    if (kind === 'ts') report.tsCases += 1;
    else report.adtsCases += 1;
    report.bytesPushed += bytes.length;
    report.reached.frames += checker.frames;
    report.reached.framesWithPts += checker.framesWithPts;
    Atomics.store(progress, 1, index + 1);
  }
  parentPort!.postMessage({ type: 'report', report });
}

/** Runs the cases in a worker; rejects naming the running case when none finishes within STALL_MS. */
function runWatched(input: Omit<FuzzWorkerInput, 'progress' | 'mediaFuzz'>): Promise<FuzzReport> {
  const progress = new SharedArrayBuffer(8);
  const counters = new Int32Array(progress);
  const worker = new Worker(new URL(import.meta.url), { workerData: { ...input, mediaFuzz: true, progress } satisfies FuzzWorkerInput });
  return new Promise<FuzzReport>((resolve, reject) => {
    let label = 'starting the worker';
    let finished = -1;
    let lastProgressAt = Date.now();
    const watchdog = setInterval(() => {
      const now = Atomics.load(counters, 1);
      if (now !== finished) {
        finished = now;
        lastProgressAt = Date.now();
      } else if (Date.now() - lastProgressAt > (label === 'starting the worker' ? WORKER_START_MS : STALL_MS)) {
        settle(() => reject(new Error(`no case finished in time: ${label} is stuck (seed ${input.seed})`)));
      }
    }, 100);
    const settle = (action: () => void) => {
      clearInterval(watchdog);
      void worker.terminate();
      action();
    };
    worker.on('message', (message: { type: 'case'; label: string } | { type: 'report'; report: FuzzReport }) => {
      if (message.type === 'case') label = message.label;
      else settle(() => resolve(message.report));
    });
    worker.on('error', (error) => settle(() => reject(error)));
    worker.on('exit', (code) => settle(() => reject(new Error(`the fuzz worker exited (${code}) during ${label}`))));
  });
}

if (!isMainThread && (workerData as Partial<FuzzWorkerInput> | null)?.mediaFuzz) {
  runFuzzWorker(workerData as FuzzWorkerInput);
} else {
  const { default: t } = await import('tap');
  const seed = fuzzSeed(DEFAULT_SEED);
  const fixtures = ffmpegFixtures();

  t.test('the fuzz fixtures are valid before they are broken', async (t) => {
    const [adts, ts] = fixtures;
    const reader = new AdtsReader();
    const frames = reader.push(adts!.bytes, 0);
    t.ok(frames.length > 60, `FFmpeg's ADTS gives ${frames.length} frames`);
    t.equal(reader.stats.skippedBytes, 0);
    const demuxer = new TsDemuxer();
    const events = [...demuxer.push(ts!.bytes), ...demuxer.flush()];
    const pmt = events.find((event) => event.kind === 'pmt');
    t.equal(pmt?.kind === 'pmt' ? pmt.streams.filter((stream) => stream.streamType === 0x0f).length : 0, 2, 'two AAC renditions');
    t.match(demuxer.stats, { resyncs: 0, skippedBytes: 0, continuityErrors: 0, droppedPes: 0, badPackets: 0, psiErrors: 0 });
  });

  t.test(`random, truncated and bit-flipped bytes neither throw nor hang the TS demuxer and ADTS reader (seed ${seed})`, async (t) => {
    t.comment(`seed ${seed} (0x${seed.toString(16)}); replay with ONAIR_FUZZ_SEED=${seed}`);
    const started = performance.now();
    const report = await runWatched({ seed, fixtures });
    const seconds = (performance.now() - started) / 1000;
    t.comment(
      `${report.cases} cases (${report.tsCases} TS, ${report.adtsCases} ADTS), ${(report.bytesPushed / 1e6).toFixed(1)} MB in ` +
        `${report.pushCalls} push calls, ${seconds.toFixed(1)} s; slowest ${report.maxCaseMs.toFixed(1)} ms: ${report.slowestCase}`,
    );
    t.comment(`reached: ${JSON.stringify(report.reached)}`);
    t.comment(`mutations: ${JSON.stringify(report.mutations)}`);
    t.equal(report.cases, TS_CASES + ADTS_CASES, 'every case ran');
    t.same(report.failures, [], 'no case threw, overran its time or let malformed output through');
    t.ok(report.maxCaseMs < CASE_BUDGET_MS, `every case returned within ${CASE_BUDGET_MS} ms`);
    // The fuzz must reach the deep paths, or passing proves little.
    for (const [name, value] of Object.entries(report.reached)) t.ok(value > 0, `the fuzz reached ${name} (${value})`);
    t.ok(Object.keys(report.mutations).length === new Set([...Object.keys(tsMutations), ...Object.keys(adtsMutations)]).size, 'every mutation was applied');
  });
}
