/**
 * A channel's safety source (docs/architecture.md, Failure model: "every feed lost → safety
 * source keeps the playlist advancing"): silence, or an audio file (a jingle, a "we'll be right
 * back" loop) encoded ONCE at start-up with the live encoder's options into every rendition
 * and held in memory. Taking a frame group from it never fails, never waits and does no
 * I/O, so the packager can take one in place of an input's group on any frame edge.
 *
 * Silence needs no FFmpeg: its AAC frames are built here, bit for bit what FFmpeg's encoder
 * makes of digital silence, and so are the silent MP3 frames of MP3 renditions, chunked on the
 * AAC frame grid as the aligner chunks live MP3 (docs/architecture.md, "MP3 renditions"), and
 * so are silent Opus packets (chunked the same way) and silent FLAC frames (one per group;
 * docs/architecture.md, "Opus and FLAC renditions"), so it is there at once and cannot fail.
 *
 * A file is read up to its first 10 minutes (a longer one is cut, and the log says so).
 * `loop: true` repeats it; `loop: false` plays it once, then silence. A file that cannot be
 * read or encoded is logged as an error with the channel id and replaced by silence: a
 * missing jingle must not stop the station.
 */
import type { Logger } from 'pino';
import type { ChannelConfig, RenditionConfig } from '../config/config-schema.js';
import { buildAdtsHeader, type AacFrame } from '../media/adts.js';
import { concatBytes } from '../media/bytes.js';
import { silentFlacFrame } from '../media/flac.js';
import { GROUP_SAMPLES } from '../media/frame-chunk.js';
import { mp3Chunk, mp3FrameSamples, silentMp3Frame } from '../media/mpeg-audio.js';
import { opusChunk, silentOpusUnit } from '../media/opus.js';
import { samplesToTicks, wrapPts } from '../media/pts.js';
import { encodeClip } from '../ffmpeg/clip-encoder.js';
import { OnairError } from '../errors.js';
import { EncoderOutputReader } from './input-worker.js';

export interface SafetySource {
  /** What it plays, for logs and status: `silence`, `file /srv/jingle.aac (looped)`, … */
  readonly description: string;
  /** The next frame group: frame i for rendition i, each 1024 samples at the channel's rate. */
  nextGroup(): AacFrame[];
  /** Plays the file from its beginning again (e.g. when the safety source goes on air). */
  rewind(): void;
}

/** The most of a fallback file that is kept in memory: 10 min at 32k + 96k + 192k ≈ 24 MB. */
export const MAX_FALLBACK_FILE_SECONDS = 600;
/**
 * The encoder's first frame is its priming (AAC-LC's 1024-sample delay), so a clip starts
 * after it. A loop is then exactly the file's frames: a file of whole frames loops without
 * a gap (a compressed file brings its own codec padding along); the seam decodes as one
 * softer frame, as the encoder's overlap saw silence before the file's start.
 */
const PRIMING_FRAMES = 1;
const SAMPLES_PER_FRAME = 1024;
const AAC_LC = 2;

export async function loadSafetySource(channel: ChannelConfig, options: { logger: Logger }): Promise<SafetySource> {
  const logger = options.logger.child({ channel: channel.id });
  const silence = HeldClip.of(channel.renditions.map((rendition) => silentGroups(channel, rendition)));
  const fallback = channel.fallback;
  if (fallback === 'silence') return new FrameSequence('silence', channel.sampleRate, undefined, silence);

  const path = fallback.file;
  let audio: HeldClip;
  try {
    // A looped file with MP3 renditions lasts a whole number of MP3 periods (see silentGroups),
    // so every loop holds exactly its duration in MP3 frames and the MP3 timeline keeps time.
    audio = HeldClip.of(await encodeFile(channel, path, logger), fallback.loop ? groupPeriod(channel) : 1);
    if (audio.length === 0) throw new OnairError('ONAIR_INPUT_FAILED', 'the file holds no audio');
  } catch (error) {
    logger.error({ err: error, file: path }, 'the fallback file cannot be used; the safety source plays silence instead');
    return new FrameSequence(`silence (${path} could not be used)`, channel.sampleRate, undefined, silence);
  }
  const seconds = (audio.length * SAMPLES_PER_FRAME) / channel.sampleRate;
  if (seconds >= MAX_FALLBACK_FILE_SECONDS - 1) {
    logger.warn({ file: path, keptSeconds: MAX_FALLBACK_FILE_SECONDS }, 'the fallback file is longer than 10 minutes; only its start is used');
  }
  logger.info({ file: path, seconds: Math.round(seconds * 10) / 10, loop: fallback.loop }, 'fallback file loaded');
  return fallback.loop
    ? new FrameSequence(`file ${path} (looped)`, channel.sampleRate, undefined, audio)
    : new FrameSequence(`file ${path} (once, then silence)`, channel.sampleRate, audio, silence);
}

/**
 * Encodes a file into every rendition of the channel: the AAC frames of rendition i at [i].
 * One FFmpeg per rendition, side by side: an FFmpeg encodes its AAC streams one after the
 * other on one core, and a long file takes a while (10 minutes at 192k: 15–45 s).
 */
