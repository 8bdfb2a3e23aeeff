/**
 * Streaming MPEG-TS demuxer (ISO/IEC 13818-1): packets (§2.4.3.2) with adaptation fields
 * (§2.4.3.4), PSI sections PAT (§2.4.4.3) and PMT (§2.4.4.8), and PES packets (§2.4.3.6)
 * reassembled per elementary PID. Chunk boundaries are arbitrary. Bad bytes are counted in
 * `stats` and skipped; nothing here throws on input.
 */
import { EMPTY_BYTES as EMPTY, concatBytes as concat } from './bytes.js';
import { mpegCrc32 } from './mpeg-crc32.js';
import { NULL_PID, PAT_PID, TS_PACKET_SIZE, TS_SYNC_BYTE, readTimestamp } from './ts-packet.js';

export { scanTsPackets, readPacketInfo, type TsPacketInfo } from './ts-packet.js';

export interface ElementaryStream {
  pid: number;
  streamType: number;
}

export type DemuxEvent =
  | { kind: 'pmt'; programNumber: number; streams: ElementaryStream[] }
  | { kind: 'pes'; pid: number; streamId: number; pts?: number; dts?: number; payload: Uint8Array };

export interface TsDemuxerStats {
  packets: number;
  /** Times sync was lost and bytes had to be skipped to find it again. */
  resyncs: number;
  skippedBytes: number;
  continuityErrors: number;
  /** Incomplete or malformed PES packets that were discarded. */
  droppedPes: number;
  /** transport_error_indicator set or adaptation_field_length overrunning the packet. */
  badPackets: number;
  /** PSI sections with a wrong CRC_32 or impossible lengths. */
  psiErrors: number;
}

interface PesAssembly {
  buffer: Uint8Array;
  length: number;
  /** 6 + PES_packet_length; 0 when unbounded (ends at the next unit start); -1 until known. */
  expected: number;
  active: boolean;
}

const TABLE_PAT = 0x00;
const TABLE_PMT = 0x02;
const PES_FIXED_HEADER_BYTES = 6;
const MAX_UNBOUNDED_PES_BYTES = 4 * 1024 * 1024;
/** stream_id values whose PES carries no optional header (§2.4.3.6, Table 2-22). */
const STREAM_IDS_WITHOUT_HEADER = new Set([0xbc, 0xbe, 0xbf, 0xf0, 0xf1, 0xf2, 0xf8, 0xff]);

export class TsDemuxer {
  readonly stats: TsDemuxerStats = {
    packets: 0, resyncs: 0, skippedBytes: 0, continuityErrors: 0, droppedPes: 0, badPackets: 0, psiErrors: 0,
  };
  private carry: Uint8Array = EMPTY;
  private skipping = false;
  private lastContinuity = new Int8Array(8192).fill(-1);
  /** PMT PID → program_number, from the PAT. */
  private pmtPids = new Map<number, number>();
  private sections = new Map<number, Uint8Array>();
  private streams = new Map<number, PesAssembly>();
  private announced = new Map<number, ElementaryStream[]>();

  /** Feeds bytes; returns the PMTs (when new or changed) and PES packets completed by them. */
  push(chunk: Uint8Array): DemuxEvent[] {
    const data = this.carry.length === 0 ? chunk : concat(this.carry, chunk);
    const events: DemuxEvent[] = [];
    let position = 0;
    // A packet is taken only when the byte after it is a sync byte too (or at flush()), so a
    // truncated packet followed by a new one is skipped rather than parsed.
    while (data.length - position > TS_PACKET_SIZE) {
      if (data[position] === TS_SYNC_BYTE && data[position + TS_PACKET_SIZE] === TS_SYNC_BYTE) {
        this.skipping = false;
        this.packet(data, position, events);
        position += TS_PACKET_SIZE;
        continue;
      }
      const next = data.indexOf(TS_SYNC_BYTE, position + 1);
      const resumeAt = next < 0 ? data.length : next;
      if (!this.skipping) this.stats.resyncs += 1;
      this.skipping = true;
      this.stats.skippedBytes += resumeAt - position;
      position = resumeAt;
    }
    this.carry = data.slice(position);
    return events;
  }

  /** Ends the stream: takes a last whole packet, emits unbounded PES, drops partial ones, resets state. */
  flush(): DemuxEvent[] {
    const events: DemuxEvent[] = [];
    const tail = this.carry;
    if (tail.length === TS_PACKET_SIZE && tail[0] === TS_SYNC_BYTE) this.packet(tail, 0, events);
    else this.stats.skippedBytes += tail.length;
    for (const [pid, assembly] of this.streams) {
      if (!assembly.active) continue;
      if (assembly.expected === 0) this.emitPes(pid, assembly, events);
      else this.dropPes(assembly);
    }
    this.carry = EMPTY;
    this.skipping = false;
    this.lastContinuity.fill(-1);
    this.pmtPids.clear();
    this.sections.clear();
    this.streams.clear();
    this.announced.clear();
    return events;
  }

