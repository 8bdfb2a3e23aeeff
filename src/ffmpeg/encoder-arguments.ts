/**
 * What FFmpeg is asked to do for a live input, as argument lists: how it reads the feed
 * (its container and the only protocols it may open, quick probing, real time and looping
 * for files, the log level) and how it encodes every
 * rendition as AAC-LC, MP3 with libmp3lame, Opus with libopus or FLAC, into ONE MPEG-TS (stream i = rendition i),
 * with silencedetect on the first stream when asked. The clip encoder reuses the output options. Pure: no process here.
 */

export interface EncoderRendition {
  bitrate: number;
  audioChannels: number;
  /** Default `aac` (AAC-LC); `mp3` is LAME at a constant bit rate; `opus` libopus (20-ms packets); `flac` lossless, 1024-sample frames. */
  codec?: 'aac' | 'mp3' | 'opus' | 'flac';
  /** FLAC only: 16 (default) or 24 bits per sample. */
  bitDepth?: 16 | 24;
}

/**
 * The encoder options of rendition `index` (docs/architecture.md, "MP3 renditions";
 * docs/architecture.md, "Opus and FLAC renditions"). FLAC has no bit rate; its frames are 1024 samples so that each is one AAC frame
 * group, and FFmpeg's MPEG-TS muxer carries it as private data (a warning, not an error).
 */
function codecOptions(rendition: EncoderRendition, index: number): string[] {
  switch (rendition.codec) {
    case 'mp3':
      return [`-c:a:${index}`, 'libmp3lame', `-b:a:${index}`, String(rendition.bitrate)];
    case 'opus':
      return [`-c:a:${index}`, 'libopus', `-b:a:${index}`, String(rendition.bitrate)];
    case 'flac':
      // 24 bits: FFmpeg's FLAC encoder takes s32 samples and writes 24 of them.
      return [`-c:a:${index}`, 'flac', `-frame_size:a:${index}`, '1024', `-sample_fmt:a:${index}`, rendition.bitDepth === 24 ? 's32' : 's16'];
    default:
      return [`-c:a:${index}`, 'aac', `-profile:a:${index}`, 'aac_low', `-b:a:${index}`, String(rendition.bitrate)];
  }
}

export interface EncoderSpec {
  /** Anything FFmpeg reads: srt://, udp://, http(s)://, a file path, or `pipe:0` (stdin, fed by onair). */
  inputUrl: string;
  /** For `pipe:0`: the container onair was told (`mp3`, `aac`, `ogg`); absent: probed among the audio containers. */
  inputFormat?: string;
  sampleRate: number;
  renditions: readonly EncoderRendition[];
  /** Read the input at its native rate (files standing in for a live feed). */
  realtime?: boolean;
  /** Loop a file input forever. */
  loop?: boolean;
  /** Report digital silence (below -60 dBFS) that lasts this long, through `onSilence`. */
  silenceSeconds?: number;
}

/**
 * How FFmpeg may read an input, by its URL scheme. A feed never chooses its own container
 * nor makes FFmpeg open anything else: a pushed HLS playlist or concat list would otherwise
 * make FFmpeg fetch the URLs or read the local files it names.
 * - SRT and UDP carry MPEG-TS (`-f mpegts`), RTP carries RTP (MPEG-TS or audio payloads),
 *   RTMP carries FLV: the container is fixed.
 * - HTTP(S) (Icecast mounts) and files are probed, but only among plain audio containers
 *   (`-format_whitelist`): no playlist, concat or image-sequence demuxer.
 * - `-protocol_whitelist` lists the protocols the input's own one needs (SRT runs over its
 *   own UDP; HTTP may redirect to HTTPS), and nothing a demuxer could open besides.
 */
export interface InputDemuxing {
  /** FFmpeg's `-f`: the only demuxer tried. */
  format?: string;
  /** FFmpeg's `-format_whitelist`, when the container is probed. */
  formats?: readonly string[];
  protocols: readonly string[];
}

