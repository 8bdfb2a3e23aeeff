/**
 * Chooses, frame by frame, where a channel's audio comes from: the highest-priority
 * healthy input, else the safety source (docs/architecture.md, Failure model). Every input runs hot
 * (its FFmpeg encodes all the time), so a switch is just a different frame group going
 * into the packager on a frame edge of the packager's own sample-count timeline: no PTS
 * jump, no MSN gap.
 *
 * Health. An input is healthy while its encoder runs, it has delivered audio within
 * `inputTimeoutMs` and it is not reported silent (`silenceSeconds`). Failing over to a
 * lower-priority input is immediate; going back up waits until the higher-priority
 * input has been healthy for `recoverMs`, so a flapping link does not make flapping
 * audio. From the safety source, any healthy input is taken at once. When no input has
 * delivered audio `firstAudioTimeoutMs` after the first tick (a packager started, or
 * restarted, during an outage of every feed), the safety source puts the channel on air, so
 * its playlists advance instead of standing still.
 *
 * Clock. The active input drives the packager as its frames arrive. A guard ticks
 * against the wall clock: when the packager falls more than `bufferMs` behind real time
 * (the active input stopped delivering, before `inputTimeoutMs` declares it dead), the
 * gap is filled from the next input that has audio buffered, else up to real time from
 * the safety source, so playlists keep advancing on time. An input that covers a gap is
 * committed to until the active input delivers again or a switch: its buffered audio, then
 * each burst it delivers, goes on air as it comes, so its stream runs on frame after frame
 * (inputs deliver in bursts of a few frames; the safety source never plays between them). The
 * safety source fills only when that input is late by bufferMs too. An input coming back must
 * deliver steadily for half a second before it is taken. Frames that would put the output more
 * than `bufferMs` ahead of real time (an FFmpeg start-up burst, a feed resuming after a
 * fill) are dropped. Non-active inputs keep only their latest 2 × `bufferMs` of audio (enough
 * to put a gap's output half a buffer ahead of their own delivery, see `cover`).
 *
 * No timers or I/O here: `tick(now)` is called by the owner with a monotonic clock (a wall
 * clock stepped by NTP would drop or burst audio), every few tens of milliseconds; tests drive
 * it with a fake clock. A tick that comes late (the process was starved) fills nothing: the
 * inputs' audio of that time is still unread in their pipes (Node runs timers before I/O), and
 * is read before the next tick. After the process was frozen for inputTimeoutMs or more, the
 * gap is filled up to real time at once: the packager's program date time stays true and its
 * queue bound drops what can no longer be listed.
 */
import { OnairError } from '../errors.js';
import { FALLBACK_SOURCE_ID } from '../config/config-schema.js';
import type { AacFrame } from '../media/adts.js';

/** What the selector needs to know of an input worker. */
export interface SelectableInput {
  readonly inputId: string;
  /** An encoder process is alive. */
  readonly running: boolean;
  /** The feed is digital silence (only when silence detection is configured). */
  readonly silent: boolean;
}

export interface SafetyFrames {
  nextGroup(): AacFrame[];
}

/** Why the active source changed. */
export type SwitchReason =
  | 'available' // the first audio, or audio again after the safety source
  | 'no-audio' // the active input delivered nothing for inputTimeoutMs
  | 'encoder-failed' // its FFmpeg exited
  | 'silence' // it delivered only digital silence for silenceSeconds
  | 'recovered' // a higher-priority input has been healthy for recoverSeconds
  | 'manual'; // an operator pinned this input (control API), or released the pin

export interface InputSwitch {
  from: string | undefined;
  to: string;
  reason: SwitchReason;
  at: number;
}

export interface InputSelectorStats {
  switches: number;
  /** Frame groups taken from the active input. */
  activeFrames: number;
  /** Frame groups that filled a gap from another input or the safety source. */
  filledFrames: number;
  /** Frame groups of the safety source. */
  safetyFrames: number;
  /** Frames dropped because they would have put the output too far ahead of real time. */
  droppedAheadFrames: number;
}

