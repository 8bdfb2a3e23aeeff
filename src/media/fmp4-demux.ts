/**
 * Reads back what src/media/fmp4-muxer.ts (or any fragmented MP4 audio writer) makes, for
 * progressive mounts on fMP4 channels (docs/architecture.md, "Progressive mounts on fMP4 channels"):
 * the init segment's one sound track (ISO/IEC 14496-12 moov/trak, mdhd timescale,
 * trex defaults, the `mp4a` sample entry's `esds`, ISO/IEC 14496-14 §5.6, with the
 * AudioSpecificConfig of ISO/IEC 14496-3 §1.6.2.1), and the samples of a CMAF chunk or
 * segment (moof: traf with tfhd and trun, §8.8.7–8.8.8, the bytes in mdat).
 *
 * Pure and bounded: sizes, counts and offsets are checked against the bytes at hand (a
 * truncated or hostile box ends the walk and is counted in `skippedBytes`); nothing throws on
 * input. Samples are views into the bytes, no copy.
 */

/** The sound track an init segment describes. */
export interface Fmp4Track {
  trackId: number;
  /** `aac` for MPEG-4/MPEG-2 AAC (objectTypeIndication 0x40, 0x66–0x68), `mp3` for MPEG-1/2 audio (0x6B, 0x69). */
  codec: 'aac' | 'mp3';
  /** mdhd's timescale (the sample rate in onair's fragments). */
  timescale: number;
  channelCount: number;
  sampleRate: number;
  /** AAC: what an ADTS header can say (the core object type, rate index and channel configuration), undefined if it cannot. */
  adts?: { objectType: number; samplingIndex: number; channelConfiguration: number };
  /** trex defaults (§8.8.3): used where tfhd and trun say nothing. */
  defaultSampleDuration: number;
  defaultSampleSize: number;
}

export interface Fmp4Sample {
  data: Uint8Array;
  /** In the track's timescale. */
  duration: number;
}

export interface Fmp4Samples {
  samples: Fmp4Sample[];
  skippedBytes: number;
}

const BOX_HEADER_BYTES = 8;
/** AudioSampleEntry's fields before its child boxes (§12.2.3): 6 reserved, data_reference_index, 8 reserved, channelcount, samplesize, pre_defined, reserved, samplerate. */
const AUDIO_SAMPLE_ENTRY_FIELDS = 28;
/** ISO/IEC 14496-1 Table 1 descriptor tags. */
const ES_DESCRIPTOR_TAG = 0x03;
const DECODER_CONFIG_TAG = 0x04;
const DECODER_SPECIFIC_INFO_TAG = 0x05;
/** objectTypeIndication (14496-1 Table 5): MPEG-4 audio, MPEG-2 AAC Main/LC/SSR, MPEG-2 and MPEG-1 audio. */
const AAC_OBJECT_TYPE_INDICATIONS = new Set([0x40, 0x66, 0x67, 0x68]);
const MPEG_AUDIO_OBJECT_TYPE_INDICATIONS = new Set([0x69, 0x6b]);
/** MPEG-2 AAC objectTypeIndications (Main, LC, SSR) → object types 1–3. */
const MPEG2_AAC_OBJECT_TYPES: Record<number, number> = { 0x66: 1, 0x67: 2, 0x68: 3 };
/** 14496-3 Table 1.18. */
const SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
/** Audio object types of SBR and PS (HE-AAC v1, v2): the core's type follows in the config. */
const AOT_SBR = 5;
const AOT_PS = 29;
/** tfhd flags (§8.8.7.1). */
const TFHD_BASE_DATA_OFFSET = 0x000001;
const TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002;
const TFHD_DEFAULT_SAMPLE_DURATION = 0x000008;
const TFHD_DEFAULT_SAMPLE_SIZE = 0x000010;
const TFHD_DEFAULT_SAMPLE_FLAGS = 0x000020;
/** trun flags (§8.8.8.1). */
const TRUN_DATA_OFFSET = 0x000001;
const TRUN_FIRST_SAMPLE_FLAGS = 0x000004;
const TRUN_SAMPLE_DURATION = 0x000100;
const TRUN_SAMPLE_SIZE = 0x000200;
const TRUN_SAMPLE_FLAGS = 0x000400;
const TRUN_SAMPLE_COMPOSITION_OFFSET = 0x000800;

