/**
 * The HTTP a source client speaks (docs/architecture.md, Icecast inputs), read by hand
 * because Node's HTTP server cannot: FFmpeg, libshout and Liquidsoap send `PUT`/`SOURCE`
 * with neither Content-Length nor chunked encoding and stream the body until they close,
 * which an HTTP/1.1 parser takes for a body-less request followed by garbage. So the head is
 * parsed here (bounded), and the rest of the connection is the body; a client that does
 * say `Transfer-Encoding: chunked` (curl -T -) gets its chunks decoded.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** A request head larger than this is refused (Icecast's own limit is similar). */
export const MAX_HEAD_BYTES = 8192;

export interface SourceRequestHead {
  method: string;
  /** The request target as sent, e.g. `/live` or `/admin/metadata?mode=updinfo&…`. */
  target: string;
  /** Header names in lower case; the first of a repeated header counts. */
  headers: Map<string, string>;
}

/** The end of the head (`\r\n\r\n`, or `\n\n` from sloppy clients) in `bytes`: [head length, body start], or undefined. */
export function headEnd(bytes: Buffer): [number, number] | undefined {
  const crlf = bytes.indexOf('\r\n\r\n');
  const lf = bytes.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return [crlf, crlf + 4];
  if (lf >= 0) return [lf, lf + 2];
  return undefined;
}

/** Parses a request head (without its blank line); undefined when it is not HTTP. */
export function parseRequestHead(head: Buffer): SourceRequestHead | undefined {
  const lines = head.toString('latin1').split(/\r?\n/);
  const requestLine = /^([A-Z]{1,16}) (\S{1,4096}) (?:HTTP|ICE)\/1\.[01]$/.exec(lines[0] ?? '');
  if (!requestLine) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { method: requestLine[1]!, target: requestLine[2]!, headers };
}

/** Decodes `Transfer-Encoding: chunked` (RFC 9112 §7.1); chunk extensions and trailers are skipped, bad framing ends it with an error. */
export class ChunkedDecoder extends Transform {
  /** Bytes of the current chunk still to pass on; -1 while reading a size line, -2 after a chunk (its CRLF). */
  private remaining = -1;
  private line = '';
  private done = false;

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    let offset = 0;
    while (offset < chunk.length && !this.done) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - offset);
        this.push(chunk.subarray(offset, offset + take));
        this.remaining -= take;
        offset += take;
        if (this.remaining === 0) this.remaining = -2;
        continue;
      }
      const newline = chunk.indexOf(0x0a, offset);
      const end = newline < 0 ? chunk.length : newline;
      this.line += chunk.toString('latin1', offset, end);
      offset = newline < 0 ? chunk.length : newline + 1;
      if (this.line.length > 1024) return callback(new Error('chunk size line too long'));
      if (newline < 0) continue;
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.remaining === -2) {
        if (line !== '') return callback(new Error('chunk not followed by CRLF'));
        this.remaining = -1;
        continue;
      }
      const size = /^([0-9a-fA-F]{1,8})(?:;.*)?$/.exec(line);
      if (!size) return callback(new Error('bad chunk size'));
      this.remaining = Number.parseInt(size[1]!, 16);
      if (this.remaining === 0) {
        this.done = true;
        this.push(null);
      }
    }
    callback();
  }
}
