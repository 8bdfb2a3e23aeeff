/**
 * Mirrored segments (docs/architecture.md, "Mirrored segments"): with
 * `recordings.storage.s3.mirrorSegments`, the recording leader also PUTs each session's files to the
 * bucket as it records them, so a job on another host (the standby that took over) stitches a
 * session the takeover cut, without a shared disk:
 *
 *   {prefix}{ch}/{session}/{msn}.ts, {msn}.m4s, init-{run}.mp4   one PUT each, read back from the
 *                                                                session dir (MD5 checked)
 *   {prefix}{ch}/{session}/index-{offset}.jsonl                  the index in chunks: the bytes of
 *                                                                index.jsonl from `offset` (12 digits)
 *                                                                to its last whole line
 *
 * An index chunk goes after the session's first segment, every INDEX_CHUNK_SEGMENTS segments and
 * at its end; a chunk starts where the last confirmed one ended, so a failed chunk is simply
 * covered by the next (the same key, more bytes), and the index costs its own size once, not
 * once per upload. Read back (readMirroredIndex), the chunks are joined in offset order, each one
 * starting where the text so far ends (a chunk that starts before is covered, one after is a hole:
 * the text stops there). A crash loses at most the lines of the last chunk not sent.
 *
 * The live path never waits: the recorder only queues a name (O(1)); one worker sends them in
 * order. The queue holds at most `queueLimit` files (names, not bytes: a file is read when it is
 * sent): past that a file is dropped and counted, its segment a gap of silence if the session is
 * stitched from the bucket. Index chunks are coalesced (at most one queued per session). Each PUT
 * has REQUEST_TIMEOUT_MS and is tried `retryDelaysMs.length + 1` times; then it is counted as
 * failed and logged (once per run of failures, with the counts).
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { RecordingFiles } from './recording-files.js';
import type { S3RecordingStorage } from './s3-storage.js';

/** Files waiting at most (about 4 minutes of 1-second segments). */
export const DEFAULT_MIRROR_QUEUE_LIMIT = 256;
/** An index chunk every this many segments (and after the first, and at the end). */
export const INDEX_CHUNK_SEGMENTS = 5;
/** An index chunk holds at most this much; the rest goes in the next. */
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_DELAYS_MS = [1000, 4000];
/** Sessions whose index state is kept (one is recorded at a time; the others wait for their last chunk). */
const MAX_SESSIONS = 16;
const INDEX_CHUNK = /\/index-(\d{12})\.jsonl$/;
const INDEX_CONTENT_TYPE = 'application/x-ndjson';

export interface SegmentMirrorStats {
  /** Files and index chunks the bucket confirmed. */
  sent: number;
  /** PUTs that failed every try. */
  failed: number;
  /** Files not queued: the queue was full. */
  dropped: number;
  /** Files gone from the disk before their turn (a dropped tail): nothing to send. */
  skipped: number;
}

export interface SegmentMirrorOptions {
  storage: S3RecordingStorage;
  files: RecordingFiles;
  logger: Logger;
  queueLimit?: number;
  /** Waits between the tries of one PUT (default 1 s, 4 s). */
  retryDelaysMs?: readonly number[];
}

type Item = { kind: 'file'; channel: string; session: string; name: string } | { kind: 'index'; channel: string; session: string };

interface IndexState {
  /** Bytes of index.jsonl the bucket holds (the next chunk's offset). */
  confirmed: number;
  /** Segments since the last chunk was queued. */
  segments: number;
  queued: boolean;
}

export class SegmentMirror {
  readonly stats: SegmentMirrorStats = { sent: 0, failed: 0, dropped: 0, skipped: 0 };
  private readonly options: SegmentMirrorOptions;
  private readonly logger: Logger;
  private readonly queueLimit: number;
  private readonly retryDelaysMs: readonly number[];
  private readonly queue: Item[] = [];
  private files = 0;
  private readonly sessions = new Map<string, IndexState>();
  private worker: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private failing = false;

