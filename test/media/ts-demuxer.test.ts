import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AdtsReader } from '../../src/media/adts.js';
import { type DemuxEvent, TsDemuxer, scanTsPackets } from '../../src/media/ts-demuxer.js';
import { mpegCrc32 } from '../../src/media/mpeg-crc32.js';
import { PTS_WRAP } from '../../src/media/pts.js';

const PMT_PID = 0x1000;
const AUDIO_PID = 0x100;

/** One 188-byte packet; a short payload is padded with adaptation-field stuffing. */
function tsPacket(options: { pid: number; cc: number; payload?: Uint8Array; pusi?: boolean; discontinuity?: boolean }): Uint8Array {
  const packet = new Uint8Array(188);
  const view = new DataView(packet.buffer);
  const payload = options.payload ?? new Uint8Array(0);
  const hasPayload = options.payload !== undefined;
  const adaptationBytes = 184 - payload.length;
  view.setUint8(0, 0x47);
  view.setUint16(1, (options.pusi ? 0x4000 : 0) | options.pid);
  view.setUint8(3, ((adaptationBytes > 0 ? 0x2 : 0) | (hasPayload ? 0x1 : 0)) << 4 | options.cc);
  if (adaptationBytes > 0) {
    view.setUint8(4, adaptationBytes - 1);
    if (adaptationBytes > 1) view.setUint8(5, options.discontinuity ? 0x80 : 0);
    packet.fill(0xff, 6, 4 + adaptationBytes);
  }
  packet.set(payload, 4 + adaptationBytes);
  return packet;
}

/** A long-form PSI section with its CRC, preceded by pointer_field 0. */
function psiPayload(tableId: number, extension: number, body: Uint8Array): Uint8Array {
  const section = new Uint8Array(1 + 8 + body.length + 4);
  const view = new DataView(section.buffer);
  view.setUint8(1, tableId);
  view.setUint16(2, 0xb000 | (section.length - 4));
  view.setUint16(4, extension);
  view.setUint8(6, 0xc1);
  section.set(body, 9);
  view.setUint32(section.length - 4, mpegCrc32(section, 1, section.length - 4));
  return section;
}

function patPacket(cc = 0): Uint8Array {
  const body = new DataView(new ArrayBuffer(4));
  body.setUint16(0, 1);
  body.setUint16(2, 0xe000 | PMT_PID);
  return tsPacket({ pid: 0, cc, pusi: true, payload: psiPayload(0x00, 1, new Uint8Array(body.buffer)) });
}

function pmtBody(programInfoLength = 0): Uint8Array {
  const body = new DataView(new ArrayBuffer(4 + programInfoLength + 5));
  body.setUint16(0, 0xe000 | AUDIO_PID);
  body.setUint16(2, 0xf000 | programInfoLength);
  for (let index = 0; index < programInfoLength; index += 2) body.setUint16(4 + index, 0xfe00 | (programInfoLength - index - 2)); // dummy descriptors
  body.setUint8(4 + programInfoLength, 0x0f);
  body.setUint16(5 + programInfoLength, 0xe000 | AUDIO_PID);
  body.setUint16(7 + programInfoLength, 0xf000);
  return new Uint8Array(body.buffer);
}

function pmtPacket(cc = 0): Uint8Array {
  return tsPacket({ pid: PMT_PID, cc, pusi: true, payload: psiPayload(0x02, 1, pmtBody()) });
}

/** PES with PTS (and DTS); PES_packet_length is declared unless `unbounded`. */
function pesBytes(payload: Uint8Array, pts: number, options: { dts?: number; unbounded?: boolean } = {}): Uint8Array {
  const headerData = options.dts === undefined ? 5 : 10;
  const pes = new Uint8Array(9 + headerData + payload.length);
  const view = new DataView(pes.buffer);
  view.setUint32(0, 0x000001c0);
  view.setUint16(4, options.unbounded ? 0 : pes.length - 6);
  view.setUint8(6, 0x80);
  view.setUint8(7, options.dts === undefined ? 0x80 : 0xc0);
  view.setUint8(8, headerData);
  const writeTimestamp = (offset: number, prefix: number, value: number) => {
    view.setUint8(offset, (prefix << 4) | (Math.floor(value / 2 ** 30) << 1) | 1);
    view.setUint16(offset + 1, ((Math.floor(value / 2 ** 15) & 0x7fff) << 1) | 1);
    view.setUint16(offset + 3, ((value & 0x7fff) << 1) | 1);
  };
  writeTimestamp(9, options.dts === undefined ? 0b0010 : 0b0011, pts);
  if (options.dts !== undefined) writeTimestamp(14, 0b0001, options.dts);
  pes.set(payload, 9 + headerData);
  return pes;
}

