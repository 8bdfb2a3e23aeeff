/**
 * The Icecast source listener (src/ingest/icecast-source.ts) on a real loopback socket, spoken
 * to as source clients do, byte for byte: PUT with Expect: 100-continue (FFmpeg, libshout 2.4),
 * the legacy SOURCE method (HTTP/1.0, no Expect), wrong or missing credentials (401 with
 * Icecast's challenge, the same for another mount), a second source on the mount (403
 * "Mountpoint in use") and again once the first left, an unsupported Content-Type (415), the
 * body handed on in order, and metadata updates with the source password.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { IcecastSourceFeed } from '../../src/ingest/icecast-source.js';
import type { FeedStream } from '../../src/ingest/input-feed.js';
import type { NowPlaying } from '../../src/media/now-playing.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitUntil } from '../helpers/wait-until.js';

const PASSWORD = 'hackme-please';
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function sourceFeed(t: Test, options: { headTimeoutMs?: number; clock?: ManualClock } = {}): Promise<{ feed: IcecastSourceFeed; port: number; titles: NowPlaying[] }> {
  const titles: NowPlaying[] = [];
  const feed = new IcecastSourceFeed({
    host: '127.0.0.1',
    port: 0,
    mount: '/live',
    credentials: { user: 'source', password: PASSWORD },
    logger: pino({ level: 'silent' }),
    handlers: { onNowPlaying: (nowPlaying) => titles.push(nowPlaying) },
    ...options,
  });
  feed.start();
  await feed.ready();
  t.teardown(() => feed.close());
  return { feed, port: feed.address()!.port, titles };
}

/** A raw client: what it has received so far, as text. */
function client(t: Test, port: number): { socket: Socket; received: () => string; closed: Promise<void> } {
  const socket = connect({ port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.on('error', () => undefined);
  t.teardown(() => socket.destroy());
  // Resolved on close however it ends: a server that closes with bytes unread sends a reset, and
  // events.once would reject on the socket's ECONNRESET instead.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => Buffer.concat(chunks).toString('latin1'), closed };
}

/** Reads `bytes` bytes of the stream without ending it (as the worker's pipe does). */
async function readAll(stream: FeedStream, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      if (total < bytes) return;
      stream.audio.off('data', onData);
      stream.audio.pause();
      resolve();
    };
    stream.audio.on('data', onData);
    stream.audio.resume();
  });
  return Buffer.concat(chunks);
}