export interface InputSelectorOptions {
  inputs: readonly SelectableInput[];
  safety: SafetyFrames;
  sampleRate: number;
  inputTimeoutMs: number;
  recoverMs: number;
  bufferMs: number;
  /** With no input delivering this long after the first tick, the safety source goes on air (default 10 s). */
  firstAudioTimeoutMs?: number;
  /** Where the chosen frame groups go (the packager). */
  emit: (group: AacFrame[]) => void;
  onSwitch?: (change: InputSwitch) => void;
}

/** The safety source's id (reserved by the config schema), as `activeSource` and switches name it. */
export { FALLBACK_SOURCE_ID };
/**
 * An input coming back must deliver over this span before it is taken: an FFmpeg
 * flushing its last frames as it exits is a burst, not a feed that is back.
 */
const ONSET_MS = 500;
/** How long a starting channel waits for its inputs' first audio (FFmpeg's probe, an SRT caller connecting) before the safety source. */
const FIRST_AUDIO_TIMEOUT_MS = 10_000;
/** A tick this long after the previous one follows a stall of the process (ticks come every few tens of ms). */
const STALL_MS = 50;
const SAMPLES_PER_FRAME = 1024;

interface InputTrack {
  input: SelectableInput;
  queue: AacFrame[][];
  lastFrameAt: number | undefined;
  healthySince: number | undefined;
}

export class InputSelector {
  readonly stats: InputSelectorStats = { switches: 0, activeFrames: 0, filledFrames: 0, safetyFrames: 0, droppedAheadFrames: 0 };
  private readonly options: InputSelectorOptions;
  private readonly tracks: InputTrack[];
  private readonly frameMs: number;
  private readonly bufferFrames: number;
  /** Index of the active input, or -1 for the safety source, undefined before any audio. */
  private active: number | undefined;
  /** Wall-clock time of frame 0 of the output, and frames emitted since. */
  private anchor: number | undefined;
  private emitted = 0;
  /** Input an operator pinned: preferred over priority while it is healthy. */
  private pinned: number | undefined;
  /** Input covering a gap of the active one: its frames go on air as they come. */
  private filler: number | undefined;
  private lastTickAt: number | undefined;
  private firstTickAt: number | undefined;

  constructor(options: InputSelectorOptions) {
    this.options = options;
    this.tracks = options.inputs.map((input) => ({ input, queue: [], lastFrameAt: undefined, healthySince: undefined }));
    this.frameMs = (SAMPLES_PER_FRAME * 1000) / options.sampleRate;
    this.bufferFrames = Math.max(1, Math.round(options.bufferMs / this.frameMs));
  }

  /**
   * Pins input `inputId` on air (an operator's manual switch): it is taken as soon as it
   * is healthy and kept whatever the priorities; if it fails, failover works as usual and
   * it is taken back when healthy again. `undefined` releases the pin: priorities rule
   * again (a higher-priority input healthy for recoverMs takes over). Throws for an unknown id.
   */
  pin(inputId: string | undefined, now: number): void {
    if (inputId === undefined) {
      this.pinned = undefined;
    } else {
      const index = this.tracks.findIndex((track) => track.input.inputId === inputId);
      if (index === -1) throw new OnairError('ONAIR_INPUT_UNKNOWN', `no input "${inputId}"`);
      this.pinned = index;
    }
    this.tick(now);
  }

  /** The pinned input's id, if an operator pinned one. */
  get pinnedInput(): string | undefined {
    return this.pinned === undefined ? undefined : this.tracks[this.pinned]!.input.inputId;
  }

  /** The id of the source now on air, or undefined before the first frame. */
  get activeSource(): string | undefined {
    if (this.active === undefined) return undefined;
    return this.active === -1 ? FALLBACK_SOURCE_ID : this.tracks[this.active]!.input.inputId;
  }

  /** Health of every input as the selector sees it, in priority order. */
  inputHealth(now: number): { id: string; healthy: boolean }[] {
    return this.tracks.map((track, index) => ({ id: track.input.inputId, healthy: this.isHealthy(index, now) }));
  }

