/**
 * Passkeys and recovery codes through buildApp() and inject(), on SQLite and PostgreSQL (issue #14):
 * what the policy offers and refuses, the WebAuthn options the pages carry (WebAuthn L3 §5.4, §5.5,
 * §13.4.3), passwordless sign-in only where the policy allows it, and a registration campaign that
 * nudges people to a passkey. The ceremonies themselves run in Chromium (test/e2e/passkeys.e2e.test.ts)
 * and against captured responses (src/app/methods/passkey/webauthn.test.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { passkeyStrategy } from '../../src/app/methods/passkey/index.js';
import type { StoredCredential } from '../../src/app/methods/passkey/webauthn.js';
import { totpStrategy } from '../../src/app/methods/totp/index.js';
import { complianceRows, complianceSummary } from '../../src/app/compliance.js';
import { applyPolicyText, modelRefusal } from '../../src/app/policy.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';
import { assertionFor, newSoftwareCredential } from '../helpers/software-authenticator.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;

const policy = (extra: { passkey?: string; recovery?: string; campaigns?: string }) => `version: 1
methods:
  totp: { enabled: true }
  sms: { enabled: true }
  tap: { enabled: true }
${extra.passkey ?? '  passkey: { enabled: true }'}
${extra.recovery ?? "  'recovery-code': { enabled: true }"}
${extra.campaigns ?? ''}
`;

/** The JSON a page carries for the browser's WebAuthn call. */
function optionsIn(html: string, id: string): Record<string, unknown> {
  const match = new RegExp(`<script type="application/json" nonce="[^"]+" id="${id}">([^<]*)</script>`).exec(html);
  if (!match) throw new Error(`no ${id} in the page`);
  return JSON.parse(match[1]!) as Record<string, unknown>;
}

