/**
 * The admin console's dashboard in Chromium (issue #15 points 1, 2 and 7): a local administrator signs
 * in and sees their organisation's figures — the charts drawn as SVG on the server, each also a table —
 * with axe-core finding no violation; a person without an administering role is refused.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { totpStrategy } from '../../src/app/methods/totp/index.js';
import { applyPolicyText } from '../../src/app/policy.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;

describe('the admin console in Chromium', () => {
  let server: LiveServer;
  const inThirtyDays = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);

  beforeAll(async () => {
    server = await startLiveServer({ ORGANISATION_NAME: 'NHSmail' }, async (ctx) => {
      await addOrganisation(ctx, 'Northfield Trust', actor);
      await addOrganisation(ctx, 'Southgate Trust', actor);
      await applyPolicyText(
        ctx,
        `version: 1\nmethods:\n  totp: { enabled: true }\n  tap: { enabled: true }\nrequirements:\n  - id: elevated-mfa\n    name: Those with elevated rights use a second factor\n    include: [elevated]\n    strength: mfa\n    effective: ${inThirtyDays}\n`,
        actor,
        'end-to-end: the admin console',
      );
      for (const [i, organisation] of ['Northfield Trust', 'Northfield Trust', 'Southgate Trust'].entries()) {
        await addUser(ctx, { email: `helper-${i}@example.org`, displayName: `Helper ${i}`, organisation, roles: [{ role: 'helpdesk', organisations: [organisation] }] }, actor);
      }
    });
  });
  afterAll(async () => server?.close());

  async function personWithCode(email: string, roles: Array<{ role: string; organisations: string[] }>) {
    const { ctx } = server;
    const { user } = await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Northfield Trust', roles, password: PASSWORD }, actor);
    const enrolment = await totpStrategy.beginEnrolment!(ctx, user, {}, { purpose: 'enrolment', binding: 'e2e', ip: '127.0.0.1' });
    await ctx.store.methods.activate(user.id, enrolment.methodId, ctx.clock(), null);
    return enrolment.totp!.key.replace(/\s+/g, '');
  }

  async function signIn(page: Page, email: string, key: string) {
    await page.goto(`${server.origin}/sign-in`);
    await page.getByLabel('Email address').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Code', { exact: true }).fill(generateTotp(key, new Date()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
  }

  it('shows a local administrator their organisation at a glance: the deadline, the charts and their tables', async () => {
    const key = await personWithCode('local-admin@example.org', [{ role: 'local-admin', organisations: ['Northfield Trust'] }]);
    const page = await (await server.browser.newContext()).newPage();
    const outside = await blockOutsideRequests(page, server.origin);
    await signIn(page, 'local-admin@example.org', key);
    // My account links an administrator to the console.
    await page.getByRole('link', { name: 'Go to the admin console' }).click();
    const shown = await page.goto(`${server.origin}/admin`);
    if (shown?.status() !== 200) throw new Error(await page.locator('main').innerText());
    await page.getByRole('heading', { level: 1, name: 'Admin console' }).waitFor();
    // Northfield's elevated people: the two helpers without a method, and the administrator with one.
    await expect(page.getByText('Those with elevated rights use a second factor').innerText()).resolves.toBeTruthy();
    await expect(page.locator('.nhsuk-inset-text').innerText()).resolves.toContain('2 people are not ready yet');
    const charts = page.getByRole('img', { name: /Elevated users by state/ });
    await expect(charts.count()).resolves.toBe(1);
    await expect(charts.getAttribute('aria-label')).resolves.toContain('Action needed: 2');
    const table = page.getByRole('table', { name: 'Elevated users by state' });
    await expect(table.getByRole('row', { name: /Action needed/ }).innerText()).resolves.toContain('2');
    await expect(table.getByRole('row', { name: /^Compliant/ }).innerText()).resolves.toContain('1');
    await expect(page.getByRole('table', { name: 'Users by sign-in method' }).innerText()).resolves.toContain('Authenticator app – code');
    await expectAccessible(page);
    expect(outside).toEqual([]);
  });

  it('refuses a person without an administering role', async () => {
    const key = await personWithCode('plain@example.org', []);
    const page = await (await server.browser.newContext()).newPage();
    await signIn(page, 'plain@example.org', key);
    await expect(page.getByRole('link', { name: 'Go to the admin console' }).count()).resolves.toBe(0);
    const response = await page.goto(`${server.origin}/admin`);
    expect(response?.status()).toBe(403);
    await page.getByRole('heading', { level: 1, name: 'You cannot use the admin console' }).waitFor();
    await expectAccessible(page);
  });
});