  /** Frame groups from input `index` (priority order), as its worker delivers them. */
  push(index: number, groups: readonly AacFrame[][], now: number): void {
    const track = this.tracks[index];
    if (!track || groups.length === 0) return;
    track.lastFrameAt = now;
    if (index === this.active) {
      // The active input delivers again: whatever covered its gap steps back.
      this.filler = undefined;
      for (const group of groups) this.emitAhead(group, now);
      return;
    }
    if (index === this.filler) {
      for (const group of groups) this.emitAhead(group, now, 'filledFrames');
      return;
    }
    track.queue.push(...groups);
    if (track.queue.length > 2 * this.bufferFrames) track.queue.splice(0, track.queue.length - 2 * this.bufferFrames);
    // Nothing or the safety source on air: audio needn't wait for the next tick.
    if (this.active === undefined || this.active === -1) this.tick(now);
  }

  /** Re-evaluates health and the active source, then fills any gap behind real time. */
  tick(now: number): void {
    const sinceTick = this.lastTickAt === undefined ? 0 : now - this.lastTickAt;
    this.lastTickAt = now;
    this.firstTickAt ??= now;
    this.updateHealth(now);
    this.select(now);
    // After a stall the inputs' audio of that time is read before the next tick: no fill yet.
    if (sinceTick > STALL_MS && sinceTick < this.options.inputTimeoutMs) return;
    this.fill(now);
  }

  /** Healthy, and delivering steadily for at least ONSET_MS: fit to go on air. */
  private isEstablished(index: number, now: number): boolean {
    const track = this.tracks[index]!;
    return this.isHealthy(index, now) && track.healthySince !== undefined && track.lastFrameAt! - track.healthySince >= ONSET_MS;
  }

  private isHealthy(index: number, now: number): boolean {
    const track = this.tracks[index]!;
    return (
      track.input.running &&
      !track.input.silent &&
      track.lastFrameAt !== undefined &&
      now - track.lastFrameAt < this.options.inputTimeoutMs
    );
  }

  private updateHealth(now: number): void {
    this.tracks.forEach((track, index) => {
      if (!this.isHealthy(index, now)) {
        track.healthySince = undefined;
        // A dead input's buffered audio is stale by the time it could be used.
        if (!track.input.running) track.queue.length = 0;
      } else {
        track.healthySince ??= track.lastFrameAt;
      }
    });
  }

  private select(now: number): void {
    const current = this.active;
    const currentHealthy = current !== undefined && current >= 0 && this.isHealthy(current, now);
    let next: number;
    let reason: SwitchReason;
    const pinned = this.pinned;
    if (pinned !== undefined && this.isEstablished(pinned, now)) {
      if (current === pinned) return;
      next = pinned;
      reason = 'manual';
    } else if (currentHealthy) {
      // Stay, unless a higher-priority input has proved itself for recoverMs.
      const better = this.tracks.findIndex(
        (track, index) => index < current && this.isEstablished(index, now) && now - track.healthySince! >= this.options.recoverMs,
      );
      if (better === -1) return;
      next = better;
      reason = 'recovered';
    } else {
      // Any audio beats silence: the first healthy input, proved or not.
      next = this.tracks.findIndex((_, index) => this.isEstablished(index, now));
      if (next === -1) {
        if (current === -1) return;
        // Before the first audio, the inputs have firstAudioTimeoutMs to deliver some.
        if (current === undefined && now - this.firstTickAt! < (this.options.firstAudioTimeoutMs ?? FIRST_AUDIO_TIMEOUT_MS)) return;
      }
      if (next === current) return;
      reason = current !== undefined && current >= 0 ? this.whyUnhealthy(current) : next === -1 ? 'no-audio' : 'available';
    }
    this.switchTo(next, reason, now);
  }

  private whyUnhealthy(index: number): SwitchReason {
    const input = this.tracks[index]!.input;
    if (!input.running) return 'encoder-failed';
    if (input.silent) return 'silence';
    return 'no-audio';
  }

