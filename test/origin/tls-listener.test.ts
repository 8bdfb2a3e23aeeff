/**
 * HTTPS and HTTP/2 on the origin (src/origin/tls-listener.ts), against real parts: certificates
 * made by openssl for a test CA, buildOrigin on a loopback port over a MemoryStore fed by a real
 * packager, curl (with nghttp2) trusting the CA, Node's TLS and HTTP/2 clients. Covered: a
 * playlist, a segment and a progressive mount over h2 and over HTTP/1.1 on the same port; a
 * reload that presents the new certificate to new connections while an open session goes on;
 * a bad reload that keeps the old pair; config errors naming the key; the handshake deadline
 * and the stream limit a client is told; the connection caps before the handshake; closing
 * with sessions and progressive streams open; LL-HLS held requests on h2 streams.
 */
import { execFile } from 'node:child_process';
import { writeFile, copyFile } from 'node:fs/promises';
import { connect as connectHttp2, type ClientHttp2Session } from 'node:http2';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { TlsConfig } from '../../src/config/config-schema.js';
import { isOnairError } from '../../src/errors.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { startOnair } from '../../src/onair.js';
import { buildOrigin, type BuildOriginOptions } from '../../src/origin/origin-server.js';
import type { FastifyInstance } from 'fastify';
import { CertificateReloader, readTlsPair, type TlsListenerOptions } from '../../src/origin/tls-listener.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Server as TlsServer } from 'node:tls';
import { FrameSource, pushUntilCut } from '../helpers/aac-frames.js';
import { rawTestChannel, testChannel } from '../helpers/channel-config.js';
import { freeTcpPort } from '../helpers/ports.js';
import { makeTestCa, presentedSerial, type TestCa } from '../helpers/test-certificates.js';
import { waitUntil } from '../helpers/wait-until.js';

const execFileAsync = promisify(execFile);
const silent = pino({ level: 'silent' });

/** A MemoryStore in which a real packager has published a few 1-s segments of channel `fip`. */
async function publishedStore(t: Test): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const packager = new ChannelPackager({ channel: testChannel({}, 1), segmentSeconds: 1, windowSegments: 6, store, logger: silent });
  await packager.start();
  t.teardown(() => packager.close(100));
  const source = new FrameSource();
  for (let segment = 0; segment < 4; segment++) pushUntilCut(packager, source);
  await waitUntil(t, 'segments published', () => packager.stats.segmentsPublished >= 3);
  return store;
}

function tlsSettings(files: { certFile: string; keyFile: string }, more: Partial<TlsConfig> = {}): TlsConfig {
  return { ...files, http2: false, handshakeTimeoutMs: 10_000, maxConcurrentStreams: 100, ...more };
}

interface TlsOrigin {
  app: FastifyInstance;
  port: number;
  base: string;
  tls: TlsListenerOptions;
  server: TlsServer;
  logs: { code?: string; msg: string; serial?: string }[];
}

async function startTlsOrigin(t: Test, store: MemoryStore, settings: TlsConfig, more: Partial<BuildOriginOptions> = {}): Promise<TlsOrigin> {
  const logs: TlsOrigin['logs'] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const tls = { settings, keyPath: 'origin.tls', pair: await readTlsPair(settings, 'origin.tls') };
  const app = await buildOrigin({
    store,
    channels: [{ id: 'fip', renditions: ['lofi', 'hifi'] }],
    targetDurationSeconds: 1,
    logger,
    progressive: {
      store,
      mounts: [{ channel: 'fip', rendition: 'hifi', codec: 'aac', bitrate: 192_000, sampleRate: 48000, audioChannels: 2 }],
    },
    tls,
    ...more,
  });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { app, port, base: `https://127.0.0.1:${port}`, tls, server: app.server as unknown as TlsServer, logs };
}

/** curl trusting the test CA; resolves with stdout, also when curl stops at --max-time (exit 28). */
async function curl(ca: TestCa, args: string[]): Promise<string> {
  try {
    return (await execFileAsync('curl', ['-sS', '--cacert', ca.caFile, ...args], { timeout: 20_000, encoding: 'latin1' })).stdout;
  } catch (error) {
    const failure = error as { code?: number; stdout?: string };
    if (failure.code === 28 && failure.stdout !== undefined) return failure.stdout;
    throw error;
  }
}

