/**
 * A real relying party in Chromium (issue #13 points 7 and 8): the sample application examples/mail-app, built with
 * openid-client 6, signs people in through Portcullis with the authorization code flow (PKCE S256, state, nonce) and
 * verifies the ID token's signature against the JWKS —
 *
 * 1. password + code, with the keyboard alone, then RP-initiated logout (RP-Initiated Logout 1.0);
 * 2. password + push approved by the CLI authenticator (`portcullis authenticator`); Sensitive settings open at once;
 * 3. Sensitive settings step a person signed in with a code up to app-push (acr_values + max_age, RFC 9470), the push
 *    approved by the CLI authenticator;
 * 4. "Sign out everywhere" on Security info sends a back-channel logout token that the mail app validates, and its page
 *    then says the person was signed out.
 *
 * axe-core on every page of the journeys (Portcullis's and the mail app's); no CSP violation in the console; no request
 * leaves the machine.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailApp, type MailApp } from '../../examples/mail-app/mail-app.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { totpStrategy } from '../../src/app/methods/totp/index.js';
import { addClient } from '../../src/app/oidc/clients.js';
import { pairingStatus, startPairing } from '../../src/app/methods/push/pairing.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { ACR } from '../../src/core/oidc/acr.js';
import { expectAccessible, freePort, startLiveServer, type LiveServer } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import type { TestContext } from '../helpers/context.js';

const PASSWORD = 'lantern-harbour-correct';
const cli = { kind: 'cli' as const, name: 'test' };

describe('a real relying party (examples/mail-app) in Chromium', () => {
  let server: LiveServer;
  let ctx: TestContext;
  let browser: Browser;
  let origin: string;
  let mail: MailApp;
  let mailPort: number;
  let client = { id: '', secret: '' };
  const run = Math.random().toString(36).slice(2, 8);
  let n = 0;

  beforeAll(async () => {
    mailPort = await freePort();
    // 127.0.0.1, not localhost: the application is another site than Portcullis, as it would be in real life.
    const mailUrl = `http://127.0.0.1:${mailPort}`;
    server = await startLiveServer({ ORGANISATION_NAME: 'NHSmail', PUSH_MIN_INTERVAL: '1', PUSH_PER_HOUR: '100', SIGN_IN_LOCKOUT_THRESHOLD: '100' }, async (context) => {
      await addOrganisation(context, 'Northfield Trust', { kind: 'system' });
      const added = await addClient(
        context,
        {
          name: 'Mail',
          redirectUris: [`${mailUrl}/callback`],
          postLogoutRedirectUris: [`${mailUrl}/`],
          backChannelLogoutUri: `${mailUrl}/backchannel-logout`,
          confidential: true,
          firstParty: true,
          service: false,
          scopes: [],
        },
        cli,
      );
      client = { id: added.client.clientId, secret: added.secret! };
    });
    ({ ctx, browser, origin } = server);
    mail = await startMailApp({ issuer: `${origin}/oidc`, clientId: client.id, clientSecret: client.secret, port: mailPort, host: '127.0.0.1', publicUrl: mailUrl });
  });
  afterAll(async () => {
    await mail?.close();
    await server?.close();
  });

  /** A person with a password and an authenticator app (the default); `code()` gives the next TOTP step's code. */
  async function person(): Promise<{ email: string; userId: string; name: string; code: () => string }> {
    n += 1;
    const email = `mail-${run}-${n}@example.org`;
    const name = `Person ${run} ${n}`;
    await addUser(ctx, { email, displayName: name, organisation: 'Northfield Trust', roles: [], password: PASSWORD }, { kind: 'system' });
    const user = (await ctx.store.users.findByEmail(email))!;
    const enrolment = await totpStrategy.beginEnrolment!(ctx, user, {}, { purpose: 'enrolment', binding: 'e2e', ip: '127.0.0.1' });
    await ctx.store.methods.activate(user.id, enrolment.methodId, ctx.clock(), null);
    await ctx.store.users.setDefaultMethod(user.id, enrolment.methodId, ctx.clock());
    const key = enrolment.totp!.key.replace(/\s+/g, '');
    let step = Math.floor(Date.now() / 30_000);
    return { email, userId: user.id, name, code: () => generateTotp(key, new Date(step++ * 30_000)) };
  }

  /** The CLI authenticator paired with the person (its test request approved); `asDefault` makes push the default method. */
  async function pairCli(email: string, asDefault: boolean) {
    const user = (await ctx.store.users.findByEmail(email))!;
    const store = path.join(mkdtempSync(path.join(os.tmpdir(), 'pc-e2e-mail-')), 'authenticator.json');
    const authenticator = (...args: string[]) => runCli(['authenticator', ...args, '--store', store], {});
    const pairing = await startPairing(ctx, user);
    const paired = await authenticator('pair', pairing.url, '--name', 'Laptop');
    expect(paired.code).toBe(0);
    const testId = /approve (\S+) --number NUMBER/.exec(paired.stdout)![1]!;
    const status = await pairingStatus(ctx, user, pairing.enrolmentId);
    expect((await authenticator('approve', testId, '--number', status.number!)).code).toBe(0);
    if (asDefault) await ctx.store.users.setDefaultMethod(user.id, status.methodId!, ctx.clock());
    /** Approves the one pending sign-in request with the number the page shows. */
    return async (number: string) => {
      const pending = await authenticator('pending', '--json');
      const [request] = (JSON.parse(pending.stdout) as { challenges: Array<{ id: string; account: string }> }).challenges;
      expect(request).toMatchObject({ account: email });
      expect((await authenticator('approve', request!.id, '--number', number)).code).toBe(0);
    };
  }

  /** A page recording CSP violations from the console; requests to hosts other than Portcullis and the mail app are blocked. */
  async function newPage(): Promise<{ page: Page; cspViolations: string[]; outside: string[] }> {
    const page = await (await browser.newContext()).newPage();
    const cspViolations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
    });
    const outside: string[] = [];
    await page.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith(mail.url) || url.startsWith('data:')) return route.continue();
      outside.push(url);
      return route.abort();
    });
    return { page, cspViolations, outside };
  }

  const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name }).waitFor();

  /** Tab (never a click) until `target` has the focus. */
  async function tabTo(page: Page, target: Locator): Promise<void> {
    for (let presses = 0; presses < 30; presses++) {
      await page.keyboard.press('Tab');
      if (await target.evaluate((element) => element === document.activeElement)) return;
    }
    throw new Error('could not reach the element with Tab');
  }

  /** Email and password on Portcullis's pages (accessible), up to the second factor. */
  async function emailAndPassword(page: Page, email: string) {
    await heading(page, 'Sign in');
    await expectAccessible(page);
    await page.getByLabel('Email address').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** The claims table of the Inbox, as { claim: value }. */
  async function claimsShown(page: Page): Promise<Record<string, string>> {
    const rows = await page.getByRole('table', { name: 'Claims received at sign-in' }).locator('tbody tr').all();
    const claims: Record<string, string> = {};
    for (const row of rows) claims[(await row.locator('th').innerText()).trim()] = (await row.locator('td').first().innerText()).trim();
    return claims;
  }

  async function signInWithCode(page: Page, who: Awaited<ReturnType<typeof person>>) {
    await page.goto(mail.url);
    await heading(page, 'Welcome to Mail');
    await page.getByRole('link', { name: 'Sign in with Portcullis' }).click();
    await emailAndPassword(page, who.email);
    await heading(page, 'Enter the code from your authenticator app');
    await page.getByLabel('Code').fill(who.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    await heading(page, 'Inbox');
  }

  it('signs in with password and code using the keyboard alone: the Inbox shows the verified claims; Sign out ends both sessions', async () => {
    const who = await person();
    const { page, cspViolations, outside } = await newPage();
    await page.goto(mail.url);
    await heading(page, 'Welcome to Mail');
    await expectAccessible(page);

    // Keyboard only, from the mail app's link to the Inbox.
    await tabTo(page, page.getByRole('link', { name: 'Sign in with Portcullis' }));
    await page.keyboard.press('Enter');
    await heading(page, 'Sign in');
    await expectAccessible(page);
    await tabTo(page, page.getByLabel('Email address'));
    await page.keyboard.type(who.email);
    await page.keyboard.press('Enter');
    await page.getByLabel('Password', { exact: true }).waitFor();
    await expectAccessible(page);
    await tabTo(page, page.getByLabel('Password', { exact: true }));
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await heading(page, 'Enter the code from your authenticator app');
    await expectAccessible(page);
    await tabTo(page, page.getByLabel('Code'));
    await page.keyboard.type(who.code());
    await page.keyboard.press('Enter');
    await heading(page, 'Inbox');
    await expectAccessible(page);

    expect(new URL(page.url()).origin).toBe(mail.url);
    await expect(page.locator('#person').innerText()).resolves.toBe(who.name);
    const claims = await claimsShown(page);
    expect(claims).toMatchObject({ sub: who.userId, email: who.email, name: who.name, acr: ACR.mfa, amr: 'pwd otp mfa' });
    expect(Number(claims.auth_time!.split(' ')[0])).toBeGreaterThan(Date.now() / 1000 - 120);
    await expect(page.locator('#signature').innerText()).resolves.toMatch(new RegExp(`verified against the issuer's JWKS \\(${origin}/oidc/jwks\\): key \\S+, algorithm RS256`));

    // RP-Initiated Logout 1.0: Portcullis asks, the person says yes, and comes back to the mail app signed out.
    await tabTo(page, page.getByRole('button', { name: 'Sign out' }));
    await page.keyboard.press('Enter');
    await heading(page, 'Sign out of Mail?');
    await expectAccessible(page);
    await tabTo(page, page.getByRole('button', { name: 'Yes, sign out' }));
    await page.keyboard.press('Enter');
    await heading(page, 'You have signed out');
    expect(new URL(page.url()).origin).toBe(mail.url);
    await expectAccessible(page);
    await page.goto(`${origin}/account`);
    await heading(page, 'Sign in');
    expect(cspViolations).toEqual([]);
    expect(outside).toEqual([]);
  });

  it('signs in with password and push approved by the CLI authenticator: acr app-push, and Sensitive settings open at once', async () => {
    const who = await person();
    const approve = await pairCli(who.email, true);
    const { page, cspViolations, outside } = await newPage();
    await page.goto(mail.url);
    await page.getByRole('link', { name: 'Sign in with Portcullis' }).click();
    await emailAndPassword(page, who.email);
    await heading(page, 'Approve the sign-in on your phone');
    await expectAccessible(page);
    await approve((await page.locator('.portcullis-number').innerText()).replace(/\D/g, ''));
    await heading(page, 'Inbox');
    const claims = await claimsShown(page);
    expect(claims).toMatchObject({ sub: who.userId, acr: ACR.appPush });
    expect(claims.amr!.split(' ')).toEqual(expect.arrayContaining(['pwd', 'swk']));

    // A push sign-in seconds old meets the settings' requirement: no new trip to Portcullis.
    await page.getByRole('link', { name: 'Sensitive settings' }).click();
    await heading(page, 'Sensitive settings');
    expect(new URL(page.url()).origin).toBe(mail.url);
    await expectAccessible(page);
    expect(cspViolations).toEqual([]);
    expect(outside).toEqual([]);
  });

  it('steps a person signed in with a code up to app-push for Sensitive settings, the push approved by the CLI authenticator (RFC 9470)', async () => {
    const who = await person();
    const approve = await pairCli(who.email, false);
    const { page, cspViolations, outside } = await newPage();
    await signInWithCode(page, who);
    expect((await claimsShown(page)).acr).toBe(ACR.mfa);

    // The mail app sends the person back with acr_values=…:app-push and max_age=300.
    await page.getByRole('link', { name: 'Sensitive settings' }).click();
    await heading(page, 'Confirm it is you');
    await expectAccessible(page);
    // The NHS.UK button macro with an href: a link drawn and announced as a button.
    await page.getByRole('button', { name: 'Continue' }).click();
    // A step-up toward …:app-push starts with the push, not with the default code (docs/oidc.md#the-interaction).
    await heading(page, 'Approve the sign-in on your phone');
    await expectAccessible(page);
    await approve((await page.locator('.portcullis-number').innerText()).replace(/\D/g, ''));
    await heading(page, 'Sensitive settings');
    expect(new URL(page.url()).origin).toBe(mail.url);
    await expectAccessible(page);
    await page.getByRole('link', { name: 'Back to the inbox' }).click();
    const claims = await claimsShown(page);
    expect(claims.acr).toBe(ACR.appPush);
    expect(claims.amr!.split(' ')).toEqual(expect.arrayContaining(['pwd', 'otp', 'swk', 'mfa']));
    expect(cspViolations).toEqual([]);
    expect(outside).toEqual([]);
  });

  it('"Sign out everywhere" on Security info sends a logout token the mail app validates; its page then shows the person signed out', async () => {
    const who = await person();
    const { page, cspViolations, outside } = await newPage();
    await signInWithCode(page, who);
    const sessionsOf = () => [...mail.sessions.values()].filter((session) => session.user?.sub === who.userId).length;
    expect(sessionsOf()).toBe(1);

    await page.goto(`${origin}/security-info`);
    await heading(page, 'Security info');
    await expectAccessible(page);
    await page.getByRole('link', { name: 'Sign out everywhere' }).click();
    await heading(page, 'Sign out everywhere');
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await heading(page, 'You have signed out');
    await expectAccessible(page);

    // Delivery follows the answer: wait until the mail app has ended the session, then look.
    await expect.poll(sessionsOf, { timeout: 10_000 }).toBe(0);
    await page.goto(mail.url);
    await heading(page, 'You have been signed out');
    await expectAccessible(page);
    await page.goto(`${mail.url}/settings`);
    // Not signed in: Settings start a new sign-in at Portcullis.
    await heading(page, 'Sign in');
    expect(cspViolations).toEqual([]);
    expect(outside).toEqual([]);
  });
});
