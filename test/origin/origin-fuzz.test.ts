/**
 * Bad input at the origin, measured (docs/architecture.md, Origin: "Bad requests get 4xx with a short JSON
 * body; 5xx only for a real server fault"). A real origin (`buildOrigin`) on a loopback port
 * serves two channels a real packager published to a memory store: `fip` with Low-Latency HLS
 * (parts, preload hint, delta updates) and `jazz` without. Then REQUEST_COUNT malformed
 * requests, drawn from a seeded PRNG, go to it over real HTTP, CONCURRENCY at a time:
 * - through node:http: random and traversing paths (`..`, `%2e%2e`, encoded NULs, overlong
 *   encodings), bad methods, bad Range / If-Range / If-None-Match / Accept-Encoding /
 *   X-Forwarded-* headers, bad LL-HLS directives (`_HLS_msn=-1`, `abc`, repeated, 20 digits,
 *   `_HLS_skip=maybe`), signed-URL style `?token=` garbage, huge URLs and header sections;
 * - through bare sockets (test/helpers/raw-http.ts), what a client library refuses to send:
 *   broken request lines and versions, NUL and CTL bytes, header lines without colons,
 *   obs-fold, conflicting Content-Length / Transfer-Encoding, pipelines, truncated requests
 *   and binary garbage.
 * Every answer must parse as HTTP/1.1, none may be a 5xx, every 4xx must carry a JSON body
 * `{ "error": … }` (HEAD aside), 2xx answers must be what their URL promises, and nothing may
 * be logged as an error. Afterwards the origin must still answer healthz and serve a valid
 * playlist whose segments demux, and follow the next publish.
 *
 * Requests that would legitimately wait (an `_HLS_msn` one or two segments ahead, the hinted
 * part: held up to 3 target durations, then 503 by design) are never generated. The seed is
 * printed; `ONAIR_FUZZ_SEED=<seed> npx tap test/origin/origin-fuzz.test.ts` replays a run.
 */
