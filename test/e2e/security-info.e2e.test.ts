/**
 * End to end in Chromium: a user adds an authenticator app (codes computed from the key shown on the
 * page), makes it the default, signs out, signs in with password and code; a replayed code is refused;
 * they add a phone, read the text from the development outbox, verify it, and delete it. axe-core finds
 * no WCAG 2.2 AA violation on any page of the journey. No clock is moved and nothing sleeps: right after
 * enrolling, the next time step's code signs in (the drift window allows it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import type { TestContext } from '../helpers/context.js';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';

const PASSWORD = 'lantern-harbour-correct';

describe('Security info in Chromium', () => {
  let server: LiveServer;
  let ctx: TestContext;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    server = await startLiveServer({ ORGANISATION_NAME: 'NHSmail', DEVELOPMENT_PAGES: 'true' }, async (context) => {
      await addOrganisation(context, 'Northfield Trust', { kind: 'system' });
      await addUser(context, { email: 'alex@example.org', displayName: 'Alex Smith', organisation: 'Northfield Trust', roles: [], password: PASSWORD }, { kind: 'system' });
    });
    ({ ctx, browser, origin } = server);
  });

  afterAll(async () => server?.close());

  const code = (key: string, offsetSteps = 0) => generateTotp(key, new Date(Date.now() + offsetSteps * 30_000));

  async function signInWithPassword(page: Page) {
    await page.goto(`${origin}/sign-in`);
    await page.getByLabel('Email address').fill('alex@example.org');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  it('adds an authenticator app, signs in with it, refuses a replay, adds and deletes a phone', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const outside = await blockOutsideRequests(page, origin);

    // Password only: offered a second method, skippable.
    await signInWithPassword(page);
    await page.getByRole('heading', { level: 1, name: 'Set up a second way to sign in' }).waitFor();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Set it up now' }).click();

    await page.getByRole('heading', { level: 1, name: 'Add sign-in method' }).waitFor();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expectAccessible(page);
    await page.getByLabel('Authenticator app').check();
    await page.getByRole('button', { name: 'Add' }).click();
    // The Portcullis Authenticator is offered first; any code app is one link away (as on Microsoft's page).
    await page.getByRole('heading', { level: 1, name: 'Set up the Portcullis Authenticator' }).waitFor();
    await expectAccessible(page);
    await page.getByRole('link', { name: 'I want to use a different authenticator app' }).click();

    await page.getByRole('heading', { level: 1, name: 'Set up your authenticator app' }).waitFor();
    await expect(page.getByRole('img', { name: 'QR code for setting up your authenticator app' }).isVisible()).resolves.toBe(true);
    await page.getByText("Can't scan the QR code?").click();
    const key = (await page.locator('#totp-key').innerText()).replace(/\s+/g, '');
    expect(key).toMatch(/^[A-Z2-7]{32}$/);
    await expectAccessible(page);
    await page.getByLabel('Code', { exact: true }).fill(code(key));
    await page.getByRole('button', { name: 'Verify' }).click();

    await page.getByRole('heading', { level: 1, name: 'Security info' }).waitFor();
    await expect(page.getByText('Your sign-in method has been added.').isVisible()).resolves.toBe(true);
    await expectAccessible(page);

    // "Default sign-in method" → Change → choose → Confirm (the app's first code counts as this session's second factor).
    await page.getByRole('link', { name: 'Change default sign-in method' }).click();
    await page.getByRole('heading', { level: 1, name: 'Change default sign-in method' }).waitFor();
    await expectAccessible(page);
    await page.getByLabel('Authenticator app – code').check();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByText('Your default sign-in method has been changed.').waitFor();

    await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { level: 1, name: 'You have signed out' }).waitFor();

    // Password, then the app's code: the next time step's, which the drift window allows.
    await signInWithPassword(page);
    await page.getByRole('heading', { level: 1, name: 'Enter the code from your authenticator app' }).waitFor();
    await expectAccessible(page);
    const used = code(key, 1);
    await page.getByLabel('Code', { exact: true }).fill(used);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    await expectAccessible(page);

    // The same code again, from another browser: refused.
    const other = await (await browser.newContext()).newPage();
    await signInWithPassword(other);
    await other.getByRole('heading', { level: 1, name: 'Enter the code from your authenticator app' }).waitFor();
    await other.getByLabel('Code', { exact: true }).fill(used);
    await other.getByRole('button', { name: 'Verify' }).click();
    await other.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(other.getByRole('alert').innerText()).resolves.toContain('The code is not correct');
    await expectAccessible(other);
    await other.close();

    // Add a phone and read the text from the development outbox.
    await page.goto(`${origin}/security-info`);
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await page.getByRole('heading', { level: 1, name: 'Add sign-in method' }).waitFor();
    await page.getByLabel('Phone').check();
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByRole('heading', { level: 1, name: 'Add a phone' }).waitFor();
    await expectAccessible(page);
    await page.getByLabel('Mobile phone number').fill('07400 123456');
    await page.getByLabel('Text me a code').check();
    await page.getByRole('button', { name: 'Send code' }).click();
    await page.getByRole('heading', { level: 1, name: 'Check your phone' }).waitFor();
    await expectAccessible(page);

    const outbox = await context.newPage();
    await outbox.goto(`${origin}/dev/outbox`);
    await expectAccessible(outbox);
    const [message] = await ctx.delivery.listOutbox({ to: '+447400123456', limit: 1 });
    expect(message?.code).toMatch(/^\d{6}$/);
    await expect(outbox.getByText(message!.text, { exact: false }).first().isVisible()).resolves.toBe(true);
    await outbox.close();

    await page.getByLabel('Code', { exact: true }).fill(message!.code!);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('heading', { level: 1, name: 'Security info' }).waitFor();
    await expect(page.getByRole('cell', { name: '+44 7••• •••456', exact: true }).isVisible()).resolves.toBe(true);

    await page.getByRole('link', { name: /Delete Phone – text message/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Are you sure you want to delete this sign-in method?' }).waitFor();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Your sign-in method has been deleted.').waitFor();
    await expect(page.getByRole('cell', { name: '+44 7••• •••456', exact: true }).count()).resolves.toBe(0);
    await expectAccessible(page);

    expect(outside).toEqual([]);
  });
});
