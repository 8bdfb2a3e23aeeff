/**
 * Basic credentials of Icecast's interfaces (src/http/basic-auth.ts): parsing (scheme case,
 * passwords with colons, bad base64, no colon, absurd length) and the check: only the exact
 * user and password pass.
 */
import t from 'tap';
import { BasicAuthCheck, parseBasicAuth } from '../../src/http/basic-auth.js';

const encode = (text: string): string => Buffer.from(text).toString('base64');

t.test('parses user and password; anything else is no credential', async (t) => {
  t.same(parseBasicAuth(`Basic ${encode('source:hack:me')}`), { user: 'source', password: 'hack:me' }, 'the password may hold colons');
  t.same(parseBasicAuth(`basic ${encode('admin:é')}`), { user: 'admin', password: 'é' }, 'scheme in any case, UTF-8');
  t.same(parseBasicAuth(`Basic ${encode(':')}`), { user: '', password: '' });
  for (const header of [undefined, '', 'Bearer abc', `Basic ${encode('nocolon')}`, 'Basic !!!', `Basic ${'A'.repeat(2000)}`]) {
    t.equal(parseBasicAuth(header), undefined, String(header).slice(0, 20));
  }
});

t.test('only the exact user and password pass', async (t) => {
  const check = new BasicAuthCheck({ user: 'admin', password: 'hackme-please' });
  t.ok(check.check(`Basic ${encode('admin:hackme-please')}`));
  for (const credentials of ['admin:hackme-pleas', 'admin:hackme-please ', 'Admin:hackme-please', 'source:hackme-please', ':', 'admin:']) {
    t.notOk(check.check(`Basic ${encode(credentials)}`), credentials);
  }
  t.notOk(check.check(undefined));
  t.notOk(check.check('Bearer hackme-please'));
});