  private packet(data: Uint8Array, offset: number, events: DemuxEvent[]): void {
    this.stats.packets += 1;
    const end = offset + TS_PACKET_SIZE;
    if (data[offset + 1] & 0x80) {
      this.stats.badPackets += 1; // transport_error_indicator
      return;
    }
    const pid = ((data[offset + 1] & 0x1f) << 8) | data[offset + 2];
    const unitStart = (data[offset + 1] & 0x40) !== 0;
    const adaptationFieldControl = (data[offset + 3] >> 4) & 0x3;
    const continuity = data[offset + 3] & 0xf;
    if (pid === NULL_PID || (adaptationFieldControl & 0x1) === 0) return; // no payload, CC unchanged
    let payloadStart = offset + 4;
    let discontinuity = false;
    if (adaptationFieldControl & 0x2) {
      const adaptationLength = data[offset + 4];
      discontinuity = adaptationLength > 0 && (data[offset + 5] & 0x80) !== 0;
      payloadStart += 1 + adaptationLength;
      if (payloadStart > end) {
        this.stats.badPackets += 1;
        return;
      }
    }
    // continuity_counter (§2.4.3.3): +1 per payload packet; one duplicate is allowed.
    const last = this.lastContinuity[pid];
    if (last >= 0 && !discontinuity && continuity !== ((last + 1) & 0xf)) {
      if (continuity === last) return;
      this.stats.continuityErrors += 1;
      this.sections.delete(pid);
      const assembly = this.streams.get(pid);
      if (assembly?.active) this.dropPes(assembly);
    }
    this.lastContinuity[pid] = continuity;
    const payload = data.subarray(payloadStart, end);
    if (pid === PAT_PID || this.pmtPids.has(pid)) this.sectionPayload(pid, unitStart, payload, events);
    else if (this.streams.has(pid)) this.pesPayload(pid, unitStart, payload, events);
  }

  private sectionPayload(pid: number, unitStart: boolean, payload: Uint8Array, events: DemuxEvent[]): void {
    let pending = this.sections.get(pid);
    if (unitStart) {
      // pointer_field (§2.4.4.2): bytes before it finish the previous section.
      const pointer = payload[0] ?? 0;
      if (pending) this.completeSections(pid, concat(pending, payload.subarray(1, 1 + pointer)), events);
      pending = payload.subarray(Math.min(payload.length, 1 + pointer));
    } else if (pending) {
      pending = concat(pending, payload);
    } else {
      return;
    }
    this.completeSections(pid, pending, events);
  }

  /** Parses every complete section in `bytes`, keeping an incomplete tail for the next packet. */
  private completeSections(pid: number, bytes: Uint8Array, events: DemuxEvent[]): void {
    let offset = 0;
    while (bytes.length - offset >= 3 && bytes[offset] !== 0xff) {
      const total = 3 + (((bytes[offset + 1] & 0x0f) << 8) | bytes[offset + 2]);
      if (bytes.length - offset < total) {
        this.sections.set(pid, bytes.slice(offset));
        return;
      }
      this.section(pid, bytes.subarray(offset, offset + total), events);
      offset += total;
    }
    this.sections.delete(pid);
  }

  private section(pid: number, section: Uint8Array, events: DemuxEvent[]): void {
    // Long-form sections: 8 header bytes, body, CRC_32 over everything (Annex A).
    if (section.length < 12 || (section[1] & 0x80) === 0 || mpegCrc32(section) !== 0) {
      this.stats.psiErrors += 1;
      return;
    }
    if ((section[5] & 0x1) === 0) return; // current_next_indicator: not yet applicable
    const bodyEnd = section.length - 4;
    const view = new DataView(section.buffer, section.byteOffset, section.length);
    if (pid === PAT_PID && section[0] === TABLE_PAT) {
      this.pmtPids.clear();
      for (let offset = 8; offset + 4 <= bodyEnd; offset += 4) {
        const programNumber = view.getUint16(offset);
        if (programNumber !== 0) this.pmtPids.set(view.getUint16(offset + 2) & 0x1fff, programNumber);
      }
    } else if (section[0] === TABLE_PMT && this.pmtPids.has(pid)) {
      const programNumber = view.getUint16(3);
      const streams: ElementaryStream[] = [];
      let offset = 12 + (view.getUint16(10) & 0x0fff); // after program_info descriptors
      while (offset + 5 <= bodyEnd) {
        streams.push({ streamType: section[offset], pid: view.getUint16(offset + 1) & 0x1fff });
        offset += 5 + (view.getUint16(offset + 3) & 0x0fff);
      }
      this.program(programNumber, streams, events);
    }
  }

