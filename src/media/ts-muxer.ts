/**
 * MPEG-TS segment muxer for one ADTS AAC stream (ISO/IEC 13818-1): every segment is a PAT
 * (§2.4.4.3) and a PMT (§2.4.4.8, stream_type 0x0F), then PES packets (§2.4.3.6) that each
 * carry consecutive whole ADTS frames, as many as fit (normally one PES per segment), split
 * into 188-byte packets (§2.4.3.2) with adaptation-field stuffing (§2.4.3.4) on the last.
 * The audio PID carries the PCR: on the first packet of every PES, and inside a PES as often
 * as keeps consecutive PCRs at most 100 ms apart (§2.7.2), across segments and LL-HLS parts
 * too; each PCR runs a fixed lead behind the PTS (pcrLeadFor). Continuity counters run on
 * from one segment to the next. The packager's first `Muxer` (src/media/muxer.ts).
 *
 * Timed metadata (Apple, "Timed Metadata for HTTP Live Streaming", after ISO/IEC 13818-1
 * §2.12): the PMT lists an ID3 stream on its own PID (stream_type 0x15, a
 * metadata_descriptor in its ES_info, a metadata_pointer_descriptor in the program_info),
 * and each now playing handed to `muxSegment` becomes one PES on that PID (private_stream_1,
 * data_alignment_indicator, PTS where it applies) holding an ID3v2.4 tag (src/media/id3.ts).
 * A metadata PES goes right after the audio packet in which the first frame at or after its
 * PTS begins: after a PCR (VLC takes the timestamp of a PES that comes before any PCR as the
 * clock, then drops audio as late), and where the audio it annotates is in the multiplex.
 * docs/architecture.md, "Timed metadata".
 */
import { parseAdtsHeader } from './adts.js';
import { nowPlayingId3Tag } from './id3.js';
import { mpegCrc32 } from './mpeg-crc32.js';
import type { Muxer, MuxerFactory, TimedFrame, TimedMetadata } from './muxer.js';
import type { NowPlaying } from './now-playing.js';
import { ptsAdd, ptsDelta, wrapPts } from './pts.js';
import { PAT_PID, TS_PACKET_SIZE, TS_SYNC_BYTE, writePcr, writeTimestamp } from './ts-packet.js';

/** A timed frame whose data is a whole ADTS frame, header included. */
export type TimedAacFrame = TimedFrame;

export interface TsSegmentMuxerOptions {
  audioPid?: number;
  pmtPid?: number;
  /** The ID3 timed-metadata stream's PID; default 0x101. */
  metadataPid?: number;
  /**
   * Whether the PMT lists the ID3 timed-metadata stream (and `muxSegment` writes the metadata
   * it is given); default true. Without it the PAT and PMT are byte for byte FFmpeg's for one
   * AAC stream, and metadata is ignored.
   */
  timedMetadata?: boolean;
  /** Upper bound on the AAC bytes in one PES; defaults to the most PES_packet_length allows. */
  maxPesPayloadBytes?: number;
  /** The segment length the PCR lead and the PES span derive from (see pcrLeadFor); default 4. */
  segmentSeconds?: number;
  /** How far the PCR runs behind the PTS, in 90 kHz ticks; default pcrLeadFor(segmentSeconds). */
  pcrLeadTicks?: number;
  /** Most 90 kHz ticks between two consecutive PCRs; default 9000 (100 ms, §2.7.2). */
  maxPcrIntervalTicks?: number;
  /** Upper bound on the PTS span of one PES (first frame to the end of the last), in 90 kHz ticks; default the lead + 0.6 s. */
  maxPesTicks?: number;
}

