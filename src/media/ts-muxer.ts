/**
 * MPEG-TS segment muxer for one ADTS AAC stream (ISO/IEC 13818-1): every segment is a PAT
 * (§2.4.4.3) and a PMT (§2.4.4.8, stream_type 0x0F), then PES packets (§2.4.3.6) that each
 * carry as many consecutive whole ADTS frames as fit, split into 188-byte packets (§2.4.3.2)
 * with a PCR on the first packet of each PES and adaptation-field stuffing (§2.4.3.4) on the
 * last. Continuity counters run on from one segment to the next. The packager's first
 * `Muxer` (src/media/muxer.ts).
 */
import { parseAdtsHeader } from './adts.js';
import { mpegCrc32 } from './mpeg-crc32.js';
import type { Muxer, MuxerFactory, TimedFrame } from './muxer.js';
import { ptsDelta, wrapPts } from './pts.js';
import { PAT_PID, TS_PACKET_SIZE, TS_SYNC_BYTE, writePcr, writeTimestamp } from './ts-packet.js';

/** A timed frame whose data is a whole ADTS frame, header included. */
export type TimedAacFrame = TimedFrame;

export interface TsSegmentMuxerOptions {
  audioPid?: number;
  pmtPid?: number;
  /** Upper bound on the AAC bytes in one PES; defaults to the most PES_packet_length allows. */
  maxPesPayloadBytes?: number;
  /** PCR = PTS of the PES minus this many 90 kHz ticks (wrapped). Default 0. */
  pcrLeadTicks?: number;
}

const PROGRAM_NUMBER = 1;
const TRANSPORT_STREAM_ID = 1;
const STREAM_TYPE_ADTS_AAC = 0x0f;
const AUDIO_STREAM_ID = 0xc0;
/** PES header: start code, stream_id, PES_packet_length (6), flags (2), header length (1), PTS (5). */
const PES_HEADER_BYTES = 14;
/** PES_packet_length counts the 8 header bytes after it, so the payload can be 65535 − 8. */
export const MAX_PES_PAYLOAD_BYTES = 0xffff - (PES_HEADER_BYTES - 6);
const TS_HEADER_BYTES = 4;
/** adaptation_field_length, flags, 6-byte PCR. */
const PCR_ADAPTATION_BYTES = 8;
const FIRST_PACKET_CAPACITY = TS_PACKET_SIZE - TS_HEADER_BYTES - PCR_ADAPTATION_BYTES;
const PACKET_CAPACITY = TS_PACKET_SIZE - TS_HEADER_BYTES;

export class TsSegmentMuxer implements Muxer {
  private readonly audioPid: number;
  private readonly pmtPid: number;
  private readonly maxPesPayloadBytes: number;
  private readonly pcrLeadTicks: number;
  private readonly patSection: Uint8Array;
  private readonly pmtSection: Uint8Array;
  private readonly pesScratch = new Uint8Array(PES_HEADER_BYTES + MAX_PES_PAYLOAD_BYTES);
  private readonly continuity = new Map<number, number>();

  constructor(options: TsSegmentMuxerOptions = {}) {
    this.audioPid = options.audioPid ?? 0x100;
    this.pmtPid = options.pmtPid ?? 0x1000;
    this.maxPesPayloadBytes = options.maxPesPayloadBytes ?? MAX_PES_PAYLOAD_BYTES;
    this.pcrLeadTicks = options.pcrLeadTicks ?? 0;
    for (const pid of [this.audioPid, this.pmtPid]) {
      if (!Number.isInteger(pid) || pid < 0x10 || pid > 0x1ffe) throw new RangeError(`PID ${pid} is reserved or out of range`);
    }
    if (this.audioPid === this.pmtPid) throw new RangeError('audioPid and pmtPid must differ');
    if (!Number.isInteger(this.maxPesPayloadBytes) || this.maxPesPayloadBytes < 1 || this.maxPesPayloadBytes > MAX_PES_PAYLOAD_BYTES) {
      throw new RangeError(`maxPesPayloadBytes must be 1..${MAX_PES_PAYLOAD_BYTES}`);
    }
    this.patSection = buildPat(this.pmtPid);
    this.pmtSection = buildPmt(this.audioPid);
  }

