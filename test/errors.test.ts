/**
 * Keeps the one error table honest: every code in it is raised somewhere in src/, every code
 * raised is in it (the compiler checks that half), there is one error class, and the README's
 * list of codes is the table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ERRORS, OnairError, httpErrorOf, isOnairError, type OnairErrorCode } from '../src/errors.js';

const root = join(import.meta.dirname, '..');

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const sources = sourceFiles(join(root, 'src')).map((path) => ({ path, text: readFileSync(path, 'utf8') }));
const codes = Object.keys(ERRORS) as OnairErrorCode[];

t.test('every code of the table is raised somewhere in src', async (t) => {
  const raised = new Set<string>();
  for (const { text } of sources) {
    for (const match of text.matchAll(/OnairError\(\s*'(ONAIR_[A-Z_]+)'/g)) raised.add(match[1]!);
    // Subclasses raise their one code through a constant: `super(PLAYLIST_INVALID, …)`.
    for (const match of text.matchAll(/= '(ONAIR_[A-Z_]+)';[\s\S]*?super\(\s*[A-Z_]+,/g)) raised.add(match[1]!);
  }
  t.same(codes.filter((code) => !raised.has(code)), [], 'codes in the table that nothing raises');
});

t.test('src has one error shape: every domain error is an OnairError (or a subclass adding a field)', async (t) => {
  const others = sources.flatMap(({ path, text }) =>
    [...text.matchAll(/class (\w+) extends (\w*Error)\b/g)].filter((match) => match[1] !== 'OnairError' && match[2] !== 'OnairError').map((match) => `${path}: ${match[0]}`),
  );
  t.same(others, []);
});

t.test('the README lists exactly the codes of the table, each with its status', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| `(ONAIR_[A-Z_]+)` \| (\d{3}) \|/gm)].map((match) => [match[1], Number(match[2])]);
  t.same(rows, codes.map((code) => [code, ERRORS[code].status]));
});

t.test('an OnairError carries its status; anything else is a 500', async (t) => {
  const error = new OnairError('ONAIR_NOT_LEADING', 'standing by', { where: 'channels[0]' });
  t.equal(error.statusCode, 409);
  t.equal(error.message, 'channels[0]: standing by');
  t.ok(isOnairError(error, 'ONAIR_NOT_LEADING'));
  t.notOk(isOnairError(error, 'ONAIR_FENCED'));
  t.same(httpErrorOf(error), { status: 409, reply: 'not_leading' });
  t.same(httpErrorOf(new Error('boom')), { status: 500, reply: 'internal_error' });
  for (const code of codes) {
    t.ok(ERRORS[code].status >= 400 && ERRORS[code].status < 600, `${code} has an error status`);
    t.match(ERRORS[code].reply, /^[a-z_]+$/, `${code} has a reply name`);
  }
});
