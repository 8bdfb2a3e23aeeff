/**
 * One channel's packager: takes aligned AAC frame groups (one frame per rendition,
 * same audio), cuts them into segments on the sample-count timeline, muxes MPEG-TS,
 * keeps the sliding window and publishes to the store in the required order:
 * segment bytes, then the playlists and state in one atomic step, then the notification.
 *
 * Timeline (DESIGN.md): PTS of frame n = start + n·1024·90000/sampleRate, wrapped at
 * 2^33; the wall clock only stamps EXT-X-PROGRAM-DATE-TIME.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ChannelConfig } from '../config/config-schema.js';
import type { AacFrame } from '../media/adts.js';
import { ptsAdd, samplesToTicks } from '../media/pts.js';
import { TsSegmentMuxer } from '../media/ts-muxer.js';
import { isOnairError } from '../errors.js';
import type { Store } from '../store/store.js';
import { renderChannelPlaylists, type LowLatencyTiming } from './channel-playlists.js';
import { SAMPLES_PER_FRAME, SegmentSchedule } from './segment-schedule.js';
import {
  emptyChannelState,
  parseChannelState,
  partName,
  segmentName,
  type ChannelState,
  type DvrSegment,
  type WindowSegment,
} from './sequence-state.js';

export interface PackagerOptions {
  channel: ChannelConfig;
  segmentSeconds: number;
  windowSegments: number;
  store: Store;
  logger: Logger;
  /**
   * Start as a hot standby: cut segments but publish nothing until `promote()` (hot-standby
   * packagers, where a lease decides who writes). Default: lead at once, unfenced.
   */
  standby?: boolean;
  now?: () => number;
}

/** A segment cut and muxed, waiting for its bytes to reach the store. */
interface PendingSegment {
  /** The MSN is given when the segment is stored: dropped segments must leave no gap. */
  entry: Omit<WindowSegment, 'msn'>;
  /** PTS right after this segment, persisted so a restart continues the timeline. */
  endPts: number;
  payloads: Map<string, Uint8Array>;
  /** When its last frame arrived (this.now()). */
  cutAt: number;
  /** Its parts (Low-Latency HLS); the segment's bytes are theirs, end to end. */
  parts: PendingPart[];
}

/** A part muxed for every rendition (Low-Latency HLS). */
interface PendingPart {
  durationSeconds: number;
  payloads: Map<string, Uint8Array>;
  /** The MSN its bytes were stored under, once they are: a takeover may renumber the segment. */
  storedAs?: number;
}

export interface PackagerStats {
  segmentsProduced: number;
  segmentsPublished: number;
  segmentsDropped: number;
  framesReceived: number;
  framesRejected: number;
  storeErrors: number;
  /** Times this packager took the channel over (promote()). */
  promotions: number;
  /** Writes the store refused because another packager holds the lease. */
  fencedWrites: number;
  /** Parts published ahead of their segment (Low-Latency HLS). */
  partsPublished: number;
  /** Wall-clock time (ms) this packager last published a segment. */
  lastPublishedAt: number | undefined;
}

/** Emitted with every published segment: `'segment', entry, timing`. */
export interface SegmentTiming {
  /** From the segment's last frame reaching the packager to its playlist being published. */
  publishDelayMs: number;
}

/** Minimum live window (Apple HLS authoring spec; DESIGN.md): 6 segments and 3 × TD. */
export const MIN_WINDOW_SEGMENTS = 6;
/** First PTS of a brand-new channel: 10 s, clear of zero for players that dislike it. */
const INITIAL_PTS = 900_000;
const RETRY_DELAY_MS = 500;

export class ChannelPackager extends EventEmitter {
  readonly channelId: string;
  readonly schedule: SegmentSchedule;
  readonly windowSize: number;
  readonly stats: PackagerStats = {
    segmentsProduced: 0,
    segmentsPublished: 0,
    segmentsDropped: 0,
    framesReceived: 0,
    framesRejected: 0,
    storeErrors: 0,
    promotions: 0,
    fencedWrites: 0,
    partsPublished: 0,
    lastPublishedAt: undefined,
  };

