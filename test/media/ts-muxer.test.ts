import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AdtsReader, type AacFrame, buildAdtsHeader } from '../../src/media/adts.js';
import { PTS_WRAP, ptsAdd, samplesToTicks } from '../../src/media/pts.js';
import { type DemuxEvent, TsDemuxer, scanTsPackets } from '../../src/media/ts-demuxer.js';
import { joinParts, type Muxer } from '../../src/media/muxer.js';
import { MAX_PES_PAYLOAD_BYTES, type TimedAacFrame, TsSegmentMuxer, mpegTsMuxers } from '../../src/media/ts-muxer.js';

const AUDIO_PID = 0x100;

/** `count` 48 kHz stereo AAC-LC frames of `frameBytes` bytes each, PTS from `firstPts`. */
function frames(count: number, frameBytes: number, firstPts: number): TimedAacFrame[] {
  return Array.from({ length: count }, (_, index) => {
    const header = buildAdtsHeader({ sampleRate: 48000, channelCount: 2, objectType: 2, payloadLength: frameBytes - 7 });
    const data = new Uint8Array(frameBytes);
    data.set(header);
    for (let at = 7; at < frameBytes; at++) data[at] = (index + at) % 251;
    return { data, pts: ptsAdd(firstPts, samplesToTicks(index * 1024, 48000)) };
  });
}

function demux(...segments: Uint8Array[]): { events: DemuxEvent[]; demuxer: TsDemuxer } {
  const demuxer = new TsDemuxer();
  const events = segments.flatMap((segment) => demuxer.push(segment));
  events.push(...demuxer.flush());
  return { events, demuxer };
}

function readFrames(events: DemuxEvent[]): AacFrame[] {
  const reader = new AdtsReader();
  return events.flatMap((event) => (event.kind === 'pes' ? reader.push(event.payload, event.pts) : []));
}

function aacBytes(timed: TimedAacFrame[]): number {
  return timed.reduce((sum, frame) => sum + frame.data.length, 0);
}

t.test('muxed frames come back identical, with their PTS, through the demuxer and ADTS reader', async (t) => {
  const input = frames(188, 250, 900000);
  const segment = new TsSegmentMuxer().muxSegment(input);
  t.equal(segment.length % 188, 0);
  const { events, demuxer } = demux(segment);
  const output = readFrames(events);
  t.equal(output.length, input.length);
  t.same(output.map((frame) => frame.pts), input.map((frame) => frame.pts));
  t.ok(output.every((frame, index) => Buffer.from(frame.data).equals(input[index].data)));
  t.match(demuxer.stats, { continuityErrors: 0, droppedPes: 0, resyncs: 0, psiErrors: 0 });
});

t.test('without timed metadata, PAT and PMT are the first two packets of every segment, byte-identical to FFmpeg’s', async (t) => {
  const muxer = new TsSegmentMuxer({ timedMetadata: false });
  // Sections FFmpeg 5.1 writes for one ADTS AAC stream on PID 0x100 with PMT PID 0x1000.
  const pat = '00b00d0001c100000001f0002ab104b2';
  const pmt = '02b0120001c10000e100f0000fe100f000b69bc0d9';
  for (const segment of [muxer.muxSegment(frames(10, 300, 0)), muxer.muxSegment(frames(10, 300, 19200))]) {
    const packets = scanTsPackets(segment);
    t.match(packets.slice(0, 2), [{ pid: 0, pusi: true }, { pid: 0x1000, pusi: true }]);
    t.equal(Buffer.from(segment.subarray(5, 5 + pat.length / 2)).toString('hex'), pat);
    t.equal(Buffer.from(segment.subarray(188 + 5, 188 + 5 + pmt.length / 2)).toString('hex'), pmt);
    t.ok(packets.slice(2).every((packet) => packet.pid === AUDIO_PID));
    t.equal(demux(segment).events[0].kind, 'pmt');
  }
});

t.test('continuity counters run on from one segment to the next, until resetContinuity', async (t) => {
  const muxer = new TsSegmentMuxer();
  const first = muxer.muxSegment(frames(188, 250, 0));
  const second = muxer.muxSegment(frames(188, 250, 360960));
  const packets = scanTsPackets(Uint8Array.from(Buffer.concat([first, second])));
  const last = new Map<number, number>();
  let breaks = 0;
  for (const packet of packets) {
    const previous = last.get(packet.pid);
    if (previous !== undefined && packet.cc !== ((previous + 1) & 0xf)) breaks += 1;
    last.set(packet.pid, packet.cc);
  }
  t.equal(breaks, 0);
  t.same(scanTsPackets(second).slice(0, 2).map((packet) => packet.cc), [1, 1]);
  t.equal(demux(first, second).demuxer.stats.continuityErrors, 0);
  muxer.resetContinuity();
  t.same(scanTsPackets(muxer.muxSegment(frames(5, 250, 0))).slice(0, 3).map((packet) => packet.cc), [0, 0, 0]);
});

