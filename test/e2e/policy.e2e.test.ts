/**
 * The method policy end to end in Chromium, with the shipped example policy (the source article's:
 * those with elevated rights must use push) applied with its dates set relative to the real time of
 * the test — the device signatures, cookies and rate limits keep real time, so no clock is moved:
 *
 * 1. enforcement in 7 days: an administrator on SMS is nudged after signing in, chooses "Remind me
 *    later", sees the deadline on Security info, sets up the Portcullis Authenticator (the web app, in a
 *    second browser context as their phone), makes it the default and then signs in by push;
 * 2. enforcement 7 days ago, with 14 days' grace: an administrator still on SMS gets only a session
 *    restricted to registering push on Security info (NIST SP 800-63B §4.1.1/§6.1.2.3: a new
 *    authenticator bound under an existing one);
 * 3. under the same policy an ordinary user on SMS signs in as before;
 * 4. issue #12: the example with texts and calls turned off for elevated roles, its date 14 days ahead:
 *    an administrator whose only method is SMS must still use their SMS code (never the password
 *    alone), gets a session restricted to setting up an allowed method, sets up an authenticator app's
 *    codes, and the restriction lifts.
 *
 * axe-core checks the interrupt, Security info with its banner and the restricted pages (WCAG 2.2 AA);
 * no request leaves the machine.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { demoPolicyText } from '../../src/app/demo.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { applyPolicyText } from '../../src/app/policy.js';
import type { TestContext } from '../helpers/context.js';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const DAY_MS = 86_400_000;

/** "5 December 2026": a policy date (London, as the example policy says) as the pages show it. */
const longDay = (date: string): string =>
  new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(`${date}T12:00:00Z`));