import { Agent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { AdtsReader } from '../../src/media/adts.js';
import { TsDemuxer } from '../../src/media/ts-demuxer.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FrameSource } from '../helpers/aac-frames.js';
import { parsePlaylist } from '../helpers/m3u8.js';
import { header, rawExchange, type RawResponse } from '../helpers/raw-http.js';
import { SeededRandom, fuzzSeed } from '../helpers/seeded-random.js';

const DEFAULT_SEED = 0x0e1f_5eed;
const REQUEST_COUNT = 10_000;
const CONCURRENCY = 16;
/** TD 1: were a request held by mistake, it would answer within 3 s. */
const SEGMENT_SECONDS = 1;
const REQUEST_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------
// The origin under test and what it publishes.
// ---------------------------------------------------------------------------------------

/** What the generator needs to know about the live edge to stay clear of requests that wait. */
interface LiveEdge {
  /** MSN of fip's last complete segment (both renditions are aligned). */
  lastMsn: number;
  /** The packager run in fip's URIs and preload hint. */
  run: number;
  /** Paths that exist: playlists, segments, parts, the player page. */
  valid: string[];
  etags: string[];
}

async function startPublishedOrigin(t: Test) {
  const config = resolveConfig({
    hls: { segmentSeconds: SEGMENT_SECONDS },
    channels: [
      {
        id: 'fip',
        lowLatency: true,
        partSeconds: 0.25,
        renditions: [
          { id: 'lofi', bitrate: '32k' },
          { id: 'hifi', bitrate: '192k' },
        ],
        inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }],
      },
      { id: 'jazz', renditions: [{ id: 'hifi', bitrate: '192k' }], inputs: [{ id: 'main', url: 'srt://0.0.0.0:9001?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }] },
    ],
  });
  const store = new MemoryStore();
  await store.start();
  const silent = pino({ level: 'silent' });
  const packagers = config.channels.map(
    (channel) => new ChannelPackager({ channel, segmentSeconds: SEGMENT_SECONDS, windowSegments: 6, store, logger: silent }),
  );
  for (const packager of packagers) await packager.start();
  const sources = [new FrameSource(), new FrameSource([200])];
  /** Feeds frames until every packager has published `segments` more segments. */
  const publish = async (segments: number): Promise<void> => {
    for (const [index, packager] of packagers.entries()) {
      const target = packager.stats.segmentsPublished + segments;
      for (let frame = 0; frame < 20_000 && packager.stats.segmentsPublished < target; frame++) {
        packager.pushFrameGroup(sources[index]!.next());
        if (frame % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      // A few frames more (over half a second: at least two parts): fip's playlists then list
      // parts of the next segment too.
      const partsBefore = packager.stats.partsPublished;
      for (let frame = 0; frame < 30; frame++) packager.pushFrameGroup(sources[index]!.next());
      const lowLatency = config.channels[index]!.lowLatency;
      for (let turn = 0; turn < 1000 && lowLatency && packager.stats.partsPublished === partsBefore; turn++) {
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  };
  await publish(8);

  const errorLines: string[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _encoding, done) {
        errorLines.push(String(chunk));
        done();
      },
    }),
  );
  const app = await buildOrigin({
    store,
    channels: config.channels.map((channel) => ({ id: channel.id, renditions: channel.renditions.map((rendition) => rendition.id) })),
    targetDurationSeconds: SEGMENT_SECONDS,
    logger,
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    for (const packager of packagers) await packager.close();
    await store.close();
  });
  return { app, port: Number(new URL(address).port), publish, errorLines };
}

/** Reads the live edge the way a player would, from the served playlists. */
async function readLiveEdge(port: number): Promise<LiveEdge> {
  const valid = ['/', '/healthz', '/channels.json', '/_player/player.js', '/fip/fip.m3u8', '/jazz/jazz.m3u8'];
  const etags: string[] = [];
  let lastMsn = -1;
  let run = -1;
  for (const [channel, rendition] of [['fip', 'lofi'], ['fip', 'hifi'], ['jazz', 'hifi']] as const) {
    const path = `/${channel}/${channel}_${rendition}.m3u8`;
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    const body = await response.text();
    if (response.status !== 200) throw new Error(`${path} answered ${response.status} before the fuzz`);
    valid.push(path);
    etags.push(response.headers.get('etag') ?? '"none"');
    const lines = body.split('\n');
    const uris = lines.filter((line) => line !== '' && !line.startsWith('#'));
    // Parts and rendition reports exist; the part the preload hint names is held until it is
    // published (then 503 by design), so it is never requested.
    const attributeUris = lines.filter((line) => !line.startsWith('#EXT-X-PRELOAD-HINT')).flatMap((line) => [...line.matchAll(/URI="([^"]+)"/g)].map((match) => match[1]!));
    for (const uri of [...uris, ...attributeUris]) valid.push(`/${channel}/${uri}`);
    if (channel === 'fip') {
      lastMsn = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(body)?.[1]) + uris.length - 1;
      run = Number(/^#EXT-X-PRELOAD-HINT:.*-(\d+)\.\d+\.ts"/m.exec(body)?.[1]);
    }
  }
  if (!(lastMsn > 0 && run > 0)) throw new Error('fip is not a Low-Latency channel with a preload hint');
  return { lastMsn, run, valid: [...new Set(valid)], etags };
}

// ---------------------------------------------------------------------------------------
// The requests.
// ---------------------------------------------------------------------------------------

interface HttpCase {
  via: 'http';
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
}

interface RawCase {
  via: 'raw';
  bytes: Buffer;
  /** The method of each request in the bytes, to know which answers have no body. */
  methods: string[];
  /** End our side after writing: makes the server answer a truncated request at once. */
  halfClose: boolean;
  /** Closing without an answer is acceptable (CONNECT, nothing but line breaks). */
  mayStaySilent?: boolean;
  /** A known defect this request shows: its JSON-body check is a tap todo. */
  knownDefect?: string;
}

type FuzzCase = (HttpCase | RawCase) & { index: number; category: string };

/** Node's own 400 for an HTTP/1.1 request without Host is not the origin's JSON answer. */
const NO_HOST_DEFECT = 'no-host';
/** Nor is Node's own 417 for an Expect other than 100-continue. */
const EXPECTATION_DEFECT = 'expectation';
/** The player's static files (@fastify/static) answer a malformed Range with a bare 416. */
const PLAYER_RANGE_DEFECT = 'player-range';

/** The known defect a broken rule shows, if it is one (asserted as a todo, not a failure). */
function knownDefect(request: FuzzCase, rule: Rule): string | undefined {
  if (request.via === 'raw') return rule === '4xx JSON' ? request.knownDefect : undefined;
  const path = request.path.split('?')[0]!;
  return rule === '416 names the length' && (path === '/' || path.startsWith('/_player/')) ? PLAYER_RANGE_DEFECT : undefined;
}

class RequestMaker {
  constructor(
    private readonly random: SeededRandom,
    private readonly edge: LiveEdge,
  ) {}

  make(index: number): FuzzCase {
    const category = this.random.weighted<string>([
      [20, 'random path'],
      [10, 'traversal'],
      [15, 'LL-HLS and token query'],
      [18, 'bad headers'],
      [7, 'methods'],
      [3, 'huge'],
      [22, 'raw request'],
      [3, 'raw truncated'],
      [2, 'raw garbage'],
    ]);
    const made: HttpCase | RawCase =
      category === 'random path' ? this.http('GET', this.randomPath())
      : category === 'traversal' ? this.http(this.random.pick(['GET', 'GET', 'HEAD']), this.traversal())
      : category === 'LL-HLS and token query' ? this.http('GET', `${this.random.pick(this.playlistPaths())}${this.query()}`)
      : category === 'bad headers' ? this.badHeaders()
      : category === 'methods' ? this.method()
      : category === 'huge' ? this.huge()
      : category === 'raw request' ? this.rawRequest()
      : category === 'raw truncated' ? this.rawTruncated()
      : this.rawGarbage();
    return { ...made, index, category };
  }

  private http(method: string, path: string, headers: Record<string, string | string[]> = {}, body?: Buffer): HttpCase {
    return { via: 'http', method, path, headers, body };
  }

  private playlistPaths(): string[] {
    return ['/fip/fip_hifi.m3u8', '/fip/fip_lofi.m3u8', '/fip/fip.m3u8', '/jazz/jazz_hifi.m3u8', '/fip/fip_nope.m3u8'];
  }

  /** An MSN that never makes a request wait: in the window or past it, or three and more ahead. */
  private msn(): number {
    const last = this.edge.lastMsn;
    return this.random.pick([0, 1, last - 20, last - 1, last, last + 3, last + 50, 2 ** 40]);
  }

  private segmentName(): string {
    const run = this.random.pick([this.edge.run, this.edge.run, 0, this.edge.run + 1, 99]);
    const msn = this.msn();
    const part = this.random.chance(0.4) ? `.${this.random.pick(['0', '1', '3', '9999', '00', '-1', 'x'])}` : '';
    return `${this.random.pick([String(msn), '-1', '0100', '1e3', '99999999999999999999', ''])}-${run}${part}.${this.random.pick(['ts', 'ts', 'TS', 'mp4', 'm3u8'])}`;
  }

  private pathSegment(): string {
    const random = this.random;
    const kind = random.int(0, 9);
    if (kind === 0) return random.pick(['fip', 'jazz', 'FIP', 'nope', '_player', 'healthz', 'channels.json', 'hifi', 'lofi', 'hls']);
    if (kind === 1) return random.pick(['fip.m3u8', 'fip_hifi.m3u8', 'fip_lofi.m3u8', 'jazz.m3u8', 'jazz_hifi.m3u8', 'fip_hifi.delta.m3u8', 'fip_.m3u8', '.m3u8', 'fip.M3U8', 'fip_hi_fi.m3u8']);
    if (kind === 2) return this.segmentName();
    if (kind === 3) return random.pick(['..', '.', '%2e%2e', '%2E%2e', '.%2e', '%252e%252e', '..%2f', '..%5c', '..\\', '%c0%ae%c0%ae', '..;', '%00', 'fip%00', 'fip.m3u8%00', '%2f', '%5c']);
    if (kind === 4) return random.pick(['%zz', '%', '%f', '%ff', '%C3%A9', '%E2%80%AE', '%ef%bf%bd', 'caf%C3%A9', '%7e', '~', '%u002e']);
    if (kind === 5) return random.pick(['*', ';', ';jsessionid=1', ',', "'", '"', '<script>', '{}', '|', '^', '`', '!', '$', '&', '=', '+', '@', ':', '\u00e9', '\u00ff']);
    if (kind === 6) return random.pick(['package.json', 'index.html', 'player.js', 'player.css', 'hls.light.min.js', '.env', '.git', 'etc', 'passwd']);
    if (kind === 7) return random.text(random.int(1, 40), 'abcdefghijklmnopqrstuvwxyz0123456789-_');
    if (kind === 8) return random.text(random.int(1, 20), 'ABCxyz019-._~!$&\'()*+,;=:@%');
    return 'a'.repeat(random.int(30, 300));
  }

  private randomPath(): string {
    const segments = Array.from({ length: this.random.weighted([[1, 1], [3, 2], [4, 3], [1, 4], [1, 6]]) }, () => this.pathSegment());
    let path = `/${segments.join(this.random.chance(0.05) ? '//' : '/')}`;
    if (this.random.chance(0.05)) path += '/';
    if (this.random.chance(0.2)) path += this.query();
    return path;
  }

  private traversal(): string {
    const up = this.random.pick(['..', '%2e%2e', '%2E%2E', '.%2e', '%252e%252e', '..%c0%af', '%c0%ae%c0%ae', '..\\', '..%5c', '....//']);
    const slash = this.random.pick(['/', '%2f', '%2F', '%5c', '\\', '%252f']);
    const base = this.random.pick(['', '/fip', '/fip/hifi', '/_player', '/_player/hls', '/jazz/hifi']);
    const goal = this.random.pick(['etc/passwd', 'package.json', 'src/origin/origin-plugin.ts', 'fip/fip.m3u8', 'fip.m3u8', 'index.html', 'proc/self/environ']);
    const nul = this.random.pick(['', '', '%00', '%00.m3u8', '%00.ts', '%2500']);
    return `${base}/${`${up}${slash}`.repeat(this.random.int(1, 8))}${goal}${nul}`;
  }

  private query(): string {
    const random = this.random;
    const msn = (): string => random.pick([String(this.msn()), '-1', 'abc', '', '1e3', '0x10', '9999999999999999999', '99999999999999999999999', '1.5', '+5', '%205', '05', 'NaN', 'Infinity', '%00', '%D9%A3']);
    const values: Record<string, () => string> = {
      _HLS_msn: msn,
      '%5FHLS_msn': msn,
      _hls_msn: msn,
      '_HLS_msn[]': msn,
      _HLS_part: () => random.pick(['0', '1', '3', '9999', '9999999999999999999', '-1', 'x', '', '2.0', '%00']),
      _HLS_skip: () => random.pick(['YES', 'v2', 'yes', 'V2', 'maybe', '', 'NO', '1', 'YES%00', 'YES,YES']),
      _HLS_push: () => random.pick(['1', '0', '-1', 'x']),
      token: () => random.pick([random.text(random.int(1, 400), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), 'eyJhbGciOiJub25lIn0.eyJleHAiOjB9.', '%00', 'a'.repeat(5000), '', '..%2f..%2f']),
      exp: () => random.pick(['0', '-1', '99999999999999999999', 'tomorrow']),
      sig: () => random.text(random.int(0, 64), '0123456789abcdef%'),
      __proto__: () => random.pick(['x', '[polluted]=1']),
      'constructor[prototype][polluted]': () => '1',
      [random.text(random.int(1, 10), 'abcxyz_')]: () => random.text(random.int(0, 30), 'abc123%&=+'),
    };
    const keys = Object.keys(values);
    const pairs = Array.from({ length: random.int(1, 5) }, () => {
      const key = random.pick(keys);
      return `${key}=${values[key]!()}`;
    });
    if (random.chance(0.05)) pairs.push(...pairs); // every parameter twice
    return `?${pairs.join(random.chance(0.1) ? '&&' : '&')}`;
  }

  private badHeaders(): HttpCase {
    const random = this.random;
    const etag = random.pick(this.edge.etags);
    const choices: Record<string, () => string | string[]> = {
      range: () => random.pick(['bytes=0-0', 'bytes=0-', 'bytes=-1', 'bytes=-0', 'bytes=5-1', 'bytes=abc', 'bytes=', 'bytes=-', 'bytes=0-1,2-3', 'bytes=99999999999999999999-', 'bytes=-99999999999999999999', 'bytes=1e3-2e3', 'items=0-1', 'bytes = 0 - 5', 'BYTES=0-5', `bytes=0-5${' '.repeat(200)}`, `bytes=${'0-1,'.repeat(1000)}`, ['bytes=0-1', 'bytes=2-3']]),
      'if-range': () => random.pick(['"x"', etag, 'Wed, 21 Oct 2015 07:28:00 GMT', '', 'W/"x"']),
      'if-none-match': () => random.pick(['*', '"x"', etag, `W/${etag}`, `${etag}, "y"`, ',,,', '"', 'W/', '"a'.repeat(2000), Array(300).fill(etag).join(','), ['"x"', etag]]),
      'if-modified-since': () => random.pick(['yesterday', '', 'Thu, 01 Jan 1970 00:00:00 GMT']),
      'accept-encoding': () => random.pick(['gzip', 'gzip;q=0', 'gzip;q=abc', '*', '*;q=0', 'identity;q=0', 'br', 'gzip;q=-1', 'gzip;;;', ',,,', 'x-gzip', 'gzip;q=1e999', `${'x,'.repeat(2000)}gzip`]),
      origin: () => random.pick(['null', 'https://player.example', '*', 'javascript:alert(1)', '\u00ff']),
      'x-forwarded-for': () => random.pick(['1.2.3.4', 'garbage', '::1, ::ffff:1.2.3.4', '999.999.999.999', ' , , ', '1.1.1.1,'.repeat(500)]),
      'x-forwarded-host': () => random.pick(['evil.example', '', ':::', 'a'.repeat(300), 'a b']),
      'x-forwarded-proto': () => random.pick(['https', 'gopher', '', 'https, http']),
      forwarded: () => random.pick(['for=1.2.3.4;proto=https', 'garbage', 'for="[::1', '']),
      host: () => random.pick(['', 'evil', '[::1]:99999', 'a:b:c', 'x'.repeat(1000), '\u00ff']),
      'content-type': () => random.pick(['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'garbage/', '']),
      cookie: () => random.text(random.int(0, 500), 'abc=;, %'),
      authorization: () => random.pick(['Bearer ', 'Basic %%%', `Bearer ${'x'.repeat(3000)}`]),
      accept: () => random.pick(['*/*', 'application/vnd.apple.mpegurl', 'text/html;q=abc', '', '*/*;q=0']),
      'access-control-request-method': () => random.pick(['GET', 'DELETE', 'FOO', '']),
      te: () => random.pick(['trailers', 'gzip', '']),
      'user-agent': () => random.text(random.int(0, 2000), 'Mozilla/5.0 ()[];,'),
    };
    const headers: Record<string, string | string[]> = {};
    for (let count = random.int(1, 3); count > 0; count--) {
      const name = random.pick(Object.keys(choices));
      headers[name] = choices[name]!();
    }
    return this.http(random.chance(0.8) ? 'GET' : 'HEAD', random.pick(this.edge.valid), headers);
  }

  private method(): HttpCase {
    const random = this.random;
    const method = random.pick(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OPTIONS', 'PROPFIND', 'TRACE', 'MKCOL', 'LOCK', 'SEARCH', 'QUERY', 'PURGE', 'M-SEARCH', 'BREW', 'XYZ', 'ACL', 'LINK', 'REPORT', 'SOURCE', 'COPY', 'MOVE', 'UNLOCK']);
    const path = random.chance(0.5) ? random.pick(this.edge.valid) : this.randomPath();
    const headers: Record<string, string> = {};
    if (method === 'OPTIONS' && random.chance(0.7)) {
      headers.origin = random.pick(['https://player.example', 'null', '*']);
      headers['access-control-request-method'] = random.pick(['GET', 'PUT', 'BREW', '']);
      if (random.chance(0.5)) headers['access-control-request-headers'] = random.pick(['range', 'x-a, x-b', '', '%%%']);
    }
    let body: Buffer | undefined;
    if (random.chance(0.5)) {
      body = Buffer.from(random.bytes(random.pick([0, 10, 1000, 1025, 4000])));
      headers['content-type'] = random.pick(['application/json', 'text/plain', 'application/octet-stream', 'application/x-www-form-urlencoded']);
      // node:http frames a body only for methods that usually carry one: say its length.
      headers['content-length'] = String(body.length);
    }
    return this.http(method, path, headers, body);
  }

  private huge(): HttpCase {
    const random = this.random;
    const size = random.pick([9_000, 17_000, 40_000]);
    const kind = random.int(0, 3);
    if (kind === 0) return this.http('GET', `/fip/${'a'.repeat(size)}.m3u8`);
    if (kind === 1) return this.http('GET', `/fip/fip_hifi.m3u8?${'_HLS_msn=1&'.repeat(size / 11)}`);
    if (kind === 2) return this.http('GET', random.pick(this.edge.valid), { 'x-big': 'b'.repeat(size) });
    const headers: Record<string, string> = {};
    for (let index = 0; index < random.pick([100, 1500, 3000]); index++) headers[`x-h${index}`] = 'v'.repeat(random.int(1, 10));
    return this.http('GET', random.pick(this.edge.valid), headers);
  }

  /** One well-formed request head, as lines, that a raw case then breaks in one place. */
  private rawHead(method = 'GET', target = this.random.pick(this.edge.valid)): { requestLine: string; fields: string[] } {
    return { requestLine: `${method} ${target} HTTP/1.1`, fields: ['Connection: close', 'Host: 127.0.0.1'] };
  }

  private rawRequest(): RawCase {
    const random = this.random;
    const method = random.chance(0.85) ? 'GET' : 'HEAD';
    const head = this.rawHead(method);
    let body = '';
    let eol = '\r\n';
    let methods = [method];
    let knownDefect: string | undefined;
    let mayStaySilent = false;
    const mutation = random.int(0, 11);
    if (mutation === 0) {
      head.requestLine = head.requestLine.replace('HTTP/1.1', random.pick(['HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/9.9', 'HTTP/1.1 extra', 'http/1.1', 'HTTP/1', 'HTTP/1.10', 'HTTP/01.1', '', 'HTTPS/1.1']));
    } else if (mutation === 1) {
      const bad = random.pick(['get', 'G@T', 'GET\0', '', 'GE T', 'X'.repeat(100), 'CONNECT', 'PRI', '\u00ff', 'GET\t', 'DELETE']);
      head.requestLine = head.requestLine.replace(method, bad);
      methods = [bad];
      if (bad === 'CONNECT') mayStaySilent = true; // Node closes a CONNECT no one handles
    } else if (mutation === 2) {
      const target = random.pick(['/fip/fi p.m3u8', '/fip/\0.m3u8', '/fip/\u00ff\u00fe.m3u8', '/fip/\x7f', 'http://x/fip/fip.m3u8', 'https://evil.example/fip/fip.m3u8', '//fip/fip.m3u8', '*', 'fip/fip.m3u8', '', '/fip/fip.m3u8#frag', '/%', '/fip\\..\\..\\', '/\r/', '/fip/fip.m3u8?\0', '/fip/fip_hifi.m3u8?_HLS_msn=\0']);
      head.requestLine = `${method} ${target} HTTP/1.1`;
    } else if (mutation === 3) {
      head.requestLine = random.pick([`${method}\t/fip/fip.m3u8\tHTTP/1.1`, `${method}  /fip/fip.m3u8  HTTP/1.1`, `${method} /fip/fip.m3u8 HTTP/1.1 `, ` ${method} /fip/fip.m3u8 HTTP/1.1`]);
    } else if (mutation === 4) {
      eol = random.pick(['\n', '\r', '\r\r\n', '\n\r']);
    } else if (mutation === 5) {
      head.fields = head.fields.filter((field) => !field.startsWith('Host'));
      knownDefect = NO_HOST_DEFECT;
    } else if (mutation === 6) {
      head.fields.push(random.pick(['Host: other.example', 'Host x', 'Host : x', ': x', 'X-\0: y', 'X-A: b\0c', 'X-A: b\rc', ' folded continuation', 'X A: b', 'X-A: \x7f', '\0', 'X-\u00c4: b', 'X-A: \u00e9\u00ff']));
    } else if (mutation === 7) {
      const length = random.pick(['abc', '-1', '1e3', '99999999999999999999', '5, 6', '+5', ' 5 ', '5', '5\r\nContent-Length: 6']);
      head.fields.push(`Content-Length: ${length}`);
      body = 'hello';
    } else if (mutation === 8) {
      const [encoding, chunked] = random.pick([
        ['chunked', '5\r\nhello\r\n0\r\n\r\n'],
        ['chunked', 'zz\r\nhello\r\n0\r\n\r\n'],
        ['chunked', '5\r\nhello0\r\n\r\n'],
        ['gzip', ''],
        ['chunked, gzip', '0\r\n\r\n'],
        ['identity', ''],
        ['chunked\r\nContent-Length: 5', '5\r\nhello\r\n0\r\n\r\n'],
        ['chunked\r\nTransfer-Encoding: chunked', '0\r\n\r\n'],
        ['xchunked', '0\r\n\r\n'],
      ] as const);
      head.fields.push(`Transfer-Encoding: ${encoding}`);
      body = chunked;
    } else if (mutation === 9) {
      const field = random.pick(['Expect: 100-continue', 'Expect: 200-ok', 'Upgrade: h2c', 'Upgrade: websocket', 'Connection: Upgrade', 'Content-Type: application/json']);
      head.fields.push(field);
      if (field === 'Expect: 200-ok') knownDefect = EXPECTATION_DEFECT;
    } else if (mutation === 10) {
      // A pipeline: two to four requests, one of them possibly broken, the last closing.
      const count = random.int(2, 4);
      const requests: string[] = [];
      methods = [];
      for (let index = 0; index < count; index++) {
        const itsMethod = random.chance(0.8) ? 'GET' : 'HEAD';
        const last = index === count - 1;
        const fields = [last ? 'Connection: close' : 'Connection: keep-alive', 'Host: 127.0.0.1'];
        const line = random.chance(0.15) ? `${itsMethod} /fip/\0 HTTP/1.1` : `${itsMethod} ${random.pick(this.edge.valid)} HTTP/1.1`;
        requests.push(`${line}\r\n${fields.join('\r\n')}\r\n\r\n`);
        methods.push(itsMethod);
      }
      return { via: 'raw', bytes: Buffer.from(requests.join(''), 'latin1'), methods, halfClose: false };
    } else {
      head.fields.push(`X-Obs-Text: ${random.text(random.int(1, 200), '\u0080\u00a0\u00e9\u00ff abc\t')}`);
    }
    const text = `${head.requestLine}${eol}${head.fields.join(eol)}${eol}${eol}${body}`;
    return { via: 'raw', bytes: Buffer.from(text, 'latin1'), methods, halfClose: false, mayStaySilent, knownDefect };
  }

  private rawTruncated(): RawCase {
    const head = this.rawHead();
    const whole = `${head.requestLine}\r\n${head.fields.join('\r\n')}\r\n\r\n`;
    const cut = this.random.int(3, whole.length - 2);
    return { via: 'raw', bytes: Buffer.from(whole.slice(0, cut), 'latin1'), methods: ['GET'], halfClose: true };
  }

  private rawGarbage(): RawCase {
    const random = this.random;
    const bytes = random.pick([
      () => Buffer.from(random.bytes(random.int(1, 2000))),
      () => Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, ...random.bytes(100)]), // a TLS ClientHello
      () => Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), // the HTTP/2 preface
      () => Buffer.from(`GET /fip/fip.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n${'\0'.repeat(random.int(1, 50))}`, 'latin1'),
    ])();
    // Nothing but line breaks is no request at all: Node may close without a word.
    const mayStaySilent = /^[\r\n]*$/.test(bytes.toString('latin1'));
    return { via: 'raw', bytes, methods: ['GET', 'GET'], halfClose: true, mayStaySilent };
  }
}

// ---------------------------------------------------------------------------------------
// Sending them, and judging the answers.
// ---------------------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: IncomingHttpHeaders | Record<string, string>;
  body: Buffer;
  method: string;
}

interface Outcome {
  answers: Answer[];
  /** Why there is no (whole) answer, if there is none. */
  problem?: string;
}

function sendHttp(agent: Agent | false, port: number, request: HttpCase): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers = { ...request.headers };
    // A request node:http refuses to send is the generator's mistake (raw cases carry those).
    const outgoing = httpRequestOrError(
      { host: '127.0.0.1', port, method: request.method, path: request.path, headers, agent, setHost: !('host' in headers) },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => resolve({ answers: [], problem: `response error ${error.message}` }));
        response.on('end', () =>
          resolve({ answers: [{ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), method: request.method }] }),
        );
      },
    );
    if (outgoing instanceof Error) return resolve({ answers: [], problem: `node:http refused to send it: ${outgoing.message}` });
    outgoing.setTimeout(REQUEST_TIMEOUT_MS, () => outgoing.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed meanwhile (after a previous request's error
      // answer): what every HTTP client does then is retry once on a new connection.
      if (outgoing.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && agent !== false) {
        resolve(sendHttp(false, port, request));
        return;
      }
      resolve({ answers: [], problem: `no answer: ${error.code ?? error.message}` });
    });
    outgoing.end(request.body);
  });
}

