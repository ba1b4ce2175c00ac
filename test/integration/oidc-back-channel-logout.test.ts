/**
 * Signing a person out of every application (issue #13 point 5; docs/oidc.md#signing-out-of-applications), end to
 * end over HTTP against a listening server, on SQLite and PostgreSQL. A relying party (a node:http server here)
 * registered with a back-channel logout URI signs the person in with the authorization code flow (openid-client 6,
 * PKCE, offline_access); then each trigger — Sign out everywhere, disabling the user, `session revoke`,
 * `user reset-methods`, a push fraud report — must deliver it an OpenID Connect Back-Channel Logout 1.0 logout
 * token, and leave its refresh token refused and its access token inactive.
 */
import type { FastifyInstance } from 'fastify';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oauth from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplayCache, validateLogoutToken } from '../../examples/mail-app/logout-token.js';
import { resetMethods, revokeSessions } from '../../src/app/admin.js';
import { disableUser } from '../../src/app/directory.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/app/oidc/sign-out.js';
import { listProviderSessionsForAccount } from '../../src/store/oidc-grants.js';
import { dialects, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { FetchBrowser as Browser } from '../helpers/fetch-browser.js';
import {
  application,
  BackChannelReceiver,
  cliActor as cli,
  eventually,
  PASSWORD,
  personWithTotp,
  signInToApplication,
  startOidcServer,
  type OidcServer,
} from '../helpers/oidc.js';

describe.each(dialects)('signing out of applications on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let origin: string;
  let issuer: URL;
  let config: oauth.Configuration;
  let clientId: string;
  const rp = new BackChannelReceiver();

  /** A person with a password and TOTP, signed in to the relying party through the code flow with offline_access. */
  async function signedInToApplication() {
    const person = await personWithTotp(ctx, origin);
    // offline_access needs prompt=consent (OpenID Connect Core 1.0 §11).
    const tokens = await signInToApplication(person, config, { scope: 'openid offline_access', prompt: 'consent' });
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.claims()!.sub).toBe(person.userId);
    const [session] = await listProviderSessionsForAccount(ctx.store.database.db, person.userId, new Date());
    const sid = session!.authorizations.find((authorization) => authorization.clientId === clientId)!.sid!;
    expect(sid).toBeTruthy();
    return { email: person.email, userId: person.userId, browser: person.browser, tokens, sid };
  }

  /**
   * The logout token the relying party received for this person, checked as an RP must (OpenID Connect Back-Channel
   * Logout 1.0 §2.6), then the tokens the application held: refused and inactive.
   */
  async function expectSignedOutOfApplication(person: Awaited<ReturnType<typeof signedInToApplication>>): Promise<string> {
    const jwks = createRemoteJWKSet(new URL(`${origin}/oidc/jwks`));
    const idSid = person.tokens.claims()!.sid;
    const token = await eventually(async () => {
      for (const candidate of rp.tokens) {
        const { payload } = await jwtVerify(candidate, jwks, { issuer: issuer.href, audience: clientId, typ: 'logout+jwt', algorithms: ['RS256'] });
        if (payload.sub === person.userId) return candidate;
      }
      return undefined;
    });
    // §2.6 step 3: the signature verifies with the OP's published key; iss and aud are the OP's and this client's.
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: issuer.href, audience: clientId, typ: 'logout+jwt' });
    // §2.4: explicitly typed so that it cannot be confused with an ID token.
    expect(protectedHeader.typ).toBe('logout+jwt');
    expect(decodeProtectedHeader(token).alg).toBe('RS256');
    // §2.4: the events claim with the back-channel logout member, whose value is an empty object.
    expect(payload.events).toEqual({ [BACKCHANNEL_LOGOUT_EVENT]: {} });
    // §2.4 / §2.6 step 7: a nonce is forbidden (it would let the token pass as an ID token).
    expect(payload).not.toHaveProperty('nonce');
    // §2.4: sub is the ID token's sub; sid is the provider session's id for this client (the ID token carries it
    // only when the client registers backchannel_logout_session_required, so it is compared with the stored one).
    expect(payload.sub).toBe(person.tokens.claims()!.sub);
    expect(payload.sid).toBe(person.sid);
    if (idSid) expect(payload.sid).toBe(idSid);
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(120);
    // The application's tokens are gone at the same time (RFC 7009 §2.1, RFC 7662 §2.2).
    await expect(oauth.refreshTokenGrant(config, person.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oauth.tokenIntrospection(config, person.tokens.access_token)).active).toBe(false);
    const sent = await eventually(async () => {
      const events = await ctx.store.audit.list({ subjectUserId: person.userId, type: 'oidc.backchannel-logout-sent' });
      return events.length ? events : undefined;
    });
    expect(JSON.parse(sent[0]!.details) as unknown).toMatchObject({ client_id: clientId });
    return token;
  }

  let server: OidcServer;
  beforeAll(async () => {
    await rp.start();
    server = await startOidcServer(dialect, { PUSH_MIN_INTERVAL: '1' });
    ({ ctx, app, origin, issuer } = server);
    ({ clientId, config } = await application(ctx, issuer, { firstParty: true, name: 'Ward rota', backChannelLogoutUri: rp.url }));
  });
  afterAll(async () => {
    await server?.close();
    await rp.stop();
  });

  it('advertises back-channel logout with sid (Back-Channel Logout 1.0 §2.1)', () => {
    expect(config.serverMetadata()).toMatchObject({ backchannel_logout_supported: true });
  });

  it('"Sign out everywhere" on Security info signs the person out of the application', async () => {
    const person = await signedInToApplication();
    await person.browser.send('GET', '/security-info/sign-out-everywhere');
    const answer = await person.browser.send('POST', '/security-info/sign-out-everywhere', {});
    expect(answer.location).toBe('/signed-out?everywhere=1');
    await expectSignedOutOfApplication(person);
  });

  it('disabling the user signs them out of the application', async () => {
    const person = await signedInToApplication();
    await disableUser(ctx, person.email, cli);
    await expectSignedOutOfApplication(person);
  });

  it('`session revoke` signs the person out of the application', async () => {
    const person = await signedInToApplication();
    await revokeSessions(ctx, person.email, cli);
    await expectSignedOutOfApplication(person);
  });

  it('`user reset-methods` signs the person out of the application', async () => {
    const person = await signedInToApplication();
    await resetMethods(ctx, person.email, cli);
    await expectSignedOutOfApplication(person);
  });

  it('a push fraud report ("No, it\'s not me") signs the person out of the application', async () => {
    const person = await signedInToApplication();
    // Pair a phone from Security info (in the browser still signed in to Portcullis) and approve its test request.
    await person.browser.send('GET', '/security-info/add');
    const page = await person.browser.send('POST', '/security-info/add', { method: 'push' });
    const pairUrl = /href="(http:\/\/[^"]+\/authenticator\/#pair=[A-Za-z0-9_-]+)"/.exec(page.body)![1]!;
    const enrolmentId = /data-next="\/security-info\/add\/app\/([^"]+)"/.exec(page.body)![1]!;
    const device = await TestDevice.create(app);
    expect((await device.pair(pairUrl, 'Ward phone')).statusCode).toBe(201);
    const status = await person.browser.send('GET', `/security-info/add/app/${enrolmentId}`);
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(status.body)![1]!;
    const [test] = await device.pending();
    expect((await device.decide(test!.id, 'approve', number)).statusCode).toBe(200);
    await ctx.store.users.setDefaultMethod(person.userId, device.deviceId, ctx.clock());
    // Someone else, with the password, asks for a push (after PUSH_MIN_INTERVAL); the person reports it.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const attacker = new Browser(origin);
    await attacker.send('GET', '/sign-in');
    await attacker.send('POST', '/sign-in', { email: person.email });
    await attacker.send('GET', '/sign-in/password');
    expect((await attacker.send('POST', '/sign-in/password', { password: PASSWORD })).location).toBe('/sign-in/verify');
    await attacker.send('GET', '/sign-in/verify');
    const [challenge] = await device.pending();
    expect((await device.decide(challenge!.id, 'report')).json()).toEqual({ status: 'reported' });
    const logoutToken = await expectSignedOutOfApplication(person);
    // The sample application's validator (examples/mail-app, §2.6 step by step) accepts it too, and only once.
    const checks = { issuer: issuer.href, clientId, jwks: createRemoteJWKSet(new URL(`${origin}/oidc/jwks`)), replay: new ReplayCache() };
    await expect(validateLogoutToken(logoutToken, checks)).resolves.toMatchObject({ sub: person.userId, sid: person.sid });
    await expect(validateLogoutToken(logoutToken, checks)).rejects.toThrow(/jti replayed/);
    // The Portcullis session of that browser ended too.
    expect((await person.browser.send('GET', '/security-info')).status).toBe(303);
  });

  it('revokes the tokens even when the application does not accept the logout, and audits the failure after one retry', async () => {
    const person = await signedInToApplication();
    rp.status = 500;
    try {
      await revokeSessions(ctx, person.email, cli);
    } finally {
      rp.status = 200;
    }
    await expect(oauth.refreshTokenGrant(config, person.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oauth.tokenIntrospection(config, person.tokens.access_token)).active).toBe(false);
    const failed = await ctx.store.audit.list({ subjectUserId: person.userId, type: 'oidc.backchannel-logout-failed' });
    expect(failed).toHaveLength(1);
    expect(JSON.parse(failed[0]!.details) as unknown).toMatchObject({ client_id: clientId, attempts: 2, error: 'status 500' });
  });
});
