/**
 * Fragmented MP4 / CMAF muxer for one audio rendition (ISO/IEC 14496-12 fragments, ISO/IEC
 * 23000-19 CMAF tracks): the init segment (EXT-X-MAP) is ftyp + moov with one sound track
 * whose sample entry describes the codec (AAC or MP3 in `mp4a` + `esds`, ISO/IEC 14496-14
 * §5.6; Opus in `Opus` + `dOps`, FLAC in `fLaC` + `dfLa`, docs/architecture.md, "Opus and FLAC renditions");
 * every `muxSegment` call (a segment, or an LL-HLS part) is one CMAF chunk: optional `emsg`
 * boxes, then moof (mfhd, traf: tfhd, tfdt, trun) and mdat. Parts joined end to end are
 * a valid segment: consecutive fragments of the same track.
 *
 * Samples: AAC frames arrive as whole ADTS frames and go in as raw access units (the ADTS
 * header stripped; its fields make the AudioSpecificConfig); an MP3 rendition's chunks
 * (src/media/mpeg-audio.ts mp3Chunk) hold whole MP3 frames, each one sample; an Opus rendition's
 * chunks hold access units, each packet (control header stripped) one sample; a FLAC frame is one
 * sample, header included.
 *
 * Time: the media timescale is the sample rate and the decode time (tfdt, 64 bits) counts
 * samples. The first chunk anchors it at its PTS converted to samples; each later chunk
 * continues the count while its PTS is where the count says (a tick of rounding either side,
 * or, for MP3, within the first chunk's group), so the 2^33 PTS wrap never shows in tfdt;
 * a jump (input switch onto a new grid, a new run) re-anchors by the PTS distance.
 * docs/architecture.md, "CMAF container".
 */
import { parseAdtsHeader, sampleRateIndex } from './adts.js';
import { clearKeyPsshBox, sinfBox, type CbcsProtection } from './cbcs.js';
import { flacSpecificBoxBody, parseFlacFrameHeader } from './flac.js';
import { nowPlayingId3Tag } from './id3.js';
import { box, cString, descriptor, fourCc, fourCcCode, fullBox, packedLanguage, u16, u24, u32, u64, u8, UNITY_MATRIX, zeros, type BoxPart } from './mp4-boxes.js';
import { parseMpegAudioHeader } from './mpeg-audio.js';
import { forEachOpusPacket, LIBOPUS_PRE_SKIP, OPUS_SAMPLE_RATE, opusSpecificBoxBody } from './opus.js';
import type { Muxer, MuxerFactory, TimedFrame, TimedMetadata } from './muxer.js';
import type { NowPlaying } from './now-playing.js';
import { PTS_CLOCK_HZ, ptsAdd, ptsDelta, samplesToTicks, ticksToSamples } from './pts.js';

/** Codecs this muxer writes, each with its sample entry (see sampleEntry). */
export type Fmp4Codec = 'aac' | 'mp3' | 'opus' | 'flac';

/** What the init segment says about the one audio track. */
export interface AudioTrackFormat {
  codec: Fmp4Codec;
  sampleRate: number;
  channelCount: number;
  /** AAC: the MPEG-4 audio object type (2 = AAC-LC), sampling index and channel configuration of the ADTS header. */
  aac?: { objectType: number; samplingIndex: number; channelConfiguration: number };
  /** FLAC: bits per sample (16 or 24). */
  bitsPerSample?: number;
}

