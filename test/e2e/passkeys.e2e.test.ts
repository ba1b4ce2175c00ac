/**
 * Passkeys and recovery codes end to end in Chromium, with the DevTools virtual authenticator
 * (`WebAuthn.addVirtualAuthenticator`, CTAP2, internal, resident keys, user verification) on each page:
 * a passkey registered from Security info with the keyboard alone (WebAuthn L3 §7.1), passwordless
 * sign-in from the email page and a passkey as the second step (§7.2), an elevated person past the
 * enforcement date lifting their restriction with a passkey, and recovery codes (NIST SP 800-63B-4
 * look-up secrets) set up, used once, refused again. axe-core on the pages; no request leaves the machine.
 */
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { totpStrategy } from '../../src/app/methods/totp/index.js';
import { applyPolicyText } from '../../src/app/policy.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';
import type { TestContext } from '../helpers/context.js';

const PASSWORD = 'lantern-harbour-correct';

const POLICY = JSON.stringify({
  version: 1,
  methods: {
    sms: { enabled: true },
    voice: { enabled: true },
    totp: { enabled: true },
    push: { enabled: true },
    tap: { enabled: true },
    passkey: { enabled: true },
    'recovery-code': { enabled: true },
  },
  // Local administrators: only one model of security key counts (not the virtual authenticator's).
  strengths: { 'admin-security-keys': { methods: ['passkey'], models: { passkey: ['cb69481e-8ff7-4039-93ec-0a2729a154a8'] } } },
  // Everyone with an elevated role must use app-push (push or a passkey) since a date already past.
  requirements: [{ id: 'local-admin-keys', name: 'Local administrators use a security key', include: ['role:local-admin'], strength: 'admin-security-keys', effective: '2025-01-01', bootstrap: { duringGrace: 'any-registered', afterGrace: 'any-registered' } }, { id: 'elevated-app-push', name: 'Administrators use the authenticator app or a passkey', include: ['elevated'], strength: 'app-push', effective: '2025-01-01', bootstrap: { duringGrace: 'any-registered', afterGrace: 'any-registered' } }],
});