interface Box {
  type: string;
  /** The box's first byte (its header) and the byte after it, in the walked bytes. */
  start: number;
  end: number;
  /** Where the body starts (after size, type and any largesize). */
  body: number;
}

/**
 * The boxes of `bytes[from, to)`, in order; the walk stops at the first header that does not
 * fit (the bytes left are reported as `rest`).
 */
function boxesIn(bytes: Uint8Array, from: number, to: number): { boxes: Box[]; rest: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boxes: Box[] = [];
  let offset = from;
  while (to - offset >= BOX_HEADER_BYTES) {
    let size = view.getUint32(offset);
    let body = offset + BOX_HEADER_BYTES;
    if (size === 1) {
      if (to - offset < 16) break;
      const high = view.getUint32(offset + 8);
      size = high >= 0x200000 ? Number.MAX_SAFE_INTEGER : high * 2 ** 32 + view.getUint32(offset + 12);
      body = offset + 16;
    } else if (size === 0) {
      size = to - offset; // to the end
    }
    if (size < body - offset || size > to - offset) break;
    const type = String.fromCharCode(bytes[offset + 4]!, bytes[offset + 5]!, bytes[offset + 6]!, bytes[offset + 7]!);
    boxes.push({ type, start: offset, end: offset + size, body });
    offset += size;
  }
  return { boxes, rest: to - offset };
}

function child(bytes: Uint8Array, parent: Box | undefined, type: string, skip = 0): Box | undefined {
  if (!parent) return undefined;
  return boxesIn(bytes, parent.body + skip, parent.end).boxes.find((box) => box.type === type);
}

function children(bytes: Uint8Array, parent: Box, type: string): Box[] {
  return boxesIn(bytes, parent.body, parent.end).boxes.filter((box) => box.type === type);
}

/** A bounds-checked big-endian reader over `bytes[start, end)`; reads past the end give undefined. */
class Cursor {
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array, public offset: number, readonly end: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  has(count: number): boolean {
    return count >= 0 && this.end - this.offset >= count;
  }
  u8(): number | undefined {
    if (!this.has(1)) return undefined;
    return this.bytes[this.offset++]!;
  }
  u16(): number | undefined {
    if (!this.has(2)) return undefined;
    const value = this.view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }
  u32(): number | undefined {
    if (!this.has(4)) return undefined;
    const value = this.view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }
  i32(): number | undefined {
    if (!this.has(4)) return undefined;
    const value = this.view.getInt32(this.offset);
    this.offset += 4;
    return value;
  }
  u64(): number | undefined {
    const high = this.u32();
    const low = this.u32();
    return high === undefined || low === undefined ? undefined : high * 2 ** 32 + low;
  }
  skip(count: number): boolean {
    if (!this.has(count)) return false;
    this.offset += count;
    return true;
  }
}

/** A full box's version and flags, and a cursor on the rest of its body. */
function fullBoxCursor(bytes: Uint8Array, box: Box): { version: number; flags: number; cursor: Cursor } | undefined {
  const cursor = new Cursor(bytes, box.body, box.end);
  const word = cursor.u32();
  return word === undefined ? undefined : { version: word >>> 24, flags: word & 0xffffff, cursor };
}

/** The init segment's first sound track (`hdlr` `soun`, an `mp4a` sample entry), or undefined when it has none onair can read. */
export function parseInitSegment(bytes: Uint8Array): Fmp4Track | undefined {
  const moov = boxesIn(bytes, 0, bytes.length).boxes.find((box) => box.type === 'moov');
  if (!moov) return undefined;
  const trexes = (() => {
    const mvex = child(bytes, moov, 'mvex');
    return mvex ? children(bytes, mvex, 'trex') : [];
  })();
  for (const trak of children(bytes, moov, 'trak')) {
    const track = soundTrack(bytes, trak, trexes);
    if (track) return track;
  }
  return undefined;
}