  private switchTo(next: number, reason: SwitchReason, now: number): void {
    const from = this.activeSource;
    this.active = next;
    // An input that covered the gap is on its own now: its audio ran on, nothing is queued.
    this.filler = undefined;
    this.stats.switches += 1;
    this.options.onSwitch?.({ from, to: this.activeSource!, reason, at: now });
    if (next === -1) {
      // On air from now, when no audio was before (firstAudioTimeoutMs).
      this.anchor ??= now;
      return;
    }
    let queue = this.tracks[next]!.queue.splice(0);
    if (this.anchor === undefined) {
      // The very first audio: its latest bufferMs belongs to the recent past, not to the future.
      queue = queue.slice(Math.max(0, queue.length - this.bufferFrames));
      this.anchor = now - queue.length * this.frameMs;
    }
    // The newest of the new input's buffered audio covers the time the output is behind, if
    // any; older frames would replay what the listener has just heard from the last source.
    const behind = Math.max(0, Math.floor(this.framesBehind(now)));
    for (const group of queue.slice(queue.length - Math.min(behind, queue.length))) this.emitAhead(group, now);
  }

  /** Emits a group unless it would put the output more than bufferMs ahead of real time. */
  private emitAhead(group: AacFrame[], now: number, stat: 'activeFrames' | 'filledFrames' = 'activeFrames'): void {
    if (this.anchor !== undefined && this.framesBehind(now) < -this.bufferFrames) {
      this.stats.droppedAheadFrames += 1;
      return;
    }
    this.stats[stat] += 1;
    this.emit(group, now);
  }

  private emit(group: AacFrame[], now: number): void {
    this.anchor ??= now;
    this.emitted += 1;
    this.options.emit(group);
  }

  /** Frames the output is behind real time (negative: ahead). */
  private framesBehind(now: number): number {
    return (now - this.anchor!) / this.frameMs - this.emitted;
  }

  private fill(now: number): void {
    if (this.anchor === undefined || this.active === undefined) return;
    const behind = Math.floor(this.framesBehind(now));
    // The source on air (the active input, or the input covering its gap) gets bufferMs of
    // slack; past that, the gap is filled.
    if (behind <= 0 || (this.active !== -1 && behind <= this.bufferFrames)) return;
    if (this.filler !== undefined && !this.isHealthy(this.filler, now)) this.filler = undefined;
    // Another input whose own audio is not as late covers the gap from its buffer, and is
    // committed to; with none, the safety source fills up to real time.
    const donor =
      this.active === -1
        ? -1
        : this.tracks.findIndex(
            (track, index) =>
              index !== this.active && index !== this.filler && track.queue.length > 0 && this.isHealthy(index, now) && now - track.lastFrameAt! < this.options.bufferMs,
          );
    if (donor !== -1) {
      this.cover(donor, behind, now);
      return;
    }
    for (let missing = behind; missing > 0; missing--) this.emitSafety(now);
  }

  /**
   * Commits to input `donor` for the active input's gap. Its newest buffered frames go on air:
   * as many as put the output where the donor's own bursts then keep it between bufferMs behind
   * and bufferMs ahead of real time (half a buffer ahead of its own delivery, since it is late by
   * up to a burst), so that its next bursts run on from there with no fill. Only what its buffer
   * cannot cover past bufferMs is silence, first (after a stall).
   */
  private cover(donor: number, behind: number, now: number): void {
    const track = this.tracks[donor]!;
    const lag = (now - track.lastFrameAt!) / this.frameMs;
    const target = Math.floor(lag - this.bufferFrames / 2);
    const queue = track.queue.splice(0);
    const frames = queue.slice(queue.length - Math.min(queue.length, Math.max(1, behind - target)));
    const short = behind - frames.length;
    if (short > this.bufferFrames) for (let missing = short - Math.max(0, target); missing > 0; missing--) this.emitSafety(now);
    this.filler = donor;
    for (const group of frames) {
      this.stats.filledFrames += 1;
      this.emit(group, now);
    }
  }

  private emitSafety(now: number): void {
    this.stats.safetyFrames += 1;
    if (this.active !== -1) this.stats.filledFrames += 1;
    this.emit(this.options.safety.nextGroup(), now);
  }
}
