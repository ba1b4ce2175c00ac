/**
 * The CLI authenticator — the real `portcullis` binary, as a user runs it on their own computer —
 * against a live Portcullis on a free port: pair from the link on Security info, approve the test
 * request with the number that page shows, then answer sign-in requests (approve, deny, report),
 * list devices, watch requests arrive, and recover from a clock that is minutes out.
 *
 * SQLite only: the server's push rules are tested on both databases in push.test.ts; here the subject is
 * the client over real HTTP.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { addOrganisation, addUser, grantRole, revokeRole } from '../../src/app/directory.js';
import { applyPolicyText, DEFAULT_POLICY_DOCUMENT } from '../../src/app/policy.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { freePort, listen } from '../helpers/browser.js';
import { BIN, runCli } from '../helpers/cli.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const EMAIL = 'casey@example.org';
const actor = { kind: 'system' } as const;

/** TestBrowser posts as http://localhost:8080; this one as the live server's origin. */
class LiveBrowser extends TestBrowser {
  constructor(
    app: FastifyInstance,
    private readonly origin: string,
  ) {
    super(app);
  }

  override post(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
    return super.post(url, form, { origin: this.origin, ...headers });
  }
}

interface PendingJson {
  challenges: Array<{ id: string; origin: string; account: string; purpose: 'sign-in' | 'test'; status: string; app: string; ip: string | null; location: string | null; createdAt: string; expiresAt: string; expiresInSeconds: number; numberLength: number }>;
}

