/**
 * The core is pure (CONVENTIONS.md): it imports nothing outside src/core but type-only modules and the
 * method units' definitions (pure data, checked here by the same rules), no Node built-in or package
 * that does I/O, and never reads the clock — it takes `now`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { methodKinds } from '../src/core/methods.js';

const SRC = path.resolve(import.meta.dirname, '..', 'src');
const CORE = path.join(SRC, 'core');
const METHODS = path.join(SRC, 'app', 'methods');

/** A method unit's registry entry (issue #14): data the core reads, so held to the core's rules. */
const isDefinition = (file: string) =>
  file === path.join(METHODS, 'definitions.ts') || (path.dirname(path.dirname(file)) === METHODS && path.basename(file) === 'definition.ts');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** Packages the core may use: pure computation, no I/O. */
const ALLOWED_PACKAGES = new Set<string>(['otpauth', 'libphonenumber-js/max', 'zod']);

export function importViolations(file: string, text: string): string[] {
  const problems: string[] = [];
  const importPattern = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const match of text.matchAll(importPattern)) {
    const typeOnly = Boolean(match[2]);
    const specifier = match[3] ?? match[4] ?? match[5] ?? match[6]!;
    if (specifier.startsWith('.')) {
      const target = path.resolve(path.dirname(file), specifier);
      const resolved = target.replace(/\.js$/, '.ts');
      if (!target.startsWith(CORE + path.sep) && !isDefinition(resolved) && !typeOnly) problems.push(`imports ${specifier} from outside src/core`);
      continue;
    }
    if (typeOnly) continue;
    if (specifier.startsWith('node:') || !ALLOWED_PACKAGES.has(specifier)) problems.push(`imports ${specifier}`);
  }
  for (const [pattern, what] of [
    [/\bfetch\s*\(/, 'calls fetch'],
    [/\bDate\.now\s*\(/, 'reads the clock (Date.now)'],
    [/new Date\(\s*\)/, 'reads the clock (new Date())'],
    [/\bprocess\./, 'touches process'],
    [/\bMath\.random\s*\(/, 'uses Math.random'],
    [/\bsetTimeout\s*\(|\bsetInterval\s*\(/, 'schedules timers'],
  ] as const) {
    if (pattern.test(text)) problems.push(what);
  }
  return problems;
}

describe('src/core is pure', () => {
  const files = [...sources(CORE), ...sources(METHODS).filter(isDefinition)];

  it('has modules to check', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  it('holds the method units\' definitions to the same rules', () => {
    expect(files.filter(isDefinition).length).toBeGreaterThanOrEqual(7);
  });

  it.each(files.map((f) => [path.relative(SRC, f), f]))('%s imports no I/O and takes `now`', (_name, file) => {
    expect(importViolations(file, readFileSync(file, 'utf8'))).toEqual([]);
  });

  it('catches the violations it is meant to catch', () => {
    const file = path.join(CORE, 'example.ts');
    expect(importViolations(file, "import { readFileSync } from 'node:fs';")).toEqual(['imports node:fs']);
    expect(importViolations(file, "import pg from 'pg';")).toEqual(['imports pg']);
    expect(importViolations(file, "import { openDatabase } from '../store/database.js';")).toEqual(['imports ../store/database.js from outside src/core']);
    expect(importViolations(file, "import { methodDefinitionList } from '../app/methods/definitions.js';")).toEqual([]);
    expect(importViolations(file, "import { passkeyUnit } from '../app/methods/passkey/index.js';")).toEqual(['imports ../app/methods/passkey/index.js from outside src/core']);
    expect(importViolations(file, "import type { Config } from '../config/load.js';")).toEqual([]);
    expect(importViolations(file, 'const t = Date.now();')).toEqual(['reads the clock (Date.now)']);
    expect(importViolations(file, 'await fetch(url);')).toEqual(['calls fetch']);
    expect(importViolations(file, "const m = await import('node:net');")).toEqual(['imports node:net']);
  });
});

/**
 * The web layer is generic over the method units (issue #14): no module in src/server names a method
 * kind, and none reaches past the use cases into the store (src/store) — the routes call src/app only.
 * Route modules also take no secrets of their own (no src/crypto) and make no store calls through the
 * context (`ctx.store`, `ctx.keys`).
 */
describe('src/server is generic over methods and calls use cases only', () => {
  const SERVER = path.join(SRC, 'server');
  const files = sources(SERVER);
  const kinds = ['totp', 'sms', 'voice', 'push', 'passkey', 'tap', 'recovery-code'];

  /** A method kind as a string literal ('push', "totp"), outside comments. */
  function namedKinds(text: string): string[] {
    const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    return kinds.filter((kind) => new RegExp(`['"\`]${kind}['"\`]`).test(code));
  }

  function storeImports(file: string, text: string): string[] {
    return [...text.matchAll(/from\s+['"]([^'"]+)['"]/g)]
      .map((m) => m[1]!)
      .filter((specifier) => specifier.startsWith('.') && path.resolve(path.dirname(file), specifier).startsWith(path.join(SRC, 'store') + path.sep));
  }

  function routeShortcuts(file: string, text: string): string[] {
    if (!path.basename(file).endsWith('routes.ts')) return [];
    const problems = [...text.matchAll(/from\s+['"]([^'"]+)['"]/g)]
      .map((m) => m[1]!)
      .filter((s) => s.startsWith('.') && path.resolve(path.dirname(file), s).startsWith(path.join(SRC, 'crypto') + path.sep))
      .map((s) => `imports ${s}`);
    // The core only for what a page needs of it: error messages and statuses, a safe returnTo, the
    // password length rule the form checks first; its decisions (the sign-in machine, the registry, the
    // policy) are reached through the use cases.
    for (const m of text.matchAll(/^import\s+(type\s+)?[^;]*?from\s+['"]([^'"]+)['"]/gm)) {
      const target = path.resolve(path.dirname(file), m[2]!);
      if (m[1] || !target.startsWith(CORE + path.sep)) continue;
      if (!['errors.js', 'return-to.js', 'password-rules.js'].includes(path.relative(CORE, target))) problems.push(`calls the core's ${m[2]}`);
    }
    if (/\bctx\.store\./.test(text)) problems.push('calls ctx.store');
    if (/\bctx\.keys\./.test(text)) problems.push('reads ctx.keys');
    return problems;
  }

  it('has modules to check, the method units included in the kind list', () => {
    expect(files.length).toBeGreaterThan(10);
    expect(kinds.sort()).toEqual(['password', 'email'].reduce((all, k) => all.filter((x) => x !== k), [...methodKinds]).sort());
  });

  it.each(files.map((f) => [path.relative(SRC, f), f]))('%s names no method kind and imports nothing from src/store', (_name, file) => {
    const text = readFileSync(file, 'utf8');
    expect({ kinds: namedKinds(text), store: storeImports(file, text), shortcuts: routeShortcuts(file, text) }).toEqual({ kinds: [], store: [], shortcuts: [] });
  });

  it('catches what it is meant to catch', () => {
    const file = path.join(SERVER, 'x', 'routes.ts');
    expect(namedKinds("if (kind === 'push') {}")).toEqual(['push']);
    expect(namedKinds("// a 'push' in a comment\nconst a = 1;")).toEqual([]);
    expect(storeImports(file, "import { x } from '../../store/index.js';")).toEqual(['../../store/index.js']);
    expect(routeShortcuts(file, "import { randomToken } from '../../crypto/tokens.js';\nawait ctx.store.users.findById(id);")).toEqual(['imports ../../crypto/tokens.js', 'calls ctx.store']);
    expect(routeShortcuts(file, "import { reduceSignIn } from '../../core/sign-in/flow.js';\nimport type { SignInState } from '../../core/sign-in/flow.js';\nimport { safeReturnTo } from '../../core/return-to.js';")).toEqual([
      "calls the core's ../../core/sign-in/flow.js",
    ]);
  });
});

/**
 * Issue #14: the import cycle between sign-in and push is gone (push counts a wrong answer through
 * sign-in-attempts.ts, not sign-in.ts), and the application layer imports nothing from the web layer.
 */
describe('src/app imports', () => {
  const APP = path.join(SRC, 'app');
  const files = sources(SRC).filter((f) => !f.includes(`${path.sep}web${path.sep}`));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)]
      .filter((m) => !m[1])
      .map((m) => path.resolve(path.dirname(file), m[2]!).replace(/\.js$/, '.ts'));
    graph.set(file, targets);
  }
  const reaches = (from: string, to: (file: string) => boolean): boolean => {
    const seen = new Set<string>();
    const stack = [...(graph.get(from) ?? [])];
    while (stack.length) {
      const next = stack.pop()!;
      if (to(next)) return true;
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...(graph.get(next) ?? []));
    }
    return false;
  };
  const signIn = path.join(APP, 'sign-in.ts');
  const isPush = (file: string) => file.startsWith(path.join(APP, 'methods', 'push') + path.sep);

  it('has no cycle through sign-in and push', () => {
    expect(reaches(signIn, isPush)).toBe(true);
    const pushModules = files.filter(isPush);
    expect(pushModules.length).toBeGreaterThanOrEqual(6);
    expect(pushModules.filter((file) => reaches(file, (f) => f === signIn)).map((f) => path.relative(SRC, f))).toEqual([]);
  });

  it('has no src/app module that imports src/server', () => {
    const server = path.join(SRC, 'server') + path.sep;
    expect(files.filter((f) => f.startsWith(APP + path.sep) && (graph.get(f) ?? []).some((t) => t.startsWith(server))).map((f) => path.relative(SRC, f))).toEqual([]);
  });
});
