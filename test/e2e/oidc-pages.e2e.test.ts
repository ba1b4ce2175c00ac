/**
 * oidc-provider's own pages and our interaction pages in real Chromium (issue #13 point 6): the error page,
 * the consent page, the "cannot sign in yet" page and the RP-initiated logout confirmation are our layout,
 * pass axe-core's WCAG 2.2 AA rules, raise no CSP violation under OIDC_CSP or our page CSP, and the logout
 * form works with the keyboard alone, ending the Portcullis session too.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { addClient } from '../../src/app/oidc/clients.js';
import { ACR } from '../../src/core/oidc/acr.js';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';

const PASSWORD = 'lantern-harbour-correct';
const REDIRECT = 'http://127.0.0.1:8400/callback';
const cli = { kind: 'cli' as const, name: 'test' };

describe("oidc-provider's pages in Chromium", () => {
  let server: LiveServer;
  let browser: Browser;
  let origin: string;
  let thirdParty = '';

  beforeAll(async () => {
    server = await startLiveServer({}, async (ctx) => {
      await addOrganisation(ctx, 'Northfield Trust', { kind: 'system' });
      await addUser(ctx, { email: 'alex@example.org', displayName: 'Alex Smith', organisation: 'Northfield Trust', roles: [], password: PASSWORD }, { kind: 'system' });
      const { client } = await addClient(
        ctx,
        { name: 'Timesheets', redirectUris: [REDIRECT], postLogoutRedirectUris: [], confidential: true, firstParty: false, service: false, scopes: [] },
        cli,
      );
      thirdParty = client.clientId;
    });
    ({ browser, origin } = server);
  });
  afterAll(async () => server?.close());

  /** A page that records CSP violations from the console, and blocks every request off this machine. */
  async function newPage(): Promise<{ page: Page; cspViolations: string[]; outside: string[] }> {
    const page = await (await browser.newContext()).newPage();
    const cspViolations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
    });
    const outside = await blockOutsideRequests(page, origin);
    return { page, cspViolations, outside };
  }

  const authorizeUrl = (parameters: Record<string, string>) =>
    `${origin}/oidc/auth?${new URLSearchParams({
      client_id: thirdParty,
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid email',
      state: 'state-1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      ...parameters,
    }).toString()}`;

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${origin}/sign-in`);
    await page.getByLabel('Email address').fill('alex@example.org');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Skip for now' }).click();
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
  }

  it('shows our error page for an unknown application, accessible, with no CSP violation (RFC 6749 §4.1.2.1)', async () => {
    const { page, cspViolations, outside } = await newPage();
    const response = await page.goto(authorizeUrl({ client_id: 'no-such-client' }));
    expect(response?.status()).toBe(400);
    await page.getByRole('heading', { level: 1, name: 'This application cannot use your account' }).waitFor();
    // Our stylesheet applied: the NHS.UK header is drawn in its blue, not unstyled.
    await expect(page.evaluate(() => getComputedStyle(document.querySelector('.nhsuk-header')!).backgroundColor)).resolves.toBe('rgb(0, 94, 184)');
    await expectAccessible(page);
    expect(cspViolations).toEqual([]);
    expect(outside).toEqual([]);
  });

  it('shows the consent page and the "cannot sign in yet" page accessibly, with no CSP violation', async () => {
    const { page, cspViolations, outside } = await newPage();
    await signIn(page);
    await page.goto(authorizeUrl({ prompt: 'consent' }));
    await page.getByRole('heading', { level: 1, name: 'Allow Timesheets to use your Portcullis account?' }).waitFor();
    await expectAccessible(page);
    // Allow reaches the application's redirect URI (blocked here as off the machine, so recorded in
    // `outside`): our form-action 'self' does not stop the form's navigation at the last redirect.
    await page.getByRole('button', { name: 'Allow' }).click();
    await expect.poll(() => outside.find((url) => url.startsWith(`${REDIRECT}?code=`)), { timeout: 5000 }).toBeTruthy();
    outside.length = 0;

    // A new tab of the same browser (the aborted request leaves Chromium's error page navigating in this one).
    const tab = await page.context().newPage();
    tab.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
    });
    await tab.goto(authorizeUrl({ acr_values: ACR.appPush }));
    await tab.getByRole('heading', { level: 1, name: 'You cannot sign in to Timesheets yet' }).waitFor();
    await expectAccessible(tab);
    expect(cspViolations).toEqual([]);
    expect(outside).toEqual([]);
  });

  it('shows "Returning you to Timesheets" accessibly after Allow, continuing by itself to the provider (WCAG H76)', async () => {
    const { page, cspViolations } = await newPage();
    await signIn(page);
    await page.goto(authorizeUrl({ prompt: 'consent' }));
    await page.getByRole('heading', { level: 1, name: 'Allow Timesheets to use your Portcullis account?' }).waitFor();
    // The provider's resume URL answers 204 here, so the page that continues to it stays to be checked.
    const resumed: string[] = [];
    await page.route(`${origin}/oidc/auth/**`, async (route) => {
      resumed.push(route.request().url());
      await route.fulfill({ status: 204 });
    });
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.getByRole('heading', { level: 1, name: 'Returning you to Timesheets' }).waitFor();
    await expect.poll(() => resumed.length, { timeout: 5000 }).toBeGreaterThan(0);
    await expect(page.getByRole('button', { name: 'Continue to Timesheets' }).getAttribute('href')).resolves.toBe(resumed[0]);
    await expectAccessible(page);
    expect(cspViolations).toEqual([]);
  });

  it('asks "Sign out of Timesheets?" accessibly; the keyboard alone signs out of the provider and of Portcullis (OpenID Connect RP-Initiated Logout 1.0 §2)', async () => {
    const { page, cspViolations } = await newPage();
    await signIn(page);
    // As far as consent: the sign-in is done, so the provider has a session with the account for this browser.
    await page.goto(authorizeUrl({ prompt: 'consent' }));
    await page.getByRole('heading', { level: 1, name: 'Allow Timesheets to use your Portcullis account?' }).waitFor();

    await page.goto(`${origin}/oidc/session/end?client_id=${encodeURIComponent(thirdParty)}`);
    await page.getByRole('heading', { level: 1, name: 'Sign out of Timesheets?' }).waitFor();
    await expectAccessible(page);

    // Tab to "Yes, sign out" (never a click), and press Enter.
    let focused = '';
    for (let presses = 0; presses < 20 && focused !== 'Yes, sign out'; presses++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.textContent?.trim() ?? '');
    }
    expect(focused).toBe('Yes, sign out');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'You have signed out' }).waitFor();
    await expectAccessible(page);
    expect((await page.context().cookies()).some((cookie) => cookie.name === '__Host-portcullis-session')).toBe(false);
    await page.goto(`${origin}/account`);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    expect(cspViolations).toEqual([]);
  });
});
