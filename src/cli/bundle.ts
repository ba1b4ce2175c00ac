/**
 * The compiled CLI: src/cli/main.ts and everything it imports, bundled by esbuild into dist/cli with
 * packages left external. `bin/portcullis.js` runs it when it is newer than every source file, and the
 * TypeScript sources through tsx otherwise — so a command starts in a fraction of a second after
 * `npm ci`, and an edited source is never shadowed by a stale bundle (docs/adr/0001).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../paths.js';

export const BUNDLE_DIR = path.join(PROJECT_ROOT, 'dist', 'cli');

export async function buildCliBundle(): Promise<{ outdir: string }> {
  const esbuild = await import('esbuild');
  rmSync(BUNDLE_DIR, { recursive: true, force: true });
  mkdirSync(BUNDLE_DIR, { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(PROJECT_ROOT, 'src', 'cli', 'main.ts')],
    outdir: BUNDLE_DIR,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
    outExtension: { '.js': '.mjs' },
  });
  // Written last: its time is what bin/portcullis.js compares with the sources.
  writeFileSync(path.join(BUNDLE_DIR, 'built'), new Date().toISOString());
  return { outdir: BUNDLE_DIR };
}
