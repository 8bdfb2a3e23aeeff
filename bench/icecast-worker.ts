/**
 * A load-generator thread of bench:icecast: its share of N progressive listeners, each one raw
 * TCP connection sending an Icecast-style GET (HTTP/1.0, `Icy-MetaData: 1` unless told not to),
 * reading the status line and headers, then counting body bytes and nothing else: no decoding, no
 * metadata parsing, no buffering. The same client runs against onair and against icecast2.
 *
 * Listener i (of all workers) connects at rampStart + i / total × ramp. Per listener it records
 * the time from the connect call to the first body byte (connect-to-first-audio), the bytes
 * received inside the measurement window, and whether the server dropped it: a connection that
 * closes or fails after its first audio and before the phase ends. A listener that never gets
 * audio (refused, non-200, no body within 10 s) failed to start. At the window's end the thread
 * posts its IcecastTally and closes every socket.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

export interface IcecastWorkerJob {
  host: string;
  port: number;
  path: string;
  metadata: boolean;
  firstListener: number;
  stride: number;
  totalListeners: number;
  /** Wall-clock times (ms since the epoch, as performance.timeOrigin + performance.now()). */
  rampStartMs: number;
  rampMs: number;
  windowStartMs: number;
  windowEndMs: number;
}

export interface IcecastTally {
  started: number;
  /** Listeners that received audio. */
  playing: number;
  /** Connect-to-first-audio of each playing listener (ms). */
  firstAudioMs: number[];
  /** Why listeners failed to start (refused, HTTP status, timeout), counted. */
  failedToStart: Record<string, number>;
  /** Listeners closed or failed after their first audio, before the phase ended, counted by cause. */
  dropped: Record<string, number>;
  /** Body bytes each listener playing through the whole window received in it. */
  windowBytes: number[];
  /** Event-loop utilization of this thread over the window (0..1). */
  loopUtilization: number;
}

const FIRST_AUDIO_TIMEOUT_MS = 10_000;
const HEADER_LIMIT_BYTES = 16_384;
const HEADER_END = Buffer.from('\r\n\r\n');

const now = (): number => performance.timeOrigin + performance.now();

class Listener {
  private socket: Socket | undefined;
  private header: Buffer | undefined = Buffer.alloc(0);
  private connectStartedMs = 0;
  firstAudioMs: number | undefined;
  bytes = 0;
  bytesAtWindowStart: number | undefined;
  ended: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly job: IcecastWorkerJob,
    private readonly onEnd: (listener: Listener, cause: string) => void,
  ) {}

  start(): void {
    this.connectStartedMs = now();
    const socket = connect({ host: this.job.host, port: this.job.port });
    this.socket = socket;
    this.timer = setTimeout(() => this.end('no audio within 10 s'), FIRST_AUDIO_TIMEOUT_MS);
    socket.once('connect', () => {
      const metadata = this.job.metadata ? 'Icy-MetaData: 1\r\n' : '';
      socket.write(`GET ${this.job.path} HTTP/1.0\r\nHost: ${this.job.host}:${this.job.port}\r\nUser-Agent: onair-bench\r\n${metadata}\r\n`);
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.once('error', (error: NodeJS.ErrnoException) => this.end(error.code ?? error.message));
    socket.once('close', () => this.end('closed by the server'));
  }

  close(): void {
    this.ended ??= 'phase over';
    clearTimeout(this.timer);
    this.socket?.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.header === undefined) return this.count(chunk.length);
    const header = Buffer.concat([this.header, chunk]);
    const end = header.indexOf(HEADER_END);
    if (end < 0) {
      if (header.length > HEADER_LIMIT_BYTES) this.end('headers too long');
      else this.header = header;
      return;
    }
    const statusLine = header.toString('latin1', 0, header.indexOf('\r\n'));
    this.header = undefined;
    // HTTP/1.x 200 from onair and icecast2; `ICY 200 OK` from SHOUTcast-style servers.
    const status = /^(?:HTTP\/1\.[01]|ICY) (\d{3})/.exec(statusLine)?.[1];
    if (status !== '200') return this.end(`HTTP ${status ?? '?'}`);
    this.count(header.length - end - HEADER_END.length);
  }

  private count(bodyBytes: number): void {
    if (bodyBytes <= 0) return;
    if (this.firstAudioMs === undefined) {
      this.firstAudioMs = now() - this.connectStartedMs;
      clearTimeout(this.timer);
    }
    this.bytes += bodyBytes;
  }

  private end(cause: string): void {
    if (this.ended !== undefined) return;
    this.ended = cause;
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.onEnd(this, cause);
  }
}

function runPhase(job: IcecastWorkerJob): void {
  const tally: IcecastTally = { started: 0, playing: 0, firstAudioMs: [], failedToStart: {}, dropped: {}, windowBytes: [], loopUtilization: 0 };
  const listeners: Listener[] = [];
  const startTimers: NodeJS.Timeout[] = [];
  const onEnd = (listener: Listener, cause: string): void => {
    const counts = listener.firstAudioMs === undefined ? tally.failedToStart : tally.dropped;
    counts[cause] = (counts[cause] ?? 0) + 1;
  };
  for (let index = job.firstListener; index < job.totalListeners; index += job.stride) {
    const startAtMs = job.rampStartMs + (index / job.totalListeners) * job.rampMs;
    startTimers.push(
      setTimeout(() => {
        const listener = new Listener(job, onEnd);
        listeners.push(listener);
        listener.start();
      }, Math.max(startAtMs - now(), 0)),
    );
  }

  let utilizationAtWindowStart = performance.eventLoopUtilization();
  setTimeout(() => {
    utilizationAtWindowStart = performance.eventLoopUtilization();
    for (const listener of listeners) if (listener.ended === undefined) listener.bytesAtWindowStart = listener.bytes;
  }, Math.max(job.windowStartMs - now(), 0));

  setTimeout(() => {
    tally.loopUtilization = performance.eventLoopUtilization(utilizationAtWindowStart).utilization;
    startTimers.forEach(clearTimeout);
    for (const listener of listeners) {
      const playingThrough = listener.ended === undefined && listener.bytesAtWindowStart !== undefined;
      if (playingThrough) tally.windowBytes.push(listener.bytes - listener.bytesAtWindowStart!);
      if (listener.firstAudioMs !== undefined) {
        tally.playing += 1;
        tally.firstAudioMs.push(listener.firstAudioMs);
      }
      listener.close();
    }
    // A listener whose start timer had not fired yet never ran: it failed to start too.
    const neverRan = startTimers.length - listeners.length;
    if (neverRan > 0) tally.failedToStart['not started before the window ended'] = neverRan;
    tally.started = listeners.length;
    parentPort!.postMessage(tally);
  }, Math.max(job.windowEndMs - now(), 0));
}

runPhase(workerData as IcecastWorkerJob);
