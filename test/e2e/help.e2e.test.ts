/**
 * Issue #16 in real Chromium, keyboard only: the help index and its search, an article's "Was this
 * article helpful?" — Yes thanks the reader; No asks for reasons (an error when none is ticked), a
 * comment and the ALTCHA check, solved in the page under our CSP (no violation reported) — then
 * "Feedback sent"; the same solution sent again is refused; the report shows the feedback. axe-core
 * finds no WCAG 2.2 AA violation on any of these pages. No request leaves the machine.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeedbackReport } from '../../src/app/help/report.js';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { TEST_SECRET, type TestContext } from '../helpers/context.js';

/** Moves focus to an element and presses a key on it, as a keyboard user would after tabbing there. */
async function press(page: Page, locator: ReturnType<Page['getByRole']>, key: string): Promise<void> {
  await locator.focus();
  await page.keyboard.press(key);
}

describe('the help centre in Chromium', () => {
  let server: LiveServer;
  let ctx: TestContext;
  let browser: Browser;
  let origin: string;

  beforeAll(async () => {
    server = await startLiveServer();
    ({ ctx, browser, origin } = server);
  });
  afterAll(async () => server?.close());

  it('finds an article, counts "yes", takes "no" with its reasons and a CAPTCHA solved in the page, refuses it sent twice, and reports it', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const outside = await blockOutsideRequests(page, origin);
    const cspViolations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
    });

    // The index and its search, which works without JavaScript (a GET form).
    await page.goto(`${origin}/help`);
    await page.getByRole('heading', { level: 1, name: 'Help with signing in' }).waitFor();
    await expectAccessible(page);
    await page.getByLabel('Search help articles').focus();
    await page.keyboard.type('new phone');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /articles? found/ }).waitFor();
    await press(page, page.getByRole('link', { name: 'Getting a new phone' }).first(), 'Enter');
    await page.getByRole('heading', { level: 1, name: 'Getting a new phone' }).waitFor();
    await expect(page.getByRole('navigation', { name: 'Contents' }).isVisible()).resolves.toBe(true);
    await expectAccessible(page);

    // Yes.
    await press(page, page.getByRole('button', { name: 'Yes' }), 'Enter');
    await page.getByRole('heading', { name: 'Thank you for your feedback' }).waitFor();
    await expectAccessible(page);

    // No, first with nothing ticked.
    await page.goto(`${origin}/help/lost-phone`);
    await press(page, page.getByRole('button', { name: 'No' }), 'Enter');
    await page.getByRole('heading', { level: 1, name: 'Let us know how we can improve this article' }).waitFor();
    await expectAccessible(page);
    await press(page, page.getByRole('button', { name: 'Send feedback' }), 'Enter');
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(page.getByRole('link', { name: 'Select at least one of the reasons' }).isVisible()).resolves.toBe(true);
    await expect(page.getByText('Complete the check that you are not a robot').first().isVisible()).resolves.toBe(true);
    await expectAccessible(page);

    // Then properly: a reason, a comment, and the check solved by the widget in this page.
    await press(page, page.getByRole('checkbox', { name: 'The steps did not work for me' }), 'Space');
    await page.getByLabel('Tell us more (optional)').focus();
    await page.keyboard.type('Step 2 was not on my screen');
    const robot = page.getByRole('checkbox', { name: /not a robot/i });
    await press(page, robot, 'Space');
    await page.waitForFunction(() => (document.querySelector<HTMLInputElement>('input[name="altcha"]')?.value ?? '').length > 0, undefined, { timeout: 60_000 });
    const payload = await page.locator('input[name="altcha"]').inputValue();
    await expectAccessible(page);
    await press(page, page.getByRole('button', { name: 'Send feedback' }), 'Enter');
    await page.getByRole('heading', { name: 'Feedback sent' }).waitFor();
    await expectAccessible(page);

    // The same solution again, from the same browser (its cookies and a fresh form token), is refused.
    await page.goto(`${origin}/help/lost-phone/improve`);
    const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
    const replay = await context.request.post(`${origin}/help/lost-phone/improve`, { form: { _csrf: csrf, reasons: 'too-long', altcha: payload } });
    expect(replay.status()).toBe(400);
    expect(await replay.text()).toContain('This check has already been used');

    expect(cspViolations).toEqual([]);
    expect(outside).toEqual([]);

    // The report shows it.
    const result = await runCli(['feedback', 'report', '--format', 'json'], {
      DATABASE_URL: ctx.database.url,
      PORTCULLIS_SECRET: TEST_SECRET,
      PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-help-e2e-')),
      PUBLIC_URL: origin,
    });
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as FeedbackReport;
    expect(report.articles.find((a) => a.article === 'new-phone')).toMatchObject({ helpful: 1, notHelpful: 0 });
    expect(report.articles.find((a) => a.article === 'lost-phone')).toMatchObject({
      helpful: 0,
      notHelpful: 1,
      comments: [expect.objectContaining({ comment: 'Step 2 was not on my screen', reasons: ['steps-did-not-work'] })],
    });
  }, 120_000);
});