  private readonly options: PackagerOptions;
  private readonly renditionIds: string[];
  private readonly muxers: TsSegmentMuxer[];
  private readonly now: () => number;
  private readonly logger: Logger;
  /** The state as last published to the store (the production side runs ahead of it). */
  private state!: ChannelState;
  private run = 0;
  /** Frames of the segment being filled, per rendition index. */
  private current: AacFrame[][] = [];
  /** Low-Latency HLS: part layout, the current segment's part ends (frame offsets) and its parts cut so far. */
  private readonly lowLatency: LowLatencyTiming | undefined;
  private partEnds: number[] = [];
  private parts: PendingPart[] = [];
  /** Frames since this run's timeline start, and segments cut in this run. */
  private runFrames = 0;
  private runSegments = 0;
  private runStartPts = 0;
  private wallClockAnchor: number | undefined;
  private nextIsDiscontinuity = false;
  private readonly pending: PendingSegment[] = [];
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Ends the current retry wait early (close() wants a last attempt now). */
  private wakeRetry: (() => void) | undefined;
  /** The segment whose store writes are under way: never dropped from under them. */
  private inFlight: PendingSegment | undefined;
  /** Set when close() has given up waiting: the flush loop stops. */
  private abandoned = false;
  private started = false;
  private closed = false;
  /** Publishing (leader) or only cutting (standby); see promote()/demote(). */
  private leading: boolean;
  /** Lease token every write carries while leading under a lease. */
  private fence: string | undefined;
  /** Whether this run has published anything (its own state may be the stored one). */
  private publishedInRun = false;

  constructor(options: PackagerOptions) {
    super();
    this.options = options;
    this.channelId = options.channel.id;
    this.renditionIds = options.channel.renditions.map((rendition) => rendition.id);
    this.muxers = this.renditionIds.map(() => new TsSegmentMuxer());
    this.schedule = new SegmentSchedule(options.segmentSeconds, options.channel.sampleRate);
    const targetDuration = this.schedule.targetDuration();
    this.windowSize = Math.max(
      options.windowSegments,
      MIN_WINDOW_SEGMENTS,
      Math.ceil((3 * targetDuration) / options.segmentSeconds),
    );
    this.now = options.now ?? Date.now;
    this.logger = options.logger.child({ channel: this.channelId });
    this.current = this.renditionIds.map(() => []);
    this.leading = !options.standby;
    if (options.channel.lowLatency) {
      const partCount = this.schedule.partCount(options.channel.partSeconds);
      this.lowLatency = { partCount, partTargetSeconds: this.schedule.partTargetSeconds(partCount) };
    }
  }

  get isLeading(): boolean {
    return this.leading;
  }

  /** Loads the stored sequence state (continuing after a restart) and reserves a run number. */
  async start(): Promise<void> {
    const stored = parseChannelState(await this.options.store.getState(this.channelId));
    const targetDuration = this.schedule.targetDuration();
    if (stored) {
      if (stored.targetDuration !== targetDuration) {
        this.logger.warn(
          { storedTargetDuration: stored.targetDuration, targetDuration },
          'segment duration changed since the last run; players will see a new target duration',
        );
      }
      this.state = { ...stored, targetDuration };
      // Whatever this run produces is a new timeline for the player (RFC 8216 §4.3.2.3).
      this.nextIsDiscontinuity = stored.nextMsn > 0;
      this.logger.info({ nextMsn: stored.nextMsn, discontinuitySequence: stored.discontinuitySequence }, 'continuing stored sequence');
    } else {
      this.state = emptyChannelState(targetDuration, INITIAL_PTS);
    }
    this.run = await this.options.store.nextRun(this.channelId);
    if (this.leading) await this.completePredecessorOpenSegment(undefined);
    this.runStartPts = this.state.nextPts;
    this.startSegment();
    this.started = true;
  }