const PROGRAM_NUMBER = 1;
const TRANSPORT_STREAM_ID = 1;
const STREAM_TYPE_ADTS_AAC = 0x0f;
const AUDIO_STREAM_ID = 0xc0;
/** ISO/IEC 13818-1 Table 2-34: metadata carried in PES packets. */
const STREAM_TYPE_METADATA_PES = 0x15;
/** Apple's timed metadata: ID3 travels in private_stream_1, not as metadata access units. */
const PRIVATE_STREAM_1 = 0xbd;
/** metadata_pointer_descriptor (§2.6.58) and metadata_descriptor (§2.6.60) tags. */
const METADATA_POINTER_DESCRIPTOR = 37;
const METADATA_DESCRIPTOR = 38;
/** 'ID3 ', the registered format_identifier of both the metadata format and its application. */
const ID3_FORMAT_IDENTIFIER = 0x49443320;
/** PES header: start code, stream_id, PES_packet_length (6), flags (2), header length (1), PTS (5). */
const PES_HEADER_BYTES = 14;
/** PES_packet_length counts the 8 header bytes after it, so the payload can be 65535 − 8. */
export const MAX_PES_PAYLOAD_BYTES = 0xffff - (PES_HEADER_BYTES - 6);
/** ISO/IEC 13818-1 §2.7.2: PCRs at most 0.1 s apart. */
export const MAX_PCR_INTERVAL_TICKS = 9000;
/** Segment length the PCR lead and PES span derive from when none is given (the config default). */
export const DEFAULT_SEGMENT_SECONDS = 4;
/** The PCR runs this much less than a segment behind the PTS (see pcrLeadFor). */
const LEAD_SHORTFALL_TICKS = 45_000;
/** The longest lead: below the packager's first PTS (10 s), so the PCR does not wrap at the start of a run. */
const MAX_PCR_LEAD_TICKS = 540_000;
/** A PES may span this much more audio than the lead: a segment of 4 s at 48 kHz is up to 4.011 s. */
const PES_OVERSHOOT_TICKS = 54_000;

/**
 * How far the PCR runs behind the PTS for segments of `segmentSeconds`: half a second less
 * than a segment (0 for segments of half a second), at most 6 s.
 *
 * Measured with VLC 3, the one common player that clocks HLS by the PCR: it hands an audio
 * PES on only once it is complete, so every PCR inside a PES must stay at or before about
 * that PES's PTS (a PCR 2-4 s past it drops the audio as "buffer too late"); and a lead of
 * more than a segment makes it call the PCR late and re-buffer at every segment. So one PES
 * per segment (its 14-byte header and final stuffing cost 0.6 % of 32 kb/s audio once per
 * 4 s, 2.6 % if it were once a second), a lead just under a segment, and PES that span at
 * most the lead plus 0.6 s.
 */
export function pcrLeadFor(segmentSeconds: number): number {
  return Math.min(MAX_PCR_LEAD_TICKS, Math.max(0, Math.round(segmentSeconds * 90_000) - LEAD_SHORTFALL_TICKS));
}

const TS_HEADER_BYTES = 4;
/** adaptation_field_length, flags, 6-byte PCR. */
export const PCR_ADAPTATION_BYTES = 8;
const PCR_PACKET_CAPACITY = TS_PACKET_SIZE - TS_HEADER_BYTES - PCR_ADAPTATION_BYTES;
const PACKET_CAPACITY = TS_PACKET_SIZE - TS_HEADER_BYTES;
/** In a packet plan: this packet carries no PCR. */
const NO_PCR = -1;

export class TsSegmentMuxer implements Muxer {
  private readonly audioPid: number;
  private readonly pmtPid: number;
  private readonly metadataPid: number | undefined;
  private readonly maxPesPayloadBytes: number;
  private readonly pcrLeadTicks: number;
  private readonly maxPcrInterval: number;
  private readonly maxPesTicks: number;
  private readonly patSection: Uint8Array;
  private readonly pmtSection: Uint8Array;
  private readonly pesScratch = new Uint8Array(PES_HEADER_BYTES + MAX_PES_PAYLOAD_BYTES);
  private readonly continuity = new Map<number, number>();
  /** The audio packets of the segment being muxed: payload bytes (0: a PCR-only packet) and PCR (or NO_PCR). */
  private readonly planPayload: number[] = [];
  private readonly planPcr: number[] = [];
  /** Each frame's duration in 90 kHz ticks (0: unknown), for the segment being muxed. */
  private readonly durations: number[] = [];
  /** The last now playing turned into an ID3 tag, and the tag: it repeats at every segment. */
  private lastTag: { nowPlaying: NowPlaying; tag: Uint8Array } | undefined;

