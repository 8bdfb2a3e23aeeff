/**
 * A verifying listener for live HLS: polls every media playlist of a channel, fetches
 * every segment it lists, and records each rule a player depends on that is broken:
 * - MEDIA-SEQUENCE never decreases; an MSN always maps to the same URI and the same
 *   discontinuity count; a URI is never reused for another MSN (hls.js treats these as errors);
 * - every listed segment answers 200 and starts with PAT then PMT;
 * - EXTINF equals the audio in the segment (frames × 1024 / sample rate);
 * - PTS and continuity counters run on from the previous segment unless a discontinuity is signalled;
 * - the same MSN covers the same audio in every rendition (±1 frame);
 * - new segments arrive no more than 1.5 × target duration apart (reported, the test decides).
 * Used by the end-to-end and chaos tests; bounded by the caller's stop().
 */
import { AdtsReader } from '../../src/media/adts.js';
import { ptsDelta, PTS_WRAP } from '../../src/media/pts.js';
import { scanTsPackets, TsDemuxer } from '../../src/media/ts-demuxer.js';
import { parsePlaylist } from './m3u8.js';

export interface VerifierOptions {
  baseUrl: string;
  channel: string;
  renditions: string[];
  sampleRate?: number;
  pollIntervalMs?: number;
  /**
   * Count playlist answers of 503 (store unreachable: the origin's honest answer) in
   * `unavailable` instead of reporting them as errors. Default false.
   */
  allowUnavailable?: boolean;
}

export interface SegmentFacts {
  msn: number;
  uri: string;
  extinf: number;
  discontinuity: boolean;
  timeline: number;
  firstPts: number;
  endPts: number;
  frames: number;
  lastCc: Map<number, number>;
  firstCc: Map<number, number>;
  seenAt: number;
  /** EXT-X-PROGRAM-DATE-TIME, ms since the epoch. */
  programDateTime: number | undefined;
  /** ADTS frames, concatenated: the audio itself (for decoding checks). */
  audio: Uint8Array;
}

export interface VerifierReport {
  errors: string[];
  segments: Record<string, SegmentFacts[]>;
  playlistPolls: number;
  /** Largest interval between two consecutive new MSNs appearing (first rendition), ms. */
  maxNewSegmentGapMs: number;
  /** How often the playlists were polled: a new MSN is seen up to this much after it appeared. */
  pollIntervalMs: number;
  targetDuration: number | undefined;
  discontinuities: number;
  /**
   * Playlist polls answered 503 (only with allowUnavailable), when the last one was, and the
   * segment fetches answered 503 meanwhile (each fetched again later).
   */
  unavailable: { count: number; lastAt: number | undefined; firstOkAfterAt: number | undefined; segments: number };
}

interface ListedSegment {
  msn: number;
  uri: string;
  extinf: number;
  discontinuity: boolean;
  timeline: number;
  programDateTime: number | undefined;
}

interface RenditionTrack {
  mediaSequence: number;
  msnToUri: Map<number, string>;
  msnToTimeline: Map<number, number>;
  uriToMsn: Map<string, number>;
  facts: Map<number, SegmentFacts>;
  fetched: Set<number>;
}

export class HlsVerifier {
  private readonly options: Required<VerifierOptions>;
  private readonly errors: string[] = [];
  private readonly tracks = new Map<string, RenditionTrack>();
  private running = false;
  private loops: Promise<void>[] = [];
  private polls = 0;
  private targetDuration: number | undefined;
  private lastNewMsnAt: number | undefined;
  private lastNewMsn = -1;
  private maxGap = 0;
  private readonly unavailable: VerifierReport['unavailable'] = { count: 0, lastAt: undefined, firstOkAfterAt: undefined, segments: 0 };

  constructor(options: VerifierOptions) {
    this.options = { sampleRate: 48000, pollIntervalMs: 500, allowUnavailable: false, ...options };
    for (const rendition of options.renditions) {
      this.tracks.set(rendition, {
        mediaSequence: -1,
        msnToUri: new Map(),
        msnToTimeline: new Map(),
        uriToMsn: new Map(),
        facts: new Map(),
        fetched: new Set(),
      });
    }
  }

  start(): void {
    this.running = true;
    this.loops = this.options.renditions.map((rendition) => this.pollLoop(rendition));
  }

  async stop(): Promise<VerifierReport> {
    this.running = false;
    await Promise.all(this.loops);
    this.checkAlignment();
    const segments: Record<string, SegmentFacts[]> = {};
    for (const [rendition, track] of this.tracks) {
      segments[rendition] = [...track.facts.values()].sort((a, b) => a.msn - b.msn);
    }
    const first = segments[this.options.renditions[0]!] ?? [];
    return {
      errors: [...this.errors],
      segments,
      playlistPolls: this.polls,
      maxNewSegmentGapMs: this.maxGap,
      pollIntervalMs: this.options.pollIntervalMs,
      targetDuration: this.targetDuration,
      discontinuities: first.filter((segment) => segment.discontinuity).length,
      unavailable: { ...this.unavailable },
    };
  }

