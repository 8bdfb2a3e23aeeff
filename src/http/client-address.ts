/**
 * The key a client address is counted by, wherever onair caps or remembers clients (held
 * requests, connections, access-log sessions, failed logins): the IP as given, an
 * IPv4-mapped IPv6 address as IPv4, and any other IPv6 address by its /64 (one subscriber's
 * allocation: an attacker has 2^64 of those), as @fastify/rate-limit counts them
 * (docs/architecture.md, Origin).
 */
import { isIP } from 'node:net';
import { normalizeIP } from '@fastify/rate-limit';

/** Prefix length an IPv6 client is counted by. */
export const IPV6_CLIENT_PREFIX = 64;

/** The key a client address is counted by (see the header); an empty address counts as one client. */
export function clientKey(ip: string | undefined): string {
  if (!ip) return '';
  return isIP(ip) === 0 ? ip : normalizeIP(ip, IPV6_CLIENT_PREFIX);
}