function soundTrack(bytes: Uint8Array, trak: Box, trexes: Box[]): Fmp4Track | undefined {
  const tkhd = child(bytes, trak, 'tkhd');
  const mdia = child(bytes, trak, 'mdia');
  const mdhd = child(bytes, mdia, 'mdhd');
  const hdlr = child(bytes, mdia, 'hdlr');
  const stsd = child(bytes, child(bytes, child(bytes, mdia, 'minf'), 'stbl'), 'stsd');
  if (!tkhd || !mdhd || !hdlr || !stsd) return undefined;
  // hdlr: version/flags, pre_defined, handler_type.
  const handler = fullBoxCursor(bytes, hdlr);
  if (!handler?.cursor.skip(4) || handler.cursor.u32() !== 0x736f756e /* soun */) return undefined;
  const header = fullBoxCursor(bytes, tkhd);
  if (!header || !header.cursor.skip(header.version === 1 ? 16 : 8)) return undefined;
  const trackId = header.cursor.u32();
  const media = fullBoxCursor(bytes, mdhd);
  if (!media || !media.cursor.skip(media.version === 1 ? 16 : 8)) return undefined;
  const timescale = media.cursor.u32();
  if (trackId === undefined || !timescale) return undefined;
  // stsd: version/flags, entry_count, then the entries; the first mp4a is the one onair writes.
  const mp4a = child(bytes, stsd, 'mp4a', 4 + 4);
  if (!mp4a) return undefined;
  const entry = new Cursor(bytes, mp4a.body, mp4a.end);
  if (!entry.skip(16)) return undefined;
  const channelCount = entry.u16();
  if (channelCount === undefined || !entry.skip(6)) return undefined;
  const entryRate = (entry.u32() ?? 0) >>> 16;
  const esds = child(bytes, mp4a, 'esds', AUDIO_SAMPLE_ENTRY_FIELDS);
  const decoder = esds ? decoderConfig(bytes, esds) : undefined;
  if (!decoder) return undefined;
  const defaults = trackDefaults(bytes, trexes, trackId);
  const common = { trackId, timescale, channelCount, sampleRate: entryRate || timescale, ...defaults };
  if (MPEG_AUDIO_OBJECT_TYPE_INDICATIONS.has(decoder.objectTypeIndication)) return { ...common, codec: 'mp3' };
  if (!AAC_OBJECT_TYPE_INDICATIONS.has(decoder.objectTypeIndication)) return undefined;
  const config = decoder.specific ? audioSpecificConfig(decoder.specific) : undefined;
  if (decoder.objectTypeIndication === 0x40 && config?.objectType === 34) return { ...common, codec: 'mp3' };
  // No config (a writer that had none yet, as FFmpeg's empty_moov from ADTS): the sample entry's rate and channels, AAC-LC or the MPEG-2 profile.
  const assumed = config ?? { objectType: MPEG2_AAC_OBJECT_TYPES[decoder.objectTypeIndication] ?? 2, samplingIndex: sampleRateIndexOf(common.sampleRate), sampleRate: common.sampleRate, channelConfiguration: channelCount === 8 ? 7 : channelCount };
  return { ...common, codec: 'aac', ...adtsFields(assumed, channelCount) };
}

function trackDefaults(bytes: Uint8Array, trexes: Box[], trackId: number): { defaultSampleDuration: number; defaultSampleSize: number } {
  for (const trex of trexes) {
    const full = fullBoxCursor(bytes, trex);
    if (!full || full.cursor.u32() !== trackId) continue;
    full.cursor.skip(4); // default_sample_description_index
    return { defaultSampleDuration: full.cursor.u32() ?? 0, defaultSampleSize: full.cursor.u32() ?? 0 };
  }
  return { defaultSampleDuration: 0, defaultSampleSize: 0 };
}

/** An expandable descriptor length (14496-1 §8.3.3): up to four bytes of 7 bits. */
function descriptorLength(cursor: Cursor): number | undefined {
  let length = 0;
  for (let count = 0; count < 4; count++) {
    const byte = cursor.u8();
    if (byte === undefined) return undefined;
    length = (length << 7) | (byte & 0x7f);
    if ((byte & 0x80) === 0) return length;
  }
  return undefined;
}

