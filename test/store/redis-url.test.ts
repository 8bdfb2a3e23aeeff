import t from 'tap';
import { parseRedisUrl } from '../../src/store/redis-url.js';

t.test('a redis URL gives host, port and database, with defaults', async (t) => {
  t.match(parseRedisUrl('redis://127.0.0.1:6380/2'), { mode: 'standalone', host: '127.0.0.1', port: 6380, db: 2, tls: false });
  t.match(parseRedisUrl('redis://redis'), { host: 'redis', port: 6379, db: 0, tls: false });
  t.match(parseRedisUrl('redis://[::1]:7000/'), { host: '::1', port: 7000, db: 0 });
});

t.test('a rediss URL turns TLS on', async (t) => {
  t.match(parseRedisUrl('rediss://cache.example.net:6380/1'), { host: 'cache.example.net', port: 6380, db: 1, tls: true });
});

t.test('credentials are decoded and kept out of the URL used in messages', async (t) => {
  const target = parseRedisUrl('redis://onair:p%40ss@redis:6379/3');
  t.equal(target.username, 'onair');
  t.equal(target.password, 'p@ss');
  t.equal(target.safeUrl, 'redis://redis:6379/3');
  t.equal(parseRedisUrl('redis://:secret@redis').password, 'secret');
  t.equal(parseRedisUrl('redis://:secret@redis').username, undefined);
});

t.test('a sentinel URL lists the Sentinels, names the master and may pick a database', async (t) => {
  t.same(parseRedisUrl('redis-sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster'), {
    mode: 'sentinel',
    sentinels: [
      { host: '10.0.0.1', port: 26379 },
      { host: '10.0.0.2', port: 26380 },
    ],
    masterName: 'mymaster',
    db: 0,
    username: undefined,
    password: undefined,
    safeUrl: 'redis-sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster/0',
  });
  t.match(parseRedisUrl('redis-sentinel://sentinel/onair-main/2'), {
    sentinels: [{ host: 'sentinel', port: 26379 }],
    masterName: 'onair-main',
    db: 2,
  });
  t.match(parseRedisUrl('redis-sentinel://[::1]:26379,[fe80::1]/m'), {
    sentinels: [
      { host: '::1', port: 26379 },
      { host: 'fe80::1', port: 26379 },
    ],
  });
});

t.test('a cluster URL lists startup nodes', async (t) => {
  t.same(parseRedisUrl('redis-cluster://10.0.0.1:7000,10.0.0.2:7001,node3'), {
    mode: 'cluster',
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: 'node3', port: 6379 },
    ],
    username: undefined,
    password: undefined,
    safeUrl: 'redis-cluster://10.0.0.1:7000,10.0.0.2:7001,node3:6379',
  });
  t.match(parseRedisUrl('redis-cluster://h:7000/'), { mode: 'cluster' });
});

t.test('sentinel and cluster credentials are decoded and kept out of the safe URL', async (t) => {
  const sentinel = parseRedisUrl('redis-sentinel://onair:p%40ss@s1:26379,s2:26379/mymaster');
  t.match(sentinel, { username: 'onair', password: 'p@ss' });
  t.notMatch(sentinel.safeUrl, /onair|p@ss/);
  const cluster = parseRedisUrl('redis-cluster://:secret@c1:7000');
  t.match(cluster, { username: undefined, password: 'secret', safeUrl: 'redis-cluster://c1:7000' });
});

t.test('a malformed URL fails with ONAIR_STORE_URL_INVALID at store.url', async (t) => {
  const bad = [
    '',
    'redis',
    'http://redis:6379',
    'redis://',
    'redis://redis:6379/db1',
    'redis://redis/1?x=1',
    'redis://redis:0',
    'redis-sentinel://s1:26379',
    'redis-sentinel://s1:26379/',
    'redis-sentinel:///mymaster',
    'redis-sentinel://s1:26379,/mymaster',
    'redis-sentinel://s1:26379/my master',
    'redis-sentinel://s1:26379/mymaster/x',
    'redis-sentinel://s1:26379/mymaster/0/extra',
    'redis-sentinel://s1:99999/mymaster',
    'redis-sentinel://s1:26379/mymaster?db=1',
    'redis-cluster://',
    'redis-cluster://c1:7000/0',
    'redis-cluster://c1:7000,c2:x',
    'redis-cluster://c1:0',
    'redis-cluster://c1:7000#x',
    'redis-cluster://%zz@c1:7000',
  ];
  for (const url of bad) {
    t.throws(() => parseRedisUrl(url), { code: 'ONAIR_STORE_URL_INVALID', where: 'store.url' }, JSON.stringify(url));
  }
});