function http2Get(session: ClientHttp2Session, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    stream.end();
  });
}

t.test('with http2, curl gets the playlists and a segment over h2, and HTTP/1.1 over TLS still works on the same port', async (t) => {
  const ca = await makeTestCa(t);
  const origin = await startTlsOrigin(t, await publishedStore(t), tlsSettings(await ca.issue('leaf', '1A01'), { http2: true }));

  const master = await curl(ca, ['--http2', '-w', '\n%{http_version} %{http_code}', `${origin.base}/fip/fip.m3u8`]);
  t.match(master, /^#EXTM3U/, 'the master playlist');
  t.match(master, /\n2 200$/, 'over HTTP/2');
  const media = await curl(ca, ['--http2', '-w', '\n%{http_version} %{http_code}', `${origin.base}/fip/fip_hifi.m3u8`]);
  t.match(media, /\n2 200$/);
  const segment = media.split('\n').find((line) => line.length > 0 && !line.startsWith('#'));
  t.ok(segment, 'the media playlist lists a segment');
  const segmentAnswer = await curl(ca, ['--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code} %{content_type} %{size_download}', `${origin.base}/fip/${segment}`]);
  const [version, status, contentType, size] = segmentAnswer.split(' ');
  t.same([version, status, contentType], ['2', '200', 'video/mp2t'], 'a segment over HTTP/2');
  t.ok(Number(size) > 188, 'with its bytes');

  const http1 = await curl(ca, ['--http1.1', '-w', '\n%{http_version} %{http_code}', `${origin.base}/fip/fip_hifi.m3u8`]);
  t.match(http1, /^#EXTM3U/);
  t.match(http1, /\n1\.1 200$/, 'a client that does not ask for h2 gets HTTP/1.1 over TLS');
  const plain = await execFileAsync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${origin.port}/fip/fip.m3u8`]).catch((error: { stdout: string }) => error);
  t.not(plain.stdout, '200', 'plain HTTP on the TLS port is no answer');
});

t.test('a progressive mount streams ADTS over HTTP/1.1 TLS (car radios, Icecast clients) and over h2', async (t) => {
  const ca = await makeTestCa(t);
  const origin = await startTlsOrigin(t, await publishedStore(t), tlsSettings(await ca.issue('leaf', '1A02'), { http2: true }));
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => void warnings.push(`${warning.name}: ${warning.message}`);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  for (const version of ['--http1.1', '--http2']) {
    const body = join(ca.dir, 'mount.aac');
    const answer = await curl(ca, [version, '-H', 'Icy-MetaData: 1', '-D', join(ca.dir, 'head.txt'), '-o', body, '--max-time', '3', '-w', '%{http_version} %{http_code}', `${origin.base}/fip-hifi.aac`]);
    t.equal(answer, version === '--http2' ? '2 200' : '1.1 200', `${version}: answered`);
    const bytes = readFileSync(body);
    t.ok(bytes.length > 1000, `${version}: the burst arrives (${bytes.length} bytes)`);
    t.equal(bytes[0], 0xff, `${version}: the body starts on an ADTS sync word`);
    t.equal(bytes[1]! & 0xf0, 0xf0);
    t.match(readFileSync(join(ca.dir, 'head.txt'), 'latin1'), /icy-metaint: \d+/i, `${version}: ICY metadata offered`);
    t.match(readFileSync(join(ca.dir, 'head.txt'), 'latin1'), `icy-url: ${origin.base}/`, `${version}: the station URL is the HTTPS player page`);
  }
  t.same(warnings, [], 'no header HTTP/2 forbids (Connection) is sent');
  await waitUntil(t, 'both listeners gone', () => origin.app.onairMounts.stats().mounts.every((mount) => mount.listeners === 0), 10_000);
  t.pass('a listener that leaves gives its place back, on HTTP/1.1 and HTTP/2');
});

t.test('a reload presents the new certificate to new connections and an open HTTP/2 session goes on', async (t) => {
  const ca = await makeTestCa(t);
  const first = await ca.issue('leaf', '1A03');
  const origin = await startTlsOrigin(t, await publishedStore(t), tlsSettings(first, { http2: true }));
  t.equal(await presentedSerial(ca.caFile, origin.port), '1A03');

  const session = connectHttp2(origin.base, { ca: readFileSync(ca.caFile) });
  t.teardown(() => session.destroy());
  t.equal((await http2Get(session, '/fip/fip.m3u8')).status, 200);

  const second = await ca.issue('renewed', '2B04');
  await copyFile(second.certFile, first.certFile);
  await copyFile(second.keyFile, first.keyFile);
  const reloader = new CertificateReloader(origin.server, origin.tls, silent);
  t.equal(await reloader.reload(), true, 'the new pair is in use');
  t.equal(await presentedSerial(ca.caFile, origin.port), '2B04', 'a new connection is shown the new certificate');
  t.equal((await http2Get(session, '/fip/fip_hifi.m3u8')).status, 200, 'the session opened before the reload is still served');
  t.notOk(session.closed || session.destroyed);
});

t.test('a bad reload is logged with its code and the old pair is kept', async (t) => {
  const ca = await makeTestCa(t);
  const first = await ca.issue('leaf', '1A05');
  const origin = await startTlsOrigin(t, await publishedStore(t), tlsSettings(first));
  const logger = pino({ level: 'info' }, { write: (line: string) => void origin.logs.push(JSON.parse(line)) });
  const reloader = new CertificateReloader(origin.server, origin.tls, logger);

  // The key of another certificate beside this one.
  const other = await ca.issue('other', '3C06');
  await copyFile(other.keyFile, first.keyFile);
  t.equal(await reloader.reload(), false);
  t.match(origin.logs.at(-1), { code: 'ONAIR_TLS_RELOAD_FAILED', msg: /previous certificate is kept/ });
  t.match(JSON.stringify(origin.logs.at(-1)), /origin\.tls\.keyFile/, 'the log names the key');
  t.equal(await presentedSerial(ca.caFile, origin.port), '1A05', 'the old certificate is still presented');

  // A certificate file that is not PEM at all.
  await writeFile(first.certFile, 'not a certificate');
  t.equal(await reloader.reload(), false);
  t.match(origin.logs.at(-1), { code: 'ONAIR_TLS_RELOAD_FAILED' });
  const answer = await curl(ca, ['-w', '\n%{http_code}', `${origin.base}/fip/fip.m3u8`]);
  t.match(answer, /\n200$/, 'HTTPS still served with the old pair');
  t.equal(await presentedSerial(ca.caFile, origin.port), '1A05');
});

t.test('missing, unreadable or mismatched files are config errors naming the key', async (t) => {
  const ca = await makeTestCa(t);
  const leaf = await ca.issue('leaf', '1A07');
  const other = await ca.issue('other', '1A08');
  const cases: [string, Partial<TlsConfig>, RegExp][] = [
    ['a missing certificate', { certFile: join(ca.dir, 'absent.pem') }, /^origin\.tls\.certFile: cannot read .*absent\.pem \(ENOENT\)/],
    ['an unreadable key (a directory)', { keyFile: ca.dir }, /^origin\.tls\.keyFile: cannot read .* \(EISDIR\)/],
    ['the key of another certificate', { keyFile: other.keyFile }, /^origin\.tls\.keyFile: .*other\.key is not the key of .*leaf\.pem/],
    ['a certificate that is not PEM', { certFile: join(ca.dir, 'leaf.ext') }, /^origin\.tls\.certFile: .*leaf\.ext is not a PEM certificate/],
  ];
  for (const [what, files, message] of cases) {
    const error = await readTlsPair({ ...leaf, ...files }, 'origin.tls').catch((caught: unknown) => caught);
    t.ok(isOnairError(error, 'ONAIR_CONFIG_INVALID'), `${what}: ONAIR_CONFIG_INVALID`);
    t.match((error as Error).message, message, what);
  }

  // At start, before anything binds: the admin listener's key is named too.
  const config = resolveConfig({
    origin: { port: 0 },
    admin: { port: 0, tls: { certFile: leaf.certFile, keyFile: join(ca.dir, 'gone.key') } },
    log: { level: 'silent' },
    channels: [rawTestChannel()],
  });
  const error = await startOnair({ config, role: 'origin', logger: silent }).catch((caught: unknown) => caught);
  t.ok(isOnairError(error, 'ONAIR_CONFIG_INVALID'));
  t.match((error as Error).message, /^admin\.tls\.keyFile: cannot read/);

  // The schema names a missing key.
  t.throws(() => resolveConfig({ origin: { tls: { certFile: leaf.certFile } }, channels: [rawTestChannel()] }), /origin\.tls\.keyFile/);
});

t.test('the control API on its own port serves HTTPS with api.tls (HTTP/2 too) and reloads it; api.tls needs api.port', async (t) => {
  const ca = await makeTestCa(t);
  const first = await ca.issue('api', '3C01');
  const token = 'api-token-0123456789abcdef';
  const port = await freeTcpPort();
  const config = resolveConfig({
    origin: { host: '127.0.0.1', port: 0 },
    admin: { port: 0 },
    api: { tokens: [token], port, tls: { certFile: first.certFile, keyFile: first.keyFile, http2: true } },
    log: { level: 'silent' },
    channels: [rawTestChannel()],
  });
  const running = await startOnair({ config, role: 'origin', logger: silent });
  t.teardown(() => running.close());
  t.equal(running.apiUrl, `https://127.0.0.1:${port}`, 'the API is announced as https');
  const channels = await curl(ca, ['-w', '\\n%{http_code} %{http_version}', '--http2', '-H', `authorization: Bearer ${token}`, `${running.apiUrl}/api/channels`]);
  t.match(channels, /"fip"[\s\S]*\n200 2$/, 'the channels over h2, trusting the test CA');
  t.match(await curl(ca, ['-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--http1.1', `${running.apiUrl}/api/channels`]), /^401 1\.1$/, 'HTTP/1.1 over TLS too; no token, 401');
  const plain = await fetch(`http://127.0.0.1:${port}/api/channels`).then((response) => response.status, () => 'refused');
  t.not(plain, 200, `plain HTTP gets no answer from the API port (${plain})`);

  const second = await ca.issue('api-renewed', '3C02');
  await copyFile(second.certFile, first.certFile);
  await copyFile(second.keyFile, first.keyFile);
  t.equal(await presentedSerial(ca.caFile, port), '3C01');
  await running.reloadCertificates();
  t.equal(await presentedSerial(ca.caFile, port), '3C02', 'SIGHUP’s reload reaches the API listener');

  t.throws(
    () => resolveConfig({ api: { tokens: [token], tls: { certFile: first.certFile, keyFile: first.keyFile } }, channels: [rawTestChannel()] }),
    /api\.tls: needs api\.port/,
    'without api.port the API is on the admin listener: admin.tls covers it',
  );
});

t.test('a client that never finishes its handshake is cut off, and an HTTP/2 client is told the stream limit', async (t) => {
  const ca = await makeTestCa(t);
  const origin = await startTlsOrigin(t, await publishedStore(t), tlsSettings(await ca.issue('leaf', '1A09'), { http2: true, handshakeTimeoutMs: 1000, maxConcurrentStreams: 7 }));

  const silentClient = connectTcp({ host: '127.0.0.1', port: origin.port });
  t.teardown(() => silentClient.destroy());
  let closed = false;
  silentClient.on('close', () => (closed = true));
  silentClient.on('error', () => undefined);
  await waitUntil(t, 'the silent client is disconnected', () => closed, 15_000);
  t.ok(closed, 'a connection without a handshake is closed (handshakeTimeoutMs)');

  const session = connectHttp2(origin.base, { ca: readFileSync(ca.caFile) });
  t.teardown(() => session.destroy());
  const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) => session.once('remoteSettings', resolve));
  t.equal(settings.maxConcurrentStreams, 7, 'SETTINGS_MAX_CONCURRENT_STREAMS is the configured limit');
});