t.test('as a Muxer, parts muxed one after another and joined end to end read as one segment of the same frames', async (t) => {
  const muxer: Muxer = mpegTsMuxers({ id: 'hifi' });
  t.ok(muxer instanceof TsSegmentMuxer, 'MPEG-TS is the default muxer');
  t.equal(muxer.initSegment, undefined, 'MPEG-TS segments need no init segment');
  const input = frames(94, 500, PTS_WRAP - 45_000);
  const parts = [input.slice(0, 23), input.slice(23, 47), input.slice(47, 70), input.slice(70)].map((part) => muxer.muxSegment(part));
  const { events, demuxer } = demux(joinParts(parts));
  const read = readFrames(events);
  t.equal(read.length, input.length);
  t.ok(read.every((frame, index) => Buffer.from(frame.data).equals(Buffer.from(input[index]!.data))), 'the same frames, in order');
  t.same(
    read.map((frame) => frame.pts),
    input.map((frame) => frame.pts % PTS_WRAP),
    'with their PTS, across the wrap',
  );
  t.equal(demuxer.stats.continuityErrors, 0, 'continuity counters run on across the parts');
});

t.test('PTS is wrapped at 2^33 for frames that cross the wrap', async (t) => {
  const input = frames(8, 250, PTS_WRAP - 3 * 1920);
  const muxer = new TsSegmentMuxer({ maxPesPayloadBytes: 500 }); // two frames per PES
  const { events } = demux(muxer.muxSegment(input));
  const pes = events.filter((event) => event.kind === 'pes');
  t.same(pes.map((event) => event.pts), [PTS_WRAP - 5760, PTS_WRAP - 1920, 1920, 5760]);
  t.same(readFrames(events).map((frame) => frame.pts), [PTS_WRAP - 5760, PTS_WRAP - 3840, PTS_WRAP - 1920, 0, 1920, 3840, 5760, 7680]);
  // Unwrapped PTS is accepted too.
  const unwrapped = frames(2, 250, PTS_WRAP + 100).map((frame) => ({ ...frame, pts: frame.pts + PTS_WRAP }));
  t.same(demux(new TsSegmentMuxer().muxSegment(unwrapped)).events.filter((event) => event.kind === 'pes').map((event) => event.pts), [100]);
});

t.test('the packager\'s unwrapped timeline (past 2^33) gives the very bytes of the wrapped one, PCR included', async (t) => {
  const wrapped = frames(96, 250, PTS_WRAP - 40 * 1920);
  const unwrapped = wrapped.map((frame, index) => ({ ...frame, pts: PTS_WRAP - 40 * 1920 + index * 1920 }));
  t.ok(unwrapped.at(-1)!.pts > PTS_WRAP && wrapped.at(-1)!.pts < PTS_WRAP, 'the run crosses the wrap');
  const [a, b] = [new TsSegmentMuxer(), new TsSegmentMuxer()];
  for (const [from, to] of [[0, 48], [48, 96]] as const) {
    t.same(Buffer.from(b.muxSegment(unwrapped.slice(from, to))), Buffer.from(a.muxSegment(wrapped.slice(from, to))), `frames ${from}-${to}`);
  }
});

t.test('each PES holds as many whole frames as fit, and a PTS gap starts a new PES', async (t) => {
  const big = demux(new TsSegmentMuxer().muxSegment(frames(188, 500, 0))).events.filter((event) => event.kind === 'pes');
  t.same(big.map((event) => event.payload.length), [131 * 500, 57 * 500]);
  t.ok(big.every((event) => event.payload.length <= MAX_PES_PAYLOAD_BYTES));
  const gap = [...frames(4, 250, 0), ...frames(4, 250, 90000)];
  const pes = demux(new TsSegmentMuxer().muxSegment(gap)).events.filter((event) => event.kind === 'pes');
  t.same(pes.map((event) => event.pts), [0, 90000]);
});

