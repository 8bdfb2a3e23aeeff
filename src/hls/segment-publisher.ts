/**
 * Publishes a channel's muxed segments and parts to the store, in the required order:
 * segment bytes, then the playlists and state in one atomic step (then the store notifies).
 * It owns what stands between the cutting and the store: the queue (bounded by the window),
 * flush and retry while the store is down, fencing (a refused write demotes it), leading
 * and standing by, and completing a predecessor's open Low-Latency segment. Time and timers
 * come from the injected clock. docs/architecture.md, "Store" and "Failure model".
 */
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock.js';
import type { ChannelConfig } from '../config/config-schema.js';
import { isOnairError } from '../errors.js';
import type { SegmentPublishStore } from '../store/store.js';
import { renderChannelPlaylists, type LowLatencyTiming } from './channel-playlists.js';
import { completedOpenSegment, monotonicPdt, segmentTtlSeconds, stateWith, takeoverState, type WindowLimits } from './channel-window.js';
import { SegmentQueue, type PendingPart, type QueuedSegment } from './segment-queue.js';
import type { OpenSegmentStart } from './segmenter.js';
import {
  emptyChannelState,
  knowsNoSegment,
  newRunId,
  parseChannelState,
  partName,
  RUN_RANDOM_RANGE,
  segmentName,
  wallClockMsn,
  type ChannelState,
  type WindowSegment,
} from './sequence-state.js';
import { initSegmentName, segmentExtension, type SegmentExtension } from './published-names.js';
import type { ContentKeys, SegmentSealer } from './segment-encryption.js';

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

/** A segment cut and muxed, as the publisher queues it. */
export interface MuxedSegment {
  durationSeconds: number;
  programDateTime: number;
  discontinuity: boolean;
  /** PTS right after this segment, persisted so a restart continues the timeline. */
  endPts: number;
  payloads: Map<string, Uint8Array>;
}

/** The segment being filled, as the segmenter knows it. */
export interface SegmentInProgress {
  openSegmentStart(): OpenSegmentStart;
  markDiscontinuity(discontinuity?: boolean): void;
}

export interface SegmentPublisherOptions {
  channel: ChannelConfig;
  store: SegmentPublishStore;
  logger: Logger;
  clock: Clock;
  targetDuration: number;
  windowSize: number;
  lowLatency: LowLatencyTiming | undefined;
  /** Publish at once (true) or stand by until promote(). */
  leading: boolean;
  /** Counters shared with the packager that owns this publisher. */
  stats: PackagerStats;
  inProgress: SegmentInProgress;
  onSegment: (entry: WindowSegment, timing: SegmentTiming) => void;
  /** A write was refused with the lease it carried: this publisher now stands by. */
  onFenced: () => void;
  /**
   * fMP4: each rendition's init segment (asked once something is muxed: the muxer learns the
   * format from the first frame), stored as `init-{run}.mp4` before anything of the run is listed.
   * An `encryption: cbcs` channel's are asked per key period (`keyId`) and stored as
   * `init-{run}-k{keyId}.mp4` before anything of the period is listed (docs/architecture.md, "Content encryption").
   */
  initSegments?: (keyId?: number) => ReadonlyMap<string, Uint8Array>;
  /** More manifests over the same state, published with the playlists (fmp4 channels: the DASH MPDs, docs/architecture.md, "MPEG-DASH manifests"). */
  manifests?: ManifestRenderer;
  /** An encrypted channel's keys: every segment and part is stored encrypted (docs/architecture.md, "Content encryption"). */
  contentKeys?: ContentKeys;
}

/** What a clear channel's bytes go through on their way to the store. */
const CLEAR: Pick<SegmentSealer, 'seal' | 'open'> & { keyId?: number } = { seal: (bytes) => bytes, open: (bytes) => bytes };

/** Renders manifests (name → text) from a channel's sequence state; src/hls cannot import their writers, so they are handed in. */
export type ManifestRenderer = (state: ChannelState) => Record<string, string>;

/** First PTS of a brand-new channel: 10 s, clear of zero for players that dislike it. */
const INITIAL_PTS = 900_000;
const RETRY_DELAY_MS = 500;

