/**
 * One simulated listener of a live HLS audio stream, behaving as hls.js 1.7 does with its
 * default config (the version the project ships; see node_modules/hls.js/src):
 *
 * - loads the master playlist once, then polls one media playlist (no LL-HLS: the origin
 *   advertises no EXT-X-SERVER-CONTROL);
 * - reload cadence as base-playlist-controller.ts and level-helper.ts `computeReloadInterval`:
 *   after a playlist that changed (a new last MSN), the target duration, or the last segment's
 *   duration when shorter and the playhead is within 4 target durations of the live edge; after
 *   an unchanged one, half the target duration. Reloads are scheduled from the previous
 *   schedule (`requestScheduled += interval`), not from when the answer arrived, and go out at
 *   once when a load took longer than the interval;
 * - starts `liveSyncDurationCount` (3) target durations behind the live edge, in the segment
 *   that holds that position, and loads each segment once, in order, one at a time;
 * - retries a failed load after 1 s, doubling up to 8 s (`errorRetry` of the load policies),
 *   without giving up: the bench keeps measuring.
 *
 * Playback is a clock: it starts when a second of audio has arrived, runs at real time, and
 * stalls when the playhead reaches the end of what has been loaded; it resumes when the next
 * segment arrives. Loading is done by a `PlayerLoader`, which also counts requests and errors.
 */
import type { MediaPlaylist } from './listeners-playlist.js';

export interface PlayerLoader {
  /** The variant paths, or undefined when the load failed. */
  master(path: string): Promise<string[] | undefined>;
  media(path: string): Promise<MediaPlaylist | undefined>;
  /** True when the whole segment arrived. */
  segment(path: string): Promise<boolean>;
}

/** hls.js `liveSyncDurationCount`: how many target durations behind the live edge playback starts. */
export const LIVE_SYNC_DURATION_COUNT = 3;
/** From `computeReloadInterval`: the last segment's duration is used only this close to the edge. */
const LIVE_EDGE_MAX_TARGET_DURATIONS = 4;
/**
 * Audio needed ahead of the start position before playback starts, as a media element waits
 * for some future data. It matters when the start position falls in the last moments of a
 * segment (hls.js picks the segment that holds it, even 10 ms before its end).
 */
const PLAYBACK_START_SECONDS = 1;
const RETRY_DELAY_MS = 1000;
const MAX_RETRY_DELAY_MS = 8000;

/** hls.js `computeReloadInterval` (level-helper.ts), for a playlist without parts. */
export function reloadIntervalMs(playlist: MediaPlaylist, updated: boolean, distanceToLiveEdgeMs: number): number {
  let interval = 1000 * playlist.targetDurationSeconds;
  if (!updated) return Math.round(interval / 2);
  const last = playlist.segments[playlist.segments.length - 1];
  if (last && interval * LIVE_EDGE_MAX_TARGET_DURATIONS > distanceToLiveEdgeMs) {
    const lastSegmentMs = last.durationSeconds * 1000;
    if (lastSegmentMs > 0 && lastSegmentMs < interval) interval = lastSegmentMs;
  }
  return Math.round(interval);
}

function retryDelayMs(failures: number): number {
  return Math.min(RETRY_DELAY_MS * 2 ** (failures - 1), MAX_RETRY_DELAY_MS);
}

export class SimulatedPlayer {
  /** Times the playhead reached the end of the buffer after playback had started. */
  stalls = 0;
  /** Time spent stalled, in ms (a stall still running when the player stops counts up to then). */
  stalledMs = 0;
  /** Times the next segment had already left the playlist, so the player jumped to the live edge. */
  resyncs = 0;
  /** When playback started, or undefined. */
  firstAudioAtMs: number | undefined;

  private stopped = false;
  private mediaPath: string | undefined;
  private playlist: MediaPlaylist | undefined;
  private requestScheduledMs = -1;
  private playlistFailures = 0;
  private playlistTimer: NodeJS.Timeout | undefined;
  private nextMsn: number | undefined;
  private segmentState: 'idle' | 'loading' | 'waiting-retry' = 'idle';
  private segmentFailures = 0;
  private segmentTimer: NodeJS.Timeout | undefined;

  // The playback clock, in seconds of media loaded since the start position's segment.
  private bufferedEndSeconds = 0;
  private anchorPositionSeconds = 0;
  private anchorMs = 0;
  private playing = false;
  private stalledSinceMs: number | undefined;

  constructor(
    private readonly loader: PlayerLoader,
    private readonly now: () => number,
    private readonly masterPath: string,
    /** Which variant of the master playlist this listener plays (modulo their count). */
    private readonly variantChoice: number,
  ) {}

  start(): void {
    void this.loadMaster();
  }