  /** Feeds one frame group: `frames[i]` is the same 1024 samples encoded for rendition i. */
  pushFrameGroup(frames: readonly AacFrame[]): void {
    if (!this.started || this.closed) return;
    this.stats.framesReceived += 1;
    if (frames.length !== this.renditionIds.length || frames.some((frame) => frame.sampleRate !== this.options.channel.sampleRate)) {
      this.stats.framesRejected += 1;
      return;
    }
    this.wallClockAnchor ??= this.now();
    frames.forEach((frame, index) => this.current[index]!.push(frame));
    this.runFrames += 1;
    if (this.runFrames === this.schedule.endFrame(this.runSegments)) this.cutSegment();
    else if (this.current[0]!.length === this.partEnds[this.parts.length]) this.cutPart();
  }

  /**
   * How far the audio timeline is ahead (+) or behind (−) the wall clock since this run's
   * first frame, in seconds: an encoder or a sender running slow or fast shows here.
   */
  timelineDriftSeconds(): number | undefined {
    if (this.wallClockAnchor === undefined) return undefined;
    return this.schedule.frameSeconds(this.runFrames) - (this.now() - this.wallClockAnchor) / 1000;
  }

  /** Marks the next segment as the start of a new timeline (input switch without continuity, gap). */
  markDiscontinuity(): void {
    this.nextIsDiscontinuity = true;
  }

  /**
   * Takes the channel over with lease `fence` (hot standby). The stored state decides
   * how: if it is still this run's own last publish (a lease lapsed, nobody else wrote),
   * publishing just goes on. Otherwise the predecessor's window, MSN, discontinuity
   * sequence and bandwidth are adopted; segments cut here that cover audio the
   * predecessor already published are dropped, and the first one published carries the
   * one EXT-X-DISCONTINUITY of the takeover. If the store lost the state (a Redis
   * without persistence restarted), the MSN goes on from what this packager knew.
   * Throws when the store cannot be read; the caller retries.
   */
  async promote(fence: string): Promise<void> {
    // A write of an earlier lease may still be under way: let it settle (fenced or not) first.
    await this.settleFlush();
    const stored = parseChannelState(await this.options.store.getState(this.channelId));
    const own = this.publishedInRun && stored !== undefined && stored.nextMsn === this.state.nextMsn && stored.window.at(-1)?.run === this.run;
    if (!own) {
      const targetDuration = this.schedule.targetDuration();
      if (stored && stored.nextMsn >= this.state.nextMsn) {
        this.state = { ...stored, targetDuration };
      } else if (this.state.nextMsn > 0) {
        // The store lost its data (or went back: a failover that lost writes). The listed
        // segments are gone, and a leader may have published MSNs this packager never saw:
        // jump a window past the highest MSN seen, so none is ever given to another URI.
        const nextMsn = this.state.nextMsn + this.windowSize;
        this.logger.warn({ storedNextMsn: stored?.nextMsn ?? null, nextMsn }, 'the store lost its state; going on after the highest MSN seen');
        this.state = { ...this.state, targetDuration, nextMsn, window: [], open: undefined };
      }
      await this.completePredecessorOpenSegment(fence);
      this.dropAlreadyAired();
      if (this.state.nextMsn > 0) this.flagNextDiscontinuity();
    }
    this.fence = fence;
    this.leading = true;
    this.stats.promotions += 1;
    this.logger.info({ nextMsn: this.state.nextMsn, continuing: own, queued: this.pending.length }, 'packager leads');
    void this.flush();
  }