t.test('the connection caps count TLS connections, before their handshake', async (t) => {
  const ca = await makeTestCa(t);
  // Loopback is not a trusted proxy here, so that the per-client cap applies to it.
  const origin = await startTlsOrigin(t, await publishedStore(t), tlsSettings(await ca.issue('leaf', '1A0A'), { http2: true }), {
    trustedProxies: ['10.9.9.9'],
    limits: { connectionsPerClient: 2 },
  });
  const open = (): Promise<'secure' | 'refused'> =>
    new Promise((resolve) => {
      const socket = connectTls({ host: '127.0.0.1', port: origin.port, ca: readFileSync(ca.caFile), servername: 'localhost' }, () => resolve('secure'));
      t.teardown(() => socket.destroy());
      socket.once('error', () => resolve('refused'));
      socket.once('close', () => resolve('refused'));
    });
  t.equal(await open(), 'secure');
  t.equal(await open(), 'secure');
  t.equal(await open(), 'refused', 'a third connection of the same client is closed (connectionsPerClient: 2)');
});

t.test('closing the origin ends open HTTP/2 sessions and HTTP/1.1 connections, progressive streams on both included', async (t) => {
  const ca = await makeTestCa(t);
  const origin = await startTlsOrigin(t, await publishedStore(t), tlsSettings(await ca.issue('leaf', '1A0B'), { http2: true }));
  const session = connectHttp2(origin.base, { ca: readFileSync(ca.caFile) });
  t.teardown(() => session.destroy());
  t.equal((await http2Get(session, '/fip/fip.m3u8')).status, 200);
  const mount = session.request({ ':path': '/fip-hifi.aac' });
  mount.on('error', () => undefined);
  let mountBytes = 0;
  mount.on('data', (chunk: Buffer) => (mountBytes += chunk.length));
  await waitUntil(t, 'the mount streams', () => mountBytes > 1000, 10_000);
  const agent = new HttpsAgent({ keepAlive: true, ca: readFileSync(ca.caFile) });
  t.teardown(() => agent.destroy());
  const http1Status = await new Promise<number>((resolve, reject) => {
    httpsGet(`${origin.base}/fip/fip.m3u8`, { agent }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    }).on('error', reject);
  });
  t.equal(http1Status, 200, 'an HTTP/1.1 keep-alive connection is open');
  let http1MountBytes = 0;
  httpsGet(`${origin.base}/fip-hifi.aac`, { agent }, (response) => response.on('data', (chunk: Buffer) => (http1MountBytes += chunk.length))).on('error', () => undefined);
  await waitUntil(t, 'the HTTP/1.1 mount streams', () => http1MountBytes > 1000, 10_000);

  let closed = false;
  void origin.app.close().then(() => (closed = true));
  await waitUntil(t, 'the origin closed', () => closed, 10_000);
  t.ok(closed, 'close() finished with the sessions open');
  await waitUntil(t, 'the session ended', () => session.closed || session.destroyed, 10_000);
  t.pass('the client saw its session end');
});

