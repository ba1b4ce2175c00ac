/**
 * The compiled CLI: src/cli/main.ts and everything it imports, bundled by esbuild into dist/cli with
 * its dependencies (but for those listed below). `bin/portcullis.js` runs it when it is newer than every source file, and the
 * TypeScript sources through tsx otherwise — so a command starts in a fraction of a second after
 * `npm ci`, and an edited source is never shadowed by a stale bundle (docs/adr/0001).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../paths.js';

export const BUNDLE_DIR = path.join(PROJECT_ROOT, 'dist', 'cli');

/** A build folder untouched this long belongs to a build that died; a running one writes within seconds. */
const ABANDONED_BUILD_MS = 10 * 60_000;

/**
 * Built beside the live bundle, then swapped in by renaming, so no command ever starts from a
 * half-written one. The bundle it replaces is deleted at once (issue #17: `dist/cli.old-*` piled up):
 * nothing can still be using it. Node reads a module's file once, when it is first imported, and
 * resolves every later import (the lazily loaded chunks) by path, under `dist/cli/` — which after the
 * swap is the new bundle. So a command running from the old bundle never reads the renamed folder
 * again, and deleting it (even with a file open: POSIX keeps an unlinked file readable) takes nothing
 * from it. `cli.building-*` folders are another build's work in progress unless they are stale.
 */
export async function buildCliBundle(options: { bundleDir?: string } = {}): Promise<{ outdir: string }> {
  const esbuild = await import('esbuild');
  const bundleDir = options.bundleDir ?? BUNDLE_DIR;
  const dist = path.dirname(bundleDir);
  const name = path.basename(bundleDir);
  const building = path.join(dist, `${name}.building-${process.pid}-${Date.now()}`);
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
      // The dependencies are bundled too (issue #18 point 4): resolving, reading and compiling some
      // thousand files one by one was most of a start's module loading. Left outside are native addons,
      // the build tools, and the packages that find files of their own beside their code (pino's worker,
      // nhsuk-frontend's templates, oidc-provider's, @fastify/swagger's package.json).
      external: [
        'better-sqlite3',
        '@node-rs/argon2',
        'esbuild',
        'tsx',
        'tsx/*',
        'sass',
        'pg-native',
        'pino',
        'thread-stream',
        'pino-pretty',
        'nhsuk-frontend',
        'oidc-provider',
        '@fastify/swagger',
      ],
      // CommonJS dependencies inside an ES module bundle call require() for Node's own modules.
      banner: { js: "import { createRequire as __portcullisCreateRequire } from 'node:module'; const require = __portcullisCreateRequire(import.meta.url);" },
      sourcemap: true,
      logLevel: 'warning',
      outExtension: { '.js': '.mjs' },
    });
    // Written last: its time is what bin/portcullis.js compares with the sources.
    writeFileSync(path.join(building, 'built'), new Date().toISOString());
    if (existsSync(bundleDir)) renameSync(bundleDir, path.join(dist, `${name}.old-${process.pid}-${Date.now()}`));
    renameSync(building, bundleDir);
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  const now = Date.now();
  for (const entry of readdirSync(dist)) {
    const full = path.join(dist, entry);
    const retired = entry.startsWith(`${name}.old-`);
    const abandoned = entry.startsWith(`${name}.building-`) && now - statSync(full).mtimeMs > ABANDONED_BUILD_MS;
    if (retired || abandoned) rmSync(full, { recursive: true, force: true });
  }
  return { outdir: bundleDir };
}