  /**
   * Low-Latency HLS: the stored playlist may list parts of a segment its writer never
   * completed (it crashed, or was taken over). Players have seen that MSN with those part
   * URIs, so it is completed from the stored parts as a short segment under its own URI,
   * rather than given to this run's audio. If a part is gone (expired), the MSN cannot be
   * completed and this run's segment takes it, after the takeover's discontinuity.
   */
  private async completePredecessorOpenSegment(fence: string | undefined): Promise<void> {
    const open = this.state.open;
    if (!open || open.run === this.run || open.parts.length === 0) return;
    const store = this.options.store;
    const payloads = new Map<string, Uint8Array>();
    for (const rendition of this.renditionIds) {
      const parts = await Promise.all(open.parts.map((_, part) => store.getSegment(this.channelId, rendition, partName(open.msn, open.run, part))));
      if (parts.some((part) => part === null)) {
        this.logger.warn({ msn: open.msn, run: open.run }, "the previous writer's listed parts are gone; its segment cannot be completed");
        this.state = { ...this.state, open: undefined };
        return;
      }
      payloads.set(rendition, Buffer.concat(parts.map((part) => part!)));
    }
    const ttl = this.segmentTtlSeconds();
    await Promise.all([...payloads].map(([rendition, bytes]) => store.putSegment(this.channelId, rendition, segmentName(open.msn, open.run), bytes, ttl, fence)));
    const durationSeconds = open.parts.reduce((sum, duration) => sum + duration, 0);
    const entry: WindowSegment = {
      msn: open.msn,
      run: open.run,
      durationSeconds,
      programDateTime: open.programDateTime,
      discontinuity: open.discontinuity,
      bytes: Object.fromEntries([...payloads].map(([rendition, bytes]) => [rendition, bytes.byteLength])),
      parts: open.parts,
    };
    const endPts = ptsAdd(this.state.nextPts, Math.round(durationSeconds * 90_000));
    const state = this.stateWith(entry, endPts);
    await store.publish({ channel: this.channelId, playlists: this.renderPlaylists(state), state: JSON.stringify(state), fence });
    this.state = state;
    this.logger.info({ msn: open.msn, run: open.run, parts: open.parts.length }, "completed the previous writer's open segment from its parts");
  }