const TRACK_ID = 1;
/** mvhd's timescale: the movie header carries no durations (they are in the fragments). */
const MOVIE_TIMESCALE = 1000;
/** ISO/IEC 14496-1 Table 5, objectTypeIndication: 0x40 MPEG-4 audio, 0x6B MPEG-1 audio (Layer III included). */
const OBJECT_TYPE_MPEG4_AUDIO = 0x40;
const OBJECT_TYPE_MPEG1_AUDIO = 0x6b;
/** streamType 0x05 (AudioStream) << 2 | upStream 0 | reserved 1 (14496-1 §7.2.6.6). */
const AUDIO_STREAM_TYPE_BYTE = (0x05 << 2) | 1;
/** Descriptor tags (14496-1 Table 1). */
const ES_DESCRIPTOR_TAG = 0x03;
const DECODER_CONFIG_TAG = 0x04;
const DECODER_SPECIFIC_INFO_TAG = 0x05;
const SL_CONFIG_TAG = 0x06;
/** tfhd flags (14496-12 §8.8.7.1). */
const TFHD_DEFAULT_SAMPLE_DURATION = 0x000008;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
/** trun flags (§8.8.8.1). */
const TRUN_DATA_OFFSET = 0x000001;
const TRUN_SAMPLE_DURATION = 0x000100;
const TRUN_SAMPLE_SIZE = 0x000200;
/** AOM "Carriage of ID3 Timed Metadata in CMAF": emsg version 1 with this scheme. */
export const ID3_EMSG_SCHEME = 'https://aomedia.org/emsg/ID3';
/** emsg event_duration when unknown (ISO/IEC 23009-1 §5.10.3.3.4). */
const UNKNOWN_EVENT_DURATION = 0xffffffff;
/** size (4) and type (4) of the mdat box. */
const MDAT_HEADER_BYTES = 8;

/** The RFC 6381 CODECS value of a rendition: `mp4a.40.2` (AAC-LC; `mp4a.40.5` HE-AAC…) or `mp4a.40.34` (MP3). */
export function codecsAttribute(rendition: { codec?: string; aacObjectType?: number }): string {
  if (rendition.codec === 'mp3') return 'mp4a.40.34';
  // Apple's HLS authoring spec and the codecs registry: `opus` and `fLaC` (hls.js tries `flac` too for MSE).
  if (rendition.codec === 'opus') return 'opus';
  if (rendition.codec === 'flac') return 'fLaC';
  if (rendition.codec === undefined || rendition.codec === 'aac') return `mp4a.40.${rendition.aacObjectType ?? 2}`;
  throw new RangeError(`no fMP4 CODECS value for codec "${rendition.codec}"`);
}

/** The track format a frame implies (an ADTS frame for AAC, an MP3 chunk for MP3), or undefined if it has none. */
export function formatOfFrame(codec: Fmp4Codec, data: Uint8Array): AudioTrackFormat | undefined {
  if (codec === 'flac') {
    const header = parseFlacFrameHeader(data, 0);
    return header ? { codec, sampleRate: header.sampleRate, channelCount: header.channelCount, bitsPerSample: header.bitsPerSample } : undefined;
  }
  if (codec === 'opus') {
    // The TOC's stereo flag is the best a packet says (the configuration says better: formatFor).
    let channelCount = 0;
    forEachOpusPacket(data, (packet) => (channelCount ||= packet[0]! & 0x4 ? 2 : 1));
    return channelCount ? { codec, sampleRate: OPUS_SAMPLE_RATE, channelCount } : undefined;
  }
  if (codec === 'mp3') {
    const header = parseMpegAudioHeader(data, 0);
    return header ? { codec, sampleRate: header.sampleRate, channelCount: header.channelCount } : undefined;
  }
  const header = parseAdtsHeader(data, 0);
  if (!header) return undefined;
  return {
    codec,
    sampleRate: header.sampleRate,
    channelCount: header.channelCount,
    aac: { objectType: header.objectType, samplingIndex: header.samplingIndex, channelConfiguration: header.channelConfiguration },
  };
}

/**
 * The track format of a rendition known from its configuration (AAC meaning AAC-LC, as the
 * encoder makes it), so the init segment can exist before the first frame; undefined when
 * the rate or channel count is not one the codec's header can say.
 */
