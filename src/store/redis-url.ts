/**
 * Parses the store URL into a Redis target: a single server, a Sentinel-managed master,
 * or a Cluster. Invalid URLs fail with ONAIR_STORE_URL_INVALID (where: `store.url`)
 * before anything connects.
 *
 *   redis://[user:password@]host[:port][/db]                      single server (6379)
 *   rediss://…                                                    the same over TLS
 *   redis-sentinel://[user:password@]host[:port],…/<master>[/db]  Sentinel (26379)
 *   redis-cluster://[user:password@]host[:port],…                 Cluster (6379), database 0 only
 *
 * Credentials are those of the data nodes (master/replicas, cluster nodes); Sentinels are
 * reached without AUTH. Every target carries a `safeUrl` without credentials for logs.
 */
import { OnairError } from '../errors.js';

export interface RedisAddress {
  host: string;
  port: number;
}

interface TargetBase {
  username?: string;
  password?: string;
  /** The URL without credentials, safe to log. */
  safeUrl: string;
}

export interface StandaloneTarget extends TargetBase, RedisAddress {
  mode: 'standalone';
  db: number;
  tls: boolean;
}

export interface SentinelTarget extends TargetBase {
  mode: 'sentinel';
  sentinels: RedisAddress[];
  /** The master group name Sentinel monitors (`sentinel monitor <name> …`). */
  masterName: string;
  db: number;
}

export interface ClusterTarget extends TargetBase {
  mode: 'cluster';
  /** Startup nodes; the client discovers the others from them. */
  nodes: RedisAddress[];
}

export type RedisTarget = StandaloneTarget | SentinelTarget | ClusterTarget;

const DEFAULT_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;
const EXPECTED =
  'expected redis://host:6379/0, rediss://host:6380/0, redis-sentinel://host:26379,host:26380/mymaster[/0] or redis-cluster://host:7000,host:7001';

function invalid(reason: string): OnairError {
  return new OnairError('ONAIR_STORE_URL_INVALID', `${reason}; ${EXPECTED}`, { where: 'store.url' });
}

/** Parses any of the store URL forms above. */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([a-z-]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'redis-sentinel' || scheme === 'redis-cluster') return parseMultiHostUrl(scheme, url);
  return parseStandaloneUrl(url);
}

function parseStandaloneUrl(url: string): StandaloneTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw invalid(`unsupported scheme ${parsed.protocol}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw invalid('missing host');
  if (parsed.search !== '' || parsed.hash !== '') throw invalid('query strings and fragments are not supported');
  const port = parsed.port === '' ? DEFAULT_PORT : Number(parsed.port);
  if (!Number.isInteger(port) || port < 1) throw invalid(`invalid port ${parsed.port}`);
  const db = parseDb(parsed.pathname.replace(/^\//, ''));
  const tls = parsed.protocol === 'rediss:';
  return {
    mode: 'standalone',
    host,
    port,
    db,
    tls,
    ...credentials(parsed.username, parsed.password),
    safeUrl: `${parsed.protocol}//${formatAddress({ host, port })}/${db}`,
  };
}

/**
 * WHATWG URL cannot hold a host list, so these are split by hand:
 * scheme://[userinfo@]hostlist[/path], no query string or fragment.
 */
function parseMultiHostUrl(scheme: 'redis-sentinel' | 'redis-cluster', url: string): SentinelTarget | ClusterTarget {
  const match = /^[a-z-]+:\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?$/i.exec(url);
  if (!match) throw invalid('query strings and fragments are not supported');
  const [, userinfo, hostList, path = ''] = match;
  const [rawUser = '', rawPassword = ''] = userinfo === undefined ? [] : splitOnce(userinfo, ':');
  const auth = credentials(rawUser, rawPassword);
  const sentinel = scheme === 'redis-sentinel';
  const addresses = parseHostList(hostList, sentinel ? DEFAULT_SENTINEL_PORT : DEFAULT_PORT);
  const safeHosts = addresses.map(formatAddress).join(',');

  if (!sentinel) {
    if (path !== '' && path !== '/') throw invalid('a cluster URL has no path: Redis Cluster has only database 0');
    return { mode: 'cluster', nodes: addresses, ...auth, safeUrl: `redis-cluster://${safeHosts}` };
  }
  const [masterName = '', dbText = '', ...rest] = path.replace(/^\//, '').split('/');
  if (masterName === '') throw invalid('missing master name, as in redis-sentinel://host:26379/mymaster');
  if (!/^[\w.-]+$/.test(masterName)) throw invalid(`invalid master name ${JSON.stringify(masterName)}`);
  if (rest.length > 0) throw invalid('too many path parts after the master name and database');
  const db = parseDb(dbText);
  return {
    mode: 'sentinel',
    sentinels: addresses,
    masterName,
    db,
    ...auth,
    safeUrl: `redis-sentinel://${safeHosts}/${masterName}/${db}`,
  };
}

/** `host[:port],[::1]:port,…` → addresses; every part needs a host. */
function parseHostList(hostList: string, defaultPort: number): RedisAddress[] {
  if (hostList === '') throw invalid('missing host');
  return hostList.split(',').map((part) => {
    const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/i.exec(part);
    if (!match) throw invalid(`invalid host ${JSON.stringify(part)}`);
    const host = match[1] ?? match[2];
    const port = match[3] === undefined ? defaultPort : Number(match[3]);
    if (port < 1 || port > 65535) throw invalid(`invalid port ${match[3]}`);
    return { host, port };
  });
}

function parseDb(text: string): number {
  if (text === '') return 0;
  if (!/^\d{1,5}$/.test(text)) throw invalid(`invalid database number ${JSON.stringify(text)}`);
  return Number(text);
}

function credentials(rawUser: string, rawPassword: string): { username?: string; password?: string } {
  try {
    return {
      username: rawUser === '' ? undefined : decodeURIComponent(rawUser),
      password: rawPassword === '' ? undefined : decodeURIComponent(rawPassword),
    };
  } catch {
    throw invalid('malformed percent-encoding in the credentials');
  }
}

function splitOnce(text: string, separator: string): [string, string] {
  const index = text.indexOf(separator);
  return index < 0 ? [text, ''] : [text.slice(0, index), text.slice(index + 1)];
}

function formatAddress({ host, port }: RedisAddress): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
