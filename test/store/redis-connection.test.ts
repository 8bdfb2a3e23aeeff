import t from 'tap';
import { isOnairError, OnairError } from '../../src/errors.js';
import { parseRedisUrl, toStoreError } from '../../src/store/redis-connection.js';

t.test('a redis URL gives host, port and database, with defaults', async (t) => {
  t.match(parseRedisUrl('redis://127.0.0.1:6380/2'), { host: '127.0.0.1', port: 6380, db: 2, tls: false });
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

t.test('a malformed URL fails with ONAIR_STORE_URL_INVALID', async (t) => {
  for (const url of ['', 'redis', 'http://redis:6379', 'redis://', 'redis://redis:6379/db1', 'redis://redis/1?x=1', 'redis://redis:0']) {
    t.throws(() => parseRedisUrl(url), { code: 'ONAIR_STORE_URL_INVALID' }, JSON.stringify(url));
  }
});

t.test('connection failures become ONAIR_STORE_UNAVAILABLE and domain errors pass through', async (t) => {
  t.ok(isOnairError(toStoreError(new Error('Connection is closed.'), 'GET', 'here'), 'ONAIR_STORE_UNAVAILABLE'));
  const domain = new OnairError('ONAIR_STORE_URL_INVALID', 'bad');
  t.equal(toStoreError(domain, 'GET', 'here'), domain);
});