export class SegmentPublisher {
  private readonly options: SegmentPublisherOptions;
  private readonly channelId: string;
  private readonly renditionIds: string[];
  /** Each rendition's segment extension (`.ts`, or `.mp3` for packed MP3 audio). */
  private readonly extensions: Map<string, SegmentExtension>;
  private readonly limits: WindowLimits;
  private readonly logger: Logger;
  /** The state as last published to the store (the production side runs ahead of it). */
  private state!: ChannelState;
  private run = 0;
  private readonly queue: SegmentQueue;
  private flushing: Promise<void> | undefined;
  /** Ends the current retry wait early (close() wants a last attempt now). */
  private wakeRetry: (() => void) | undefined;
  /** Set when close() has given up waiting: the flush loop stops. */
  private abandoned = false;
  /** Publishing (leader) or only queueing (standby); see promote()/demote(). */
  private leading: boolean;
  /** Lease token every write carries while leading under a lease. */
  private fence: string | undefined;
  /** Whether this run has published anything (its own state may be the stored one). */
  private publishedInRun = false;
  /** fMP4: when this run's init segments were last written (clock ms), to keep them alive as long as its segments. */
  private initWrittenAt: number | undefined;
  /** The init segment name last written (a cbcs channel writes one per key period). */
  private initWrittenName: string | undefined;

  constructor(options: SegmentPublisherOptions) {
    this.options = options;
    this.channelId = options.channel.id;
    this.renditionIds = options.channel.renditions.map((rendition) => rendition.id);
    this.extensions = new Map(options.channel.renditions.map((rendition) => [rendition.id, segmentExtension(rendition, options.channel.container)]));
    this.limits = { windowSize: options.windowSize, dvrSeconds: options.channel.dvrSeconds };
    this.logger = options.logger;
    this.leading = options.leading;
    this.queue = new SegmentQueue(options.windowSize);
  }

  get isLeading(): boolean {
    return this.leading;
  }

  /** Where this run's timeline starts (valid after start()). */
  get nextPts(): number {
    return this.state.nextPts;
  }

  /** The parts cut so far of the segment being filled. */
  get openParts(): readonly PendingPart[] {
    return this.queue.openParts;
  }

  /**
   * Loads the stored sequence state (continuing after a restart) and makes this run's id.
   * Without stored state (a new channel, or a store that lost its data) the channel starts
   * at the wall-clock MSN, ahead of anything served before (sequence-state.ts).
   */
  async start(): Promise<void> {
    const stored = parseChannelState(await this.options.store.getState(this.channelId));
    const targetDuration = this.options.targetDuration;
    if (stored) {
      if (stored.targetDuration !== targetDuration) {
        this.logger.warn(
          { storedTargetDuration: stored.targetDuration, targetDuration },
          'segment duration changed since the last run; players will see a new target duration',
        );
      }
      this.state = { ...stored, targetDuration };
      // Whatever this run produces is a new timeline for the player (RFC 8216 §4.3.2.3).
      this.options.inProgress.markDiscontinuity(!knowsNoSegment(stored));
      this.logger.info({ nextMsn: stored.nextMsn, discontinuitySequence: stored.discontinuitySequence }, 'continuing stored sequence');
    } else {
      this.state = emptyChannelState(targetDuration, INITIAL_PTS, wallClockMsn(this.options.clock.now()));
      this.logger.info({ nextMsn: this.state.nextMsn }, 'no stored sequence state: starting at the wall-clock MSN');
    }
    this.run = newRunId(this.options.clock.now(), randomInt(RUN_RANDOM_RANGE));
    if (this.leading) await this.completePredecessorOpenSegment(undefined);
  }

  /** Low-Latency HLS: queues a part of the segment being filled, published at once when leading. */
  addPart(part: PendingPart): void {
    this.queue.addPart(part);
    if (this.leading) void this.flush();
  }

  /** Queues a segment (with the parts cut for it); beyond a window's worth the oldest queued go. */
  addSegment(segment: MuxedSegment): void {
    const { durationSeconds, programDateTime, discontinuity, endPts, payloads } = segment;
    const bytes = Object.fromEntries([...payloads].map(([id, bytes]) => [id, bytes.byteLength]));
    const entry = { run: this.run, durationSeconds, programDateTime, discontinuity, bytes };
    this.options.stats.segmentsDropped += this.queue.push({ entry, endPts, payloads, cutAt: this.options.clock.now() });
    if (this.leading) void this.flush();
    else this.followStoredState();
  }

