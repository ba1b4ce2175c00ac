/**
 * The CLI authenticator's verbs need no server configuration or database ('none'): their modules may
 * use Node, the SDK and the CLI's runtime, and nothing of the server, the store or the app layer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../main.js';

const DIR = import.meta.dirname;
const ALLOWED = new Set(['commander', '../../authenticator/index.js', '../runtime.js', './store.js', './commands.js']);

describe('the CLI authenticator', () => {
  it.each(readdirSync(DIR).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts')))('%s imports nothing of the server', (name) => {
    const text = readFileSync(path.join(DIR, name), 'utf8');
    for (const match of text.matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)) {
      const specifier = match[1]!;
      expect(specifier.startsWith('node:') || ALLOWED.has(specifier), `${name} imports ${specifier}`).toBe(true);
    }
  });

  it('declares every verb as needing nothing', () => {
    const auth = buildProgram().commands.find((c) => c.name() === 'authenticator')!;
    const leaves = auth.commands.flatMap((c) => (c.commands.length ? c.commands.map((s) => [`${c.name()} ${s.name()}`, s] as const) : [[c.name(), c] as const]));
    expect(leaves.map(([name]) => name).sort()).toEqual(['approve', 'codes add', 'codes export', 'codes import', 'codes list', 'codes remove', 'deny', 'devices', 'forget', 'pair', 'pending', 'remove', 'watch']);
    for (const [name, command] of leaves) expect((command as { needs?: string }).needs, name).toBe('none');
  });
});
