/**
 * Synthetic AAC for packager tests: ADTS AAC-LC frames at 48 kHz stereo and an endless
 * source of frame groups (one frame per rendition, like an encoder making each rendition
 * from the same input).
 */
import type { ChannelPackager } from '../../src/hls/channel-packager.js';
import { buildAdtsHeader, type AacFrame } from '../../src/media/adts.js';

export const SAMPLE_RATE = 48000;

/** One ADTS AAC-LC frame (48 kHz stereo) of `frameBytes` bytes, header included. */
export function aacFrame(frameBytes: number, seed: number): AacFrame {
  const data = new Uint8Array(frameBytes);
  data.set(buildAdtsHeader({ sampleRate: SAMPLE_RATE, channelCount: 2, objectType: 2, payloadLength: frameBytes - 7 }));
  for (let at = 7; at < frameBytes; at++) data[at] = (seed + at) % 251;
  return { data, sampleRate: SAMPLE_RATE, channelCount: 2, objectType: 2, samples: 1024 };
}

/**
 * An endless source of frame groups, like an encoder making each rendition from the same
 * input: frame sizes follow the bit rate and swell every few seconds so segments differ.
 */
export class FrameSource {
  private frameIndex = 0;

  constructor(private readonly baseBytes: number[] = [40, 200]) {}

  next(): AacFrame[] {
    const swell = Math.floor(this.frameIndex / 150) % 5;
    const group = this.baseBytes.map((base, rendition) => aacFrame(base + swell * (rendition + 1) * 8 + (this.frameIndex % 3), this.frameIndex));
    this.frameIndex += 1;
    return group;
  }
}

/** Pushes frame groups until the packager cuts a segment (it does so synchronously). */
export function pushUntilCut(packager: ChannelPackager, source: FrameSource): void {
  const produced = packager.stats.segmentsProduced;
  while (packager.stats.segmentsProduced === produced) packager.pushFrameGroup(source.next());
}

