/**
 * The core is pure (CONVENTIONS.md): it imports nothing outside src/core but type-only modules, no
 * Node built-in or package that does I/O, and never reads the clock — it takes `now`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CORE = path.resolve(import.meta.dirname, '..', 'src', 'core');

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
      if (!target.startsWith(CORE + path.sep) && !typeOnly) problems.push(`imports ${specifier} from outside src/core`);
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
  const files = sources(CORE);

  it('has modules to check', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  it.each(files.map((f) => [path.relative(CORE, f), f]))('%s imports no I/O and takes `now`', (_name, file) => {
    expect(importViolations(file, readFileSync(file, 'utf8'))).toEqual([]);
  });

  it('catches the violations it is meant to catch', () => {
    const file = path.join(CORE, 'example.ts');
    expect(importViolations(file, "import { readFileSync } from 'node:fs';")).toEqual(['imports node:fs']);
    expect(importViolations(file, "import pg from 'pg';")).toEqual(['imports pg']);
    expect(importViolations(file, "import { openDatabase } from '../store/database.js';")).toEqual(['imports ../store/database.js from outside src/core']);
    expect(importViolations(file, "import type { Config } from '../config/load.js';")).toEqual([]);
    expect(importViolations(file, 'const t = Date.now();')).toEqual(['reads the clock (Date.now)']);
    expect(importViolations(file, 'await fetch(url);')).toEqual(['calls fetch']);
    expect(importViolations(file, "const m = await import('node:net');")).toEqual(['imports node:net']);
  });
});
