/**
 * Builds the served assets into src/web/assets/build: the NHS.UK frontend CSS compiled from its SCSS
 * with no outside font (see portcullis.scss), its JavaScript and images, and our own files. Runs at
 * `npm ci` (the prepare script) and, if the folder is missing, at start-up.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { WEB_DIR } from '../paths.js';
import { AUTHENTICATOR_BUILD_DIR, buildAuthenticator } from './authenticator/build.js';

export const ASSET_SOURCE_DIR = path.join(WEB_DIR, 'assets');
export const ASSET_BUILD_DIR = path.join(ASSET_SOURCE_DIR, 'build');
const STAMP = path.join(ASSET_BUILD_DIR, '.built');

function nhsukDist(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('nhsuk-frontend/package.json')), 'dist', 'nhsuk');
}

export function assetsBuilt(): boolean {
  // A build from before the authenticator app existed lacks its bundle.
  return existsSync(STAMP) && existsSync(path.join(AUTHENTICATOR_BUILD_DIR, 'sw.js'));
}

export async function buildAssets(): Promise<{ files: string[] }> {
  // Loaded only to build: the compiler is large, and a serving process never needs it.
  const sass = await import('sass');
  mkdirSync(ASSET_BUILD_DIR, { recursive: true });
  const nodeModules = path.resolve(nhsukDist(), '..', '..', '..');
  const css = sass.compile(path.join(ASSET_SOURCE_DIR, 'portcullis.scss'), {
    loadPaths: [nodeModules],
    style: 'compressed',
    quietDeps: true,
    silenceDeprecations: ['import', 'global-builtin'],
  });
  writeFileSync(path.join(ASSET_BUILD_DIR, 'portcullis.css'), css.css);
  const dist = nhsukDist();
  cpSync(path.join(dist, 'nhsuk-frontend.min.js'), path.join(ASSET_BUILD_DIR, 'nhsuk-frontend.min.js'));
  cpSync(path.join(dist, 'assets', 'images'), path.join(ASSET_BUILD_DIR, 'images'), { recursive: true });
  for (const file of readdirSync(ASSET_SOURCE_DIR)) {
    if (file.endsWith('.js') || file.endsWith('.svg')) cpSync(path.join(ASSET_SOURCE_DIR, file), path.join(ASSET_BUILD_DIR, file));
  }
  // After the CSS: the authenticator's service worker caches it, and its build id covers it.
  await buildAuthenticator();
  writeFileSync(STAMP, new Date().toISOString());
  return { files: readdirSync(ASSET_BUILD_DIR) };
}

export async function ensureAssets(): Promise<void> {
  if (!assetsBuilt()) await buildAssets();
}
