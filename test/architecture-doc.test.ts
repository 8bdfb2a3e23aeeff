/**
 * The project owns its design: every source comment that cites a design document cites
 * docs/architecture.md, and names one of its sections.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';

const root = join(import.meta.dirname, '..');

function files(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    // Builds and caches (bench/.cache holds earlier commits built by bench:packager --against) are not sources.
    if (entry.isDirectory()) return entry.name === '.cache' || entry.name === 'dist' ? [] : files(path);
    return /\.(ts|js)$/.test(entry.name) ? [path] : [];
  });
}

const sections = new Set(
  [...readFileSync(join(root, 'docs/architecture.md'), 'utf8').matchAll(/^#{2,3} (.+)$/gm)].map((match) => match[1]!.trim()),
);
const sources = ['src', 'bench', 'test'].flatMap((folder) => files(join(root, folder))).filter((path) => !path.endsWith('architecture-doc.test.ts'));

t.test('no source cites a design document that is not in the repository', async (t) => {
  const stale = sources.filter((path) => readFileSync(path, 'utf8').includes('DESIGN.md')).map((path) => relative(root, path));
  t.same(stale, []);
});

t.test('every citation of docs/architecture.md names one of its sections', async (t) => {
  let citations = 0;
  for (const path of sources) {
    const text = readFileSync(path, 'utf8');
    for (const match of text.matchAll(/docs\/architecture\.md(?:,\s*"?([A-Z][A-Za-z0-9 -]*[a-z])"?)?/g)) {
      citations += 1;
      const section = match[1];
      t.ok(section !== undefined && sections.has(section), `${relative(root, path)} cites "${section ?? ''}"`);
    }
  }
  t.ok(citations >= 20, `${citations} citations checked`);
});