  /** Whether players may have seen a part of the segment being filled. */
  hasStoredOpenPart(): boolean {
    return this.queue.hasStoredOpenPart();
  }

  /**
   * Takes the channel over with lease `fence`; see ChannelPackager.promote(). Throws when
   * the store cannot be read.
   */
  async promote(fence: string): Promise<void> {
    // A write of an earlier lease may still be under way: let it settle (fenced or not) first.
    await this.settleFlush();
    const stored = parseChannelState(await this.options.store.getState(this.channelId));
    const own = this.publishedInRun && stored !== undefined && stored.nextMsn === this.state.nextMsn && stored.window.at(-1)?.run === this.run;
    if (!own) {
      const takeover = takeoverState(this.state, stored, this.limits, this.options.targetDuration, wallClockMsn(this.options.clock.now()));
      if (takeover.storeLost) {
        this.logger.warn({ storedNextMsn: stored?.nextMsn ?? null, nextMsn: takeover.state.nextMsn }, 'the store lost its state; going on after the highest MSN seen');
      }
      this.state = takeover.state;
      await this.completePredecessorOpenSegment(fence);
      this.options.stats.segmentsDropped += this.queue.dropAlreadyAired(this.state.window);
      // The next segment published starts a new timeline for the player (unless the channel is new).
      if (!knowsNoSegment(this.state) && !this.queue.flagNextDiscontinuity()) this.options.inProgress.markDiscontinuity();
    }
    this.fence = fence;
    this.leading = true;
    this.options.stats.promotions += 1;
    this.logger.info({ nextMsn: this.state.nextMsn, continuing: own, queued: this.queue.length }, 'packager leads');
    void this.flush();
  }

  /** Stops publishing (the lease is gone); segments keep queueing for a later takeover. */
  demote(): void {
    if (!this.leading) return;
    this.leading = false;
    this.fence = undefined;
    this.wakeRetry?.();
  }

  /** Waits (bounded) until what is queued is stored; then the flush loop stops for good. */
  async close(timeoutMs: number): Promise<void> {
    this.wakeRetry?.();
    await this.flushWithin(this.flush(), timeoutMs);
    this.abandoned = true;
    this.wakeRetry?.();
  }

  /** How long segments live in the store; see channel-window.ts segmentTtlSeconds. */
  segmentTtlSeconds(): number {
    return segmentTtlSeconds(this.limits, this.state.targetDuration);
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
    // Encrypted parts are decrypted one by one, joined, and the segment encrypted whole.
    const sealer = this.options.contentKeys ? await this.options.contentKeys.forSegment(open.msn) : CLEAR;
    for (const rendition of this.renditionIds) {
      const parts = await Promise.all(open.parts.map((_, part) => store.getSegment(this.channelId, rendition, partName(open.msn, open.run, part, this.extensions.get(rendition)))));
      if (parts.some((part) => part === null)) {
        this.logger.warn({ msn: open.msn, run: open.run }, "the previous writer's listed parts are gone; its segment cannot be completed");
        this.state = { ...this.state, open: undefined };
        return;
      }
      payloads.set(rendition, Buffer.concat(parts.map((part) => sealer.open(part!))));
    }
    const ttl = this.segmentTtlSeconds();
    await this.keepPredecessorInit(open.run, fence, this.initKeyId(sealer));
    await Promise.all([...payloads].map(([rendition, bytes]) => store.putSegment(this.channelId, rendition, segmentName(open.msn, open.run, this.extensions.get(rendition)), sealer.seal(bytes), ttl, fence)));
    const bytes = Object.fromEntries([...payloads].map(([rendition, bytes]) => [rendition, bytes.byteLength]));
    const { entry, endPts } = completedOpenSegment(open, bytes, this.state.nextPts);
    const state = stateWith(this.state, entry, endPts, this.limits);
    await store.publish({ channel: this.channelId, playlists: this.renderPlaylists(state), state: JSON.stringify(state), fence });
    this.state = state;
    this.logger.info({ msn: open.msn, run: open.run, parts: open.parts.length }, "completed the previous writer's open segment from its parts");
  }

