/**
 * The origin's Fastify server against hostile clients (src/origin/origin-server.ts): the
 * defaults are the config's, the server options are set, a slow sender is cut off with 408,
 * connections over the process cap are closed, and under event-loop pressure requests get
 * 503 ONAIR_ORIGIN_BUSY. Real loopback sockets where the server's socket handling matters.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { buildOrigin, DEFAULT_ORIGIN_LIMITS, DEFAULT_TRUSTED_PROXIES, type OriginLimits } from '../../src/origin/origin-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';

/** A bound on waits for something the server does by itself; never a speed assertion. */
const HANG_GUARD_MS = 8000;

async function startOrigin(t: Test, limits: Partial<OriginLimits> = {}): Promise<{ app: FastifyInstance; port: number }> {
  const store = new MemoryStore();
  await store.start();
  const app = await buildOrigin({ store, channels: [{ id: 'fip', renditions: ['hifi'] }], targetDurationSeconds: 4, limits });
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as { port: number }).port };
}

/** Everything the server sends until it closes the connection (or the guard ends the wait). */
async function untilClosed(socket: Socket): Promise<string> {
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const guard = setTimeout(() => socket.destroy(), HANG_GUARD_MS);
  await once(socket, 'close');
  clearTimeout(guard);
  return received;
}

t.test("the origin's defaults are the config's", async (t) => {
  const config = resolveConfig({ channels: [{ id: 'fip', renditions: [{ id: 'hifi', bitrate: 96000 }], inputs: [{ id: 'main', url: '/srv/loop.mp3' }] }] });
  const { apiRequestsPerMinute, ...originLimits } = config.origin.limits;
  t.ok(apiRequestsPerMinute > 0);
  t.strictSame(originLimits, DEFAULT_ORIGIN_LIMITS);
  t.strictSame(config.origin.trustedProxies, DEFAULT_TRUSTED_PROXIES);
});

t.test('the server carries the limits: connections, keep-alive, request and header timeouts, an idle timeout past the longest hold', async (t) => {
  const { app } = await startOrigin(t, { connections: 123, keepAliveTimeoutMs: 7000, requestTimeoutMs: 3000 });
  t.equal(app.server.maxConnections, 123);
  t.equal(app.server.keepAliveTimeout, 7000);
  t.equal(app.server.requestTimeout, 3000);
  t.equal(app.server.headersTimeout, 3000);
  t.ok(app.server.timeout > 3 * 4 * 1000 && app.server.timeout > 7000, `idle timeout ${app.server.timeout} ms outlasts a 12 s hold and keep-alive`);
});

t.test('a client that sends its head too slowly gets 408 and is disconnected', async (t) => {
  const { port } = await startOrigin(t, { requestTimeoutMs: 1000 });
  const socket = connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  socket.write('GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ');
  const received = await untilClosed(socket);
  t.match(received, /^HTTP\/1\.1 408 /, 'cut off with 408 Request Timeout');
});

t.test('connections over the process cap are closed at once', async (t) => {
  const { port } = await startOrigin(t, { connections: 2 });
  const kept = [connect({ port, host: '127.0.0.1' }), connect({ port, host: '127.0.0.1' })];
  t.teardown(() => kept.forEach((socket) => socket.destroy()));
  await Promise.all(kept.map((socket) => once(socket, 'connect')));
  // The server counts a connection once it has accepted it: ask on both, so both are counted.
  for (const socket of kept) socket.write('GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n');
  await Promise.all(kept.map((socket) => once(socket, 'data')));
  const third = connect({ port, host: '127.0.0.1' });
  third.once('connect', () => third.write('GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n'));
  t.equal(await untilClosed(third), '', 'the third is closed unanswered');
});

t.test('under event-loop pressure every request gets 503 busy with Retry-After (@fastify/under-pressure)', async (t) => {
  const { app } = await startOrigin(t, { maxEventLoopDelayMs: 1 });
  // Keep the loop busy (50 ms turns) past under-pressure's one-second sample.
  const until = Date.now() + 1500;
  while (Date.now() < until) {
    const turn = Date.now() + 50;
    while (Date.now() < turn);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const response = await app.inject({ method: 'GET', url: '/fip/fip_hifi.m3u8' });
  t.equal(response.statusCode, 503);
  t.equal(response.json().error, 'busy');
  t.equal(response.headers['retry-after'], '1');
  t.equal(response.headers['cache-control'], 'no-store');
});