describe('portcullis authenticator against a live server', () => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let origin: string;
  let env: Record<string, string>;
  let store: string;
  const cli = (...args: string[]) => runCli(['authenticator', ...args], env);
  const numberOn = (html: string) => /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(html)?.[1];

  /** Password, then the push page; the number it shows. */
  async function startSignIn(): Promise<{ browser: LiveBrowser; number: string }> {
    // The server's push limits keep 10 s between requests; its clock moves on instead of the test waiting.
    ctx.advance(11);
    const browser = new LiveBrowser(app, origin);
    expect((await browser.signIn(EMAIL, PASSWORD)).headers.location).toBe('/sign-in/verify');
    const page = await browser.get('/sign-in/verify');
    const number = numberOn(page.body);
    expect(number, page.body).toMatch(/^\d+$/);
    return { browser, number: number! };
  }

  async function pending(): Promise<PendingJson['challenges']> {
    const result = await cli('pending', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return (JSON.parse(result.stdout) as PendingJson).challenges;
  }

  beforeAll(async () => {
    const port = await freePort();
    origin = `http://localhost:${port}`;
    ctx = await createTestContext('sqlite', { PUBLIC_URL: origin }, { controlClock: true });
    await addOrganisation(ctx, 'Test Trust', actor);
    await addUser(ctx, { email: EMAIL, displayName: 'Casey', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    app = await buildApp(ctx);
    await listen(app, port);
    store = path.join(mkdtempSync(path.join(os.tmpdir(), 'pc-authenticator-')), 'config', 'authenticator.json');
    env = { PORTCULLIS_AUTHENTICATOR_STORE: store };
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('pairs from the Security info link, and the test request is approved with the number the page shows', async () => {
    // Signed in with a code app, so Security info allows adding a method.
    const browser = new LiveBrowser(app, origin);
    await browser.signIn(EMAIL, PASSWORD);
    const started = await browser.get('/security-info/add/code-app');
    const setUp = await browser.get(started.headers.location!);
    const key = /id="totp-key">([A-Z2-7 ]+)</.exec(setUp.body)![1]!.replace(/ /g, '');
    await browser.post(started.headers.location!, { code: generateTotp(key, ctx.clock()) });

    await browser.get('/security-info/add');
    const page = await browser.post('/security-info/add', { method: 'push' });
    const link = new RegExp(`href="(${origin}/authenticator/#pair=[A-Za-z0-9_-]+)"`).exec(page.body)![1]!;
    const enrolmentId = /data-next="\/security-info\/add\/app\/([^"]+)"/.exec(page.body)![1]!;

    const paired = await cli('pair', link, '--name', 'CI runner');
    expect(paired.stderr).toBe('');
    expect(paired.code).toBe(0);
    expect(paired.stdout).toContain(`Paired this computer as “CI runner” with ${EMAIL} (Test Trust) at ${origin}.`);
    const testId = /approve (\S+) --number NUMBER/.exec(paired.stdout)![1]!;
    expect(statSync(store).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(store)).mode & 0o777).toBe(0o700);
    // The link is single use.
    expect(await cli('pair', link, '--store', path.join(path.dirname(store), 'other.json'))).toMatchObject({ code: 1, stderr: expect.stringContaining('has expired or has already been used') });

    const [test] = await pending();
    expect(test).toMatchObject({ id: testId, purpose: 'test', account: EMAIL, origin, status: 'pending' });
    const number = numberOn((await browser.get(`/security-info/add/app/${enrolmentId}`)).body)!;
    expect(test!.numberLength).toBe(number.length);

    const approved = await cli('approve', testId, '--number', number);
    expect(approved).toMatchObject({ code: 0, stdout: `Approved the test request: this computer is now an authenticator for ${EMAIL}.\n` });
    expect((await browser.get(`/security-info/add/app/${enrolmentId}`)).headers.location).toMatch(/^\/security-info\/added\//);
  });

  it('approves a sign-in request, and the sign-in completes with push', async () => {
    const { browser, number } = await startSignIn();
    const [request] = await pending();
    expect(request).toMatchObject({ purpose: 'sign-in', app: 'Portcullis sign-in', ip: '203.0.113.10', numberLength: number.length });
    expect(request!.expiresInSeconds).toBeGreaterThan(30);

    // A number of the wrong length is caught before anything is sent.
    expect(await cli('approve', request!.id, '--number', `${number}0`)).toMatchObject({ code: 2, stderr: expect.stringContaining('Nothing was sent') });
    const approved = await cli('approve', request!.id, '--number', number);
    expect(approved).toMatchObject({ code: 0, stdout: `Approved: Portcullis sign-in for ${EMAIL} from 203.0.113.10.\n` });
    expect((await browser.post('/sign-in/verify', {})).headers.location).toBe('/account');
    expect(await cli('approve', request!.id, '--number', number)).toMatchObject({ code: 1, stderr: 'This sign-in request has already been approved.\n' });
  });

  it('lists the devices, marking this one', async () => {
    const result = await cli('devices');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^NAME\s+ADDED \(UTC\)\s+LAST USED \(UTC\)\nCI runner\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+← this computer\n$/);
  });

  it('watches: prints a request as it arrives, then stops cleanly on Ctrl-C', async () => {
    const child = spawn(process.execPath, [BIN, 'authenticator', 'watch', '--json'], { env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await expect.poll(() => stderr, { timeout: 20_000 }).toContain(`Connected to ${origin} for ${EMAIL}.`);
      expect(stdout).toBe(''); // nothing waiting
      const { browser } = await startSignIn();
      await expect.poll(() => stdout, { timeout: 10_000 }).toMatch(/\n$/);
      const line = JSON.parse(stdout) as PendingJson['challenges'][number];
      expect(line).toMatchObject({ purpose: 'sign-in', status: 'pending', account: EMAIL, origin, app: 'Portcullis sign-in' });

      const denied = await cli('deny', line.id);
      expect(denied).toMatchObject({ code: 0, stdout: `Denied: Portcullis sign-in for ${EMAIL} from 203.0.113.10.\n` });
      expect((await browser.post('/sign-in/verify', {})).body).toContain('The sign-in request was declined on your authenticator app');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('keeps working when this computer’s clock is minutes out (device-clock-skew, then a retry)', async () => {
    ctx.advance(300);
    expect(await pending()).toEqual([]);
    ctx.advance(-300);
  });

  it('reports a request as not me: the sign-in is refused and push is blocked', async () => {
    const { browser } = await startSignIn();
    const [request] = await pending();
    const reported = await cli('deny', request!.id, '--report');
    expect(reported.code).toBe(0);
    expect(reported.stdout).toContain('Reported as not you: Portcullis sign-in');
    expect((await browser.post('/sign-in/verify', {})).body).toContain('reported as not you');
    const user = await ctx.store.users.findByEmail(EMAIL);
    expect(user!.push_blocked_at).not.toBeNull();
  });

  it('refuses a store that others can read, like ssh', async () => {
    const { chmodSync } = await import('node:fs');
    chmodSync(store, 0o644);
    try {
      const result = await cli('pending');
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`Permissions 0644 for the authenticator store ${store} are too open: it holds private keys, so only you may read it. Run: chmod 600 '${store}'\n`);
    } finally {
      chmodSync(store, 0o600);
    }
  });

  it('renames the device and sets its push subscription through the SDK, with the key from the store', async () => {
    const { readStore } = await import('../../src/cli/authenticator/store.js');
    const { AuthenticatorClient, importPrivateJwk } = await import('../../src/authenticator/index.js');
    const [account] = (await readStore(store)).accounts;
    const pair = await importPrivateJwk(account!.privateKey);
    const client = new AuthenticatorClient({ origin: account!.origin, deviceId: account!.deviceId, keyStore: { load: async () => pair, save: async () => {} } });
    expect(await client.rename('Renamed runner')).toEqual({ id: account!.deviceId, name: 'Renamed runner' });
    await client.setPushSubscription({ endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys: { p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', auth: 'tBHItJI5svbpez7KI4CCXg' } });
    await client.setPushSubscription(null);
    expect((await client.devices()).map((d) => [d.name, d.current])).toEqual([['Renamed runner', true]]);
  });

  it('is refused removal while it is the only method meeting the policy, says why, and keeps everything (issue #12)', async () => {
    // Push for those with elevated rights, and Casey given such a role: this computer is the one method that meets it.
    await applyPolicyText(
      ctx,
      [
        'version: 1',
        'timeZone: UTC',
        'methods: { sms: { enabled: true }, voice: { enabled: true }, totp: { enabled: true }, push: { enabled: true }, tap: { enabled: true } }',
        'requirements:',
        '  - { id: elevated-push, name: Those with elevated rights must use push notifications, include: [elevated], strength: app-push, effective: 2023-11-30, graceDays: 0, mode: enforce, bootstrap: { duringGrace: any-registered, afterGrace: tap-only } }',
      ].join('\n'),
      actor,
    );
    await grantRole(ctx, EMAIL, 'helpdesk', [], actor);
    try {
      const refused = await cli('remove');
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toBe(
        [
          `You cannot remove this computer from ${EMAIL}. It is your only sign-in method that meets “Those with elevated rights must use push notifications” (from 30 November 2023). Add another one that does first.`,
          `Nothing has been changed. To stop using this computer for ${EMAIL} but keep it on your account, run:`,
          `  portcullis authenticator forget --account ${EMAIL}`,
          '',
        ].join('\n'),
      );
      const user = (await ctx.store.users.findByEmail(EMAIL))!;
      expect(await ctx.store.methods.countActive(user.id, 'push')).toBe(1);
      expect((await cli('devices', '--json')).code).toBe(0); // still paired here too
    } finally {
      await revokeRole(ctx, EMAIL, 'helpdesk', [], actor);
      await applyPolicyText(ctx, JSON.stringify(DEFAULT_POLICY_DOCUMENT), actor);
    }
  });

  it('removes itself from the account and forgets it', async () => {
    const result = await cli('remove');
    expect(result).toMatchObject({ code: 0, stdout: `Removed this computer from ${EMAIL} at ${origin}; it can no longer approve sign-ins.\n` });
    expect(await cli('pending')).toMatchObject({ code: 1, stderr: expect.stringContaining('This computer has no authenticator accounts yet') });
  });
});
