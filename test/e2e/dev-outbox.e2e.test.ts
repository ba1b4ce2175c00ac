/**
 * /dev/outbox in real Chromium: axe-core finds no WCAG 2.2 AA violation with messages listed or none,
 * and the recipient filter works from the keyboard. No request leaves the machine.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';
import type { TestContext } from '../helpers/context.js';

describe('the development outbox page in Chromium', () => {
  let server: LiveServer;
  let ctx: TestContext;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    server = await startLiveServer({ DEVELOPMENT_PAGES: 'true' });
    ({ ctx, browser, origin } = server);
  });
  afterAll(async () => server?.close());

  it('lists messages accessibly, and filters them by recipient', async () => {
    const page = await (await browser.newContext()).newPage();
    const outside = await blockOutsideRequests(page, origin);

    await page.goto(`${origin}/dev/outbox`);
    await page.getByRole('heading', { level: 1, name: 'Development outbox' }).waitFor();
    await expect(page.getByText('There are no messages in the outbox yet.').isVisible()).resolves.toBe(true);
    await expectAccessible(page);

    await ctx.delivery.enqueue({ channel: 'sms', to: '+447700900123', purpose: 'sign-in-code', text: '551208 is your Portcullis sign-in code.', code: '551208' });
    await ctx.delivery.enqueue({ channel: 'email', to: 'alex@example.org', purpose: 'security-notice', subject: 'Your password was changed', text: 'If this was not you, call the helpdesk.' });
    await ctx.delivery.dispatchDue();

    await page.reload();
    const table = page.getByRole('table', { name: /Newest first/ });
    await table.waitFor();
    await expect(table.getByRole('row').count()).resolves.toBe(3);
    await expect(table.getByRole('columnheader', { name: 'Code' }).isVisible()).resolves.toBe(true);
    await expect(table.getByRole('cell', { name: '551208', exact: true }).isVisible()).resolves.toBe(true);
    await expectAccessible(page);

    await page.getByLabel('Only messages to this phone number or email address').fill('+447700900123');
    await page.keyboard.press('Enter');
    await page.getByRole('table', { name: 'Newest first (to +447700900123)' }).waitFor();
    await expect(page.getByRole('table').getByRole('row').count()).resolves.toBe(2);
    await expectAccessible(page);
    expect(outside).toEqual([]);
  });
});