function httpRequestOrError(options: RequestOptions, onResponse: (response: IncomingMessage) => void): ClientRequest | Error {
  try {
    return httpRequest(options, onResponse);
  } catch (error) {
    return error as Error;
  }
}

async function sendRaw(port: number, request: RawCase): Promise<Outcome> {
  const exchange = await rawExchange(port, request.bytes, { methods: request.methods, halfClose: request.halfClose, timeoutMs: REQUEST_TIMEOUT_MS });
  const answers = exchange.responses
    .filter((response) => response.status >= 200)
    .map((response: RawResponse, index) => ({
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body: response.body,
      method: request.methods[Math.min(index, request.methods.length - 1)]!,
    }));
  let problem: string | undefined;
  if (exchange.malformed) problem = `malformed answer: ${exchange.malformed}`;
  else if (exchange.incomplete > 0) problem = `answer cut short (${exchange.incomplete} bytes)`;
  else if (exchange.timedOut) problem = `the connection stayed open ${REQUEST_TIMEOUT_MS} ms`;
  else if (answers.length === 0 && !request.mayStaySilent) problem = `closed without an answer${exchange.socketError ? ` (${exchange.socketError})` : ''}`;
  return { answers, problem };
}

type Rule = 'answered' | 'no 5xx' | '4xx JSON' | '2xx as promised' | '416 names the length';