t.test('LL-HLS over h2: a blocking reload and the preload-hinted part are held on their streams and answered when the part is published', async (t) => {
  const ca = await makeTestCa(t);
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const packager = new ChannelPackager({ channel: testChannel({ lowLatency: true, partSeconds: 0.25 }, 1), segmentSeconds: 1, windowSegments: 12, store, logger: silent });
  await packager.start();
  t.teardown(() => packager.close(100));
  const source = new FrameSource();
  const publishParts = async (count: number): Promise<void> => {
    const target = packager.stats.partsPublished + count;
    for (let frame = 0; frame < 5000 && packager.stats.partsPublished < target; frame++) {
      packager.pushFrameGroup(source.next());
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await publishParts(6);
  const origin = await startTlsOrigin(t, store, tlsSettings(await ca.issue('leaf', '1A0C'), { http2: true }));
  const session = connectHttp2(origin.base, { ca: readFileSync(ca.caFile) });
  t.teardown(() => session.destroy());

  const playlist = (await http2Get(session, '/fip/fip_hifi.m3u8')).body.toString();
  const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\w+\/(\d+)-\d+\.(\d+)\.ts)"/.exec(playlist);
  t.ok(hint, 'the playlist hints the next part');
  const [, uri, msn, part] = hint!;
  const reload = http2Get(session, `/fip/fip_hifi.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`);
  const hinted = http2Get(session, `/fip/${uri}`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await publishParts(1);
  const [reloaded, partAnswer] = await Promise.all([reload, hinted]);
  t.equal(reloaded.status, 200, 'the blocking reload is answered');
  t.match(reloaded.body.toString(), uri!, 'with the part it waited for');
  t.equal(partAnswer.status, 200, 'the hinted part is answered, not a 404');
  t.ok(partAnswer.body.length > 188, 'with its bytes');
});
