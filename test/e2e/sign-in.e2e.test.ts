/**
 * End to end in real Chromium: sign in and out as a person would, finding things by their accessible
 * names; with the keyboard alone; with axe-core finding no WCAG 2.2 AA violation on any page; and with
 * no request leaving the machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';

const PASSWORD = 'lantern-harbour-correct';

describe('sign-in in Chromium', () => {
  let server: LiveServer;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    server = await startLiveServer({ ORGANISATION_NAME: 'NHSmail' }, async (ctx) => {
      await addOrganisation(ctx, 'Northfield Trust', { kind: 'system' });
      await addUser(ctx, { email: 'alex@example.org', displayName: 'Alex Smith', organisation: 'Northfield Trust', roles: [], password: PASSWORD }, { kind: 'system' });
    });
    ({ browser, origin } = server);
  });

  afterAll(async () => server?.close());

  async function newPage(): Promise<{ page: Page; outside: string[] }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const outside = await blockOutsideRequests(page, origin);
    return { page, outside };
  }

  it('signs in with email and password, lands on My account, and signs out', async () => {
    const { page, outside } = await newPage();
    await page.goto(`${origin}/`);
    await expect.poll(() => page.url()).toBe(`${origin}/sign-in`);
    await expect(page.getByRole('heading', { level: 1, name: 'Sign in' }).isVisible()).resolves.toBe(true);
    await expect(page.getByRole('banner').getByText('NHSmail').isVisible()).resolves.toBe(true);
    await expectAccessible(page);

    // An empty email: the error summary, with a link to the field.
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(page.title()).resolves.toMatch(/^Error: Sign in/);
    await expectAccessible(page);
    await page.getByRole('link', { name: 'Enter your email address' }).click();
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('email');

    await page.getByLabel('Email address').fill('alex@example.org');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { level: 1, name: 'Enter your password' }).waitFor();
    await expectAccessible(page);

    await page.getByLabel('Password', { exact: true }).fill('wrong-password-here');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(page.getByRole('alert').innerText()).resolves.toContain('The email address or password is not correct');
    await expectAccessible(page);

    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // No second method yet: the offer to set one up, which can be skipped for now.
    await page.getByRole('heading', { level: 1, name: 'Set up a second way to sign in' }).waitFor();
    await expectAccessible(page);
    await page.getByRole('link', { name: 'Skip for now' }).click();
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    await expect(page.getByText('Alex Smith').first().isVisible()).resolves.toBe(true);
    await expectAccessible(page);

    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === '__Host-portcullis-session');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });

    await page.getByRole('main').getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { level: 1, name: 'You have signed out' }).waitFor();
    await expectAccessible(page);
    await page.goto(`${origin}/account`);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();

    expect(outside).toEqual([]);
  });

  it('works with the keyboard alone', async () => {
    const { page } = await newPage();
    await page.goto(`${origin}/sign-in`);
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.textContent?.trim())).resolves.toBe('Skip to main content');
    await page.keyboard.press('Enter');
    // Tab through to the email field, whatever sits between.
    for (let i = 0; i < 10 && (await page.evaluate(() => document.activeElement?.id)) !== 'email'; i += 1) await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('email');
    await page.keyboard.type('alex@example.org');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Enter your password' }).waitFor();
    for (let i = 0; i < 15 && (await page.evaluate(() => document.activeElement?.id)) !== 'password'; i += 1) await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('password');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Set up a second way to sign in' }).waitFor();
    for (let i = 0; i < 20 && (await page.evaluate(() => document.activeElement?.textContent?.trim())) !== 'Skip for now'; i += 1) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();

    // Reach "Sign out" with Tab and press it.
    for (let i = 0; i < 20; i += 1) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
      if (focused === 'Sign out') break;
    }
    await expect(page.evaluate(() => document.activeElement?.textContent?.trim())).resolves.toBe('Sign out');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'You have signed out' }).waitFor();
  });

  it('shows a page that meets WCAG 2.2 AA for a missing page', async () => {
    const { page } = await newPage();
    const response = await page.goto(`${origin}/no-such-page`);
    expect(response?.status()).toBe(404);
    await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
    await expectAccessible(page);
  });
});
