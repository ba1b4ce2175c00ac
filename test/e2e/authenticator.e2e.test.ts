/**
 * The Portcullis Authenticator (/authenticator/) end to end in Chromium, with one browser context as the
 * user's computer and others as their phones:
 *
 * 1. pairing from Security info: the phone opens the link, is named, and approves the test request by
 *    typing the number the computer shows; the computer moves on and the app becomes the default;
 * 2. signing in with push: the request reaches the open app through its event stream (headless
 *    Chromium has no push service, and incognito contexts refuse the Push API), the number is typed and
 *    approved, and the sign-in page carries on by itself;
 * 3. the service worker's push handling, with a message delivered through the DevTools protocol
 *    (`ServiceWorker.deliverPushMessage`): a notification is shown and the open app fetches that request;
 * 4. a new phone: the old phone approves the sign-in to Security info, the new phone is paired there,
 *    the old one is deleted, and the old phone then says it was removed (DESIGN.md "Migration");
 * 5. Deny, a wrong number, and "No, it's not me" — each outcome on both screens — and removing the
 *    phone from the app itself; a removal the policy refuses (the person's only phone that meets it),
 *    said plainly, and forgetting the account on that phone only (issue #12);
 * 6. the code vault: add accounts (link and key), codes equal to RFC 6238's, an encrypted export,
 *    an import elsewhere (a wrong passphrase refused), and offline start from the service worker's cache;
 * 7. the CLI authenticator (the real `portcullis authenticator`, on the same SDK) approves a sign-in
 *    waiting in Chromium, which carries on by itself.
 *
 * axe-core checks every view of the app and the sign-in wait page (WCAG 2.2 AA); no request leaves the
 * machine.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { applyPolicyText, DEFAULT_POLICY_DOCUMENT } from '../../src/app/policy.js';
import { pairingStatus, startPairing } from '../../src/app/methods/push/pairing.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import type { TestContext } from '../helpers/context.js';
import { runCli } from '../helpers/cli.js';
import { blockOutsideRequests, expectAccessible, startLiveServer, type LiveServer } from '../helpers/browser.js';

const PASSWORD = 'lantern-harbour-correct';
const USERS = ['pat', 'jo', 'sam', 'casey'];

describe('the Portcullis Authenticator in Chromium', () => {
  let server: LiveServer;
  let ctx: TestContext;
  let browser: Browser;
  let origin: string;
  /** Each page's list of requests to other hosts (filled as the page runs). */
  const outside: string[][] = [];
  /** Contexts closed after each journey, but for those a later journey goes on with. */
  const opened: BrowserContext[] = [];
  const kept = new Set<BrowserContext>();

  beforeAll(async () => {
    server = await startLiveServer(
      // One second between pushes (not 10), so the journeys need not wait; the limits are tested elsewhere.
      { ORGANISATION_NAME: 'NHSmail', DEVELOPMENT_PAGES: 'true', PUSH_MIN_INTERVAL: '1', PUSH_PER_HOUR: '100' },
      async (context) => {
        await addOrganisation(context, 'Northfield Trust', { kind: 'system' });
        for (const name of USERS) {
          await addUser(context, { email: `${name}@example.org`, displayName: name, organisation: 'Northfield Trust', roles: [], password: PASSWORD }, { kind: 'system' });
        }
      },
    );
    ({ ctx, browser, origin } = server);
  });

  afterEach(async () => {
    for (const context of opened.splice(0)) {
      if (kept.has(context)) opened.push(context);
      else await context.close();
    }
  });

  afterAll(async () => {
    await server?.close();
    expect(outside.flat()).toEqual([]);
  });

  /** A browser context with one page, every request to another host blocked and recorded. */
  async function open(options: { phone?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext();
    // A phone's user allows notifications (so the service worker may show them); subscribing still
    // fails here, which is the fallback under test.
    if (options.phone) await context.grantPermissions(['notifications'], { origin });
    opened.push(context);
    const page = await context.newPage();
    outside.push(await blockOutsideRequests(page, origin));
    return { context, page };
  }

  async function signInWithPassword(page: Page, email: string) {
    await page.goto(`${origin}/sign-in`);
    await page.getByLabel('Email address').fill(email);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** The number in large type on the sign-in wait page or the set-up status page. */
  async function numberOn(page: Page): Promise<string> {
    const text = await page.locator('.portcullis-number').innerText();
    return text.replace(/\D/g, '');
  }

  /**
   * "Send a new request" on the wait page, once the gap between pushes (1 s here) has passed — sooner,
   * the page says "Wait 1 second" instead, which is the fatigue limit working, tested elsewhere.
   */
  async function sendNewRequest(page: Page) {
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await page.getByRole('button', { name: 'Send a new request' }).click();
    await page.getByRole('heading', { level: 1, name: 'Approve the sign-in on your phone' }).waitFor();
    await page.locator('.portcullis-number').waitFor();
  }

  /** Password, then the push wait page; returns the number it shows. */
  async function signInToPushPage(page: Page, email: string): Promise<string> {
    await signInWithPassword(page, email);
    await page.getByRole('heading', { level: 1, name: 'Approve the sign-in on your phone' }).waitFor();
    return numberOn(page);
  }

  /** In the app: open the waiting request for `email` (from the home view's list), type and approve. */
  async function approveOnPhone(phone: Page, email: string, number: string) {
    await phone.getByRole('link', { name: `Sign-in request for ${email}` }).click();
    await phone.getByRole('heading', { level: 1, name: 'Are you trying to sign in?' }).waitFor();
    await phone.getByLabel('Enter the number shown on the sign-in page').fill(number);
    await phone.getByRole('button', { name: 'Approve' }).click();
    await phone.getByRole('heading', { level: 1, name: 'Approved' }).waitFor();
  }

  /**
   * A phone paired with `email` without the computer's pages (they are journey 1's subject): the code
   * from startPairing, the test request approved with the number Security info would show. The phone
   * becomes the user's default method, so the next sign-in goes to it.
   */
  async function pairPhone(email: string, name: string): Promise<{ context: BrowserContext; page: Page; deviceId: string }> {
    const user = (await ctx.store.users.findByEmail(email))!;
    const pairing = await startPairing(ctx, user);
    const phone = await open({ phone: true });
    await phone.page.goto(pairing.url);
    await phone.page.getByLabel('Name this phone').fill(name);
    await phone.page.getByRole('button', { name: 'Connect this phone' }).click();
    await phone.page.getByRole('heading', { level: 1, name: 'Approve the test request' }).waitFor();
    const status = await pairingStatus(ctx, user, pairing.enrolmentId);
    await phone.page.getByLabel('Enter the number shown on the Security info page').fill(status.number!);
    await phone.page.getByRole('button', { name: 'Approve' }).click();
    await phone.page.getByRole('heading', { level: 1, name: 'Approved' }).waitFor();
    await ctx.store.users.setDefaultMethod(user.id, status.methodId!, ctx.clock());
    await phone.page.getByRole('button', { name: 'Back to sign-in requests' }).click();
    await phone.page.getByRole('heading', { level: 1, name: 'Portcullis Authenticator' }).waitFor();
    return { ...phone, deviceId: status.methodId! };
  }

  let patPhone: Page;

  it('pairs a phone from Security info: the phone approves the test request with the number the computer shows', async () => {
    const { page } = await open();
    await signInWithPassword(page, 'pat@example.org');
    await page.getByRole('heading', { level: 1, name: 'Set up a second way to sign in' }).waitFor();
    await page.getByRole('button', { name: 'Set it up now' }).click();
    // A code app first, chosen as the default (as many people have today), so that the phone is then
    // offered as the new default rather than becoming it by being the strongest method.
    await page.getByLabel('Authenticator app').check();
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByRole('link', { name: 'I want to use a different authenticator app' }).click();
    await page.getByText("Can't scan the QR code?").click();
    const key = (await page.locator('#totp-key').innerText()).replace(/\s+/g, '');
    await page.getByLabel('Code', { exact: true }).fill(generateTotp(key, new Date()));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('link', { name: 'Change default sign-in method' }).click();
    await page.getByLabel('Authenticator app – code').check();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByText('Your default sign-in method has been changed.').waitFor();

    // Security info → Add sign-in method → Authenticator app.
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await page.getByLabel('Authenticator app').check();
    await page.getByRole('button', { name: 'Add' }).click();
    await page.getByRole('heading', { level: 1, name: 'Set up the Portcullis Authenticator' }).waitFor();
    const pairingUrl = (await page.getByRole('link', { name: /\/authenticator\/#pair=/ }).getAttribute('href'))!;
    expect(pairingUrl).toMatch(new RegExp(`^${origin}/authenticator/#pair=[A-Za-z0-9_-]{22,}$`));

    // The phone: the link opens the app, which asks for a name.
    const phone = await open({ phone: true });
    patPhone = phone.page;
    // The same phone signs in with push next, then receives a push.
    kept.add(phone.context);
    const response = await patPhone.goto(pairingUrl);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self';");
    expect(response?.headers()['permissions-policy']).toContain('camera=(self)');
    await patPhone.getByRole('heading', { level: 1, name: 'Connect this phone' }).waitFor();
    await expectAccessible(patPhone);
    await patPhone.getByRole('button', { name: 'Connect this phone' }).click();
    await patPhone.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(patPhone.title()).resolves.toBe('Error: Connect this phone – Portcullis Authenticator');
    await expectAccessible(patPhone);
    await patPhone.getByLabel('Name this phone').fill('Work phone');
    await patPhone.getByRole('button', { name: 'Connect this phone' }).click();

    // The test request, with its context; the pairing code has left the address bar.
    await patPhone.getByRole('heading', { level: 1, name: 'Approve the test request' }).waitFor();
    expect(patPhone.url()).not.toContain('pair=');
    await expect(patPhone.getByText('pat@example.org').first().isVisible()).resolves.toBe(true);
    await expectAccessible(patPhone);

    // The computer moves on by itself and shows the number.
    await page.getByRole('heading', { level: 1, name: 'Approve the test request' }).waitFor();
    const number = await numberOn(page);
    expect(number).toMatch(/^\d{2}$/);

    // The page showing the number stays put until the phone answers (it once reloaded itself over and
    // over, because its event stream said "update" for the state it was already showing).
    let navigations = 0;
    page.on('framenavigated', () => (navigations += 1));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(navigations).toBe(0);

    await patPhone.getByRole('button', { name: 'Approve' }).click();
    await patPhone.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(patPhone.getByRole('alert').first().innerText()).resolves.toContain('Enter the number shown on the Security info page');
    await expectAccessible(patPhone);
    await patPhone.getByLabel('Enter the number shown on the Security info page').fill(number);
    await patPhone.getByRole('button', { name: 'Approve' }).click();
    await patPhone.getByRole('heading', { level: 1, name: 'Approved' }).waitFor();
    await expect(patPhone.getByText('This phone is set up.').isVisible()).resolves.toBe(true);
    await expectAccessible(patPhone);

    await page.getByRole('heading', { level: 1, name: 'Authenticator app added' }).waitFor();
    await page.getByRole('button', { name: 'Make it my default' }).click();
    await page.getByText('Your default sign-in method has been changed.').waitFor();
    await expect(page.getByText('App based authentication – notification – Work phone').first().isVisible()).resolves.toBe(true);

    // The app's home view lists the account; "Manage devices" lists this phone, marked.
    await patPhone.getByRole('button', { name: 'Back to sign-in requests' }).click();
    await patPhone.getByRole('heading', { level: 2, name: 'Your accounts' }).waitFor();
    await expect(patPhone.getByText('There are no sign-in requests waiting.').isVisible()).resolves.toBe(true);
    await expectAccessible(patPhone);
    await patPhone.getByRole('link', { name: 'Manage devices for pat@example.org' }).click();
    await patPhone.getByRole('heading', { level: 1, name: 'Your devices' }).waitFor();
    await patPhone.getByRole('cell', { name: 'Work phone This phone' }).waitFor();
    await expectAccessible(patPhone);
    await patPhone.getByLabel('Name of this phone').fill('Pat’s work phone');
    await patPhone.getByRole('button', { name: 'Save name' }).click();
    await patPhone.getByText('This phone is now called Pat’s work phone.').waitFor();
    await patPhone.getByRole('cell', { name: 'Pat’s work phone This phone' }).waitFor();
  });

  it('signs in with push: the open app shows the request, the number is typed, and the sign-in page carries on by itself', async () => {
    const { page } = await open();
    const number = await signInToPushPage(page, 'pat@example.org');
    await expectAccessible(page);

    await patPhone.getByRole('link', { name: 'Back' }).click();
    await patPhone.getByRole('heading', { level: 2, name: 'Sign-in requests' }).waitFor();
    await patPhone.getByRole('link', { name: 'Sign-in request for pat@example.org' }).waitFor();
    await expectAccessible(patPhone);
    await patPhone.getByRole('link', { name: 'Sign-in request for pat@example.org' }).click();
    await patPhone.getByRole('heading', { level: 1, name: 'Are you trying to sign in?' }).waitFor();
    await expect(patPhone.getByText('NHSmail sign-in').isVisible()).resolves.toBe(true);
    await expect(patPhone.getByText('127.0.0.1').isVisible()).resolves.toBe(true);
    await expectAccessible(patPhone);
    await patPhone.getByLabel('Enter the number shown on the sign-in page').fill(number);
    await patPhone.getByRole('button', { name: 'Approve' }).click();
    await patPhone.getByRole('heading', { level: 1, name: 'Approved' }).waitFor();
    await expectAccessible(patPhone);

    // Nobody touches the computer: its event stream hears the decision.
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
  });

  it('handles a push in the service worker: a notification, and the open app fetches the request at once', async () => {
    const { page } = await open();
    const number = await signInToPushPage(page, 'pat@example.org');
    await patPhone.getByRole('button', { name: 'Back to sign-in requests' }).click();
    const requestLink = patPhone.getByRole('link', { name: 'Sign-in request for pat@example.org' });
    const challengeId = (await requestLink.getAttribute('href'))!.replace('#challenge=', '');

    const cdp = await patPhone.context().newCDPSession(patPhone);
    const registration = new Promise<string>((resolve) => {
      cdp.on('ServiceWorker.workerRegistrationUpdated', (event: { registrations: Array<{ registrationId: string; scopeURL: string; isDeleted: boolean }> }) => {
        const found = event.registrations.find((r) => r.scopeURL === `${origin}/authenticator/` && !r.isDeleted);
        if (found) resolve(found.registrationId);
      });
    });
    await cdp.send('ServiceWorker.enable');
    const registrationId = await registration;

    // Only a push (or a tap on its notification) makes the app ask for one request by its id.
    const lookUp = patPhone.waitForRequest((request) => request.url() === `${origin}/device/v1/challenges/${challengeId}`);
    await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: JSON.stringify({ challengeId }) });
    await lookUp;

    const worker = patPhone.context().serviceWorkers().find((w) => w.url() === `${origin}/authenticator/sw.js`)!;
    const notifications = () =>
      worker.evaluate(async () => {
        const scope = self as unknown as { registration: { getNotifications(): Promise<Array<{ title: string; body: string; data: unknown }>> } };
        return (await scope.registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, data: n.data }));
      });
    // The worker tells the window first, then shows the notification.
    await expect.poll(notifications).toContainEqual({
      title: 'Sign-in request – open to approve',
      body: 'Open the Portcullis Authenticator and type the number shown on the sign-in page.',
      data: { challengeId },
    });
    await cdp.detach();

    // Tapping the notification opens /authenticator/#challenge=<id>: the request itself.
    await patPhone.goto(`${origin}/authenticator/#challenge=${challengeId}`);
    await patPhone.getByRole('heading', { level: 1, name: 'Are you trying to sign in?' }).waitFor();
    await patPhone.getByLabel('Enter the number shown on the sign-in page').fill(number);
    await patPhone.getByRole('button', { name: 'Approve' }).click();
    await patPhone.getByRole('heading', { level: 1, name: 'Approved' }).waitFor();
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    kept.delete(patPhone.context());
  });

  it('moves to a new phone: the old phone approves the sign-in, the new one is paired, the old one removed and told', async () => {
    const oldPhone = (await pairPhone('jo@example.org', 'Old phone')).page;
    const { page } = await open();

    // The old phone approves the sign-in that opens Security info.
    const number = await signInToPushPage(page, 'jo@example.org');
    await approveOnPhone(oldPhone, 'jo@example.org', number);
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();

    await page.goto(`${origin}/security-info`);
    await page.getByRole('button', { name: 'Add sign-in method' }).click();
    await page.getByLabel('Authenticator app').check();
    await page.getByRole('button', { name: 'Add' }).click();
    const pairingUrl = (await page.getByRole('link', { name: /\/authenticator\/#pair=/ }).getAttribute('href'))!;

    const newPhone = (await open({ phone: true })).page;
    await newPhone.goto(pairingUrl);
    await newPhone.getByLabel('Name this phone').fill('New phone');
    await newPhone.getByRole('button', { name: 'Connect this phone' }).click();
    await newPhone.getByRole('heading', { level: 1, name: 'Approve the test request' }).waitFor();
    await page.getByRole('heading', { level: 1, name: 'Approve the test request' }).waitFor();
    await newPhone.getByLabel('Enter the number shown on the Security info page').fill(await numberOn(page));
    await newPhone.getByRole('button', { name: 'Approve' }).click();
    await newPhone.getByRole('heading', { level: 1, name: 'Approved' }).waitFor();
    await page.getByRole('heading', { level: 1, name: 'Authenticator app added' }).waitFor();
    await page.getByRole('button', { name: 'Make it my default' }).click();
    await page.getByText('Your default sign-in method has been changed.').waitFor();

    // Both phones for now, the new one marked as this phone.
    await newPhone.getByRole('button', { name: 'Back to sign-in requests' }).click();
    await newPhone.getByRole('link', { name: 'Manage devices for jo@example.org' }).click();
    await newPhone.getByRole('cell', { name: 'New phone This phone' }).waitFor();
    await expect(newPhone.getByRole('cell', { name: 'Old phone', exact: true }).isVisible()).resolves.toBe(true);

    // Then the old one goes, from Security info.
    await page.getByRole('link', { name: /Delete .*Old phone/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Are you sure you want to delete this sign-in method?' }).waitFor();
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Your sign-in method has been deleted.').waitFor();

    // The old phone hears `device-unknown` next time it asks, forgets the account and its key, and says so.
    await oldPhone.reload();
    await oldPhone.getByRole('region', { name: 'Important' }).getByText('This phone was removed from jo@example.org').waitFor();
    await expect(oldPhone.getByText('This phone is not set up to approve sign-ins yet.').isVisible()).resolves.toBe(true);
    await expectAccessible(oldPhone);
    const keys = await oldPhone.evaluate(
      () =>
        new Promise<number>((resolve, reject) => {
          const request = indexedDB.open('portcullis-authenticator');
          request.onsuccess = () => {
            const count = request.result.transaction('keys').objectStore('keys').count();
            count.onsuccess = () => resolve(count.result);
            count.onerror = () => reject(count.error);
          };
          request.onerror = () => reject(request.error);
        }),
    );
    expect(keys).toBe(0);

    await newPhone.reload();
    await newPhone.getByRole('cell', { name: 'New phone This phone' }).waitFor();
    await expect(newPhone.getByRole('cell', { name: 'Old phone', exact: true }).count()).resolves.toBe(0);
  });

  it('shows Deny, a wrong number and "No, it\'s not me" on both screens, and removes the phone from the app', async () => {
    const { page: phone } = await pairPhone('sam@example.org', 'Sam’s phone');
    const { page } = await open();

    // Deny.
    await signInToPushPage(page, 'sam@example.org');
    await phone.getByRole('link', { name: 'Sign-in request for sam@example.org' }).click();
    await phone.getByRole('button', { name: 'Deny' }).click();
    await phone.getByRole('heading', { level: 1, name: 'Denied' }).waitFor();
    await expectAccessible(phone);
    await page.getByText('The sign-in request was declined on your authenticator app').first().waitFor();

    // A wrong number.
    await sendNewRequest(page);
    const number = await numberOn(page);
    const wrong = String((Number(number) + 1) % 10 ** number.length).padStart(number.length, '0');
    await phone.getByRole('button', { name: 'Back to sign-in requests' }).click();
    await phone.getByRole('link', { name: 'Sign-in request for sam@example.org' }).click();
    await phone.getByLabel('Enter the number shown on the sign-in page').fill(wrong);
    await phone.getByRole('button', { name: 'Approve' }).click();
    await phone.getByRole('heading', { level: 1, name: 'The number did not match' }).waitFor();
    await expectAccessible(phone);
    await page.getByText('The number entered in your authenticator app did not match').first().waitFor();

    // "No, it's not me", confirmed first.
    await sendNewRequest(page);
    await phone.getByRole('button', { name: 'Back to sign-in requests' }).click();
    await phone.getByRole('link', { name: 'Sign-in request for sam@example.org' }).click();
    await phone.getByRole('button', { name: "No, it's not me" }).click();
    await phone.getByRole('heading', { level: 1, name: 'Report this sign-in request?' }).waitFor();
    await expectAccessible(phone);
    await phone.getByRole('button', { name: 'Yes, report it' }).click();
    await phone.getByRole('heading', { level: 1, name: 'Reported' }).waitFor();
    await expectAccessible(phone);
    await page.getByText('reported as not you').first().waitFor();
    await expectAccessible(page);

    // The phone removes itself, after a confirmation.
    await phone.getByRole('button', { name: 'Back to sign-in requests' }).click();
    await phone.getByRole('link', { name: 'Manage devices for sam@example.org' }).click();
    await phone.getByRole('link', { name: 'Remove this phone from sam@example.org' }).click();
    await phone.getByRole('heading', { level: 1, name: 'Are you sure you want to remove this phone?' }).waitFor();
    await expectAccessible(phone);
    await phone.getByRole('button', { name: 'Yes, remove this phone' }).click();
    await phone.getByText('This phone has been removed from sam@example.org.').waitFor();
    await expectAccessible(phone);
    const user = (await ctx.store.users.findByEmail('sam@example.org'))!;
    expect(await ctx.store.methods.countActive(user.id, 'push')).toBe(0);
  });

  it('refuses removing the only phone that meets the policy, says why, and forgets the account on this phone only (issue #12)', async () => {
    const email = 'lee@example.org';
    const { user } = await addUser(ctx, { email, displayName: 'lee', organisation: 'Northfield Trust', roles: [{ role: 'helpdesk', organisations: [] }], password: PASSWORD }, { kind: 'system' });
    const { page: phone } = await pairPhone(email, 'Lee’s phone');
    // Push for those with elevated rights: this phone is the one method Lee has that meets it.
    await applyPolicyText(
      ctx,
      [
        'version: 1',
        'timeZone: UTC',
        'methods: { sms: { enabled: true }, voice: { enabled: true }, totp: { enabled: true }, push: { enabled: true }, tap: { enabled: true } }',
        'requirements:',
        '  - { id: elevated-push, name: Those with elevated rights must use push notifications, include: [elevated], strength: app-push, effective: 2023-11-30, graceDays: 0, mode: enforce, bootstrap: { duringGrace: any-registered, afterGrace: tap-only } }',
      ].join('\n'),
      { kind: 'system' },
    );
    try {
      await phone.getByRole('link', { name: `Manage devices for ${email}` }).click();
      await phone.getByRole('link', { name: `Remove this phone from ${email}` }).click();
      await phone.getByRole('button', { name: 'Yes, remove this phone' }).click();
      await phone.getByRole('heading', { level: 1, name: 'You cannot remove this phone' }).waitFor();
      await expect(phone.title()).resolves.toBe('You cannot remove this phone – Portcullis Authenticator');
      await phone.getByText('It is your only sign-in method that meets “Those with elevated rights must use push notifications” (from 30 November 2023).').waitFor();
      await expectAccessible(phone);
      expect(await ctx.store.methods.countActive(user.id, 'push')).toBe(1);

      await phone.getByRole('button', { name: 'Forget this account on this phone' }).click();
      await phone.getByText(`${email} has been forgotten on this phone, and its key deleted.`).waitFor();
      await expect(phone.getByText('This phone is not set up to approve sign-ins yet.').isVisible()).resolves.toBe(true);
      await expectAccessible(phone);
      // Gone from the phone, key and all; the account on the server is as it was.
      const stored = await phone.evaluate(
        () =>
          new Promise<{ accounts: number; keys: number }>((resolve, reject) => {
            const request = indexedDB.open('portcullis-authenticator');
            request.onsuccess = () => {
              const transaction = request.result.transaction(['accounts', 'keys']);
              const accounts = transaction.objectStore('accounts').count();
              const keys = transaction.objectStore('keys').count();
              transaction.oncomplete = () => resolve({ accounts: accounts.result, keys: keys.result });
              transaction.onerror = () => reject(transaction.error);
            };
            request.onerror = () => reject(request.error);
          }),
      );
      expect(stored).toEqual({ accounts: 0, keys: 0 });
      expect(await ctx.store.methods.countActive(user.id, 'push')).toBe(1);
    } finally {
      await applyPolicyText(ctx, JSON.stringify(DEFAULT_POLICY_DOCUMENT), { kind: 'system' });
    }
  });

  it('keeps codes for other accounts, exports them with a passphrase, imports them elsewhere, and works offline', async () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DP';
    const codesNow = () => [-1, 0, 1].map((steps) => generateTotp(secret, new Date(Date.now() + steps * 30_000)));
    const shown = async (page: Page, title: string) =>
      (await page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: title }) }).locator('.portcullis-code').innerText()).replace(/\D/g, '');

    const { context, page } = await open();
    await page.goto(`${origin}/authenticator/#codes`);
    await page.getByRole('heading', { level: 1, name: 'Codes for other accounts' }).waitFor();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Add an account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Add an account' }).waitFor();
    // Debian's Chromium has no BarcodeDetector: the app says so and offers the other ways.
    await expect(page.getByText('Scanning QR codes is not available in this browser.').isVisible()).resolves.toBe(true);
    await expectAccessible(page);
    await page.getByLabel('Set-up link').fill('otpauth://hotp/Example:alex?secret=JBSWY3DPEHPK3PXP&counter=1');
    await page.getByRole('button', { name: 'Add account', exact: true }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(page.getByRole('alert').first().innerText()).resolves.toContain('Only time-based (TOTP) accounts can be added');
    await expectAccessible(page);
    await page.getByLabel('Set-up link').fill(`otpauth://totp/Example%20Mail:alex%40example.com?secret=${secret}&issuer=Example%20Mail`);
    await page.getByRole('button', { name: 'Add account', exact: true }).click();
    await page.getByText('Example Mail (alex@example.com) has been added.').waitFor();
    expect(codesNow()).toContain(await shown(page, 'Example Mail (alex@example.com)'));
    await expect(page.getByRole('timer').first().innerText()).resolves.toMatch(/^\d+ seconds? left$/);

    // A second account by its key, typed as services show it (groups of four, lower case).
    await page.getByRole('button', { name: 'Add an account' }).click();
    await page.getByText('Enter a key instead').click();
    await page.getByLabel('Service name (optional)').fill('PayPal');
    await page.getByLabel('Account name').fill('alex');
    await page.getByLabel('Key', { exact: true }).fill('gezd gnbv gy3t qojq gezd gnbv gy3t qojq');
    await page.getByRole('button', { name: 'Add account with this key' }).click();
    await page.getByText('PayPal (alex) has been added.').waitFor();
    expect([-1, 0, 1].map((s) => generateTotp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', new Date(Date.now() + s * 30_000)))).toContain(await shown(page, 'PayPal (alex)'));
    await expectAccessible(page);

    // Export: the passphrases must match; the file is the SDK's encrypted envelope, no secret in sight.
    await page.getByRole('link', { name: 'Export your codes' }).click();
    await page.getByRole('heading', { level: 1, name: 'Export your codes' }).waitFor();
    await expectAccessible(page);
    await page.getByLabel('Passphrase', { exact: true }).fill('correct horse battery');
    await page.getByLabel('Confirm passphrase').fill('correct horse');
    await page.getByRole('button', { name: 'Export' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expectAccessible(page);
    await page.getByLabel('Passphrase', { exact: true }).fill('correct horse battery');
    await page.getByLabel('Confirm passphrase').fill('correct horse battery');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^portcullis-codes-\d{4}-\d{2}-\d{2}\.json$/);
    const exported = readFileSync((await download.path())!, 'utf8');
    expect(JSON.parse(exported)).toMatchObject({ format: 'portcullis-vault', version: 1, kdf: { name: 'PBKDF2' }, cipher: { name: 'AES-GCM' } });
    expect(exported).not.toContain(secret);
    await page.getByText('Your codes have been exported to').waitFor();

    // The new phone: a wrong passphrase is refused; the right one brings both accounts.
    const fresh = (await open()).page;
    await fresh.goto(`${origin}/authenticator/#codes/import`);
    await fresh.getByRole('heading', { level: 1, name: 'Import codes' }).waitFor();
    await expectAccessible(fresh);
    await fresh.getByLabel('Export file').setInputFiles({ name: download.suggestedFilename(), mimeType: 'application/json', buffer: Buffer.from(exported) });
    await fresh.getByLabel('Passphrase').fill('wrong horse battery');
    await fresh.getByRole('button', { name: 'Import' }).click();
    await fresh.getByRole('heading', { name: 'There is a problem' }).waitFor();
    await expect(fresh.getByRole('alert').first().innerText()).resolves.toContain('The passphrase is not right for this file');
    await expectAccessible(fresh);
    await fresh.getByLabel('Export file').setInputFiles({ name: download.suggestedFilename(), mimeType: 'application/json', buffer: Buffer.from(exported) });
    await fresh.getByLabel('Passphrase').fill('correct horse battery');
    await fresh.getByRole('button', { name: 'Import' }).click();
    await fresh.getByText('2 accounts added.').waitFor();
    expect(codesNow()).toContain(await shown(fresh, 'Example Mail (alex@example.com)'));
    await expectAccessible(fresh);

    // Deleting one, after a confirmation.
    await fresh.getByRole('link', { name: 'Delete PayPal (alex)' }).click();
    await fresh.getByRole('heading', { level: 1, name: 'Are you sure you want to delete PayPal (alex)?' }).waitFor();
    await expectAccessible(fresh);
    await fresh.getByRole('button', { name: 'Yes, delete it' }).click();
    await fresh.getByText('PayPal (alex) has been deleted from this app.').waitFor();

    // Offline: the service worker starts the app from its cache, and the codes are made on the phone.
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await context.setOffline(true);
    await page.goto(`${origin}/authenticator/#codes`);
    await page.getByRole('heading', { level: 1, name: 'Codes for other accounts' }).waitFor();
    expect(codesNow()).toContain(await shown(page, 'Example Mail (alex@example.com)'));
    await context.setOffline(false);
  });

  it('signs in with the CLI authenticator approving: the waiting page carries on by itself', async () => {
    const email = 'casey@example.org';
    const user = (await ctx.store.users.findByEmail(email))!;
    const store = path.join(mkdtempSync(path.join(os.tmpdir(), 'pc-e2e-authenticator-')), 'authenticator.json');
    const cli = (...args: string[]) => runCli(['authenticator', ...args, '--store', store], {});

    // Paired from the link Security info shows; the test request approved with the number it shows.
    const pairing = await startPairing(ctx, user);
    const paired = await cli('pair', pairing.url, '--name', 'Casey’s laptop');
    expect(paired.stderr).toBe('');
    expect(paired.code).toBe(0);
    const testId = /approve (\S+) --number NUMBER/.exec(paired.stdout)![1]!;
    const status = await pairingStatus(ctx, user, pairing.enrolmentId);
    expect(await cli('approve', testId, '--number', status.number!)).toMatchObject({ code: 0 });
    await ctx.store.users.setDefaultMethod(user.id, status.methodId!, ctx.clock());

    // Chromium waits on the push page; the CLI sees the request with its context and approves it.
    const { page } = await open();
    const number = await signInToPushPage(page, email);
    await expectAccessible(page);
    const pending = await cli('pending', '--json');
    expect(pending.code).toBe(0);
    const [request] = (JSON.parse(pending.stdout) as { challenges: Array<{ id: string; purpose: string; account: string; ip: string | null; numberLength: number }> }).challenges;
    expect(request).toMatchObject({ purpose: 'sign-in', account: email, ip: '127.0.0.1', numberLength: number.length });
    const approved = await cli('approve', request!.id, '--number', number);
    expect(approved).toMatchObject({ code: 0, stdout: `Approved: NHSmail sign-in for ${email} from 127.0.0.1.\n` });
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
  });
});