  /**
   * While running: how many segments of `rendition` were fetched and checked so far, the latest
   * PROGRAM-DATE-TIME among them (ms: the newest audio checked), and the 503s counted.
   */
  progress(rendition = this.options.renditions[0]!): { segments: number; latestProgramDateTime: number | undefined; unavailable: VerifierReport['unavailable'] } {
    const facts = [...(this.tracks.get(rendition)?.facts.values() ?? [])];
    const dates = facts.map((segment) => segment.programDateTime).filter((at): at is number => at !== undefined);
    return { segments: facts.length, latestProgramDateTime: dates.length === 0 ? undefined : Math.max(...dates), unavailable: { ...this.unavailable } };
  }

  private error(message: string): void {
    if (this.errors.length < 200) this.errors.push(message);
  }

  private async pollLoop(rendition: string): Promise<void> {
    while (this.running) {
      const started = Date.now();
      try {
        await this.pollOnce(rendition);
      } catch (error) {
        this.error(`${rendition}: poll failed: ${(error as Error).message}`);
      }
      const wait = this.options.pollIntervalMs - (Date.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private async pollOnce(rendition: string): Promise<void> {
    const { baseUrl, channel } = this.options;
    const playlistUrl = `${baseUrl}/${channel}/${channel}_${rendition}.m3u8`;
    const response = await fetch(playlistUrl);
    this.polls += 1;
    if (response.status === 404 && this.tracks.get(rendition)!.mediaSequence < 0) return; // not started yet
    if (response.status === 503 && this.options.allowUnavailable) {
      this.unavailable.count += 1;
      this.unavailable.lastAt = Date.now();
      this.unavailable.firstOkAfterAt = undefined;
      if (!response.headers.get('retry-after')) this.error(`${rendition}: 503 without Retry-After`);
      return;
    }
    if (response.status !== 200) {
      this.error(`${rendition}: playlist answered ${response.status}`);
      return;
    }
    if (this.unavailable.lastAt !== undefined) this.unavailable.firstOkAfterAt ??= Date.now();
    const { manifest, warnings } = parsePlaylist(await response.text());
    for (const warning of warnings) this.error(`${rendition}: m3u8-parser: ${warning}`);
    const track = this.tracks.get(rendition)!;
    if (manifest.playlistType !== undefined) this.error(`${rendition}: live playlist has PLAYLIST-TYPE`);
    if (this.targetDuration === undefined) this.targetDuration = manifest.targetDuration;
    else if (manifest.targetDuration !== this.targetDuration) this.error(`${rendition}: TARGETDURATION changed`);
    const mediaSequence = manifest.mediaSequence ?? 0;
    if (mediaSequence < track.mediaSequence) this.error(`${rendition}: MEDIA-SEQUENCE went back ${track.mediaSequence} → ${mediaSequence}`);
    track.mediaSequence = Math.max(track.mediaSequence, mediaSequence);

    const listed: ListedSegment[] = [];
    manifest.segments.forEach((segment, index) => {
      const msn = mediaSequence + index;
      if (segment.dateTimeString === undefined) this.error(`${rendition}: MSN ${msn} has no PROGRAM-DATE-TIME`);
      if (segment.duration > (manifest.targetDuration ?? 0) + 0.5) this.error(`${rendition}: MSN ${msn} EXTINF exceeds TARGETDURATION`);
      const knownUri = track.msnToUri.get(msn);
      if (knownUri !== undefined && knownUri !== segment.uri) this.error(`${rendition}: MSN ${msn} changed URI ${knownUri} → ${segment.uri}`);
      const knownMsn = track.uriToMsn.get(segment.uri);
      if (knownMsn !== undefined && knownMsn !== msn) this.error(`${rendition}: URI ${segment.uri} reused for MSN ${msn} (was ${knownMsn})`);
      const knownTimeline = track.msnToTimeline.get(msn);
      if (knownTimeline !== undefined && knownTimeline !== segment.timeline) {
        this.error(`${rendition}: MSN ${msn} discontinuity count changed ${knownTimeline} → ${segment.timeline}`);
      }
      track.msnToUri.set(msn, segment.uri);
      track.uriToMsn.set(segment.uri, msn);
      track.msnToTimeline.set(msn, segment.timeline);
      listed.push({
        msn,
        uri: segment.uri,
        extinf: segment.duration,
        discontinuity: segment.discontinuity === true,
        timeline: segment.timeline,
        programDateTime: segment.dateTimeString === undefined ? undefined : Date.parse(segment.dateTimeString),
      });
    });

    for (const segment of listed) {
      if (track.fetched.has(segment.msn)) continue;
      track.fetched.add(segment.msn);
      if (rendition === this.options.renditions[0]) this.noteNewMsn(segment.msn);
      await this.fetchSegment(rendition, track, segment);
    }
  }

  private noteNewMsn(msn: number): void {
    const now = Date.now();
    // Only count arrivals at the live edge: the first poll lists a whole window at once.
    if (this.lastNewMsnAt !== undefined && msn === this.lastNewMsn + 1) this.maxGap = Math.max(this.maxGap, now - this.lastNewMsnAt);
    if (msn > this.lastNewMsn) {
      this.lastNewMsn = msn;
      this.lastNewMsnAt = now;
    }
  }

  private async fetchSegment(
    rendition: string,
    track: RenditionTrack,
    segment: ListedSegment,
  ): Promise<void> {
    const { baseUrl, channel, sampleRate } = this.options;
    const response = await fetch(`${baseUrl}/${channel}/${segment.uri}`);
    if (response.status === 503 && this.options.allowUnavailable) {
      // The store went away between the playlist and the segment: the same honest answer as a
      // playlist's 503; the segment is fetched again at the next poll that lists it.
      this.unavailable.segments += 1;
      if (!response.headers.get('retry-after')) this.error(`${rendition}: MSN ${segment.msn} answered 503 without Retry-After`);
      track.fetched.delete(segment.msn);
      return;
    }
    if (response.status !== 200) {
      this.error(`${rendition}: MSN ${segment.msn} (${segment.uri}) answered ${response.status}`);
      return;
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    const packets = scanTsPackets(bytes);
    if (packets.length === 0 || packets[0]!.pid !== 0 || packets[1]?.pid === 0) {
      this.error(`${rendition}: MSN ${segment.msn} does not start with PAT then PMT`);
    }
    const firstCc = new Map<number, number>();
    const lastCc = new Map<number, number>();
    for (const packet of packets) {
      if (!packet.hasPayload) continue;
      if (!firstCc.has(packet.pid)) firstCc.set(packet.pid, packet.cc);
      lastCc.set(packet.pid, packet.cc);
    }
    const demuxer = new TsDemuxer();
    const reader = new AdtsReader();
    let firstPts: number | undefined;
    let frames = 0;
    const audioChunks: Uint8Array[] = [];
    for (const event of [...demuxer.push(bytes), ...demuxer.flush()]) {
      if (event.kind !== 'pes') continue;
      if (firstPts === undefined) firstPts = event.pts;
      for (const frame of reader.push(event.payload, event.pts)) {
        frames += 1;
        audioChunks.push(frame.data);
      }
    }
    if (firstPts === undefined || frames === 0) {
      this.error(`${rendition}: MSN ${segment.msn} holds no audio`);
      return;
    }
    const audioSeconds = (frames * 1024) / sampleRate;
    if (Math.abs(audioSeconds - segment.extinf) > 0.0005) {
      this.error(`${rendition}: MSN ${segment.msn} EXTINF ${segment.extinf} but ${audioSeconds.toFixed(5)} s of audio`);
    }
    const facts: SegmentFacts = {
      ...segment,
      firstPts,
      endPts: (firstPts + Math.round((frames * 1024 * 90000) / sampleRate)) % PTS_WRAP,
      frames,
      firstCc,
      lastCc,
      seenAt: Date.now(),
      audio: Buffer.concat(audioChunks),
    };
    const previous = track.facts.get(segment.msn - 1);
    if (previous && !segment.discontinuity) {
      if (ptsDelta(previous.endPts, firstPts) !== 0) {
        this.error(`${rendition}: PTS jumps ${ptsDelta(previous.endPts, firstPts)} ticks into MSN ${segment.msn} without a discontinuity`);
      }
      for (const [pid, cc] of firstCc) {
        const before = previous.lastCc.get(pid);
        if (before !== undefined && cc !== ((before + 1) & 0x0f)) {
          this.error(`${rendition}: continuity counter of PID ${pid} jumps ${before} → ${cc} into MSN ${segment.msn}`);
        }
      }
    }
    track.facts.set(segment.msn, facts);
  }

  private checkAlignment(): void {
    const [first, ...others] = this.options.renditions;
    const reference = this.tracks.get(first!)!;
    const frameTicks = (1024 * 90000) / this.options.sampleRate;
    for (const rendition of others) {
      for (const [msn, facts] of this.tracks.get(rendition)!.facts) {
        const base = reference.facts.get(msn);
        if (!base) continue;
        if (Math.abs(ptsDelta(base.firstPts, facts.firstPts)) > frameTicks) {
          this.error(`${rendition}: MSN ${msn} starts at PTS ${facts.firstPts}, ${first} at ${base.firstPts}`);
        }
        if (Math.abs(base.frames - facts.frames) > 1) this.error(`${rendition}: MSN ${msn} has ${facts.frames} frames, ${first} ${base.frames}`);
      }
    }
  }
}
