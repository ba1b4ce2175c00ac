/**
 * The method policy (issue #5) through buildApp() and inject(), on SQLite and PostgreSQL: what sign-in
 * offers and accepts under a requirement before its date, in grace and after it (restricted sessions,
 * the Temporary Access Pass, campaign interrupts), the registration requirement, Security info's
 * refusals, directory changes checked against the policy, the policy profile kept on each user's row,
 * and the compliance report. Policy dates are set relative to the real time; no clock is moved.
 * The CLI verbs are in policy-cli.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse/sync';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addGroupMember, createGroup, removeGroupMember, resetMethods } from '../../src/app/admin.js';
import { complianceRows, compliancePages, complianceSummary } from '../../src/app/compliance.js';
import { writeComplianceCsv } from '../../src/app/compliance-csv.js';
import { addOrganisation, addUser, disableUser, grantRole, revokeRole } from '../../src/app/directory.js';
import { addException, applyPolicyText, checkPolicyText, POLICY_TOPIC } from '../../src/app/policy.js';
import { issuePass } from '../../src/app/tap.js';
import { isPortcullisError } from '../../src/core/errors.js';
import type { AuditEventType } from '../../src/core/audit.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { recomputeAllPolicyProfiles } from '../../src/store/repositories/policy-profile.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { TestBrowser } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const DAY_MS = 86_400_000;

/** A date `days` from now (negative: ago), as a policy writes it. The policies here use timeZone UTC. */
const dayFromNow = (days: number): string => new Date(Date.now() + days * DAY_MS).toISOString().slice(0, 10);
/** "12 December 2026": a policy date as the pages show it. */
const longDay = (date: string): string =>
  new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(`${date}T00:00:00Z`));

/** Every method enabled, except voice for those with elevated rights. */
const METHODS = `version: 1
timeZone: UTC
methods:
  sms: { enabled: true }
  voice: { enabled: true, exclude: [elevated] }
  totp: { enabled: true }
  push: { enabled: true }
  tap: { enabled: true }
`;

const REQUIREMENT_NAME = 'Those with elevated rights must use push notifications';

function elevatedRequirement(options: { effective: string; graceDays: number; strength?: string; afterGrace?: 'tap-only' | 'any-registered' }): string {
  return `requirements:
  - id: elevated-push
    name: ${REQUIREMENT_NAME}
    include: [elevated]
    strength: ${options.strength ?? 'app-push'}
    effective: ${options.effective}
    graceDays: ${options.graceDays}
    mode: enforce
    bootstrap: { duringGrace: any-registered, afterGrace: ${options.afterGrace ?? 'tap-only'} }
`;
}

