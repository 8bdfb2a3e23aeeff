import { Cluster, Redis, ReplyError } from 'ioredis';
import t from 'tap';
import { isOnairError, OnairError } from '../../src/errors.js';
import { createRedisClient, toStoreError } from '../../src/store/redis-connection.js';
import { parseRedisUrl } from '../../src/store/redis-url.js';

t.test('connection failures become ONAIR_STORE_UNAVAILABLE and domain errors pass through', async (t) => {
  t.ok(isOnairError(toStoreError(new Error('Connection is closed.'), 'GET', 'here'), 'ONAIR_STORE_UNAVAILABLE'));
  const domain = new OnairError('ONAIR_STORE_URL_INVALID', 'bad');
  t.equal(toStoreError(domain, 'GET', 'here'), domain);
});

t.test('a FENCED reply from a script becomes ONAIR_FENCED, an OOM reply ONAIR_STORE_FULL, other reply errors stay as they are', async (t) => {
  const fenced = toStoreError(new ReplyError('FENCED the lease token is not current'), 'publish', 'here');
  t.ok(isOnairError(fenced, 'ONAIR_FENCED'));
  const full = toStoreError(new ReplyError("OOM command not allowed when used memory > 'maxmemory'."), 'SET segment', 'here');
  t.ok(isOnairError(full, 'ONAIR_STORE_FULL'));
  const transient = toStoreError(new ReplyError('CLUSTERDOWN The cluster is down'), 'publish', 'here');
  t.ok(isOnairError(transient, 'ONAIR_STORE_UNAVAILABLE'));
  const bug = new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value');
  t.equal(toStoreError(bug, 'GET', 'here'), bug);
  const lookalike = new ReplyError('FENCEDX not ours');
  t.equal(toStoreError(lookalike, 'GET', 'here'), lookalike);
});

t.test('each URL kind gets its kind of client, not connected before it is asked to', async (t) => {
  const single = createRedisClient(parseRedisUrl('redis://127.0.0.1:1/0'));
  const sentinel = createRedisClient(parseRedisUrl('redis-sentinel://127.0.0.1:1/mymaster'));
  const cluster = createRedisClient(parseRedisUrl('redis-cluster://127.0.0.1:1,127.0.0.1:2'));
  t.teardown(() => [single, sentinel, cluster].forEach((client) => client.disconnect()));
  t.ok(single instanceof Redis && !(single instanceof Cluster));
  t.ok(sentinel instanceof Redis);
  t.equal((sentinel as Redis).options.name, 'mymaster');
  t.ok(cluster instanceof Cluster);
  for (const client of [single, sentinel, cluster]) t.equal(client.status, 'wait');
});
