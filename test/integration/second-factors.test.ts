/**
 * Second factors through buildApp() and inject(), on SQLite and PostgreSQL: setting up an authenticator
 * app and a phone on Security info, signing in with them, "Sign in another way", replays and races,
 * the code rules (expiry, wrong tries, resend), quotas, step-up, and the emails about every change.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/crypto/tokens.js';
import type { FastifyInstance } from 'fastify';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestBrowser, csrfFrom } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const PHONE = '+447400123456';
const actor = { kind: 'system' } as const;

/** The key shown under "Can't scan the QR code?", without its spaces. */
function keyFrom(html: string): string {
  const match = /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(html);
  if (!match) throw new Error('no key on the page');
  return match[1]!.replace(/ /g, '');
}

describe.each(dialects)('second factors on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;

  const codeAt = (key: string, offsetSteps = 0) => generateTotp(key, new Date(ctx.clock().getTime() + offsetSteps * 30_000));
  const latestCode = async (to: string) => {
    const [message] = await ctx.delivery.listOutbox({ to, limit: 1 });
    if (!message?.code) throw new Error(`no code sent to ${to}`);
    return message;
  };
  const mailFor = async (email: string) => ctx.delivery.listOutbox({ to: email, limit: 50 });

  async function newUser(email: string) {
    await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
  }

  /** Signs in with the password only (a user with no method yet) and sets up an authenticator app. */
  async function enrolTotp(email: string): Promise<{ browser: TestBrowser; key: string }> {
    const browser = new TestBrowser(app);
    const signedIn = await browser.signIn(email, PASSWORD);
    expect(signedIn.headers.location).toBe('/security-info/get-started?returnTo=%2Faccount');
    await browser.get('/security-info/add');
    const chosen = await browser.post('/security-info/add', { method: 'totp' });
    expect(chosen.statusCode).toBe(303);
    const page = await browser.get(chosen.headers.location!);
    const key = keyFrom(page.body);
    const done = await browser.post(chosen.headers.location!, { code: codeAt(key) });
    expect(done.headers.location).toBe('/security-info?done=added');
    return { browser, key };
  }

  /** Password, then a code from the app (the next step's, which the drift window allows — never sleep). */
  async function signInWithTotp(email: string, key: string, offsetSteps = 1) {
    const browser = new TestBrowser(app);
    const afterPassword = await browser.signIn(email, PASSWORD);
    expect(afterPassword.headers.location).toBe('/sign-in/verify');
    await browser.get('/sign-in/verify');
    const done = await browser.post('/sign-in/verify', { code: codeAt(key, offsetSteps) });
    return { browser, done };
  }

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { PHONE_CODES_PER_USER: '6', SIGN_IN_LOCKOUT_THRESHOLD: '100' }, { controlClock: true });
    await addOrganisation(ctx, 'Test Trust', actor);
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('lets a user with no method set up an authenticator app right after the password, and says so by email', async () => {
    await newUser('first@example.org');
    const browser = new TestBrowser(app);
    await browser.signIn('first@example.org', PASSWORD);
    const add = await browser.get('/security-info/add');
    expect(add.statusCode).toBe(200);
    expect(add.body).toContain('Add sign-in method');
    const chosen = await browser.post('/security-info/add', { method: 'totp' });
    const page = await browser.get(chosen.headers.location!);
    expect(page.body).toContain('<svg role="img" aria-label="QR code for setting up your authenticator app"');
    expect(page.body).toContain('Can&#39;t scan the QR code?');
    const key = keyFrom(page.body);
    expect(key).toMatch(/^[A-Z2-7]{32}$/); // 160 bits

    const wrong = await browser.post(chosen.headers.location!, { code: '000000' === codeAt(key) ? '111111' : '000000' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('The code is not correct');
    const user = await ctx.store.users.findByEmail('first@example.org');
    expect(await ctx.store.methods.countActive(user!.id)).toBe(0); // active only after one correct code

    const done = await browser.post(chosen.headers.location!, { code: codeAt(key) });
    expect(done.headers.location).toBe('/security-info?done=added');
    const info = await browser.get(done.headers.location!);
    expect(info.body).toContain('<h1 class="nhsuk-heading-l">Security info</h1>');
    expect(info.body).toContain('Authenticator app – code');
    expect(info.body).toContain('Your sign-in method has been added.');

    // The seed is sealed at rest, never stored as its key.
    const row = (await ctx.store.methods.activeForUser(user!.id))[0]!;
    expect(row.secret_sealed).not.toContain(key);
    expect(row.secret_sealed).toMatch(/^v1\./);

    const mail = await mailFor('first@example.org');
    expect(mail[0]).toMatchObject({ channel: 'email', subject: 'A sign-in method was added to your Portcullis account' });
    expect(mail[0]!.text).toContain('added straight after your password');
    expect(mail[0]!.text).not.toMatch(/\b\d{6}\b/);
    expect(mail[0]!.text).not.toContain('http');
    const added = (await ctx.store.audit.list({ subjectUserId: user!.id, type: 'method.added' }))[0]!;
    expect(JSON.parse(added.details)).toMatchObject({ kind: 'totp', via: 'registration-grant' });

    // The new app's code counts as this session's second factor, for the usual 10 minutes.
    const session = await ctx.store.database.db.selectFrom('sessions').select(['methods', 'registration_grant_until']).where('user_id', '=', user!.id).executeTakeFirstOrThrow();
    expect((JSON.parse(session.methods) as Array<{ method: string }>).map((m) => m.method)).toEqual(['password', 'totp']);
    expect(session.registration_grant_until).toBeNull(); // the grant was used up
    expect((await browser.get('/security-info/add')).statusCode).toBe(200);
    ctx.advance(11 * 60);
    const again = await browser.get('/security-info/add');
    expect(again.statusCode).toBe(303);
    expect(again.headers.location).toBe('/sign-in/step-up?returnTo=%2Fsecurity-info%2Fadd');
  });

  it('then asks for the app code after the password; refuses a wrong or replayed code; records both methods', async () => {
    await newUser('alice@example.org');
    const { key } = await enrolTotp('alice@example.org');
    const browser = new TestBrowser(app);
    await browser.get('/sign-in');
    await browser.post('/sign-in', { email: 'alice@example.org' });
    const sealedStep = browser.cookies.get('__Host-portcullis-sign-in')!;
    await browser.get('/sign-in/password');
    await browser.post('/sign-in/password', { password: PASSWORD });
    // Past the password the flow is stored, under a new random token: the sealed step is not its key.
    const token = browser.cookies.get('__Host-portcullis-sign-in')!;
    expect(sealedStep).toMatch(/^p\./);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = await ctx.store.signInFlows.find(hashToken(token), ctx.clock());
    expect(stored).toMatchObject({ step: 'second-factor', email: 'alice@example.org' });
    // The sealed step sent again starts over at the password, not at the stored flow.
    const again = new TestBrowser(app);
    again.cookies.set('__Host-portcullis-sign-in', sealedStep);
    expect((await again.get('/sign-in/verify')).headers.location).toBe('/sign-in');
    const prompt = await browser.get('/sign-in/verify');
    expect(prompt.body).toContain('Enter the code from your authenticator app');
    expect(prompt.body).toMatch(/<label[^>]*for="code"[^>]*>\s*Code\s*<\/label>/);
    expect(prompt.body).toMatch(/<button[^>]*>\s*Verify\s*<\/button>/);
    expect(prompt.body).not.toContain('Sign in another way'); // only one method

    const wrong = await browser.post('/sign-in/verify', { code: codeAt(key, -5) });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('The code is not correct');
    // The enrolment used the current step; the next step's code signs in.
    const code = codeAt(key, 1);
    const done = await browser.post('/sign-in/verify', { code });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe('/account');
    const account = await browser.get('/account');
    expect(account.body).toContain('your password and a code from your authenticator app');

    const replay = new TestBrowser(app);
    await replay.signIn('alice@example.org', PASSWORD);
    await replay.get('/sign-in/verify');
    const refused = await replay.post('/sign-in/verify', { code });
    expect(refused.statusCode).toBe(401);
    const user = await ctx.store.users.findByEmail('alice@example.org');
    const failures = await ctx.store.audit.list({ subjectUserId: user!.id, type: 'sign-in.failed' });
    expect(failures.map((f) => JSON.parse(f.details).reason)).toEqual(expect.arrayContaining(['code-incorrect', 'code-reused']));
  });

  it('signs in with codes computed by oathtool (an independent RFC 6238 implementation)', async () => {
    await newUser('oath@example.org');
    const { key } = await enrolTotp('oath@example.org');
    const oathtool = (offsetSteps: number) => {
      const when = new Date(ctx.clock().getTime() + offsetSteps * 30_000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
      return execFileSync('oathtool', ['--totp', '--base32', '--now', when, key], { encoding: 'utf8' }).trim();
    };
    expect(oathtool(1)).toBe(codeAt(key, 1));
    const browser = new TestBrowser(app);
    await browser.signIn('oath@example.org', PASSWORD);
    await browser.get('/sign-in/verify');
    expect((await browser.post('/sign-in/verify', { code: oathtool(1) })).headers.location).toBe('/account');
  });

  it('accepts a code once when two sign-ins race with it (RFC 6238 §5.2)', async () => {
    await newUser('racer@example.org');
    const { key } = await enrolTotp('racer@example.org');
    const a = new TestBrowser(app);
    const b = new TestBrowser(app);
    await a.signIn('racer@example.org', PASSWORD);
    await b.signIn('racer@example.org', PASSWORD);
    await a.get('/sign-in/verify');
    await b.get('/sign-in/verify');
    const code = codeAt(key, 1);
    const results = await Promise.all([a.post('/sign-in/verify', { code }), b.post('/sign-in/verify', { code })]);
    // One is accepted; the other is refused as a code used already (401) or, when it arrives while the
    // first is still being checked, as an attempt in progress (429: one attempt in flight per user, #12).
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses[0]).toBe(303);
    expect([401, 429]).toContain(statuses[1]);
  });

  it('steps up with a second factor before changes, and again after 10 minutes', async () => {
    await newUser('stepper@example.org');
    const { browser, key } = await enrolTotp('stepper@example.org');
    expect((await browser.get('/security-info/default')).statusCode).toBe(200); // the app's first code counts
    ctx.advance(11 * 60);
    const needsStepUp = await browser.get('/security-info/default');
    expect(needsStepUp.headers.location).toBe('/sign-in/step-up?returnTo=%2Fsecurity-info%2Fdefault');
    // Another site cannot start one (it could make us send texts).
    expect((await browser.get(needsStepUp.headers.location!, { 'sec-fetch-site': 'cross-site' })).headers.location).toBe('/security-info');
    const started = await browser.get(needsStepUp.headers.location!);
    expect(started.headers.location).toBe('/sign-in/verify');
    await browser.get('/sign-in/verify');
    const before = browser.cookies.get('__Host-portcullis-session');
    const stepped = await browser.post('/sign-in/verify', { code: codeAt(key, 1) });
    expect(stepped.headers.location).toBe('/security-info/default');
    expect(browser.cookies.get('__Host-portcullis-session')).not.toBe(before); // a new session id
    expect((await browser.get('/security-info/default')).statusCode).toBe(200);
    ctx.advance(11 * 60);
    expect((await browser.get('/security-info/default')).headers.location).toBe('/sign-in/step-up?returnTo=%2Fsecurity-info%2Fdefault');
  });

  it('adds a phone that gets texts: the code comes by text, and only a right code activates it', async () => {
    await newUser('phoebe@example.org');
    const { key } = await enrolTotp('phoebe@example.org');
    const { browser, done } = await signInWithTotp('phoebe@example.org', key);
    expect(done.headers.location).toBe('/account');
    await browser.get('/security-info/add');
    expect((await browser.post('/security-info/add', { method: 'phone' })).headers.location).toBe('/security-info/add/phone');
    await browser.get('/security-info/add/phone');

    const bad = await browser.post('/security-info/add/phone', { phone: '12', delivery: 'sms' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('Enter a phone number in the correct format');
    const abroad = await browser.post('/security-info/add/phone', { phone: '+1 202 555 0143', delivery: 'sms' });
    expect(abroad.body).toContain('Phone numbers from this country cannot be used. Use a number from the UK.');
    const noChoice = await browser.post('/security-info/add/phone', { phone: PHONE });
    expect(noChoice.body).toContain('Select how you want to get your code');

    const sent = await browser.post('/security-info/add/phone', { phone: '07400 123456', delivery: 'sms' });
    expect(sent.statusCode).toBe(303);
    const verifyPage = await browser.get(sent.headers.location!);
    expect(verifyPage.body).toContain('Check your phone');
    expect(verifyPage.body).toContain('+44 7••• •••456');
    const message = await latestCode(PHONE);
    expect(message).toMatchObject({ channel: 'sms', to: PHONE });
    expect(message.text).toContain(message.code!);

    // Codes are stored as keyed hashes only.
    const challengeId = new URL(sent.headers.location!, 'http://x').searchParams.get('challenge')!;
    const challenge = await ctx.store.database.db.selectFrom('challenges').selectAll().where('id', '=', challengeId).executeTakeFirstOrThrow();
    expect(challenge.code_hash).not.toContain(message.code!);

    const wrongCode = message.code === '123456' ? '654321' : '123456';
    expect((await browser.post(new URL(sent.headers.location!, 'http://x').pathname, { code: wrongCode, challenge: challengeId })).statusCode).toBe(401);
    const ok = await browser.post(new URL(sent.headers.location!, 'http://x').pathname, { code: message.code!, challenge: challengeId });
    expect(ok.headers.location).toBe('/security-info?done=added');
    const info = await browser.get('/security-info');
    expect(info.body).toContain('Phone – text message');
    expect(info.body).toContain('+44 7••• •••456');

    const again = await browser.post('/security-info/add/phone', { phone: PHONE, delivery: 'sms' });
    expect(again.body).toContain('This phone number is already set up');
  });

  it('signs in by text as the default method, with resend rules, expiry, five tries and "Sign in another way"', async () => {
    await newUser('tess@example.org');
    const { key } = await enrolTotp('tess@example.org');
    const { browser } = await signInWithTotp('tess@example.org', key);
    await browser.get('/security-info/add/phone');
    const sent = await browser.post('/security-info/add/phone', { phone: '+447400765432', delivery: 'sms' });
    const path = new URL(sent.headers.location!, 'http://x');
    await browser.get(sent.headers.location!);
    await browser.post(path.pathname, { code: (await latestCode('+447400765432')).code!, challenge: path.searchParams.get('challenge')! });
    const user = await ctx.store.users.findByEmail('tess@example.org');
    const sms = (await ctx.store.methods.activeForUser(user!.id)).find((m) => m.kind === 'sms')!;
    const defaultPage = await browser.get('/security-info/default');
    expect(defaultPage.body).toContain('Change default sign-in method');
    const confirmed = await browser.post('/security-info/default', { method: sms.id });
    expect(confirmed.headers.location).toBe('/security-info?done=default');
    expect((await browser.get('/security-info')).body).toContain('Phone – text message – +44 7••• •••432');
    expect((await mailFor('tess@example.org'))[0]!.subject).toBe('Your default sign-in method was changed');

    ctx.advance(60);
    const signIn = new TestBrowser(app);
    expect((await signIn.signIn('tess@example.org', PASSWORD)).headers.location).toBe('/sign-in/verify');
    const prompt = await signIn.get('/sign-in/verify');
    expect(prompt.body).toContain('We have sent a 6-digit code by text message to +44 7••• •••432');
    expect(prompt.body).toContain('Sign in another way');
    const first = await latestCode('+447400765432');

    const tooSoon = await signIn.post('/sign-in/resend', {});
    expect(tooSoon.statusCode).toBe(429);
    expect(tooSoon.body).toMatch(/Wait \d+ seconds before asking for another code/);
    ctx.advance(31);
    expect((await signIn.post('/sign-in/resend', {})).headers.location).toBe('/sign-in/verify?resent=1');
    const second = await latestCode('+447400765432');
    expect(second.id).not.toBe(first.id);
    await signIn.get('/sign-in/verify');
    if (first.code !== second.code) expect((await signIn.post('/sign-in/verify', { code: first.code! })).statusCode).toBe(401);

    // "Sign in another way" lists the user's other methods.
    const other = await signIn.get('/sign-in/other');
    expect(other.body).toContain('Use a code from your authenticator app');
    expect(other.body).toContain('Text a code to +44 7••• •••432');
    const totpMethod = (await ctx.store.methods.activeForUser(user!.id)).find((m) => m.kind === 'totp')!;
    expect((await signIn.post('/sign-in/other', { method: totpMethod.id })).headers.location).toBe('/sign-in/verify');
    expect((await signIn.get('/sign-in/verify')).body).toContain('Enter the code from your authenticator app');
    const done = await signIn.post('/sign-in/verify', { code: codeAt(key, 1) });
    expect(done.headers.location).toBe('/account');

    // Five wrong tries use a code up; a new code does not reset the count.
    const tries = new TestBrowser(app);
    await tries.signIn('tess@example.org', PASSWORD);
    await tries.get('/sign-in/verify');
    const code = (await latestCode('+447400765432')).code!;
    const wrong = code === '000000' ? '111111' : '000000';
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await tries.post('/sign-in/verify', { code: wrong })).statusCode);
    expect(statuses).toEqual([401, 401, 401, 401, 429]);
    const locked = await tries.post('/sign-in/verify', { code });
    expect(locked.statusCode).toBe(429);
    expect(locked.body).toContain('You have entered the wrong code too many times');
    ctx.advance(31);
    // Issue #12: a code whose tries are used up can never work, so no new one is sent for it.
    const sentBefore = (await ctx.delivery.listOutbox({ to: '+447400765432', limit: 50 })).length;
    const resend = await tries.post('/sign-in/resend', {});
    expect(resend.statusCode).toBe(429);
    expect(resend.body).toContain('You have entered the wrong code too many times, so we cannot send another one');
    expect((await ctx.delivery.listOutbox({ to: '+447400765432', limit: 50 })).length).toBe(sentBefore);
    await tries.get('/sign-in/verify');
    expect((await tries.post('/sign-in/verify', { code: (await latestCode('+447400765432')).code! })).statusCode).toBe(429);

    // A code lasts 10 minutes.
    const late = new TestBrowser(app);
    await late.signIn('tess@example.org', PASSWORD);
    await late.get('/sign-in/verify');
    const lateCode = (await latestCode('+447400765432')).code!;
    ctx.advance(601);
    const expired = await late.post('/sign-in/verify', { code: lateCode });
    expect(expired.statusCode).toBe(401);
    expect(expired.body).toContain('The code has expired');

    const reasons = (await ctx.store.audit.list({ subjectUserId: user!.id, type: 'sign-in.failed', limit: 100 })).map((e) => JSON.parse(e.details));
    expect(reasons).toEqual(expect.arrayContaining([
      expect.objectContaining({ method: 'sms', reason: 'code-incorrect' }),
      expect.objectContaining({ method: 'sms', reason: 'too-many-attempts' }),
      expect.objectContaining({ method: 'sms', reason: 'code-expired' }),
    ]));
  });

  it('binds a code to its sign-in: a code sent for one attempt does not work in another', async () => {
    await newUser('bound@example.org');
    const user = await ctx.store.users.findByEmail('bound@example.org');
    const { key } = await enrolTotp('bound@example.org');
    const { browser } = await signInWithTotp('bound@example.org', key);
    await browser.get('/security-info/add/phone');
    const sent = await browser.post('/security-info/add/phone', { phone: '+447400111222', delivery: 'voice' });
    const path = new URL(sent.headers.location!, 'http://x');
    await browser.get(sent.headers.location!);
    const message = await latestCode('+447400111222');
    expect(message.channel).toBe('voice');
    await browser.post(path.pathname, { code: message.code!, challenge: path.searchParams.get('challenge')! });
    const voice = (await ctx.store.methods.activeForUser(user!.id)).find((m) => m.kind === 'voice')!;
    await ctx.store.users.setDefaultMethod(user!.id, voice.id, new Date());

    ctx.advance(31);
    const one = new TestBrowser(app);
    await one.signIn('bound@example.org', PASSWORD);
    const oneCode = (await latestCode('+447400111222')).code!;
    ctx.advance(31);
    const two = new TestBrowser(app);
    await two.signIn('bound@example.org', PASSWORD);
    await two.get('/sign-in/verify');
    const twoCode = (await latestCode('+447400111222')).code!;
    if (oneCode !== twoCode) expect((await two.post('/sign-in/verify', { code: oneCode })).statusCode).toBe(401);
    expect((await two.post('/sign-in/verify', { code: twoCode })).headers.location).toBe('/account');
  });

  it('stops sending codes past the per-user quota, with a clear message (SMS pumping)', async () => {
    await newUser('pumped@example.org');
    const { key } = await enrolTotp('pumped@example.org');
    const { browser } = await signInWithTotp('pumped@example.org', key);
    await browser.get('/security-info/add/phone');
    const statuses: number[] = [];
    let last = '';
    for (let i = 0; i < 7; i += 1) {
      const response = await browser.post('/security-info/add/phone', { phone: `+4474009000${String(i).padStart(2, '0')}`, delivery: 'sms' });
      statuses.push(response.statusCode);
      last = response.body;
    }
    expect(statuses).toEqual([303, 303, 303, 303, 303, 303, 429]);
    expect(last).toContain('You have asked for too many codes');
  });

  it('deletes a method after a confirmation page, and emails about it', async () => {
    await newUser('dan@example.org');
    const { key } = await enrolTotp('dan@example.org');
    const { browser } = await signInWithTotp('dan@example.org', key);
    const user = await ctx.store.users.findByEmail('dan@example.org');
    const method = (await ctx.store.methods.activeForUser(user!.id))[0]!;
    const info = await browser.get('/security-info');
    expect(info.body).toContain(`href="/security-info/methods/${method.id}/delete"`);
    const confirm = await browser.get(`/security-info/methods/${method.id}/delete`);
    expect(confirm.body).toContain('Are you sure you want to delete this sign-in method?');
    expect(confirm.body).toContain('This is your only second way to sign in');
    const deleted = await browser.post(`/security-info/methods/${method.id}/delete`, {});
    expect(deleted.headers.location).toBe('/security-info?done=deleted');
    expect(await ctx.store.methods.countActive(user!.id)).toBe(0);
    expect((await mailFor('dan@example.org'))[0]!.subject).toBe('A sign-in method was removed from your Portcullis account');
    // Someone else's method cannot be deleted through this account.
    const other = await ctx.store.database.db.selectFrom('methods').select('id').where('user_id', '!=', user!.id).executeTakeFirstOrThrow();
    expect((await browser.post(`/security-info/methods/${other.id}/delete`, {})).statusCode).toBe(404);
  });

  it('changes the password with the current one and a recent second factor, ending other sessions', async () => {
    await newUser('pat@example.org');
    const { key } = await enrolTotp('pat@example.org');
    const { browser } = await signInWithTotp('pat@example.org', key);
    ctx.advance(30); // the next time step, so the other browser has an unused code
    const elsewhere = (await signInWithTotp('pat@example.org', key)).browser;
    expect((await elsewhere.get('/account')).statusCode).toBe(200);
    await browser.get('/security-info/password');
    const wrong = await browser.post('/security-info/password', { current: 'not-it', password: 'brand-new-lantern', confirm: 'brand-new-lantern' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('Your current password is not correct');
    const common = await browser.post('/security-info/password', { current: PASSWORD, password: 'password123', confirm: 'password123' });
    expect(common.body).toContain('too common');
    const changed = await browser.post('/security-info/password', { current: PASSWORD, password: 'brand-new-lantern', confirm: 'brand-new-lantern' });
    expect(changed.headers.location).toBe('/security-info?done=password');
    expect((await browser.get('/account')).statusCode).toBe(200);
    expect((await elsewhere.get('/account')).statusCode).toBe(303);
    expect((await mailFor('pat@example.org'))[0]!.subject).toBe('Your Portcullis password was changed');
  });

  it('signs out everywhere, this browser included, and emails about it', async () => {
    await newUser('sam@example.org');
    const { key } = await enrolTotp('sam@example.org');
    const { browser } = await signInWithTotp('sam@example.org', key);
    ctx.advance(30);
    const elsewhere = (await signInWithTotp('sam@example.org', key)).browser;
    expect((await elsewhere.get('/account')).statusCode).toBe(200);
    const page = await browser.get('/security-info/sign-out-everywhere');
    expect(csrfFrom(page.body)).toBeDefined();
    const out = await browser.post('/security-info/sign-out-everywhere', {});
    expect(out.headers.location).toBe('/signed-out?everywhere=1');
    expect((await browser.get('/account')).statusCode).toBe(303);
    expect((await elsewhere.get('/account')).statusCode).toBe(303);
    expect((await mailFor('sam@example.org'))[0]!.subject).toBe('You were signed out everywhere');
  });

  it('locks the second factor after 10 consecutive wrong codes (NIST SP 800-63B §5.2.2)', async () => {
    await newUser('guess@example.org');
    const { key } = await enrolTotp('guess@example.org');
    const browser = new TestBrowser(app);
    await browser.signIn('guess@example.org', PASSWORD);
    await browser.get('/sign-in/verify');
    const wrong = codeAt(key, 10);
    for (let i = 0; i < 10; i += 1) expect((await browser.post('/sign-in/verify', { code: wrong })).statusCode).toBe(401);
    const refused = await browser.post('/sign-in/verify', { code: codeAt(key, 1) });
    expect(refused.statusCode).toBe(429);
    expect(refused.body).toContain('You have entered too many wrong codes');
    const user = await ctx.store.users.findByEmail('guess@example.org');
    const reasons = (await ctx.store.audit.list({ subjectUserId: user!.id, type: 'sign-in.failed', limit: 20 })).map((e) => JSON.parse(e.details).reason);
    expect(reasons).toContain('throttled');
  });
});

describe('phone code quotas per client address and per country (SMS pumping)', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('sqlite', { PHONE_CODES_PER_ADDRESS: '3', PHONE_CODES_PER_COUNTRY: '5', PHONE_CODES_PER_USER: '100' });
  });
  afterAll(async () => ctx?.destroy());

  it('refuses the fourth code for one client address, and the sixth to one country, whoever asks', async () => {
    const { checkPhoneQuotas } = await import('../../src/app/methods/codes.js');
    const outcome = async (userId: string, ip: string) => {
      try {
        await checkPhoneQuotas(ctx, { userId, ip, country: 'GB' });
        return 'sent';
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    expect([await outcome('u1', '192.0.2.1'), await outcome('u2', '192.0.2.1'), await outcome('u3', '192.0.2.1'), await outcome('u4', '192.0.2.1')]).toEqual([
      'sent',
      'sent',
      'sent',
      'phone-quota-address',
    ]);
    expect([await outcome('u5', '192.0.2.2'), await outcome('u6', '192.0.2.3'), await outcome('u7', '192.0.2.4')]).toEqual(['sent', 'sent', 'phone-quota-country']);
  });
});
