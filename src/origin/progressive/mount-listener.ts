/**
 * One progressive listener's connection (docs/architecture.md, Progressive mounts): the mount
 * hands it chunks of whole frames; with ICY metadata on, each chunk goes through the listener's
 * own interleaver (src/media/icy.ts), so a block follows every `metaint` audio bytes exactly.
 * A listener that does not read keeps unsent bytes in memory: when the next chunk comes and
 * more than `maxBacklogBytes` of the earlier ones are still unsent, the connection is
 * destroyed and its memory freed, so one listener never holds more than that plus one chunk.
 */
import { IcyInterleaver } from '../../media/icy.js';

/** The part of a connection the mount writes to (an http.ServerResponse in the origin). */
export interface ListenerSink {
  write(chunk: Uint8Array): boolean;
  /** Bytes accepted by `write` and not yet handed to the kernel. */
  readonly writableLength: number;
  /** True once the connection is gone (the client closed it). */
  readonly destroyed?: boolean;
  destroy(): void;
  /** Optional write batching (ServerResponse has it): the pieces of one chunk go out in one syscall. */
  cork?(): void;
  uncork?(): void;
}

export interface MountListenerOptions {
  maxBacklogBytes: number;
  /** ICY metadata every `metaint` bytes; none when the client did not ask for it. */
  metaint?: number;
  title?: string;
  /** Called once when the listener is disconnected for being too slow. */
  onSlow: () => void;
}

export class MountListener {
  private readonly interleaver: IcyInterleaver | undefined;
  private closed = false;
  /** Audio bytes written (metadata blocks not counted). */
  bytesSent = 0;

  constructor(
    private readonly sink: ListenerSink,
    private readonly options: MountListenerOptions,
  ) {
    this.interleaver = options.metaint === undefined ? undefined : new IcyInterleaver(options.metaint, options.title);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  setTitle(title: string | undefined): void {
    this.interleaver?.setTitle(title);
  }

  /**
   * Writes `chunk` (whole frames); false when the listener is closed. With `checkBacklog`, a
   * listener whose earlier chunks are still unsent past the bound is disconnected instead (the
   * burst itself is written unchecked, to a connection that had no chance to drain yet).
   */
  send(chunk: Uint8Array, checkBacklog: boolean): boolean {
    if (this.closed) return false;
    if (this.sink.destroyed) {
      // The client went away: not a slow listener.
      this.close();
      return false;
    }
    // What is still unsent from earlier chunks (the burst included) when the next one comes:
    // a listener that keeps up has drained it, whatever the size of one chunk.
    if (checkBacklog && this.sink.writableLength > this.options.maxBacklogBytes) {
      this.close();
      this.options.onSlow();
      return false;
    }
    if (this.interleaver) {
      this.sink.cork?.();
      for (const piece of this.interleaver.interleave(chunk)) this.sink.write(piece);
      this.sink.uncork?.();
    } else {
      this.sink.write(chunk);
    }
    this.bytesSent += chunk.length;
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.destroy();
  }
}
