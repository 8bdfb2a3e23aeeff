/**
 * A progressive (Icecast-style) listener over a bare socket: sends one request, parses the
 * answer's head strictly enough (status line, header fields), then keeps every body byte with
 * the time it arrived, until `close()` or the server closes. `paused` leaves the socket
 * unread, as a listener that stalls (the kernel buffers then fill and the server's backlog grows).
 */
import { connect, type Socket } from 'node:net';

export interface StreamHead {
  status: number;
  /** Header fields in order, names lowercased. */
  headers: [string, string][];
}

export interface StreamListener {
  readonly head: StreamHead;
  header(name: string): string | undefined;
  /** Body bytes received so far. */
  body(): Buffer;
  /** How many body bytes had arrived at each data event. */
  readonly arrivals: { at: number; total: number }[];
  /** Resolves when the connection ended (either side). */
  readonly ended: Promise<void>;
  readonly socket: Socket;
  close(): void;
}

const HEAD_TIMEOUT_MS = 15_000;

export function openStream(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; paused?: boolean; host?: string } = {},
): Promise<StreamListener> {
  const method = options.method ?? 'GET';
  const headerLines = Object.entries({ host: options.host ?? `127.0.0.1:${port}`, ...options.headers }).map(([name, value]) => `${name}: ${value}\r\n`);
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let headBytes = Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let total = 0;
    const arrivals: { at: number; total: number }[] = [];
    let settled = false;
    let endResolve: () => void = () => {};
    const ended = new Promise<void>((done) => (endResolve = done));
    const timer = setTimeout(() => fail(new Error(`no answer head for ${method} ${path} within ${HEAD_TIMEOUT_MS} ms`)), HEAD_TIMEOUT_MS);
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on('error', (error) => fail(error));
    socket.on('close', () => {
      endResolve();
      fail(new Error(`connection closed before the answer head (${headBytes.length} bytes)`));
    });
    const onData = (data: Buffer): void => {
      if (settled) {
        chunks.push(data);
        total += data.length;
        arrivals.push({ at: Date.now(), total });
        return;
      }
      headBytes = Buffer.concat([headBytes, data]);
      const end = headBytes.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = headBytes.toString('latin1', 0, end).split('\r\n');
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(lines[0]!);
      if (!status) return fail(new Error(`bad status line ${JSON.stringify(lines[0])}`));
      const headers = lines.slice(1).map((line): [string, string] => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      });
      settled = true;
      clearTimeout(timer);
      const rest = headBytes.subarray(end + 4);
      if (rest.length > 0) {
        chunks.push(rest);
        total += rest.length;
        arrivals.push({ at: Date.now(), total });
      }
      if (options.paused) socket.pause();
      resolve({
        head: { status: Number(status[1]), headers },
        header: (name) => headers.find(([key]) => key === name)?.[1],
        body: () => Buffer.concat(chunks),
        arrivals,
        ended,
        socket,
        close: () => socket.destroy(),
      });
    };
    socket.on('data', onData);
    socket.write(`${method} ${path} HTTP/1.1\r\n${headerLines.join('')}\r\n`);
  });
}

/** Reads an ICY stream back: the audio bytes and the metadata blocks (text, NULs trimmed; '' for an empty block). */
export function splitIcy(stream: Buffer, metaint: number): { audio: Buffer; blocks: string[]; complete: boolean } {
  const audio: Buffer[] = [];
  const blocks: string[] = [];
  let offset = 0;
  while (stream.length - offset > metaint) {
    audio.push(stream.subarray(offset, offset + metaint));
    offset += metaint;
    const length = stream[offset]! * 16;
    if (offset + 1 + length > stream.length) return { audio: Buffer.concat(audio), blocks, complete: false };
    blocks.push(stream.toString('utf8', offset + 1, offset + 1 + length).replace(/\0+$/, ''));
    offset += 1 + length;
  }
  audio.push(stream.subarray(offset));
  return { audio: Buffer.concat(audio), blocks, complete: true };
}
