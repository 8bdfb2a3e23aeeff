/**
 * The newest audio frames of a mount, about `seconds` of them: what a new listener gets at once
 * (the burst; docs/architecture.md, Progressive mounts). Frames are dropped from the front as
 * soon as the rest still covers `seconds`, so its memory is bounded by the audio's bit rate.
 */
import type { AudioFrame } from '../../media/segment-audio.js';

const COMPACT_AFTER = 512;

export class FrameRing {
  private frames: AudioFrame[] = [];
  private head = 0;
  /** Seconds of audio from `head` to the end. */
  private seconds = 0;

  constructor(private readonly keepSeconds: number) {}

  get frameCount(): number {
    return this.frames.length - this.head;
  }

  /** Seconds of audio held. */
  get durationSeconds(): number {
    return this.seconds;
  }

  push(frames: AudioFrame[]): void {
    for (const frame of frames) {
      this.frames.push(frame);
      this.seconds += frame.samples / frame.sampleRate;
    }
    // Keep the newest frames that cover `keepSeconds`: drop the oldest while the rest still does.
    while (this.frameCount > 1) {
      const oldest = this.frames[this.head]!;
      const oldestSeconds = oldest.samples / oldest.sampleRate;
      if (this.seconds - oldestSeconds < this.keepSeconds) break;
      this.seconds -= oldestSeconds;
      this.head += 1;
    }
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
  }

  /** The frames held, end to end, in one buffer (a copy). */
  joined(): Buffer {
    const held = this.frames.slice(this.head);
    return Buffer.concat(held.map((frame) => frame.data));
  }

  clear(): void {
    this.frames = [];
    this.head = 0;
    this.seconds = 0;
  }
}