describe('the method policy in Chromium', () => {
  let server: LiveServer;
  let ctx: TestContext;
  let origin: string;
  const outside: string[][] = [];
  const opened: BrowserContext[] = [];
  const phones = new Map<string, string>();

  beforeAll(async () => {
    server = await startLiveServer(
      // One second between pushes (not 10): the pairing's test request and the next sign-in follow at once.
      { ORGANISATION_NAME: 'NHSmail', PUSH_MIN_INTERVAL: '1', PUSH_PER_HOUR: '100' },
      async (context) => {
        await addOrganisation(context, 'Northfield Trust', actor);
        const people = [
          { name: 'alex', roles: [{ role: 'global-admin', organisations: [] }] },
          { name: 'robin', roles: [{ role: 'helpdesk', organisations: [] }] },
          { name: 'uma', roles: [] },
          { name: 'sasha', roles: [{ role: 'helpdesk', organisations: [] }] },
        ];
        for (const [index, person] of people.entries()) {
          const email = `${person.name}@example.org`;
          const { user } = await addUser(context, { email, displayName: person.name, organisation: 'Northfield Trust', roles: person.roles, password: PASSWORD }, actor);
          // A text-message phone set up long ago, as most people have today.
          const phone = `+4477009000${index}0`;
          const id = randomUUID();
          const now = new Date(Date.now() - 90 * DAY_MS);
          await context.store.methods.insertPending({ id, userId: user.id, kind: 'sms', label: '', phoneE164: phone, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 60_000) });
          expect(await context.store.methods.activate(user.id, id, now, null)).toBe(true);
          await context.store.users.setDefaultMethod(user.id, id, now);
          phones.set(email, phone);
        }
      },
    );
    ({ ctx, origin } = server);
  });

  afterEach(async () => {
    for (const context of opened.splice(0)) await context.close();
  });

  afterAll(async () => {
    await server?.close();
    expect(outside.flat()).toEqual([]);
  });

  async function open(options: { phone?: boolean } = {}): Promise<Page> {
    const context = await server.browser.newContext();
    if (options.phone) await context.grantPermissions(['notifications'], { origin });
    opened.push(context);
    const page = await context.newPage();
    outside.push(await blockOutsideRequests(page, origin));
    return page;
  }

  /** The example policy with every date moved `days` from today (London), and its grace days set. */
  async function applyExample(days: number, graceDays = 0): Promise<string> {
    const { text, effective } = await demoPolicyText(new Date(), days);
    const withGrace = text.replace('graceDays: 0', `graceDays: ${graceDays}`);
    expect(withGrace.includes(`graceDays: ${graceDays}`)).toBe(true);
    await applyPolicyText(ctx, withGrace, actor, `end-to-end: ${days} days, ${graceDays} days' grace`);
    return effective;
  }

  async function latestCode(phone: string): Promise<string> {
    const [message] = await ctx.delivery.listOutbox({ to: phone, limit: 1 });
    if (!message?.code) throw new Error(`no code sent to ${phone}`);
    return message.code;
  }

  /** Email and password, then the code texted to the user's phone. */
  async function signInBySms(page: Page, email: string) {
    await page.goto(`${origin}/sign-in`);
    await page.getByLabel('Email address').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Code', { exact: true }).waitFor();
    await expect(page.getByText('by text message').first().isVisible()).resolves.toBe(true);
    await page.getByLabel('Code', { exact: true }).fill(await latestCode(phones.get(email)!));
    await page.getByRole('button', { name: 'Verify' }).click();
  }

  it('before the date: an administrator on SMS is nudged, snoozes, sets up push in the app, makes it the default and signs in by push', async () => {
    const effective = await applyExample(7);
    const page = await open();
    await signInBySms(page, 'alex@example.org');

    // The interrupt: what changes, by when, and two ways on.
    await page.getByRole('heading', { level: 1, name: `Set up notifications in the Portcullis Authenticator app by ${longDay(effective)}` }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/security-info/campaign');
    await expect(page.getByRole('main').innerText()).resolves.toContain('After that date you will not be able to sign in with a phone.');
    await expect(page.getByText('You can choose ‘Remind me later’ 3 more times.').isVisible()).resolves.toBe(true);
    await expect(page.getByRole('button', { name: 'Set it up now' }).isVisible()).resolves.toBe(true);
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Remind me later' }).click();
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    const user = (await ctx.store.users.findByEmail('alex@example.org'))!;
    expect(await ctx.store.policy.snoozes(user.id)).toEqual([expect.objectContaining({ campaign_id: 'move-to-push', count: 1 })]);

    // Security info: a banner with the deadline and the steps.
    await page.goto(`${origin}/security-info`);
    const banner = page.getByRole('region', { name: 'Important' });
    await expect(banner.innerText()).resolves.toContain(`Set up notifications in the Portcullis Authenticator app by ${longDay(effective)}`);
    await expect(banner.innerText()).resolves.toContain(`Those with elevated rights must use push phone app notifications, from ${longDay(effective)}.`);
    await expect(banner.getByRole('listitem').count()).resolves.toBeGreaterThan(0);
    await expectAccessible(page);

    // Add sign-in method → Authenticator app (the one the organisation recommends).
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await page.getByLabel('Authenticator app (recommended by your organisation)').check();
    await page.getByRole('button', { name: 'Add' }).click();
    const pairingUrl = (await page.getByRole('link', { name: /\/authenticator\/#pair=/ }).getAttribute('href'))!;

    // The phone: the web app pairs and approves the test request with the number the computer shows,
    // 6 digits for those with elevated rights in the example policy (NIST SP 800-63B-4).
    const phone = await open({ phone: true });
    await phone.goto(pairingUrl);
    await phone.getByLabel('Name this phone').fill('Alex’s phone');
    await phone.getByRole('button', { name: 'Connect this phone' }).click();
    await phone.getByRole('heading', { level: 1, name: 'Approve the test request' }).waitFor();
    await page.getByRole('heading', { level: 1, name: 'Approve the test request' }).waitFor();
    const testNumber = (await page.locator('.portcullis-number').innerText()).replace(/\D/g, '');
    expect(testNumber).toMatch(/^\d{6}$/);
    await phone.getByLabel('Enter the number shown on the Security info page').fill(testNumber);
    await phone.getByRole('button', { name: 'Approve' }).click();
    await phone.getByRole('heading', { level: 1, name: 'Approved' }).waitFor();

    await page.getByRole('heading', { level: 1, name: 'Authenticator app added' }).waitFor();
    await page.getByRole('button', { name: 'Make it my default' }).click();
    await page.getByText('Your default sign-in method has been changed.').waitFor();
    await expect(page.getByText('App based authentication – notification – Alex’s phone').first().isVisible()).resolves.toBe(true);
    // Compliant now: no deadline banner.
    await expect(page.getByRole('region', { name: 'Important' }).count()).resolves.toBe(0);
    await expectAccessible(page);

    // The next sign-in goes to the phone, and no interrupt follows it.
    await phone.getByRole('button', { name: 'Back to sign-in requests' }).click();
    const computer = await open();
    await computer.goto(`${origin}/sign-in`);
    await computer.getByLabel('Email address').fill('alex@example.org');
    await computer.getByRole('button', { name: 'Continue' }).click();
    await computer.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await computer.getByRole('button', { name: 'Sign in' }).click();
    await computer.getByRole('heading', { level: 1, name: 'Approve the sign-in on your phone' }).waitFor();
    const number = (await computer.locator('.portcullis-number').innerText()).replace(/\D/g, '');
    expect(number).toMatch(/^\d{6}$/);
    await phone.getByRole('link', { name: 'Sign-in request for alex@example.org' }).click();
    await phone.getByLabel('Enter the number shown on the sign-in page').fill(number);
    await phone.getByRole('button', { name: 'Approve' }).click();
    await phone.getByRole('heading', { level: 1, name: 'Approved' }).waitFor();
    await computer.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    expect(new URL(computer.url()).pathname).toBe('/account');
  });

  it('after the date, in grace: an administrator still on SMS gets only a session restricted to setting up push', async () => {
    const effective = await applyExample(-7, 14);
    const page = await open();
    await signInBySms(page, 'robin@example.org');

    await page.getByRole('heading', { level: 1, name: 'Security info' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/security-info');
    const banner = page.getByRole('region', { name: 'Important' });
    await expect(banner.innerText()).resolves.toContain('Set up notifications in the Portcullis Authenticator app to finish signing in');
    await expect(banner.innerText()).resolves.toContain(`from ${longDay(effective)}`);
    await expectAccessible(page);

    // Nothing else opens: the account page sends them back.
    await page.goto(`${origin}/account`);
    await page.getByRole('heading', { level: 1, name: 'Security info' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/security-info');

    // Only what lifts the restriction is offered.
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await page.getByRole('heading', { level: 1 }).first().waitFor();
    await expect(page.getByRole('radio').count()).resolves.toBe(1);
    await expect(page.getByLabel(/Authenticator app/).isVisible()).resolves.toBe(true);
    await expect(page.getByLabel(/Phone/).count()).resolves.toBe(0);
    await expectAccessible(page);

    const user = (await ctx.store.users.findByEmail('robin@example.org'))!;
    const sessions = await ctx.store.database.db.selectFrom('sessions').select('restricted').where('user_id', '=', user.id).execute();
    expect(sessions.map((s) => s.restricted)).toEqual(['registration-only']);
  });

  it('issue #12: texts turned off for elevated roles, date ahead — the SMS code is still asked for, and opens only a session to set up an allowed method', async () => {
    const { text, effective } = await demoPolicyText(new Date(), 14);
    const phonesOff = text
      .replace('sms: { enabled: true, include: [all] }', 'sms: { enabled: true, include: [all], exclude: [elevated] }')
      .replace('voice: { enabled: true, include: [all] }', 'voice: { enabled: true, include: [all], exclude: [elevated] }');
    expect(phonesOff.match(/exclude: \[elevated\]/g)).toHaveLength(2);
    await applyPolicyText(ctx, phonesOff, actor, 'end-to-end: no texts or calls for elevated roles', { allowStranded: true });
    const page = await open();
    // The password alone no longer opens anything: the code by text follows it (it used to be a full session).
    await signInBySms(page, 'sasha@example.org');

    await page.getByRole('heading', { level: 1, name: 'Security info' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/security-info');
    const banner = page.getByRole('region', { name: 'Important' });
    await expect(banner.innerText()).resolves.toContain('to finish signing in');
    await expect(banner.innerText()).resolves.toContain('Your organisation no longer lets you sign in with a phone.');
    await expect(banner.innerText()).resolves.toContain(`Until ${longDay(effective)} you can sign in with it, but only to set up a new way to sign in.`);
    await expectAccessible(page);
    await page.goto(`${origin}/account`);
    await page.getByRole('heading', { level: 1, name: 'Security info' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/security-info');

    // Only what the policy allows them: the authenticator app, not a phone.
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await page.getByRole('heading', { level: 1, name: 'Add sign-in method' }).waitFor();
    await expect(page.getByRole('radio').count()).resolves.toBe(1);
    await expect(page.getByLabel(/Phone/).count()).resolves.toBe(0);
    await expectAccessible(page);
    await page.getByLabel(/Authenticator app/).check();
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByRole('heading', { level: 1, name: 'Set up the Portcullis Authenticator' }).waitFor();
    await page.getByRole('link', { name: 'I want to use a different authenticator app' }).click();
    await page.getByRole('heading', { level: 1, name: 'Set up your authenticator app' }).waitFor();
    await page.getByText("Can't scan the QR code?").click();
    const key = (await page.locator('#totp-key').innerText()).replace(/\s+/g, '');
    expect(key).toMatch(/^[A-Z2-7]{32}$/);
    await expectAccessible(page);
    await page.getByLabel('Code', { exact: true }).fill(generateTotp(key, new Date()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('heading', { level: 1, name: 'Security info' }).waitFor();

    // An allowed method, proved in this session: the restriction lifts, and the account opens.
    const user = (await ctx.store.users.findByEmail('sasha@example.org'))!;
    const sessions = await ctx.store.database.db.selectFrom('sessions').select('restricted').where('user_id', '=', user.id).execute();
    expect(sessions.map((s) => s.restricted)).toEqual([null]);
    await page.goto(`${origin}/account`);
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    await expectAccessible(page);
  });

  it('under the same policy, an ordinary user on SMS signs in as before', async () => {
    await applyExample(-7, 14);
    const page = await open();
    await signInBySms(page, 'uma@example.org');
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    await page.goto(`${origin}/security-info`);
    await page.getByRole('heading', { level: 1, name: 'Security info' }).waitFor();
    await expect(page.getByRole('region', { name: 'Important' }).count()).resolves.toBe(0);
    await expect(page.getByRole('link', { name: 'Change', exact: false }).first().isVisible()).resolves.toBe(true);
  });
});