async function encodeFile(channel: ChannelConfig, path: string, logger: Logger): Promise<AacFrame[][]> {
  return Promise.all(
    channel.renditions.map(async (rendition) => {
      const audioChannels = rendition.audioChannels ?? channel.audioChannels;
      const encoded = { bitrate: rendition.bitrate, audioChannels, codec: rendition.codec, ...(rendition.bitDepth !== undefined ? { bitDepth: rendition.bitDepth } : {}) };
      // An MP3 or Opus rendition is cut into chunks on the AAC frame grid (rendition-aligner.ts):
      // a small AAC stream is encoded beside it as the clock, and only its chunks are kept.
      const chunked = rendition.codec === 'mp3' || rendition.codec === 'opus';
      const renditions = chunked ? [MP3_CLOCK_RENDITION, encoded] : [encoded];
      const spec = { path, maxSeconds: MAX_FALLBACK_FILE_SECONDS, sampleRate: channel.sampleRate, renditions };
      const reader = new EncoderOutputReader(renditions.map((each) => each.codec));
      const ts = await encodeClip(spec, { logger });
      // FLAC has no priming: its first frame is the file's first 1024 samples, as the AAC frame after the priming one.
      return [...reader.push(ts), ...reader.flush()].map((group) => group.at(-1)!).slice(rendition.codec === 'flac' ? 0 : PRIMING_FRAMES);
    }),
  );
}

/** The AAC stream that clocks an MP3 rendition's chunks when a clip is encoded (then discarded). */
const MP3_CLOCK_RENDITION = { bitrate: 32_000, audioChannels: 1, codec: 'aac' } as const;

/**
 * One period of a rendition's silence, as frame groups: one silent AAC frame, or for an MP3
 * rendition the chunks of silent MP3 frames on the AAC grid over the span after which both
 * grids meet again (9216 samples at 44.1/48 kHz: 9 groups, 8 MP3 frames).
 */
function silentGroups(channel: ChannelConfig, rendition: RenditionConfig): AacFrame[] {
  const audioChannels = rendition.audioChannels ?? channel.audioChannels;
  const mp3Samples = mp3FrameSamples(channel.sampleRate);
  const period = groupPeriod(channel);
  if (rendition.codec === 'flac') {
    const frame = silentFlacFrame({ sampleRate: channel.sampleRate, channelCount: audioChannels, bitsPerSample: rendition.bitDepth ?? 16 });
    return Array.from({ length: period }, () => frame);
  }
  if (rendition.codec === 'opus') {
    const unit = silentOpusUnit(audioChannels);
    return onGrid(period, OPUS_FRAME_SAMPLES, (count) => opusChunk(Array.from({ length: count }, () => unit), audioChannels));
  }
  if (rendition.codec !== 'mp3' || !mp3Samples) return Array.from({ length: period }, () => silentAacFrame(channel.sampleRate, audioChannels));
  const frame = silentMp3Frame(channel.sampleRate, audioChannels, rendition.bitrate);
  return onGrid(period, mp3Samples, (count) => mp3Chunk(Array.from({ length: count }, () => frame), channel.sampleRate, audioChannels));
}

/** Opus packets of the safety source: 20 ms. */
const OPUS_FRAME_SAMPLES = 960;

/** `period` groups of chunks of `frameSamples`-long frames: frame k starts at sample k × frameSamples, a chunk holds those starting within its group's 1024 samples. */
function onGrid(period: number, frameSamples: number, chunk: (count: number) => AacFrame): AacFrame[] {
  return Array.from({ length: period }, (_, group) => {
    const first = Math.ceil((group * GROUP_SAMPLES) / frameSamples);
    const end = Math.ceil(((group + 1) * GROUP_SAMPLES) / frameSamples);
    return chunk(end - first);
  });
}

/**
 * Groups after which the AAC frame grid and those of the chunked renditions meet again: 9 with
 * MP3 renditions at 44.1/48 kHz, 15 with Opus ones, 45 with both, else 1.
 */
function groupPeriod(channel: ChannelConfig): number {
  const mp3Samples = mp3FrameSamples(channel.sampleRate);
  let samples = SAMPLES_PER_FRAME;
  if (mp3Samples && channel.renditions.some((rendition) => rendition.codec === 'mp3')) samples = leastCommonMultiple(samples, mp3Samples);
  if (channel.renditions.some((rendition) => rendition.codec === 'opus')) samples = leastCommonMultiple(samples, OPUS_FRAME_SAMPLES);
  return samples / SAMPLES_PER_FRAME;
}

function leastCommonMultiple(a: number, b: number): number {
  let [x, y] = [a, b];
  while (y !== 0) [x, y] = [y, x % y];
  return (a / x) * b;
}

/** AAC syntactic element ids (ISO/IEC 14496-3 §4.5.2.1, Table 4.85). */
const ID_SCE = 0;
const ID_CPE = 1;
const ID_END = 7;
/** Any gain will do without spectral data; 140 is what FFmpeg's encoder writes for silence. */
const SILENCE_GLOBAL_GAIN = 140;

