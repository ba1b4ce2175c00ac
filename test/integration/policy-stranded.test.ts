/**
 * Issue #12, point 2: a policy change never leaves a registered person with a password alone.
 * Through buildApp() and inject(), on SQLite and PostgreSQL: an elevated person whose only method is a
 * text-message phone, under a policy that no longer enables text messages for elevated roles.
 *
 * Before the fix, with the requirement's date still ahead, the password alone opened a full session
 * (the evaluator only looked at methods registered *and* enabled, found none, and treated the person as
 * having no method), and Security info could not add a method either: the registration grant is for
 * people with no method at all, and the step-up had nothing to offer, so it sent them straight back.
 *
 * NIST SP 800-63B-4 §4.1.2.1 / §6.1.2.1: binding a new authenticator requires authenticating with an
 * existing one, so the phone they have must be used — never the password on its own. Policy dates are
 * set relative to the real time (timeZone UTC); no clock is moved.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { applyPolicyText } from '../../src/app/policy.js';
import { startSession } from '../../src/app/sessions.js';
import { issuePass } from '../../src/app/tap.js';
import type { AuditEventType } from '../../src/core/audit.js';
import { buildApp } from '../../src/server/app.js';
import { SESSION_COOKIE } from '../../src/server/cookies.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const DAY_MS = 86_400_000;
const dayFromNow = (days: number): string => new Date(Date.now() + days * DAY_MS).toISOString().slice(0, 10);
const longDay = (date: string): string =>
  new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(`${date}T00:00:00Z`));

/** Text messages no longer enabled for elevated roles; push required of them from `effective`. */
function noTextsForElevated(options: { effective: string; graceDays: number; afterGrace?: 'tap-only' | 'any-registered' }): string {
  return `version: 1
timeZone: UTC
methods:
  sms: { enabled: true, exclude: [elevated] }
  voice: { enabled: true, exclude: [elevated] }
  totp: { enabled: true }
  push: { enabled: true }
  tap: { enabled: true }
requirements:
  - id: elevated-push
    name: Those with elevated rights must use push notifications
    include: [elevated]
    strength: app-push
    effective: ${options.effective}
    graceDays: ${options.graceDays}
    bootstrap: { duringGrace: any-registered, afterGrace: ${options.afterGrace ?? 'tap-only'} }
`;
}

