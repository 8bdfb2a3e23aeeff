/**
 * The PCR of the MPEG-TS muxer (ISO/IEC 13818-1 §2.7.2): read packet by packet from what
 * the muxer writes for consecutive segments and for LL-HLS parts, at 32 kb/s-like and
 * 192 kb/s-like frame sizes, 44.1 and 48 kHz. Consecutive PCRs are at most 100 ms of PTS
 * apart and never go back; no PCR passes the PTS of a frame whose bytes come after it;
 * every segment and part opens with one; and inside a PES no PCR runs more than 0.6 s past
 * that PES's PTS.
 */
import t, { type Test } from 'tap';
import { buildAdtsHeader } from '../../src/media/adts.js';
import { ptsAdd, ptsDelta, PTS_WRAP, samplesToTicks } from '../../src/media/pts.js';
import { TsDemuxer } from '../../src/media/ts-demuxer.js';
import { readTimestamp, scanTsPackets, TS_PACKET_SIZE } from '../../src/media/ts-packet.js';
import { MAX_PCR_INTERVAL_TICKS, pcrLeadFor, type TimedAacFrame, TsSegmentMuxer } from '../../src/media/ts-muxer.js';
import { SeededRandom } from '../helpers/seeded-random.js';

const AUDIO_PID = 0x100;
/** A demuxer that hands on whole PES sees the clock at most this far past a PES's PTS. */
const PES_OVERSHOOT_TICKS = 54_000;

/** `count` AAC-LC frames around `meanBytes` (±30 %, seeded), PTS from `firstPts`. */
function frames(count: number, meanBytes: number, sampleRate: number, firstPts: number, seed = 1): TimedAacFrame[] {
  const random = new SeededRandom(seed);
  return Array.from({ length: count }, (_, index) => {
    const size = Math.max(8, Math.round(meanBytes * (0.7 + 0.6 * random.next())));
    const data = new Uint8Array(size);
    data.set(buildAdtsHeader({ sampleRate, channelCount: 2, objectType: 2, payloadLength: size - 7 }));
    return { data, pts: ptsAdd(firstPts, samplesToTicks(index * 1024, sampleRate)) };
  });
}

/** Frame counts of consecutive segments of `seconds` (the packager's cut: 187 or 188 frames for 4 s at 48 kHz). */
function cuts(total: number, seconds: number, sampleRate: number): number[] {
  const perSegment = (seconds * sampleRate) / 1024;
  const ends: number[] = [];
  for (let segment = 1; Math.floor(segment * perSegment) <= total; segment++) ends.push(Math.floor(segment * perSegment));
  if (ends.at(-1) !== total) ends.push(total);
  return ends.map((end, index) => end - (index === 0 ? 0 : ends[index - 1]!));
}

interface PcrReading {
  pcr: number;
  /** Index of the first payload byte of the elementary stream at or after the PCR. */
  at: number;
  /** PTS of the PES this PCR's packet belongs to (or that its payload continues). */
  pesPts: number;
}

/** Every PCR of the audio PID, where it sits in the elementary stream, and where every frame starts. */
function readPcrs(stream: Uint8Array): { pcrs: PcrReading[]; frameStarts: number[]; segmentStarts: number[] } {
  const pcrs: PcrReading[] = [];
  const segmentStarts: number[] = [];
  const chunks: Uint8Array[] = [];
  let esBytes = 0;
  let pesPts = -1;
  scanTsPackets(stream).forEach((packet, index) => {
    const offset = index * TS_PACKET_SIZE;
    if (packet.pid === 0) segmentStarts.push(esBytes);
    if (packet.pid !== AUDIO_PID) return;
    const adaptation = stream[offset + 3]! & 0x20 ? 1 + stream[offset + 4]! : 0;
    let payload = offset + 4 + adaptation;
    if (packet.pusi) {
      pesPts = readTimestamp(stream, payload + 9);
      payload += 9 + stream[payload + 8]!;
    }
    if (packet.pcr !== undefined) pcrs.push({ pcr: packet.pcr, at: esBytes, pesPts });
    if (!packet.hasPayload) return;
    chunks.push(stream.subarray(payload, offset + TS_PACKET_SIZE));
    esBytes += TS_PACKET_SIZE - (payload - offset);
  });
  // ADTS frame_length: 13 bits across bytes 3..5 of each frame's header.
  const es = Buffer.concat(chunks);
  const frameStarts: number[] = [];
  for (let at = 0; at + 6 <= es.length; at += ((es[at + 3]! & 0x3) << 11) | (es[at + 4]! << 3) | (es[at + 5]! >> 5)) frameStarts.push(at);
  return { pcrs, frameStarts, segmentStarts };
}

