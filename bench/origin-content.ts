/**
 * The content of `npm run bench:origin` (and of test/e2e/origin-workers.test.ts): a live
 * channel as the packager would have written it after a while on air. Channel `fip`,
 * rendition `hifi` (128 kb/s AAC-LC 48 kHz stereo), a window of 6 segments of 4 s, each a
 * real MPEG-TS segment from TsSegmentMuxer (synthetic ADTS frames of the 128 kb/s size,
 * ≈ 66 KB), and the media and master playlists from playlist-writer.ts with
 * PROGRAM-DATE-TIME tags, the newest segment starting at `newestStart` (default 2 s ago):
 * processes given the same `newestStart` build the same bytes.
 */
import { renderMasterPlaylist, renderMediaPlaylist, AAC_LC_CODECS, type PlaylistSegment } from '../src/hls/playlist-writer.js';
import { segmentName, segmentUri, type ChannelState, type WindowSegment } from '../src/hls/sequence-state.js';
import { buildAdtsHeader } from '../src/media/adts.js';
import { TsSegmentMuxer, type TimedAacFrame } from '../src/media/ts-muxer.js';

export const CHANNEL_ID = 'fip';
export const RENDITION_ID = 'hifi';
const BITRATE_BITS_PER_SECOND = 128_000;
const SAMPLE_RATE = 48_000;
const SAMPLES_PER_FRAME = 1024;
const SEGMENT_SECONDS = 4;
const WINDOW_SEGMENTS = 6;
/** A channel that has been on air for a while: MSNs and the run number are not small. */
const FIRST_MSN = 41_207;
const RUN = 3;
/** Long enough that no segment expires during a bench. */
export const SEGMENT_TTL_SECONDS = 3600;
const PTS_TICKS_PER_SECOND = 90_000;

export interface Content {
  /** URL path (without the leading slash) → body, exactly as served. */
  files: Map<string, Uint8Array>;
  playlists: Record<string, string>;
  segments: { name: string; bytes: Uint8Array }[];
  state: ChannelState;
}

/**
 * 4 s of 128 kb/s AAC-LC: 188 frames of 341–342 bytes (128000 × 1024 / 48000 / 8 = 341.3),
 * with a payload that does not compress, so the segment has the size and entropy of real audio.
 */
export function synthesizeFrames(firstFrame: number, count: number): TimedAacFrame[] {
  const frames: TimedAacFrame[] = [];
  const bytesPerFrame = (BITRATE_BITS_PER_SECOND * SAMPLES_PER_FRAME) / SAMPLE_RATE / 8;
  const ticksPerFrame = (SAMPLES_PER_FRAME * PTS_TICKS_PER_SECOND) / SAMPLE_RATE;
  let seed = 0x9e3779b9 ^ firstFrame;
  for (let index = firstFrame; index < firstFrame + count; index++) {
    // Whole frames whose sizes add up to the exact bit rate over the run of frames.
    const frameLength = Math.floor((index + 1) * bytesPerFrame) - Math.floor(index * bytesPerFrame);
    const header = buildAdtsHeader({ sampleRate: SAMPLE_RATE, channelCount: 2, objectType: 2, payloadLength: frameLength - 7 });
    const data = new Uint8Array(frameLength);
    data.set(header, 0);
    for (let offset = header.length; offset < frameLength; offset++) {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0; // an LCG is random enough for bytes nobody decodes
      data[offset] = seed >>> 24;
    }
    frames.push({ data, pts: index * ticksPerFrame, durationTicks: ticksPerFrame });
  }
  return frames;
}

export function buildContent(newestStart: number = Date.now() - 2000): Content {
  const muxer = new TsSegmentMuxer();
  const framesPerSegment = Math.ceil((SEGMENT_SECONDS * SAMPLE_RATE) / SAMPLES_PER_FRAME);
  const segmentDuration = (framesPerSegment * SAMPLES_PER_FRAME) / SAMPLE_RATE;
  const files = new Map<string, Uint8Array>();
  const segments: Content['segments'] = [];
  const playlistSegments: PlaylistSegment[] = [];
  const window: WindowSegment[] = [];
  for (let index = 0; index < WINDOW_SEGMENTS; index++) {
    const msn = FIRST_MSN + index;
    const bytes = muxer.muxSegment(synthesizeFrames(msn * framesPerSegment, framesPerSegment));
    const programDateTime = Math.round(newestStart - (WINDOW_SEGMENTS - 1 - index) * segmentDuration * 1000);
    const name = segmentName(msn, RUN);
    segments.push({ name, bytes });
    files.set(`${CHANNEL_ID}/${segmentUri(RENDITION_ID, msn, RUN)}`, bytes);
    playlistSegments.push({ uri: segmentUri(RENDITION_ID, msn, RUN), durationSeconds: segmentDuration, programDateTime, discontinuity: false });
    window.push({ msn, run: RUN, durationSeconds: segmentDuration, programDateTime, discontinuity: false, bytes: { [RENDITION_ID]: bytes.byteLength } });
  }
  const targetDuration = Math.ceil(segmentDuration);
  const mediaName = `${CHANNEL_ID}_${RENDITION_ID}.m3u8`;
  const masterName = `${CHANNEL_ID}.m3u8`;
  const bandwidth = Math.max(...segments.map((segment) => (segment.bytes.byteLength * 8) / segmentDuration));
  const playlists = {
    [masterName]: renderMasterPlaylist([{ uri: mediaName, bandwidth, averageBandwidth: bandwidth, codecs: AAC_LC_CODECS }]),
    [mediaName]: renderMediaPlaylist({ targetDuration, mediaSequence: FIRST_MSN, discontinuitySequence: 0, segments: playlistSegments }),
  };
  for (const [name, body] of Object.entries(playlists)) files.set(`${CHANNEL_ID}/${name}`, Buffer.from(body, 'utf8'));
  const state: ChannelState = {
    version: 1,
    targetDuration,
    nextMsn: FIRST_MSN + WINDOW_SEGMENTS,
    discontinuitySequence: 0,
    nextPts: ((FIRST_MSN + WINDOW_SEGMENTS) * framesPerSegment * SAMPLES_PER_FRAME * PTS_TICKS_PER_SECOND) / SAMPLE_RATE,
    window,
    bandwidth: { [RENDITION_ID]: { peak: bandwidth, bits: bandwidth * segmentDuration * WINDOW_SEGMENTS, seconds: segmentDuration * WINDOW_SEGMENTS } },
  };
  return { files, playlists, segments, state };
}