/**
 * One AAC-LC frame of digital silence, as ADTS: a raw_data_block (14496-3 §4.4.2.1) holding a
 * single_channel_element (mono) or a channel_pair_element with a common window (stereo), each
 * channel with max_sfb = 0, i.e. no spectral data at all, then ID_END. Bit for bit what
 * FFmpeg's encoder writes for digital silence, at any bit rate.
 */
export function silentAacFrame(sampleRate: number, channelCount: 1 | 2): AacFrame {
  // ics_info (§4.4.2.6): reserved bit, window_sequence ONLY_LONG_SEQUENCE, window_shape KBD, max_sfb, no prediction.
  const icsInfo: BitField[] = [[0, 1], [0, 2], [1, 1], [0, 6], [0, 1]];
  // individual_channel_stream (§4.4.2.7): global_gain, [ics_info], no sections, no pulse, TNS or gain control data.
  const channelStream = (withIcsInfo: boolean): BitField[] => [[SILENCE_GLOBAL_GAIN, 8], ...(withIcsInfo ? icsInfo : []), [0, 1], [0, 1], [0, 1]];
  const element: BitField[] =
    channelCount === 1
      ? [[ID_SCE, 3], [0, 4], ...channelStream(true)]
      : // element_instance_tag, common_window = 1, the shared ics_info, ms_mask_present = 0, then both channels.
        [[ID_CPE, 3], [0, 4], [1, 1], ...icsInfo, [0, 2], ...channelStream(false), ...channelStream(false)];
  const payload = packBits([...element, [ID_END, 3]]);
  const header = buildAdtsHeader({ sampleRate, channelCount, objectType: AAC_LC, payloadLength: payload.length });
  return { data: concatBytes(header, payload), sampleRate, channelCount, objectType: AAC_LC, samples: SAMPLES_PER_FRAME };
}

type BitField = [value: number, width: number];

/** Writes the fields most significant bit first and pads the last byte with zeros (byte_alignment). */
function packBits(fields: readonly BitField[]): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(fields.reduce((total, [, width]) => total + width, 0) / 8));
  let position = 0;
  for (const [value, width] of fields) {
    for (let bit = width - 1; bit >= 0; bit -= 1, position += 1) {
      if ((value >> bit) & 1) bytes[position >> 3]! |= 0x80 >> (position & 7);
    }
  }
  return bytes;
}

/**
 * A clip held for the life of the process, compactly: per rendition, its frames back to back
 * in one buffer plus where each ends (a frame object each would cost more than the audio).
 * Every rendition is the same audio cut into 1024-sample frames from the same start, so
 * group n is frame n of each.
 */
class HeldClip {
  private constructor(
    readonly length: number,
    private readonly renditions: { bytes: Uint8Array; ends: Uint32Array; format: Omit<AacFrame, 'data' | 'pts'> }[],
  ) {}

  /** `multipleOf`: the clip is cut to a multiple of this many groups (when it is that long). */
  static of(framesPerRendition: AacFrame[][], multipleOf = 1): HeldClip {
    const shortest = Math.min(...framesPerRendition.map((frames) => frames.length));
    const length = shortest >= multipleOf ? shortest - (shortest % multipleOf) : shortest;
    const renditions = framesPerRendition.map((frames) => {
      const kept = frames.slice(0, length);
      const bytes = new Uint8Array(kept.reduce((total, frame) => total + frame.data.length, 0));
      const ends = new Uint32Array(length);
      let offset = 0;
      kept.forEach((frame, index) => {
        bytes.set(frame.data, offset);
        offset += frame.data.length;
        ends[index] = offset;
      });
      const first = kept[0];
      const format = {
        sampleRate: first?.sampleRate ?? 0,
        channelCount: first?.channelCount ?? 0,
        objectType: first?.objectType ?? 0,
        samples: SAMPLES_PER_FRAME,
      };
      return { bytes, ends, format };
    });
    return new HeldClip(length, renditions);
  }

  group(index: number, pts: number): AacFrame[] {
    return this.renditions.map(({ bytes, ends, format }) => ({
      data: bytes.subarray(index === 0 ? 0 : ends[index - 1]!, ends[index]!),
      sampleRate: format.sampleRate,
      channelCount: format.channelCount,
      objectType: format.objectType,
      samples: format.samples,
      pts,
    }));
  }
}

/** `intro` once, then `loop` forever, stamped with its own sample-count PTS line. */
class FrameSequence implements SafetySource {
  private position = 0;
  private samples = 0;
  private readonly introLength: number;

  constructor(
    readonly description: string,
    private readonly sampleRate: number,
    private readonly intro: HeldClip | undefined,
    private readonly loop: HeldClip,
  ) {
    this.introLength = intro?.length ?? 0;
  }

  nextGroup(): AacFrame[] {
    const pts = wrapPts(samplesToTicks(this.samples, this.sampleRate));
    this.samples += SAMPLES_PER_FRAME;
    const position = this.position;
    this.position = position + 1 === this.introLength + this.loop.length ? this.introLength : position + 1;
    return position < this.introLength ? this.intro!.group(position, pts) : this.loop.group(position - this.introLength, pts);
  }

  rewind(): void {
    this.position = 0;
  }
}