  /** One segment: PAT, PMT, then the frames in PES packets. Length is a multiple of 188. */
  muxSegment(frames: readonly TimedAacFrame[]): Uint8Array {
    const groups = this.groupFrames(frames);
    let packetCount = 2;
    for (const group of groups) packetCount += packetsForPes(PES_HEADER_BYTES + group.payloadBytes);
    const output = new Uint8Array(packetCount * TS_PACKET_SIZE);
    const view = new DataView(output.buffer);
    this.writeSectionPacket(output, view, 0, PAT_PID, this.patSection);
    this.writeSectionPacket(output, view, TS_PACKET_SIZE, this.pmtPid, this.pmtSection);
    let offset = 2 * TS_PACKET_SIZE;
    for (const group of groups) offset = this.writePes(output, view, offset, frames.slice(group.start, group.end), group.payloadBytes);
    return output;
  }

  /** Starts every PID's continuity_counter at 0 again, e.g. after a signalled discontinuity. */
  resetContinuity(): void {
    this.continuity.clear();
  }

  /**
   * Splits the frames into runs that fit one PES: as many whole frames as fit in
   * maxPesPayloadBytes, and a new PES wherever the PTS does not continue by one frame
   * duration (±1 tick), since only the first frame of a PES carries its PTS.
   */
  private groupFrames(frames: readonly TimedAacFrame[]): { start: number; end: number; payloadBytes: number }[] {
    const groups: { start: number; end: number; payloadBytes: number }[] = [];
    let start = 0;
    let payloadBytes = 0;
    for (let index = 0; index < frames.length; index++) {
      const size = frames[index].data.length;
      if (size > MAX_PES_PAYLOAD_BYTES) throw new RangeError(`a ${size}-byte frame cannot fit one PES`);
      const continues = index > start && payloadBytes + size <= this.maxPesPayloadBytes && followsOn(frames[index - 1], frames[index]);
      if (index > start && !continues) {
        groups.push({ start, end: index, payloadBytes });
        start = index;
        payloadBytes = 0;
      }
      payloadBytes += size;
    }
    if (frames.length > start) groups.push({ start, end: frames.length, payloadBytes });
    return groups;
  }

  private writePes(output: Uint8Array, view: DataView, offset: number, frames: readonly TimedAacFrame[], payloadBytes: number): number {
    const pes = this.pesScratch;
    const pesView = new DataView(pes.buffer);
    const pts = wrapPts(frames[0].pts);
    pesView.setUint32(0, 0x000001_00 | AUDIO_STREAM_ID); // packet_start_code_prefix, stream_id
    pesView.setUint16(4, PES_HEADER_BYTES - 6 + payloadBytes); // PES_packet_length
    pesView.setUint8(6, 0x84); // '10', not scrambled, data_alignment_indicator: a frame starts the payload
    pesView.setUint8(7, 0x80); // PTS_DTS_flags = '10': PTS only
    pesView.setUint8(8, 5); // PES_header_data_length
    writeTimestamp(pesView, 9, 0b0010, pts);
    let length = PES_HEADER_BYTES;
    for (const frame of frames) {
      pes.set(frame.data, length);
      length += frame.data.length;
    }
    let written = 0;
    while (written < length) {
      const first = written === 0;
      const capacity = first ? FIRST_PACKET_CAPACITY : PACKET_CAPACITY;
      const chunk = Math.min(capacity, length - written);
      const stuffing = capacity - chunk;
      const adaptationBytes = (first ? PCR_ADAPTATION_BYTES : 0) + stuffing;
      this.writeHeader(view, offset, this.audioPid, first, adaptationBytes > 0);
      if (adaptationBytes > 0) {
        view.setUint8(offset + 4, adaptationBytes - 1); // adaptation_field_length
        if (adaptationBytes > 1) view.setUint8(offset + 5, first ? 0x50 : 0x00); // random_access_indicator, PCR_flag
        if (first) writePcr(view, offset + 6, wrapPts(pts - this.pcrLeadTicks));
        const stuffingStart = offset + 4 + (first ? PCR_ADAPTATION_BYTES : Math.min(2, adaptationBytes));
        output.fill(0xff, stuffingStart, offset + 4 + adaptationBytes);
      }
      output.set(pes.subarray(written, written + chunk), offset + TS_PACKET_SIZE - chunk);
      written += chunk;
      offset += TS_PACKET_SIZE;
    }
    return offset;
  }