  /** Waits (bounded) until no store write is under way. */
  private async settleFlush(timeoutMs = 3000): Promise<void> {
    if (!this.flushing) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flushing, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * While standing by, follow the stored state, so that a takeover after the store lost
   * its data still continues from the highest MSN this packager has seen.
   */
  private followStoredState(): void {
    this.options.store.getState(this.channelId).then(
      (text) => {
        const stored = parseChannelState(text);
        if (!this.leading && stored && stored.nextMsn > this.state.nextMsn) this.state = { ...stored, targetDuration: this.schedule.targetDuration() };
      },
      () => undefined,
    );
  }

  /** Stops publishing (the lease is gone); segments keep being cut for a later takeover. */
  demote(): void {
    if (!this.leading) return;
    this.leading = false;
    this.fence = undefined;
    this.wakeRetry?.();
  }

  /** Drops queued segments whose audio mostly precedes the end of the stored window. */
  private dropAlreadyAired(): void {
    const last = this.state.window.at(-1);
    if (!last) return;
    const airedUntil = last.programDateTime + last.durationSeconds * 1000;
    while (this.pending.length > 0 && this.pending[0] !== this.inFlight) {
      const { programDateTime, durationSeconds } = this.pending[0]!.entry;
      const end = programDateTime + durationSeconds * 1000;
      if (end - airedUntil > (durationSeconds * 1000) / 2) break;
      this.pending.shift();
      this.stats.segmentsDropped += 1;
    }
  }

  /** The next segment published starts a new timeline for the player. */
  private flagNextDiscontinuity(): void {
    const next = this.pending.find((segment) => segment !== this.inFlight);
    if (next) next.entry.discontinuity = true;
    else this.nextIsDiscontinuity = true;
  }

  /** Stops taking frames and waits (bounded) until the segments already cut are stored. */
  async close(timeoutMs = 5000): Promise<void> {
    // Low-Latency HLS: players have seen parts of the segment being made. It is ended here,
    // short, so that the MSN they saw keeps its URIs (a successor starts the next one).
    if (this.lowLatency && this.leading && !this.closed && this.parts.some((part) => part.storedAs !== undefined)) this.cutSegment();
    this.closed = true;
    this.wakeRetry?.();
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise((resolve) => (deadline = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(deadline);
    this.abandoned = true;
    this.wakeRetry?.();
  }

  /** Resets the per-segment state for the next segment on the schedule. */
  private startSegment(): void {
    this.current = this.renditionIds.map(() => []);
    this.parts = [];
    this.partEnds = this.lowLatency ? this.schedule.partEnds(this.runSegments, this.lowLatency.partCount) : [];
  }

  /** PTS of frame `frame` of the current segment. */
  private framePts(frame: number): number {
    const segmentStart = this.runFrames - this.current[0]!.length;
    return ptsAdd(this.runStartPts, samplesToTicks((segmentStart + frame) * SAMPLES_PER_FRAME, this.options.channel.sampleRate));
  }

  /** Muxes frames [from, to) of the current segment for every rendition. */
  private muxCurrent(from: number, to: number): Map<string, Uint8Array> {
    const sampleRate = this.options.channel.sampleRate;
    const frameTicks = (SAMPLES_PER_FRAME * 90_000) / sampleRate;
    const startPts = this.framePts(from);
    const payloads = new Map<string, Uint8Array>();
    this.current.forEach((frames, index) => {
      const timed = frames.slice(from, to).map((frame, frameIndex) => ({
        data: frame.data,
        pts: ptsAdd(startPts, samplesToTicks(frameIndex * SAMPLES_PER_FRAME, sampleRate)),
        durationTicks: frameTicks,
      }));
      payloads.set(this.renditionIds[index]!, this.muxers[index]!.muxSegment(timed));
    });
    return payloads;
  }

  /** Low-Latency HLS: the frames since the last part become the next part, published at once when leading. */
  private cutPart(): void {
    const from = this.parts.length === 0 ? 0 : this.partEnds[this.parts.length - 1]!;
    const to = this.current[0]!.length;
    this.parts.push({ durationSeconds: this.schedule.frameSeconds(to - from), payloads: this.muxCurrent(from, to) });
    if (this.leading) void this.flush();
  }

  private cutSegment(): void {
    const frameCount = this.current[0]!.length;
    const startFrame = this.runFrames - frameCount;
    let payloads: Map<string, Uint8Array>;
    if (this.lowLatency) {
      // The last part ends the segment; a segment cut early (close) may have no frames after its last part.
      if (frameCount > (this.partEnds[this.parts.length - 1] ?? 0) || this.parts.length === 0) this.cutPart();
      payloads = new Map(this.renditionIds.map((id) => [id, Buffer.concat(this.parts.map((part) => part.payloads.get(id)!))]));
    } else {
      payloads = this.muxCurrent(0, frameCount);
    }
    const bytes = Object.fromEntries([...payloads].map(([id, segment]) => [id, segment.byteLength]));
    const entry = {
      run: this.run,
      durationSeconds: this.schedule.frameSeconds(frameCount),
      programDateTime: this.programDateTime(startFrame),
      discontinuity: this.nextIsDiscontinuity,
      bytes,
    };
    this.nextIsDiscontinuity = false;
    const endPts = this.framePts(frameCount);
    const parts = this.parts;
    this.runSegments += 1;
    this.startSegment();
    this.stats.segmentsProduced += 1;
    this.pending.push({ entry, endPts, payloads, parts, cutAt: this.now() });
    this.dropOverflowingPending();
    if (this.leading) void this.flush();
    else this.followStoredState();
  }

  private programDateTime(startFrame: number): number {
    return this.wallClockAnchor! + this.schedule.frameSeconds(startFrame) * 1000;
  }

  /**
   * While the store is unreachable, segments queue here. Beyond a window's worth, the
   * oldest are dropped: they could never be listed anyway. The next stored segment then
   * carries a discontinuity, since its predecessor in the playlist is not its predecessor in time.
   */
  private dropOverflowingPending(): void {
    while (this.pending.length > this.windowSize) {
      // The oldest segment not being written right now, and whose parts players have not
      // seen, goes; its successor starts a new timeline.
      const first = this.pending[0]!;
      const index = first === this.inFlight || first.parts.some((part) => part.storedAs !== undefined) ? 1 : 0;
      this.pending.splice(index, 1);
      this.pending[index]!.entry.discontinuity = true;
      this.stats.segmentsDropped += 1;
    }
  }

  private flush(): Promise<void> {
    this.flushing ??= this.flushPending().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /**
   * Writes what is queued, oldest first, while leading: whole segments, then (Low-Latency
   * HLS, nothing else queued) the parts of the segment being made, so the MSN they are
   * published under is the one their segment gets.
   */
  private async flushPending(): Promise<void> {
    while (!this.abandoned && this.leading) {
      const segment = this.pending[0];
      const part = segment ? undefined : this.parts.find((candidate) => candidate.storedAs === undefined);
      if (!segment && !part) return;
      const msn = this.state.nextMsn;
      const fence = this.fence;
      this.inFlight = segment;
      try {
        if (segment) await this.publishSegment(segment, fence);
        else await this.publishPart(part!, fence);
      } catch (error) {
        if (isOnairError(error, 'ONAIR_FENCED')) {
          // Another packager leads: stop writing at once and keep the queue for a later takeover
          // (unless a newer lease of ours already replaced the one this write carried).
          this.stats.fencedWrites += 1;
          this.logger.warn({ msn }, 'write refused: another packager holds the lease');
          if (fence === this.fence) {
            this.demote();
            this.emit('fenced');
          }
          return;
        }
        this.stats.storeErrors += 1;
        this.logger.warn({ err: error, msn }, 'store write failed; will retry');
        if (this.abandoned) return;
        await new Promise<void>((resolve) => {
          this.wakeRetry = resolve;
          this.retryTimer = setTimeout(resolve, RETRY_DELAY_MS);
        });
        clearTimeout(this.retryTimer);
        this.wakeRetry = undefined;
      } finally {
        this.inFlight = undefined;
      }
    }
  }

  private async publishSegment(next: PendingSegment, fence: string | undefined): Promise<void> {
    const store = this.options.store;
    const msn = this.state.nextMsn;
    const ttl = this.segmentTtlSeconds();
    // 1. segment bytes (and any part not stored yet), every rendition, before any playlist lists them
    const writes = [...next.payloads].map(([rendition, bytes]) =>
      store.putSegment(this.channelId, rendition, segmentName(msn, next.entry.run), bytes, ttl, fence),
    );
    next.parts.forEach((part, index) => {
      if (part.storedAs !== msn) writes.push(...this.partWrites(part, msn, index, fence));
    });
    await Promise.all(writes);
    next.parts.forEach((part) => (part.storedAs = msn));
    // 2. the playlists and the state, atomically (3. the store notifies). The entry is
    // re-read: an overflow may have flagged it as a discontinuity meanwhile.
    const published: WindowSegment = {
      ...next.entry,
      msn,
      programDateTime: this.monotonicPdt(next.entry.programDateTime),
      ...(this.lowLatency ? { parts: next.parts.map((part) => part.durationSeconds) } : {}),
    };
    const state = this.stateWith(published, next.endPts);
    await store.publish({ channel: this.channelId, playlists: this.renderPlaylists(state), state: JSON.stringify(state), fence });
    this.state = state;
    this.publishedInRun = true;
    this.pending.splice(this.pending.indexOf(next), 1);
    this.stats.segmentsPublished += 1;
    this.stats.lastPublishedAt = this.now();
    this.logger.debug({ msn }, 'segment published');
    this.emit('segment', published, { publishDelayMs: this.now() - next.cutAt } satisfies SegmentTiming);
  }

  /** Low-Latency HLS: stores a part of the segment being made and lists it (and the next hint). */
  private async publishPart(part: PendingPart, fence: string | undefined): Promise<void> {
    const msn = this.state.nextMsn;
    const index = this.parts.indexOf(part);
    const discontinuity = this.nextIsDiscontinuity;
    const programDateTime = this.monotonicPdt(this.programDateTime(this.runFrames - this.current[0]!.length));
    await Promise.all(this.partWrites(part, msn, index, fence));
    part.storedAs = msn;
    // The segment may have been cut meanwhile: then it is queued and publishes these parts itself.
    if (this.parts[index] !== part) return;
    const open = { msn, run: this.run, discontinuity, programDateTime, parts: this.parts.slice(0, index + 1).map((cut) => cut.durationSeconds) };
    const state: ChannelState = { ...this.state, open };
    await this.options.store.publish({ channel: this.channelId, playlists: this.renderPlaylists(state), state: JSON.stringify(state), fence });
    this.state = state;
    this.publishedInRun = true;
    this.stats.partsPublished += 1;
  }

  private partWrites(part: PendingPart, msn: number, index: number, fence: string | undefined): Promise<void>[] {
    // As long as segments: a part stored before a long store outage is still listed after it.
    const ttl = this.segmentTtlSeconds();
    return [...part.payloads].map(([rendition, bytes]) =>
      this.options.store.putSegment(this.channelId, rendition, partName(msn, this.run, index), bytes, ttl, fence),
    );
  }

  /** PDT never goes back nor overlaps the previous segment, across restarts and takeovers, even if a wall clock did. */
  private monotonicPdt(stamp: number): number {
    const last = this.state.window.at(-1);
    if (!last) return stamp;
    const lastEnd = last.programDateTime + last.durationSeconds * 1000;
    // Within a millisecond is the same instant (float sums of frame durations).
    return stamp < lastEnd - 1 ? lastEnd : stamp;
  }

  /** The state after `entry` joins the window (the oldest segments slide out). */
  private stateWith(entry: WindowSegment, endPts: number): ChannelState {
    const window = [...this.state.window, entry];
    let discontinuitySequence = this.state.discontinuitySequence;
    while (window.length > this.windowSize) {
      const leaving = window.shift()!;
      // RFC 8216 §6.2.2: removing a segment with a discontinuity tag increments the sequence.
      if (leaving.discontinuity) discontinuitySequence += 1;
    }
    const bandwidth = { ...this.state.bandwidth };
    for (const [rendition, size] of Object.entries(entry.bytes)) {
      const bits = size * 8;
      const previous = bandwidth[rendition] ?? { peak: 0, bits: 0, seconds: 0 };
      bandwidth[rendition] = {
        peak: Math.max(previous.peak, bits / entry.durationSeconds),
        bits: previous.bits + bits,
        seconds: previous.seconds + entry.durationSeconds,
      };
    }
    return { ...this.state, nextMsn: entry.msn + 1, nextPts: endPts, window, discontinuitySequence, bandwidth, open: undefined, dvr: this.dvrWith(entry, window.length) };
  }

  /**
   * The DVR window after `entry` joins it: the last dvrSeconds of segments, and never fewer
   * than the live window holds (so the live window is always its tail). Undefined when off.
   */
  private dvrWith(entry: WindowSegment, liveSegments: number): DvrSegment[] | undefined {
    const dvrSeconds = this.options.channel.dvrSeconds;
    if (dvrSeconds <= 0) return undefined;
    const { msn, run, durationSeconds, programDateTime, discontinuity } = entry;
    // After a store that lost its state, the DVR restarts with the new window (no MSN gap inside it).
    const previous = (this.state.dvr ?? []).filter((segment) => segment.msn < msn);
    const dvr = previous.at(-1)?.msn === msn - 1 ? [...previous, { msn, run, durationSeconds, programDateTime, discontinuity }] : [{ msn, run, durationSeconds, programDateTime, discontinuity }];
    let seconds = dvr.reduce((sum, segment) => sum + segment.durationSeconds, 0);
    while (dvr.length > liveSegments && seconds - dvr[0]!.durationSeconds >= dvrSeconds) seconds -= dvr.shift()!.durationSeconds;
    return dvr;
  }

  private renderPlaylists(state: ChannelState): Record<string, string> {
    return renderChannelPlaylists(this.options.channel, state, { run: this.run, lowLatency: this.lowLatency });
  }

  /**
   * RFC 8216 §6.2.2: a segment stays available for its duration plus the longest
   * playlist's duration after it leaves the playlist. It is in the playlist for a window,
   * so the TTL covers two windows plus two target durations, and a margin for slow clients.
   */
  segmentTtlSeconds(): number {
    // With a DVR window the DVR playlist is the longest playlist: it sets the TTL.
    const windowSeconds = Math.max(this.windowSize * this.state.targetDuration, this.options.channel.dvrSeconds);
    return Math.ceil(2 * windowSeconds + 2 * this.state.targetDuration + 30);
  }

}
