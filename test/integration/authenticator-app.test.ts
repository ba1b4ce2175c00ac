/**
 * The Portcullis Authenticator's files through buildApp() and inject(): the page, script, service
 * worker, manifest and configuration, with this surface's own CSP and camera permission (and the rest
 * of the site keeping `camera=()`), revalidation with ETags, and the VAPID key the server signs with.
 * These routes read no database, so SQLite alone is enough here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { vapidKeys } from '../../src/app/methods/push/shared.js';
import { buildApp } from '../../src/server/app.js';
import { AUTHENTICATOR_CSP } from '../../src/server/authenticator/routes.js';
import { createTestContext, type TestContext } from '../helpers/context.js';

describe('the authenticator app at /authenticator/', () => {
  let ctx: TestContext;
  let app: FastifyInstance;

  beforeAll(async () => {
    ctx = await createTestContext('sqlite', { ORGANISATION_NAME: 'NHSmail' });
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('serves the page with NHS.UK styles, a skip link, the app script and no inline script or style', async () => {
    const response = await app.inject({ url: '/authenticator/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = response.body;
    expect(html).toContain('<link rel="stylesheet" href="/assets/portcullis.css">');
    expect(html).toContain('<link rel="manifest" href="/authenticator/manifest.webmanifest">');
    expect(html).toContain('<script type="module" src="/authenticator/app.js"></script>');
    expect(html).toContain('href="#maincontent"');
    expect(html).toContain('NHSmail Authenticator');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // every script is a file
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/<style/);
  });

  it('states its own CSP and allows the camera here only', async () => {
    for (const url of ['/authenticator/', '/authenticator/app.js', '/authenticator/sw.js', '/authenticator/manifest.webmanifest', '/authenticator/config.json']) {
      const response = await app.inject({ url });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['content-security-policy'], url).toBe(AUTHENTICATOR_CSP);
      expect(response.headers['permissions-policy'], url).toBe('camera=(self), microphone=(), geolocation=(), payment=()');
      expect(response.headers['x-frame-options'], url).toBe('DENY');
    }
    const csp = AUTHENTICATOR_CSP;
    for (const directive of ["script-src 'self'", "connect-src 'self'", "img-src 'self' data: blob:", "manifest-src 'self'", "worker-src 'self'", "frame-ancestors 'none'"]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');

    const signIn = await app.inject({ url: '/sign-in' });
    expect(signIn.headers['permissions-policy']).toBe('camera=(), microphone=(), geolocation=(), payment=()');
    expect(signIn.headers['content-security-policy']).not.toBe(AUTHENTICATOR_CSP);
  });

  it('serves the service worker for its own scope, always revalidated', async () => {
    const response = await app.inject({ url: '/authenticator/sw.js' });
    expect(response.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(response.headers['service-worker-allowed']).toBe('/authenticator/');
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.body).toContain('Sign-in request – open to approve');
    // The build id names the offline cache: a new build is a new worker, which replaces the old cache.
    expect(response.body).toMatch(/portcullis-authenticator-[A-Za-z0-9_-]{16}/);

    const etag = response.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const again = await app.inject({ url: '/authenticator/sw.js', headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('describes an installable app scoped to /authenticator/', async () => {
    const response = await app.inject({ url: '/authenticator/manifest.webmanifest' });
    expect(response.headers['content-type']).toBe('application/manifest+json; charset=utf-8');
    const manifest = response.json() as { start_url: string; scope: string; display: string; name: string; icons: Array<{ src: string; sizes: string }> };
    expect(manifest).toMatchObject({ name: 'Portcullis Authenticator', start_url: '/authenticator/', scope: '/authenticator/', display: 'standalone' });
    expect(manifest.icons.map((i) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']));
    for (const icon of manifest.icons) expect((await app.inject({ url: icon.src })).statusCode, icon.src).toBe(200);
  });

  it("gives the app the server's name, origin and VAPID public key", async () => {
    const response = await app.inject({ url: '/authenticator/config.json' });
    expect(response.json()).toEqual({ name: 'NHSmail', origin: 'http://localhost:8080', vapidPublicKey: vapidKeys(ctx).publicKey });
    // RFC 8292 §3.2: the key is an uncompressed P-256 point, base64url (65 bytes).
    expect(Buffer.from(vapidKeys(ctx).publicKey, 'base64url')).toHaveLength(65);
  });

  it('sends /authenticator to /authenticator/, where the service worker scope starts', async () => {
    const response = await app.inject({ url: '/authenticator' });
    expect(response.statusCode).toBe(301);
    expect(response.headers.location).toBe('/authenticator/');
  });
});