  /** Stops loading (answers still in flight are ignored) and closes the playback clock. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.playlistTimer);
    clearTimeout(this.segmentTimer);
    const now = this.now();
    this.advanceClock(now);
    if (this.stalledSinceMs !== undefined) this.stalledMs += now - this.stalledSinceMs;
  }

  private async loadMaster(): Promise<void> {
    const variants = await this.loader.master(this.masterPath);
    if (this.stopped) return;
    if (variants === undefined) return this.retryPlaylistLoad(() => this.loadMaster());
    this.playlistFailures = 0;
    this.mediaPath = variants[this.variantChoice % variants.length]!;
    void this.loadPlaylist();
  }

  private async loadPlaylist(): Promise<void> {
    const startedMs = this.now();
    const playlist = await this.loader.media(this.mediaPath!);
    if (this.stopped) return;
    if (playlist === undefined) return this.retryPlaylistLoad(() => this.loadPlaylist());
    this.playlistFailures = 0;
    const updated = this.playlist === undefined || playlist.lastMsn !== this.playlist.lastMsn;
    this.playlist = playlist;
    if (this.nextMsn === undefined) this.chooseStart(playlist);

    const now = this.now();
    const interval = reloadIntervalMs(playlist, updated, this.distanceToLiveEdgeMs(playlist, now));
    if (this.requestScheduledMs === -1) this.requestScheduledMs = startedMs;
    if (this.requestScheduledMs + interval < now) this.requestScheduledMs = now;
    else if (this.requestScheduledMs <= now) this.requestScheduledMs += interval;
    this.playlistTimer = setTimeout(() => void this.loadPlaylist(), Math.max(this.requestScheduledMs - now, 0));

    this.loadSegments();
  }

  private retryPlaylistLoad(load: () => Promise<void>): void {
    this.playlistFailures += 1;
    this.playlistTimer = setTimeout(() => void load(), retryDelayMs(this.playlistFailures));
  }

  /** The segment that holds the position 3 target durations behind the live edge. */
  private chooseStart(playlist: MediaPlaylist): void {
    const syncPositionSeconds = Math.max(0, playlist.totalSeconds - LIVE_SYNC_DURATION_COUNT * playlist.targetDurationSeconds);
    let segmentStartSeconds = 0;
    for (const segment of playlist.segments) {
      if (segmentStartSeconds + segment.durationSeconds > syncPositionSeconds) {
        this.nextMsn = segment.msn;
        // Before the first segment, playback starts inside it; after a resync, where the buffer ends.
        if (this.firstAudioAtMs === undefined) this.anchorPositionSeconds = syncPositionSeconds - segmentStartSeconds;
        return;
      }
      segmentStartSeconds += segment.durationSeconds;
    }
  }

  private loadSegments(): void {
    if (this.stopped || this.segmentState !== 'idle' || this.nextMsn === undefined) return;
    const playlist = this.playlist!;
    const firstMsn = playlist.lastMsn - playlist.segments.length + 1;
    if (this.nextMsn < firstMsn) {
      this.resyncs += 1;
      this.chooseStart(playlist);
    }
    const segment = playlist.segments[this.nextMsn - firstMsn];
    if (segment === undefined) return; // not published yet: the next reload brings it
    this.segmentState = 'loading';
    void this.loader.segment(segment.path).then((complete) => {
      if (this.stopped) return;
      if (!complete) {
        this.segmentFailures += 1;
        this.segmentState = 'waiting-retry';
        this.segmentTimer = setTimeout(() => {
          this.segmentState = 'idle';
          this.loadSegments();
        }, retryDelayMs(this.segmentFailures));
        return;
      }
      this.segmentFailures = 0;
      this.segmentState = 'idle';
      this.append(segment.durationSeconds);
      this.nextMsn = segment.msn + 1;
      this.loadSegments();
    });
  }

  /** Media between the playhead and the live edge: what is buffered plus what is listed but not loaded. */
  private distanceToLiveEdgeMs(playlist: MediaPlaylist, now: number): number {
    const nextMsn = this.nextMsn ?? Number.POSITIVE_INFINITY;
    let listedSeconds = 0;
    for (const segment of playlist.segments) if (segment.msn >= nextMsn) listedSeconds += segment.durationSeconds;
    return (listedSeconds + this.bufferedEndSeconds - this.positionSeconds(now)) * 1000;
  }

  private positionSeconds(now: number): number {
    if (!this.playing) return this.anchorPositionSeconds;
    return Math.min(this.anchorPositionSeconds + (now - this.anchorMs) / 1000, this.bufferedEndSeconds);
  }

  /** Notices a stall that happened since the last look: the playhead met the end of the buffer. */
  private advanceClock(now: number): void {
    if (!this.playing) return;
    const positionSeconds = this.anchorPositionSeconds + (now - this.anchorMs) / 1000;
    if (positionSeconds < this.bufferedEndSeconds) return;
    this.stalls += 1;
    this.playing = false;
    this.stalledSinceMs = this.anchorMs + (this.bufferedEndSeconds - this.anchorPositionSeconds) * 1000;
    this.anchorPositionSeconds = this.bufferedEndSeconds;
  }

  private append(durationSeconds: number): void {
    const now = this.now();
    this.advanceClock(now);
    this.bufferedEndSeconds += durationSeconds;
    if (this.playing) return;
    if (this.stalledSinceMs !== undefined) {
      this.stalledMs += now - this.stalledSinceMs;
      this.stalledSinceMs = undefined;
    } else {
      if (this.bufferedEndSeconds - this.anchorPositionSeconds < PLAYBACK_START_SECONDS) return;
      this.firstAudioAtMs = now;
    }
    this.playing = true;
    this.anchorMs = now;
  }
}
