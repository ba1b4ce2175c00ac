/**
 * The compiled CLI: src/cli/main.ts and everything it imports, bundled by esbuild into dist/cli with
 * packages left external. `bin/portcullis.js` runs it when it is newer than every source file, and the
 * TypeScript sources through tsx otherwise — so a command starts in a fraction of a second after
 * `npm ci`, and an edited source is never shadowed by a stale bundle (docs/adr/0001).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../paths.js';

export const BUNDLE_DIR = path.join(PROJECT_ROOT, 'dist', 'cli');

/**
 * Built beside the live bundle, then swapped in by renaming: a command that is running from the old
 * bundle (it loads chunks lazily) keeps its files, and none ever sees a half-written one. Old bundles
 * are deleted once they are 10 minutes old.
 */
export async function buildCliBundle(): Promise<{ outdir: string }> {
  const esbuild = await import('esbuild');
  const dist = path.dirname(BUNDLE_DIR);
  const building = path.join(dist, `cli.building-${process.pid}-${Date.now()}`);
  mkdirSync(building, { recursive: true });
  try {
    await esbuild.build({
      entryPoints: [path.join(PROJECT_ROOT, 'src', 'cli', 'main.ts')],
      outdir: building,
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
    writeFileSync(path.join(building, 'built'), new Date().toISOString());
    if (existsSync(BUNDLE_DIR)) renameSync(BUNDLE_DIR, path.join(dist, `cli.old-${process.pid}-${Date.now()}`));
    renameSync(building, BUNDLE_DIR);
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  for (const entry of readdirSync(dist)) {
    const full = path.join(dist, entry);
    if (/^cli\.(old|building)-/.test(entry) && Date.now() - statSync(full).mtimeMs > 10 * 60_000) rmSync(full, { recursive: true, force: true });
  }
  return { outdir: BUNDLE_DIR };
}