t.test('each PES starts with a PCR no later than its PTS and ends with adaptation stuffing, not payload padding', async (t) => {
  const segment = new TsSegmentMuxer({ pcrLeadTicks: 100, maxPesTicks: 400_000 }).muxSegment(frames(188, 333, 50));
  const packets = scanTsPackets(segment);
  let payloadBytes = 0;
  let declared = 0;
  let pes = 0;
  packets.forEach((packet, index) => {
    if (packet.pid !== AUDIO_PID) return;
    const offset = index * 188;
    const adaptation = segment[offset + 3] & 0x20 ? 1 + segment[offset + 4] : 0;
    if (packet.pusi) {
      t.equal(payloadBytes, declared, 'previous PES is exactly its declared length');
      t.ok(packet.pcr !== undefined, 'PCR on the first packet of the PES');
      t.equal(segment[offset + 5] & 0x40, 0x40, 'random_access_indicator where a PES starts');
      const header = offset + 4 + adaptation;
      declared = 6 + ((segment[header + 4] << 8) | segment[header + 5]);
      payloadBytes = 0;
      pes += 1;
    } else if (adaptation > 1) {
      t.equal(segment[offset + 5] & 0x40, 0, 'no random_access_indicator inside a PES');
    }
    payloadBytes += 184 - adaptation;
  });
  t.equal(payloadBytes, declared, 'last PES is exactly its declared length');
  t.equal(pes, 1, 'a 4 s segment is one PES');
  t.equal(packets[2].pcr, PTS_WRAP - 50, 'PCR = PTS − lead, wrapped');
});

t.test('container overhead stays within 1 point of the MPEG-TS floor at 32 to 192 kb/s', async (t) => {
  // 4 s at 48 kHz = 187.5 frames: segments of 187 and 188 frames. The floor is what any
  // conformant muxer pays: 188/184 on payload and on one 8-byte PCR adaptation field per
  // 100 ms (ISO/IEC 13818-1 §2.7.2), and PAT + PMT (376 bytes) per segment.
  for (const [label, frameBytes] of [['32k', 85], ['96k', 250], ['128k', 333], ['192k', 500]] as const) {
    const muxer = new TsSegmentMuxer({ segmentSeconds: 4 });
    let wire = 0;
    let aac = 0;
    let seconds = 0;
    let segments = 0;
    for (const count of [187, 188, 187, 188, 187, 188]) {
      const input = frames(count, frameBytes, 900_000 + samplesToTicks(segments * 187.5 * 1024, 48000));
      wire += muxer.muxSegment(input).length;
      aac += aacBytes(input);
      seconds += (count * 1024) / 48000;
      segments += 1;
    }
    const floor = ((aac + Math.ceil(seconds * 10) * 8) * 188) / 184 + segments * 376;
    const overhead = (wire / aac - 1) * 100;
    const floorPercent = (floor / aac - 1) * 100;
    t.comment(`${label}: overhead ${overhead.toFixed(2)} %, floor ${floorPercent.toFixed(2)} %`);
    t.ok(overhead - floorPercent <= 1, `${label}: ${(overhead - floorPercent).toFixed(2)} points over the floor`);
  }
});

t.test('FFmpeg reads a muxed segment of real AAC that crosses the PTS wrap', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-ts-muxer-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const aacPath = join(directory, 'sine.aac');
  const segmentPath = join(directory, 'segment.ts');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=4', '-ac', '2', '-ar', '48000',
    '-c:a', 'aac', '-b:a', '96k', '-f', 'adts', aacPath]);
  const reader = new AdtsReader();
  const aac = reader.push(new Uint8Array(readFileSync(aacPath)), PTS_WRAP - 90000);
  t.equal(reader.stats.skippedBytes, 0);
  t.ok(aac.length > 180);
  const segment = new TsSegmentMuxer().muxSegment(aac.map((frame) => ({ data: frame.data, pts: frame.pts ?? 0 })));
  writeFileSync(segmentPath, segment);
  const aacTotal = aac.reduce((sum, frame) => sum + frame.data.length, 0);
  t.comment(`real 96k AAC: ${aac.length} frames, ${aacTotal} bytes → ${segment.length} bytes (${segment.length / aacTotal})`);

  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a', '-show_entries', 'packet=pts', '-of', 'json', segmentPath]).toString()) as {
    packets: { pts: number }[];
  };
  const streams = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', segmentPath]).toString()) as {
    streams: { codec_name: string; sample_rate: string; channels: number }[];
  };
  t.equal(streams.streams.length, 2, 'the AAC stream and the (empty) ID3 stream the PMT lists');
  t.match(streams.streams[0], { codec_name: 'aac', sample_rate: '48000', channels: 2 });
  t.match(streams.streams[1], { codec_name: 'timed_id3', codec_type: 'data' });
  t.equal(probe.packets.length, aac.length);
  const steps = probe.packets.slice(1).map((packet, index) => (((packet.pts - probe.packets[index].pts) % PTS_WRAP) + PTS_WRAP) % PTS_WRAP);
  t.ok(steps.every((step) => step === 1920), 'packet PTS steps by 1920 across the wrap');
  t.equal(((probe.packets[0].pts % PTS_WRAP) + PTS_WRAP) % PTS_WRAP, PTS_WRAP - 90000);

  const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', segmentPath, '-f', 'null', '-'], { encoding: 'utf8' });
  t.equal(decode.status, 0);
  t.equal(decode.stderr, '', 'FFmpeg decodes the segment without a single error');
});
