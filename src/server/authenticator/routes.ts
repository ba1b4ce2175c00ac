/**
 * The Portcullis Authenticator's files (/authenticator/): the app's one page, its script, its service
 * worker, its web app manifest and its configuration. The app itself is built by esbuild with the other
 * assets (src/web/authenticator/build.ts); everything it does with an account goes through the device
 * API (/device/v1), signed by the phone's key, never through cookies.
 *
 * This surface states its own CSP: scripts and the worker from this origin only, no inline script or
 * style, connections to this origin only, and `blob:` images (QR scanning); and it alone may use the
 * camera (Permissions-Policy `camera=(self)`; the rest of the site keeps `camera=()`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import nunjucks from 'nunjucks';
import type { AppContext } from '../../app/context.js';
import { vapidKeys } from '../../app/methods/push/shared.js';
import { AUTHENTICATOR_BUILD_DIR, AUTHENTICATOR_SOURCE_DIR } from '../../web/authenticator/build.js';

export const AUTHENTICATOR_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "worker-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

/** The camera for scanning QR codes into the code vault: on this surface only. */
export const AUTHENTICATOR_PERMISSIONS_POLICY = 'camera=(self), microphone=(), geolocation=(), payment=()';

const config = { csp: AUTHENTICATOR_CSP, permissionsPolicy: AUTHENTICATOR_PERMISSIONS_POLICY };

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

function staticFile(body: Buffer | string, type: string): StaticFile {
  const buffer = typeof body === 'string' ? Buffer.from(body) : body;
  return { body: buffer, type, etag: `"${createHash('sha256').update(buffer).digest('base64url').slice(0, 27)}"` };
}

function renderShell(organisationName: string): string {
  const require = createRequire(import.meta.url);
  const nhsukDist = path.join(path.dirname(require.resolve('nhsuk-frontend/package.json')), 'dist');
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader([AUTHENTICATOR_SOURCE_DIR, nhsukDist]), { autoescape: true });
  return env.render('shell.njk', { organisationName });
}

/** The W3C Web App Manifest: installable, standalone, scoped to the app. */
export function webAppManifest(organisationName: string): Record<string, unknown> {
  return {
    id: '/authenticator/',
    name: 'Portcullis Authenticator',
    short_name: 'Authenticator',
    description: `Approve sign-ins to ${organisationName} and keep codes for your other accounts.`,
    start_url: '/authenticator/',
    scope: '/authenticator/',
    display: 'standalone',
    orientation: 'any',
    background_color: '#f0f4f5',
    theme_color: '#005eb8',
    lang: 'en-GB',
    icons: [
      { src: '/assets/images/nhsuk-icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
      { src: '/assets/images/nhsuk-icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
      { src: '/assets/images/favicon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' },
    ],
  };
}

export async function authenticatorRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const name = ctx.config.organisationName;
  const files = {
    shell: staticFile(renderShell(name), 'text/html; charset=utf-8'),
    app: staticFile(readFileSync(path.join(AUTHENTICATOR_BUILD_DIR, 'app.js')), 'text/javascript; charset=utf-8'),
    worker: staticFile(readFileSync(path.join(AUTHENTICATOR_BUILD_DIR, 'sw.js')), 'text/javascript; charset=utf-8'),
    manifest: staticFile(JSON.stringify(webAppManifest(name)), 'application/manifest+json; charset=utf-8'),
    config: staticFile(JSON.stringify({ name, origin: ctx.config.publicOrigin, vapidPublicKey: vapidKeys(ctx).publicKey }), 'application/json; charset=utf-8'),
  };

  /**
   * `no-cache`: the browser may keep a copy but must ask each time (a 304 when unchanged), so an update
   * reaches phones at once; the service worker keeps its own copy for offline start.
   */
  const send = (request: FastifyRequest, reply: FastifyReply, file: StaticFile) => {
    reply.header('cache-control', 'no-cache').header('etag', file.etag).header('content-type', file.type);
    if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
    return reply.send(file.body);
  };

  app.get('/authenticator', { config }, async (_request, reply) => reply.redirect('/authenticator/', 301));
  app.get('/authenticator/', { config }, async (request, reply) => send(request, reply, files.shell));
  app.get('/authenticator/app.js', { config }, async (request, reply) => send(request, reply, files.app));
  app.get('/authenticator/sw.js', { config }, async (request, reply) => {
    // The worker's scope is its own folder, which is what the app asks for; said outright all the same.
    reply.header('service-worker-allowed', '/authenticator/');
    return send(request, reply, files.worker);
  });
  app.get('/authenticator/manifest.webmanifest', { config }, async (request, reply) => send(request, reply, files.manifest));
  app.get('/authenticator/config.json', { config }, async (request, reply) => send(request, reply, files.config));
}
