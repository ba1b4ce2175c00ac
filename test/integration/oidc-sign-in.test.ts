/**
 * Applications signing people in through Portcullis (issue #13, third step), end to end over HTTP against a
 * listening server, on SQLite and PostgreSQL: a cookie-keeping fetch client is the person's browser, and
 * openid-client 6 is the application (authorization code with PKCE, RFC 7636).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { sql } from 'kysely';
import * as oauth from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPolicyText } from '../../src/app/policy.js';
import { ACR } from '../../src/core/oidc/acr.js';
import { dialects, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { FetchBrowser as Browser } from '../helpers/fetch-browser.js';
import {
  application as registerApplication,
  atApplication,
  authorize,
  cliActor as cli,
  errorAt,
  personWithTotp as newPersonWithTotp,
  signIn,
  startOidcServer,
  type ApplicationOptions,
  type OidcServer,
} from '../helpers/oidc.js';


describe.each(dialects)('signing in to applications on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let origin: string;
  let issuer: URL;
  const personWithTotp = () => newPersonWithTotp(ctx, origin);
  const application = (options: ApplicationOptions) => registerApplication(ctx, issuer, options);

  let server: OidcServer;
  beforeAll(async () => {
    server = await startOidcServer(dialect, { PUSH_MIN_INTERVAL: '1' });
    ({ ctx, app, origin, issuer } = server);
  });
  afterAll(async () => server?.close());

  it('advertises the acr values and claims it gives (OpenID Connect Discovery 1.0 §3)', async () => {
    const { config } = await application({ firstParty: true });
    const metadata = config.serverMetadata();
    // Passkeys (issue #14) reach the strongest class, so discovery now lists it.
    expect(metadata.acr_values_supported).toEqual([ACR.password, ACR.mfa, ACR.appPush, ACR.phishingResistant]);
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
    expect(info).toMatchObject({ sub: person.userId, email: person.email, email_verified: false, name: person.displayName });

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

  it('signs ID tokens with ES256 for a client registered with --id-token-alg ES256, RS256 for the others, each verified against the JWKS', async () => {
    const person = await personWithTotp();
    const jwks = createRemoteJWKSet(new URL(`${origin}/oidc/jwks`));
    const { config } = await application({ firstParty: true, idTokenAlg: 'ES256' });
    const request = await authorize(config, { scope: 'openid offline_access', prompt: 'consent' });
    const back = await signIn(person.browser, person.email, person.code(), await person.browser.follow(request.url));
    const tokens = await request.redeem(back.location!);
    const { protectedHeader } = await jwtVerify(tokens.id_token!, jwks, { issuer: issuer.href, audience: config.clientMetadata().client_id });
    expect(protectedHeader.alg).toBe('ES256');
    // And the ID token a refresh returns.
    const refreshed = await oauth.refreshTokenGrant(config, tokens.refresh_token!);
    expect((await jwtVerify(refreshed.id_token!, jwks, { issuer: issuer.href })).protectedHeader.alg).toBe('ES256');
    // The discovery document says both are offered (OpenID Connect Discovery 1.0 §3).
    const discovery = (await (await fetch(`${issuer.href}/.well-known/openid-configuration`)).json()) as { id_token_signing_alg_values_supported: string[] };
    expect(discovery.id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'ES256']));
  });

  it('steps a code session up to app-push with a push, offered first and alone (RFC 9470 §3; OpenID Connect Core 1.0 §3.1.2.1)', async () => {
    const person = await personWithTotp();
    const { config } = await application({ firstParty: true });
    const first = await authorize(config);
    const back = await signIn(person.browser, person.email, person.code(), await person.browser.follow(first.url));
    expect((await first.redeem(back.location!)).claims()!.acr).toBe(ACR.mfa);

    // Pair a phone on Security info (the sign-in's second factor is recent) and approve its test request.
    await person.browser.send('GET', '/security-info/add');
    const added = await person.browser.send('POST', '/security-info/add', { method: 'push' });
    const pairUrl = /href="(http:\/\/[^"]+\/authenticator\/#pair=[A-Za-z0-9_-]+)"/.exec(added.body)![1]!;
    const enrolmentId = /data-next="\/security-info\/add\/app\/([^"]+)"/.exec(added.body)![1]!;
    const device = await TestDevice.create(app);
    expect((await device.pair(pairUrl, 'Ward phone')).statusCode).toBe(201);
    const pairing = await person.browser.send('GET', `/security-info/add/app/${enrolmentId}`);
    const [test] = await device.pending();
    expect((await device.decide(test!.id, 'approve', /Number: <\/span>(\d+)/.exec(pairing.body)![1]!)).statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // PUSH_MIN_INTERVAL

    // The application asks for app-push: a page of ours, then a step-up that starts with the push.
    const request = await authorize(config, { acr_values: ACR.appPush });
    const confirm = await person.browser.follow(request.url);
    expect(confirm.body).toContain('Confirm it is you');
    const stepUp = /href="(\/sign-in\/step-up\?[^"]+)"/.exec(confirm.body)![1]!.replaceAll('&amp;', '&');
    expect(new URL(stepUp, origin).searchParams.get('acr')).toBe(ACR.appPush);
    expect((await person.browser.send('GET', stepUp)).location).toBe('/sign-in/verify');
    const waiting = await person.browser.send('GET', '/sign-in/verify');
    expect(waiting.body).toContain('Approve the sign-in on your phone');
    // "Sign in another way" offers nothing that would not reach app-push (no authenticator-app code).
    expect((await person.browser.send('GET', '/sign-in/other')).body).not.toContain('value="' + (await ctx.store.methods.activeForUser(person.userId)).find((m) => m.kind === 'totp')!.id + '"');
    const [challenge] = await device.pending();
    const number = /Number: <\/span>(\d+)/.exec(waiting.body)![1]!;
    expect((await device.decide(challenge!.id, 'approve', number)).statusCode).toBe(200);
    const done = await person.browser.send('POST', '/sign-in/verify', {});
    const at = await person.browser.follow(done.location!);
    expect(atApplication(at)).toBe(true);
    const claims = (await request.redeem(at.location!)).claims()!;
    expect(claims.acr).toBe(ACR.appPush);
    expect(claims.amr).toEqual(['pwd', 'otp', 'swk', 'mfa']);
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
    const back = await person.browser.next(ended);
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
    // From our own form, a page that continues by itself: the form's redirect chain ends here, so our
    // `form-action 'self'` never meets the application's redirect URI (CSP Level 3 §6.4.2).
    expect(allowed.status).toBe(200);
    expect(allowed.location).toBeNull();
    expect(allowed.headers.get('content-security-policy')).toContain("form-action 'self'");
    expect(allowed.body).toMatch(new RegExp(`<meta http-equiv="refresh" content="0;url=${issuer.href}/auth/[\\w-]+">`));
    const back = await person.browser.next(allowed);
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
    expect(errorAt(await person.browser.next(cancelled))).toBe('access_denied');
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

  it('writes a refresh grant in one transaction: when its audit event cannot be written, nothing is, and the same refresh token works after', async () => {
    const person = await personWithTotp();
    const { config } = await application({ firstParty: true });
    const request = await authorize(config, { scope: 'openid offline_access', prompt: 'consent' });
    const back = await signIn(person.browser, person.email, person.code(), await person.browser.follow(request.url));
    const tokens = await request.redeem(back.location!);
    // The audit log refuses the token-issued event once (as a full disk would).
    const db = ctx.store.database.db;
    if (dialect === 'sqlite') {
      await sql`create trigger refuse_token_audit before insert on audit_events when new.type = 'oidc.token-issued' begin select raise(abort, 'disk full'); end`.execute(db);
    } else {
      await sql`create function refuse_token_audit() returns trigger language plpgsql as $$ begin if new.type = 'oidc.token-issued' then raise exception 'disk full'; end if; return new; end $$`.execute(db);
      await sql`create trigger refuse_token_audit before insert on audit_events for each row execute function refuse_token_audit()`.execute(db);
    }
    try {
      await expect(oauth.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toBeTruthy();
    } finally {
      await sql`drop trigger refuse_token_audit${dialect === 'postgres' ? sql` on audit_events` : sql``}`.execute(db);
      if (dialect === 'postgres') await sql`drop function refuse_token_audit()`.execute(db);
    }
    // Not consumed (the consume was rolled back with the rest), so not a replay: it works, and rotates.
    const rotated = await oauth.refreshTokenGrant(config, tokens.refresh_token!);
    expect(rotated.refresh_token).toBeTruthy();
    expect((await oauth.tokenIntrospection(config, rotated.access_token)).active).toBe(true);
    // Two refreshes racing with one token: one wins, the other is refused (never both).
    const results = await Promise.allSettled([oauth.refreshTokenGrant(config, rotated.refresh_token!), oauth.refreshTokenGrant(config, rotated.refresh_token!)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!.reason).toMatchObject({ error: 'invalid_grant' });
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
  describe('a requirement that targets an application (issue #13 point 4: client:KEY)', () => {
    const DAY_MS = 86_400_000;
    const day = (days: number) => new Date(Date.now() + days * DAY_MS).toISOString().slice(0, 10);

    /** Applies a policy of every method and this one requirement (dates in UTC). */
    async function requireForApplication(requirement: Record<string, unknown>): Promise<void> {
      const methods = { sms: { enabled: true }, voice: { enabled: true }, totp: { enabled: true }, push: { enabled: true }, tap: { enabled: true } };
      await applyPolicyText(ctx, JSON.stringify({ version: 1, timeZone: 'UTC', methods, requirements: [requirement] }), cli, 'client requirement test', { allowStranded: true });
    }

    /** A push method beside the person's authenticator app, as pairing leaves it. */
    async function addPush(userId: string): Promise<void> {
      const id = randomUUID();
      const now = new Date();
      await ctx.store.methods.insertPending({ id, userId, kind: 'push', label: 'Phone', phoneE164: null, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 600_000) });
      expect(await ctx.store.methods.activate(userId, id, now, null)).toBe(true);
      // The authenticator app stays the default, so that sign-in asks for a code.
      const totp = (await ctx.store.methods.activeForUser(userId)).find((method) => method.kind === 'totp')!;
      await ctx.store.users.setDefaultMethod(userId, totp.id, now);
    }

    const portalKey = () => `admin-portal-${randomUUID().slice(0, 8)}`;

    it('in force: push asks a person with push to step up, and one with only an app to set it up, ending in unmet_authentication_requirements (RFC 9470 §3); another application is signed in to with mfa', async () => {
      const portal = await application({ firstParty: true, name: 'Admin portal', key: portalKey() });
      const other = await application({ firstParty: true });
      await requireForApplication({ id: 'portal-push', include: [`client:${portal.key}`], strength: 'app-push', effective: day(-1) });

      // TOTP and push: signing in with a code is not enough for the portal; the person is asked to step up.
      const withPush = await personWithTotp();
      await addPush(withPush.userId);
      const started = await withPush.browser.follow((await authorize(portal.config)).url);
      const confirm = await signIn(withPush.browser, withPush.email, withPush.code(), started);
      expect(confirm.status).toBe(200);
      expect(confirm.body).toContain('/sign-in/step-up?returnTo=');
      expect(atApplication(confirm)).toBe(false);

      // The same Portcullis session signs in to another application at once, with mfa.
      const elsewhere = await authorize(other.config);
      const straight = await withPush.browser.follow(elsewhere.url);
      expect(atApplication(straight)).toBe(true);
      expect((await elsewhere.redeem(straight.location!)).claims()!.acr).toBe(ACR.mfa);
      // The adapter keeps the grant's client as a column: the report counts an application's people by it.
      const grants = await ctx.store.database.db.selectFrom('oidc_artefacts').select('client_id').where('model', '=', 'Grant').where('account_id', '=', withPush.userId).execute();
      expect(grants.map((g) => g.client_id)).toEqual([other.clientId]);

      // Now the provider has a session (acr mfa) too: it is not reused for the portal, which still asks to step up.
      const again = await withPush.browser.follow((await authorize(portal.config)).url);
      expect(atApplication(again)).toBe(false);
      expect(again.body).toContain('/sign-in/step-up?returnTo=');

      // Only an authenticator app: the page says what is needed and where to set it up, then ends unmet.
      const appOnly = await personWithTotp();
      const page = await signIn(appOnly.browser, appOnly.email, appOnly.code(), await appOnly.browser.follow((await authorize(portal.config)).url));
      expect(page.status).toBe(200);
      expect(page.body).toContain('You cannot sign in to Admin portal yet');
      expect(page.body).toContain('href="/security-info/add"');
      const uid = /action="\/oidc-interaction\/([\w-]+)\/unmet"/.exec(page.body)![1]!;
      const ended = await appOnly.browser.send('POST', `/oidc-interaction/${uid}/unmet`, {});
      const back = await appOnly.browser.next(ended);
      expect(atApplication(back)).toBe(true);
      expect(errorAt(back)).toBe('unmet_authentication_requirements');
    });

    it('before its effective date, and during its grace, it does not block', async () => {
      for (const requirement of [
        { effective: day(2) },
        { effective: day(-1), graceDays: 10 },
      ]) {
        const portal = await application({ firstParty: true, name: 'Admin portal', key: portalKey() });
        await requireForApplication({ id: 'portal-push', include: [`client:${portal.key}`], strength: 'app-push', ...requirement });
        const person = await personWithTotp();
        const request = await authorize(portal.config);
        const back = await signIn(person.browser, person.email, person.code(), await person.browser.follow(request.url));
        expect(atApplication(back), JSON.stringify(requirement)).toBe(true);
        expect((await request.redeem(back.location!)).claims()!.acr).toBe(ACR.mfa);
      }
    });

    it('report-only never blocks, but audits oidc.policy-requirement-unmet with the requirement', async () => {
      const portal = await application({ firstParty: true, name: 'Admin portal', key: portalKey() });
      await requireForApplication({ id: 'portal-push-trial', include: [`client:${portal.key}`], strength: 'app-push', effective: day(-1), mode: 'report-only' });
      const person = await personWithTotp();
      const request = await authorize(portal.config);
      const back = await signIn(person.browser, person.email, person.code(), await person.browser.follow(request.url));
      expect(atApplication(back)).toBe(true);
      expect((await request.redeem(back.location!)).claims()!.acr).toBe(ACR.mfa);
      const events = await ctx.store.audit.list({ subjectUserId: person.userId, type: 'oidc.policy-requirement-unmet', limit: 5 });
      expect(events).toHaveLength(1);
      expect(JSON.parse(events[0]!.details) as unknown).toMatchObject({ client_id: portal.clientId, requirement_ids: ['portal-push-trial'], mode: 'report-only' });
    });
  });
});
