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


/**
 * Feeds two packagers the same frames (each from its own FrameSource, so the bytes match),
 * yielding to publishes between frames, until both have published `segments` segments
 * (bounded: 16 segments' worth of frames, then 100 more turns of the event loop).
 */
export async function feedSideBySide(packagers: readonly [ChannelPackager, ChannelPackager], segments: number): Promise<void> {
  const sources = [new FrameSource(), new FrameSource()];
  const done = (): boolean => packagers.every((packager) => packager.stats.segmentsPublished >= segments);
  for (let frame = 0; frame < 48 * 16 && packagers[1].stats.segmentsPublished < segments; frame++) {
    packagers.forEach((packager, index) => packager.pushFrameGroup(sources[index]!.next()));
    await new Promise((resolve) => setImmediate(resolve));
  }
  for (let wait = 0; wait < 100 && !done(); wait++) await new Promise((resolve) => setImmediate(resolve));
}
