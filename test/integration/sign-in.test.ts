/**
 * Password sign-in through buildApp() and inject(), on SQLite and PostgreSQL: identifier first, no
 * user enumeration, throttling, sessions, CSRF and sign-out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { addOrganisation, addUser, disableUser } from '../../src/app/directory.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { ORIGIN, TestBrowser, csrfFrom, parseSetCookies } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;

describe.each(dialects)('password sign-in on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let verifications = 0;

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { SIGN_IN_LOCKOUT_THRESHOLD: '10', SIGN_IN_IP_FAILURE_LIMIT: '1000' }, { controlClock: true });
    // Count every argon2 verification, including those against the dummy hash.
    const verify = ctx.hasher.verify.bind(ctx.hasher);
    ctx.hasher.verify = async (phc, password) => {
      verifications += 1;
      return verify(phc, password);
    };
    await addOrganisation(ctx, 'Test Trust', actor);
    for (const email of ['alice@example.org', 'bob@example.org', 'locked@example.org', 'carol@example.org', 'dave@example.org', 'erin@example.org']) {
      await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    }
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('asks for the email address first, then the password, and lands on My account', async () => {
    const browser = new TestBrowser(app);
    const page = await browser.get('/sign-in');
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<label[^>]*for="email"[^>]*>\s*Email address\s*<\/label>/);
    expect(page.body).toMatch(/<button[^>]*>\s*Continue\s*<\/button>/);

    const afterEmail = await browser.post('/sign-in', { email: 'Alice@Example.org' });
    expect(afterEmail.statusCode).toBe(303);
    expect(afterEmail.headers.location).toBe('/sign-in/password');
    const passwordPage = await browser.get('/sign-in/password');
    expect(passwordPage.body).toMatch(/<label[^>]*for="password"[^>]*>\s*Password\s*<\/label>/);
    expect(passwordPage.body).toMatch(/<button[^>]*>\s*Sign in\s*<\/button>/);
    expect(passwordPage.body).toContain('alice@example.org');

    const done = await browser.post('/sign-in/password', { password: PASSWORD });
    expect(done.statusCode).toBe(303);
    // No second method yet: the skippable offer to set one up comes first, then My account.
    expect(done.headers.location).toBe('/security-info/get-started?returnTo=%2Faccount');
    const offer = await browser.get(done.headers.location!);
    expect(offer.body).toContain('Set up a second way to sign in');
    expect(offer.body).toContain('<a href="/account">Skip for now</a>');
    const account = await browser.get('/account');
    expect(account.statusCode).toBe(200);
    expect(account.body).toContain('<h1 class="nhsuk-heading-l">My account</h1>');
    expect(account.body).toContain('alice@example.org');
    expect(account.body).toContain('Test Trust');
  });

  it('sets a __Host- session cookie that is HttpOnly, Secure and SameSite=Lax, and a new one at each sign-in', async () => {
    const browser = new TestBrowser(app);
    const response = await browser.signIn('bob@example.org', PASSWORD);
    const session = parseSetCookies(response).find((c) => c.name === '__Host-portcullis-session');
    expect(session).toBeDefined();
    expect(session!.attributes).toMatch(/HttpOnly/i);
    expect(session!.attributes).toMatch(/Secure/i);
    expect(session!.attributes).toMatch(/SameSite=Lax/i);
    expect(session!.attributes).toMatch(/Path=\//i);
    expect(session!.attributes).not.toMatch(/Domain=/i);

    // Signing in again from a browser that has a session replaces it: new id, old one gone (ASVS 5 V7.2.4).
    await browser.get('/account');
    await browser.post('/sign-in', { email: 'bob@example.org' });
    await browser.get('/sign-in/password');
    await browser.post('/sign-in/password', { password: PASSWORD });
    const renewed = browser.cookies.get('__Host-portcullis-session');
    expect(renewed).toBeDefined();
    expect(renewed).not.toBe(session!.value);
    const stale = new TestBrowser(app);
    stale.cookies.set('__Host-portcullis-session', session!.value);
    expect((await stale.get('/account')).statusCode).toBe(303);
  });

  it('records the methods used and the time in the session', async () => {
    const browser = new TestBrowser(app);
    await browser.signIn('carol@example.org', PASSWORD);
    const user = await ctx.store.users.findByEmail('carol@example.org');
    const rows = await ctx.store.database.db.selectFrom('sessions').selectAll().where('user_id', '=', user!.id).execute();
    expect(rows).toHaveLength(1);
    const methods = JSON.parse(rows[0]!.methods) as Array<{ method: string; at: string }>;
    expect(methods.map((m) => m.method)).toEqual(['password']);
    expect(Number.isNaN(Date.parse(methods[0]!.at))).toBe(false);
    expect(rows[0]!.restricted).toBeNull();
    expect(rows[0]!.id).not.toBe(browser.cookies.get('__Host-portcullis-session'));
  });

  it('keeps the password step in a sealed cookie: nothing is stored for it, and an altered, foreign or expired cookie is no flow', async () => {
    const flowRows = async () => (await ctx.store.database.db.selectFrom('sign_in_flows').select('id').execute()).length;
    const before = await flowRows();
    const browser = new TestBrowser(app);
    await browser.get('/sign-in');
    await browser.post('/sign-in', { email: 'erin@example.org' });
    const sealed = browser.cookies.get('__Host-portcullis-sign-in')!;
    expect(sealed).toMatch(/^p\.v1\./);
    // The address is not readable in the cookie: it is encrypted, not only signed.
    expect(Buffer.from(sealed.split('.').at(-1)!, 'base64url').toString('latin1')).not.toContain('erin');
    expect(await flowRows()).toBe(before);

    const passwordPage = await browser.get('/sign-in/password');
    expect(passwordPage.statusCode).toBe(200);
    expect(passwordPage.body).toContain('erin@example.org');

    // One character changed anywhere in the sealed value: no flow, back to the email step.
    const altered = sealed.slice(0, -2) + (sealed.at(-2) === 'A' ? 'B' : 'A') + sealed.at(-1);
    const tampered = new TestBrowser(app);
    tampered.cookies.set('__Host-portcullis-sign-in', altered);
    expect((await tampered.get('/sign-in/password')).headers.location).toBe('/sign-in');
    // Sealed by another deployment (another secret): no flow either.
    const other = await createTestContext(dialect, { PORTCULLIS_SECRET: Buffer.alloc(32, 9).toString('base64url') });
    try {
      const otherApp = await buildApp(other);
      const foreign = new TestBrowser(otherApp);
      await foreign.get('/sign-in');
      await foreign.post('/sign-in', { email: 'erin@example.org' });
      const stranger = new TestBrowser(app);
      stranger.cookies.set('__Host-portcullis-sign-in', foreign.cookies.get('__Host-portcullis-sign-in')!);
      expect((await stranger.get('/sign-in/password')).headers.location).toBe('/sign-in');
      await otherApp.close();
    } finally {
      await other.destroy();
    }

    // A password-only sign-in stores no flow at all, and clears the cookie.
    const done = await browser.post('/sign-in/password', { password: PASSWORD });
    expect(done.statusCode).toBe(303);
    expect(browser.cookies.has('__Host-portcullis-sign-in')).toBe(false);
    expect(await flowRows()).toBe(before);

    // A 2,048-character returnTo (the longest accepted) still fits sealed in a cookie browsers keep.
    const ascii = new TestBrowser(app);
    await ascii.get('/sign-in');
    await ascii.post('/sign-in', { email: 'erin@example.org', returnTo: `/account?${'q'.repeat(2039)}` });
    expect(ascii.cookies.get('__Host-portcullis-sign-in')).toMatch(/^p\./);
    expect(ascii.cookies.get('__Host-portcullis-sign-in')!.length).toBeLessThan(3500);
    // With the longest address too it would not: it is stored like any other step, and still works. (A
    // returnTo of many-byte characters is percent-encoded first, issue #12, so 2,048 is its size as sent.)
    const longEmail = `${'e'.repeat(64)}@${'d'.repeat(185)}.org`;
    expect(longEmail).toHaveLength(254);
    await addUser(ctx, { email: longEmail, displayName: 'Long Address', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    const longReturn = `/account?${'q'.repeat(2039)}`;
    const long = new TestBrowser(app);
    await long.get('/sign-in');
    await long.post('/sign-in', { email: longEmail, returnTo: longReturn });
    expect(long.cookies.get('__Host-portcullis-sign-in')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await flowRows()).toBe(before + 1);
    const longDone = await long.post('/sign-in/password', { password: PASSWORD });
    expect(longDone.headers.location).toBe(`/security-info/get-started?returnTo=${encodeURIComponent(longReturn)}`);
    expect(await flowRows()).toBe(before);

    // The sealed step expires with the flow's lifetime (15 minutes).
    const late = new TestBrowser(app);
    await late.get('/sign-in');
    await late.post('/sign-in', { email: 'erin@example.org' });
    ctx.advance(15 * 60 + 1);
    const expired = await late.post('/sign-in/password', { password: PASSWORD });
    expect(expired.statusCode).toBe(400);
    expect(expired.body).toContain('Your sign-in timed out');
  });

  it('signs out: the session is destroyed and the old cookie no longer works', async () => {
    const browser = new TestBrowser(app);
    await browser.signIn('dave@example.org', PASSWORD);
    const token = browser.cookies.get('__Host-portcullis-session')!;
    await browser.get('/account');
    const out = await browser.post('/sign-out', {});
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe('/signed-out');
    const user = await ctx.store.users.findByEmail('dave@example.org');
    expect(await ctx.store.sessions.countForUser(user!.id)).toBe(0);

    const replay = new TestBrowser(app);
    replay.cookies.set('__Host-portcullis-session', token);
    const account = await replay.get('/account');
    expect(account.statusCode).toBe(303);
    expect(account.headers.location).toBe('/sign-in?returnTo=%2Faccount');
  });

  it('gives an unknown email address the same pages and statuses, and still verifies a password (ASVS 5 V6.3.8)', async () => {
    const known = new TestBrowser(app);
    const unknown = new TestBrowser(app);
    const knownEmail = await (await known.get('/sign-in'), known.post('/sign-in', { email: 'alice@example.org' }));
    const unknownEmail = await (await unknown.get('/sign-in'), unknown.post('/sign-in', { email: 'nobody@example.org' }));
    expect(unknownEmail.statusCode).toBe(knownEmail.statusCode);
    expect(unknownEmail.headers.location).toBe(knownEmail.headers.location);

    await known.get('/sign-in/password');
    await unknown.get('/sign-in/password');
    const before = verifications;
    const knownWrong = await known.post('/sign-in/password', { password: 'not-the-password' });
    expect(verifications).toBe(before + 1);
    const unknownWrong = await unknown.post('/sign-in/password', { password: 'not-the-password' });
    expect(verifications).toBe(before + 2);

    expect(unknownWrong.statusCode).toBe(knownWrong.statusCode);
    expect(knownWrong.statusCode).toBe(401);
    const strip = (html: string) => html.replace(/value="[^"]*"/g, '').replace(/nonce="[^"]*"/g, '').replace(/(alice|nobody)@example.org/g, 'EMAIL');
    expect(strip(unknownWrong.body)).toBe(strip(knownWrong.body));
    expect(knownWrong.body).toContain('The email address or password is not correct');
  });

  it('shows errors in an error summary linked to the field', async () => {
    const browser = new TestBrowser(app);
    await browser.get('/sign-in');
    const empty = await browser.post('/sign-in', { email: '' });
    expect(empty.statusCode).toBe(400);
    expect(empty.body).toContain('nhsuk-error-summary');
    expect(empty.body).toContain('href="#email"');
    expect(empty.body).toContain('Enter your email address');
    expect(empty.body).toMatch(/<title>Error: /);
    const bad = await browser.post('/sign-in', { email: 'not-an-email' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('Enter an email address in the correct format');
    expect(bad.body).toContain('value="not-an-email"');
  });

  it('never shows one visitor what another typed, and gives each page its own nonce and token', async () => {
    const first = new TestBrowser(app);
    await first.get('/sign-in');
    const typo = await first.post('/sign-in', { email: 'private-typo@' });
    expect(typo.body).toContain('value="private-typo@"');
    const second = new TestBrowser(app);
    const clean = await second.get('/sign-in');
    expect(clean.body).not.toContain('private-typo');
    const again = await second.get('/sign-in');
    const nonce = (html: string) => /nonce="([^"]+)"/.exec(html)![1];
    expect(nonce(again.body)).not.toBe(nonce(clean.body));
    expect(csrfFrom(clean.body)).toBe(csrfFrom(again.body)); // one browser, one seed
    expect(csrfFrom(clean.body)).not.toBe(csrfFrom(typo.body));
  });

  it('refuses a disabled account only after the right password, and then says why', async () => {
    await addUser(ctx, { email: 'gone@example.org', displayName: 'Gone', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    await disableUser(ctx, 'gone@example.org', actor);
    const wrong = await new TestBrowser(app).signIn('gone@example.org', 'wrong-password-here');
    expect(wrong.statusCode).toBe(401);
    const right = await new TestBrowser(app).signIn('gone@example.org', PASSWORD);
    expect(right.statusCode).toBe(403);
    expect(right.body).toContain('Your account has been turned off');
    expect(right.headers['set-cookie']?.toString() ?? '').not.toContain('__Host-portcullis-session=');
  });

  it('locks an address after 10 consecutive failures, for known and unknown addresses alike, and lifts it by itself (NIST SP 800-63B §5.2.2)', async () => {
    for (const email of ['locked@example.org', 'ghost@example.org']) {
      for (let i = 0; i < 10; i += 1) {
        const failed = await new TestBrowser(app).signIn(email, `wrong-${i}-password`);
        expect(failed.statusCode).toBe(401);
      }
      const before = verifications;
      const refused = await new TestBrowser(app).signIn(email, email === 'locked@example.org' ? PASSWORD : 'whatever-password');
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['retry-after']).toBe('60');
      expect(refused.body).toContain('You have tried to sign in too many times. Wait 1 minute and try again.');
      expect(verifications).toBe(before); // no argon2 work is done for a locked address
    }
    const lockouts = await ctx.store.audit.list({ type: 'sign-in.locked-out' });
    expect(lockouts.map((e) => JSON.parse(e.details).email)).toEqual(expect.arrayContaining(['locked@example.org', 'ghost@example.org']));

    ctx.advance(61);
    const after = await new TestBrowser(app).signIn('locked@example.org', PASSWORD);
    expect(after.statusCode).toBe(303);

    // A success cleared the count: nine more failures do not lock.
    for (let i = 0; i < 9; i += 1) await new TestBrowser(app).signIn('locked@example.org', `wrong-again-${i}`);
    expect((await new TestBrowser(app).signIn('locked@example.org', PASSWORD)).statusCode).toBe(303);
  });

  it('doubles the lockout when failures go on after it lifts', async () => {
    for (let i = 0; i < 10; i += 1) await new TestBrowser(app).signIn('ghost2@example.org', `wrong-${i}`);
    ctx.advance(61);
    for (let i = 0; i < 10; i += 1) await new TestBrowser(app).signIn('ghost2@example.org', `wrong-more-${i}`);
    const refused = await new TestBrowser(app).signIn('ghost2@example.org', 'anything-at-all');
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('120');
  });

  it('keeps lockouts in shared state: a second node (or a restart) refuses too', async () => {
    for (let i = 0; i < 10; i += 1) await new TestBrowser(app).signIn('shared@example.org', `wrong-${i}`);
    const second = await buildApp(ctx);
    try {
      const refused = await new TestBrowser(second).signIn('shared@example.org', 'anything-at-all');
      expect(refused.statusCode).toBe(429);
    } finally {
      await second.close();
    }
  });

  it('refuses POSTs without a valid CSRF token or from another origin (ASVS 5 V3.5)', async () => {
    const browser = new TestBrowser(app);
    await browser.get('/sign-in');
    const token = csrfFrom(browser.lastHtml)!;
    expect((await browser.post('/sign-in', { email: 'alice@example.org', _csrf: 'forged' })).statusCode).toBe(403);
    expect((await browser.post('/sign-in', { email: 'alice@example.org', _csrf: token }, { origin: 'https://evil.example' })).statusCode).toBe(403);
    expect((await browser.post('/sign-in', { email: 'alice@example.org', _csrf: token }, { 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    const other = new TestBrowser(app);
    await other.get('/sign-in');
    // A token is bound to its own browser's seed cookie.
    expect((await other.post('/sign-in', { email: 'alice@example.org', _csrf: token })).statusCode).toBe(403);
    const refused = await app.inject({ method: 'POST', url: '/sign-out', headers: { origin: ORIGIN } });
    expect(refused.statusCode).toBe(403);
    expect((await browser.post('/sign-in', { email: 'alice@example.org', _csrf: token })).statusCode).toBe(303);
  });

  it('ends a session after an hour idle, and 24 hours after sign-in however busy (ASVS 5 V7.3)', async () => {
    const idle = new TestBrowser(app);
    await idle.signIn('alice@example.org', PASSWORD);
    ctx.advance(3599);
    expect((await idle.get('/account')).statusCode).toBe(200);
    ctx.advance(3601);
    expect((await idle.get('/account')).statusCode).toBe(303);

    const busy = new TestBrowser(app);
    await busy.signIn('alice@example.org', PASSWORD);
    for (let hour = 0; hour < 23; hour += 1) {
      ctx.advance(1800);
      expect((await busy.get('/account')).statusCode).toBe(200);
      ctx.advance(1800);
      expect((await busy.get('/account')).statusCode).toBe(200);
    }
    ctx.advance(3600);
    expect((await busy.get('/account')).statusCode).toBe(303);
  });

  it('only returns to a path on this site after sign-in (no open redirect)', async () => {
    for (const [returnTo, expected] of [
      ['/account?tab=1', '/account?tab=1'],
      ['//evil.example/x', '/account'],
      ['https://evil.example/', '/account'],
      ['/\\evil.example', '/account'],
    ] as const) {
      const browser = new TestBrowser(app);
      await browser.get(`/sign-in?returnTo=${encodeURIComponent(returnTo)}`);
      await browser.post('/sign-in', { email: 'alice@example.org', returnTo: csrfFrom(browser.lastHtml) ? returnTo : returnTo });
      await browser.get('/sign-in/password');
      const done = await browser.post('/sign-in/password', { password: PASSWORD });
      expect(done.headers.location).toBe(`/security-info/get-started?returnTo=${encodeURIComponent(expected)}`);
      const offer = await browser.get(done.headers.location!);
      expect(offer.body).toContain(`<a href="${expected.replace('&', '&amp;')}">Skip for now</a>`);
    }
  });

  it('writes sign-in successes and failures to the append-only audit log', async () => {
    const user = await ctx.store.users.findByEmail('alice@example.org');
    const events = await ctx.store.audit.list({ subjectUserId: user!.id, limit: 500 });
    const types = new Set(events.map((e) => e.type));
    expect(types).toContain('sign-in.succeeded');
    expect(types).toContain('sign-in.failed');
    const success = events.find((e) => e.type === 'sign-in.succeeded')!;
    expect(success.ip).toBe('203.0.113.10');
    expect(new Date(success.at).toISOString()).toBe(success.at);
    await expect(ctx.store.database.db.updateTable('audit_events').set({ type: 'tampered' }).execute()).rejects.toThrow(/append-only/);
    await expect(ctx.store.database.db.deleteFrom('audit_events').execute()).rejects.toThrow(/append-only/);
  });

  it('sends security headers: a CSP without unsafe-inline, no framing, no referrer to other sites', async () => {
    const response = await app.inject({ method: 'GET', url: '/sign-in' });
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['referrer-policy']).toBe('same-origin');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['strict-transport-security']).toBeUndefined();
    // Every script tag carries this response's nonce.
    const nonce = /'nonce-([^']+)'/.exec(csp)![1];
    const scripts = response.body.match(/<script[^>]*>/g) ?? [];
    expect(scripts.length).toBeGreaterThan(0);
    for (const tag of scripts) expect(tag).toContain(`nonce="${nonce}"`);
  });

  it('serves pages with no asset from another host', async () => {
    const page = await app.inject({ method: 'GET', url: '/sign-in' });
    const urls = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(urls.length).toBeGreaterThan(3);
    for (const url of urls) expect(url.startsWith('/') || url.startsWith('#')).toBe(true);
    const css = await app.inject({ method: 'GET', url: '/assets/portcullis.css' });
    expect(css.statusCode).toBe(200);
    expect(css.body).not.toMatch(/url\(["']?(https?:)?\/\//);
    expect(css.body).not.toContain('assets.nhs.uk');
    expect((await app.inject({ method: 'GET', url: '/assets/nhsuk-frontend.min.js' })).statusCode).toBe(200);
  });
});
