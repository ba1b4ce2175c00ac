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
  // A build from before the authenticator app (or ALTCHA, or passkeys) existed lacks its bundle.
  return (
    existsSync(STAMP) &&
    existsSync(path.join(AUTHENTICATOR_BUILD_DIR, 'sw.js')) &&
    existsSync(path.join(ASSET_BUILD_DIR, 'altcha', 'altcha.js')) &&
    existsSync(path.join(ASSET_BUILD_DIR, 'simplewebauthn-browser.js'))
  );
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
  // The help pages' CAPTCHA widget (docs/help.md): ALTCHA's "external" build, whose styles are a file
  // and whose workers are registered by help-feedback.js, so it runs under our CSP (no inline code or styles).
  // Its package.json is not exported: from its CommonJS entry (dist/main/) up to the package.
  const altcha = path.resolve(path.dirname(createRequire(import.meta.url).resolve('altcha')), '..', '..');
  mkdirSync(path.join(ASSET_BUILD_DIR, 'altcha', 'workers'), { recursive: true });
  cpSync(path.join(altcha, 'dist', 'external', 'altcha.js'), path.join(ASSET_BUILD_DIR, 'altcha', 'altcha.js'));
  cpSync(path.join(altcha, 'dist', 'external', 'altcha.css'), path.join(ASSET_BUILD_DIR, 'altcha', 'altcha.css'));
  cpSync(path.join(altcha, 'dist', 'workers', 'pbkdf2.js'), path.join(ASSET_BUILD_DIR, 'altcha', 'workers', 'pbkdf2.js'));
  // Passkeys (passkey.js): SimpleWebAuthn's browser UMD bundle, which sets window.SimpleWebAuthnBrowser.
  // Its package.json is not exported either: from its CommonJS entry (script/index.js) up to the package.
  const simpleWebAuthn = path.resolve(path.dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')), '..');
  cpSync(path.join(simpleWebAuthn, 'dist', 'bundle', 'index.umd.min.js'), path.join(ASSET_BUILD_DIR, 'simplewebauthn-browser.js'));
  // After the CSS: the authenticator's service worker caches it, and its build id covers it.
  await buildAuthenticator();
  writeFileSync(STAMP, new Date().toISOString());
  return { files: readdirSync(ASSET_BUILD_DIR) };
}

export async function ensureAssets(): Promise<void> {
  if (!assetsBuilt()) await buildAssets();
}