  /**
   * fMP4: the completed segment needs its writer's init segment as long as it is listed
   * itself, so that init is written again with this run's TTL (it is the predecessor's
   * bytes, under its name: a name never gets other bytes).
   */
  private async keepPredecessorInit(run: number, fence: string | undefined, keyId: number | undefined): Promise<void> {
    if (!this.options.initSegments) return;
    const store = this.options.store;
    const name = initSegmentName(run, keyId);
    await Promise.all(
      this.renditionIds.map(async (rendition) => {
        const bytes = await store.getSegment(this.channelId, rendition, name);
        if (bytes) await store.putSegment(this.channelId, rendition, name, bytes, this.initTtlSeconds(), fence);
      }),
    );
  }

  /**
   * An init segment lives two segment TTLs and is written again once a segment TTL has
   * passed: whenever a segment of the run is written, its init outlives it.
   */
  private initTtlSeconds(): number {
    return 2 * this.segmentTtlSeconds();
  }

  /** fMP4: this run's init segments, written when none is stored yet or they are a segment TTL old. */
  private initWrites(fence: string | undefined, keyId: number | undefined): Promise<void>[] {
    const initSegments = this.options.initSegments;
    const now = this.options.clock.now();
    const name = initSegmentName(this.run, keyId);
    // A cbcs channel's new key period has a new init (a previous period's stays as long as its segments: it was written at most a segment TTL before the last of them).
    const fresh = this.initWrittenName === name && this.initWrittenAt !== undefined && now - this.initWrittenAt < this.segmentTtlSeconds() * 1000;
    if (!initSegments || fresh) return [];
    const ttl = this.initTtlSeconds();
    const writes = [...initSegments(keyId)].map(([rendition, bytes]) => this.options.store.putSegment(this.channelId, rendition, name, bytes, ttl, fence));
    return [
      Promise.all(writes).then(() => {
        this.initWrittenAt = now;
        this.initWrittenName = name;
      }),
    ];
  }

  /** The key period whose init segment a segment needs: a cbcs channel's sealer's; none otherwise (one init per run). */
  private initKeyId(sealer: { keyId?: number }): number | undefined {
    return this.options.channel.encryption === 'cbcs' ? sealer.keyId : undefined;
  }

  /** Waits (bounded) until no store write is under way. */
  private async settleFlush(timeoutMs = 3000): Promise<void> {
    if (this.flushing) await this.flushWithin(this.flushing, timeoutMs);
  }

  /** Waits for `flush`, or `timeoutMs` of the clock, whichever comes first. */
  private async flushWithin(flush: Promise<void>, timeoutMs: number): Promise<void> {
    let deadline: Timer | undefined;
    await Promise.race([flush, new Promise((resolve) => (deadline = this.options.clock.setTimeout(() => resolve(undefined), timeoutMs)))]);
    deadline?.cancel();
  }