/** Checks the PCR rules over `stream`, whose frames are `input` (to know every frame's PTS). */
function checkPcrs(t: Test, stream: Uint8Array, input: readonly TimedAacFrame[], segmentCount: number): void {
  const { pcrs, frameStarts, segmentStarts } = readPcrs(stream);
  t.equal(frameStarts.length, input.length, 'every frame is found again');
  let worstGap = 0;
  let backwards = 0;
  let pastFramePts = 0;
  let pastPesPts = 0;
  for (let index = 1; index < pcrs.length; index++) {
    const gap = ptsDelta(pcrs[index - 1]!.pcr, pcrs[index]!.pcr);
    worstGap = Math.max(worstGap, gap);
    if (gap < 0) backwards += 1;
  }
  let frame = 0;
  for (const reading of pcrs) {
    // The frame the byte after the PCR belongs to: its PTS and every later frame's are ≥ the PCR.
    while (frame + 1 < frameStarts.length && frameStarts[frame + 1]! <= reading.at) frame += 1;
    if (ptsDelta(reading.pcr, input[frame]!.pts) < 0) pastFramePts += 1;
    if (ptsDelta(reading.pcr, reading.pesPts) < -PES_OVERSHOOT_TICKS) pastPesPts += 1;
  }
  const opensWithPcr = segmentStarts.filter((start) => pcrs.some((reading) => reading.at === start)).length;
  t.ok(worstGap <= MAX_PCR_INTERVAL_TICKS, `consecutive PCRs at most 100 ms apart (worst ${(worstGap / 90).toFixed(1)} ms)`);
  t.equal(backwards, 0, 'the PCR never goes back');
  t.equal(pastFramePts, 0, 'no PCR is later than the PTS of a frame whose bytes follow it');
  t.equal(pastPesPts, 0, 'no PCR inside a PES is more than 0.6 s past that PES’s PTS (VLC 3 waits for whole PES)');
  t.equal(segmentStarts.length, segmentCount, 'a PAT opens every segment or part');
  t.equal(opensWithPcr, segmentCount, 'every segment or part opens with a PCR');
  const seconds = ptsDelta(input[0]!.pts, input.at(-1)!.pts) / 90_000;
  t.ok(pcrs.length <= Math.ceil(seconds * 10) + 2 * segmentCount, `${pcrs.length} PCRs for ${seconds.toFixed(2)} s: about one per 100 ms, no more`);

  const demuxer = new TsDemuxer();
  const events = [...demuxer.push(stream), ...demuxer.flush()];
  const payload = Buffer.concat(events.flatMap((event) => (event.kind === 'pes' ? [event.payload] : [])));
  t.ok(payload.equals(Buffer.concat(input.map((entry) => entry.data))), 'the demuxer reads back the same bytes');
  t.match(demuxer.stats, { continuityErrors: 0, droppedPes: 0, badPackets: 0 });
}

const RATES = [44_100, 48_000];
const SIZES = [
  { label: '32k', bytesPerSecond: 4000 },
  { label: '192k', bytesPerSecond: 24_000 },
];

for (const sampleRate of RATES) {
  for (const { label, bytesPerSecond } of SIZES) {
    const meanBytes = Math.round((bytesPerSecond * 1024) / sampleRate);

    t.test(`${label} at ${sampleRate} Hz: consecutive 4 s segments`, async (t) => {
      const input = frames(Math.round((16 * sampleRate) / 1024), meanBytes, sampleRate, 900_000);
      const muxer = new TsSegmentMuxer({ segmentSeconds: 4 });
      const segments: Uint8Array[] = [];
      let start = 0;
      for (const count of cuts(input.length, 4, sampleRate)) {
        segments.push(muxer.muxSegment(input.slice(start, start + count)));
        start += count;
      }
      checkPcrs(t, Buffer.concat(segments), input, segments.length);
    });

    t.test(`${label} at ${sampleRate} Hz: LL-HLS parts of 1 s in 2 s segments, across the PTS wrap`, async (t) => {
      const input = frames(Math.round((12 * sampleRate) / 1024), meanBytes, sampleRate, PTS_WRAP - 3 * 90_000, 7);
      const muxer = new TsSegmentMuxer({ segmentSeconds: 2 });
      const parts: Uint8Array[] = [];
      let start = 0;
      for (const count of cuts(input.length, 1, sampleRate)) {
        parts.push(muxer.muxSegment(input.slice(start, start + count)));
        start += count;
      }
      checkPcrs(t, Buffer.concat(parts), input, parts.length);
    });
  }
}

t.test('near-silent frames (a packet holding more than 100 ms of audio) get PCR-only packets in between', async (t) => {
  const input = frames(400, 10, 48_000, 900_000, 3);
  const muxer = new TsSegmentMuxer({ segmentSeconds: 4 });
  const segments = cuts(input.length, 4, 48_000).map((count, index, all) => {
    const start = all.slice(0, index).reduce((sum, value) => sum + value, 0);
    return muxer.muxSegment(input.slice(start, start + count));
  });
  const stream = Buffer.concat(segments);
  const pcrOnly = scanTsPackets(stream).filter((packet) => packet.pid === AUDIO_PID && !packet.hasPayload);
  t.ok(pcrOnly.length > 0, `${pcrOnly.length} packets carry only a PCR`);
  t.ok(pcrOnly.every((packet) => packet.pcr !== undefined));
  checkPcrs(t, stream, input, segments.length);
});

t.test('the PCR runs half a second less than a segment behind the PTS, at most 6 s', async (t) => {
  t.equal(pcrLeadFor(4), 315_000);
  t.equal(pcrLeadFor(2), 135_000);
  t.equal(pcrLeadFor(0.5), 0);
  t.equal(pcrLeadFor(12), 540_000);
  const input = frames(188, 85, 48_000, 900_000);
  const first = scanTsPackets(new TsSegmentMuxer({ segmentSeconds: 4 }).muxSegment(input))[2]!;
  t.equal(first.pcr, 900_000 - 315_000, 'the first PCR of a segment is its first PTS less the lead');
});