export function formatFor(codec: Fmp4Codec, sampleRate: number, channelCount: number, bitsPerSample = 16): AudioTrackFormat | undefined {
  if (codec === 'opus') return sampleRate === OPUS_SAMPLE_RATE && [1, 2].includes(channelCount) ? { codec, sampleRate, channelCount } : undefined;
  if (codec === 'flac') return sampleRate < 2 ** 20 && channelCount >= 1 && channelCount <= 8 && [16, 24].includes(bitsPerSample) ? { codec, sampleRate, channelCount, bitsPerSample } : undefined;
  if (codec === 'mp3') return [1, 2].includes(channelCount) && [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000].includes(sampleRate) ? { codec, sampleRate, channelCount } : undefined;
  const samplingIndex = sampleRateIndex(sampleRate);
  // channel_configuration 1–6 is that many channels, 7 is 8 (14496-3 Table 1.19).
  const channelConfiguration = channelCount === 8 ? 7 : channelCount >= 1 && channelCount <= 6 ? channelCount : -1;
  if (samplingIndex < 0 || channelConfiguration < 0) return undefined;
  return { codec, sampleRate, channelCount, aac: { objectType: 2, samplingIndex, channelConfiguration } };
}

/**
 * AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) for AAC-LC and the other GA object types:
 * audioObjectType (5), samplingFrequencyIndex (4), channelConfiguration (4), then
 * GASpecificConfig: frameLengthFlag 0 (1024), dependsOnCoreCoder 0, extensionFlag 0.
 */
export function audioSpecificConfig(aac: NonNullable<AudioTrackFormat['aac']>): Uint8Array {
  const bits = (aac.objectType << 11) | (aac.samplingIndex << 7) | (aac.channelConfiguration << 3);
  return Uint8Array.of(bits >> 8, bits & 0xff);
}

/** The `esds` box (14496-14 §5.6): ES_Descriptor → DecoderConfigDescriptor (+ DecoderSpecificInfo for AAC), SLConfigDescriptor. */
export function esdsBox(format: AudioTrackFormat): Uint8Array {
  const decoderSpecific: BoxPart[] = format.aac ? [descriptor(DECODER_SPECIFIC_INFO_TAG, audioSpecificConfig(format.aac))] : [];
  const decoderConfig = descriptor(
    DECODER_CONFIG_TAG,
    u8(format.codec === 'mp3' ? OBJECT_TYPE_MPEG1_AUDIO : OBJECT_TYPE_MPEG4_AUDIO),
    u8(AUDIO_STREAM_TYPE_BYTE),
    u24(0), // bufferSizeDB: unknown
    u32(0), // maxBitrate: unknown (the playlist's BANDWIDTH carries it)
    u32(0), // avgBitrate: 0 means variable or unknown
    ...decoderSpecific,
  );
  // ES_ID 0 (set by the file format), no stream dependence, URL or OCR stream; SL predefined 2 (MP4).
  const esDescriptor = descriptor(ES_DESCRIPTOR_TAG, u16(0), u8(0), decoderConfig, descriptor(SL_CONFIG_TAG, u8(2)));
  return fullBox('esds', 0, 0, esDescriptor);
}

/** AudioSampleEntry fields (14496-12 §12.2.3): reserved, data_reference_index 1, channels, sample size (16, FLAC's bits), rate as 16.16. */
function audioSampleEntry(type: string, format: AudioTrackFormat, ...children: Uint8Array[]): Uint8Array {
  return box(
    type,
    zeros(6),
    u16(1), // data_reference_index
    zeros(8), // reserved (version, revision, vendor)
    u16(format.channelCount),
    u16(format.codec === 'flac' ? format.bitsPerSample ?? 16 : 16), // samplesize
    u16(0), // pre_defined
    u16(0), // reserved
    u32(format.sampleRate < 0x10000 ? format.sampleRate * 0x10000 : 0),
    ...children,
  );
}

/**
 * `dOps` (Opus in ISOBMFF §4.3.2): libopus's PreSkip (FFmpeg's MP4 muxer copies it from the
 * encoder's OpusHead: 312 at 48 kHz), the input rate 48 kHz, no gain, mapping family 0.
 */
export function opusSpecificBox(format: AudioTrackFormat): Uint8Array {
  return box('dOps', opusSpecificBoxBody(format.channelCount, LIBOPUS_PRE_SKIP, OPUS_SAMPLE_RATE));
}

