/**
 * Caps per client address (src/origin/client-limits.ts): the address key (IPv6 by /64),
 * held-request places in all and per client, trusted-proxy matching, and the connection cap
 * per address on a real loopback server (127.0.0.2 and 127.0.0.3 are distinct clients).
 */
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { clientKey } from '../../src/http/client-address.js';
import { addressMatcher, ConnectionLimits, HeldRequestLimits } from '../../src/origin/client-limits.js';
import { waitUntil } from '../helpers/wait-until.js';

t.test('a client is its IPv4 address, or the /64 of its IPv6 address', async (t) => {
  t.equal(clientKey('203.0.113.7'), '203.0.113.7');
  t.equal(clientKey('::ffff:203.0.113.7'), '203.0.113.7', 'an IPv4-mapped address counts as the IPv4 one');
  t.equal(clientKey('2001:db8:1:2:aaaa::1'), clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), 'one /64 is one client');
  t.not(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'), 'another /64 is another client');
  t.equal(clientKey(undefined), '');
});

t.test('held places: per client and in all, refused when full, freed once by each release', async (t) => {
  const limits = new HeldRequestLimits(3, 2);
  const a1 = limits.acquire('a');
  const a2 = limits.acquire('a');
  t.ok(a1 && a2);
  t.equal(limits.acquire('a'), null, 'a third for one client is refused');
  const b1 = limits.acquire('b');
  t.ok(b1);
  t.equal(limits.acquire('c'), null, 'a fourth in all is refused, whoever asks');
  t.equal(limits.held, 3);
  t.equal(limits.refused, 2);
  a1!();
  a1!();
  t.equal(limits.held, 2, 'a release counts once');
  t.equal(limits.heldBy('a'), 1);
  t.ok(limits.acquire('c'), 'a freed place serves anyone');
  a2!();
  b1!();
  t.equal(limits.heldBy('a'), 0);
  t.throws(() => new HeldRequestLimits(0, 1), RangeError);
});

t.test('trusted proxies match addresses and ranges, IPv4-mapped addresses included', async (t) => {
  const trusted = addressMatcher(['127.0.0.1', '::1', '10.0.0.0/8', '2001:db8::/32']);
  t.ok(trusted('127.0.0.1'));
  t.ok(trusted('::ffff:127.0.0.1'));
  t.ok(trusted('::1'));
  t.ok(trusted('10.200.3.4'));
  t.ok(trusted('2001:db8:ffff::5'));
  t.notOk(trusted('127.0.0.2'));
  t.notOk(trusted('11.0.0.1'));
  t.notOk(trusted('2001:db9::1'));
  t.notOk(trusted(undefined));
  t.notOk(trusted('not an address'));
});

/** Opens a connection from `localAddress`; resolves once connected. */
async function open(port: number, localAddress: string): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  await once(socket, 'connect');
  return socket;
}

/** Asks for `/` on the socket: 'served' on an answer, 'closed' if the server closed it instead. */
async function outcome(socket: Socket): Promise<'served' | 'closed'> {
  if (socket.destroyed) return 'closed';
  socket.on('error', () => undefined);
  const answered = once(socket, 'data').then(([chunk]: Buffer[]) => (chunk!.toString('latin1').startsWith('HTTP/1.1 200') ? 'served' : 'closed'));
  const closed = once(socket, 'close').then(() => 'closed' as const);
  socket.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
  return Promise.race([answered, closed]);
}

t.test('connections over the cap of one address are closed at once; other addresses and trusted proxies are not', async (t) => {
  const server: Server = createServer((request, response) => response.end('ok'));
  const limits = new ConnectionLimits(3, addressMatcher(['127.0.0.1']));
  limits.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const sockets: Socket[] = [];
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });

  for (let i = 0; i < 3; i++) sockets.push(await open(port, '127.0.0.2'));
  await waitUntil(t, 'three counted', () => limits.openFrom('127.0.0.2') === 3);
  const fourth = await open(port, '127.0.0.2');
  sockets.push(fourth);
  t.equal(await outcome(fourth), 'closed', 'the fourth connection of 127.0.0.2 is closed unanswered');
  t.equal(limits.refused, 1);

  const other = await open(port, '127.0.0.3');
  sockets.push(other);
  t.equal(await outcome(other), 'served', '127.0.0.3 has places of its own');
  t.equal(await outcome(sockets[1]!), 'served', 'the first three of 127.0.0.2 are served');
  const proxied = [];
  for (let i = 0; i < 5; i++) proxied.push(await open(port, '127.0.0.1'));
  sockets.push(...proxied);
  t.equal(await outcome(proxied[4]!), 'served', 'a trusted proxy carries many clients: no cap');

  sockets[0]!.destroy();
  await waitUntil(t, 'the closed one is uncounted', () => limits.openFrom('127.0.0.2') === 2);
  const again = await open(port, '127.0.0.2');
  sockets.push(again);
  t.equal(await outcome(again), 'served', 'a closed connection frees its place');
});
