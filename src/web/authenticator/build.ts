/**
 * Builds the Portcullis Authenticator (the web app at /authenticator/) for browsers with esbuild: the
 * app (`app.ts`, an ES module) and its service worker (`sw.ts`, a classic script, because module
 * service workers are newer than some phones still in use). Called by `buildAssets()`, so `npm ci`,
 * `npm run build` and the test set-up build it with the rest of the assets.
 *
 * The service worker carries a build id (a hash of what it caches), so a new build is a new worker
 * script: browsers compare the script byte for byte to decide whether to update (W3C Service Workers
 * §"Update"), and the new worker replaces the offline cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WEB_DIR } from '../../paths.js';

export const AUTHENTICATOR_SOURCE_DIR = path.join(WEB_DIR, 'authenticator');
/** Inside the asset build folder, which `buildAssets()` owns (src/web/assets/build/authenticator). */
export const AUTHENTICATOR_BUILD_DIR = path.join(WEB_DIR, 'assets', 'build', 'authenticator');

/** Browsers the bundle is written for: phones from about 2022 on (iOS 16.4 is the first with Web Push). */
const TARGETS = ['chrome109', 'edge109', 'firefox115', 'safari16'];

export interface AuthenticatorBuild {
  files: string[];
  buildId: string;
}

/**
 * Each file is written whole and renamed into place (atomic on one file system), so a server starting
 * while another process rebuilds (a test run beside a running server) never reads half a bundle.
 */
function writeAtomically(name: string, contents: Uint8Array | string): void {
  const target = path.join(AUTHENTICATOR_BUILD_DIR, name);
  const temporary = `${target}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, target);
}

export async function buildAuthenticator(): Promise<AuthenticatorBuild> {
  const esbuild = await import('esbuild');
  mkdirSync(AUTHENTICATOR_BUILD_DIR, { recursive: true });
  const common = {
    bundle: true,
    platform: 'browser' as const,
    target: TARGETS,
    minify: true,
    legalComments: 'none' as const,
    logLevel: 'warning' as const,
    // The CSP allows no eval and no inline script; esbuild emits neither.
    charset: 'utf8' as const,
  };
  const built = await esbuild.build({
    ...common,
    entryPoints: [path.join(AUTHENTICATOR_SOURCE_DIR, 'app.ts')],
    outfile: path.join(AUTHENTICATOR_BUILD_DIR, 'app.js'),
    format: 'esm',
    write: false,
  });
  const app = built.outputFiles[0]!.contents;
  const shell = readFileSync(path.join(AUTHENTICATOR_SOURCE_DIR, 'shell.njk'));
  // Everything the worker caches for offline use: a change to any of them must reach installed apps.
  const css = path.join(WEB_DIR, 'assets', 'build', 'portcullis.css');
  const hash = createHash('sha256').update(app).update(shell);
  if (existsSync(css)) hash.update(readFileSync(css));
  const buildId = hash.digest('base64url').slice(0, 16);
  const worker = await esbuild.build({
    ...common,
    entryPoints: [path.join(AUTHENTICATOR_SOURCE_DIR, 'sw.ts')],
    outfile: path.join(AUTHENTICATOR_BUILD_DIR, 'sw.js'),
    format: 'iife',
    define: { __PORTCULLIS_BUILD_ID__: JSON.stringify(buildId) },
    write: false,
  });
  writeAtomically('app.js', app);
  writeAtomically('sw.js', worker.outputFiles[0]!.contents);
  writeAtomically('build.json', `${JSON.stringify({ buildId })}\n`);
  return { files: ['app.js', 'sw.js', 'build.json'], buildId };
}