/** esds → ES_Descriptor → DecoderConfigDescriptor: its objectTypeIndication and DecoderSpecificInfo bytes. */
function decoderConfig(bytes: Uint8Array, esds: Box): { objectTypeIndication: number; specific?: Uint8Array } | undefined {
  const full = fullBoxCursor(bytes, esds);
  if (!full) return undefined;
  const cursor = full.cursor;
  if (cursor.u8() !== ES_DESCRIPTOR_TAG) return undefined;
  const esLength = descriptorLength(cursor);
  if (esLength === undefined || !cursor.has(esLength)) return undefined;
  const es = new Cursor(bytes, cursor.offset, cursor.offset + esLength);
  es.skip(2); // ES_ID
  const flags = es.u8() ?? 0;
  if (flags & 0x80) es.skip(2); // dependsOn_ES_ID
  if (flags & 0x40) es.skip(es.u8() ?? 0); // URLstring
  if (flags & 0x20) es.skip(2); // OCR_ES_Id
  while (es.has(2)) {
    const tag = es.u8()!;
    const length = descriptorLength(es);
    if (length === undefined || !es.has(length)) return undefined;
    if (tag !== DECODER_CONFIG_TAG) {
      es.skip(length);
      continue;
    }
    const config = new Cursor(bytes, es.offset, es.offset + length);
    const objectTypeIndication = config.u8();
    if (objectTypeIndication === undefined || !config.skip(12)) return undefined;
    while (config.has(2)) {
      const innerTag = config.u8()!;
      const innerLength = descriptorLength(config);
      if (innerLength === undefined || !config.has(innerLength)) break;
      if (innerTag === DECODER_SPECIFIC_INFO_TAG) return { objectTypeIndication, specific: bytes.subarray(config.offset, config.offset + innerLength) };
      config.skip(innerLength);
    }
    return { objectTypeIndication };
  }
  return undefined;
}

/** The sampling index of a rate, or 15 (explicit) when the table has none. */
function sampleRateIndexOf(rate: number): number {
  const index = SAMPLE_RATES.indexOf(rate);
  return index < 0 ? 15 : index;
}

/** A big-endian bit reader over a few bytes; reading past the end gives undefined. */
function bitReader(bytes: Uint8Array): (count: number) => number | undefined {
  let position = 0;
  return (count) => {
    if (position + count > bytes.length * 8) return undefined;
    let value = 0;
    for (let bit = 0; bit < count; bit++, position++) value = value * 2 + ((bytes[position >> 3]! >> (7 - (position & 7))) & 1);
    return value;
  };
}

/**
 * AudioSpecificConfig (14496-3 §1.6.2.1): the object type (escape 31 → 32 + 6 bits), the
 * sampling index (15 → an explicit 24-bit rate) and channel configuration; for SBR/PS
 * (HE-AAC), the core's object type that follows the extension rate.
 */
export function audioSpecificConfig(bytes: Uint8Array): { objectType: number; samplingIndex: number; sampleRate: number; channelConfiguration: number } | undefined {
  const read = bitReader(bytes);
  const objectTypeOf = (): number | undefined => {
    const type = read(5);
    if (type !== 31) return type;
    const extended = read(6);
    return extended === undefined ? undefined : 32 + extended;
  };
  const rateOf = (): { index: number; rate: number } | undefined => {
    const index = read(4);
    if (index === undefined) return undefined;
    if (index !== 15) return { index, rate: SAMPLE_RATES[index] ?? 0 };
    const rate = read(24);
    return rate === undefined ? undefined : { index, rate };
  };
  let objectType = objectTypeOf();
  const rate = rateOf();
  const channelConfiguration = read(4);
  if (objectType === undefined || rate === undefined || channelConfiguration === undefined) return undefined;
  if (objectType === AOT_SBR || objectType === AOT_PS) {
    if (rateOf() === undefined) return undefined; // extensionSamplingFrequencyIndex: ADTS carries the core rate (implicit SBR)
    objectType = objectTypeOf();
    if (objectType === undefined) return undefined;
  }
  return { objectType, samplingIndex: rate.index, sampleRate: rate.rate, channelConfiguration };
}

/** The ADTS fields of a config, when ADTS can carry it: object types 1–4, a table rate, channel configuration 1–7. */
function adtsFields(config: NonNullable<ReturnType<typeof audioSpecificConfig>>, channelCount: number): Pick<Fmp4Track, 'adts' | 'sampleRate' | 'channelCount'> | Record<string, never> {
  const within = (value: number, low: number, high: number): boolean => Number.isInteger(value) && value >= low && value <= high;
  if (!within(config.objectType, 1, 4) || !within(config.samplingIndex, 0, SAMPLE_RATES.length - 1) || !within(config.channelConfiguration, 1, 7)) return {};
  const channels = config.channelConfiguration === 7 ? 8 : config.channelConfiguration;
  return {
    adts: { objectType: config.objectType, samplingIndex: config.samplingIndex, channelConfiguration: config.channelConfiguration },
    sampleRate: config.sampleRate,
    channelCount: channels || channelCount,
  };
}