/** `dfLa` (FLAC in ISOBMFF §3.3.2): a full box holding the STREAMINFO block (fixed 1024-sample blocks). */
export function flacSpecificBox(format: AudioTrackFormat): Uint8Array {
  return fullBox('dfLa', 0, 0, flacSpecificBoxBody({ sampleRate: format.sampleRate, channelCount: format.channelCount, bitsPerSample: format.bitsPerSample ?? 16 }));
}

/**
 * The one sample entry of the track: `mp4a` + `esds` (AAC, MP3), `Opus` + `dOps`, `fLaC` + `dfLa`;
 * with a cbcs protection (AAC only), `enca` + `esds` + `sinf` (src/media/cbcs.ts).
 */
export function sampleEntry(format: AudioTrackFormat, protection?: CbcsProtection): Uint8Array {
  if (protection) {
    if (format.codec !== 'aac') throw new RangeError(`cbcs protection is written for AAC tracks only, not ${format.codec}`);
    return audioSampleEntry('enca', format, esdsBox(format), sinfBox('mp4a', protection));
  }
  switch (format.codec) {
    case 'aac':
    case 'mp3':
      return audioSampleEntry('mp4a', format, esdsBox(format));
    case 'opus':
      return audioSampleEntry('Opus', format, opusSpecificBox(format));
    case 'flac':
      return audioSampleEntry('fLaC', format, flacSpecificBox(format));
  }
}

/** ftyp: CMAF brands for AAC (`cmfc` track, ISO/IEC 23000-19 §7.2; `iso6` fragments with tfdt); MP3 is no CMAF media profile, so plain `iso6`. */
export function ftypBox(format: AudioTrackFormat): Uint8Array {
  // Opus and FLAC have no CMAF media profile of their own here either: plain `iso6` too.
  const brands = format.codec === 'aac' ? ['cmfc', 'iso6', 'mp41', 'dash'] : ['iso6', 'mp41', 'dash'];
  return box('ftyp', fourCc(brands[0]!), u32(0), ...brands.map(fourCc));
}

/**
 * The init segment: ftyp + moov (mvhd, trak, mvex/trex) with empty sample tables (§8.8.1: the
 * samples are in the fragments); with a cbcs protection, an `enca` sample entry and a ClearKey
 * `pssh` after mvex (docs/architecture.md, "Content encryption").
 */
export function initSegmentFor(format: AudioTrackFormat, protection?: CbcsProtection): Uint8Array {
  const mvhd = fullBox('mvhd', 0, 0,
    u32(0), u32(0), // creation and modification time
    u32(MOVIE_TIMESCALE), u32(0), // timescale, duration (unknown: live)
    u32(0x00010000), u16(0x0100), zeros(10), // rate 1.0, volume 1.0, reserved
    UNITY_MATRIX, zeros(24), // matrix, pre_defined
    u32(TRACK_ID + 1)); // next_track_ID
  // tkhd flags: track_enabled | track_in_movie; an audio track's volume is 1.0, its size 0×0.
  const tkhd = fullBox('tkhd', 0, 0x3, u32(0), u32(0), u32(TRACK_ID), u32(0), u32(0), zeros(8), u16(0), u16(0), u16(0x0100), u16(0), UNITY_MATRIX, u32(0), u32(0));
  const mdhd = fullBox('mdhd', 0, 0, u32(0), u32(0), u32(format.sampleRate), u32(0), u16(packedLanguage('und')), u16(0));
  const hdlr = fullBox('hdlr', 0, 0, u32(0), fourCc('soun'), zeros(12), cString('SoundHandler'));
  const smhd = fullBox('smhd', 0, 0, u16(0), u16(0)); // balance, reserved
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 0x1))); // media in this file
  const stbl = box('stbl',
    fullBox('stsd', 0, 0, u32(1), sampleEntry(format, protection)),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0), u32(0)),
    fullBox('stco', 0, 0, u32(0)));
  const trak = box('trak', tkhd, box('mdia', mdhd, hdlr, box('minf', smhd, dinf, stbl)));
  // trex: sample description 1, no default duration or size (each tfhd/trun says), flags 0 (sync samples).
  const mvex = box('mvex', fullBox('trex', 0, 0, u32(TRACK_ID), u32(1), u32(0), u32(0), u32(0)));
  const moov = protection ? box('moov', mvhd, trak, mvex, clearKeyPsshBox([protection.keyId])) : box('moov', mvhd, trak, mvex);
  const ftyp = ftypBox(format);
  const init = new Uint8Array(ftyp.length + moov.length);
  init.set(ftyp);
  init.set(moov, ftyp.length);
  return init;
}