/** Each broken rule, with why. */
function judge(request: FuzzCase, outcome: Outcome): [Rule, string][] {
  const broken: [Rule, string][] = [];
  if (outcome.problem) broken.push(['answered', outcome.problem]);
  for (const answer of outcome.answers) {
    const type = String(answer.headers['content-type'] ?? '');
    if (answer.status >= 500) broken.push(['no 5xx', `${answer.status} ${answer.body.toString('utf8', 0, 200)}`]);
    if (answer.status >= 400 && answer.status < 500 && answer.method !== 'HEAD') {
      let error: unknown;
      try {
        error = (JSON.parse(answer.body.toString('utf8')) as { error?: unknown }).error;
      } catch {
        error = undefined;
      }
      if (!type.startsWith('application/json') || typeof error !== 'string') {
        broken.push(['4xx JSON', `${answer.status} with ${type || 'no content-type'}: ${JSON.stringify(answer.body.toString('latin1', 0, 80))}`]);
      }
    }
    if (answer.status === 200 && answer.method === 'GET' && request.via === 'http') {
      const path = request.path.split('?')[0]!;
      const body = answer.headers['content-encoding'] === 'gzip' ? gunzipSync(answer.body) : answer.body;
      if (/^\/[a-z0-9-]+\/[a-z0-9-_]+\.m3u8$/.test(path) && (!type.startsWith('application/vnd.apple.mpegurl') || !body.toString('utf8').startsWith('#EXTM3U'))) {
        broken.push(['2xx as promised', `${path} gave ${type}: ${JSON.stringify(body.toString('utf8', 0, 60))}`]);
      }
      if (/^\/[a-z0-9-]+\/[a-z0-9-]+\/[0-9.-]+\.ts$/.test(path) && (!type.startsWith('video/mp2t') || body[0] !== 0x47)) {
        broken.push(['2xx as promised', `${path} gave ${type} starting ${body.subarray(0, 4).toString('hex')}`]);
      }
    }
    if (answer.status === 206 && !/^bytes \d+-\d+\/\d+$/.test(String(answer.headers['content-range']))) {
      broken.push(['2xx as promised', `206 with content-range ${String(answer.headers['content-range'])}`]);
    }
    // RFC 9110 §15.5.17: a 416 to a byte range says the current length, `bytes */length`.
    if (answer.status === 416 && !/^bytes \*\/\d+$/.test(String(answer.headers['content-range']))) {
      broken.push(['416 names the length', `416 with content-range ${String(answer.headers['content-range'])}`]);
    }
  }
  return broken;
}

