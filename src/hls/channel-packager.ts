/**
 * One channel's packager: takes aligned AAC frame groups (one frame per rendition, same
 * audio) and makes them a live HLS channel in the store. It wires three parts, gohlslib's
 * muxer being the model: the segmenter cuts the sample-count timeline into segments and
 * parts (segmenter.ts), one muxer per rendition makes their bytes (src/media/muxer.ts,
 * MPEG-TS by default), and the publisher queues and writes them, leading or standing by
 * (segment-publisher.ts), with the window arithmetic in channel-window.ts. The channel's now
 * playing rides the same timeline to every muxer (docs/architecture.md, "Timed metadata").
 * docs/architecture.md, "Data flow" and "Timeline".
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import type { ChannelConfig } from '../config/config-schema.js';
import type { AacFrame } from '../media/adts.js';
import { joinParts, type Muxer, type MuxerFactory, type TimedFrame, type TimedMetadata } from '../media/muxer.js';
import type { NowPlaying } from '../media/now-playing.js';
import { fmp4Muxers } from '../media/fmp4-muxer.js';
import { codecMuxers } from '../media/packed-audio-muxer.js';
import type { ContentKeyStore, SegmentPublishStore } from '../store/store.js';
import type { LowLatencyTiming } from './channel-playlists.js';
import { windowSize } from './channel-window.js';
import { SegmentSchedule } from './segment-schedule.js';
import { cbcsProtectionOf, ContentKeys, DEFAULT_KEY_ROTATION_SEGMENTS } from './segment-encryption.js';
import { SegmentPublisher, type ManifestRenderer, type PackagerStats } from './segment-publisher.js';
import { Segmenter, type PartCut, type SegmentCut } from './segmenter.js';

export { MIN_WINDOW_SEGMENTS } from './channel-window.js';
export type { PackagerStats, SegmentTiming } from './segment-publisher.js';

export interface PackagerOptions {
  channel: ChannelConfig;
  segmentSeconds: number;
  windowSegments: number;
  store: SegmentPublishStore;
  logger: Logger;
  /**
   * Start as a hot standby: cut segments but publish nothing until `promote()` (hot-standby
   * packagers, where a lease decides who writes). Default: lead at once, unfenced.
   */
  standby?: boolean;
  /** Wall clock (program date time, publish delays) and timers (retries, close); default the system's. */
  clock?: Clock;
  /**
   * Makes each rendition's muxer; default by the channel's container and the codec: MPEG-TS
   * for AAC and packed audio for MP3, or CMAF for every rendition of a `container: fmp4` channel.
   */
  muxers?: MuxerFactory;
  /** More manifests published with the playlists in the same step (the pipeline hands in the DASH MPDs of fmp4 channels). */
  manifests?: ManifestRenderer;
  /** Where an encrypted channel's keys are kept (docs/architecture.md, "Content encryption"); required with `encryption`. */
  contentKeys?: ContentKeyStore;
}

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

  private readonly sampleRate: number;
  private readonly renditionIds: string[];
  private readonly muxers: Muxer[];
  private readonly clock: Clock;
  private readonly lowLatency: LowLatencyTiming | undefined;
  private readonly segmenter: Segmenter;
  private readonly publisher: SegmentPublisher;
  private started = false;
  private closed = false;

  constructor(options: PackagerOptions) {
    super();
    const { channel } = options;
    this.channelId = channel.id;
    this.sampleRate = channel.sampleRate;
    this.renditionIds = channel.renditions.map((rendition) => rendition.id);
    const makeMuxer = options.muxers ?? (channel.container === 'fmp4' ? fmp4Muxers : codecMuxers);
    // With the rate and channel count an fMP4 init segment exists before the first frame (Opus's channel count is known no other way).
    this.muxers = channel.renditions.map((rendition) =>
      makeMuxer({ ...rendition, sampleRate: channel.sampleRate, channelCount: rendition.audioChannels ?? channel.audioChannels }, { segmentSeconds: options.segmentSeconds }),
    );
    this.schedule = new SegmentSchedule(options.segmentSeconds, channel.sampleRate);
    const targetDuration = this.schedule.targetDuration();
    this.windowSize = windowSize(options.windowSegments, options.segmentSeconds, targetDuration);
    this.clock = options.clock ?? systemClock;
    if (channel.lowLatency) {
      const partCount = this.schedule.partCount(channel.partSeconds);
      this.lowLatency = { partCount, partTargetSeconds: this.schedule.partTargetSeconds(partCount) };
    }
    this.segmenter = new Segmenter({
      schedule: this.schedule,
      renditionCount: this.renditionIds.length,
      partCount: this.lowLatency?.partCount,
      now: () => this.clock.now(),
      onPart: (part) => this.muxPart(part),
      onSegment: (segment) => this.muxSegment(segment),
    });
    let contentKeys: ContentKeys | undefined;
    if (channel.encryption !== undefined) {
      if (!options.contentKeys) throw new RangeError(`channel ${channel.id} is encrypted: the packager needs a store that keeps content keys`);
      const rotationSegments = channel.keyRotationSegments ?? DEFAULT_KEY_ROTATION_SEGMENTS;
      // A key outlives the last segment of its period: that segment's TTL, from up to a period (and one more segment) later.
      const ttlSeconds = (): number => this.publisher.segmentTtlSeconds() + (rotationSegments + 1) * targetDuration;
      contentKeys = new ContentKeys({ channel: channel.id, store: options.contentKeys, rotationSegments, ttlSeconds, scheme: channel.encryption });
    }
    this.publisher = new SegmentPublisher({
      channel,
      store: options.store,
      logger: options.logger.child({ channel: this.channelId }),
      clock: this.clock,
      targetDuration,
      windowSize: this.windowSize,
      lowLatency: this.lowLatency,
      leading: !options.standby,
      stats: this.stats,
      inProgress: this.segmenter,
      onSegment: (entry, timing) => this.emit('segment', entry, timing),
      onFenced: () => this.emit('fenced'),
      // fMP4 (docs/architecture.md, "Fragmented MP4 channels"): the run's EXT-X-MAP targets.
      ...(channel.container === 'fmp4' ? { initSegments: (keyId?: number) => this.initSegments(keyId) } : {}),
      ...(options.manifests ? { manifests: options.manifests } : {}),
      ...(contentKeys ? { contentKeys } : {}),
    });
  }

  get isLeading(): boolean {
    return this.publisher.isLeading;
  }

  /** Loads the stored sequence state (continuing after a restart) and makes this run's id. */
  async start(): Promise<void> {
    await this.publisher.start();
    this.segmenter.start(this.publisher.nextPts);
    this.started = true;
  }

  /** Feeds one frame group: `frames[i]` is the same 1024 samples encoded for rendition i. */
  pushFrameGroup(frames: readonly AacFrame[]): void {
    if (!this.started || this.closed) return;
    this.stats.framesReceived += 1;
    if (frames.length !== this.renditionIds.length || frames.some((frame) => frame.sampleRate !== this.sampleRate)) {
      this.stats.framesRejected += 1;
      return;
    }
    this.segmenter.push(frames);
  }

  /**
   * How far the audio timeline is ahead (+) or behind (−) the wall clock since this run's
   * first frame, in seconds: an encoder or a sender running slow or fast shows here.
   */
  timelineDriftSeconds(): number | undefined {
    return this.segmenter.timelineDriftSeconds(this.clock.now());
  }

  /**
   * Sets the channel's now playing: it goes into the stream as timed metadata at the next
   * frame, and again at the start of every segment (each muxer renders it: ID3 in MPEG-TS).
   */
  setNowPlaying(nowPlaying: NowPlaying | undefined): void {
    this.segmenter.setNowPlaying(nowPlaying);
  }

  /** Marks the next segment as the start of a new timeline (input switch without continuity, gap). */
  markDiscontinuity(): void {
    this.segmenter.markDiscontinuity();
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
  promote(fence: string): Promise<void> {
    return this.publisher.promote(fence);
  }

  /** Stops publishing (the lease is gone); segments keep being cut for a later takeover. */
  demote(): void {
    this.publisher.demote();
  }

  /** Stops taking frames and waits (bounded) until the segments already cut are stored. */
  async close(timeoutMs = 5000): Promise<void> {
    // Low-Latency HLS: players have seen parts of the segment being made. It is ended here,
    // short, so that the MSN they saw keeps its URIs (a successor starts the next one).
    if (this.lowLatency && this.publisher.isLeading && !this.closed && this.publisher.hasStoredOpenPart()) this.segmenter.cutNow();
    this.closed = true;
    await this.publisher.close(timeoutMs);
  }

  /**
   * How long segments stay in the store (RFC 8216 §6.2.2): their duration plus the longest
   * playlist's after they leave the live window; see channel-window.ts.
   */
  segmentTtlSeconds(): number {
    return this.publisher.segmentTtlSeconds();
  }

  private muxPart(part: PartCut): void {
    this.publisher.addPart({ durationSeconds: part.durationSeconds, payloads: this.mux(part.frames, part.metadata) });
  }

  private muxSegment(segment: SegmentCut): void {
    // Low-Latency HLS segments are their parts end to end.
    const parts = this.publisher.openParts;
    const payloads = segment.frames
      ? this.mux(segment.frames, segment.metadata ?? [])
      : new Map(this.renditionIds.map((id) => [id, joinParts(parts.map((part) => part.payloads.get(id)!))]));
    this.stats.segmentsProduced += 1;
    const { durationSeconds, programDateTime, discontinuity, endPts } = segment;
    this.publisher.addSegment({ durationSeconds, programDateTime, discontinuity, endPts, payloads });
  }

  /** Each rendition's init segment; asked only once segments or parts are muxed. A cbcs channel's, of key period `keyId` (docs/architecture.md, "Content encryption"). */
  private initSegments(keyId?: number): Map<string, Uint8Array> {
    const protection = keyId === undefined ? undefined : cbcsProtectionOf(this.channelId, keyId);
    return new Map(this.renditionIds.map((id, index) => [id, this.muxers[index]!.initSegment!(protection)]));
  }

  /** Each rendition's frames, and the channel's timed metadata, through its muxer. */
  private mux(frames: TimedFrame[][], metadata: TimedMetadata[]): Map<string, Uint8Array> {
    const payloads = new Map<string, Uint8Array>();
    frames.forEach((renditionFrames, index) => payloads.set(this.renditionIds[index]!, this.muxers[index]!.muxSegment(renditionFrames, metadata)));
    return payloads;
  }
}
