import t from 'tap';
import { playlistBodyField, playlistEtagField, RedisKeys } from '../../src/store/redis-keys.js';

t.test('keys put the channel in a hash tag after the prefix', async (t) => {
  const keys = new RedisKeys();
  t.equal(keys.segment('fip', 'hifi', '1234-3.ts'), 'onair:{fip}:seg:hifi:1234-3.ts');
  t.equal(keys.playlists('fip'), 'onair:{fip}:playlists');
  t.equal(keys.state('fip'), 'onair:{fip}:state');
  t.equal(keys.lease('fip'), 'onair:{fip}:lease');
  t.equal(keys.fence('fip'), 'onair:{fip}:fence');
  t.equal(keys.status('fip'), 'onair:{fip}:status');
  t.equal(keys.updates(), 'onair:updates');
});

t.test('a custom prefix replaces onair everywhere', async (t) => {
  const keys = new RedisKeys('test-1');
  t.equal(keys.state('fip'), 'test-1:{fip}:state');
  t.equal(keys.updates(), 'test-1:updates');
});

t.test('a playlist keeps its body and its ETag in two fields of the playlists hash', async (t) => {
  t.equal(playlistBodyField('fip_hifi.m3u8'), 'fip_hifi.m3u8');
  t.equal(playlistEtagField('fip_hifi.m3u8'), 'fip_hifi.m3u8#etag');
});

t.test('names that would break the hash tag or make keys ambiguous are refused', async (t) => {
  const keys = new RedisKeys();
  t.throws(() => keys.state('f{i}p'), RangeError);
  t.throws(() => keys.state(''), RangeError);
  t.throws(() => keys.segment('fip', 'hi:fi', '1.ts'), RangeError);
  t.throws(() => playlistEtagField('a#etag'), RangeError);
  t.throws(() => new RedisKeys('{onair}'), RangeError);
  t.throws(() => new RedisKeys(''), RangeError);
});