/** Writes a minimal CSV consumer for writeComplianceCsv. */
function collector(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe.each(dialects)('method policy at sign-in and on Security info on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let phones = 0;

  const apply = async (text: string, comment = '') => (await applyPolicyText(ctx, text, actor, comment)).version;
  const latestMessage = async (to: string) => (await ctx.delivery.listOutbox({ to, limit: 1 }))[0];
  const outboxCount = async (to: string) => (await ctx.delivery.listOutbox({ to, limit: 500 })).length;
  const latestCode = async (to: string): Promise<string> => {
    const message = await latestMessage(to);
    if (!message?.code) throw new Error(`no code sent to ${to}`);
    return message.code;
  };
  const auditOf = async (userId: string, type: AuditEventType) =>
    (await ctx.store.audit.list({ subjectUserId: userId, type, limit: 100 })).map((e) => JSON.parse(e.details) as Record<string, unknown>);
  const sessionsOf = (userId: string) => ctx.store.database.db.selectFrom('sessions').select(['restricted', 'methods']).where('user_id', '=', userId).orderBy('created_at').execute();

  /** An active phone method, as a person who set one up earlier would have (through the repository). */
  async function addPhone(userId: string, kind: 'sms' | 'voice'): Promise<{ id: string; phone: string }> {
    phones += 1;
    const phone = `+4474009${String(phones).padStart(5, '0')}`;
    const id = randomUUID();
    const now = new Date();
    await ctx.store.methods.insertPending({ id, userId, kind, label: '', phoneE164: phone, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 60_000) });
    expect(await ctx.store.methods.activate(userId, id, now, null)).toBe(true);
    return { id, phone };
  }

  async function newUser(email: string, options: { elevated?: boolean; sms?: boolean } = {}) {
    const roles = options.elevated ? [{ role: 'helpdesk', organisations: [] }] : [];
    const { user } = await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Test Trust', roles, password: PASSWORD }, actor);
    const sms = options.sms ? await addPhone(user.id, 'sms') : null;
    return { user, sms };
  }

  /** Password, then the code texted to `phone`; returns the answer to the code. */
  async function signInBySms(email: string, phone: string) {
    const browser = new TestBrowser(app);
    const afterPassword = await browser.signIn(email, PASSWORD);
    expect(afterPassword.headers.location).toBe('/sign-in/verify');
    const page = await browser.get('/sign-in/verify');
    expect(page.body).toContain('by text message');
    const done = await browser.post('/sign-in/verify', { code: await latestCode(phone) });
    expect(done.statusCode).toBe(303);
    return { browser, done };
  }

  /** Security info → Add sign-in method → Authenticator app → pair a device → approve the test request. */
  async function pairPhone(browser: TestBrowser) {
    await browser.get('/security-info/add');
    const page = await browser.post('/security-info/add', { method: 'push' });
    expect(page.statusCode).toBe(200);
    const url = /href="(http:\/\/localhost:8080\/authenticator\/#pair=[A-Za-z0-9_-]+)"/.exec(page.body)![1]!;
    const enrolmentId = /data-next="\/security-info\/add\/app\/([^"]+)"/.exec(page.body)![1]!;
    const device = await TestDevice.create(app);
    expect((await device.pair(url, 'Work phone')).statusCode).toBe(201);
    const status = await browser.get(`/security-info/add/app/${enrolmentId}`);
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(status.body)![1]!;
    const [test] = await device.pending();
    expect((await device.decide(test!.id, 'approve', number)).statusCode).toBe(200);
    return { device, done: await browser.get(`/security-info/add/app/${enrolmentId}`) };
  }

  /** In a session that may add a method: Authenticator app → "a different app" (TOTP); returns its key. */
  async function addCodeApp(browser: TestBrowser): Promise<string> {
    await browser.get('/security-info/add');
    const chosen = await browser.post('/security-info/add', { method: 'totp' });
    expect(chosen.statusCode).toBe(303);
    const page = await browser.get(chosen.headers.location!);
    const key = /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.body)![1]!.replace(/ /g, '');
    const done = await browser.post(chosen.headers.location!, { code: generateTotp(key, new Date()) });
    expect(done.headers.location).toBe('/security-info?done=added');
    return key;
  }

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { SIGN_IN_LOCKOUT_THRESHOLD: '100' });
    await addOrganisation(ctx, 'Test Trust', actor);
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  describe('sign-in obeys the policy', () => {
    it('in grace: an elevated user with only a phone gets a session restricted to registering push, lifted once push is set up', async () => {
      // Effective 7 days ago with 14 days' grace: the weak method still opens a session, but only to
      // Security info (NIST SP 800-63B §6.1.2.3: a new authenticator is bound under an existing one).
      await apply(METHODS + elevatedRequirement({ effective: dayFromNow(-7), graceDays: 14 }));
      const { user, sms } = await newUser('grace@example.org', { elevated: true, sms: true });
      const { browser, done } = await signInBySms('grace@example.org', sms!.phone);
      expect(done.headers.location).toBe('/security-info');
      expect((await sessionsOf(user.id)).map((s) => s.restricted)).toEqual(['registration-only']);
      const succeeded = await auditOf(user.id, 'sign-in.succeeded');
      expect(succeeded[0]).toMatchObject({ restricted: 'registration-only', methods: ['password', 'sms'] });

      // Only Security info's registration routes: not the account, the default or the password.
      for (const path of ['/account', '/security-info/default', '/security-info/password', `/security-info/methods/${sms!.id}/delete`]) {
        const response = await browser.get(path);
        expect(response.statusCode, path).toBe(303);
        expect(response.headers.location, path).toBe('/security-info');
      }
      await browser.get('/security-info'); // a page with a form token, as a person would have
      const refusedPost = await browser.post('/security-info/default', { method: sms!.id });
      expect(refusedPost.headers.location).toBe('/security-info');
      expect((await ctx.store.users.findById(user.id))!.default_method_id).toBeNull();

      const info = await browser.get('/security-info');
      expect(info.statusCode).toBe(200);
      expect(info.body).toContain('Set up notifications in the Portcullis Authenticator app to finish signing in');
      expect(info.body).toContain(`${REQUIREMENT_NAME}, from ${longDay(dayFromNow(-7))}.`);
      expect(info.body).toContain(`Until ${longDay(dayFromNow(7))} you can sign in with your current method, but only to set up a new one.`);

      // The add page offers only what lifts the restriction: the authenticator app with push.
      const add = await browser.get('/security-info/add');
      expect(add.statusCode).toBe(200);
      expect(add.body).toContain('value="push"');
      expect(add.body).not.toContain('value="phone"');
      expect(add.body).not.toContain('value="totp"');
      const phone = await browser.post('/security-info/add', { method: 'phone' });
      expect(phone.statusCode).toBe(409);
      expect(phone.body).toContain('does not meet your organisation’s requirement. Set up notifications in the Portcullis Authenticator app to finish signing in.');
      const codeApp = await browser.get('/security-info/add/code-app');
      expect(codeApp.statusCode).toBe(409);
      expect(await ctx.store.methods.countActive(user.id)).toBe(1);

      const { device, done: paired } = await pairPhone(browser);
      expect(paired.headers.location).toBe(`/security-info/added/${device.deviceId}`);
      expect((await sessionsOf(user.id)).map((s) => s.restricted)).toEqual([null]);
      expect(await auditOf(user.id, 'session.restriction-lifted')).toEqual([{ method: 'push' }]);
      expect((await browser.get('/account')).statusCode).toBe(200);
      expect((await browser.get('/security-info')).body).not.toContain('to finish signing in');
    });

    it('after grace: with only a phone and no pass, the password step refuses with policy-needs-tap and sends no code', async () => {
      await apply(METHODS + elevatedRequirement({ effective: dayFromNow(-30), graceDays: 0, afterGrace: 'tap-only' }));
      const { user, sms } = await newUser('late@example.org', { elevated: true, sms: true });
      const browser = new TestBrowser(app);
      const refused = await browser.signIn('late@example.org', PASSWORD);
      expect(refused.statusCode).toBe(403);
      expect(refused.body).toContain('Your organisation now requires a stronger sign-in method, and the date to set it up has passed. Ask your helpdesk for a Temporary Access Pass to set it up.');
      expect(await outboxCount(sms!.phone)).toBe(0);
      expect(await sessionsOf(user.id)).toEqual([]);
      expect(await auditOf(user.id, 'sign-in.failed')).toEqual([expect.objectContaining({ reason: 'policy-needs-tap', method: 'password' })]);
      // Only after the right password: a wrong one says nothing about the policy (OWASP ASVS 5 V6.3.8).
      const wrong = await new TestBrowser(app).signIn('late@example.org', 'not-the-password');
      expect(wrong.statusCode).toBe(401);
      expect(wrong.body).not.toContain('Temporary Access Pass');
    });

    it('after grace: a Temporary Access Pass is offered first, works once for a restricted session, and is audited and emailed', async () => {
      await apply(METHODS + elevatedRequirement({ effective: dayFromNow(-30), graceDays: 0, afterGrace: 'tap-only' }));
      const { user, sms } = await newUser('tap@example.org', { elevated: true, sms: true });
      const { pass } = await issuePass(ctx, 'tap@example.org', { lifetimeSeconds: 3600, multiUse: false }, actor);
      expect(pass).toMatch(/^[A-HJKMNP-Z2-9]{16}$/);
      const issued = await latestMessage('tap@example.org');
      expect(issued?.subject).toMatch(/A Temporary Access Pass was issued/);
      expect(issued?.text).toContain('works once');
      expect(issued?.text).not.toContain(pass);
      expect(issued?.text).not.toContain(pass.slice(0, 4) + '-' + pass.slice(4, 8));
      expect(await auditOf(user.id, 'tap.issued')).toEqual([expect.objectContaining({ multiUse: false })]);
      // The pass is stored only as a keyed hash.
      const stored = await ctx.store.policy.pass(user.id);
      expect(stored?.pass_hash).not.toContain(pass);

      const a = new TestBrowser(app);
      const b = new TestBrowser(app);
      expect((await a.signIn('tap@example.org', PASSWORD)).headers.location).toBe('/sign-in/verify');
      expect((await b.signIn('tap@example.org', PASSWORD)).headers.location).toBe('/sign-in/verify');
      const prompt = await a.get('/sign-in/verify');
      expect(prompt.body).toContain('Enter your Temporary Access Pass');
      expect(prompt.body).toMatch(/<label[^>]*for="code"[^>]*>\s*Temporary Access Pass\s*<\/label>/);
      expect(prompt.body).not.toContain('Sign in another way'); // after grace, the phone is not offered
      expect(await outboxCount(sms!.phone)).toBe(0);
      await b.get('/sign-in/verify');

      const wrong = await a.post('/sign-in/verify', { code: pass.split('').reverse().join('') });
      expect(wrong.statusCode).toBe(401);
      // Read out over the phone: hyphens and lower case do not matter.
      const done = await a.post('/sign-in/verify', { code: `${pass.slice(0, 8).toLowerCase()}-${pass.slice(8)}` });
      expect(done.headers.location).toBe('/security-info');
      expect((await sessionsOf(user.id)).map((s) => s.restricted)).toEqual(['registration-only']);
      expect((await a.get('/account')).headers.location).toBe('/security-info');
      expect(await auditOf(user.id, 'tap.used')).toEqual([{ purpose: 'sign-in' }]);
      expect((await latestMessage('tap@example.org'))?.subject).toBe('A Temporary Access Pass was used to sign in');

      // One-time: the other sign-in, started before the pass was used, cannot use it too ...
      const second = await b.post('/sign-in/verify', { code: pass });
      expect(second.statusCode).toBe(401);
      expect(await sessionsOf(user.id)).toHaveLength(1);
      // ... and a new sign-in is back to needing a pass.
      expect((await new TestBrowser(app).signIn('tap@example.org', PASSWORD)).statusCode).toBe(403);
      const reasons = (await auditOf(user.id, 'sign-in.failed')).map((d) => [d.method, d.reason]);
      expect(reasons).toEqual(expect.arrayContaining([['tap', 'code-incorrect'], ['tap', 'code-expired'], ['password', 'policy-needs-tap']]));
    });

    it('a pass comes first for a user who could sign in fully too; the phone stays on "Sign in another way"', async () => {
      const { sms } = await newUser('onboard@example.org', { sms: true });
      await issuePass(ctx, 'onboard@example.org', { lifetimeSeconds: 3600, multiUse: true }, actor);
      const browser = new TestBrowser(app);
      expect((await browser.signIn('onboard@example.org', PASSWORD)).headers.location).toBe('/sign-in/verify');
      expect((await browser.get('/sign-in/verify')).body).toContain('Enter your Temporary Access Pass');
      expect(await outboxCount(sms!.phone)).toBe(0); // no text until the phone is chosen
      const other = await browser.get('/sign-in/other');
      expect(other.body).toContain('Use a Temporary Access Pass');
      expect(other.body).toContain('Text a code to');
      expect((await browser.post('/sign-in/other', { method: sms!.id })).headers.location).toBe('/sign-in/verify');
      const done = await browser.post('/sign-in/verify', { code: await latestCode(sms!.phone) });
      expect(done.headers.location).toBe('/account');
    });

    it('an ordinary user signs in by text as before, with a full session', async () => {
      const { user, sms } = await newUser('ordinary@example.org', { sms: true });
      const voice = await addPhone(user.id, 'voice');
      // Text messages are their default (two phones added in the same millisecond have no order of their own).
      await ctx.store.users.setDefaultMethod(user.id, sms!.id, new Date());
      const { browser, done } = await signInBySms('ordinary@example.org', sms!.phone);
      expect(done.headers.location).toBe('/account');
      expect((await browser.get('/account')).statusCode).toBe(200);
      expect((await sessionsOf(user.id)).map((s) => s.restricted)).toEqual([null]);
      // Voice is enabled for people without elevated rights.
      const again = new TestBrowser(app);
      await again.signIn('ordinary@example.org', PASSWORD);
      expect((await again.get('/sign-in/other')).body).toContain('Call');
      expect((await again.post('/sign-in/other', { method: voice.id })).headers.location).toBe('/sign-in/verify');
      expect((await latestMessage(voice.phone))?.channel).toBe('voice');
    });

    it('a method the methods policy does not enable is neither offered nor accepted, even as the default', async () => {
      await apply(METHODS + elevatedRequirement({ effective: dayFromNow(-7), graceDays: 14 }));
      const { user, sms } = await newUser('novoice@example.org', { elevated: true, sms: true });
      const voice = await addPhone(user.id, 'voice');
      await ctx.store.users.setDefaultMethod(user.id, voice.id, new Date());
      const browser = new TestBrowser(app);
      expect((await browser.signIn('novoice@example.org', PASSWORD)).headers.location).toBe('/sign-in/verify');
      const prompt = await browser.get('/sign-in/verify');
      expect(prompt.body).toContain('Check your phone'); // the text, not the call the default asks for
      expect(prompt.body).not.toContain('Sign in another way');
      const other = await browser.get('/sign-in/other');
      expect(other.body).toContain('Text a code to');
      expect(other.body).not.toContain('Call');
      expect(other.body).not.toContain(`value="${voice.id}"`);
      const refused = await browser.post('/sign-in/other', { method: voice.id });
      expect(refused.statusCode).toBe(400);
      expect(refused.body).toContain('Select a sign-in method');
      expect(await outboxCount(voice.phone)).toBe(0);
      const done = await browser.post('/sign-in/verify', { code: await latestCode(sms!.phone) });
      expect(done.headers.location).toBe('/security-info');
    });
  });

  it('before the date: a campaign interrupts, "Remind me later" snoozes, and when the reminders run out registration is required', async () => {
    const effective = dayFromNow(14);
    await apply(
      METHODS +
        elevatedRequirement({ effective, graceDays: 0 }) +
        `campaigns:
  - id: move-to-push
    name: Move to push
    include: [elevated]
    method: push
    snoozeDays: 1
    maxSnoozes: 2
`,
    );
    const { user, sms } = await newUser('nudge@example.org', { elevated: true, sms: true });
    const first = await signInBySms('nudge@example.org', sms!.phone);
    expect(first.done.headers.location).toBe('/security-info/campaign?returnTo=%2Faccount');
    expect((await sessionsOf(user.id)).map((s) => s.restricted)).toEqual([null]);
    const page = await first.browser.get(first.done.headers.location!);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(`Set up notifications in the Portcullis Authenticator app by ${longDay(effective)}`);
    expect(page.body).toContain('After that date you will not be able to sign in with a phone.');
    expect(page.body).toContain('You can choose ‘Remind me later’ 2 more times.');
    const later = await first.browser.post('/security-info/campaign', { action: 'later', campaign: 'move-to-push', method: 'push', returnTo: '/account' });
    expect(later.headers.location).toBe('/account');
    const snoozes = await ctx.store.policy.snoozes(user.id);
    expect(snoozes).toHaveLength(1);
    expect(snoozes[0]).toMatchObject({ campaign_id: 'move-to-push', count: 1 });
    expect(Date.parse(snoozes[0]!.until!)).toBeGreaterThan(Date.now() + DAY_MS / 2);
    expect(await auditOf(user.id, 'policy.campaign-snoozed')).toEqual([{ campaignId: 'move-to-push' }]);

    // The banner on Security info says what is due, and by when.
    const info = await first.browser.get('/security-info');
    expect(info.body).toContain(`Set up notifications in the Portcullis Authenticator app by ${longDay(effective)}`);
    expect(info.body).toContain(`${REQUIREMENT_NAME}, from ${longDay(effective)}.`);

    // Within snoozeDays: no interrupt.
    const second = await signInBySms('nudge@example.org', sms!.phone);
    expect(second.done.headers.location).toBe('/account');
    expect((await second.browser.get('/security-info/campaign?returnTo=%2Faccount')).headers.location).toBe('/account');

    // The day passes (the snooze's end moved back, not the clock): the last reminder.
    await ctx.store.database.db.updateTable('campaign_snoozes').set({ until: new Date(Date.now() - 1000).toISOString() }).where('user_id', '=', user.id).execute();
    const third = await signInBySms('nudge@example.org', sms!.phone);
    expect(third.done.headers.location).toBe('/security-info/campaign?returnTo=%2Faccount');
    expect((await third.browser.get(third.done.headers.location!)).body).toContain('This is the last time you can choose ‘Remind me later’.');
    await third.browser.post('/security-info/campaign', { action: 'later', campaign: 'move-to-push', method: 'push', returnTo: '/account' });
    expect((await ctx.store.policy.snoozes(user.id))[0]).toMatchObject({ count: 2 });

    // No reminders left: even before the date, the sign-in opens only Security info.
    const fourth = await signInBySms('nudge@example.org', sms!.phone);
    expect(fourth.done.headers.location).toBe('/security-info');
    expect((await fourth.browser.get('/account')).headers.location).toBe('/security-info');
    expect((await sessionsOf(user.id)).at(-1)!.restricted).toBe('registration-only');
    // A fifth "later" changes nothing.
    await fourth.browser.get('/security-info');
    await fourth.browser.post('/security-info/campaign', { action: 'later', campaign: 'move-to-push', method: 'push', returnTo: '/account' });
    expect((await ctx.store.policy.snoozes(user.id))[0]).toMatchObject({ count: 2 });
    expect(await auditOf(user.id, 'policy.campaign-snoozed')).toHaveLength(2);
  });

  it('a registration requirement that is due gives a user with no method a restricted session with no "Skip for now"; before its date they may skip', async () => {
    const registration = (by: string) => `registration:
  - id: everyone-registered
    name: Everyone has a second way to sign in
    include: [all]
    by: ${by}
    mode: enforce
`;
    await apply(METHODS + registration(dayFromNow(-7)));
    const { user } = await newUser('due@example.org');
    const browser = new TestBrowser(app);
    const signedIn = await browser.signIn('due@example.org', PASSWORD);
    expect(signedIn.headers.location).toBe('/security-info/get-started?returnTo=%2Faccount');
    expect((await sessionsOf(user.id)).map((s) => s.restricted)).toEqual(['registration-only']);
    const page = await browser.get(signedIn.headers.location!);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('You need to set one up before you can continue.');
    expect(page.body).not.toContain('Skip for now');
    expect((await browser.get('/account')).headers.location).toBe('/security-info');
    // Any method lifts it (the requirement asks for one, of any kind).
    await addCodeApp(browser);
    expect((await sessionsOf(user.id)).map((s) => s.restricted)).toEqual([null]);
    expect(await auditOf(user.id, 'session.restriction-lifted')).toEqual([{ method: 'totp' }]);
    expect((await browser.get('/account')).statusCode).toBe(200);

    const by = dayFromNow(7);
    await apply(METHODS + registration(by));
    const { user: early } = await newUser('early@example.org');
    const before = new TestBrowser(app);
    const nudged = await before.signIn('early@example.org', PASSWORD);
    expect(nudged.headers.location).toBe('/security-info/get-started?returnTo=%2Faccount');
    expect((await sessionsOf(early.id)).map((s) => s.restricted)).toEqual([null]);
    const optional = await before.get(nudged.headers.location!);
    expect(optional.body).toContain('<a href="/account">Skip for now</a>');
    expect(optional.body).toContain(`Set up a second way to sign in by ${longDay(by)}`);
    expect((await before.get('/account')).statusCode).toBe(200);
  });

  it('Security info refuses a default the policy disallows now, and deleting the last compliant method, but deletes a weak one', async () => {
    // Push or an app's codes for those with elevated rights, in force for a week (NIST SP 800-63B-4
    // §4.2.2: the verifier decides which authenticators meet the level).
    await apply(
      METHODS.replace('methods:', 'strengths:\n  app-codes: [totp, push]\nmethods:') + elevatedRequirement({ effective: dayFromNow(-7), graceDays: 14, strength: 'app-codes' }),
    );
    const { user } = await newUser('refuse@example.org', { elevated: true });
    const browser = new TestBrowser(app);
    // No method yet and a requirement in force: a restricted session that can set one up.
    expect((await browser.signIn('refuse@example.org', PASSWORD)).headers.location).toBe('/security-info/get-started?returnTo=%2Faccount');
    await addCodeApp(browser);
    expect((await browser.get('/account')).statusCode).toBe(200);
    // A phone can still be added (texts are enabled for them) but does not meet the requirement.
    await browser.get('/security-info/add/phone');
    const sent = await browser.post('/security-info/add/phone', { phone: '+447400555001', delivery: 'sms' });
    expect(sent.statusCode).toBe(303);
    const target = new URL(sent.headers.location!, 'http://x');
    await browser.get(sent.headers.location!);
    const added = await browser.post(target.pathname, { code: await latestCode('+447400555001'), challenge: target.searchParams.get('challenge')! });
    expect(added.headers.location).toBe('/security-info?done=added');
    const methods = await ctx.store.methods.activeForUser(user.id);
    const totp = methods.find((m) => m.kind === 'totp')!;
    const sms = methods.find((m) => m.kind === 'sms')!;

    const defaultPage = await browser.get('/security-info/default');
    expect(defaultPage.statusCode).toBe(200);
    const refused = await browser.post('/security-info/default', { method: sms.id });
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain(`cannot be your default sign-in method. ${REQUIREMENT_NAME}, from ${longDay(dayFromNow(-7))}.`);
    expect((await ctx.store.users.findById(user.id))!.default_method_id).toBeNull();
    expect(await auditOf(user.id, 'method.default-changed')).toEqual([]);
    expect((await browser.post('/security-info/default', { method: totp.id })).headers.location).toBe('/security-info?done=default');

    const lastCompliant = await browser.get(`/security-info/methods/${totp.id}/delete`);
    expect(lastCompliant.statusCode).toBe(200);
    expect(lastCompliant.body).toContain('You cannot delete this sign-in method');
    expect(lastCompliant.body).toContain(`It is your only sign-in method that meets “${REQUIREMENT_NAME}” (from ${longDay(dayFromNow(-7))}). Add another one that does first.`);
    expect(lastCompliant.body).not.toContain('nhsuk-button--warning');
    const deleteRefused = await browser.post(`/security-info/methods/${totp.id}/delete`, {});
    expect(deleteRefused.statusCode).toBe(409);
    expect(deleteRefused.body).toContain('You cannot delete Authenticator app');
    expect(await ctx.store.methods.countActive(user.id, 'totp')).toBe(1);

    const weak = await browser.get(`/security-info/methods/${sms.id}/delete`);
    expect(weak.body).toContain('Are you sure you want to delete this sign-in method?');
    expect((await browser.post(`/security-info/methods/${sms.id}/delete`, {})).headers.location).toBe('/security-info?done=deleted');
    expect((await ctx.store.methods.activeForUser(user.id)).map((m) => m.kind)).toEqual(['totp']);
  });

  it('refuses a role or group change that would leave the user unable to meet the policy, changing nothing', async () => {
    await createGroup(ctx, 'Push pilot', 'May use push', actor);
    await createGroup(ctx, 'Contractors', 'No push', actor);
    // Push only for the pilot group (and never for contractors), yet required of everyone with elevated
    // rights. `policy check` refuses such a policy (the combinations it names could satisfy nothing)...
    const text = `version: 1
timeZone: UTC
methods:
  sms: { enabled: true }
  totp: { enabled: true }
  push: { enabled: true, include: ["group:Push pilot"], exclude: [group:Contractors] }
${elevatedRequirement({ effective: dayFromNow(30), graceDays: 0 })}`;
    const check = await checkPolicyText(ctx, text);
    expect(check.ok).toBe(false);
    expect(check.problems.map((p) => p.message).join('\n')).toContain('could satisfy nothing');
    // ... so it is stored as an earlier version might have been, unchecked, to show the directory
    // checks stand on their own; every node drops its cached policy as after an apply.
    await ctx.store.policy.insertVersion({ document: text, appliedBy: 'test', now: new Date(), comment: 'unchecked' });
    await ctx.bus.publish(POLICY_TOPIC, 'unchecked');

    const { user: pilot } = await newUser('pilot@example.org');
    const { user: plain } = await newUser('plain@example.org');
    await addGroupMember(ctx, 'Push pilot', 'pilot@example.org', actor);
    await grantRole(ctx, 'pilot@example.org', 'helpdesk', [], actor); // push is enabled for them: fine

    const snapshot = async () => ({
      roles: await ctx.store.database.db.selectFrom('role_assignments').select(['user_id', 'role_name', 'scope']).where('user_id', 'in', [pilot.id, plain.id]).orderBy('user_id').orderBy('role_name').execute(),
      members: await ctx.store.database.db.selectFrom('group_members').select(['user_id', 'group_id']).where('user_id', 'in', [pilot.id, plain.id]).orderBy('user_id').orderBy('group_id').execute(),
      profiles: await ctx.store.database.db.selectFrom('users').select(['id', 'policy_profile']).where('id', 'in', [pilot.id, plain.id]).orderBy('id').execute(),
      audit: (await ctx.store.audit.list({ subjectUserId: pilot.id, limit: 100 })).length + (await ctx.store.audit.list({ subjectUserId: plain.id, limit: 100 })).length,
    });
    const before = await snapshot();
    expect(before.profiles.find((p) => p.id === pilot.id)!.policy_profile).toBe('helpdesk,user|Push pilot|0');

    const refusals: Array<[string, () => Promise<unknown>]> = [
      ['leaving the pilot group', () => removeGroupMember(ctx, 'Push pilot', 'pilot@example.org', actor)],
      ['joining the contractors', () => addGroupMember(ctx, 'Contractors', 'pilot@example.org', actor)],
      ['an elevated role outside the pilot', () => grantRole(ctx, 'plain@example.org', 'helpdesk', [], actor)],
      ['another elevated role outside the pilot', () => grantRole(ctx, 'plain@example.org', 'local-admin', ['Test Trust'], actor)],
    ];
    for (const [what, change] of refusals) {
      const error = await change().then(
        () => null,
        (e: unknown) => e,
      );
      expect(isPortcullisError(error) ? error.code : error, what).toBe('policy-unsatisfiable');
      expect(isPortcullisError(error) && error.message, what).toMatch(/unable to meet the method policy: they must meet elevated-push \(app-push\)/);
    }
    expect(await snapshot()).toEqual(before);

    // Changes that keep the policy satisfiable still go through.
    await revokeRole(ctx, 'pilot@example.org', 'helpdesk', [], actor);
    await removeGroupMember(ctx, 'Push pilot', 'pilot@example.org', actor);
    expect((await ctx.store.users.findById(pilot.id))!.policy_profile).toBe('user||0');
  });

  it('keeps every user\'s policy profile equal to what the SQL recomputation writes, through role, group and method changes', async () => {
    await apply(METHODS); // nothing required: every directory change is allowed
    await addOrganisation(ctx, 'Other Trust', actor);
    for (const name of ['MFA pilot', 'alpha', 'Ärzte', 'Zeta']) await createGroup(ctx, name, '', actor);
    const emails = ['p1@example.org', 'p2@example.org', 'p3@example.org', 'p4@example.org'];
    const ids: string[] = [];
    for (const email of emails) ids.push((await newUser(email, { sms: email !== 'p4@example.org' })).user.id);
    const [p1, p2, p3, p4] = ids as [string, string, string, string];

    await grantRole(ctx, 'p1@example.org', 'local-admin', ['Test Trust', 'Other Trust'], actor);
    await revokeRole(ctx, 'p1@example.org', 'local-admin', ['Other Trust'], actor); // still held for Test Trust
    await grantRole(ctx, 'p1@example.org', 'global-admin', [], actor);
    await grantRole(ctx, 'p2@example.org', 'helpdesk', [], actor);
    await revokeRole(ctx, 'p2@example.org', 'helpdesk', [], actor);
    for (const group of ['Zeta', 'MFA pilot', 'alpha', 'Ärzte']) await addGroupMember(ctx, group, 'p1@example.org', actor);
    await addGroupMember(ctx, 'alpha', 'p1@example.org', actor); // again: no change
    await addGroupMember(ctx, 'alpha', 'p2@example.org', actor);
    await removeGroupMember(ctx, 'Zeta', 'p1@example.org', actor);
    const voice = await addPhone(p1, 'voice');
    await addPhone(p2, 'voice');
    await ctx.store.methods.delete(p1, voice.id);
    await addPhone(p3, 'sms');
    await resetMethods(ctx, 'p3@example.org', actor);
    await addPhone(p4, 'voice');
    await ctx.store.methods.insertPending({ id: randomUUID(), userId: p4, kind: 'totp', label: '', phoneE164: null, secretSealed: null, now: new Date(), pendingExpiresAt: new Date(Date.now() + 60_000) }); // pending: does not count

    const read = async () =>
      Object.fromEntries((await ctx.store.database.db.selectFrom('users').select(['id', 'policy_profile']).orderBy('id').execute()).map((r) => [r.id, r.policy_profile]));
    const kept = await read();
    expect(kept[p1]).toBe('global-admin,local-admin,user|MFA pilot,alpha,Ärzte|1');
    expect(kept[p2]).toBe('user|alpha|3');
    expect(kept[p3]).toBe('user||0');
    expect(kept[p4]).toBe('user||2');
    await recomputeAllPolicyProfiles(ctx.store.database.db, ctx.store.dialect);
    expect(await read()).toEqual(kept);
  });
});