  constructor(options: TsSegmentMuxerOptions = {}) {
    this.audioPid = options.audioPid ?? 0x100;
    this.pmtPid = options.pmtPid ?? 0x1000;
    this.metadataPid = options.timedMetadata === false ? undefined : options.metadataPid ?? 0x101;
    this.maxPesPayloadBytes = options.maxPesPayloadBytes ?? MAX_PES_PAYLOAD_BYTES;
    this.pcrLeadTicks = options.pcrLeadTicks ?? pcrLeadFor(options.segmentSeconds ?? DEFAULT_SEGMENT_SECONDS);
    this.maxPcrInterval = options.maxPcrIntervalTicks ?? MAX_PCR_INTERVAL_TICKS;
    this.maxPesTicks = options.maxPesTicks ?? this.pcrLeadTicks + PES_OVERSHOOT_TICKS;
    const pids = [this.audioPid, this.pmtPid, ...(this.metadataPid === undefined ? [] : [this.metadataPid])];
    for (const pid of pids) {
      if (!Number.isInteger(pid) || pid < 0x10 || pid > 0x1ffe) throw new RangeError(`PID ${pid} is reserved or out of range`);
    }
    if (new Set(pids).size !== pids.length) throw new RangeError('audioPid, pmtPid and metadataPid must differ');
    if (!Number.isInteger(this.maxPesPayloadBytes) || this.maxPesPayloadBytes < 1 || this.maxPesPayloadBytes > MAX_PES_PAYLOAD_BYTES) {
      throw new RangeError(`maxPesPayloadBytes must be 1..${MAX_PES_PAYLOAD_BYTES}`);
    }
    if (!Number.isInteger(this.maxPcrInterval) || this.maxPcrInterval < 1) throw new RangeError('maxPcrIntervalTicks must be a positive integer');
    this.patSection = buildPat(this.pmtPid);
    this.pmtSection = buildPmt(this.audioPid, this.metadataPid);
  }

  /**
   * One segment: PAT, PMT, a PES per timed metadata (when the PMT lists the ID3 stream), then
   * the frames in PES packets. Length is a multiple of 188.
   */
  muxSegment(frames: readonly TimedAacFrame[], metadata: readonly TimedMetadata[] = []): Uint8Array {
    const metadataPes = this.metadataPid === undefined ? [] : metadata.map((event) => ({ pts: event.pts, tag: this.tagOf(event.nowPlaying) }));
    const metadataPackets = metadataPes.reduce((sum, pes) => sum + dataPesPackets(pes.tag.length), 0);
    const durations = this.durations;
    durations.length = frames.length;
    for (let index = 0; index < frames.length; index++) durations[index] = frameTicks(frames[index]);
    const groups = this.groupFrames(frames);
    this.planPayload.length = 0;
    this.planPcr.length = 0;
    const pesPackets: number[] = [];
    groups.forEach((group, index) => {
      // Where the next PCR will be at the latest: the next PES's first packet, or the next
      // segment's, which starts where this one's last frame ends.
      const next = groups[index + 1];
      const nextPts = next ? frames[next.start].pts : ptsAdd(frames[group.end - 1].pts, Math.floor(durations[group.end - 1]!));
      const before = this.planPayload.length;
      this.planPes(frames, group, nextPts);
      pesPackets.push(this.planPayload.length - before);
    });
    const placement = this.placeMetadata(frames, groups, pesPackets, metadataPes);
    const output = new Uint8Array((2 + metadataPackets + this.planPayload.length) * TS_PACKET_SIZE);
    const view = new DataView(output.buffer);
    this.writeSectionPacket(output, view, 0, PAT_PID, this.patSection);
    this.writeSectionPacket(output, view, TS_PACKET_SIZE, this.pmtPid, this.pmtSection);
    let offset = this.writeMetadataAfter(output, view, 2 * TS_PACKET_SIZE, placement, NO_AUDIO_PACKET);
    let plan = 0;
    groups.forEach((group, index) => {
      offset = this.writePes(output, view, offset, frames, group, plan, pesPackets[index]!, placement);
      plan += pesPackets[index]!;
    });
    return output;
  }

