/**
 * Push with number matching through buildApp() and inject(), on SQLite and PostgreSQL: pairing from
 * Security info with a test request, sign-in by push (approve, deny, report, wrong number, time-out),
 * the limits against push bombing, and the device API's rules: signatures (clock, replay, binding), what
 * a device whose pairing is not confirmed may do, removal within the method policy, fields named in
 * refusals, and the per-device request allowance.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { applyPolicyText, DEFAULT_POLICY_DOCUMENT, deletionRefusalFor } from '../../src/app/policy.js';
import { pairingStatus, startPairing } from '../../src/app/methods/push/pairing.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { deviceApiRoutes } from '../../src/server/device-api/routes.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { TestBrowser } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;

/** Push for those with elevated rights, in force since 2023 (the shipped example's requirement, alone). */
const ELEVATED_PUSH_POLICY = `version: 1
timeZone: UTC
methods:
  sms: { enabled: true }
  voice: { enabled: true }
  totp: { enabled: true }
  push: { enabled: true }
  tap: { enabled: true }
requirements:
  - id: elevated-push
    name: Those with elevated rights must use push notifications
    include: [elevated]
    strength: app-push
    effective: 2023-11-30
    graceDays: 0
    mode: enforce
    bootstrap: { duringGrace: any-registered, afterGrace: tap-only }
`;