/** Splits PES bytes over packets of one PID, continuity counters from `firstCc`. */
function pesPackets(pes: Uint8Array, firstCc: number, pid = AUDIO_PID): Uint8Array[] {
  const packets: Uint8Array[] = [];
  for (let offset = 0, cc = firstCc; offset < pes.length; offset += 184, cc = (cc + 1) & 0xf) {
    packets.push(tsPacket({ pid, cc, pusi: offset === 0, payload: pes.subarray(offset, offset + 184) }));
  }
  return packets;
}

function audio(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (seed + index * 7) % 64); // never 0x47 or 0xFF
}

function joined(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** Events with payloads as hex, so they compare by value. */
function plain(events: DemuxEvent[]): unknown[] {
  return events.map((event) => (event.kind === 'pes' ? { ...event, payload: Buffer.from(event.payload).toString('hex') } : event));
}

function demuxAll(bytes: Uint8Array, pieceSizes?: () => number): { events: unknown[]; demuxer: TsDemuxer } {
  const demuxer = new TsDemuxer();
  const events: DemuxEvent[] = [];
  if (!pieceSizes) events.push(...demuxer.push(bytes));
  else for (let offset = 0, step = pieceSizes(); offset < bytes.length; offset += step, step = pieceSizes()) {
    events.push(...demuxer.push(bytes.subarray(offset, offset + step)));
  }
  events.push(...demuxer.flush());
  return { events: plain(events), demuxer };
}

const payloads = [audio(100, 1), audio(700, 2), audio(1500, 3)];
const stream = joined([
  patPacket(), pmtPacket(),
  ...pesPackets(pesBytes(payloads[0], 900000), 0),
  ...pesPackets(pesBytes(payloads[1], 901920), 1),
  ...pesPackets(pesBytes(payloads[2], 903840), 5),
]);
const expected = [
  { kind: 'pmt', programNumber: 1, streams: [{ streamType: 0x0f, pid: AUDIO_PID }] },
  ...payloads.map((payload, index) => ({ kind: 'pes', pid: AUDIO_PID, streamId: 0xc0, pts: 900000 + index * 1920, payload: Buffer.from(payload).toString('hex') })),
];

t.test('PAT, PMT and PES packets become a pmt event and pes events', async (t) => {
  const { events, demuxer } = demuxAll(stream);
  t.same(events, expected);
  t.match(demuxer.stats, { packets: stream.length / 188, resyncs: 0, continuityErrors: 0, droppedPes: 0, skippedBytes: 0 });
});

t.test('a PES with a declared length is emitted as soon as its last packet arrives', async (t) => {
  const demuxer = new TsDemuxer();
  const packets = [patPacket(), pmtPacket(), ...pesPackets(pesBytes(payloads[2], 1234), 0)];
  // The last packet is only taken once the next sync byte is seen, so end with one more byte.
  const events = demuxer.push(joined([...packets, Uint8Array.of(0x47)]));
  t.same(plain(events).at(-1), { kind: 'pes', pid: AUDIO_PID, streamId: 0xc0, pts: 1234, payload: Buffer.from(payloads[2]).toString('hex') });
});

t.test('a PES of unbounded length ends at the next unit start or at flush', async (t) => {
  const bytes = joined([
    patPacket(), pmtPacket(),
    ...pesPackets(pesBytes(payloads[1], 10, { unbounded: true }), 0),
    ...pesPackets(pesBytes(payloads[0], 20, { unbounded: true }), 4),
  ]);
  const { events } = demuxAll(bytes);
  t.same(events.slice(1).map((event) => (event as { pts: number }).pts), [10, 20]);
  // Without a declared length, the adaptation-stuffed tail is all the PES there is.
  t.same(events.slice(1).map((event) => (event as { payload: string }).payload.length / 2), [700, 100]);
});

t.test('pushing the stream 1 to 7 bytes at a time gives identical events', async (t) => {
  let step = 0;
  const { events, demuxer } = demuxAll(stream, () => (step = (step % 7) + 1));
  t.same(events, expected);
  t.equal(demuxer.stats.resyncs, 0);
});

t.test('garbage and lost sync are skipped, counted, and the stream recovers', async (t) => {
  const garbage = Uint8Array.from({ length: 150 }, (_, index) => (index % 37 === 0 ? 0x47 : index));
  const packets = [patPacket(), pmtPacket(), ...pesPackets(pesBytes(payloads[0], 900000), 0)];
  const later = [...pesPackets(pesBytes(payloads[1], 901920), 1), ...pesPackets(pesBytes(payloads[2], 903840), 5)];
  const bytes = joined([garbage, ...packets, garbage, ...later]);
  for (const pieces of [undefined, () => 5, () => 1000]) {
    const { events, demuxer } = demuxAll(bytes, pieces);
    t.same(events, expected);
    t.match(demuxer.stats, { resyncs: 2, skippedBytes: 300, continuityErrors: 0, droppedPes: 0 });
  }
});

t.test('a truncated packet mid-stream is skipped and its PES dropped', async (t) => {
  const middle = pesPackets(pesBytes(payloads[1], 901920), 1);
  const bytes = joined([
    patPacket(), pmtPacket(), ...pesPackets(pesBytes(payloads[0], 900000), 0),
    middle[0], middle[1].subarray(0, 100), middle[2], middle[3],
    ...pesPackets(pesBytes(payloads[2], 903840), 5),
  ]);
  const { events, demuxer } = demuxAll(bytes);
  t.same(events, [expected[0], expected[1], expected[3]]);
  t.match(demuxer.stats, { resyncs: 1, skippedBytes: 100, continuityErrors: 1, droppedPes: 1 });
});

t.test('a continuity-counter jump is counted and drops the partial PES', async (t) => {
  const middle = pesPackets(pesBytes(payloads[1], 901920), 1);
  const bytes = joined([
    patPacket(), pmtPacket(), ...pesPackets(pesBytes(payloads[0], 900000), 0),
    middle[0], middle[2], middle[3],
    ...pesPackets(pesBytes(payloads[2], 903840), 5),
  ]);
  const { events, demuxer } = demuxAll(bytes);
  t.same(events, [expected[0], expected[1], expected[3]]);
  t.match(demuxer.stats, { continuityErrors: 1, droppedPes: 1, resyncs: 0 });
});

t.test('a discontinuity_indicator or an adaptation-only packet is not a continuity error', async (t) => {
  const bytes = joined([
    patPacket(), pmtPacket(), ...pesPackets(pesBytes(payloads[0], 900000), 0),
    tsPacket({ pid: AUDIO_PID, cc: 0 }), // adaptation_field_control 2: no payload, counter unchanged
    tsPacket({ pid: AUDIO_PID, cc: 9, pusi: true, discontinuity: true, payload: pesBytes(payloads[0].subarray(0, 50), 5) }),
  ]);
  const { events, demuxer } = demuxAll(bytes);
  t.equal(events.length, 3);
  t.equal(demuxer.stats.continuityErrors, 0);
});

t.test('a PMT section spanning two packets is reassembled', async (t) => {
  const payload = psiPayload(0x02, 7, pmtBody(220));
  const bytes = joined([
    patPacket(),
    tsPacket({ pid: PMT_PID, cc: 0, pusi: true, payload: payload.subarray(0, 184) }),
    tsPacket({ pid: PMT_PID, cc: 1, payload: payload.subarray(184) }),
  ]);
  const { events, demuxer } = demuxAll(bytes);
  t.same(events, [{ kind: 'pmt', programNumber: 7, streams: [{ streamType: 0x0f, pid: AUDIO_PID }] }]);
  t.equal(demuxer.stats.psiErrors, 0);
});

t.test('a PMT with a bad CRC is ignored and counted', async (t) => {
  const pmt = pmtPacket();
  pmt[180] ^= 0x01; // inside the section, which sits at the end of the packet
  const { events, demuxer } = demuxAll(joined([patPacket(), pmt, ...pesPackets(pesBytes(payloads[0], 1), 0)]));
  t.same(events, []);
  t.equal(demuxer.stats.psiErrors, 1);
});

t.test('PTS and DTS near 2^33 decode exactly', async (t) => {
  for (const [pts, dts] of [[PTS_WRAP - 1, PTS_WRAP - 3000], [0x123456789, 0x100000000], [0, 1]]) {
    const { events } = demuxAll(joined([patPacket(), pmtPacket(), ...pesPackets(pesBytes(payloads[0], pts, { dts }), 0)]));
    t.match(events[1], { kind: 'pes', pts, dts });
  }
});

t.test('truncated or random input never throws', async (t) => {
  for (let cut = 0; cut <= stream.length; cut += 13) {
    const demuxer = new TsDemuxer();
    demuxer.push(stream.subarray(0, cut));
    demuxer.flush();
  }
  let state = 99;
  const random = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) >> 16) & 0xff;
  const noise = Uint8Array.from({ length: 20000 }, (_, index) => (index % 188 === 0 ? 0x47 : random()));
  const { demuxer } = demuxAll(joined([stream, noise, stream]), () => 1 + random());
  t.ok(demuxer.stats.packets > 100);
});