  private writeSectionPacket(output: Uint8Array, view: DataView, offset: number, pid: number, section: Uint8Array): void {
    this.writeHeader(view, offset, pid, true, false);
    view.setUint8(offset + 4, 0); // pointer_field: the section starts right after it
    output.set(section, offset + 5);
    output.fill(0xff, offset + 5 + section.length, offset + TS_PACKET_SIZE); // PSI stuffing (§2.4.4)
  }

  /** sync_byte, payload_unit_start_indicator, PID, adaptation_field_control, continuity_counter. */
  private writeHeader(view: DataView, offset: number, pid: number, unitStart: boolean, adaptation: boolean): void {
    const counter = this.continuity.get(pid) ?? 0;
    this.continuity.set(pid, (counter + 1) & 0xf);
    view.setUint8(offset, TS_SYNC_BYTE);
    view.setUint16(offset + 1, (unitStart ? 0x4000 : 0) | pid);
    view.setUint8(offset + 3, (adaptation ? 0x30 : 0x10) | counter);
  }
}

/** One MPEG-TS muxer per rendition: the packager's default. */
export const mpegTsMuxers: MuxerFactory = () => new TsSegmentMuxer();

function packetsForPes(pesBytes: number): number {
  return pesBytes <= FIRST_PACKET_CAPACITY ? 1 : 1 + Math.ceil((pesBytes - FIRST_PACKET_CAPACITY) / PACKET_CAPACITY);
}

function followsOn(previous: TimedAacFrame, next: TimedAacFrame): boolean {
  let nominal = previous.durationTicks;
  if (nominal === undefined) {
    const header = parseAdtsHeader(previous.data, 0);
    if (header === null) return true;
    nominal = (header.samples * 90_000) / header.sampleRate;
  }
  return Math.abs(ptsDelta(previous.pts, next.pts) - nominal) <= 1;
}

/** Long-form PSI section with its CRC_32: table header, `body`, CRC (§2.4.4.10 syntax). */
function buildSection(tableId: number, tableIdExtension: number, body: Uint8Array): Uint8Array {
  const section = new Uint8Array(8 + body.length + 4);
  const view = new DataView(section.buffer);
  view.setUint8(0, tableId);
  view.setUint16(1, 0xb000 | (section.length - 3)); // section_syntax_indicator, '0', reserved, section_length
  view.setUint16(3, tableIdExtension);
  view.setUint8(5, 0xc1); // reserved, version_number 0, current_next_indicator 1
  view.setUint8(6, 0); // section_number
  view.setUint8(7, 0); // last_section_number
  section.set(body, 8);
  view.setUint32(section.length - 4, mpegCrc32(section, 0, section.length - 4));
  return section;
}

function buildPat(pmtPid: number): Uint8Array {
  const body = new DataView(new ArrayBuffer(4));
  body.setUint16(0, PROGRAM_NUMBER);
  body.setUint16(2, 0xe000 | pmtPid); // reserved, program_map_PID
  return buildSection(0x00, TRANSPORT_STREAM_ID, new Uint8Array(body.buffer));
}

function buildPmt(audioPid: number): Uint8Array {
  const body = new DataView(new ArrayBuffer(9));
  body.setUint16(0, 0xe000 | audioPid); // reserved, PCR_PID
  body.setUint16(2, 0xf000); // reserved, program_info_length 0
  body.setUint8(4, STREAM_TYPE_ADTS_AAC);
  body.setUint16(5, 0xe000 | audioPid); // reserved, elementary_PID
  body.setUint16(7, 0xf000); // reserved, ES_info_length 0
  return buildSection(0x02, PROGRAM_NUMBER, new Uint8Array(body.buffer));
}
