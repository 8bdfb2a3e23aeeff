/**
 * Query parameters as the origin and the cache key read them (src/origin/query-parameters.ts,
 * deploy/varnish/default.vcl): as sent, never percent-decoded; the VCL keeps exactly the
 * parameters the origin says change its answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CACHE_KEY_PARAMETERS, literalQuery } from '../../src/origin/query-parameters.js';
import { SESSION_ID_PARAMETERS } from '../../src/origin/listener-counter.js';
import { TOKEN_PARAMETER } from '../../src/origin/signed-urls.js';

t.test('names and values are read as sent; a repeated name gives an array', async (t) => {
  const query = literalQuery('/fip/fip_hifi.m3u8?_HLS_msn=12&%5FHLS_part=3&x&token=a~b~c&x=2&=v&&');
  t.equal(query._HLS_msn, '12');
  t.equal(query._HLS_part, undefined, 'a percent-encoded name is another name');
  t.equal(query['%5FHLS_part'], '3');
  t.same(query.x, ['', '2']);
  t.equal(query.token, 'a~b~c');
  t.equal(query[''], 'v');
  t.equal(literalQuery('/fip/fip_hifi.m3u8?_HLS_msn=%31')._HLS_msn, '%31', 'a value is not decoded either');
  t.same(Object.keys(literalQuery('/fip/fip.m3u8')), []);
  t.same(Object.keys(literalQuery('/fip/fip.m3u8?')), []);
  t.equal(literalQuery('/a?__proto__=1').__proto__, '1', 'any name is a plain key');
  t.equal(literalQuery('/a?b=1#c=2').c, undefined, 'a fragment is not the query');
});

t.test("the cache key's parameters are the LL-HLS directives and the token, and default.vcl keeps exactly those", async (t) => {
  t.same([...CACHE_KEY_PARAMETERS], ['_HLS_msn', '_HLS_part', '_HLS_skip', TOKEN_PARAMETER]);
  for (const name of SESSION_ID_PARAMETERS) t.notOk((CACHE_KEY_PARAMETERS as readonly string[]).includes(name), `${name} does not change the answer`);
  const vcl = readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'varnish', 'default.vcl'), 'utf8');
  const kept = /&\(\?!\(\?:([^)]*)\)/.exec(vcl);
  t.ok(kept, 'the VCL filters the query by a list of names');
  t.same(kept![1]!.split('|'), [...CACHE_KEY_PARAMETERS]);
});