describe.each(dialects)('passkeys and recovery codes on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let n = 0;

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { PUBLIC_URL: 'http://localhost:8080', SIGN_IN_LOCKOUT_THRESHOLD: '100' });
    await addOrganisation(ctx, 'Test Trust', actor);
    app = await buildApp(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  const apply = (text: string) => applyPolicyText(ctx, text, actor, 'passkeys test');

  /** A person with a password and an authenticator app, signed in with both. */
  async function signedIn(): Promise<{ browser: TestBrowser; userId: string }> {
    n += 1;
    const email = `passkeys-${dialect}-${n}-${Date.now()}@example.org`;
    const { user } = await addUser(ctx, { email, displayName: `Person ${n}`, organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    const enrolment = await totpStrategy.beginEnrolment!(ctx, user, {}, { purpose: 'enrolment', binding: 'test', ip: '127.0.0.1' });
    await ctx.store.methods.activate(user.id, enrolment.methodId, ctx.clock(), null);
    const browser = new TestBrowser(app);
    const password = await browser.signIn(email, PASSWORD);
    expect(password.headers.location).toBe('/sign-in/verify');
    await browser.get('/sign-in/verify');
    const key = enrolment.totp!.key.replace(/\s+/g, '');
    const done = await browser.post('/sign-in/verify', { code: generateTotp(key, new Date()) });
    expect(done.statusCode).toBe(303);
    return { browser, userId: user.id };
  }

  it('offers a passkey and recovery codes on "Add sign-in method" where the policy enables them, and refuses them where it does not', async () => {
    await apply(policy({}));
    const { browser } = await signedIn();
    const page = await browser.get('/security-info/add');
    expect(page.body).toContain('value="passkey"');
    expect(page.body).toContain('value="recovery-codes"');

    await apply(policy({ passkey: '  passkey: { enabled: false }', recovery: "  'recovery-code': { enabled: false }" }));
    const without = await browser.get('/security-info/add');
    expect(without.body).not.toContain('value="passkey"');
    expect(without.body).not.toContain('value="recovery-codes"');
    // Chosen anyway: the policy's reason, and nothing is set up.
    const refused = await browser.post('/security-info/add', { method: 'recovery-codes' });
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('Your organisation does not allow Recovery codes');
    expect(await ctx.store.database.db.selectFrom('methods').select('id').where('kind', '=', 'recovery-code').execute()).toEqual([]);
  });

  it('sets up a passkey with creation options bound to this set-up: our RP ID, no attestation, the algorithm allow-list, a 5-minute ceremony (WebAuthn L3 §5.4)', async () => {
    await apply(policy({}));
    const { browser, userId } = await signedIn();
    await browser.get('/security-info/add');
    const chosen = await browser.post('/security-info/add', { method: 'passkey' });
    expect(chosen.headers.location).toMatch(/^\/security-info\/add\/[0-9a-f-]{36}$/);
    const page = await browser.get(chosen.headers.location!);
    expect(page.statusCode).toBe(200);
    const options = optionsIn(page.body, 'webauthn-options') as {
      rp: { id: string };
      user: { id: string; name: string };
      challenge: string;
      pubKeyCredParams: Array<{ alg: number }>;
      timeout: number;
      attestation: string;
      authenticatorSelection: { residentKey: string; userVerification: string };
    };
    expect(options.rp.id).toBe('localhost');
    // The user handle is not the account's id or its email (§14.6.1).
    expect(options.user.id).not.toContain(userId);
    expect(Buffer.from(options.challenge, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(options.pubKeyCredParams.map((p) => p.alg)).toEqual([-8, -7, -257]);
    expect(options.timeout).toBe(300_000);
    expect(options.attestation).toBe('none');
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'preferred', userVerification: 'preferred' });
    // No authenticatorAttachment: the browser offers this device's own passkeys, a phone nearby (hybrid)
    // and a security key alike (WebAuthn L3 §5.4.4).
    expect(options.authenticatorSelection).not.toHaveProperty('authenticatorAttachment');
    // A new page, a new challenge: each is single-use.
    expect(optionsIn((await browser.get(chosen.headers.location!)).body, 'webauthn-options').challenge).not.toBe(options.challenge);

    // A response that is not a credential is refused with the reason, and nothing is activated.
    const refused = await browser.post(chosen.headers.location!, { name: 'Laptop', credential: '{"id":"x","response":{}}' });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('Your passkey could not be checked');
    expect((await ctx.store.methods.activeForUser(userId)).map((m) => m.kind)).toEqual(['totp']);
    const unnamed = await browser.post(chosen.headers.location!, { name: '', credential: '{}' });
    expect(unnamed.statusCode).toBe(400);
    expect(unnamed.body).toContain('Enter a name of 1 to 60');
  });

  it('offers passwordless sign-in on the email page only where the policy allows it (settings.passwordless)', async () => {
    await apply(policy({}));
    const open = await new TestBrowser(app).get('/sign-in');
    const options = optionsIn(open.body, 'webauthn-passwordless-options') as { allowCredentials?: unknown[]; userVerification: string; rpId: string };
    // Discoverable credentials: no list of credentials, so the page names nobody (§5.5).
    expect(options.allowCredentials ?? []).toEqual([]);
    expect(options.rpId).toBe('localhost');
    expect(open.body).toContain('autocomplete="username webauthn"');

    await apply(policy({ passkey: '  passkey: { enabled: true, settings: { passwordless: false } }' }));
    const browser = new TestBrowser(app);
    const closed = await browser.get('/sign-in');
    expect(closed.body).not.toContain('Sign in with a passkey');
    const before = await ctx.store.audit.list({ limit: 1 });
    const refused = await browser.post('/sign-in/passwordless', { credential: '{"id":"AAAA","response":{"clientDataJSON":"e30"}}', returnTo: '/account' });
    expect(refused.statusCode).toBe(400);
    expect(refused.headers['set-cookie'] ?? '').not.toContain('portcullis-session');
    expect(await ctx.store.audit.list({ limit: 1 })).toEqual(before);
  });

  it('nudges people to a passkey with a registration campaign, whose "Set it up now" opens the passkey set-up', async () => {
    await apply(
      policy({
        campaigns: `campaigns:
  - id: passkeys-for-all
    name: Set up a passkey
    include: [all]
    method: passkey
    snoozeDays: 1
    maxSnoozes: 2`,
      }),
    );
    n += 1;
    const email = `campaign-${dialect}-${n}-${Date.now()}@example.org`;
    const { user } = await addUser(ctx, { email, displayName: 'Campaign', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    const enrolment = await totpStrategy.beginEnrolment!(ctx, user, {}, { purpose: 'enrolment', binding: 'test', ip: '127.0.0.1' });
    await ctx.store.methods.activate(user.id, enrolment.methodId, ctx.clock(), null);
    const browser = new TestBrowser(app);
    await browser.signIn(email, PASSWORD);
    await browser.get('/sign-in/verify');
    const done = await browser.post('/sign-in/verify', { code: generateTotp(enrolment.totp!.key.replace(/\s+/g, ''), new Date()) });
    expect(done.headers.location).toMatch(/^\/security-info\/campaign\?/);
    const interrupt = await browser.get(done.headers.location!);
    expect(interrupt.body).toContain('passkey');
    const now = await browser.post('/security-info/campaign', { method: 'passkey', campaign: 'passkeys-for-all', returnTo: '/account' });
    expect(now.headers.location).toMatch(/^\/security-info\/add\/[0-9a-f-]{36}$/);
    const page = await browser.get(now.headers.location!);
    expect(page.body).toContain('Add a passkey');
  });

  it('counts a strength with a model list by each person’s models, in the report and its rows, and refuses setting up another model', async () => {
    const keys = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';
    const synced = 'ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4';
    await apply(`version: 1
timeZone: UTC
methods:
  totp: { enabled: true }
  passkey: { enabled: true }
strengths:
  admin-security-keys: { methods: [passkey], models: { passkey: [${keys}] } }
requirements:
  - id: admins-keys
    name: Global administrators use a security key
    include: ['role:global-admin']
    strength: admin-security-keys
    effective: 2026-01-01
`);
    const tag = `${dialect}-${Date.now()}`;
    const admin = async (email: string, model: string) => {
      const { user } = await addUser(ctx, { email, displayName: email, organisation: 'Test Trust', roles: [{ role: 'global-admin', organisations: [] }], password: PASSWORD }, actor);
      const id = `${model.slice(0, 8)}-${Math.random().toString(16).slice(2, 6)}-4000-8000-${Date.now().toString(16).padStart(12, '0').slice(-12)}`;
      await ctx.store.methods.insertPending({ id, userId: user.id, kind: 'passkey', label: 'Key', phoneE164: null, secretSealed: null, now: ctx.clock(), pendingExpiresAt: new Date(Date.now() + 60_000) });
      await ctx.store.methods.activate(user.id, id, ctx.clock(), null, { data: '{}', lookupKey: `cred-${id}`, model });
      return user;
    };
    const withKey = await admin(`key-${tag}@example.org`, keys);
    const withSynced = await admin(`synced-${tag}@example.org`, synced);
    const summary = await complianceSummary(ctx);
    const requirement = summary.requirements.find((r) => r.id === 'admins-keys')!;
    expect(requirement.byState.compliant).toBe(1);
    expect(requirement.byState['non-compliant']).toBe(1);
    const rows = new Map<string, string>();
    for await (const row of complianceRows(ctx)) rows.set(row.email, row.state);
    expect(rows.get(withKey.email)).toBe('compliant');
    expect(rows.get(withSynced.email)).toBe('non-compliant');
    // Setting up a passkey of an unlisted model is refused for them, with the requirement's name.
    expect(await modelRefusal(ctx, withSynced, 'passkey', synced)).toBe('Global administrators use a security key');
    expect(await modelRefusal(ctx, withSynced, 'passkey', keys)).toBeNull();
  });

  it('refuses a used challenge, and a signature counter that went backwards as a clone signal, audited and emailed (WebAuthn L3 §6.1.1, §13.4.3); signs in without a password', async () => {
    await apply(policy({}));
    n += 1;
    const email = `counter-${dialect}-${n}-${Date.now()}@example.org`;
    const { user } = await addUser(ctx, { email, displayName: 'Counter', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    const credential = newSoftwareCredential(randomBytes(16).toString('base64url'));
    const stored: StoredCredential = { id: credential.id, publicKey: credential.publicKey, counter: 0, transports: ['internal'], aaguid: '00000000-0000-0000-0000-000000000000', algorithm: -7, backupEligible: false, backedUp: false, userVerified: true };
    const methodId = randomUUID();
    await ctx.store.methods.insertPending({ id: methodId, userId: user.id, kind: 'passkey', label: 'Laptop', phoneE164: null, secretSealed: null, now: ctx.clock(), pendingExpiresAt: new Date(Date.now() + 60_000) });
    await ctx.store.methods.activate(user.id, methodId, ctx.clock(), null, { data: JSON.stringify(stored), lookupKey: credential.id });
    const row = async () => (await ctx.store.methods.findForUser(user.id, methodId))!;
    const context = { purpose: 'sign-in' as const, binding: `flow:${methodId}`, ip: '127.0.0.1' };
    const verify = async (challengeId: string, response: unknown) => passkeyStrategy.verify(ctx, user, await row(), challengeId, { type: 'ceremony', response }, context);

    const first = (await passkeyStrategy.beginChallenge(ctx, user, await row(), context)).challengeId!;
    const response = assertionFor(credential, first, 'http://localhost:8080');
    expect(await verify(first, response)).toEqual({ ok: true });
    // The same response again: its challenge was used — a replay, not a clone.
    expect(await verify(first, response)).toEqual({ ok: false, reason: 'code-reused' });
    // A challenge bound to another flow is refused.
    const elsewhere = (await passkeyStrategy.beginChallenge(ctx, user, await row(), { ...context, binding: 'flow:other' })).challengeId!;
    expect((await verify(elsewhere, assertionFor(credential, elsewhere, 'http://localhost:8080'))).ok).toBe(false);
    expect(await ctx.store.audit.list({ subjectUserId: user.id, type: 'passkey.counter-regression', limit: 5 })).toEqual([]);

    // A fresh challenge, signed with a counter that did not move forward: a copy of the key.
    const fresh = (await passkeyStrategy.beginChallenge(ctx, user, await row(), context)).challengeId!;
    expect(await verify(fresh, assertionFor(credential, fresh, 'http://localhost:8080', { counter: 1 }))).toEqual({ ok: false, reason: 'code-incorrect' });
    expect(await ctx.store.audit.list({ subjectUserId: user.id, type: 'passkey.counter-regression', limit: 5 })).toHaveLength(1);
    const [notice] = await ctx.delivery.listOutbox({ to: email, limit: 5 });
    expect(notice?.subject).toBe('A copy of your passkey may exist');
    // Refused assertions move nothing: the counter is the last accepted one's.
    expect(JSON.parse((await row()).data!).counter).toBe(1);

    // Passwordless from the email page: its challenge, the credential found by its id, a session.
    const browser = new TestBrowser(app);
    const page = await browser.get('/sign-in');
    const { challenge } = optionsIn(page.body, 'webauthn-passwordless-options') as { challenge: string };
    const signedIn = await browser.post('/sign-in/passwordless', { credential: JSON.stringify(assertionFor(credential, challenge, 'http://localhost:8080')), returnTo: '/account' });
    expect(signedIn.statusCode).toBe(303);
    expect(signedIn.headers.location).toBe('/account');
    expect((await browser.get('/account')).statusCode).toBe(200);
  });
});
