/**
 * "Forgot your password?" on SQLite and PostgreSQL: an emailed code, then a second factor, then a new
 * password; the same pages whatever the address; limits; never a bypass of MFA.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;

describe.each(dialects)('password reset on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let totpKey = '';

  const codeAt = (offsetSteps: number) => generateTotp(totpKey, new Date(ctx.clock().getTime() + offsetSteps * 30_000));
  const resetCode = async (email: string) => {
    const [message] = await ctx.delivery.listOutbox({ to: email, limit: 1 });
    expect(message?.purpose).toBe('password-reset-code');
    return message!.code!;
  };

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { PASSWORD_RESETS_PER_EMAIL: '3' }, { controlClock: true });
    await addOrganisation(ctx, 'Test Trust', actor);
    for (const email of ['reset@example.org', 'nomethod@example.org']) {
      await addUser(ctx, { email, displayName: 'Robin Reset', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    }
    app = await buildApp(ctx);
    // Robin sets up an authenticator app (right after the password, as a first method).
    const browser = new TestBrowser(app);
    await browser.signIn('reset@example.org', PASSWORD);
    await browser.get('/security-info/add');
    const chosen = await browser.post('/security-info/add', { method: 'totp' });
    const page = await browser.get(chosen.headers.location!);
    totpKey = /id="totp-key">([A-Z2-7 ]+)</.exec(page.body)![1]!.replace(/ /g, '');
    await browser.post(chosen.headers.location!, { code: codeAt(0) });
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('resets with the emailed code and a second factor, ends every session and says so by email', async () => {
    const other = new TestBrowser(app);
    await other.signIn('reset@example.org', PASSWORD);
    await other.get('/sign-in/verify');
    await other.post('/sign-in/verify', { code: codeAt(1) });
    expect((await other.get('/account')).statusCode).toBe(200);
    ctx.advance(30);

    const browser = new TestBrowser(app);
    const signInPage = await browser.get('/sign-in');
    expect(signInPage.statusCode).toBe(200);
    await browser.post('/sign-in', { email: 'reset@example.org' });
    expect((await browser.get('/sign-in/password')).body).toContain('<a href="/forgot-password">Forgot your password?</a>');
    await browser.get('/forgot-password');
    const requested = await browser.post('/forgot-password', { email: 'Reset@Example.org' });
    expect(requested.headers.location).toBe('/forgot-password/code');
    expect((await browser.get('/forgot-password/code')).body).toContain('If reset@example.org has an account, we have sent a 6-digit code to it.');
    const code = await resetCode('reset@example.org');

    // The new-password page is not reachable before both factors.
    expect((await browser.get('/forgot-password/new-password')).headers.location).toBe('/forgot-password');
    const afterEmail = await browser.post('/forgot-password/code', { code });
    expect(afterEmail.headers.location).toBe('/sign-in/verify');
    expect((await browser.get('/forgot-password/new-password')).headers.location).toBe('/forgot-password');
    const prompt = await browser.get('/sign-in/verify');
    expect(prompt.body).toContain('Enter the code from your authenticator app');
    const afterApp = await browser.post('/sign-in/verify', { code: codeAt(1) });
    expect(afterApp.headers.location).toBe('/forgot-password/new-password');
    expect(browser.cookies.has('__Host-portcullis-session')).toBe(false); // a reset never signs in

    await browser.get('/forgot-password/new-password');
    const common = await browser.post('/forgot-password/new-password', { password: 'iloveyou123', confirm: 'iloveyou123' });
    expect(common.statusCode).toBe(400);
    expect(common.body).toContain('too common');
    const done = await browser.post('/forgot-password/new-password', { password: 'fresh-harbour-lantern', confirm: 'fresh-harbour-lantern' });
    expect(done.headers.location).toBe('/sign-in?reset=1');
    expect((await browser.get('/sign-in?reset=1')).body).toContain('Your password has been changed');

    expect((await other.get('/account')).statusCode).toBe(303); // every session ended
    expect((await new TestBrowser(app).signIn('reset@example.org', PASSWORD)).statusCode).toBe(401);
    expect((await new TestBrowser(app).signIn('reset@example.org', 'fresh-harbour-lantern')).headers.location).toBe('/sign-in/verify');
    const mail = await ctx.delivery.listOutbox({ to: 'reset@example.org', limit: 5 });
    expect(mail[0]!.subject).toBe('Your Portcullis password was reset');
    expect(mail[0]!.code).toBeUndefined();
    const user = await ctx.store.users.findByEmail('reset@example.org');
    expect((await ctx.store.audit.list({ subjectUserId: user!.id, type: 'user.password-reset' })).length).toBe(1);
  });

  it('gives an unknown address the same pages and statuses, and sends nothing', async () => {
    const known = new TestBrowser(app);
    const unknown = new TestBrowser(app);
    const before = (await ctx.delivery.listOutbox({ limit: 500 })).length;
    await known.get('/forgot-password');
    await unknown.get('/forgot-password');
    const a = await known.post('/forgot-password', { email: 'nomethod@example.org' });
    const b = await unknown.post('/forgot-password', { email: 'nobody-at-all@example.org' });
    expect([a.statusCode, a.headers.location]).toEqual([b.statusCode, b.headers.location]);
    const pageA = await known.get('/forgot-password/code');
    const pageB = await unknown.get('/forgot-password/code');
    const strip = (html: string) => html.replace(/value="[^"]*"/g, '').replace(/nonce="[^"]*"/g, '').replace(/(nomethod|nobody-at-all)@example\.org/g, 'EMAIL');
    expect(strip(pageB.body)).toBe(strip(pageA.body));
    const wrongA = await known.post('/forgot-password/code', { code: '000001' });
    const wrongB = await unknown.post('/forgot-password/code', { code: '000001' });
    expect(wrongB.statusCode).toBe(wrongA.statusCode);
    expect(strip(wrongB.body)).toBe(strip(wrongA.body));
    expect((await ctx.delivery.listOutbox({ limit: 500 })).length).toBe(before + 1); // only the real account got mail
  });

  it('cannot reset without a second method: the emailed code alone is not enough', async () => {
    ctx.advance(3600);
    const browser = new TestBrowser(app);
    await browser.get('/forgot-password');
    await browser.post('/forgot-password', { email: 'nomethod@example.org' });
    const refused = await browser.post('/forgot-password/code', { code: await resetCode('nomethod@example.org') });
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('you have not set up a second sign-in method');
  });

  it('limits requests per address, the same for unknown addresses', async () => {
    ctx.advance(3600);
    for (const email of ['reset@example.org', 'nobody-limited@example.org']) {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i += 1) {
        const browser = new TestBrowser(app);
        await browser.get('/forgot-password');
        statuses.push((await browser.post('/forgot-password', { email })).statusCode);
      }
      expect(statuses).toEqual([303, 303, 303, 429]);
    }
  });
});
