/**
 * Keeps docs/security.md honest (issue #17 point 3). It reads the page's tables and checks:
 *
 * - every test named in a "shown by" cell exists: the file is there, and each name in the chain
 *   `file` › `describe` › `it` is the title of a `describe`, `it` or `test` in that file, written exactly
 *   as in the source (so a template such as `%s` or `$name` is written as the template);
 * - every relative link in a table points at a file that exists;
 * - a row marked met shows something (a test or a document);
 * - every ASVS 5.0.0 level 1 and 2 requirement of V6 and V7 has exactly one row.
 *
 * Titles are found with a simple pattern: a string literal that opens the call of `describe(`, `it(`,
 * `test(` (with any `.skip`, `.only`, `.each(…)` between) or of `)(` (what `.each([…])` returns),
 * followed by a comma. A title built by concatenation is not found; name such a test differently.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const DOC = path.join(ROOT, 'docs', 'security.md');

/** ASVS 5.0.0 (the release CSV): the level 1 and level 2 requirements of V6 and V7. */
const ASVS_L1_L2 = [
  'V6.1.1', 'V6.1.2', 'V6.1.3',
  'V6.2.1', 'V6.2.2', 'V6.2.3', 'V6.2.4', 'V6.2.5', 'V6.2.6', 'V6.2.7', 'V6.2.8', 'V6.2.9', 'V6.2.10', 'V6.2.11', 'V6.2.12',
  'V6.3.1', 'V6.3.2', 'V6.3.3', 'V6.3.4',
  'V6.4.1', 'V6.4.2', 'V6.4.3', 'V6.4.4',
  'V6.5.1', 'V6.5.2', 'V6.5.3', 'V6.5.4', 'V6.5.5',
  'V6.6.1', 'V6.6.2', 'V6.6.3',
  'V6.8.1', 'V6.8.2', 'V6.8.3', 'V6.8.4',
  'V7.1.1', 'V7.1.2', 'V7.1.3',
  'V7.2.1', 'V7.2.2', 'V7.2.3', 'V7.2.4',
  'V7.3.1', 'V7.3.2',
  'V7.4.1', 'V7.4.2', 'V7.4.3', 'V7.4.4', 'V7.4.5',
  'V7.5.1', 'V7.5.2',
  'V7.6.1', 'V7.6.2',
];

const STATUSES = new Set(['met', 'partly', 'not shown', 'not met', 'n/a']);

interface Row {
  line: number;
  cells: string[];
}

interface TestReference {
  line: number;
  file: string;
  names: string[];
}

/** The rows of every table whose header has a "status" column (header and separator rows left out). */
export function tableRows(markdown: string): Row[] {
  const rows: Row[] = [];
  let inStatusTable = false;
  markdown.split('\n').forEach((text, index) => {
    if (!text.startsWith('|')) {
      inStatusTable = false;
      return;
    }
    const cells = text.replace(/^\|/, '').replace(/\|\s*$/, '').split('|').map((cell) => cell.trim());
    if (cells.includes('status') && cells.includes('shown by')) {
      inStatusTable = true;
      return;
    }
    if (!inStatusTable || cells.every((cell) => /^:?-+:?$/.test(cell))) return;
    rows.push({ line: index + 1, cells });
  });
  return rows;
}

/** `path/to/x.test.ts` › `name` (› `name`)… in a cell. */
export function testReferences(row: Row): TestReference[] {
  const cell = row.cells.at(-1) ?? '';
  const pattern = /`([^`\s]+\.test\.ts)`((?:\s*›\s*`[^`]+`)+)/g;
  return [...cell.matchAll(pattern)].map((match) => ({
    line: row.line,
    file: match[1]!,
    names: [...match[2]!.matchAll(/`([^`]+)`/g)].map((name) => name[1]!),
  }));
}

/** The titles of the describe, it and test calls in a test file, unescaped. */
export function testTitles(source: string): Set<string> {
  const pattern = /(?:\b(?:describe|it|test)(?:\s*\.\s*\w+)*|\))\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1\s*,/g;
  const titles = new Set<string>();
  for (const match of source.matchAll(pattern)) titles.add(match[2]!.replace(/\\(.)/g, '$1'));
  return titles;
}

const markdown = readFileSync(DOC, 'utf8');
const rows = tableRows(markdown);

describe('docs/security.md', () => {
  it('finds its tables', () => {
    expect(rows.length).toBeGreaterThan(ASVS_L1_L2.length);
  });

  it('names only tests that exist, by their exact titles', () => {
    const missing: string[] = [];
    const titlesByFile = new Map<string, Set<string>>();
    for (const reference of rows.flatMap(testReferences)) {
      const full = path.join(ROOT, reference.file);
      if (!existsSync(full)) {
        missing.push(`line ${reference.line}: no file ${reference.file}`);
        continue;
      }
      if (!titlesByFile.has(full)) titlesByFile.set(full, testTitles(readFileSync(full, 'utf8')));
      const titles = titlesByFile.get(full)!;
      for (const name of reference.names) {
        if (!titles.has(name)) missing.push(`line ${reference.line}: ${reference.file} has no test named "${name}"`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('links only to documents that exist', () => {
    const missing: string[] = [];
    for (const row of rows) {
      for (const link of row.cells.join(' ').matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const target = link[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(path.resolve(path.dirname(DOC), target))) missing.push(`line ${row.line}: ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('gives every row a known status, and every row marked met something that shows it', () => {
    const problems: string[] = [];
    for (const row of rows) {
      const status = row.cells.at(-2) ?? '';
      if (!STATUSES.has(status)) problems.push(`line ${row.line}: unknown status "${status}"`);
      const shownBy = row.cells.at(-1) ?? '';
      if (status === 'met' && testReferences(row).length === 0 && !/\]\(/.test(shownBy)) {
        problems.push(`line ${row.line}: marked met, but names no test and links no document`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('has one row for each ASVS 5.0.0 level 1 and 2 requirement of V6 and V7, at its level', () => {
    const ids = rows.map((row) => row.cells[0]!).filter((id) => /^V[67]\./.test(id));
    expect([...ids].sort()).toEqual([...ASVS_L1_L2].sort());
    for (const row of rows.filter((r) => /^V[67]\./.test(r.cells[0]!))) expect(['1', '2']).toContain(row.cells[1]);
  });
});

describe('the title pattern', () => {
  it('reads plain, each and template titles, and unescapes quotes', () => {
    const source = [
      "describe.each(dialects)('sign-in on %s', (dialect) => {",
      "  it('signs in', async () => {});",
      "  it.each([['a', 1]])('accepts %s', () => {});",
      "  it.each([",
      "    ['b', 2],",
      "  ])('rejects %j with %s', () => {});",
      "  it('\"No, it\\'s not me\" refuses', () => {});",
      "  describe.each(stores)('limits ($name)', ({ name }) => {});",
      "});",
    ].join('\n');
    expect([...testTitles(source)]).toEqual([
      'sign-in on %s',
      'signs in',
      'accepts %s',
      'rejects %j with %s',
      '"No, it\'s not me" refuses',
      'limits ($name)',
    ]);
  });

  it('fails a reference to a renamed test', () => {
    const row: Row = { line: 1, cells: ['x', 'met', '`test/integration/sign-in.test.ts` › `a test that was renamed`'] };
    const [reference] = testReferences(row);
    const titles = testTitles(readFileSync(path.join(ROOT, reference!.file), 'utf8'));
    expect(titles.has(reference!.names[0]!)).toBe(false);
  });
});