describe.each(dialects)('compliance report on %s', (dialect) => {
  let ctx: TestContext;
  const effective = dayFromNow(-7);
  const exceptionUntil = new Date(Date.now() + 3 * DAY_MS);

  async function user(email: string, displayName: string, options: { elevated?: boolean; kinds?: Array<'sms' | 'push'> } = {}) {
    const roles = options.elevated ? [{ role: 'helpdesk', organisations: [] }] : [];
    const { user: row } = await addUser(ctx, { email, displayName, organisation: 'Test Trust', roles, password: PASSWORD }, actor);
    for (const kind of options.kinds ?? []) {
      const id = randomUUID();
      const now = new Date();
      await ctx.store.methods.insertPending({ id, userId: row.id, kind, label: 'Phone', phoneE164: kind === 'sms' ? '+447400700001' : null, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 60_000) });
      await ctx.store.methods.activate(row.id, id, now, null);
    }
    return row;
  }

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    await addOrganisation(ctx, 'Test Trust', actor);
    await applyPolicyText(
      ctx,
      `${METHODS.replace('methods:', 'strengths:\n  app-codes: [totp, push]\nmethods:')}${elevatedRequirement({ effective, graceDays: 14 })}  - id: everyone-app
    name: Everyone uses an app (reported, not enforced)
    include: [all]
    strength: app-codes
    effective: ${effective}
    mode: report-only
registration:
  - id: all-registered
    include: [all]
    by: ${dayFromNow(7)}
    mode: enforce
`,
      actor,
    );
    await user('ok@example.org', 'Olive', { kinds: ['sms'] }); // compliant
    await user('none@example.org', 'Nina'); // action needed (registration in 7 days)
    await user('grace@example.org', 'Grace', { elevated: true, kinds: ['sms'] }); // in grace
    await user('push@example.org', 'Percy', { elevated: true, kinds: ['push', 'sms'] }); // compliant
    await user('exempt@example.org', 'Ezra', { elevated: true, kinds: ['sms'] }); // exempt
    await addException(ctx, { email: 'exempt@example.org', requirementId: 'elevated-push', until: exceptionUntil, reason: 'Lost phone, replacement on order' }, actor);
    await user('gone@example.org', 'Gone'); // disabled: not counted
    await disableUser(ctx, 'gone@example.org', actor);
    await user('formula@example.org', '=HYPERLINK("http://evil.example","click")', { kinds: ['sms'] });
    await user('at@example.org', '@SUM(1+1)', { kinds: ['sms'] });
  });

  afterAll(async () => ctx?.destroy());

  it('counts active users per state and per requirement; a live exception is exempt and a report-only requirement does not set the state', async () => {
    const summary = await complianceSummary(ctx);
    const counts = (compliant: number, exempt: number, actionNeeded: number, inGrace: number, nonCompliant: number) => ({
      total: compliant + exempt + actionNeeded + inGrace + nonCompliant,
      byState: { compliant, exempt, 'action-needed': actionNeeded, 'in-grace': inGrace, 'non-compliant': nonCompliant },
    });
    expect(summary.users).toEqual(counts(4, 1, 1, 1, 0));
    expect(summary.elevated).toEqual(counts(1, 1, 0, 1, 0));
    expect(summary.withoutMethod).toBe(1);
    expect(summary.policyVersion).toBe(1);
    const byId = Object.fromEntries(summary.requirements.map((r) => [r.id, r]));
    expect(byId['elevated-push']).toMatchObject({ mode: 'enforce', type: 'requirement', ...counts(1, 1, 0, 1, 0) });
    // Report-only: everyone without an app counts as not compliant here, yet nobody's overall state moves.
    expect(byId['everyone-app']).toMatchObject({ mode: 'report-only', ...counts(1, 0, 0, 0, 6) });
    expect(byId['all-registered']).toMatchObject({ mode: 'enforce', type: 'registration', ...counts(6, 0, 1, 0, 0) });
  });

  it('agrees with the per-user rows, which name why and the exception\'s own end date', async () => {
    const rows = [];
    for await (const row of complianceRows(ctx, { batchSize: 2 })) rows.push(row); // several keyset pages
    expect(rows.map((r) => r.email).sort()).toEqual(['at@example.org', 'exempt@example.org', 'formula@example.org', 'grace@example.org', 'none@example.org', 'ok@example.org', 'push@example.org']);
    const byEmail = Object.fromEntries(rows.map((r) => [r.email, r]));
    expect(byEmail['exempt@example.org']).toMatchObject({ state: 'exempt', date: exceptionUntil.toISOString(), elevated: true });
    expect(byEmail['grace@example.org']!.state).toBe('in-grace');
    expect(byEmail['grace@example.org']!.why).toContain(`elevated-push: in grace until ${longDay(dayFromNow(7))}`);
    expect(byEmail['ok@example.org']).toMatchObject({ state: 'compliant', methods: ['sms'] });
    expect(byEmail['ok@example.org']!.why).toEqual([`everyone-app (report only): non-compliant since ${longDay(effective)}`]);
    const summary = await complianceSummary(ctx);
    for (const state of ['compliant', 'exempt', 'action-needed', 'in-grace', 'non-compliant'] as const) {
      expect(rows.filter((r) => r.state === state).length, state).toBe(summary.users.byState[state]);
    }
  });

  it('reports one moment: rows changed while it is read are listed once, a user added meanwhile not at all', async () => {
    const emails: string[] = [];
    let touched = false;
    for await (const page of compliancePages(ctx, { batchSize: 1 })) {
      emails.push(...page.map((r) => r.email));
      if (!touched) {
        // After the first page every user row is rewritten (on PostgreSQL each gets a new version
        // elsewhere in the table), and someone joins, as on a live service.
        await ctx.store.database.db.updateTable('users').set({ updated_at: new Date().toISOString() }).execute();
        await user('late@example.org', 'Latecomer', { kinds: ['sms'] });
        touched = true;
      }
    }
    expect(emails.toSorted()).toEqual(['at@example.org', 'exempt@example.org', 'formula@example.org', 'grace@example.org', 'none@example.org', 'ok@example.org', 'push@example.org']);
    await ctx.store.database.db.deleteFrom('methods').where('user_id', 'in', ctx.store.database.db.selectFrom('users').select('id').where('email', '=', 'late@example.org')).execute();
    await disableUser(ctx, 'late@example.org', actor);
  });

  it('writes CSV with a header and one row per active user, neutralising cells a spreadsheet would run (OWASP CSV injection)', async () => {
    const out = collector();
    const count = await writeComplianceCsv(compliancePages(ctx, { batchSize: 3 }), out.stream);
    expect(count).toBe(7);
    const text = out.text();
    expect(text.split('\r\n')[0]).toBe('email,name,organisation,elevated,roles,groups,methods,state,date,why');
    const records = parseCsv(text, { columns: true }) as Array<Record<string, string>>;
    expect(records).toHaveLength(7);
    expect(records.map((r) => r.email)).not.toContain('gone@example.org');
    const byEmail = Object.fromEntries(records.map((r) => [r.email!, r]));
    expect(byEmail['formula@example.org']!.name).toBe(`'=HYPERLINK("http://evil.example","click")`);
    expect(byEmail['at@example.org']!.name).toBe(`'@SUM(1+1)`);
    expect(byEmail['ok@example.org']!.name).toBe('Olive');
    expect(byEmail['push@example.org']).toMatchObject({ elevated: 'yes', roles: 'helpdesk;user', methods: 'sms;push', state: 'compliant' });
    expect(byEmail['exempt@example.org']).toMatchObject({ state: 'exempt', date: exceptionUntil.toISOString() });
    for (const record of records) for (const cell of Object.values(record)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
  });
});