  /**
   * While standing by, follow the stored state, so that a takeover after the store lost
   * its data still continues from the highest MSN this packager has seen.
   */
  private followStoredState(): void {
    this.options.store.getState(this.channelId).then(
      (text) => {
        const stored = parseChannelState(text);
        if (!this.leading && stored && (stored.nextMsn > this.state.nextMsn || knowsNoSegment(this.state))) {
          this.state = { ...stored, targetDuration: this.options.targetDuration };
        }
      },
      () => undefined,
    );
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
      const segment = this.queue.head();
      const part = segment ? undefined : this.queue.nextUnstoredPart();
      if (!segment && !part) return;
      const msn = this.state.nextMsn;
      const fence = this.fence;
      this.queue.inFlight = segment;
      try {
        if (segment) await this.publishSegment(segment, fence);
        else await this.publishPart(part!, fence);
      } catch (error) {
        if (isOnairError(error, 'ONAIR_FENCED')) {
          // Another packager leads: stop writing at once and keep the queue for a later takeover
          // (unless a newer lease of ours already replaced the one this write carried).
          this.options.stats.fencedWrites += 1;
          this.logger.warn({ msn }, 'write refused: another packager holds the lease');
          if (fence === this.fence) {
            this.demote();
            this.options.onFenced();
          }
          return;
        }
        this.options.stats.storeErrors += 1;
        this.logger.warn({ err: error, msn }, 'store write failed; will retry');
        if (this.abandoned) return;
        await this.retryWait();
      } finally {
        this.queue.inFlight = undefined;
      }
    }
  }

  /** The pause before the next attempt; demote() and close() end it early. */
  private async retryWait(): Promise<void> {
    let timer: Timer | undefined;
    await new Promise<void>((resolve) => {
      this.wakeRetry = resolve;
      timer = this.options.clock.setTimeout(resolve, RETRY_DELAY_MS);
    });
    timer?.cancel();
    this.wakeRetry = undefined;
  }

  private async publishSegment(next: QueuedSegment, fence: string | undefined): Promise<void> {
    const store = this.options.store;
    const msn = this.state.nextMsn;
    const ttl = this.segmentTtlSeconds();
    const sealer = this.options.contentKeys ? await this.options.contentKeys.forSegment(msn) : CLEAR;
    // 1. segment bytes (and any part not stored yet, and fMP4's init segments), every rendition, before any playlist lists them
    const writes = [...next.payloads].map(([rendition, bytes]) =>
      store.putSegment(this.channelId, rendition, segmentName(msn, next.entry.run, this.extensions.get(rendition)), sealer.seal(bytes), ttl, fence),
    );
    writes.push(...this.initWrites(fence, this.initKeyId(sealer)));
    next.parts.forEach((part, index) => {
      if (part.storedAs !== msn) writes.push(...this.partWrites(part, msn, index, fence, sealer));
    });
    await Promise.all(writes);
    next.parts.forEach((part) => (part.storedAs = msn));
    // 2. the playlists and the state, atomically (3. the store notifies). The entry is
    // re-read: an overflow may have flagged it as a discontinuity meanwhile.
    const published: WindowSegment = {
      ...next.entry,
      msn,
      programDateTime: monotonicPdt(this.state.window, next.entry.programDateTime),
      ...(this.options.lowLatency ? { parts: next.parts.map((part) => part.durationSeconds) } : {}),
    };
    const state = stateWith(this.state, published, next.endPts, this.limits);
    await store.publish({ channel: this.channelId, playlists: this.renderPlaylists(state), state: JSON.stringify(state), fence });
    this.state = state;
    this.publishedInRun = true;
    this.queue.remove(next);
    const stats = this.options.stats;
    stats.segmentsPublished += 1;
    stats.lastPublishedAt = this.options.clock.now();
    this.logger.debug({ msn }, 'segment published');
    this.options.onSegment(published, { publishDelayMs: this.options.clock.now() - next.cutAt });
  }

  /** Low-Latency HLS: stores a part of the segment being made and lists it (and the next hint). */
  private async publishPart(part: PendingPart, fence: string | undefined): Promise<void> {
    const msn = this.state.nextMsn;
    const index = this.queue.openParts.indexOf(part);
    const start = this.options.inProgress.openSegmentStart();
    const programDateTime = monotonicPdt(this.state.window, start.programDateTime);
    const sealer = this.options.contentKeys ? await this.options.contentKeys.forSegment(msn) : CLEAR;
    await Promise.all([...this.partWrites(part, msn, index, fence, sealer), ...this.initWrites(fence, this.initKeyId(sealer))]);
    part.storedAs = msn;
    // The segment may have been cut meanwhile: then it is queued and publishes these parts itself.
    if (this.queue.openParts[index] !== part) return;
    const open = { msn, run: this.run, discontinuity: start.discontinuity, programDateTime, parts: this.queue.openParts.slice(0, index + 1).map((cut) => cut.durationSeconds) };
    const state: ChannelState = { ...this.state, open };
    await this.options.store.publish({ channel: this.channelId, playlists: this.renderPlaylists(state), state: JSON.stringify(state), fence });
    this.state = state;
    this.publishedInRun = true;
    this.options.stats.partsPublished += 1;
  }

  private partWrites(part: PendingPart, msn: number, index: number, fence: string | undefined, sealer: Pick<SegmentSealer, 'seal'>): Promise<void>[] {
    // As long as segments: a part stored before a long store outage is still listed after it.
    const ttl = this.segmentTtlSeconds();
    // A part is encrypted on its own, with its segment's key and IV (docs/architecture.md, "Content encryption").
    return [...part.payloads].map(([rendition, bytes]) =>
      this.options.store.putSegment(this.channelId, rendition, partName(msn, this.run, index, this.extensions.get(rendition)), sealer.seal(bytes), ttl, fence),
    );
  }


  private renderPlaylists(state: ChannelState): Record<string, string> {
    const playlists = renderChannelPlaylists(this.options.channel, state, { run: this.run, lowLatency: this.options.lowLatency });
    return this.options.manifests ? { ...playlists, ...this.options.manifests(state) } : playlists;
  }
}
