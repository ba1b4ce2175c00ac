/**
 * oidc-provider's own pages in our look and under our rules (issue #13 point 6), over HTTP against a listening
 * server on SQLite and PostgreSQL: its error page, the RP-initiated logout confirmation and the signed-out
 * page are our views with our layout and OIDC_CSP; an error never redirects to an address the client did not
 * register (RFC 6749 §4.1.2.1; OpenID Connect RP-Initiated Logout 1.0 §3 and §4); "Yes, sign out" ends the
 * Portcullis session too.
 */
import type { FastifyInstance } from 'fastify';
import type * as oauth from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/server/cookies.js';
import { dialects, type TestContext } from '../helpers/context.js';
import { FetchBrowser, type FetchAnswer as Answer } from '../helpers/fetch-browser.js';
import {
  AFTER_LOGOUT,
  application as registerApplication,
  authorize,
  personWithTotp,
  REDIRECT,
  signInToApplication,
  startOidcServer,
  type OidcServer,
} from '../helpers/oidc.js';

const HTML = 'text/html,application/xhtml+xml';

/** A browser that accepts HTML, as oidc-provider's pages need to be rendered as pages. */
class Browser extends FetchBrowser {
  constructor(base: string) {
    super(base, { accept: HTML });
  }
}

/** Our layout, not oidc-provider's page: the NHS.UK header, our stylesheet, no inline style or script. */
function expectOurPage(answer: Answer, heading: string): void {
  expect(answer.headers.get('content-type')).toMatch(/^text\/html/);
  expect(answer.body).toContain('class="nhsuk-header');
  expect(answer.body).toContain('<link rel="stylesheet" href="/assets/portcullis.css">');
  expect(answer.body).toContain(`<h1 class="nhsuk-heading-l">${heading}</h1>`);
  expect(answer.body).not.toMatch(/<style|style="|<script>/);
  const csp = answer.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("style-src 'self'");
  // The layout's one inline script carries this response's nonce, which the CSP names.
  const nonce = /<script nonce="([^"]+)">/.exec(answer.body)?.[1];
  expect(nonce).toBeTruthy();
  expect(csp).toMatch(new RegExp(`script-src 'self'[^;]* 'nonce-${nonce!.replace(/[+/=]/g, '\\$&')}'`));
  expect(csp).toContain("default-src 'none'");
  expect(csp).not.toContain('unsafe-inline');
}