/**
 * The samples of `track` in a fragment (one or more moof + mdat, `emsg` and other boxes
 * skipped), in order. A trun whose samples do not lie inside the bytes ends its fragment (the
 * rest of it counted as skipped); at most one sample per input byte is taken, so a hostile
 * sample count cannot make the output grow past the input.
 */
export function fragmentSamples(bytes: Uint8Array, track: Pick<Fmp4Track, 'trackId' | 'defaultSampleDuration' | 'defaultSampleSize'>): Fmp4Samples {
  const samples: Fmp4Sample[] = [];
  const { boxes, rest } = boxesIn(bytes, 0, bytes.length);
  let skippedBytes = rest;
  for (const moof of boxes) {
    if (moof.type !== 'moof') continue;
    for (const traf of children(bytes, moof, 'traf')) {
      if (!trafSamples(bytes, moof, traf, track, samples)) skippedBytes += moof.end - moof.start;
    }
  }
  return { samples, skippedBytes };
}

/** Appends the samples of one traf to `into`; false when it is malformed or points outside the bytes. */
function trafSamples(bytes: Uint8Array, moof: Box, traf: Box, track: Pick<Fmp4Track, 'trackId' | 'defaultSampleDuration' | 'defaultSampleSize'>, into: Fmp4Sample[]): boolean {
  const tfhdBox = child(bytes, traf, 'tfhd');
  const tfhd = tfhdBox ? fullBoxCursor(bytes, tfhdBox) : undefined;
  if (!tfhd) return false;
  if (tfhd.cursor.u32() !== track.trackId) return true; // another track's: not ours to read
  // Without base-data-offset, data offsets count from the moof (default-base-is-moof, or the first trun of a traf).
  const base = tfhd.flags & TFHD_BASE_DATA_OFFSET ? tfhd.cursor.u64() : moof.start;
  if (tfhd.flags & TFHD_SAMPLE_DESCRIPTION_INDEX) tfhd.cursor.skip(4);
  const defaultDuration = tfhd.flags & TFHD_DEFAULT_SAMPLE_DURATION ? tfhd.cursor.u32() : track.defaultSampleDuration;
  const defaultSize = tfhd.flags & TFHD_DEFAULT_SAMPLE_SIZE ? tfhd.cursor.u32() : track.defaultSampleSize;
  if (tfhd.flags & TFHD_DEFAULT_SAMPLE_FLAGS) tfhd.cursor.skip(4);
  if (base === undefined || defaultDuration === undefined || defaultSize === undefined) return false;
  let dataEnd = base;
  for (const trunBox of children(bytes, traf, 'trun')) {
    const trun = fullBoxCursor(bytes, trunBox);
    const count = trun?.cursor.u32();
    if (!trun || count === undefined) return false;
    const { flags, cursor } = trun;
    let position = dataEnd;
    if (flags & TRUN_DATA_OFFSET) {
      const offset = cursor.i32();
      if (offset === undefined) return false;
      position = base + offset;
    }
    if (flags & TRUN_FIRST_SAMPLE_FLAGS) cursor.skip(4);
    const perSample = [TRUN_SAMPLE_DURATION, TRUN_SAMPLE_SIZE, TRUN_SAMPLE_FLAGS, TRUN_SAMPLE_COMPOSITION_OFFSET].filter((flag) => flags & flag).length * 4;
    if (perSample > 0 && !cursor.has(count * perSample)) return false;
    for (let index = 0; index < count; index++) {
      const duration = flags & TRUN_SAMPLE_DURATION ? cursor.u32()! : defaultDuration;
      const size = flags & TRUN_SAMPLE_SIZE ? cursor.u32()! : defaultSize;
      if (flags & TRUN_SAMPLE_FLAGS) cursor.skip(4);
      if (flags & TRUN_SAMPLE_COMPOSITION_OFFSET) cursor.skip(4);
      if (size === 0 || position < 0 || position + size > bytes.length || into.length >= bytes.length) return false;
      into.push({ data: bytes.subarray(position, position + size), duration });
      position += size;
    }
    dataEnd = position;
  }
  return true;
}