/**
 * The samples of one timed frame, appended to the caller's scratch arrays (no object per
 * sample: this runs for every frame): the raw AAC access unit of an ADTS frame, or each MP3
 * frame of a chunk, as a view into the frame, and its duration in samples.
 */
function samplesOf(codec: Fmp4Codec, data: Uint8Array, views: Uint8Array[], durations: number[]): void {
  if (codec === 'flac') {
    const header = parseFlacFrameHeader(data, 0);
    if (header) {
      views.push(data);
      durations.push(header.blockSize);
    }
    return;
  }
  if (codec === 'opus') {
    forEachOpusPacket(data, (packet, samples) => {
      views.push(packet);
      durations.push(samples);
    });
    return;
  }
  if (codec === 'aac') {
    const header = parseAdtsHeader(data, 0);
    // One raw data block per frame, as FFmpeg writes (several blocks would be several samples; their positions are in the CRC'd header only).
    if (header) {
      views.push(data.subarray(header.headerLength, Math.min(header.frameLength, data.length)));
      durations.push(header.samples);
    }
    return;
  }
  for (let offset = 0; offset < data.length; ) {
    const header = parseMpegAudioHeader(data, offset);
    if (!header || offset + header.frameLength > data.length) return;
    views.push(data.subarray(offset, offset + header.frameLength));
    durations.push(header.samples);
    offset += header.frameLength;
  }
}

/** Box types of the movie fragment and mdat, as the 32-bit numbers written in their headers. */
const MOOF = fourCcCode('moof');
const MFHD = fourCcCode('mfhd');
const TRAF = fourCcCode('traf');
const TFHD = fourCcCode('tfhd');
const TFDT = fourCcCode('tfdt');
const TRUN = fourCcCode('trun');
const MDAT = fourCcCode('mdat');
const MFHD_BYTES = 16;
const TFDT_V1_BYTES = 20;
const MAX_UINT32 = 0xffffffff;

/** Whether every duration equals the first (true for none): trun then leaves them to tfhd's default. */
function constantDurations(durations: readonly number[]): boolean {
  for (let index = 1; index < durations.length; index += 1) if (durations[index] !== durations[0]) return false;
  return true;
}

/** The size of the moof `writeMoof` writes for `count` samples. */
function moofSize(count: number, constant: boolean): number {
  const tfhdBytes = 12 + 4 + (constant && count > 0 ? 4 : 0);
  const trunBytes = 12 + 4 + 4 + (constant ? 4 : 8) * count;
  return 8 + MFHD_BYTES + 8 + tfhdBytes + TFDT_V1_BYTES + trunBytes;
}

function writeBoxHeader(view: DataView, offset: number, size: number, type: number): void {
  view.setUint32(offset, size);
  view.setUint32(offset + 4, type);
}

function writeFullBoxHeader(view: DataView, offset: number, size: number, type: number, version: number, flags: number): void {
  writeBoxHeader(view, offset, size, type);
  view.setUint32(offset + 8, ((version << 24) | (flags & 0xffffff)) >>> 0);
}

/**
 * The movie fragment (14496-12 §8.8.4), written in place at `offset` of `view` (which has
 * `moofSize` bytes there): mfhd, then a traf with tfhd (default-base-is-moof, and the default
 * sample duration when all are equal), tfdt (version 1) and trun (data offset, each sample's
 * size, and its duration unless constant). Returns the offset after the moof.
 */