  /**
   * Where each metadata PES goes: after the audio packet (its index in the plan) in which the
   * first frame at or after its PTS begins; after the last one if no frame is that late, and
   * before any (NO_AUDIO_PACKET) if there is no audio at all.
   */
  private placeMetadata(frames: readonly TimedAacFrame[], groups: FrameGroup[], pesPackets: number[], metadata: DataPes[]): Map<number, DataPes[]> {
    const placement = new Map<number, DataPes[]>();
    for (const pes of metadata) {
      const frame = frames.findIndex((candidate) => ptsDelta(pes.pts, candidate.pts) >= 0);
      const packet = frame < 0 ? this.planPayload.length - 1 : this.packetHolding(frames, groups, pesPackets, frame);
      const here = placement.get(packet);
      if (here) here.push(pes);
      else placement.set(packet, [pes]);
    }
    return placement;
  }

  /** The index in the plan of the audio packet in which frame `frame` begins. */
  private packetHolding(frames: readonly TimedAacFrame[], groups: FrameGroup[], pesPackets: number[], frame: number): number {
    let plan = 0;
    for (const [index, group] of groups.entries()) {
      if (frame >= group.end) {
        plan += pesPackets[index]!;
        continue;
      }
      let byte = PES_HEADER_BYTES;
      for (let before = group.start; before < frame; before++) byte += frames[before].data.length;
      for (let covered = this.planPayload[plan]!; covered <= byte; covered += this.planPayload[plan]!) plan += 1;
      return plan;
    }
    return this.planPayload.length - 1;
  }