describe.each(dialects)('push on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const advance = (seconds: number) => ctx.advance(seconds);
  const newDevice = async () => {
    const device = await TestDevice.create(app);
    device.clock = () => ctx.clock().getTime();
    return device;
  };
  const codeAt = (key: string, steps: number) => generateTotp(key, new Date(ctx.clock().getTime() + steps * 30_000));

  /** A user with an authenticator code app, signed in with it (so changes are allowed). */
  async function userWithCodeApp(email: string, roles: Array<{ role: string; organisations: string[] }> = []) {
    await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Test Trust', roles, password: PASSWORD }, actor);
    const browser = new TestBrowser(app);
    await browser.signIn(email, PASSWORD);
    const started = await browser.get('/security-info/add/code-app');
    const page = await browser.get(started.headers.location!);
    const key = /id="totp-key">([A-Z2-7 ]+)</.exec(page.body)![1]!.replace(/ /g, '');
    await browser.post(started.headers.location!, { code: codeAt(key, 0) });
    return { browser, key };
  }

  /** Security info → Add sign-in method → Authenticator app → pair a device → approve the test request. */
  async function pairPhone(browser: TestBrowser, name = 'Work phone') {
    await browser.get('/security-info/add');
    const page = await browser.post('/security-info/add', { method: 'push' });
    expect(page.statusCode).toBe(200);
    const url = /href="(http:\/\/localhost:8080\/authenticator\/#pair=[A-Za-z0-9_-]+)"/.exec(page.body)![1]!;
    const enrolmentId = /data-next="\/security-info\/add\/app\/([^"]+)"/.exec(page.body)![1]!;
    const device = await newDevice();
    expect((await device.pair(url, name)).statusCode).toBe(201);
    const status = await browser.get(`/security-info/add/app/${enrolmentId}`);
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(status.body)![1]!;
    const [test] = await device.pending();
    expect((await device.decide(test!.id, 'approve', number)).statusCode).toBe(200);
    const done = await browser.get(`/security-info/add/app/${enrolmentId}`);
    expect(done.headers.location).toBe(`/security-info/added/${device.deviceId}`);
    return { device, url, enrolmentId };
  }

  /** Password, then the push page; returns the number shown. */
  async function signInToPush(email: string) {
    const browser = new TestBrowser(app);
    expect((await browser.signIn(email, PASSWORD)).headers.location).toBe('/sign-in/verify');
    const page = await browser.get('/sign-in/verify');
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(page.body)?.[1];
    return { browser, page, number };
  }

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { PUSH_NUMBER_DIGITS_ELEVATED: '6', PUSH_PER_HOUR: '10' }, { controlClock: true });
    await addOrganisation(ctx, 'Test Trust', actor);
    await addUser(ctx, { email: 'boss@example.org', displayName: 'Global Boss', organisation: 'Test Trust', roles: [{ role: 'global-admin', organisations: [] }], password: PASSWORD }, actor);
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it("records a phone's approval in four round trips before the waiting page hears of it, five in all, on PostgreSQL (issue #18)", async () => {
    const { browser } = await userWithCodeApp('rita@example.org');
    const { device } = await pairPhone(browser);
    const { number } = await signInToPush('rita@example.org');
    const [challenge] = await device.pending();
    const before = { ...ctx.store.database.counts };
    const decided = await device.decide(challenge!.id, 'approve', number!);
    expect(decided.statusCode).toBe(200);
    const counts = ctx.store.database.counts;
    // The device, [its allowance, the replay record], [its method, user and the challenge, last seen],
    // the decision; then the audit event.
    if (dialect === 'postgres') expect(counts.roundTrips - before.roundTrips).toBeLessThanOrEqual(5);
    expect(counts.statements - before.statements).toBeLessThanOrEqual(9);
  });

  it('pairs a phone from Security info with a one-time code and a test request, then offers it as the default', async () => {
    const { browser } = await userWithCodeApp('paula@example.org');
    // An explicit default (the code app), so the new phone is offered as the default rather than
    // becoming it by being the strongest method.
    const user0 = await ctx.store.users.findByEmail('paula@example.org');
    const codeApp = (await ctx.store.methods.activeForUser(user0!.id))[0]!;
    await browser.get('/security-info/default');
    expect((await browser.post('/security-info/default', { method: codeApp.id })).headers.location).toBe('/security-info?done=default');
    await browser.get('/security-info/add');
    const page = await browser.post('/security-info/add', { method: 'push' });
    expect(page.body).toContain('<svg role="img" aria-label="QR code for setting up the Portcullis Authenticator"');
    expect(page.body).toContain('I want to use a different authenticator app');
    const url = /href="(http:\/\/localhost:8080\/authenticator\/#pair=([A-Za-z0-9_-]+))"/.exec(page.body)!;
    expect(Buffer.from(url[2]!, 'base64url').length).toBeGreaterThanOrEqual(14); // at least 112 bits
    const enrolmentId = /data-next="\/security-info\/add\/app\/([^"]+)"/.exec(page.body)![1]!;
    // The code is stored only as its hash.
    const stored = await ctx.store.database.db.selectFrom('device_enrolments').selectAll().where('id', '=', enrolmentId).executeTakeFirstOrThrow();
    expect(stored.code_hash).not.toContain(url[2]!);

    const waiting = await browser.get(`/security-info/add/app/${enrolmentId}`);
    expect(waiting.body).toContain('We have not heard from your phone yet');

    const device = await newDevice();
    const paired = await device.pair(url[1]!, 'Work phone');
    expect(paired.statusCode).toBe(201);
    expect(paired.json()).toMatchObject({ account: { email: 'paula@example.org', organisation: 'Test Trust' }, server: { origin: 'http://localhost:8080' } });
    expect((await (await newDevice()).pair(url[1]!)).statusCode).toBe(410); // single use

    const status = await browser.get(`/security-info/add/app/${enrolmentId}`);
    expect(status.body).toContain('Approve the test request');
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(status.body)![1]!;
    expect(number).toMatch(/^\d{2}$/);
    const [test] = await device.pending();
    expect(test).toMatchObject({ purpose: 'test', numberLength: 2 });
    expect(JSON.stringify(test)).not.toContain(`"${number}"`); // the number never goes to the device
    const user = await ctx.store.users.findByEmail('paula@example.org');
    expect(await ctx.store.methods.countActive(user!.id, 'push')).toBe(0); // active only after the test
    expect((await device.decide(test!.id, 'approve', number)).json()).toEqual({ status: 'approved' });
    expect(await ctx.store.methods.countActive(user!.id, 'push')).toBe(1);

    const done = await browser.get(`/security-info/add/app/${enrolmentId}`);
    expect(done.headers.location).toBe(`/security-info/added/${device.deviceId}`);
    const added = await browser.get(done.headers.location!);
    expect(added.body).toContain('Make it your default sign-in method?');
    expect((await browser.post('/security-info/default', { method: device.deviceId })).headers.location).toBe('/security-info?done=default');
    expect((await browser.get('/security-info')).body).toContain('App based authentication – notification – Work phone');
  });

  it('signs in by push: the page shows a number, the app approves with it, and the session records push', async () => {
    const { browser } = await userWithCodeApp('sam@example.org');
    const { device } = await pairPhone(browser);
    const user = await ctx.store.users.findByEmail('sam@example.org');
    await ctx.store.users.setDefaultMethod(user!.id, device.deviceId, ctx.clock());
    advance(11);

    const { browser: signIn, page, number } = await signInToPush('sam@example.org');
    expect(page.body).toContain('Approve the sign-in on your phone');
    expect(number).toMatch(/^\d{2}$/);
    const [challenge] = await device.pending();
    expect(challenge).toMatchObject({ purpose: 'sign-in', app: 'Portcullis sign-in', ip: '203.0.113.10', numberLength: 2 });

    // Not approved yet: "Continue" says so and changes nothing.
    const early = await signIn.post('/sign-in/verify', {});
    expect(early.statusCode).toBe(409);
    expect(early.body).toContain('The request has not been approved yet');

    expect((await device.decide(challenge!.id, 'approve', number)).json()).toEqual({ status: 'approved' });
    const done = await signIn.post('/sign-in/verify', {});
    expect(done.headers.location).toBe('/account');
    const session = await ctx.store.database.db.selectFrom('sessions').select('methods').where('user_id', '=', user!.id).orderBy('created_at', 'desc').executeTakeFirstOrThrow();
    expect((JSON.parse(session.methods) as Array<{ method: string }>).map((m) => m.method)).toEqual(['password', 'push']);
    // The approval is used up: a second request on the same sign-in cannot make another session.
    expect((await device.decide(challenge!.id, 'approve', number)).statusCode).toBe(409);
  });

  it('refuses a denied push ("MFA denied; user declined") and a wrong number, counting both toward the lockout', async () => {
    const { browser } = await userWithCodeApp('dina@example.org');
    const { device } = await pairPhone(browser);
    const user = await ctx.store.users.findByEmail('dina@example.org');
    await ctx.store.users.setDefaultMethod(user!.id, device.deviceId, ctx.clock());
    advance(11);

    const first = await signInToPush('dina@example.org');
    const [one] = await device.pending();
    expect((await device.decide(one!.id, 'deny')).json()).toEqual({ status: 'denied' });
    const denied = await first.browser.post('/sign-in/verify', {});
    expect(denied.statusCode).toBe(401);
    expect(denied.body).toContain('The sign-in request was declined on your authenticator app');

    advance(11);
    const second = await signInToPush('dina@example.org');
    const [two] = await device.pending();
    const wrong = second.number === '10' ? '11' : '10';
    const answer = await device.decide(two!.id, 'approve', wrong);
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ error: 'wrong-number' });
    // A wrong number ends the request: the right one afterwards does not rescue it.
    expect((await device.decide(two!.id, 'approve', second.number)).statusCode).toBe(409);
    const refused = await second.browser.post('/sign-in/verify', {});
    expect(refused.body).toContain('The number entered in your authenticator app did not match');

    const reasons = (await ctx.store.audit.list({ subjectUserId: user!.id, type: 'sign-in.failed', limit: 50 })).map((e) => JSON.parse(e.details).reason);
    expect(reasons).toEqual(expect.arrayContaining(['push-denied', 'push-wrong-number']));
    const counter = await ctx.throttles.get(`second-factor:user:${user!.id}`, ctx.clock());
    expect(counter?.count).toBe(2);
  });

  it('times out after 60 seconds without counting a failure', async () => {
    const { browser } = await userWithCodeApp('tim@example.org');
    const { device } = await pairPhone(browser);
    const user = await ctx.store.users.findByEmail('tim@example.org');
    await ctx.store.users.setDefaultMethod(user!.id, device.deviceId, ctx.clock());
    advance(11);
    const { browser: signIn } = await signInToPush('tim@example.org');
    const [challenge] = await device.pending();
    advance(61);
    expect((await device.decide(challenge!.id, 'approve', '12')).statusCode).toBe(410);
    const late = await signIn.post('/sign-in/verify', {});
    expect(late.statusCode).toBe(401);
    expect(late.body).toContain('not approved in time');
    expect(await ctx.throttles.get(`second-factor:user:${user!.id}`, ctx.clock())).toBeNull();
    const reasons = (await ctx.store.audit.list({ subjectUserId: user!.id, type: 'sign-in.failed' })).map((e) => JSON.parse(e.details).reason);
    expect(reasons).toContain('push-timeout');
  });

  it('limits push bombing: one pending request, 10 seconds apart, at most 10 an hour', async () => {
    const { browser } = await userWithCodeApp('bomb@example.org');
    const { device } = await pairPhone(browser);
    const user = await ctx.store.users.findByEmail('bomb@example.org');
    await ctx.store.users.setDefaultMethod(user!.id, device.deviceId, ctx.clock());
    advance(11);

    const first = await signInToPush('bomb@example.org');
    // A reload of the same sign-in shows the same request; another sign-in meanwhile is refused.
    expect((await first.browser.get('/sign-in/verify')).body).toContain(`</span>${first.number}</p>`);
    const other = new TestBrowser(app);
    const pending = await other.signIn('bomb@example.org', PASSWORD);
    expect(pending.statusCode).toBe(429);
    expect(pending.body).toContain('A sign-in request is already waiting on your authenticator app');
    expect(await device.pending()).toHaveLength(1);

    const [challenge] = await device.pending();
    await device.decide(challenge!.id, 'deny');
    const tooSoon = await other.post('/sign-in/other', { method: device.deviceId });
    expect(tooSoon.body).toMatch(/Wait \d+ seconds before sending another request/);

    // Ten an hour: nine more, each 11 s apart and each denied, then the eleventh is refused.
    for (let i = 0; i < 8; i += 1) {
      advance(11);
      const attempt = new TestBrowser(app);
      await attempt.signIn('bomb@example.org', PASSWORD);
      const [next] = await device.pending();
      expect(next).toBeDefined();
      await device.decide(next!.id, 'deny');
    }
    advance(11);
    const tenth = new TestBrowser(app);
    await tenth.signIn('bomb@example.org', PASSWORD);
    await device.decide((await device.pending())[0]!.id, 'deny');
    advance(11);
    const eleventh = new TestBrowser(app);
    expect((await eleventh.signIn('bomb@example.org', PASSWORD)).body).toContain('Too many requests have been sent to your authenticator app');
    expect(await device.pending()).toHaveLength(0);
  });

  it('"No, it\'s not me" refuses the sign-in, blocks push, emails the user and alerts administrators', async () => {
    const { browser, key } = await userWithCodeApp('victim@example.org');
    const { device } = await pairPhone(browser);
    const user = await ctx.store.users.findByEmail('victim@example.org');
    await ctx.store.users.setDefaultMethod(user!.id, device.deviceId, ctx.clock());
    advance(11);
    const { browser: attacker } = await signInToPush('victim@example.org');
    const [challenge] = await device.pending();
    expect((await device.decide(challenge!.id, 'report')).json()).toEqual({ status: 'reported' });
    const refused = await attacker.post('/sign-in/verify', {});
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('reported as not you');

    expect((await ctx.store.users.findById(user!.id))!.push_blocked_at).not.toBeNull();
    const [mail] = await ctx.delivery.listOutbox({ to: 'victim@example.org', limit: 1 });
    expect(mail!.subject).toBe('You reported a sign-in request as not you');
    const [alert] = await ctx.delivery.listOutbox({ to: 'boss@example.org', limit: 1 });
    expect(alert!.subject).toBe('Fraud reported: a sign-in request to victim@example.org was reported as not them');
    expect((await ctx.store.audit.list({ subjectUserId: user!.id, type: 'push.fraud-reported' })).length).toBe(1);

    // Push stays off: the next sign-in says so and the user signs in another way.
    advance(11);
    const next = new TestBrowser(app);
    const page = await next.signIn('victim@example.org', PASSWORD);
    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('Sign-in requests to your authenticator app are turned off');
    expect(await device.pending()).toHaveLength(0);
    const totp = (await ctx.store.methods.activeForUser(user!.id)).find((m) => m.kind === 'totp')!;
    await next.post('/sign-in/other', { method: totp.id });
    expect((await next.post('/sign-in/verify', { code: codeAt(key, 1) })).headers.location).toBe('/account');
  });

  it('uses a 6-digit number for elevated roles when configured', async () => {
    const { browser } = await userWithCodeApp('admin6@example.org', [{ role: 'helpdesk', organisations: [] }]);
    const { device } = await pairPhone(browser);
    const user = await ctx.store.users.findByEmail('admin6@example.org');
    await ctx.store.users.setDefaultMethod(user!.id, device.deviceId, ctx.clock());
    advance(11);
    const { number } = await signInToPush('admin6@example.org');
    expect(number).toMatch(/^\d{6}$/);
    expect((await device.pending())[0]!.numberLength).toBe(6);
  });

  it('checks every device request: signature, clock, one-time jti, method and path, known device', async () => {
    const { browser } = await userWithCodeApp('dev@example.org');
    const { device } = await pairPhone(browser);
    const path = '/device/v1/challenges';
    const jws = await device.sign('GET', path);
    expect((await device.request('GET', path, {}, { jws })).statusCode).toBe(200);
    const replay = await device.request('GET', path, {}, { jws });
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ error: 'device-replay' });

    const skewed = await device.request('GET', path, {}, { iat: Math.floor(ctx.clock().getTime() / 1000) + 120 });
    expect(skewed.statusCode).toBe(401);
    expect(skewed.json()).toMatchObject({ error: 'device-clock-skew' });
    expect(Math.abs((skewed.json() as { serverTime: number }).serverTime - Math.floor(ctx.clock().getTime() / 1000))).toBeLessThanOrEqual(1);
    expect((await device.request('GET', path, {}, { iat: Math.floor(ctx.clock().getTime() / 1000) - 59 })).statusCode).toBe(200);

    // A signature for one endpoint does not open another.
    const elsewhere = await device.sign('GET', '/device/v1/devices');
    expect((await device.request('GET', path, {}, { jws: elsewhere })).json()).toMatchObject({ error: 'device-signature-invalid' });
    const [head, payload, signature] = (await device.sign('GET', path)).split('.');
    const forged = `${head}.${payload}.${signature!.slice(0, -4)}AAAA`;
    expect((await device.request('GET', path, {}, { jws: forged })).json()).toMatchObject({ error: 'device-signature-invalid' });
    expect((await app.inject({ method: 'GET', url: path })).statusCode).toBe(401);

    const stranger = await newDevice();
    stranger.deviceId = 'no-such-device';
    expect((await stranger.request('GET', path)).json()).toMatchObject({ error: 'device-unknown' });

    // The device lists, renames and removes itself.
    expect((await device.request('GET', '/device/v1/devices')).json()).toMatchObject({ devices: [{ id: device.deviceId, name: 'Work phone', current: true }] });
    expect((await device.request('POST', '/device/v1/device/name', { name: 'Old phone' })).json()).toEqual({ id: device.deviceId, name: 'Old phone' });
    expect((await device.request('POST', '/device/v1/device/name', { name: '' })).statusCode).toBe(400);
    expect((await device.request('POST', '/device/v1/device/remove')).json()).toEqual({ removed: true });
    expect((await device.request('GET', path)).json()).toMatchObject({ error: 'device-unknown' });
    const [mail] = await ctx.delivery.listOutbox({ to: 'dev@example.org', limit: 1 });
    expect(mail!.subject).toBe('A sign-in method was removed from your Portcullis account');
  });

  it('allows up to 5 devices per user', async () => {
    const { browser } = await userWithCodeApp('many@example.org');
    for (let i = 0; i < 5; i += 1) await pairPhone(browser, `Phone ${i + 1}`);
    await browser.get('/security-info/add');
    const sixth = await browser.post('/security-info/add', { method: 'push' });
    expect(sixth.statusCode).toBe(409);
    expect(sixth.body).toContain('You already have 5 sign-in methods of this type');
  });

  it('lets a device whose pairing is not yet confirmed only read and answer its test request (issue #12)', async () => {
    const { user } = await addUser(ctx, { email: 'pending@example.org', displayName: 'Pending', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    const pairing = await startPairing(ctx, user);
    const device = await newDevice();
    expect((await device.pair(pairing.url, 'New phone')).statusCode).toBe(201);
    const [test] = await device.pending();
    expect(test).toMatchObject({ purpose: 'test', status: 'pending' });
    expect((await device.request('GET', `/device/v1/challenges/${test!.id}`)).json()).toMatchObject({ id: test!.id, purpose: 'test' });

    // A sign-in request for this device, as if one had been started: not its to see or answer yet.
    const now = ctx.clock();
    const signInId = randomUUID();
    await ctx.store.push.insertChallenge({
      id: signInId,
      user_id: user.id,
      method_id: device.deviceId,
      number: '12',
      purpose: 'sign-in',
      binding: 'flow:elsewhere',
      app: 'Portcullis sign-in',
      ip: '203.0.113.10',
      location: null,
      status: 'pending',
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + 60_000).toISOString(),
    });
    expect((await device.pending()).map((c) => c.id)).toEqual([test!.id]);

    const refused: Array<['GET' | 'POST', string, Record<string, unknown>]> = [
      ['GET', '/device/v1/devices', {}],
      ['POST', '/device/v1/device/name', { name: 'Renamed phone' }],
      ['POST', '/device/v1/device/remove', {}],
      ['POST', '/device/v1/push-subscription', { pushSubscription: null }],
      ['GET', '/device/v1/events', {}],
      ['GET', `/device/v1/challenges/${signInId}`, {}],
      ['POST', `/device/v1/challenges/${signInId}/decision`, { decision: 'deny' }],
    ];
    for (const [method, path, fields] of refused) {
      const answer = await device.request(method, path, fields);
      expect(answer.statusCode, path).toBe(403);
      expect(answer.headers['content-type'], path).toMatch(/^application\/json/);
      expect(answer.json(), path).toEqual({ error: 'device-pending', message: 'This device is not set up yet. Approve the test request with the number shown on Security info first.' });
    }
    // Nothing changed: still pending, its name kept, the other request unanswered, nothing removed.
    const method = await ctx.store.methods.find(device.deviceId);
    expect(method).toMatchObject({ status: 'pending', label: 'New phone' });
    expect((await ctx.store.push.findChallenge(signInId))!.status).toBe('pending');
    expect(await ctx.store.audit.list({ subjectUserId: user.id, type: 'method.removed' })).toEqual([]);

    // Once the test request is approved with the number Security info shows, the device may do the rest.
    const { number } = await pairingStatus(ctx, user, pairing.enrolmentId);
    expect((await device.decide(test!.id, 'approve', number)).json()).toEqual({ status: 'approved' });
    expect((await device.request('GET', '/device/v1/devices')).json()).toMatchObject({ devices: [{ id: device.deviceId, name: 'New phone', current: true }] });
    expect((await device.request('POST', '/device/v1/device/name', { name: 'Renamed phone' })).statusCode).toBe(200);
  });

  it('refuses removing the phone from the app while it is the only method meeting the policy, as Security info does (issue #12)', async () => {
    const { browser } = await userWithCodeApp('only@example.org', [{ role: 'helpdesk', organisations: [] }]);
    const { device } = await pairPhone(browser, 'Only phone');
    const user = (await ctx.store.users.findByEmail('only@example.org'))!;
    const mailsBefore = (await ctx.delivery.listOutbox({ to: 'only@example.org', limit: 100 })).length;
    await applyPolicyText(ctx, ELEVATED_PUSH_POLICY, actor);
    try {
      // The decision Security info makes (src/core/policy/changes.ts), not a second reading of the policy.
      const reason = await deletionRefusalFor(ctx, user, device.deviceId);
      expect(reason).toBe('It is your only sign-in method that meets “Those with elevated rights must use push notifications” (from 30 November 2023). Add another one that does first.');
      const refused = await device.request('POST', '/device/v1/device/remove');
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toEqual({ error: 'method-last-compliant', message: `You cannot delete App based authentication – notification – Only phone. ${reason}`, reason });
      // Nothing changed: the phone is still a method, nothing audited or emailed as removed.
      expect(await ctx.store.methods.countActive(user.id, 'push')).toBe(1);
      expect(await ctx.store.audit.list({ subjectUserId: user.id, type: 'method.removed' })).toEqual([]);
      expect((await ctx.delivery.listOutbox({ to: 'only@example.org', limit: 100 })).length).toBe(mailsBefore);
      // Security info says the same of the same phone.
      expect((await browser.get(`/security-info/methods/${device.deviceId}/delete`)).body).toContain(reason!);

      // With a second phone, the first may go: the rule, not a blanket refusal.
      await pairPhone(browser, 'Second phone');
      expect((await device.request('POST', '/device/v1/device/remove')).json()).toEqual({ removed: true });
      expect((await ctx.store.methods.activeForUser(user.id)).filter((m) => m.kind === 'push').map((m) => m.label)).toEqual(['Second phone']);
    } finally {
      await applyPolicyText(ctx, JSON.stringify(DEFAULT_POLICY_DOCUMENT), actor);
    }
  });

  it('refuses a pairing key that is not a P-256 point, a number that is not a string of digits, and other malformed fields with a 4xx naming the field, changing nothing (issue #12)', async () => {
    const { user } = await addUser(ctx, { email: 'fields@example.org', displayName: 'Fields', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    const pairing = await startPairing(ctx, user);
    const device = await newDevice();
    const { x, y } = device.publicJwk as { x: string; y: string };
    const offCurve = Buffer.from(y, 'base64url');
    offCurve[31]! ^= 1;
    const badKeys: unknown[] = [
      { kty: 'EC', crv: 'P-256', x, y: offCurve.toString('base64url') }, // valid base64url, not a point on the curve
      { kty: 'EC', crv: 'P-256', x: 'AAAA', y }, // too short for P-256
      { kty: 'EC', crv: 'P-256', x: x.replace(/^./, '*'), y }, // not base64url
      { kty: 'EC', crv: 'P-256', x, y, d: x }, // a private key
      { kty: 'EC', crv: 'P-384', x, y },
      'not a key',
    ];
    for (const jwk of badKeys) {
      const answer = await device.pair(pairing.url, 'Phone', {}, { headerJwk: jwk });
      expect(answer.statusCode, JSON.stringify(jwk)).toBe(401);
      expect(answer.json(), JSON.stringify(jwk)).toMatchObject({ error: 'device-signature-invalid', field: 'jwk' });
    }
    // PostgreSQL text cannot hold a NUL: refused as a bad field, not a failed query.
    expect((await device.pair(pairing.url, 'Pho\u0000ne')).json()).toMatchObject({ error: 'device-name-invalid', field: 'name' });
    // The one-time code was not spent: the device's own key pairs with it.
    expect((await device.pair(pairing.url, 'Phone')).statusCode).toBe(201);

    const [test] = await device.pending();
    const { number } = await pairingStatus(ctx, user, pairing.enrolmentId);
    for (const typed of [Number(number), null, {}, { toString: 1 }, [number], true, `${number}a`]) {
      const answer = await device.decide(test!.id, 'approve', typed);
      expect(answer.statusCode, JSON.stringify(typed)).toBe(400);
      expect(answer.json(), JSON.stringify(typed)).toEqual({ error: 'number-invalid', message: 'Enter the number shown on the sign-in page, using only the digits 0 to 9', field: 'number' });
    }
    expect((await device.decide(test!.id, 'approve')).json()).toMatchObject({ error: 'number-missing', field: 'number' });
    expect((await device.request('POST', `/device/v1/challenges/${test!.id}/decision`, { decision: 'maybe' })).json()).toMatchObject({ error: 'request-invalid', field: 'decision' });
    // Nothing changed: the request still waits, and the right number approves it.
    expect((await ctx.store.push.findChallenge(test!.id))!.status).toBe('pending');
    expect((await device.decide(test!.id, 'approve', number)).json()).toEqual({ status: 'approved' });
    expect((await device.request('POST', '/device/v1/device/name', { name: 42 })).json()).toMatchObject({ error: 'device-name-invalid', field: 'name' });
    expect((await device.request('POST', '/device/v1/device/name', { name: 'Old\u0000phone' })).json()).toMatchObject({ error: 'device-name-invalid', field: 'name' });
    const stranger = await newDevice();
    stranger.deviceId = 'no\u0000device';
    expect((await stranger.request('GET', '/device/v1/challenges')).json()).toMatchObject({ error: 'device-signature-invalid', field: 'kid' });
    expect((await device.request('POST', '/device/v1/push-subscription', { pushSubscription: { endpoint: 'http://10.0.0.1/' } })).json()).toMatchObject({ error: 'push-subscription-invalid', field: 'pushSubscription' });
  });

  it('describes every device route in its OpenAPI document', async () => {
    const document = (await app.inject({ method: 'GET', url: '/device/v1/openapi.json' })).json() as { openapi: string; paths: Record<string, Record<string, unknown>>; 'x-vapid-public-key': string };
    expect(document.openapi).toBe('3.1.0');
    expect(Buffer.from(document['x-vapid-public-key'], 'base64url')).toHaveLength(65);
    // Every route the device API plugin registers, collected as it registers them.
    const probe = Fastify();
    const registered: string[] = [];
    probe.addHook('onRoute', (route) => {
      if (route.method !== 'HEAD') registered.push(route.url.replace('/device/v1', ''));
    });
    await probe.register(deviceApiRoutes, { ctx });
    await probe.ready();
    await probe.close();
    expect(registered).toContain('/challenges/:id/decision');
    for (const route of registered.filter((r) => r !== '/openapi.json')) expect(Object.keys(document.paths)).toContain(route.replace(/:(\w+)/g, '{$1}'));
    // The refusals of issue #12 are in the contract: a paired device's requests may be rate-limited
    // (with Retry-After), all but the test request's are refused while pending, removal may be refused.
    const responses = (path: string) => Object.values(document.paths[path]!)[0] as { responses: Record<string, { headers?: Record<string, unknown> }> };
    for (const path of Object.keys(document.paths).filter((p) => p !== '/pair')) expect(responses(path).responses['429']?.headers ?? {}, path).toHaveProperty('Retry-After');
    for (const path of ['/events', '/devices', '/device/name', '/device/remove', '/push-subscription', '/challenges/{id}', '/challenges/{id}/decision']) {
      expect(responses(path).responses, path).toHaveProperty('403');
    }
    expect(responses('/device/remove').responses).toHaveProperty('409');
  });
});

describe.each(dialects)('the device API request allowance on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;

  beforeAll(async () => {
    // A small allowance to reach; a long-lived test request, so that waiting out a window keeps it.
    ctx = await createTestContext(dialect, { DEVICE_API_REQUESTS_PER_MINUTE: '10', PUSH_CHALLENGE_LIFETIME: '300s' }, { controlClock: true });
    await addOrganisation(ctx, 'Test Trust', actor);
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('answers 429 rate-limited with Retry-After past DEVICE_API_REQUESTS_PER_MINUTE, however the requests arrive, before doing their work (issue #12)', async () => {
    const { user } = await addUser(ctx, { email: 'busy@example.org', displayName: 'Busy', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    // The start of a minute by the server's clock, so the window does not end part way through.
    ctx.advance((60_000 - (ctx.clock().getTime() % 60_000)) / 1000 + 1);
    const pairing = await startPairing(ctx, user);
    const device = await TestDevice.create(app);
    device.clock = () => ctx.clock().getTime();
    const paired = await device.pair(pairing.url, 'Busy phone');
    expect(paired.statusCode).toBe(201);
    const { testChallengeId } = paired.json() as { testChallengeId: string };

    // Requests not signed with the device's key do not use up its allowance.
    const [head, payload, signature] = (await device.sign('GET', '/device/v1/challenges')).split('.');
    for (let i = 0; i < 12; i += 1) {
      expect((await device.request('GET', '/device/v1/challenges', {}, { jws: `${head}.${payload}.${signature!.slice(0, -4)}AAAA` })).statusCode).toBe(401);
    }

    // Twelve at once: exactly ten are answered (the count is taken atomically, before the work).
    const answers = await Promise.all(Array.from({ length: 12 }, () => device.request('GET', '/device/v1/challenges')));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([...Array<number>(10).fill(200), 429, 429]);
    const limited = answers.find((a) => a.statusCode === 429)!;
    expect(limited.json()).toEqual({ error: 'rate-limited', message: 'Too many requests. Wait a moment and try again.' });
    // RFC 9110 §10.2.3: Retry-After in whole seconds, here until the minute ends.
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);

    // A refused request does nothing: the test request is not approved.
    const { number } = await pairingStatus(ctx, user, pairing.enrolmentId);
    expect((await device.decide(testChallengeId, 'approve', number)).statusCode).toBe(429);
    expect((await ctx.store.push.findChallenge(testChallengeId))!.status).toBe('pending');

    // The next minute, the device is answered again.
    ctx.advance(retryAfter);
    expect((await device.decide(testChallengeId, 'approve', number)).json()).toEqual({ status: 'approved' });
  });
});
