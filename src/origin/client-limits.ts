/**
 * Caps per client address and per process against hostile clients: held requests and
 * connections are capped per address and per process (docs/architecture.md, Origin).
 *
 * - Caps count by clientKey (src/http/client-address.ts) of the request's IP as Fastify reports
 *   it (from X-Forwarded-For only when the connection comes from a trusted proxy).
 * - HeldRequestLimits: LL-HLS requests held at once (blocking reloads, hinted parts), in all
 *   and per client. Over either cap a request is refused at once (the origin answers 503 +
 *   Retry-After) instead of being held. Memory: one map entry per client holding a request,
 *   so at most `maxTotal` entries.
 * - ConnectionLimits: open connections per socket address, counted on the server's
 *   `connection` event; a connection over the cap is destroyed before a byte is read. Trusted
 *   proxies (Varnish, a load balancer) carry many clients and are exempt. The process-wide
 *   cap is Node's own server.maxConnections (origin-server.ts).
 */
import { BlockList, isIP, type Socket } from 'node:net';
import type { Server } from 'node:http';
import { clientKey } from '../http/client-address.js';

/** Releases one held request; calling it again does nothing. */
export type Release = () => void;

export class HeldRequestLimits {
  private readonly perClient = new Map<string, number>();
  private total = 0;
  /** Requests refused since start, for metrics. */
  refused = 0;

  constructor(
    readonly maxTotal: number,
    readonly maxPerClient: number,
  ) {
    for (const [name, value] of [['maxTotal', maxTotal], ['maxPerClient', maxPerClient]] as const) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`HeldRequestLimits: ${name} must be an integer ≥ 1`);
    }
  }

  /** Requests held right now. */
  get held(): number {
    return this.total;
  }

  /** Requests `client` holds right now. */
  heldBy(client: string): number {
    return this.perClient.get(client) ?? 0;
  }

  /** Counts one more held request of `client` and returns its release, or null when a cap is reached. */
  acquire(client: string): Release | null {
    const count = this.perClient.get(client) ?? 0;
    if (this.total >= this.maxTotal || count >= this.maxPerClient) {
      this.refused += 1;
      return null;
    }
    this.total += 1;
    this.perClient.set(client, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total -= 1;
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left === 0) this.perClient.delete(client);
      else this.perClient.set(client, left);
    };
  }
}

/** Addresses and CIDR ranges (`10.0.0.0/8`, `::1`) as a matcher. */
export function addressMatcher(entries: readonly string[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return (address) => {
    if (!address || isIP(address) === 0) return false;
    // BlockList matches an IPv4-mapped IPv6 address against IPv4 rules too.
    return list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  };
}

export class ConnectionLimits {
  private readonly open = new Map<string, number>();
  /** Connections destroyed since start, for metrics and tests. */
  refused = 0;

  constructor(
    private readonly maxPerClient: number,
    private readonly exempt: (address: string | undefined) => boolean,
  ) {
    if (!Number.isSafeInteger(maxPerClient) || maxPerClient < 1) throw new RangeError('ConnectionLimits: maxPerClient must be an integer ≥ 1');
  }

  /** Counts the connections of `server` from now on. */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.admit(socket));
  }

  /** Open connections of a client address right now. */
  openFrom(address: string): number {
    return this.open.get(clientKey(address)) ?? 0;
  }

  /** Keeps the socket (and counts it until it closes), or destroys it when its address is over the cap. */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress;
    if (this.exempt(address)) return true;
    const key = clientKey(address);
    const count = this.open.get(key) ?? 0;
    if (count >= this.maxPerClient) {
      this.refused += 1;
      socket.destroy();
      return false;
    }
    this.open.set(key, count + 1);
    socket.once('close', () => {
      const left = (this.open.get(key) ?? 1) - 1;
      if (left === 0) this.open.delete(key);
      else this.open.set(key, left);
    });
    return true;
  }
}
