/**
 * One progressive mount (`/{channel}-{rendition}.aac`) of one origin process: it follows the
 * rendition's media playlist in the store while it has listeners, reads each new segment or
 * LL-HLS part once, extracts its audio frames (src/media/segment-audio.ts) and writes them to
 * every listener; docs/architecture.md, Progressive mounts.
 *
 * - What to read comes from follow-plan.ts: every MSN once, in order, across segment and part
 *   boundaries, input switches and packager takeovers; a jump only when the next MSN left the
 *   window.
 * - The last `burstSeconds` of frames stay in memory: a new listener gets them at once.
 * - A listener is written whole frames (chunks of whole frames); one whose unsent bytes pass
 *   `maxBacklogBytes` is disconnected (mount-listener.ts).
 * - It re-reads the playlist on each publish notification (`notify`) and, in case one was
 *   lost, every `recheckMs`; it stops following `idleGraceMs` after its last listener left.
 * - On an fMP4 channel it reads the EXT-X-MAP init segment of what it follows once per URI
 *   (a run's; the last few kept) for the track its samples need
 *   (docs/architecture.md, "Progressive mounts on fMP4 channels").
 * - On an encrypted channel it decrypts each segment or part with its key from the store (and
 *   reads a cbcs init segment clear) before extracting frames; one whose key is missing, or that
 *   does not decrypt, is skipped (counted, logged): listeners never get ciphertext
 *   (docs/architecture.md, "Recordings and mounts of encrypted channels").
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Clock, Timer } from '../../clock.js';
import { initSegmentUri, mediaPlaylistName, parseSegmentUri } from '../../hls/published-names.js';
import { parseMediaPlaylist, type MediaPlaylist } from '../../hls/playlist/index.js';
import { DEFAULT_KEY_ROTATION_SEGMENTS, StoredSegmentOpener } from '../../hls/segment-encryption.js';
import { readFromStore } from '../../http/store-read.js';
import { parseInitSegment, type Fmp4Track } from '../../media/fmp4-demux.js';
import { containerOfName, segmentAudio, type AudioFrame } from '../../media/segment-audio.js';
import type { ContentKeyStore, OriginStore } from '../../store/store.js';
import { planReads, type FollowPosition } from './follow-plan.js';
import { FrameRing } from './frame-ring.js';
import { MountListener, type ListenerSink } from './mount-listener.js';

export interface MountOptions {
  channel: string;
  rendition: string;
  store: Pick<OriginStore, 'getPlaylist' | 'getSegment'> & Partial<Pick<ContentKeyStore, 'getContentKey'>>;
  /** The channel's `encryption` (and `keyRotationSegments`, default 10): its stored segments are decrypted with the store's keys. */
  encryption?: MountEncryption;
  /** Seconds of the newest audio a new listener gets at once. */
  burstSeconds: number;
  /** Unsent bytes a listener may have before it is disconnected. */
  maxBacklogBytes: number;
  /** How long the mount keeps following after its last listener left. */
  idleGraceMs: number;
  /** A store read slower than this fails (and is retried at the next notification or recheck). */
  storeTimeoutMs: number;
  /** The playlist is re-read this often even without a notification. */
  recheckMs: number;
  clock: Clock;
  logger: FastifyBaseLogger;
  /** Called when a slow listener is disconnected. */
  onSlowListener?: () => void;
}

/** How an encrypted channel's segments are stored (channel `encryption`, `keyRotationSegments`). */
export interface MountEncryption {
  scheme: 'aes-128' | 'cbcs';
  rotationSegments?: number;
}

export interface MountStats {
  /** Segments and parts read from the store. */
  reads: number;
  /** Times the mount went on from the live edge because its next MSN had left the window. */
  jumps: number;
  /** Frames written to listeners (each listener counted). */
  framesDelivered: number;
  readErrors: number;
  /** fMP4 init segments read from the store. */
  initReads: number;
  /** Encrypted channels: segments and parts skipped because their key was missing or they did not decrypt. */
  undecryptable: number;
}

/** Init segments (parsed) a mount keeps: the runs of a window's segments, a takeover or two. */
const MAX_CACHED_INITS = 4;

export class Mount {
  readonly stats: MountStats = { reads: 0, jumps: 0, framesDelivered: 0, readErrors: 0, initReads: 0, undecryptable: 0 };
  /** fMP4: the track of each init segment URI read (undefined: it has none onair reads), oldest first. */
  private readonly inits = new Map<string, Fmp4Track | undefined>();
  private readonly listeners = new Set<MountListener>();
  private readonly burst: FrameRing;
  private position: FollowPosition | undefined;
  private playlistEtag: string | undefined;
  private playlist: MediaPlaylist | undefined;
  private following = false;
  private polling: Promise<void> | undefined;
  private pollAgain = false;
  private recheckTimer: Timer | undefined;
  private idleTimer: Timer | undefined;
  private title: string | undefined;
  private firstPoll: Promise<void> | undefined;
  private closed = false;
  /** An encrypted channel's key reader and decryptor; none for a clear channel. */
  private readonly opener: StoredSegmentOpener | undefined;