  constructor(options: SegmentMirrorOptions) {
    this.options = options;
    this.logger = options.logger.child({ component: 'segment-mirror' });
    this.queueLimit = options.queueLimit ?? DEFAULT_MIRROR_QUEUE_LIMIT;
    this.retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  }

  /** Nothing waits nor is being sent. */
  get idle(): boolean {
    return this.worker === undefined;
  }

  /** Files and chunks waiting. */
  get pending(): number {
    return this.queue.length;
  }

  /** An init segment (or any file of the session dir) was written. */
  fileWritten(channel: string, session: string, name: string): void {
    if (this.abort.signal.aborted) return;
    if (this.files >= this.queueLimit) {
      this.stats.dropped += 1;
      if (this.stats.dropped === 1 || this.stats.dropped % 100 === 0) this.logger.warn({ channel, session, name, dropped: this.stats.dropped, queueLimit: this.queueLimit }, 'the bucket is behind: a file was not mirrored (the queue is full)');
      return;
    }
    this.files += 1;
    this.push({ kind: 'file', channel, session, name });
  }

  /** A segment's line was appended to the index (`name`: its file; none for a gap). */
  segmentWritten(channel: string, session: string, name?: string): void {
    if (name !== undefined) this.fileWritten(channel, session, name);
    const state = this.stateOf(channel, session);
    state.segments += 1;
    if (state.confirmed === 0 || state.segments >= INDEX_CHUNK_SEGMENTS) this.queueIndex(channel, session, state);
  }

  /** The session's end line was written: its last chunk goes. */
  sessionEnded(channel: string, session: string): void {
    this.queueIndex(channel, session, this.stateOf(channel, session));
  }

  /** Waits up to `graceMs` for the queue to empty (a shutdown's last chunk), then stops. */
  async close(graceMs = 5000): Promise<void> {
    const worker = this.worker;
    if (worker) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([worker, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.abort.abort();
    this.queue.length = 0;
    await this.worker;
  }

  private stateOf(channel: string, session: string): IndexState {
    const key = `${channel}/${session}`;
    let state = this.sessions.get(key);
    if (!state) {
      if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
      state = { confirmed: 0, segments: 0, queued: false };
      this.sessions.set(key, state);
    }
    return state;
  }

  private queueIndex(channel: string, session: string, state: IndexState): void {
    state.segments = 0;
    if (state.queued || this.abort.signal.aborted) return;
    state.queued = true;
    this.push({ kind: 'index', channel, session });
  }

  private push(item: Item): void {
    this.queue.push(item);
    this.worker ??= this.drain().finally(() => (this.worker = undefined));
  }

  private async drain(): Promise<void> {
    for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
      if (item.kind === 'file') this.files -= 1;
      else {
        const state = this.sessions.get(`${item.channel}/${item.session}`);
        if (state) state.queued = false;
      }
      if (this.abort.signal.aborted) return;
      await this.send(item).catch((error: unknown) => {
        this.stats.failed += 1;
        this.logger.error({ err: error, channel: item.channel, session: item.session }, 'a file could not be read to be mirrored');
      });
    }
  }

  private async send(item: Item): Promise<void> {
    const { storage, files } = this.options;
    const directory = files.sessionDir(item.channel, item.session);
    let body: Buffer | undefined;
    let key: string;
    let state: IndexState | undefined;
    if (item.kind === 'file') {
      key = `${storage.sessionPrefix(item.channel, item.session)}${item.name}`;
      body = await readWhole(join(directory, item.name));
    } else {
      state = this.sessions.get(`${item.channel}/${item.session}`);
      if (!state) return;
      key = `${storage.sessionPrefix(item.channel, item.session)}index-${String(state.confirmed).padStart(12, '0')}.jsonl`;
      body = await readLines(join(directory, files.indexFile), state.confirmed);
    }
    if (!body || body.length === 0) {
      if (item.kind === 'file') this.stats.skipped += 1;
      return;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await storage.putBytes(key, body, contentTypeOf(key), AbortSignal.any([this.abort.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]));
        break;
      } catch (error) {
        if (this.abort.signal.aborted) return;
        const wait = this.retryDelaysMs[attempt];
        if (wait === undefined) {
          this.stats.failed += 1;
          if (!this.failing) this.logger.error({ err: error, key, failed: this.stats.failed, pending: this.queue.length }, 'a file could not be mirrored to the bucket (recording goes on; mirroring keeps trying with the next files)');
          this.failing = true;
          return;
        }
        await sleep(wait, undefined, { signal: this.abort.signal, ref: false }).catch(() => undefined);
        if (this.abort.signal.aborted) return;
      }
    }
    this.stats.sent += 1;
    if (this.failing) {
      this.failing = false;
      this.logger.info({ key, failed: this.stats.failed, dropped: this.stats.dropped }, 'the bucket takes mirrored files again');
    }
    if (state) state.confirmed += body.length;
  }
}