function writeMoof(view: DataView, offset: number, sequenceNumber: number, baseMediaDecodeTime: number, durations: readonly number[], sizes: readonly number[]): number {
  if (!Number.isSafeInteger(sequenceNumber) || sequenceNumber < 0 || sequenceNumber > MAX_UINT32) throw new RangeError(`${sequenceNumber} does not fit in 4 unsigned bytes`);
  if (!Number.isSafeInteger(baseMediaDecodeTime) || baseMediaDecodeTime < 0) throw new RangeError(`${baseMediaDecodeTime} does not fit in 8 unsigned bytes`);
  const count = sizes.length;
  const constant = constantDurations(durations);
  const moofBytes = moofSize(count, constant);
  const defaultDuration = constant && count > 0;
  const tfhdBytes = 12 + 4 + (defaultDuration ? 4 : 0);
  const trunBytes = 12 + 4 + 4 + (constant ? 4 : 8) * count;
  let at = offset;
  writeBoxHeader(view, at, moofBytes, MOOF);
  at += 8;
  writeFullBoxHeader(view, at, MFHD_BYTES, MFHD, 0, 0);
  view.setUint32(at + 12, sequenceNumber);
  at += MFHD_BYTES;
  writeBoxHeader(view, at, moofBytes - 8 - MFHD_BYTES, TRAF);
  at += 8;
  writeFullBoxHeader(view, at, tfhdBytes, TFHD, 0, TFHD_DEFAULT_BASE_IS_MOOF | (defaultDuration ? TFHD_DEFAULT_SAMPLE_DURATION : 0));
  view.setUint32(at + 12, TRACK_ID);
  if (defaultDuration) view.setUint32(at + 16, durations[0]!);
  at += tfhdBytes;
  writeFullBoxHeader(view, at, TFDT_V1_BYTES, TFDT, 1, 0);
  view.setUint32(at + 12, Math.floor(baseMediaDecodeTime / 2 ** 32));
  view.setUint32(at + 16, baseMediaDecodeTime % 2 ** 32);
  at += TFDT_V1_BYTES;
  writeFullBoxHeader(view, at, trunBytes, TRUN, 0, TRUN_DATA_OFFSET | TRUN_SAMPLE_SIZE | (constant ? 0 : TRUN_SAMPLE_DURATION));
  view.setUint32(at + 12, count);
  // The data offset counts from the moof's first byte (default-base-is-moof) to the first sample, past the mdat header.
  view.setInt32(at + 16, moofBytes + MDAT_HEADER_BYTES);
  at += 20;
  for (let index = 0; index < count; index += 1) {
    if (!constant) {
      view.setUint32(at, durations[index]!);
      at += 4;
    }
    view.setUint32(at, sizes[index]!);
    at += 4;
  }
  return at;
}

/** The movie fragment (14496-12 §8.8.4) as its own bytes: what `muxSegment` writes before the mdat. */
export function moofBox(sequenceNumber: number, baseMediaDecodeTime: number, samples: readonly { size: number; duration: number }[]): Uint8Array {
  const durations = samples.map((sample) => sample.duration);
  const sizes = samples.map((sample) => sample.size);
  const bytes = new Uint8Array(moofSize(samples.length, constantDurations(durations)));
  writeMoof(new DataView(bytes.buffer), 0, sequenceNumber, baseMediaDecodeTime, durations, sizes);
  return bytes;
}

/** An `emsg` version 1 (ISO/IEC 23009-1 §5.10.3.3) carrying an ID3 tag at `presentationTime` (track timescale). */
export function id3EmsgBox(timescale: number, presentationTime: number, id: number, tag: Uint8Array): Uint8Array {
  return fullBox('emsg', 1, 0, u32(timescale), u64(presentationTime), u32(UNKNOWN_EVENT_DURATION), u32(id), cString(ID3_EMSG_SCHEME), cString(''), tag);
}