  constructor(private readonly options: MountOptions) {
    this.burst = new FrameRing(options.burstSeconds);
    const { encryption, store, channel, storeTimeoutMs, clock } = options;
    if (encryption) {
      const getContentKey = store.getContentKey?.bind(store);
      this.opener = new StoredSegmentOpener({
        channel,
        scheme: encryption.scheme,
        rotationSegments: encryption.rotationSegments ?? DEFAULT_KEY_ROTATION_SEGMENTS,
        ...(getContentKey ? { keys: { getContentKey } } : {}),
        readKey: (read) => readFromStore(`content key ${channel}`, read, storeTimeoutMs, clock),
      });
    }
  }

  get channel(): string {
    return this.options.channel;
  }

  get rendition(): string {
    return this.options.rendition;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Whether audio is flowing: the playlist was read and frames came out of it. */
  get onAir(): boolean {
    return this.burst.frameCount > 0;
  }

  /**
   * Starts following if the mount was idle and resolves once its first read is done (bounded
   * by the store timeout), so a caller can tell whether the mount has audio (`onAir`).
   */
  async wake(): Promise<void> {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    if (!this.following && !this.closed) {
      this.following = true;
      this.firstPoll = this.poll();
    }
    await this.firstPoll;
  }

  /** Adds a listener: it gets the burst now, then every new frame. */
  attach(sink: ListenerSink, metaint?: number): MountListener {
    const listener = new MountListener(sink, {
      maxBacklogBytes: this.options.maxBacklogBytes,
      metaint,
      title: this.title,
      onSlow: () => this.options.onSlowListener?.(),
    });
    this.listeners.add(listener);
    const burst = this.burst.joined();
    if (burst.length > 0) listener.send(burst, false);
    return listener;
  }

  /** Removes a listener (its connection closed); the last one leaving starts the idle grace. */
  detach(listener: MountListener): void {
    if (this.listeners.delete(listener)) this.release();
  }

  /** A caller that woke the mount and attached nobody (HEAD, or no audio): idle again unless someone listens. */
  release(): void {
    if (this.listeners.size > 0 || this.closed || !this.following) return;
    this.idleTimer?.cancel();
    this.idleTimer = this.options.clock.setTimeout(() => this.stopFollowing(), this.options.idleGraceMs);
  }

  /** The store published the channel: read what is new. */
  notify(): void {
    if (this.following) void this.poll();
  }

  /** The channel's now playing changed (`Artist - Title`), for every ICY listener. */
  setTitle(title: string | undefined): void {
    this.title = title;
    for (const listener of this.listeners) listener.setTitle(title);
  }

  /** Disconnects every listener and stops following. */
  close(): void {
    this.closed = true;
    for (const listener of this.listeners) listener.close();
    this.listeners.clear();
    this.idleTimer?.cancel();
    this.stopFollowing();
  }

  private stopFollowing(): void {
    if (this.listeners.size > 0 && !this.closed) return;
    this.following = false;
    this.recheckTimer?.cancel();
    this.recheckTimer = undefined;
    this.position = undefined;
    this.playlist = undefined;
    this.playlistEtag = undefined;
    this.firstPoll = undefined;
    this.burst.clear();
    this.inits.clear();
  }

  /** One read pass at a time; a notification during a pass makes another pass follow it. */
  private poll(): Promise<void> {
    if (this.polling) {
      this.pollAgain = true;
      return this.polling;
    }
    this.polling = (async () => {
      do {
        this.pollAgain = false;
        await this.readNew().catch((error: unknown) => {
          this.stats.readErrors += 1;
          this.options.logger.warn({ err: error, channel: this.channel, rendition: this.rendition }, 'progressive mount: store read failed, retrying');
        });
      } while (this.pollAgain && this.following);
    })().finally(() => {
      this.polling = undefined;
      this.scheduleRecheck();
    });
    return this.polling;
  }

  private scheduleRecheck(): void {
    this.recheckTimer?.cancel();
    if (!this.following) return;
    this.recheckTimer = this.options.clock.setTimeout(() => void this.poll(), this.options.recheckMs);
  }

  private async readNew(): Promise<void> {
    const { channel, rendition, store, storeTimeoutMs, clock } = this.options;
    const name = mediaPlaylistName(channel, rendition);
    const stored = await readFromStore(`playlist ${channel}/${name}`, () => store.getPlaylist(channel, name), storeTimeoutMs, clock);
    if (!stored) return;
    if (stored.etag !== this.playlistEtag) {
      this.playlist = parseMediaPlaylist(stored.body);
      this.playlistEtag = stored.etag;
    }
    const plan = planReads(this.playlist!, this.position, this.options.burstSeconds);
    if (plan.jumped) {
      this.stats.jumps += 1;
      this.options.logger.warn({ channel, rendition, msn: this.position?.msn }, 'progressive mount fell out of the window: going on from the live edge');
    }
    for (const read of plan.reads) {
      if (!this.following) return;
      // `{rendition}/{name}`: `.ts`, `.m4s`, or `.mp3`/`.aac` packed audio (its run, if the name has one, is kept for parts).
      if (!read.uri.startsWith(`${rendition}/`)) continue;
      const segmentName = read.uri.slice(rendition.length + 1);
      const run = parseSegmentUri(read.uri)?.run;
      const container = containerOfName(segmentName);
      // fMP4: the EXT-X-MAP in force, else the run's own init segment (each run stores one).
      const mapUri = read.mapUri ?? (run === undefined ? undefined : initSegmentUri(rendition, run));
      const track = container === 'fmp4' && mapUri !== undefined ? await this.trackOf(mapUri) : undefined;
      if (!this.following) return;
      const bytes = await readFromStore(`segment ${channel}/${read.uri}`, () => store.getSegment(channel, rendition, segmentName), storeTimeoutMs, clock);
      this.stats.reads += 1;
      if (!this.following) return;
      if (!bytes) {
        // Listed yet gone (it expired while the store was unreachable): go on after it.
        this.stats.jumps += 1;
        this.position = { msn: read.msn + 1, parts: 0, frames: 0 };
        continue;
      }
      const clear = this.opener ? await this.opener.open(read.msn, bytes) : { clear: bytes };
      if (!this.following) return;
      if (!('clear' in clear)) {
        // Never ciphertext to a listener: the segment is skipped as an unreadable one.
        this.stats.undecryptable += 1;
        this.options.logger.warn({ channel, rendition, msn: read.msn, reason: clear.failure }, 'progressive mount: an encrypted segment could not be decrypted (its key is not in the store): skipped');
        this.position = { msn: read.msn + 1, parts: 0, frames: 0 };
        continue;
      }
      const { frames } = segmentAudio(clear.clear, container, track);
      this.deliver(frames.slice(read.skipFrames));
      this.position =
        read.part === undefined
          ? { msn: read.msn + 1, parts: 0, frames: 0 }
          : { msn: read.msn, run, parts: read.part + 1, frames: (this.position?.msn === read.msn ? this.position.frames : 0) + frames.length };
    }
  }

  /**
   * The track of the init segment at `uri` (`{rendition}/init-{run}.mp4`), read once and kept
   * (the last MAX_CACHED_INITS); undefined when it is gone or has no track onair reads (the
   * segments that need it then give no frames). A store failure throws: the read is retried.
   */
  private async trackOf(uri: string): Promise<Fmp4Track | undefined> {
    if (this.inits.has(uri)) return this.inits.get(uri);
    const { channel, rendition, store, storeTimeoutMs, clock } = this.options;
    if (!uri.startsWith(`${rendition}/`)) return undefined;
    const bytes = await readFromStore(`init segment ${channel}/${uri}`, () => store.getSegment(channel, rendition, uri.slice(rendition.length + 1)), storeTimeoutMs, clock);
    this.stats.initReads += 1;
    // Gone (expired while the store was away): not kept, so a later read may find it.
    if (!bytes) return undefined;
    // An encrypted (cbcs) channel's init is protected (`enca`): its clear form names the track.
    const clear = this.opener ? this.opener.clearInit(bytes) : bytes;
    const track = clear ? parseInitSegment(clear) : undefined;
    this.inits.set(uri, track);
    if (this.inits.size > MAX_CACHED_INITS) this.inits.delete(this.inits.keys().next().value!);
    return track;
  }

  private deliver(frames: AudioFrame[]): void {
    if (frames.length === 0) return;
    this.burst.push(frames);
    const chunk = joinFrames(frames);
    for (const listener of this.listeners) {
      if (listener.send(chunk, true)) this.stats.framesDelivered += frames.length;
      // Cut off (too slow) or closed: it is gone from the count at once.
      else this.detach(listener);
    }
  }
}

function joinFrames(frames: AudioFrame[]): Buffer {
  return Buffer.concat(frames.map((frame) => frame.data));
}
