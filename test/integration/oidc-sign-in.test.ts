/**
 * Applications signing people in through Portcullis (issue #13, third step), end to end over HTTP against a
 * listening server, on SQLite and PostgreSQL: a cookie-keeping fetch client is the person's browser, and
 * openid-client 6 is the application (authorization code with PKCE, RFC 7636).
 */
import type { FastifyInstance } from 'fastify';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { addClient } from '../../src/app/oidc/clients.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { ACR } from '../../src/core/oidc/acr.js';
import { buildApp } from '../../src/server/app.js';
import { freePort, listen } from '../helpers/browser.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { FetchBrowser as Browser, type FetchAnswer as Answer } from '../helpers/fetch-browser.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const cli = { kind: 'cli' as const, name: 'test' };
const REDIRECT = 'http://127.0.0.1:8400/callback';

describe.each(dialects)('signing in to applications on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let origin: string;
  let issuer: URL;
  let n = 0;

  /** A person with a password and an authenticator app; each `code()` is the next TOTP step's (±1 drift: never sleep). */
  async function personWithTotp(): Promise<{ email: string; userId: string; browser: Browser; code: () => string }> {
    n += 1;
    const email = `person${n}@example.org`;
    await addUser(ctx, { email, displayName: `Person ${n}`, organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    const user = (await ctx.store.users.findByEmail(email))!;
    const browser = new Browser(origin);
    await browser.send('GET', '/sign-in');
    await browser.send('POST', '/sign-in', { email });
    await browser.send('GET', '/sign-in/password');
    await browser.send('POST', '/sign-in/password', { password: PASSWORD });
    await browser.send('GET', '/security-info/add');
    const chosen = await browser.send('POST', '/security-info/add', { method: 'totp' });
    const page = await browser.send('GET', chosen.location!);
    const key = /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.body)![1]!.replace(/ /g, '');
    let step = Math.floor(Date.now() / 30_000);
    const code = () => generateTotp(key, new Date(step++ * 30_000));
    const added = await browser.send('POST', chosen.location!, { code: code() });
    expect(added.location).toBe('/security-info?done=added');
    // A new browser: the person is not signed in to Portcullis yet.
    return { email, userId: user.id, browser: new Browser(origin), code };
  }

  /** The sign-in pages, from the email page the interaction sent the browser to, back to the interaction. */
  async function signIn(browser: Browser, email: string, code: string, at: Answer & { url: string }): Promise<Answer & { url: string }> {
    expect(new URL(at.url, origin).pathname).toBe('/sign-in');
    const returnTo = new URL(at.url, origin).searchParams.get('returnTo')!;
    expect(returnTo).toMatch(/^\/oidc-interaction\/[\w-]+$/);
    await browser.send('POST', '/sign-in', { email, returnTo });
    await browser.send('GET', '/sign-in/password');
    expect((await browser.send('POST', '/sign-in/password', { password: PASSWORD })).location).toBe('/sign-in/verify');
    await browser.send('GET', '/sign-in/verify');
    const verified = await browser.send('POST', '/sign-in/verify', { code });
    expect(verified.location).toBe(returnTo);
    return browser.follow(verified.location!);
  }

  async function application(options: { firstParty: boolean }) {
    const { client, secret } = await addClient(
      ctx,
      { name: options.firstParty ? 'Staff rota' : 'Timesheets', redirectUris: [REDIRECT], postLogoutRedirectUris: [], confidential: true, firstParty: options.firstParty, service: false, scopes: [] },
      cli,
    );
    const config = await oauth.discovery(issuer, client.clientId, undefined, oauth.ClientSecretBasic(secret!), { execute: [oauth.allowInsecureRequests] });
    return { clientId: client.clientId, config };
  }

  /** Starts an authorization request (PKCE S256, state); `redeem` finishes it at the token endpoint. */
  async function authorize(config: oauth.Configuration, parameters: Record<string, string> = {}) {
    const verifier = oauth.randomPKCECodeVerifier();
    const state = oauth.randomState();
    const url = oauth.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid email profile',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...parameters,
    });
    const redeem = (callback: string) => oauth.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: verifier, expectedState: state });
    return { url: url.href, redeem };
  }

  const atApplication = (answer: Answer) => answer.status === 303 && (answer.location ?? '').startsWith(REDIRECT);
  const errorAt = (answer: Answer) => new URL(answer.location!).searchParams.get('error');

  beforeAll(async () => {
    const port = await freePort();
    origin = `http://localhost:${port}`;
    ctx = await createTestContext(dialect, { PUBLIC_URL: origin, SIGN_IN_LOCKOUT_THRESHOLD: '100' });
    await addOrganisation(ctx, 'Test Trust', actor);
    app = await buildApp(ctx);
    await listen(app, port);
    issuer = new URL(`${origin}/oidc`);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('advertises the acr values and claims it gives (OpenID Connect Discovery 1.0 §3)', async () => {
    const { config } = await application({ firstParty: true });
    const metadata = config.serverMetadata();
    expect(metadata.acr_values_supported).toEqual([ACR.password, ACR.mfa, ACR.appPush]);
    expect(metadata.claims_supported).toEqual(expect.arrayContaining(['sub', 'email', 'email_verified', 'name', 'acr', 'auth_time']));
  });

  it('signs a person in with password and TOTP: a verified ID token with sub, amr, acr and auth_time; a second authorization goes straight back', async () => {
    const person = await personWithTotp();
    const { config } = await application({ firstParty: true });
    const first = await authorize(config);
    const started = await person.browser.follow(first.url);
    const before = Math.floor(Date.now() / 1000);
    const back = await signIn(person.browser, person.email, person.code(), started);
    expect(atApplication(back)).toBe(true);
    const tokens = await first.redeem(back.location!);
    // openid-client verified the signature against /oidc/jwks; so does jose, explicitly.
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token!, createRemoteJWKSet(new URL(`${origin}/oidc/jwks`)), { issuer: issuer.href, audience: config.clientMetadata().client_id });
    expect(protectedHeader.alg).toBe('RS256');
    // OpenID Connect Core 1.0 §2: sub is the stable user id, never the email.
    expect(payload.sub).toBe(person.userId);
    // RFC 8176 §2: password, one-time password, more than one factor.
    expect(payload.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(payload.acr).toBe(ACR.mfa);
    expect(payload.auth_time).toBeGreaterThanOrEqual(before - 2);
    expect(payload.auth_time).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    const info = await oauth.fetchUserInfo(config, tokens.access_token, person.userId);
    // Added with a password by an administrator: the address was never proved (docs/oidc.md#claims).
    expect(info).toMatchObject({ sub: person.userId, email: person.email, email_verified: false, name: `Person ${n}` });

    // Signed in already, with a strong enough session: straight back to the application, no page.
    const second = await authorize(config);
    const again = await person.browser.follow(second.url);
    expect(atApplication(again)).toBe(true);
    const secondTokens = await second.redeem(again.location!);
    expect(secondTokens.claims()!.sub).toBe(person.userId);
    expect(secondTokens.claims()!.auth_time).toBe(payload.auth_time);

    // OpenID Connect Core 1.0 §3.1.2.1 max_age=0: a new sign-in, even though signed in.
    const fresh = await authorize(config, { max_age: '0' });
    const page = await person.browser.follow(fresh.url);
    expect(new URL(page.url, origin).pathname).toBe('/sign-in');
    expect(page.body).toContain('name="email"');
    // The password is asked again (the second factor would need the next TOTP step, 30 s away: not waited for).
    await person.browser.send('POST', '/sign-in', { email: person.email, returnTo: new URL(page.url, origin).searchParams.get('returnTo')! });
    expect((await person.browser.send('GET', '/sign-in/password')).body).toContain('name="password"');
  });

  it('answers prompt=none without a session with login_required (OpenID Connect Core 1.0 §3.1.2.6)', async () => {
    const { config } = await application({ firstParty: true });
    const request = await authorize(config, { prompt: 'none' });
    const answer = await new Browser(origin).follow(request.url);
    expect(atApplication(answer)).toBe(true);
    expect(errorAt(answer)).toBe('login_required');
  });

  it('says why an acr cannot be met, then ends with unmet_authentication_requirements, never a weaker token (RFC 9470 §3)', async () => {
    const person = await personWithTotp();
    const { config } = await application({ firstParty: true });
    const request = await authorize(config, { acr_values: ACR.appPush });
    const started = await person.browser.follow(request.url);
    const page = await signIn(person.browser, person.email, person.code(), started);
    expect(page.status).toBe(200);
    expect(page.body).toContain('You cannot sign in to Staff rota yet');
    expect(page.body).toContain('href="/security-info/add"');
    const uid = /action="\/oidc-interaction\/([\w-]+)\/unmet"/.exec(page.body)![1]!;
    const ended = await person.browser.send('POST', `/oidc-interaction/${uid}/unmet`, {});
    const back = await person.browser.follow(ended.location!);
    expect(atApplication(back)).toBe(true);
    expect(errorAt(back)).toBe('unmet_authentication_requirements');

    // What can be met is met, and the ID token says the class asked.
    const mfa = await authorize(config, { acr_values: `${ACR.appPush} ${ACR.mfa}` });
    const answer = await person.browser.follow(mfa.url);
    expect(atApplication(answer)).toBe(true);
    expect((await mfa.redeem(answer.location!)).claims()!.acr).toBe(ACR.mfa);
  });

  it('asks consent for a third-party application once, and forgets it when the person removes it on My account', async () => {
    const person = await personWithTotp();
    const { config } = await application({ firstParty: false });
    // offline_access needs prompt=consent (OpenID Connect Core 1.0 §11).
    const request = await authorize(config, { scope: 'openid email offline_access', prompt: 'consent' });
    const consent = await signIn(person.browser, person.email, person.code(), await person.browser.follow(request.url));
    expect(consent.status).toBe(200);
    expect(consent.body).toContain('Allow Timesheets to use your Portcullis account?');
    expect(consent.body).toContain('see your email address');
    const uid = /action="\/oidc-interaction\/([\w-]+)\/consent"/.exec(consent.body)![1]!;
    const allowed = await person.browser.send('POST', `/oidc-interaction/${uid}/consent`, { decision: 'allow' });
    const back = await person.browser.follow(allowed.location!);
    expect(atApplication(back)).toBe(true);
    const tokens = await request.redeem(back.location!);
    expect(tokens.refresh_token).toBeTruthy();

    // Remembered: the next sign-in does not ask.
    const next = await authorize(config, { scope: 'openid email' });
    expect(atApplication(await person.browser.follow(next.url))).toBe(true);

    // My account lists it; removing it revokes the grant and its tokens.
    const account = await person.browser.send('GET', '/account');
    expect(account.body).toContain('Timesheets');
    const grantId = /name="grantId" value="([^"]+)"/.exec(account.body)![1]!;
    expect((await person.browser.send('POST', '/account/applications/remove', { grantId })).location).toBe('/account?removed=1');
    expect((await person.browser.send('GET', '/account')).body).not.toContain('name="grantId"');
    await expect(oauth.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oauth.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    const asked = await authorize(config, { scope: 'openid email' });
    const page = await person.browser.follow(asked.url);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Allow Timesheets');

    // Cancel ends the request with access_denied (OpenID Connect Core 1.0 §3.1.2.6).
    const cancelUid = /action="\/oidc-interaction\/([\w-]+)\/consent"/.exec(page.body)![1]!;
    const cancelled = await person.browser.send('POST', `/oidc-interaction/${cancelUid}/consent`, { decision: 'cancel' });
    expect(errorAt(await person.browser.follow(cancelled.location!))).toBe('access_denied');
  });

  it('refuses a reused code and revokes what it issued (RFC 6749 §4.1.2); a reused refresh token revokes the grant (RFC 9700 §4.14.2)', async () => {
    const person = await personWithTotp();
    const { config } = await application({ firstParty: true });
    const request = await authorize(config, { scope: 'openid offline_access', prompt: 'consent' });
    const back = await signIn(person.browser, person.email, person.code(), await person.browser.follow(request.url));
    const tokens = await request.redeem(back.location!);
    await expect(request.redeem(back.location!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oauth.tokenIntrospection(config, tokens.access_token)).active).toBe(false);

    const second = await authorize(config, { scope: 'openid offline_access', prompt: 'consent' });
    const fresh = await second.redeem((await person.browser.follow(second.url)).location!);
    const rotated = await oauth.refreshTokenGrant(config, fresh.refresh_token!);
    await expect(oauth.refreshTokenGrant(config, fresh.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The whole grant went: the rotated refresh token and its access token too.
    await expect(oauth.refreshTokenGrant(config, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oauth.tokenIntrospection(config, rotated.access_token)).active).toBe(false);
  });

  it.each([
    ['an unregistered redirect_uri', 'https://evil.example/callback'],
    ['a prefix of the registered one', 'http://127.0.0.1:8400/callback/more'],
  ])('answers %s with an error page, never a redirect (RFC 6749 §3.1.2.4, §4.1.2.1)', async (_what, redirectUri) => {
    const { config } = await application({ firstParty: true });
    const request = await authorize(config, { redirect_uri: redirectUri });
    const answer = await new Browser(origin).send('GET', request.url);
    expect(answer.status).toBe(400);
    expect(answer.location).toBeNull();
    expect(answer.contentType).toMatch(/^text\/html/);
    expect(answer.body).toContain('redirect_uri');
  });
});