export interface Fmp4MuxerOptions {
  codec?: Fmp4Codec;
  /** The track format, when known before the first frame (else the first frame's header gives it). */
  format?: AudioTrackFormat;
  /** Whether `muxSegment` writes timed metadata as ID3 `emsg` boxes; default true. */
  timedMetadata?: boolean;
}

export class Fmp4Muxer implements Muxer {
  private readonly codec: Fmp4Codec;
  private readonly timedMetadata: boolean;
  private format: AudioTrackFormat | undefined;
  private sequenceNumber = 0;
  private eventId = 0;
  /** The decode timeline: where it was anchored (PTS and decode time) and the samples written since. */
  private anchorPts: number | undefined;
  private anchorDecodeTime = 0;
  private samplesSinceAnchor = 0;
  /** Scratch of `muxSegment`, reused from call to call: each sample's bytes (a view into its frame), duration and size. */
  private readonly sampleViews: Uint8Array[] = [];
  private readonly sampleDurations: number[] = [];
  private readonly sampleSizes: number[] = [];
  private lastTag: { nowPlaying: NowPlaying; tag: Uint8Array } | undefined;

  constructor(options: Fmp4MuxerOptions = {}) {
    this.codec = options.format?.codec ?? options.codec ?? 'aac';
    this.format = options.format;
    this.timedMetadata = options.timedMetadata ?? true;
  }

  /** The init segment; the format comes from the options or the first frame muxed, so before either there is none. */
  initSegment(protection?: CbcsProtection): Uint8Array {
    if (!this.format) throw new RangeError('the fMP4 init segment needs the track format: mux a frame first or pass `format`');
    return initSegmentFor(this.format, protection);
  }

  /** The track format, once known. */
  trackFormat(): AudioTrackFormat | undefined {
    return this.format;
  }

  /** The decode time (samples) the next chunk continues from, once the timeline has begun. */
  nextDecodeTime(): number | undefined {
    return this.anchorPts === undefined ? undefined : this.anchorDecodeTime + this.samplesSinceAnchor;
  }

  /**
   * One CMAF chunk: an `emsg` per timed metadata event, moof, mdat; written into one buffer of
   * the chunk's size, with no object per sample (this runs for every segment and part).
   */
  muxSegment(frames: readonly TimedFrame[], metadata: readonly TimedMetadata[] = []): Uint8Array {
    const views = this.sampleViews;
    const durations = this.sampleDurations;
    const sizes = this.sampleSizes;
    let first: TimedFrame | undefined;
    for (const frame of frames) {
      const before = views.length;
      samplesOf(this.codec, frame.data, views, durations);
      if (views.length > before && !first) {
        first = frame;
        this.format ??= formatOfFrame(this.codec, frame.data);
      }
    }
    let payloadBytes = 0;
    for (let index = 0; index < views.length; index += 1) {
      const size = views[index]!.length;
      sizes.push(size);
      payloadBytes += size;
    }
    const sampleRate = this.format?.sampleRate ?? 0;
    const decodeTime = first && sampleRate > 0 ? this.decodeTimeOf(first, sampleRate) : this.nextDecodeTime() ?? 0;
    const emsgs = this.timedMetadata && sampleRate > 0 && metadata.length > 0 ? this.emsgsFor(metadata, first ?? frames[0], decodeTime, sampleRate) : [];
    this.sequenceNumber += 1;
    let emsgBytes = 0;
    for (const emsg of emsgs) emsgBytes += emsg.length;
    const moofBytes = moofSize(views.length, constantDurations(durations));
    const chunk = new Uint8Array(emsgBytes + moofBytes + MDAT_HEADER_BYTES + payloadBytes);
    const view = new DataView(chunk.buffer);
    let offset = 0;
    for (const emsg of emsgs) {
      chunk.set(emsg, offset);
      offset += emsg.length;
    }
    try {
      offset = writeMoof(view, offset, this.sequenceNumber, decodeTime, durations, sizes);
      writeBoxHeader(view, offset, MDAT_HEADER_BYTES + payloadBytes, MDAT);
      offset += MDAT_HEADER_BYTES;
      for (let index = 0; index < views.length; index += 1) {
        const sample = views[index]!;
        chunk.set(sample, offset);
        offset += sample.length;
        this.samplesSinceAnchor += durations[index]!;
      }
    } finally {
      // Drop the views, so the scratch holds no frame's bytes between calls.
      views.length = 0;
      durations.length = 0;
      sizes.length = 0;
    }
    return chunk;
  }