  /** Writes the metadata PES placed after audio packet `packet`. */
  private writeMetadataAfter(output: Uint8Array, view: DataView, offset: number, placement: Map<number, DataPes[]>, packet: number): number {
    for (const pes of placement.get(packet) ?? []) offset = this.writeDataPes(output, view, offset, this.metadataPid!, pes.pts, pes.tag);
    return offset;
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
  private groupFrames(frames: readonly TimedAacFrame[]): FrameGroup[] {
    const groups: FrameGroup[] = [];
    let start = 0;
    let payloadBytes = 0;
    for (let index = 0; index < frames.length; index++) {
      const size = frames[index].data.length;
      if (size > MAX_PES_PAYLOAD_BYTES) throw new RangeError(`a ${size}-byte frame cannot fit one PES`);
      const continues = index > start && payloadBytes + size <= this.maxPesPayloadBytes
        && followsOn(frames[index - 1], this.durations[index - 1]!, frames[index])
        && ptsDelta(frames[start].pts, frames[index].pts) + this.durations[index]! <= this.maxPesTicks;
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

  /**
   * Lays one PES out in packets and chooses which carry a PCR (§2.4.3.4, §2.7.2). The first
   * packet always does; any other only when the next packet would come too late for the
   * next PCR (more than maxPcrIntervalTicks after the last one): PCRs cost 8 bytes each, so
   * they come as late as the interval allows. A PCR's value is the time the packet's first
   * payload byte has on the PTS timeline, interpolated through the frame it falls in, less
   * pcrLeadTicks, and never later than that frame's PTS: no PCR passes the PTS of a frame
   * whose bytes follow it. Where one packet holds more than the interval of audio (tiny
   * frames, e.g. silence at a low bit rate), packets with only an adaptation field and a PCR
   * (no payload, §2.4.3.3: continuity_counter unchanged) fill the gap.
   */
  private planPes(frames: readonly TimedAacFrame[], group: FrameGroup, nextPts: number): void {
    const pesBytes = PES_HEADER_BYTES + group.payloadBytes;
    const lead = this.pcrLeadTicks;
    // PES byte offset → PCR value, from the frame at `frame` (starting at `frameStart`) on;
    // the header counts as the first frame's start.
    let frame = group.start;
    let frameStart = PES_HEADER_BYTES;
    const pcrAt = (offset: number): number => {
      if (offset >= pesBytes) return ptsAdd(nextPts, -lead);
      let index = frame;
      let start = frameStart;
      while (offset >= start + frames[index].data.length && index + 1 < group.end) start += frames[index++].data.length;
      const into = Math.max(0, offset - start) / frames[index].data.length;
      return ptsAdd(frames[index].pts, Math.floor(Math.min(into * this.durations[index]! - lead, 0)));
    };
    let lastPcr = pcrAt(0);
    this.planPayload.push(Math.min(PCR_PACKET_CAPACITY, pesBytes));
    this.planPcr.push(lastPcr);
    let offset = this.planPayload[this.planPayload.length - 1]!;
    while (offset < pesBytes) {
      while (offset >= frameStart + frames[frame].data.length && frame + 1 < group.end) frameStart += frames[frame++].data.length;
      const candidate = pcrAt(offset);
      while (ptsDelta(lastPcr, candidate) > this.maxPcrInterval) {
        lastPcr = ptsAdd(lastPcr, this.maxPcrInterval);
        this.planPayload.push(0);
        this.planPcr.push(lastPcr);
      }
      // Without a PCR here, the next chance is the next packet (or the next PES's first): one
      // is due here if by then the interval will have passed. Its value keeps to the grid of
      // one PCR per interval where the timeline allows, so packet boundaries add no extra PCRs.
      const nextPcr = pcrAt(offset + PACKET_CAPACITY);
      const withPcr = ptsDelta(lastPcr, nextPcr) >= this.maxPcrInterval;
      const chunk = Math.min(withPcr ? PCR_PACKET_CAPACITY : PACKET_CAPACITY, pesBytes - offset);
      if (withPcr) lastPcr = earliest(ptsAdd(lastPcr, this.maxPcrInterval), nextPcr, wrapPts(frames[frame].pts));
      this.planPayload.push(chunk);
      this.planPcr.push(withPcr ? lastPcr : NO_PCR);
      offset += chunk;
    }
    // The last packet may hold more than the interval too: fill up to the next PES's PCR.
    const nextPesPcr = pcrAt(pesBytes);
    while (ptsDelta(lastPcr, nextPesPcr) > this.maxPcrInterval) {
      lastPcr = ptsAdd(lastPcr, this.maxPcrInterval);
      this.planPayload.push(0);
      this.planPcr.push(lastPcr);
    }
  }

  private writePes(
    output: Uint8Array,
    view: DataView,
    offset: number,
    frames: readonly TimedAacFrame[],
    group: FrameGroup,
    plan: number,
    packets: number,
    metadata: Map<number, DataPes[]>,
  ): number {
    const pes = this.pesScratch;
    const pesView = new DataView(pes.buffer);
    const pts = wrapPts(frames[group.start].pts);
    pesView.setUint32(0, 0x000001_00 | AUDIO_STREAM_ID); // packet_start_code_prefix, stream_id
    pesView.setUint16(4, PES_HEADER_BYTES - 6 + group.payloadBytes); // PES_packet_length
    pesView.setUint8(6, 0x84); // '10', not scrambled, data_alignment_indicator: a frame starts the payload
    pesView.setUint8(7, 0x80); // PTS_DTS_flags = '10': PTS only
    pesView.setUint8(8, 5); // PES_header_data_length
    writeTimestamp(pesView, 9, 0b0010, pts);
    let length = PES_HEADER_BYTES;
    for (let index = group.start; index < group.end; index++) {
      pes.set(frames[index].data, length);
      length += frames[index].data.length;
    }
    let written = 0;
    for (let packet = plan; packet < plan + packets; packet++) {
      const chunk = this.planPayload[packet]!;
      const pcr = this.planPcr[packet]!;
      const first = written === 0 && chunk > 0;
      if (chunk === 0) {
        this.writePcrOnlyPacket(output, view, offset, pcr);
        offset = this.writeMetadataAfter(output, view, offset + TS_PACKET_SIZE, metadata, packet);
        continue;
      }
      const hasPcr = pcr !== NO_PCR;
      const capacity = hasPcr ? PCR_PACKET_CAPACITY : PACKET_CAPACITY;
      const stuffing = capacity - chunk;
      const adaptationBytes = (hasPcr ? PCR_ADAPTATION_BYTES : 0) + stuffing;
      this.writeHeader(view, offset, this.audioPid, first, adaptationBytes > 0);
      if (adaptationBytes > 0) {
        view.setUint8(offset + 4, adaptationBytes - 1); // adaptation_field_length
        // random_access_indicator where a PES (and so a frame) starts; PCR_flag
        if (adaptationBytes > 1) view.setUint8(offset + 5, (first ? 0x40 : 0) | (hasPcr ? 0x10 : 0));
        if (hasPcr) writePcr(view, offset + 6, pcr);
        const stuffingStart = offset + 4 + (hasPcr ? PCR_ADAPTATION_BYTES : Math.min(2, adaptationBytes));
        output.fill(0xff, stuffingStart, offset + 4 + adaptationBytes);
      }
      output.set(pes.subarray(written, written + chunk), offset + TS_PACKET_SIZE - chunk);
      written += chunk;
      offset = this.writeMetadataAfter(output, view, offset + TS_PACKET_SIZE, metadata, packet);
    }
    return offset;
  }

  /** The ID3 tag of `nowPlaying`, made once while it stays the same. */
  private tagOf(nowPlaying: NowPlaying): Uint8Array {
    if (this.lastTag?.nowPlaying !== nowPlaying) {
      const tag = nowPlayingId3Tag(nowPlaying);
      if (tag.length > MAX_PES_PAYLOAD_BYTES) throw new RangeError(`a ${tag.length}-byte ID3 tag cannot fit one PES`);
      this.lastTag = { nowPlaying, tag };
    }
    return this.lastTag.tag;
  }

  /**
   * One metadata PES (private_stream_1, PTS only, data_alignment_indicator: the payload starts
   * with the ID3 tag) in as many packets as it needs, the last filled up with adaptation
   * stuffing (§2.4.3.4). No PCR: the audio PID carries it.
   */
  private writeDataPes(output: Uint8Array, view: DataView, offset: number, pid: number, pts: number, payload: Uint8Array): number {
    // Its own bytes: it is written in the middle of an audio PES, which is in pesScratch.
    const pes = new Uint8Array(PES_HEADER_BYTES + payload.length);
    const pesView = new DataView(pes.buffer);
    pesView.setUint32(0, 0x000001_00 | PRIVATE_STREAM_1); // packet_start_code_prefix, stream_id
    pesView.setUint16(4, PES_HEADER_BYTES - 6 + payload.length); // PES_packet_length
    pesView.setUint8(6, 0x84); // '10', not scrambled, data_alignment_indicator
    pesView.setUint8(7, 0x80); // PTS_DTS_flags = '10': PTS only
    pesView.setUint8(8, 5); // PES_header_data_length
    writeTimestamp(pesView, 9, 0b0010, wrapPts(pts));
    pes.set(payload, PES_HEADER_BYTES);
    const pesBytes = PES_HEADER_BYTES + payload.length;
    for (let written = 0; written < pesBytes; offset += TS_PACKET_SIZE) {
      const chunk = Math.min(PACKET_CAPACITY, pesBytes - written);
      const stuffing = PACKET_CAPACITY - chunk;
      this.writeHeader(view, offset, pid, written === 0, stuffing > 0);
      if (stuffing > 0) {
        view.setUint8(offset + 4, stuffing - 1); // adaptation_field_length
        if (stuffing > 1) {
          view.setUint8(offset + 5, 0); // no flags
          output.fill(0xff, offset + 6, offset + 4 + stuffing);
        }
      }
      output.set(pes.subarray(written, written + chunk), offset + TS_PACKET_SIZE - chunk);
      written += chunk;
    }
    return offset;
  }

  /** A packet with only an adaptation field carrying a PCR: no payload, so its continuity_counter repeats the last one. */
  private writePcrOnlyPacket(output: Uint8Array, view: DataView, offset: number, pcr: number): void {
    const last = ((this.continuity.get(this.audioPid) ?? 0) + 15) & 0xf;
    view.setUint8(offset, TS_SYNC_BYTE);
    view.setUint16(offset + 1, this.audioPid);
    view.setUint8(offset + 3, 0x20 | last); // adaptation_field_control '10': adaptation field only
    view.setUint8(offset + 4, TS_PACKET_SIZE - TS_HEADER_BYTES - 1); // adaptation_field_length: the rest of the packet
    view.setUint8(offset + 5, 0x10); // PCR_flag
    writePcr(view, offset + 6, pcr);
    output.fill(0xff, offset + 4 + PCR_ADAPTATION_BYTES, offset + TS_PACKET_SIZE);
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

/** A metadata PES to write: its PTS and its payload (an ID3 tag). */
interface DataPes {
  pts: number;
  tag: Uint8Array;
}

/** In a metadata placement: before the first audio packet (a segment without audio). */
const NO_AUDIO_PACKET = -1;

interface FrameGroup {
  start: number;
  end: number;
  payloadBytes: number;
}

/** Packets one data PES of `payloadBytes` takes (its header and payload, 184 bytes a packet). */
function dataPesPackets(payloadBytes: number): number {
  return Math.ceil((PES_HEADER_BYTES + payloadBytes) / PACKET_CAPACITY);
}

/** One MPEG-TS muxer per rendition, with the ID3 timed-metadata stream: the packager's default. */
export const mpegTsMuxers: MuxerFactory = (_rendition, timing) => new TsSegmentMuxer({ segmentSeconds: timing?.segmentSeconds });

/** The earliest of three 90 kHz times near each other, across the wrap. */
function earliest(a: number, b: number, c: number): number {
  const first = ptsDelta(a, b) < 0 ? b : a;
  return ptsDelta(first, c) < 0 ? c : first;
}

/** A frame's duration in 90 kHz ticks: as given, or from its ADTS header; 0 when neither says. */
function frameTicks(frame: TimedAacFrame): number {
  if (frame.durationTicks !== undefined) return frame.durationTicks;
  const header = parseAdtsHeader(frame.data, 0);
  return header === null ? 0 : (header.samples * 90_000) / header.sampleRate;
}

/** Whether `next` starts where `previous` (of `nominal` ticks; 0: unknown) ends, ±1 tick. */
function followsOn(previous: TimedAacFrame, nominal: number, next: TimedAacFrame): boolean {
  if (nominal === 0) return true;
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

/**
 * The PMT: the AAC stream, and with `metadataPid` the ID3 stream and its descriptors, the
 * values Apple's timed-metadata spec gives (§2.3.2 there): format and application format
 * 0xff/0xffff with 'ID3 ' as both identifiers, metadata_service_id 0, no locator record, no
 * decoder configuration, no DSM-CC.
 */
function buildPmt(audioPid: number, metadataPid: number | undefined): Uint8Array {
  const pointerBytes = metadataPid === undefined ? 0 : 17;
  const metadataBytes = metadataPid === undefined ? 0 : 5 + 15;
  const body = new DataView(new ArrayBuffer(4 + pointerBytes + 5 + metadataBytes));
  body.setUint16(0, 0xe000 | audioPid); // reserved, PCR_PID
  body.setUint16(2, 0xf000 | pointerBytes); // reserved, program_info_length
  let offset = 4;
  if (metadataPid !== undefined) {
    body.setUint8(offset, METADATA_POINTER_DESCRIPTOR);
    body.setUint8(offset + 1, 15); // descriptor_length
    writeMetadataFormat(body, offset + 2);
    body.setUint8(offset + 14, 0x1f); // metadata_locator_record_flag 0, MPEG_carriage_flags 0 (same TS), reserved
    body.setUint16(offset + 15, PROGRAM_NUMBER); // the program the metadata belongs to
    offset += pointerBytes;
  }
  body.setUint8(offset, STREAM_TYPE_ADTS_AAC);
  body.setUint16(offset + 1, 0xe000 | audioPid); // reserved, elementary_PID
  body.setUint16(offset + 3, 0xf000); // reserved, ES_info_length 0
  offset += 5;
  if (metadataPid !== undefined) {
    body.setUint8(offset, STREAM_TYPE_METADATA_PES);
    body.setUint16(offset + 1, 0xe000 | metadataPid); // reserved, elementary_PID
    body.setUint16(offset + 3, 0xf000 | 15); // reserved, ES_info_length
    body.setUint8(offset + 5, METADATA_DESCRIPTOR);
    body.setUint8(offset + 6, 13); // descriptor_length
    writeMetadataFormat(body, offset + 7);
    body.setUint8(offset + 19, 0x0f); // decoder_config_flags 000, DSM-CC_flag 0, reserved
  }
  return buildSection(0x02, PROGRAM_NUMBER, new Uint8Array(body.buffer));
}

/**
 * metadata_application_format 0xffff, its identifier 'ID3 ', metadata_format 0xff, its
 * identifier 'ID3 ', metadata_service_id 0: the 12 bytes both metadata descriptors begin with.
 */
function writeMetadataFormat(view: DataView, offset: number): void {
  view.setUint16(offset, 0xffff);
  view.setUint32(offset + 2, ID3_FORMAT_IDENTIFIER);
  view.setUint8(offset + 6, 0xff);
  view.setUint32(offset + 7, ID3_FORMAT_IDENTIFIER);
  view.setUint8(offset + 11, 0); // metadata_service_id
}
