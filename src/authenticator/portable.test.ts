/**
 * The SDK runs in browsers as well as Node 20: its files import no Node module and use no Node global,
 * and esbuild can bundle the entry for the browser (as the PWA's build does).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = import.meta.dirname;
const sources = readdirSync(DIR).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'));

describe('the authenticator SDK is portable', () => {
  it.each(sources)('%s uses no Node module or global', (name) => {
    const text = readFileSync(path.join(DIR, name), 'utf8');
    expect(text).not.toMatch(/from\s+['"]node:|import\(\s*['"]node:|require\(/);
    expect(text).not.toMatch(/\b(Buffer|process|__dirname)\b/);
    for (const match of text.matchAll(/from\s+['"]([^'"]+)['"]/g)) expect(['otpauth'], `${name} imports ${match[1]}`).toContain(match[1]!.startsWith('.') ? 'otpauth' : match[1]);
  });

  it('bundles for the browser with esbuild, with every export', async () => {
    const esbuild = await import('esbuild');
    const result = await esbuild.build({ entryPoints: [path.join(DIR, 'index.ts')], bundle: true, write: false, format: 'esm', platform: 'browser', target: 'es2022', metafile: true, logLevel: 'silent' });
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((input) => input.includes('otpauth.esm.js'))).toBe(true);
    expect(inputs.filter((input) => input.startsWith('node:'))).toEqual([]);
    const text = result.outputFiles[0]!.text;
    for (const name of ['AuthenticatorClient', 'watchChallenges', 'parseOtpauthUri', 'exportVault', 'importVault', 'codeFor', 'generateDeviceKey']) expect(text).toContain(name);
  });
});