describe.each(dialects)("oidc-provider's own pages on %s", (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let origin: string;
  let issuer: URL;

  const application = () => registerApplication(ctx, issuer, { firstParty: true, postLogoutRedirectUris: [AFTER_LOGOUT] });
  const authorizeUrl = (config: oauth.Configuration, parameters: Record<string, string> = {}) => authorize(config, { scope: 'openid', ...parameters });

  /** A person signed in to the application (password and TOTP): their browser and the ID token it got. */
  async function signedInToApplication(config: oauth.Configuration): Promise<{ browser: FetchBrowser; idToken: string; userId: string }> {
    const person = await personWithTotp(ctx, origin, { accept: HTML });
    const tokens = await signInToApplication(person, config, { scope: 'openid' });
    return { browser: person.browser, idToken: tokens.id_token!, userId: person.userId };
  }

  const endSessionUrl = (parameters: Record<string, string>) => `/oidc/session/end?${new URLSearchParams(parameters).toString()}`;

  let server: OidcServer;
  beforeAll(async () => {
    server = await startOidcServer(dialect);
    ({ ctx, app, origin, issuer } = server);
  });
  afterAll(async () => server?.close());

  it('answers an unregistered redirect_uri with our error page, never a redirect to it (RFC 6749 §4.1.2.1)', async () => {
    const { config } = await application();
    const request = await authorizeUrl(config, { redirect_uri: 'https://evil.example/callback' });
    const answer = await new Browser(origin).send('GET', request.url);
    expect(answer.status).toBe(400);
    expect(answer.location).toBeNull();
    expectOurPage(answer, 'Sorry, there is a problem with this sign-in request');
    // The OAuth error only as a reference; no description (internal details) and no echo of the address.
    expect(answer.body).toContain('Reference: <code>invalid_redirect_uri</code>');
    expect(answer.body).not.toContain('evil.example');
    expect(answer.body).not.toContain('error_description');
  });

  it('answers an unknown client_id and a malformed request with our error page, status 400, no Location (RFC 6749 §4.1.2.1)', async () => {
    const unknown = new URLSearchParams({ client_id: 'no-such-client', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, state: 's', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const unknownAnswer = await new Browser(origin).send('GET', `/oidc/auth?${unknown.toString()}`);
    expect(unknownAnswer.status).toBe(400);
    expect(unknownAnswer.location).toBeNull();
    expectOurPage(unknownAnswer, 'This application cannot use your account');
    expect(unknownAnswer.body).toContain('Reference: <code>invalid_client</code>');

    const malformed = await new Browser(origin).send('GET', '/oidc/auth?response_type=code');
    expect(malformed.status).toBe(400);
    expect(malformed.location).toBeNull();
    expectOurPage(malformed, 'Sorry, there is a problem with this sign-in request');
    expect(malformed.body).toContain('Reference: <code>invalid_request</code>');
  });

  it("leaves the form_post page oidc-provider's: its one inline script is allowed by its hash in script-src, nothing inline else (OAuth 2.0 Form Post Response Mode)", async () => {
    const { config } = await application();
    // prompt=none without a session: an error, sent to the registered redirect_uri by a self-submitting form.
    const request = await authorizeUrl(config, { prompt: 'none', response_mode: 'form_post' });
    const answer = await new Browser(origin).send('GET', request.url);
    expect(answer.status).toBe(400);
    expect(answer.body).toContain(`<form method="post" action="${REDIRECT}">`);
    expect(answer.body).toContain('name="error" value="login_required"');
    const csp = answer.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('form-action');
  });

  it('asks "Sign out of Staff rota?" on our page; "Yes, sign out" ends the Portcullis session too and goes to the registered post_logout_redirect_uri (OpenID Connect RP-Initiated Logout 1.0 §2, §3)', async () => {
    const { config } = await application();
    const { browser, idToken, userId } = await signedInToApplication(config);
    const sessionsBefore = await ctx.store.database.db.selectFrom('sessions').select('id').where('user_id', '=', userId).execute();
    expect(sessionsBefore.length).toBeGreaterThan(0);

    const page = await browser.send('GET', endSessionUrl({ id_token_hint: idToken, post_logout_redirect_uri: AFTER_LOGOUT, state: 'back-here' }));
    expect(page.status).toBe(200);
    expectOurPage(page, 'Sign out of Staff rota?');
    // oidc-provider's form and its hidden xsrf input, kept; our buttons inside it.
    const action = /<form id="op.logoutForm" method="post" action="([^"]+)">/.exec(page.body)?.[1];
    expect(action).toBe(`${origin}/oidc/session/end/confirm`);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.body)?.[1];
    expect(xsrf).toBeTruthy();
    expect(page.body).toMatch(/<button[^>]*name="logout"[^>]*value="yes"[^>]*>\s*Yes, sign out/);

    // A forged confirmation without the xsrf value ends nothing (oidc-provider's own check, not our CSRF).
    const forged = await browser.send('POST', '/oidc/session/end/confirm', { logout: 'yes', xsrf: 'forged' });
    expect(forged.status).toBe(400);
    expect(forged.location).toBeNull();
    expect(browser.cookies.has(SESSION_COOKIE)).toBe(true);

    const confirmed = await browser.send('POST', '/oidc/session/end/confirm', { xsrf: xsrf!, logout: 'yes' });
    expect(confirmed.status).toBe(303);
    expect(confirmed.location).toBe(`${AFTER_LOGOUT}?state=back-here`);
    // Our session row is gone and the cookie cleared: /account asks to sign in again.
    const sessionsAfter = await ctx.store.database.db.selectFrom('sessions').select('id').where('user_id', '=', userId).execute();
    expect(sessionsAfter.map((row) => row.id)).not.toEqual(expect.arrayContaining(sessionsBefore.map((row) => row.id)));
    expect(browser.cookies.has(SESSION_COOKIE)).toBe(false);
    const account = await browser.send('GET', '/account');
    expect(account.status).toBe(303);
    expect(account.location).toMatch(/^\/sign-in/);
  });

  it('refuses an unregistered post_logout_redirect_uri with our error page, without signing out or redirecting (OpenID Connect RP-Initiated Logout 1.0 §3)', async () => {
    const { config } = await application();
    const { browser, idToken } = await signedInToApplication(config);
    const answer = await browser.send('GET', endSessionUrl({ id_token_hint: idToken, post_logout_redirect_uri: 'https://evil.example/after' }));
    expect(answer.status).toBe(400);
    expect(answer.location).toBeNull();
    expectOurPage(answer, 'Sorry, there is a problem with this sign-out request');
    expect(answer.body).toContain('Reference: <code>invalid_request</code>');
    expect(answer.body).not.toContain('evil.example');
    expect((await browser.send('GET', '/account')).status).toBe(200);
  });

  it('shows our signed-out page after a sign-out with no post_logout_redirect_uri', async () => {
    const { config } = await application();
    const { browser, idToken } = await signedInToApplication(config);
    const page = await browser.send('GET', endSessionUrl({ id_token_hint: idToken }));
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.body)![1]!;
    const confirmed = await browser.send('POST', '/oidc/session/end/confirm', { xsrf, logout: 'yes' });
    expect(confirmed.status).toBe(303);
    expect(new URL(confirmed.location!).pathname).toBe('/oidc/session/end/success');
    const done = await browser.send('GET', confirmed.location!);
    expect(done.status).toBe(200);
    expectOurPage(done, 'You have signed out');
  });
});
