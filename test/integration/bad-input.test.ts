/**
 * Bad input is a 4xx, everywhere (issue #12), through buildApp() and inject() on SQLite and PostgreSQL:
 * the cases the fuzzer (fuzz.test.ts) found as 500s on PostgreSQL, kept here as plain regression tests.
 * Each is refused with the field named, and writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { ORIGIN, TestBrowser, csrfFrom } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;

describe.each(dialects)('bad input on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;

  /** Rows in the tables a refused request could touch. */
  const rows = async () => {
    const db = ctx.store.database.db;
    const count = async (table: 'audit_events' | 'sign_in_flows' | 'throttles' | 'challenges' | 'outbox' | 'methods' | 'sessions') =>
      Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    return {
      audit: await count('audit_events'),
      flows: await count('sign_in_flows'),
      throttles: await count('throttles'),
      challenges: await count('challenges'),
      outbox: await count('outbox'),
      methods: await count('methods'),
      sessions: await count('sessions'),
    };
  };

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    await addOrganisation(ctx, 'Test Trust', actor);
    await addUser(ctx, { email: 'ann@example.org', displayName: 'Ann', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    app = await buildApp(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it.each([
    ['/sign-in', 'email'],
    ['/forgot-password', 'email'],
  ])('refuses a NUL in a form field of %s, naming %s (PostgreSQL answered 500 at /forgot-password, and at the password step after /sign-in)', async (url, name) => {
    const browser = new TestBrowser(app);
    await browser.get(url);
    const before = await rows();
    const response = await browser.post(url, { [name]: 'ann\u0000@example.org' });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain(`The ${name} field contains a character that cannot be used`);
    expect(await rows()).toEqual(before);
  });

  it('refuses a NUL in a path parameter, naming it (PostgreSQL answered 500)', async () => {
    const browser = new TestBrowser(app);
    await browser.signIn('ann@example.org', PASSWORD);
    await browser.get('/security-info');
    const before = await rows();
    for (const url of ['/security-info/add/%00', '/security-info/add/%00/resend', '/security-info/methods/%00/delete']) {
      const response = await browser.post(url, {});
      expect(response.statusCode, url).toBe(400);
      expect(response.body).toContain('The methodId field contains a character that cannot be used');
    }
    expect((await browser.get('/security-info/added/%00')).statusCode).toBe(400);
    expect(await rows()).toEqual(before);
  });

  it('refuses a lone surrogate sent as JSON to a form, and a NUL in a device API path, naming the field', async () => {
    const browser = new TestBrowser(app);
    await browser.get('/sign-in');
    const response = await app.inject({
      method: 'POST',
      url: '/sign-in',
      payload: JSON.stringify({ _csrf: csrfFrom(browser.lastHtml), email: 'ann@example.org', returnTo: '/\ud800' }),
      headers: { 'content-type': 'application/json', origin: ORIGIN, 'sec-fetch-site': 'same-origin', cookie: [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('The returnTo field contains a character that cannot be used');

    const api = await app.inject({ method: 'GET', url: '/device/v1/challenges/%00' });
    expect(api.statusCode).toBe(400);
    expect(api.json()).toEqual({ error: 'field-characters-invalid', message: 'The id field contains a character that cannot be used', field: 'id' });
  });

  it('answers a body too large, a content type it does not take and bad JSON with 413, 415 and 400', async () => {
    const browser = new TestBrowser(app);
    await browser.get('/sign-in');
    const before = await rows();
    const headers = { origin: ORIGIN, 'sec-fetch-site': 'same-origin', cookie: [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    const large = await app.inject({ method: 'POST', url: '/sign-in', payload: `email=${'a'.repeat(300_000)}`, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(large.statusCode).toBe(413);
    const multipart = await app.inject({ method: 'POST', url: '/sign-in', payload: '--x\r\n', headers: { ...headers, 'content-type': 'multipart/form-data; boundary=x' } });
    expect(multipart.statusCode).toBe(415);
    const json = await app.inject({ method: 'POST', url: '/sign-in', payload: '{"email":', headers: { ...headers, 'content-type': 'application/json' } });
    expect(json.statusCode).toBe(400);
    for (const response of [large, multipart, json]) expect(response.body).toContain('There is a problem');
    expect(await rows()).toEqual(before);
  });
});
