/**
 * Where Portcullis's own files are, whether it runs from its TypeScript sources or from the compiled
 * CLI bundle in dist/: the nearest folder above this module holding Portcullis's package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'portcullis') return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find Portcullis's package.json above ${start}`);
  }
}

export const PROJECT_ROOT = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));

export const WEB_DIR = path.join(PROJECT_ROOT, 'src', 'web');