describe.each(dialects)('a policy that disables a person’s only method (issue #12) on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let phones = 0;

  const outbox = async (to: string) => ctx.delivery.listOutbox({ to, limit: 500 });
  const latestCode = async (to: string): Promise<string> => {
    const [message] = await outbox(to);
    if (!message?.code) throw new Error(`no code sent to ${to}`);
    return message.code;
  };
  const auditOf = async (userId: string, type: AuditEventType) =>
    (await ctx.store.audit.list({ subjectUserId: userId, type, limit: 100 })).map((e) => JSON.parse(e.details) as Record<string, unknown>);
  const sessionsOf = (userId: string) =>
    ctx.store.database.db.selectFrom('sessions').select(['restricted', 'methods', 'registration_grant_until']).where('user_id', '=', userId).orderBy('created_at').execute();

  /** An elevated person who set up a text-message phone before the policy changed. */
  async function elevatedWithTexts(email: string): Promise<{ userId: string; phone: string; methodId: string }> {
    const { user } = await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Test Trust', roles: [{ role: 'helpdesk', organisations: [] }], password: PASSWORD }, actor);
    phones += 1;
    const phone = `+4474012${String(phones).padStart(5, '0')}`;
    const methodId = randomUUID();
    const now = new Date();
    await ctx.store.methods.insertPending({ id: methodId, userId: user.id, kind: 'sms', label: '', phoneE164: phone, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 60_000) });
    expect(await ctx.store.methods.activate(user.id, methodId, now, null)).toBe(true);
    return { userId: user.id, phone, methodId };
  }

  const apply = (text: string) => applyPolicyText(ctx, text, actor, 'issue #12', { allowStranded: true });

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { SIGN_IN_LOCKOUT_THRESHOLD: '100' });
    await addOrganisation(ctx, 'Test Trust', actor);
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('before the date: the password alone opens nothing; the phone’s code opens a session restricted to setting up an allowed method', async () => {
    const effective = dayFromNow(14);
    await apply(noTextsForElevated({ effective, graceDays: 0 }));
    const { userId, phone, methodId } = await elevatedWithTexts('stranded@example.org');

    const browser = new TestBrowser(app);
    const afterPassword = await browser.signIn('stranded@example.org', PASSWORD);
    // Regression (issue #12): this was a 303 to /security-info/get-started with a full session.
    expect(afterPassword.headers.location).toBe('/sign-in/verify');
    expect(await sessionsOf(userId)).toEqual([]);
    const prompt = await browser.get('/sign-in/verify');
    expect(prompt.body).toContain('by text message');
    expect(prompt.body).not.toContain('Sign in another way');

    const done = await browser.post('/sign-in/verify', { code: await latestCode(phone) });
    expect(done.headers.location).toBe('/security-info');
    const [session] = await sessionsOf(userId);
    expect(session).toMatchObject({ restricted: 'registration-only', registration_grant_until: null });
    expect((JSON.parse(session!.methods) as Array<{ method: string }>).map((m) => m.method)).toEqual(['password', 'sms']);
    expect(await auditOf(userId, 'sign-in.succeeded')).toEqual([expect.objectContaining({ restricted: 'registration-only', methods: ['password', 'sms'] })]);

    // Only Security info, and on it only what the policy allows them: not the phone again.
    expect((await browser.get('/account')).headers.location).toBe('/security-info');
    const info = await browser.get('/security-info');
    expect(info.body).toContain('to finish signing in');
    expect(info.body).toContain('Your organisation no longer lets you sign in with a phone.');
    expect(info.body).toContain(`Until ${longDay(effective)} you can sign in with it, but only to set up a new way to sign in.`);
    const add = await browser.get('/security-info/add');
    expect(add.statusCode).toBe(200);
    expect(add.body).toContain('value="push"');
    expect(add.body).not.toContain('value="phone"');
    const refused = await browser.post('/security-info/add', { method: 'phone' });
    expect(refused.statusCode).toBe(409);
    expect(await ctx.store.methods.countActive(userId)).toBe(1);

    // The step-up offers the phone they have (it used to find nothing and send them back: a loop).
    const stepUp = await browser.get('/sign-in/step-up?returnTo=%2Fsecurity-info%2Fadd', { 'sec-fetch-site': 'same-origin' });
    expect(stepUp.headers.location).toBe('/sign-in/verify');
    const stepUpPrompt = await browser.get('/sign-in/verify');
    expect(stepUpPrompt.body).toContain('by text message');
    expect((await browser.post('/sign-in/verify', { code: await latestCode(phone) })).headers.location).toBe('/security-info/add');
    expect((await sessionsOf(userId)).map((s) => s.restricted)).toEqual(['registration-only']);
    expect(await ctx.store.methods.findForUser(userId, methodId)).toMatchObject({ status: 'active' });
  });

  it('a session from the password alone (one opened before the fix) cannot add a method: the grant is only for people with no method', async () => {
    await apply(noTextsForElevated({ effective: dayFromNow(14), graceDays: 0 }));
    const { userId, phone } = await elevatedWithTexts('old-session@example.org');
    // What the bug handed out: a full session with only the password, and the registration grant.
    const token = await startSession(ctx, { userId, methods: [{ method: 'password', at: new Date().toISOString() }], restricted: null, client: { ip: null, userAgent: null }, registrationGrant: true });
    const browser = new TestBrowser(app);
    browser.cookies.set(SESSION_COOKIE, token);
    for (const path of ['/security-info/add', '/security-info/add/code-app']) {
      const refused = await browser.get(path);
      expect(refused.headers.location, path).toBe(`/sign-in/step-up?returnTo=${encodeURIComponent(path)}`);
    }
    await browser.get('/security-info');
    expect((await browser.post('/security-info/add', { method: 'totp' })).headers.location).toMatch(/^\/sign-in\/step-up\?/);
    expect(await ctx.store.methods.countActive(userId)).toBe(1);
    // The step-up it is sent to asks for the phone they have (NIST SP 800-63B-4 §6.1.2.1).
    expect((await browser.get('/sign-in/step-up?returnTo=%2Fsecurity-info%2Fadd', { 'sec-fetch-site': 'same-origin' })).headers.location).toBe('/sign-in/verify');
    expect((await outbox(phone)).length).toBe(1);
  });

  it('after grace: the password step asks for a Temporary Access Pass and sends no code; the pass opens only Security info', async () => {
    await apply(noTextsForElevated({ effective: dayFromNow(-30), graceDays: 7 }));
    const { userId, phone } = await elevatedWithTexts('late@example.org');
    const refused = await new TestBrowser(app).signIn('late@example.org', PASSWORD);
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('Ask your helpdesk for a Temporary Access Pass');
    expect(await outbox(phone)).toEqual([]);
    expect(await sessionsOf(userId)).toEqual([]);
    expect(await auditOf(userId, 'sign-in.failed')).toEqual([expect.objectContaining({ reason: 'policy-needs-tap', method: 'password' })]);

    const { pass } = await issuePass(ctx, 'late@example.org', { lifetimeSeconds: 3600, multiUse: false }, actor);
    const browser = new TestBrowser(app);
    expect((await browser.signIn('late@example.org', PASSWORD)).headers.location).toBe('/sign-in/verify');
    const prompt = await browser.get('/sign-in/verify');
    expect(prompt.body).toContain('Enter your Temporary Access Pass');
    expect(prompt.body).not.toContain('Sign in another way'); // the phone is not offered after grace
    expect((await browser.post('/sign-in/verify', { code: pass })).headers.location).toBe('/security-info');
    expect((await sessionsOf(userId)).map((s) => s.restricted)).toEqual(['registration-only']);
    expect(await outbox(phone)).toEqual([]);
  });

  it('in grace, with a bootstrap that allows it after grace too: the phone still opens only a restricted session', async () => {
    await apply(noTextsForElevated({ effective: dayFromNow(-3), graceDays: 7, afterGrace: 'any-registered' }));
    const { userId, phone } = await elevatedWithTexts('grace@example.org');
    const browser = new TestBrowser(app);
    expect((await browser.signIn('grace@example.org', PASSWORD)).headers.location).toBe('/sign-in/verify');
    expect((await browser.post('/sign-in/verify', { code: await latestCode(phone) })).headers.location).toBe('/security-info');
    expect((await sessionsOf(userId)).map((s) => s.restricted)).toEqual(['registration-only']);
  });
});