t.test('PUT with Expect: 100-continue gets 100, then HTTP/1.0 200 OK, and its body is the feed', async (t) => {
  const { feed, port } = await sourceFeed(t);
  const next = feed.next();
  const source = client(t, port);
  source.socket.write(`PUT /live HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic('source', PASSWORD)}\r\nContent-Type: audio/mpeg\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n`);
  await waitUntil(t, '100 and 200', () => source.received().includes('200 OK'));
  t.match(source.received(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.0 200 OK\r\n\r\n$/);
  const stream = (await next)!;
  t.equal(stream.format, 'mp3');
  source.socket.write('5\r\nhello\r\n6\r\n world\r\n');
  t.equal((await readAll(stream, 11)).toString(), 'hello world');
});

t.test('the legacy SOURCE method, and an AAC source', async (t) => {
  const { feed, port } = await sourceFeed(t);
  const source = client(t, port);
  source.socket.write(`SOURCE /live HTTP/1.0\r\nAuthorization: ${basic('source', PASSWORD)}\r\nContent-Type: audio/aacp\r\nice-name: studio\r\n\r\nabc`);
  await waitUntil(t, 'an answer', () => source.received().length > 0);
  t.equal(source.received(), 'HTTP/1.0 200 OK\r\n\r\n');
  const stream = (await feed.next())!;
  t.equal(stream.format, 'aac');
  t.equal((await readAll(stream, 3)).toString(), 'abc');
});

t.test('wrong or missing credentials get 401 with the challenge, the same for another mount; nothing is handed on', async (t) => {
  const { feed, port } = await sourceFeed(t);
  let handed = false;
  void feed.next().then((stream) => (handed = stream !== undefined));
  const answers: string[] = [];
  for (const [path, authorization] of [
    ['/live', basic('source', 'wrong-password')],
    ['/live', basic('admin', PASSWORD)],
    ['/live', undefined],
    ['/other', basic('source', 'wrong-password')],
  ] as const) {
    const source = client(t, port);
    source.socket.write(`PUT ${path} HTTP/1.1\r\nHost: x\r\n${authorization ? `Authorization: ${authorization}\r\n` : ''}Content-Type: audio/mpeg\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n`);
    await source.closed;
    const answer = source.received();
    t.match(answer, /^HTTP\/1\.0 401 /, `${path} ${authorization ?? 'none'}`);
    t.match(answer, /WWW-Authenticate: Basic realm="Icecast2 Server"/i);
    t.notMatch(answer, /100 Continue/, 'no 100 before the credentials are right');
    answers.push(answer.replace(/Date: .*\r\n/i, ''));
  }
  t.equal(new Set(answers).size, 1, 'one answer whatever the mount or the user');
  t.equal(handed, false);
});

t.test('an address that guesses the password is locked out after 5 failures, even with the right one, for 1 s and then twice as long', async (t) => {
  const clock = new ManualClock();
  const { feed, port } = await sourceFeed(t, { clock });
  const put = async (password: string): Promise<string> => {
    const source = client(t, port);
    source.socket.write(`PUT /live HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic('source', password)}\r\nContent-Type: audio/mpeg\r\n\r\n`);
    if (password === PASSWORD) await waitUntil(t, 'an answer', () => source.received().length > 0);
    else await source.closed;
    const answer = source.received();
    source.socket.destroy();
    return answer;
  };
  for (let attempt = 1; attempt <= 5; attempt++) t.match(await put(`guess-${attempt}`), /^HTTP\/1\.0 401 /, `guess ${attempt}: 401 at once`);
  const locked = await put(PASSWORD);
  t.match(locked, /^HTTP\/1\.0 429 Too Many Requests\r\n/, 'locked out: the right password is not even looked at');
  t.match(locked, /Retry-After: 1\r\n/);
  t.notMatch(locked, /WWW-Authenticate/i);
  await clock.advance(1_000);
  t.match(await put('guess-6'), /^HTTP\/1\.0 401 /, 'free to try again after the lock-out');
  t.match(await put(PASSWORD), /^HTTP\/1\.0 429 .*\r\n[^]*Retry-After: 2\r\n/, 'the next lock-out is twice as long');
  await clock.advance(2_000);
  t.equal(await put(PASSWORD), 'HTTP/1.0 200 OK\r\n\r\n', 'the right password gets in once the lock-out is over');
  t.ok(await feed.next(), 'and its body is the feed');
});

t.test('a second source on the mount gets 403 Mountpoint in use until the first leaves', async (t) => {
  const { feed, port } = await sourceFeed(t);
  const first = client(t, port);
  first.socket.write(`SOURCE /live HTTP/1.0\r\nAuthorization: ${basic('source', PASSWORD)}\r\nContent-Type: audio/mpeg\r\n\r\n`);
  const stream = (await feed.next())!;
  const second = client(t, port);
  second.socket.write(`SOURCE /live HTTP/1.0\r\nAuthorization: ${basic('source', PASSWORD)}\r\nContent-Type: audio/mpeg\r\n\r\n`);
  await second.closed;
  t.match(second.received(), /^HTTP\/1\.0 403 [^]*Mountpoint in use/);
  first.socket.end();
  stream.audio.resume();
  await waitUntil(t, 'the mount is free again', async () => {
    const third = client(t, port);
    third.socket.write(`SOURCE /live HTTP/1.0\r\nAuthorization: ${basic('source', PASSWORD)}\r\nContent-Type: audio/mpeg\r\n\r\n`);
    await waitUntil(t, 'an answer', () => third.received().length > 0);
    if (third.received().startsWith('HTTP/1.0 200')) return true;
    third.socket.destroy();
    return false;
  });
});

t.test('a Content-Type that is not MP3, AAC or Ogg is 415', async (t) => {
  const { port } = await sourceFeed(t);
  const source = client(t, port);
  source.socket.write(`PUT /live HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic('source', PASSWORD)}\r\nContent-Type: application/x-mpegurl\r\nContent-Length: 10\r\n\r\n0123456789`);
  await source.closed;
  t.match(source.received(), /^HTTP\/1\.0 415 [^]*Content-type not supported/);
});

t.test('metadata updates with the source password become titles; the wrong password is 401', async (t) => {
  const { port, titles } = await sourceFeed(t);
  const base = `http://127.0.0.1:${port}/admin/metadata?mode=updinfo&mount=%2Flive`;
  const ok = await fetch(`${base}&song=Nina%20Simone%20-%20Sinnerman`, { headers: { authorization: basic('source', PASSWORD) } });
  t.equal(ok.status, 200);
  t.match(await ok.text(), /<message>Metadata update successful<\/message><return>1<\/return>/);
  t.match(titles, [{ artist: 'Nina Simone', title: 'Sinnerman' }]);
  const latin1 = await fetch(`${base}&song=Caf%E9&charset=ISO-8859-1`, { headers: { authorization: basic('source', PASSWORD) } });
  t.equal(latin1.status, 200);
  t.equal(titles[1]?.title, 'Café', 'charset honoured');
  const wrong = await fetch(`${base}&song=x`, { headers: { authorization: basic('source', 'nope-nope') } });
  t.equal(wrong.status, 401);
  const otherMount = await fetch(`http://127.0.0.1:${port}/admin/metadata?mode=updinfo&mount=/other&song=x`, { headers: { authorization: basic('source', PASSWORD) } });
  t.equal(otherMount.status, 400);
  const badUtf8 = await fetch(`${base}&song=caf%C3%28`, { headers: { authorization: basic('source', PASSWORD) } });
  t.equal(badUtf8.status, 400);
  t.equal(titles.length, 2);
});

t.test('a client that trickles its head is cut at the deadline, and one address cannot hold more than 4 heads open', async (t) => {
  const { feed, port } = await sourceFeed(t, { headTimeoutMs: 600 });
  // One byte every 100 ms never lets an idle timer fire: only a deadline for the whole head ends it.
  const trickler = client(t, port);
  const head = `PUT /live HTTP/1.1\r\nauthorization: ${basic('source', PASSWORD)}\r\n`;
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < head.length) trickler.socket.write(head[sent++]!);
  }, 100);
  t.teardown(() => clearInterval(timer));
  const started = Date.now();
  await trickler.closed;
  clearInterval(timer);
  t.ok(Date.now() - started < 3000, `closed at the head deadline, after ${Date.now() - started} ms and ${sent} bytes`);

  // Four silent connections are held; a fifth from the same address is closed at once.
  const silent = [0, 1, 2, 3].map(() => client(t, port));
  await Promise.all(silent.map(({ socket }) => once(socket, 'connect')));
  const fifth = client(t, port);
  await fifth.closed;
  t.equal(fifth.received(), '', 'the fifth gets nothing and is closed');
  await Promise.all(silent.map(({ closed }) => closed));

  // Once they are gone (the deadline), the source connects as usual.
  const next = feed.next();
  const source = client(t, port);
  source.socket.write(`PUT /live HTTP/1.1\r\nauthorization: ${basic('source', PASSWORD)}\r\ncontent-type: audio/mpeg\r\n\r\n`);
  t.ok(await next, 'the real source is taken');
  await waitUntil(t, 'the 200 answer', () => source.received().startsWith('HTTP/1.0 200 OK'));
});