/** Audio containers a probed input (an Icecast mount, a file) may be in. */
export const PROBED_AUDIO_FORMATS = ['aac', 'mp3', 'ogg', 'flac', 'wav', 'mpegts', 'mov', 'matroska'] as const;

/** Containers a fed input may name (from a source client's or an upstream's Content-Type). */
export const PIPED_AUDIO_FORMATS = ['mp3', 'aac', 'ogg'] as const;

export function inputDemuxing(inputUrl: string, inputFormat?: string): InputDemuxing {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(inputUrl)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'srt':
      return { format: 'mpegts', protocols: ['srt'] };
    case 'udp':
      return { format: 'mpegts', protocols: ['udp'] };
    case 'rtp':
      return { format: 'rtp', protocols: ['rtp', 'udp'] };
    case 'rtmp':
      return { format: 'flv', protocols: ['rtmp', 'tcp'] };
    case 'http':
    case 'https':
      return { formats: PROBED_AUDIO_FORMATS, protocols: ['http', 'https', 'tcp', 'tls'] };
    case 'pipe':
      // Audio onair feeds on stdin (an Icecast source client, a pulled ICY stream): the
      // container it was told (always one of PIPED_AUDIO_FORMATS), else probed.
      return inputFormat !== undefined && (PIPED_AUDIO_FORMATS as readonly string[]).includes(inputFormat)
        ? { format: inputFormat, protocols: ['pipe'] }
        : { formats: PROBED_AUDIO_FORMATS, protocols: ['pipe'] };
    default:
      // An absolute path or a file: URL (the config accepts nothing else).
      return { formats: PROBED_AUDIO_FORMATS, protocols: ['file'] };
  }
}

/** silencedetect's threshold: AAC decoded from digital silence stays far below it, a quiet programme above. */
const SILENCE_NOISE_DB = -60;

export function ffmpegInputOptions(spec: EncoderSpec): string[] {
  // Silence detection reports at info level; the level tag tells those lines from problems.
  const logging = spec.silenceSeconds !== undefined ? ['-loglevel', 'level+info', '-nostats'] : ['-loglevel', 'warning'];
  // A second of probing is plenty for an audio feed and keeps start and failover quick
  // (FFmpeg's default spends ~5 s on a live MPEG-TS before the first frame).
  const options = ['-nostdin', '-hide_banner', ...logging, '-analyzeduration', '1000000', '-probesize', '65536'];
  const demuxing = inputDemuxing(spec.inputUrl, spec.inputFormat);
  options.push('-protocol_whitelist', demuxing.protocols.join(','));
  if (demuxing.format !== undefined) options.push('-f', demuxing.format);
  if (demuxing.formats !== undefined) options.push('-format_whitelist', demuxing.formats.join(','));
  if (spec.realtime) options.push('-re');
  if (spec.loop) options.push('-stream_loop', '-1');
  return options;
}

export function ffmpegOutputOptions(spec: EncoderSpec): string[] {
  const options: string[] = [];
  spec.renditions.forEach(() => options.push('-map', '0:a:0'));
  options.push('-ar', String(spec.sampleRate));
  spec.renditions.forEach((rendition, index) => {
    // Per stream: every stream is cut from the same decode, so all share one timeline.
    options.push(...codecOptions(rendition, index), `-ac:a:${index}`, String(rendition.audioChannels));
  });
  // Fill timestamp gaps of a lossy feed with silence so the sample count stays honest.
  const resample = 'aresample=async=1';
  if (spec.silenceSeconds === undefined) {
    options.push('-af', resample);
  } else {
    // A filter chain runs per output stream: detect on the first one only, so every silence
    // is reported once. It sees the decoded input (the -ac downmix is appended after it).
    const detect = `silencedetect=noise=${SILENCE_NOISE_DB}dB:duration=${spec.silenceSeconds}`;
    spec.renditions.forEach((_, index) => options.push(`-filter:a:${index}`, index === 0 ? `${resample},${detect}` : resample));
  }
  // Hand packets over as they are made: latency matters more than write sizes here.
  options.push('-flush_packets', '1', '-muxdelay', '0', '-muxpreload', '0');
  return options;
}
