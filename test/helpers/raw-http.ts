/**
 * HTTP/1.1 over a bare socket, for requests no HTTP client would send (broken request lines,
 * NUL bytes, bad framing): `rawExchange` writes the bytes and collects everything until the
 * server closes; `parseHttpResponses` reads the answers back strictly (RFC 9112 §4 status
 * line, §5 header fields, §6 message body), so a malformed answer is reported, not guessed.
 */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  reason: string;
  /** Header fields in order, names lowercased. */
  headers: [string, string][];
  body: Buffer;
}

export interface ParsedResponses {
  responses: RawResponse[];
  /** Why the bytes after the last whole response are not a response, if they are not. */
  malformed?: string;
  /** Bytes of an answer cut short by the end of the connection. */
  incomplete: number;
}

export interface RawExchange extends ParsedResponses {
  /** A socket error (ECONNRESET…) seen before the connection closed. */
  socketError?: string;
  /** The server neither closed the connection nor stopped sending within the time limit. */
  timedOut: boolean;
}

export function header(response: RawResponse, name: string): string | undefined {
  return response.headers.find(([key]) => key === name)?.[1];
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-5][0-9]{2}) ([\t \x21-\x7e\x80-\xff]*)$/;
const FIELD_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[\t ]*([\t \x21-\x7e\x80-\xff]*?)[\t ]*$/;
const CHUNK_SIZE_LINE = /^([0-9a-fA-F]{1,8})(;[^\r\n]*)?$/;

/**
 * Parses the answers in `bytes`, one per request method in `methods` (HEAD answers carry no
 * body); 1xx interim answers are taken as they come. Stops at the first malformed byte.
 */
export function parseHttpResponses(bytes: Buffer, methods: readonly string[], closed = true): ParsedResponses {
  const responses: RawResponse[] = [];
  let offset = 0;
  let requestIndex = 0;
  while (offset < bytes.length) {
    const headEnd = bytes.indexOf('\r\n\r\n', offset, 'latin1');
    if (headEnd < 0) return { responses, incomplete: bytes.length - offset, ...(looksLikeStatus(bytes, offset) ? {} : { malformed: 'no status line' }) };
    const lines = bytes.toString('latin1', offset, headEnd).split('\r\n');
    const status = STATUS_LINE.exec(lines[0]!);
    if (!status) return { responses, incomplete: 0, malformed: `bad status line ${JSON.stringify(lines[0]!.slice(0, 80))}` };
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      const field = FIELD_LINE.exec(line);
      if (!field) return { responses, incomplete: 0, malformed: `bad header line ${JSON.stringify(line.slice(0, 80))}` };
      headers.push([field[1]!.toLowerCase(), field[2]!]);
    }
    const code = Number(status[1]);
    const response: RawResponse = { status: code, reason: status[2]!, headers, body: Buffer.alloc(0) };
    offset = headEnd + 4;
    if (code >= 100 && code < 200) {
      responses.push(response);
      continue;
    }
    const method = methods[Math.min(requestIndex, methods.length - 1)] ?? 'GET';
    requestIndex += 1;
    const length = header(response, 'content-length');
    const chunked = /\bchunked\b/i.test(header(response, 'transfer-encoding') ?? '');
    if (method === 'HEAD' && length !== undefined && /^[0-9]{1,15}$/.test(length) && closed && offset + Number(length) === bytes.length && !looksLikeStatus(bytes, offset)) {
      // The server could not parse the request, so did not know it was HEAD, answered as to
      // a GET and closed: exactly Content-Length bytes, then the end of the connection.
      response.body = bytes.subarray(offset);
      offset = bytes.length;
    } else if (method === 'HEAD' || code === 204 || code === 304) {
      // no body
    } else if (chunked) {
      const body = readChunked(bytes, offset);
      if (body === 'incomplete') return { responses, incomplete: bytes.length - offset };
      if (typeof body === 'string') return { responses, incomplete: 0, malformed: body };
      response.body = body.body;
      offset = body.end;
    } else if (length !== undefined) {
      if (!/^[0-9]{1,15}$/.test(length)) return { responses, incomplete: 0, malformed: `bad content-length ${length}` };
      const end = offset + Number(length);
      if (end > bytes.length) return { responses, incomplete: bytes.length - offset };
      response.body = bytes.subarray(offset, end);
      offset = end;
    } else {
      // Delimited by the end of the connection (RFC 9112 §6.3, rule 8).
      if (!closed) return { responses, incomplete: bytes.length - offset };
      response.body = bytes.subarray(offset);
      offset = bytes.length;
    }
    responses.push(response);
  }
  return { responses, incomplete: 0 };
}

function looksLikeStatus(bytes: Buffer, offset: number): boolean {
  const start = bytes.toString('latin1', offset, Math.min(bytes.length, offset + 9));
  return 'HTTP/1.1 '.startsWith(start) || 'HTTP/1.0 '.startsWith(start) || /^HTTP\/1\.[01] /.test(start);
}

function readChunked(bytes: Buffer, start: number): { body: Buffer; end: number } | 'incomplete' | string {
  const parts: Buffer[] = [];
  let offset = start;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset, 'latin1');
    if (lineEnd < 0) return 'incomplete';
    const sizeLine = CHUNK_SIZE_LINE.exec(bytes.toString('latin1', offset, lineEnd));
    if (!sizeLine) return `bad chunk size line at byte ${offset}`;
    const size = parseInt(sizeLine[1]!, 16);
    offset = lineEnd + 2;
    if (size === 0) {
      // Trailer fields, then the empty line.
      const trailerEnd = bytes.indexOf('\r\n', offset, 'latin1');
      if (trailerEnd < 0) return 'incomplete';
      if (trailerEnd !== offset) return 'trailer fields are not expected here';
      return { body: Buffer.concat(parts), end: trailerEnd + 2 };
    }
    if (offset + size + 2 > bytes.length) return 'incomplete';
    parts.push(bytes.subarray(offset, offset + size));
    if (bytes.toString('latin1', offset + size, offset + size + 2) !== '\r\n') return 'chunk not followed by CRLF';
    offset += size + 2;
  }
}

/**
 * Connects, writes `bytes` (then half-closes if `halfClose`), and reads until the server
 * closes or `timeoutMs` passes without a byte.
 */
export function rawExchange(
  port: number,
  bytes: Buffer,
  options: { methods: readonly string[]; halfClose: boolean; timeoutMs: number },
): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let socketError: string | undefined;
    let timedOut = false;
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      socketError ??= error.code ?? error.message;
    });
    socket.setTimeout(options.timeoutMs, () => {
      timedOut = true;
      socket.destroy();
    });
    socket.on('close', () => {
      const received = Buffer.concat(chunks);
      resolve({ ...parseHttpResponses(received, options.methods, !timedOut), socketError, timedOut });
    });
    socket.write(bytes, () => {
      if (options.halfClose) socket.end();
    });
  });
}