describe.each(['sqlite', 'postgres'] as const)('passkeys and recovery codes in Chromium on %s', (dialect) => {
  let server: LiveServer;
  let ctx: TestContext;
  let browser: Browser;
  let origin: string;
  const run = Math.random().toString(36).slice(2, 8);
  let n = 0;

  beforeAll(async () => {
    server = await startLiveServer({ ORGANISATION_NAME: 'NHSmail', SIGN_IN_LOCKOUT_THRESHOLD: '100' }, async (context) => {
      await addOrganisation(context, 'Northfield Trust', { kind: 'system' });
      await applyPolicyText(context, POLICY, { kind: 'system' }, 'end-to-end: passkeys and recovery codes');
    }, dialect);
    ({ ctx, browser, origin } = server);
  });
  afterAll(async () => server?.close());

  /** A person with a password and an authenticator app (the default); `code()` gives the next TOTP step's code. */
  async function person(roles: Array<{ role: string; organisations: string[] }> = []): Promise<{ email: string; code: () => string }> {
    n += 1;
    const email = `passkey-${run}-${n}@example.org`;
    await addUser(ctx, { email, displayName: `Person ${run} ${n}`, organisation: 'Northfield Trust', roles, password: PASSWORD }, { kind: 'system' });
    const user = (await ctx.store.users.findByEmail(email))!;
    const enrolment = await totpStrategy.beginEnrolment!(ctx, user, {}, { purpose: 'enrolment', binding: 'e2e', ip: '127.0.0.1' });
    await ctx.store.methods.activate(user.id, enrolment.methodId, ctx.clock(), null);
    await ctx.store.users.setDefaultMethod(user.id, enrolment.methodId, ctx.clock());
    const key = enrolment.totp!.key.replace(/\s+/g, '');
    let step = Math.floor(Date.now() / 30_000);
    return { email, code: () => generateTotp(key, new Date(step++ * 30_000)) };
  }

  /** A page in a new context, with a virtual authenticator attached and requests elsewhere blocked. */
  async function newPage(): Promise<{ context: BrowserContext; page: Page; outside: string[]; authenticatorId: string; cdp: CDPSession }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const outside = await blockOutsideRequests(page, origin);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    return { context, page, outside, authenticatorId, cdp };
  }

  const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name }).waitFor();

  async function password(page: Page, email: string) {
    await page.goto(`${origin}/sign-in`);
    await page.getByLabel('Email address').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  async function signInWithCode(page: Page, who: { email: string; code: () => string }) {
    await password(page, who.email);
    await heading(page, 'Enter the code from your authenticator app');
    await page.getByLabel('Code', { exact: true }).fill(who.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    await heading(page, 'My account');
  }

  /** Security info → Add sign-in method → the radio of `value`; a step-up with the app's code if asked. */
  async function chooseToAdd(page: Page, who: { code: () => string }, value: 'passkey' | 'recovery-codes') {
    await page.goto(`${origin}/security-info`);
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await heading(page, 'Add sign-in method');
    // The passkey's label may add "(recommended by your organisation)": chosen by its value.
    await page.locator(`input[type="radio"][value="${value}"]`).check();
    await page.getByRole('button', { name: 'Add' }).click();
    await page.waitForLoadState();
    if (new URL(page.url()).pathname.startsWith('/sign-in/step-up')) {
      await page.getByLabel('Code', { exact: true }).fill(who.code());
      await page.getByRole('button', { name: 'Verify' }).click();
    }
  }

  async function signOut(page: Page) {
    await page.goto(`${origin}/account`);
    await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
    await heading(page, 'You have signed out');
  }

  it('sets up recovery codes, signs in with one once, and refuses it again (NIST SP 800-63B-4 look-up secrets)', async () => {
    const who = await person();
    const { page, outside } = await newPage();
    await signInWithCode(page, who);
    await chooseToAdd(page, who, 'recovery-codes');
    await heading(page, 'Save your recovery codes');
    const codes = (await page.locator('#recovery-codes .portcullis-key').allInnerTexts()).map((c) => c.trim());
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    await expectAccessible(page);
    await page.getByLabel('I have saved my recovery codes').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await heading(page, 'Security info');
    expect(new URL(page.url()).searchParams.get('done')).toBe('added');
    await signOut(page);

    const useCode = async (code: string) => {
      await password(page, who.email);
      await heading(page, 'Enter the code from your authenticator app');
      await page.getByRole('link', { name: 'Sign in another way' }).click();
      await heading(page, 'Sign in another way');
      await expectAccessible(page);
      await page.getByLabel('Use a recovery code').check();
      await page.getByRole('button', { name: 'Continue' }).click();
      await heading(page, 'Enter a recovery code');
      await page.getByRole('textbox').first().fill(code);
      await page.getByRole('button', { name: 'Verify' }).click();
    };

    await useCode(codes[0]!);
    await heading(page, 'My account');
    await signOut(page);

    await useCode(codes[0]!);
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(page.getByRole('heading', { level: 1, name: 'Enter a recovery code' }).isVisible()).resolves.toBe(true);
    await expectAccessible(page);
    expect(outside).toEqual([]);
  });

  /** The audit details of the latest event of `type` for this person. */
  async function latestDetails(email: string, type: 'sign-in.succeeded'): Promise<Record<string, unknown>> {
    const user = (await ctx.store.users.findByEmail(email))!;
    const [event] = await ctx.store.audit.list({ subjectUserId: user.id, type, limit: 1 });
    const details: unknown = event?.details;
    return (typeof details === 'string' ? JSON.parse(details) : details) as Record<string, unknown>;
  }

  /**
   * The password step with the authenticator untouched: the virtual authenticator would otherwise answer
   * the email page's autofill request at once (a person would have to pick the passkey from the list).
   */
  async function passwordOnly(page: Page, email: string, cdp: CDPSession, authenticatorId: string) {
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
    await password(page, email);
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: true });
  }

  /** Tab until the element matching `selector` has the focus (keyboard only, WCAG 2.1.1). */
  async function tabTo(page: Page, selector: string) {
    for (let presses = 0; presses < 30; presses++) {
      if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
      await page.keyboard.press('Tab');
    }
    throw new Error(`could not reach ${selector} with Tab`);
  }

  /** On "Add a passkey": the name typed and the button pressed with the keyboard alone; back on Security info. */
  async function addPasskeyWithKeyboard(page: Page, name: string) {
    await heading(page, 'Add a passkey');
    await tabTo(page, '#name');
    await page.keyboard.type(name);
    await tabTo(page, 'form[data-webauthn] button');
    await page.keyboard.press('Enter');
    await heading(page, 'Security info');
    expect(new URL(page.url()).searchParams.get('done')).toBe('added');
  }

  it('registers a passkey from Security info with the keyboard alone, and shows it (WebAuthn L3 §7.1)', async () => {
    const who = await person();
    const { page, outside, cdp, authenticatorId } = await newPage();
    await signInWithCode(page, who);
    await chooseToAdd(page, who, 'passkey');
    await heading(page, 'Add a passkey');
    await expectAccessible(page);
    await addPasskeyWithKeyboard(page, 'Work laptop');
    const row = page.getByRole('row').filter({ hasText: 'Work laptop' });
    await expect(row.innerText()).resolves.toContain('Device-bound passkey');
    await expectAccessible(page);
    // The authenticator holds one discoverable credential; the server holds its public key only.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]!.isResidentCredential).toBe(true);
    const user = (await ctx.store.users.findByEmail(who.email))!;
    const passkey = (await ctx.store.methods.activeForUser(user.id)).find((m) => m.kind === 'passkey')!;
    expect(passkey.lookup_key).toBe(Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url'));
    expect(passkey.data).not.toContain(credentials[0]!.privateKey);

    // Renamed from Security info.
    await page.getByRole('link', { name: /Rename/ }).click();
    await heading(page, 'Rename your sign-in method');
    await page.getByLabel('Name').fill('Ward laptop');
    await page.getByRole('button', { name: 'Save name' }).click();
    await heading(page, 'Security info');
    await expect(page.getByRole('row').filter({ hasText: 'Ward laptop' }).count()).resolves.toBe(1);
    expect(outside).toEqual([]);
  });

  it('signs in without a password from the email page, then uses the passkey as the second step (WebAuthn L3 §7.2)', async () => {
    const who = await person();
    const { page, outside, cdp, authenticatorId } = await newPage();
    await signInWithCode(page, who);
    await chooseToAdd(page, who, 'passkey');
    await addPasskeyWithKeyboard(page, 'My phone');
    await signOut(page);

    // Passwordless: "Sign in with a passkey" on the email page. While the person has not touched the
    // authenticator (presence not simulated), the page waits with its autofill request open.
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
    await page.goto(`${origin}/sign-in`);
    await heading(page, 'Sign in');
    await expectAccessible(page);
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: true });
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await heading(page, 'My account');
    expect(await latestDetails(who.email, 'sign-in.succeeded')).toMatchObject({ methods: ['passkey'], passwordless: true });
    await signOut(page);

    // After the password: "Sign in another way" → the passkey, whose page starts the ceremony itself.
    await passwordOnly(page, who.email, cdp, authenticatorId);
    await heading(page, 'Enter the code from your authenticator app');
    await page.getByRole('link', { name: 'Sign in another way' }).click();
    await page.getByLabel('Use a passkey (My phone)').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await heading(page, 'My account');
    expect(await latestDetails(who.email, 'sign-in.succeeded')).toMatchObject({ methods: ['password', 'passkey'] });
    expect(outside).toEqual([]);
  });

  it('lets an elevated person past the enforcement date add a passkey, which lifts the restriction (app-push)', async () => {
    const admin = await person([{ role: 'helpdesk', organisations: [] }]);
    const { page, outside, cdp, authenticatorId } = await newPage();
    // Their authenticator-app code no longer meets the requirement: a session restricted to Security info.
    await password(page, admin.email);
    await heading(page, 'Enter the code from your authenticator app');
    await page.getByLabel('Code', { exact: true }).fill(admin.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    await heading(page, 'Security info');
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await heading(page, 'Add sign-in method');
    await page.locator('input[type="radio"][value="passkey"]').check();
    await page.getByRole('button', { name: 'Add' }).click();
    await addPasskeyWithKeyboard(page, 'Security key');
    // The passkey proved in the set-up lifts the restriction at once.
    await page.goto(`${origin}/account`);
    await heading(page, 'My account');
    await signOut(page);
    // And signs them in in full: password, then the passkey (the only method meeting app-push, so prompted).
    await passwordOnly(page, admin.email, cdp, authenticatorId);
    await heading(page, 'My account');
    expect(await latestDetails(admin.email, 'sign-in.succeeded')).toMatchObject({ methods: ['password', 'passkey'] });
    expect(outside).toEqual([]);
  });

  it('refuses a passkey whose model the strength does not list, saying which requirement (AAGUID allow-list)', async () => {
    const admin = await person([{ role: 'local-admin', organisations: ['Northfield Trust'] }]);
    const { page, outside } = await newPage();
    await password(page, admin.email);
    await heading(page, 'Enter the code from your authenticator app');
    await page.getByLabel('Code', { exact: true }).fill(admin.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    await heading(page, 'Security info');
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await page.locator('input[type="radio"][value="passkey"]').check();
    await page.getByRole('button', { name: 'Add' }).click();
    await heading(page, 'Add a passkey');
    await page.getByLabel('Name').fill('Laptop');
    await page.getByRole('button', { name: 'Add passkey' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(page.locator('.nhsuk-error-summary').innerText()).resolves.toContain('Local administrators use a security key');
    await expectAccessible(page);
    const user = (await ctx.store.users.findByEmail(admin.email))!;
    expect((await ctx.store.methods.activeForUser(user.id)).map((m) => m.kind)).toEqual(['totp']);
    expect(outside).toEqual([]);
  });
});