t.test('scanTsPackets lists pid, continuity counter, unit start and payload of each packet', async (t) => {
  const packets = scanTsPackets(joined([patPacket(3), pmtPacket(4), tsPacket({ pid: AUDIO_PID, cc: 6 })]));
  t.match(packets, [
    { pid: 0, cc: 3, pusi: true, hasPayload: true },
    { pid: PMT_PID, cc: 4, pusi: true, hasPayload: true },
    { pid: AUDIO_PID, cc: 6, pusi: false, hasPayload: false },
  ]);
});

t.test('FFmpeg’s own MPEG-TS output demuxes into every AAC frame with continuous PTS', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-ts-demuxer-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, 'ffmpeg.ts');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=3', '-ac', '2', '-ar', '44100',
    '-c:a', 'aac', '-b:a', '128k', '-f', 'mpegts', path]);
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'packet=pts', '-of', 'json', path]).toString()) as {
    packets: { pts: number }[];
  };
  const bytes = new Uint8Array(readFileSync(path));
  const demuxer = new TsDemuxer();
  const reader = new AdtsReader();
  const framePts: number[] = [];
  let pmt: DemuxEvent | undefined;
  const take = (events: DemuxEvent[]) => {
    for (const event of events) {
      if (event.kind === 'pmt') pmt = event;
      else framePts.push(...reader.push(event.payload, event.pts).map((frame) => frame.pts ?? -1));
    }
  };
  for (let offset = 0, step = 1; offset < bytes.length; offset += step, step = (step * 7 + 3) % 4096 + 1) {
    take(demuxer.push(bytes.subarray(offset, offset + step)));
  }
  take(demuxer.flush());
  t.match(pmt, { kind: 'pmt', programNumber: 1, streams: [{ pid: AUDIO_PID, streamType: 0x0f }] });
  // FFmpeg rounds 44.1 kHz frame times to the nearest tick, the reader floors: allow one tick.
  t.equal(framePts.length, probe.packets.length);
  t.ok(framePts.every((pts, index) => Math.abs(pts - probe.packets[index].pts) <= 1), 'frame PTS within a tick of ffprobe’s');
  t.match(demuxer.stats, { resyncs: 0, continuityErrors: 0, droppedPes: 0, psiErrors: 0 });
  t.same(reader.stats, { frames: probe.packets.length, skippedBytes: 0, resyncs: 0 });
});