  /**
   * The decode time of the chunk whose first sample comes from `frame`: the count so far while
   * `frame`'s PTS is where the count says (±1 tick of rounding; an MP3 chunk's first frame
   * starts anywhere in its group), else re-anchored at `frame`'s PTS.
   */
  private decodeTimeOf(frame: TimedFrame, sampleRate: number): number {
    if (this.anchorPts === undefined) {
      this.anchor(frame.pts, ticksToSamples(Math.max(0, frame.pts), sampleRate));
      return this.anchorDecodeTime;
    }
    const expected = ptsAdd(this.anchorPts, samplesToTicks(this.samplesSinceAnchor, sampleRate));
    const span = this.codec === 'mp3' || this.codec === 'opus' ? (frame.durationTicks ?? 0) + 1 : 2;
    const late = ptsDelta(frame.pts, expected);
    const counted = this.anchorDecodeTime + this.samplesSinceAnchor;
    if (late >= -1 && late < span) return counted;
    // A jump: move the timeline by the PTS distance (never below 0: tfdt is unsigned).
    this.anchor(frame.pts, Math.max(0, counted - Math.round((late * sampleRate) / PTS_CLOCK_HZ)));
    return this.anchorDecodeTime;
  }

  private anchor(pts: number, decodeTime: number): void {
    this.anchorPts = pts;
    this.anchorDecodeTime = decodeTime;
    this.samplesSinceAnchor = 0;
  }

  /** An ID3 `emsg` per event, at its PTS's place on the decode timeline of this chunk. */
  private emsgsFor(metadata: readonly TimedMetadata[], first: TimedFrame | undefined, decodeTime: number, sampleRate: number): Uint8Array[] {
    return metadata.map((event) => {
      const offsetTicks = first ? ptsDelta(first.pts, event.pts) : 0;
      const time = Math.max(0, decodeTime + Math.round((offsetTicks * sampleRate) / PTS_CLOCK_HZ));
      this.eventId = (this.eventId + 1) % 0x100000000;
      return id3EmsgBox(sampleRate, time, this.eventId, this.tagOf(event.nowPlaying));
    });
  }

  private tagOf(nowPlaying: NowPlaying): Uint8Array {
    if (this.lastTag?.nowPlaying !== nowPlaying) this.lastTag = { nowPlaying, tag: nowPlayingId3Tag(nowPlaying) };
    return this.lastTag.tag;
  }
}

/**
 * The fMP4 muxer of a rendition by its codec (AAC when absent); with its sample rate and
 * channel count (a configured rendition has both) the init segment is ready before any frame.
 */
export function fmp4MuxerFor(rendition: { id: string; codec?: string; sampleRate?: number; channelCount?: number; bitDepth?: number }): Fmp4Muxer {
  const codec = rendition.codec ?? 'aac';
  if (codec !== 'aac' && codec !== 'mp3' && codec !== 'opus' && codec !== 'flac') throw new RangeError(`the fMP4 muxer does not write codec "${codec}"`);
  const format = rendition.sampleRate && rendition.channelCount ? formatFor(codec, rendition.sampleRate, rendition.channelCount, rendition.bitDepth) : undefined;
  return new Fmp4Muxer(format ? { format } : { codec });
}

/** The fMP4 muxer of each rendition by its codec: `fmp4MuxerFor` as a `MuxerFactory`. */
export const fmp4Muxers: MuxerFactory = (rendition) => fmp4MuxerFor(rendition);