function describe(request: FuzzCase): string {
  const what = request.via === 'http'
    ? `${request.method} ${request.path.slice(0, 120)}${request.path.length > 120 ? `… (${request.path.length} chars)` : ''} ${JSON.stringify(request.headers).slice(0, 160)}`
    : JSON.stringify(request.bytes.toString('latin1').slice(0, 200));
  return `#${request.index} [${request.category}] ${what}`;
}

async function runPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

t.test('malformed requests over real HTTP never get a 5xx and always a well-formed answer', async (t) => {
  const seed = fuzzSeed(DEFAULT_SEED);
  t.comment(`seed ${seed} (0x${seed.toString(16)}); replay with ONAIR_FUZZ_SEED=${seed}`);
  const { port, publish, errorLines } = await startPublishedOrigin(t);
  const edge = await readLiveEdge(port);
  const maker = new RequestMaker(new SeededRandom(seed), edge);
  const requests = Array.from({ length: REQUEST_COUNT }, (_, index) => maker.make(index));

  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  t.teardown(() => agent.destroy());
  const statuses = new Map<number, number>();
  const byCategory = new Map<string, Record<number, number>>();
  const broken = new Map<Rule, string[]>();
  const knownDefects = new Map<string, string[]>();
  const started = performance.now();
  await runPool(requests, CONCURRENCY, async (request) => {
    const outcome = request.via === 'http' ? await sendHttp(agent, port, request) : await sendRaw(port, request);
    const categoryStatuses = byCategory.get(request.category) ?? {};
    byCategory.set(request.category, categoryStatuses);
    for (const answer of outcome.answers) {
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      categoryStatuses[answer.status] = (categoryStatuses[answer.status] ?? 0) + 1;
    }
    for (const [rule, why] of judge(request, outcome)) {
      const defect = knownDefect(request, rule);
      if (defect) {
        const list = knownDefects.get(defect) ?? [];
        if (list.length < 3) list.push(`${describe(request)}: ${why}`);
        knownDefects.set(defect, list);
        continue;
      }
      const list = broken.get(rule) ?? [];
      if (list.length < 15) list.push(`${describe(request)}: ${why}`);
      broken.set(rule, list);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const byStatus = Object.fromEntries([...statuses].sort(([a], [b]) => a - b));
  t.comment(`${REQUEST_COUNT} requests in ${seconds.toFixed(1)} s; answers by status: ${JSON.stringify(byStatus)}`);
  for (const [category, counts] of byCategory) t.comment(`  ${category}: ${JSON.stringify(counts)}`);

  for (const rule of ['answered', 'no 5xx', '4xx JSON', '2xx as promised', '416 names the length'] as const) {
    t.same(broken.get(rule) ?? [], [], `rule: ${rule}`);
  }
  t.same(errorLines.slice(0, 5), [], `the origin logged no error or warning (${errorLines.length} lines)`);
  // Node's HTTP server would answer these itself with an empty body; the origin gives its JSON.
  t.same(knownDefects.get(NO_HOST_DEFECT) ?? [], [], 'a request without Host gets the JSON 400 too');
  t.same(knownDefects.get(EXPECTATION_DEFECT) ?? [], [], 'an unknown Expect gets a JSON 417 too');
  // The player's small files take no ranges: a malformed Range is ignored, as on segments.
  t.same(knownDefects.get(PLAYER_RANGE_DEFECT) ?? [], [], 'a malformed Range on the player page is ignored, as on segments');
  // The fuzz has to reach the origin's own answers, or passing proves little.
  for (const status of [200, 204, 206, 304, 400, 404, 405, 416, 431]) t.ok((statuses.get(status) ?? 0) > 0, `some answers were ${status}`);
  const directives = byCategory.get('LL-HLS and token query') ?? {};
  t.ok((directives[200] ?? 0) > 0 && (directives[400] ?? 0) > 0, 'LL-HLS directives were both served and refused');
  t.ok(seconds < 30, `the run took ${seconds.toFixed(1)} s`);

  // Still alive, still right.
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(health.status, 200, 'healthz answers 200 afterwards');
  const media = await fetch(`http://127.0.0.1:${port}/fip/fip_hifi.m3u8`);
  t.equal(media.status, 200);
  const text = await media.text();
  const { manifest } = parsePlaylist(text);
  t.ok(manifest.segments.length >= 6, `the media playlist lists ${manifest.segments.length} segments`);
  const segment = await fetch(`http://127.0.0.1:${port}/fip/${manifest.segments.at(-1)!.uri}`);
  t.equal(segment.status, 200);
  const demuxer = new TsDemuxer();
  const reader = new AdtsReader();
  const bytes = new Uint8Array(await segment.arrayBuffer());
  const frames = [...demuxer.push(bytes), ...demuxer.flush()].flatMap((event) => (event.kind === 'pes' ? reader.push(event.payload, event.pts) : []));
  t.ok(frames.length > 40, `its last segment demuxes into ${frames.length} AAC frames`);
  t.match(demuxer.stats, { resyncs: 0, continuityErrors: 0, droppedPes: 0 });
  await publish(1);
  const next = parsePlaylist(await (await fetch(`http://127.0.0.1:${port}/fip/fip_hifi.m3u8`)).text()).manifest;
  t.ok(next.mediaSequence! + next.segments.length > manifest.mediaSequence! + manifest.segments.length, 'and it follows the next publish');
});