  private program(programNumber: number, streams: ElementaryStream[], events: DemuxEvent[]): void {
    const previous = this.announced.get(programNumber) ?? [];
    const unchanged = previous.length === streams.length
      && previous.every((stream, index) => stream.pid === streams[index].pid && stream.streamType === streams[index].streamType);
    if (unchanged && this.announced.has(programNumber)) return;
    for (const stream of previous) this.streams.delete(stream.pid);
    for (const stream of streams) {
      if (!this.streams.has(stream.pid)) this.streams.set(stream.pid, { buffer: EMPTY, length: 0, expected: -1, active: false });
    }
    this.announced.set(programNumber, streams);
    events.push({ kind: 'pmt', programNumber, streams });
  }

  private pesPayload(pid: number, unitStart: boolean, payload: Uint8Array, events: DemuxEvent[]): void {
    const assembly = this.streams.get(pid);
    if (!assembly) return;
    if (unitStart) {
      if (assembly.active && assembly.expected === 0) this.emitPes(pid, assembly, events);
      else if (assembly.active) this.dropPes(assembly);
      assembly.active = true;
      assembly.length = 0;
      assembly.expected = -1;
      assembly.buffer = new Uint8Array(TS_PACKET_SIZE);
    } else if (!assembly.active) {
      return; // waiting for the start of the next PES
    }
    append(assembly, payload);
    if (assembly.expected < 0 && assembly.length >= PES_FIXED_HEADER_BYTES) {
      const bytes = assembly.buffer;
      if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 1) {
        this.dropPes(assembly); // no packet_start_code_prefix
        return;
      }
      const declared = (bytes[4] << 8) | bytes[5]; // PES_packet_length
      assembly.expected = declared === 0 ? 0 : PES_FIXED_HEADER_BYTES + declared;
      if (assembly.buffer.length < assembly.expected) {
        const grown = new Uint8Array(assembly.expected);
        grown.set(assembly.buffer.subarray(0, assembly.length));
        assembly.buffer = grown;
      }
    }
    if (assembly.expected > 0 && assembly.length >= assembly.expected) this.emitPes(pid, assembly, events);
    else if (assembly.expected === 0 && assembly.length > MAX_UNBOUNDED_PES_BYTES) this.dropPes(assembly);
  }

  private emitPes(pid: number, assembly: PesAssembly, events: DemuxEvent[]): void {
    const end = assembly.expected > 0 ? assembly.expected : assembly.length;
    const bytes = assembly.buffer;
    assembly.active = false;
    assembly.buffer = EMPTY;
    const streamId = bytes[3];
    if (STREAM_IDS_WITHOUT_HEADER.has(streamId)) {
      events.push({ kind: 'pes', pid, streamId, payload: bytes.subarray(PES_FIXED_HEADER_BYTES, end) });
      return;
    }
    // '10', flags, then PTS_DTS_flags (2 bits) and PES_header_data_length (§2.4.3.6).
    const payloadStart = 9 + (bytes[8] ?? 0);
    if (end < 9 || (bytes[6] & 0xc0) !== 0x80 || payloadStart > end) {
      this.stats.droppedPes += 1;
      return;
    }
    const ptsDtsFlags = bytes[7] >> 6;
    const event: DemuxEvent = { kind: 'pes', pid, streamId, payload: bytes.subarray(payloadStart, end) };
    if (ptsDtsFlags & 0x2 && payloadStart >= 14) event.pts = readTimestamp(bytes, 9);
    if (ptsDtsFlags === 0x3 && payloadStart >= 19) event.dts = readTimestamp(bytes, 14);
    events.push(event);
  }

  private dropPes(assembly: PesAssembly): void {
    assembly.active = false;
    assembly.buffer = EMPTY;
    this.stats.droppedPes += 1;
  }
}

function append(assembly: PesAssembly, payload: Uint8Array): void {
  const needed = assembly.length + payload.length;
  if (needed > assembly.buffer.length) {
    const grown = new Uint8Array(Math.max(needed, assembly.buffer.length * 2));
    grown.set(assembly.buffer.subarray(0, assembly.length));
    assembly.buffer = grown;
  }
  assembly.buffer.set(payload, assembly.length);
  assembly.length = needed;
}

