/**
 * Keeps docs/shared-state.md complete (issue #18 point 1): every piece of shared state the code makes must
 * be named on the page, so that a new table, Redis key family, throttle key or Bus topic cannot arrive
 * without saying where it lives and why the node does not matter. No database; it reads sources.
 *
 * - Tables: every `createTable('name')` in src/store/migrations (whatever dialect branch it is in), and
 *   the migrator's own tables (`migrationTableName` / `migrationLockTableName`), must appear in the page
 *   in backticks.
 * - Redis key prefixes: every string literal `'portcullis:…:'` in src (the throttle store's, the Bus's,
 *   the OpenID Connect adapter's), and the fixed parts the adapter appends to its prefix
 *   (`${this.prefix}grant:`, `…:uid:`, `…:user-code:`).
 * - Throttle key families and Bus topics: every template literal that starts with fixed `word:` segments
 *   before its first `${` (`sign-in:email:${…}`), in a file that uses the throttle store or the Bus,
 *   unless the literal is an argument of a sealing, hashing or JWS call (those are binding contexts, not
 *   keys), and every `…TOPIC = '…'` constant. The pattern also finds other identifiers of that shape kept
 *   in shared state (a challenge's `flow:` binding, a policy version's `user:` or `cli:` author): the page
 *   names those too.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const DOC = readFileSync(path.join(ROOT, 'docs', 'shared-state.md'), 'utf8');
const MIGRATIONS = path.join(ROOT, 'src', 'store', 'migrations');

/** Calls whose string arguments are binding contexts or hash inputs, not keys of stored state. */
const CONTEXT_CALLS = new Set(['sealText', 'openText', 'hmac', 'verifyJws', 'hashToken', 'hashCode']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [full] : [];
  });
}

const SOURCES = sourceFiles(path.join(ROOT, 'src')).map((file) => ({ file: path.relative(ROOT, file), text: readFileSync(file, 'utf8') }));

/** The identifier before the innermost bracket still open at `index`, or null when it is not a call's `(`. */
function enclosingCall(text: string, index: number): string | null {
  let depth = 0;
  for (let i = index - 1; i >= 0; i--) {
    const c = text[i]!;
    if (c === ')' || c === ']' || c === '}') depth++;
    else if (c === '(' || c === '[' || c === '{') {
      if (depth === 0) {
        if (c !== '(') return null;
        return /([A-Za-z_$][\w$]*)\s*$/.exec(text.slice(Math.max(0, i - 60), i))?.[1] ?? null;
      }
      depth--;
    }
  }
  return null;
}

function migrationTables(): string[] {
  const tables = new Set<string>();
  for (const name of readdirSync(MIGRATIONS).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(path.join(MIGRATIONS, name), 'utf8');
    for (const match of text.matchAll(/createTable\(\s*['"`]([A-Za-z0-9_]+)['"`]/g)) tables.add(match[1]!);
    for (const match of text.matchAll(/migration(?:Lock)?TableName:\s*['"]([A-Za-z0-9_]+)['"]/g)) tables.add(match[1]!);
  }
  return [...tables].sort();
}

function redisPrefixes(): string[] {
  const found = new Set<string>();
  for (const { text } of SOURCES) {
    for (const match of text.matchAll(/['"`](portcullis:[a-z0-9-]+:)['"`]/g)) found.add(match[1]!);
    for (const match of text.matchAll(/`\$\{this\.prefix\}(?:\$\{this\.model\}:)?([a-z][a-z0-9-]*:)/g)) found.add(match[1]!);
  }
  return [...found].sort();
}

function keyFamiliesAndTopics(): Array<{ prefix: string; file: string }> {
  const found = new Map<string, string>();
  for (const { file, text } of SOURCES) {
    if (!/\bthrottles\.|\bbus\.(publish|subscribe)\b|busTopics/.test(text)) continue;
    for (const match of text.matchAll(/`((?:[a-z][a-z0-9-]*:)+)\$\{/g)) {
      if (CONTEXT_CALLS.has(enclosingCall(text, match.index) ?? '')) continue;
      if (!found.has(match[1]!)) found.set(match[1]!, file);
    }
  }
  for (const { file, text } of SOURCES) {
    for (const match of text.matchAll(/const [A-Z_]*TOPIC[A-Z_]*\s*=\s*'([^']+)'/g)) if (!found.has(match[1]!)) found.set(match[1]!, file);
  }
  return [...found].map(([prefix, file]) => ({ prefix, file })).sort((a, b) => a.prefix.localeCompare(b.prefix));
}

describe('docs/shared-state.md', () => {
  it('names every table a migration creates', () => {
    const tables = migrationTables();
    // The parse must find them: a change of style in the migrations should fail here, not pass silently.
    expect(tables).toEqual(expect.arrayContaining(['sessions', 'sign_in_flows', 'throttles', 'oidc_artefacts', 'audit_chain', 'portcullis_migrations']));
    expect(tables.filter((table) => !DOC.includes(`\`${table}\``)), 'tables not named (in backticks) in docs/shared-state.md').toEqual([]);
  });

  it('names every Redis key prefix used in src', () => {
    const prefixes = redisPrefixes();
    expect(prefixes).toEqual(expect.arrayContaining(['portcullis:throttle:', 'portcullis:bus:', 'portcullis:oidc:', 'grant:', 'uid:', 'user-code:']));
    expect(prefixes.filter((prefix) => !DOC.includes(prefix)), 'Redis key prefixes not named in docs/shared-state.md').toEqual([]);
  });

  it('names every throttle key family and Bus topic used in src', () => {
    const families = keyFamiliesAndTopics();
    expect(families.map((f) => f.prefix)).toEqual(
      expect.arrayContaining(['sign-in:email:', 'sign-in:ip:', 'second-factor:user:', 'device-jti:', 'captcha-used:', 'push:', 'policy:applied']),
    );
    // Binding contexts of sealing and hashing are not state, and are not asked for.
    expect(families.map((f) => f.prefix)).not.toContain('push-subscription:');
    const missing = families.filter(({ prefix }) => !DOC.includes(`\`${prefix}`)).map(({ prefix, file }) => `${prefix} (${file})`);
    expect(missing, 'key families or topics not named (in backticks) in docs/shared-state.md').toEqual([]);
  });
});
