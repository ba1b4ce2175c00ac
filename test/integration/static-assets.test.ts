/**
 * /assets/ through buildApp() and inject(), on SQLite and PostgreSQL: what @fastify/static refuses is a
 * 4xx page of ours, never a 500 (issue #12: "bad input is a 4xx, everywhere").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';

describe.each(dialects)('static assets on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    app = await buildApp(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('serves an asset, and a byte range of it', async () => {
    const whole = await app.inject({ method: 'GET', url: '/assets/portcullis.css' });
    expect(whole.statusCode).toBe(200);
    const part = await app.inject({ method: 'GET', url: '/assets/portcullis.css', headers: { range: 'bytes=0-9' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 0-9/${whole.rawPayload.length}`);
  });

  // Dotfiles, paths that climb out of the asset folder (encoded so the router keeps them) and the
  // folders themselves: all look like any missing asset, so nothing says what is there.
  it.each([
    '/assets/.htaccess',
    '/assets/.built',
    '/assets/images/.hidden',
    '/assets/%2e%2e/package.json',
    '/assets/%2e%2e%2f%2e%2e%2fpackage.json',
    '/assets/..%2fpackage.json',
    '/assets/..%2f..%2f..%2fpackage.json',
    '/assets/images/..%2f..%2f..%2fpackage.json',
    '/assets/images/',
    '/assets/',
  ])('answers GET %s with our 404 page', async (url) => {
    const response = await app.inject({ method: 'GET', url });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toContain('text/html');
    expect(response.body).toContain('Page not found');
    expect(response.body).not.toContain('"name"'); // not package.json
  });

  it.each(['/assets/%00', '/assets/portcullis.css%00.txt'])('refuses GET %s, with a NUL byte, as bad input (400)', async (url) => {
    const response = await app.inject({ method: 'GET', url });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('There is a problem');
  });

  it.each(['bytes=999999999-', 'bytes=500000000-600000000', 'bytes=5-2'])('answers an unsatisfiable Range (%s) with 416 and the length (RFC 9110 §15.5.17)', async (range) => {
    const length = (await app.inject({ method: 'GET', url: '/assets/portcullis.css' })).rawPayload.length;
    const response = await app.inject({ method: 'GET', url: '/assets/portcullis.css', headers: { range } });
    expect(response.statusCode).toBe(416);
    expect(response.headers['content-range']).toBe(`bytes */${length}`);
    expect(response.body).toContain('There is a problem');
  });

  it('answers a failed precondition with 412, not a 500', async () => {
    const response = await app.inject({ method: 'GET', url: '/assets/portcullis.css', headers: { 'if-match': '"not-this-one"' } });
    expect(response.statusCode).toBe(412);
  });

  it('ignores a Range it cannot parse and sends the whole asset', async () => {
    const response = await app.inject({ method: 'GET', url: '/assets/portcullis.css', headers: { range: 'lines=1-2' } });
    expect(response.statusCode).toBe(200);
  });
});
