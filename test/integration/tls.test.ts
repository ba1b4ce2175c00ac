/**
 * Portcullis serving HTTPS itself (TLS_CERT_FILE, TLS_KEY_FILE), as a phone trying the authenticator
 * web app on the local network needs a secure origin.
 */
import { get } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/server/app.js';
import { freePort, listen } from '../helpers/browser.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { makeLocalhostCertificate, type TestCertificate } from '../helpers/tls.js';

function fetchTls(url: string, ca: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    }).on('error', reject);
  });
}

describe('HTTPS served directly', () => {
  let certificate: TestCertificate;
  let ctx: TestContext;
  let app: FastifyInstance;
  let origin = '';

  beforeAll(async () => {
    certificate = makeLocalhostCertificate();
    const port = await freePort();
    origin = `https://localhost:${port}`;
    ctx = await createTestContext('sqlite', { PUBLIC_URL: origin, TLS_CERT_FILE: certificate.certFile, TLS_KEY_FILE: certificate.keyFile });
    app = await buildApp(ctx);
    await listen(app, port);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('answers over TLS with the configured certificate, and sends HSTS', async () => {
    const health = await fetchTls(`${origin}/healthz`, certificate.cert);
    expect(health.status).toBe(200);
    const page = await fetchTls(`${origin}/sign-in`, certificate.cert);
    expect(page.status).toBe(200);
    expect(page.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    await expect(fetchTls(`${origin}/healthz`, '')).rejects.toThrow(/self-signed|certificate/i);
  });
});
