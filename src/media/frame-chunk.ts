/**
 * A rendition's slot in a frame group when its codec's frames are not 1024 samples long (MP3's
 * 1152, Opus's 960): the whole frames that start within the group's 1024 samples, back to back,
 * shaped like the group's AAC frames so the selector, segmenter and packager carry it unchanged
 * (src/ingest/rendition-aligner.ts). docs/architecture.md, "MP3 renditions" and "Opus and FLAC
 * renditions".
 */
import type { AacFrame } from './adts.js';

/** A group spans one AAC frame. */
export const GROUP_SAMPLES = 1024;

/**
 * The frames' bytes end to end (each frame must delimit itself: an MP3 header, an Opus control
 * header), with the group's format; `objectType` tells the codec, `samples` is the group's 1024
 * whatever the chunk holds.
 */
export function frameChunk(frames: readonly { data: Uint8Array }[], sampleRate: number, channelCount: number, objectType: number, pts?: number): AacFrame {
  const data = frames.length === 1 ? frames[0]!.data : new Uint8Array(frames.reduce((total, frame) => total + frame.data.length, 0));
  if (frames.length > 1) {
    let offset = 0;
    for (const frame of frames) {
      data.set(frame.data, offset);
      offset += frame.data.length;
    }
  }
  const chunk: AacFrame = { data, sampleRate, channelCount, objectType, samples: GROUP_SAMPLES };
  if (pts !== undefined) chunk.pts = pts;
  return chunk;
}