/**
 * The session's index as its mirrored chunks hold it (see the header), or undefined when the
 * bucket has none. At most `maxBytes` of index are read.
 */
export async function readMirroredIndex(storage: S3RecordingStorage, channel: string, session: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<string | undefined> {
  const chunks = (await storage.listKeys(`${storage.sessionPrefix(channel, session)}index-`, options.signal)).flatMap((key) => {
    const offset = INDEX_CHUNK.exec(key)?.[1];
    return offset === undefined ? [] : [{ key, offset: Number(offset) }];
  });
  if (chunks.length === 0) return undefined;
  const parts: Buffer[] = [];
  let length = 0;
  for (const chunk of chunks) {
    if (chunk.offset < length) continue;
    if (chunk.offset > length) break;
    const bytes = await storage.getBytes(chunk.key, MAX_CHUNK_BYTES, options.signal);
    if (!bytes || length + bytes.length > options.maxBytes) break;
    parts.push(bytes);
    length += bytes.length;
  }
  return Buffer.concat(parts).toString('utf8');
}

function contentTypeOf(key: string): string {
  if (key.endsWith('.ts')) return 'video/mp2t';
  if (key.endsWith('.jsonl')) return INDEX_CONTENT_TYPE;
  return 'audio/mp4';
}

/** A file's bytes; undefined when it is gone. */
async function readWhole(path: string): Promise<Buffer | undefined> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** The file's bytes from `offset` up to its last newline (at most MAX_CHUNK_BYTES); undefined when it is gone. */
async function readLines(path: string, offset: number): Promise<Buffer | undefined> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const size = Math.min(MAX_CHUNK_BYTES, Math.max(0, (await handle.stat()).size - offset));
    const buffer = Buffer.alloc(size);
    const { bytesRead } = size === 0 ? { bytesRead: 0 } : await handle.read(buffer, 0, size, offset);
    const end = buffer.subarray(0, bytesRead).lastIndexOf(0x0a);
    return end < 0 ? Buffer.alloc(0) : Buffer.from(buffer.subarray(0, end + 1));
  } finally {
    await handle.close();
  }
}

/** A mirrored segment or init segment is read back at most this large. */
const MAX_SEGMENT_BYTES = 16 * 1024 * 1024;

/**
 * Fetches the session's files missing from its directory (`names`) from the bucket, one at a
 * time; resolves with how many were there. One the bucket lacks too stays missing (a gap).
 */
export async function pullMirroredFiles(storage: S3RecordingStorage, files: RecordingFiles, channel: string, session: string, names: readonly string[], signal?: AbortSignal): Promise<number> {
  const directory = files.sessionDir(channel, session);
  let pulled = 0;
  for (const name of names) {
    if (await files.exists(join(directory, name))) continue;
    const bytes = await storage.getBytes(`${storage.sessionPrefix(channel, session)}${name}`, MAX_SEGMENT_BYTES, signal);
    if (!bytes) continue;
    await files.placeFile(channel, session, name, bytes);
    pulled += 1;
  }
  return pulled;
}
