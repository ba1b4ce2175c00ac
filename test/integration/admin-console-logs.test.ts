/**
 * The admin console's sign-in log and audit log (issue #15 point 5) through buildApp() and inject(), on
 * SQLite and PostgreSQL: administrators signed in through the console with a password and an
 * authenticator app (an administrator must meet the policy to administer); the scope of the admin API's
 * use cases (a local administrator never sees another organisation's people, not even by filtering for
 * them); the filters by result and method; the CSV download with the API's columns and the formula
 * guard; paging with `before`; bad query input answered 400 with the error in place, changing nothing;
 * an administrator's reason ("why") on the audit page; and a 403 for a person who administers nothing.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCallerForSession, revokeSessionsFor } from '../../src/app/admin-api.js';
import { recordAudit } from '../../src/app/audit.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { applyPolicyText } from '../../src/app/policy.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';
import { linkTo, tableRows } from '../helpers/html.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const METHODS = 'version: 1\nmethods:\n  totp: { enabled: true }\n  tap: { enabled: true }\n';
const SIGN_IN_CSV_HEADER = 'at,result,reason,methods,email,organisation,ip';
const AUDIT_CSV_HEADER = 'id,at,type,actor,subject,organisation,ip,details';

describe.each(dialects)('the admin console’s logs on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const tag = `${dialect}-${Date.now()}`;
  const people: Record<string, { id: string; email: string }> = {};
  const organisations: Record<string, { id: string; name: string }> = {};
  const totpKeys: Record<string, string> = {};
  const consoles: Record<string, TestBrowser> = {};
  const auditCount = async () => Number((await ctx.store.database.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);

  /** Sets up an authenticator app as a person would, on Security info. */
  async function enrolTotp(key: string): Promise<void> {
    const browser = new TestBrowser(app);
    expect((await browser.signIn(people[key]!.email, PASSWORD)).statusCode).toBe(303);
    await browser.get('/security-info/add');
    const chosen = await browser.post('/security-info/add', { method: 'totp' });
    const page = await browser.get(chosen.headers.location!);
    totpKeys[key] = /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.body)![1]!.replace(/ /g, '');
    const added = await browser.post(chosen.headers.location!, { code: generateTotp(totpKeys[key]!, ctx.clock()) });
    expect(added.headers.location).toBe('/security-info?done=added');
  }

  /** Signs an administrator in with a password and the next step's code (the set-up's was used). */
  async function consoleFor(key: string, wrongCodeFirst = false): Promise<TestBrowser> {
    const browser = new TestBrowser(app, key === 'local' ? '203.0.113.21' : '203.0.113.22');
    expect((await browser.signIn(people[key]!.email, PASSWORD)).headers.location).toBe('/sign-in/verify');
    await browser.get('/sign-in/verify');
    const code = generateTotp(totpKeys[key]!, new Date(ctx.clock().getTime() + 30_000));
    if (wrongCodeFirst) {
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
      expect((await browser.post('/sign-in/verify', { code: wrong })).statusCode).toBe(401);
    }
    const done = await browser.post('/sign-in/verify', { code });
    expect(done.statusCode).toBe(303);
    expect((await browser.get('/admin')).statusCode).toBe(200);
    return browser;
  }

  beforeAll(async () => {
    ctx = await createTestContext(dialect, {});
    const north = await addOrganisation(ctx, `North ${tag}`, actor);
    const south = await addOrganisation(ctx, `South ${tag}`, actor);
    organisations.north = { id: north.id, name: north.name };
    organisations.south = { id: south.id, name: south.name };
    await applyPolicyText(ctx, METHODS, actor, 'console logs test');
    const person = async (key: string, organisation: string, roles: Array<{ role: string; organisations: string[] }>) => {
      const email = `${key}-${tag}@example.org`;
      const { user } = await addUser(ctx, { email, displayName: `${key} person`, organisation, roles, password: PASSWORD }, actor);
      people[key] = { id: user.id, email };
    };
    await person('global', north.name, [{ role: 'global-admin', organisations: [] }]);
    await person('local', north.name, [{ role: 'local-admin', organisations: [north.name] }]);
    await person('north', north.name, []);
    await person('south', south.name, []);
    app = await buildApp(ctx);

    await enrolTotp('global');
    await enrolTotp('local');
    // From now on an administrator must use a second factor: the console asks them to meet the policy.
    await applyPolicyText(ctx, `${METHODS}requirements:\n  - id: admins-mfa\n    include: [elevated]\n    strength: mfa\n    effective: 2020-01-01\n`, actor, 'administrators use a second factor');

    // Attempts in both organisations: a wrong password, then the right one.
    for (const key of ['north', 'south']) {
      expect((await new TestBrowser(app, '198.51.100.7').signIn(people[key]!.email, 'not-the-password')).statusCode).toBe(401);
      expect((await new TestBrowser(app, '198.51.100.8').signIn(people[key]!.email, PASSWORD)).statusCode).toBe(303);
    }
    // An address that is no account, typed as a formula: about no one, so global administrators only.
    await new TestBrowser(app, '198.51.100.9').signIn(`=HYPERLINK-${tag}@example.org`, 'whatever-it-is');
    // (Kept as typed at sign-in, in lower case: the address is normalised.)

    consoles.local = await consoleFor('local', true);
    consoles.global = await consoleFor('global');
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('shows a local administrator only their organisation’s attempts, even when filtered for another’s person or organisation', async () => {
    const page = await consoles.local!.get('/admin/sign-ins');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('aria-current="page"');
    expect(page.body).toContain('<caption');
    const rows = tableRows(page.body);
    const north = rows.filter((r) => r[1] === people.north!.email);
    expect(north.map((r) => `${r[3]}:${r[4]}`)).toEqual(['Success:', 'Failure:Password incorrect']);
    expect(north[0]![5]).toBe('Password');
    expect(north[0]![6]).toBe('198.51.100.8');
    expect(north[0]![2]).toBe(organisations.north!.name);
    expect(page.body).not.toContain(people.south!.email);
    expect(page.body).not.toContain(organisations.south!.name);
    expect(page.body.toLowerCase()).not.toContain('hyperlink');

    const byEmail = await consoles.local!.get(`/admin/sign-ins?email=${encodeURIComponent(people.south!.email)}`);
    expect(byEmail.statusCode).toBe(200);
    expect(tableRows(byEmail.body)).toEqual([]);
    expect(byEmail.body).toContain('No sign-in attempts match these filters.');
    // The address is echoed back in the filter's box, but no attempt of theirs is in a row.
    expect(byEmail.body.split(people.south!.email).length - 1).toBe(1);

    const byOrganisation = await consoles.local!.get(`/admin/sign-ins?organisation=${organisations.south!.id}`);
    expect(byOrganisation.statusCode).toBe(400);
    expect(byOrganisation.body).not.toContain(people.south!.email);
    expect(byOrganisation.body).toContain('Choose an organisation from the list');

    const csv = await consoles.local!.get(`/admin/sign-ins?format=csv&email=${encodeURIComponent(people.south!.email)}`);
    expect(csv.body.trim()).toBe(SIGN_IN_CSV_HEADER);
    expect((await consoles.local!.get('/admin/sign-ins?format=csv')).body).not.toContain(people.south!.email);

    // A global administrator sees both organisations and the address that is no account.
    const all = tableRows((await consoles.global!.get('/admin/sign-ins')).body);
    expect(all.some((r) => r[1] === people.south!.email)).toBe(true);
    expect(all.some((r) => r[1] === `=hyperlink-${tag}@example.org` && r[4] === 'Unknown account')).toBe(true);
  });

  it('narrows the table by result and by method, keeping the choices in the form', async () => {
    const all = tableRows((await consoles.global!.get('/admin/sign-ins')).body);
    const failures = tableRows((await consoles.global!.get('/admin/sign-ins?result=failure')).body);
    const successes = tableRows((await consoles.global!.get('/admin/sign-ins?result=success')).body);
    expect(failures.length).toBeGreaterThan(0);
    expect(successes.length).toBeGreaterThan(0);
    expect(failures.every((r) => r[3] === 'Failure')).toBe(true);
    expect(successes.every((r) => r[3] === 'Success')).toBe(true);
    expect(failures.length + successes.length).toBe(all.length);

    const byTotp = await consoles.global!.get('/admin/sign-ins?method=totp');
    expect(byTotp.body).toMatch(/<option value="totp" selected>/);
    const totpRows = tableRows(byTotp.body);
    expect(totpRows.length).toBeGreaterThan(0);
    expect(totpRows.length).toBeLessThan(all.length);
    expect(totpRows.every((r) => r[5]!.includes('Authenticator app – code'))).toBe(true);
    // The local administrator's wrong code: the one failed attempt with the authenticator app.
    const wrongCode = tableRows((await consoles.global!.get('/admin/sign-ins?method=totp&result=failure')).body);
    expect(wrongCode.map((r) => [r[1], r[4]])).toEqual([[people.local!.email, 'Code incorrect']]);
    expect(tableRows((await consoles.global!.get('/admin/sign-ins?method=passkey')).body)).toEqual([]);
  });

  it('downloads the attempts as CSV with the API’s columns, a formula-looking cell neutralised', async () => {
    const page = await consoles.global!.get('/admin/sign-ins?result=failure');
    const href = linkTo(page.body, 'Download as CSV');
    expect(href).toBe('/admin/sign-ins?result=failure&format=csv');
    const csv = await consoles.global!.get(href!);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    expect(csv.headers['content-disposition']).toContain('sign-ins.csv');
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe(SIGN_IN_CSV_HEADER);
    expect(lines.slice(1).every((line) => line.split(',')[1] === 'failure')).toBe(true);
    expect(lines.filter((line) => line.toLowerCase().includes('hyperlink'))).toEqual([expect.stringContaining(`,unknown-account,password,'=hyperlink-${tag}@example.org,,198.51.100.9`)]);
    expect(lines.some((line) => line.toLowerCase().includes(',=hyperlink'))).toBe(false);
    expect(lines.some((line) => line.includes(`,password-incorrect,password,${people.north!.email},${organisations.north!.name},198.51.100.7`))).toBe(true);
  });

  it('pages to older attempts with `before`, keeping the filters', async () => {
    // Sixty more failed attempts for North's person, older IP numbers first.
    for (let i = 0; i < 60; i++) {
      await recordAudit(ctx.store, {
        type: 'sign-in.failed',
        at: ctx.clock(),
        actor: { kind: 'user', userId: people.north!.id },
        subjectUserId: people.north!.id,
        ip: `192.0.2.${i}`,
        details: { email: people.north!.email, reason: 'password-incorrect', method: 'password' },
      });
    }
    const first = await consoles.local!.get(`/admin/sign-ins?email=${encodeURIComponent(people.north!.email)}`);
    const newest = tableRows(first.body);
    expect(newest).toHaveLength(50);
    expect(newest.map((r) => r[6])).toEqual(Array.from({ length: 50 }, (_, i) => `192.0.2.${59 - i}`));
    const older = linkTo(first.body, 'Older attempts');
    expect(older).toMatch(/^\/admin\/sign-ins\?email=[^&]+&before=\d+$/);
    expect(new URL(older!, 'http://x').searchParams.get('email')).toBe(people.north!.email);
    const second = await consoles.local!.get(older!);
    expect(second.statusCode).toBe(200);
    const rest = tableRows(second.body);
    expect(rest.map((r) => r[6])).toEqual([...Array.from({ length: 10 }, (_, i) => `192.0.2.${9 - i}`), '198.51.100.8', '198.51.100.7']);
    expect(linkTo(second.body, 'Older attempts')).toBeUndefined();
    expect(linkTo(second.body, 'Newest attempts')).toBe(`/admin/sign-ins?email=${encodeURIComponent(people.north!.email)}`);
  });

  it('answers bad query input with 400 and the error in place, reading and changing nothing', async () => {
    const before = await auditCount();
    for (const [url, message] of [
      ['/admin/sign-ins?organisation=not-a-uuid', 'Choose an organisation from the list'],
      ['/admin/sign-ins?before=0', 'The page link is not right'],
      ['/admin/sign-ins?before=-3', 'The page link is not right'],
      ['/admin/sign-ins?before=abc', 'The page link is not right'],
      ['/admin/sign-ins?before=99999999999999999999', 'The page link is not right'],
      ['/admin/sign-ins?result=maybe', 'Choose success, failure or any result'],
      ['/admin/sign-ins?method=carrier-pigeon', 'Choose a sign-in method from the list'],
      ['/admin/sign-ins?email=not-an-address', 'Enter an email address in the correct format'],
      ['/admin/sign-ins?format=xlsx', 'the only download is CSV'],
      ['/admin/sign-ins?result=success&result=failure', 'Choose success, failure or any result'],
      ['/admin/audit?type=DROP%20TABLE', 'Choose an event type from the list'],
      ['/admin/audit?type=user.disabled%27%20OR%201%3D1', 'Choose an event type from the list'],
      ['/admin/audit?before=1.5', 'The page link is not right'],
      ['/admin/audit?organisation=1%20OR%201', 'Choose an organisation from the list'],
    ] as const) {
      const response = await consoles.global!.get(url);
      expect(response.statusCode, url).toBe(400);
      expect(response.headers['content-type'], url).toContain('text/html');
      expect(response.body, url).toContain('There is a problem');
      expect(response.body, url).toContain(message);
      expect(response.body, url).toContain('<form method="get"');
      expect(tableRows(response.body), url).toEqual([]);
    }
    // A field's error is beside it and linked from the summary.
    const bad = await consoles.global!.get('/admin/sign-ins?result=maybe');
    expect(bad.body).toContain('href="#result"');
    expect(bad.body).toMatch(/id="result-error"/);
    // The summary follows the form's order; an error in the page link itself points at the form.
    const both = await consoles.global!.get('/admin/audit?before=0&type=X');
    expect([...both.body.matchAll(/<a href="(#[a-z]+)">/g)].map((m) => m[1])).toEqual(['#type', '#filters']);
    expect(await auditCount()).toBe(before);
  });

  it('shows an administrator’s reason on the audit page, filters by event type, and downloads it as CSV', async () => {
    const caller = await adminCallerForSession(ctx, { user: (await ctx.store.users.findById(people.local!.id))!, restricted: null });
    await revokeSessionsFor(ctx, caller, people.north!.id, 'Laptop reported lost to the service desk');

    const page = await consoles.local!.get('/admin/audit?type=session.revoked');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<caption');
    const rows = tableRows(page.body);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r[1] === 'session.revoked')).toBe(true);
    const revoked = rows.find((r) => r[3] === people.north!.email)!;
    expect(revoked[2]).toBe(people.local!.email);
    expect(revoked[5]).toContain('Reason: Laptop reported lost to the service desk');
    expect(page.body).toMatch(/<strong>Reason:<\/strong> Laptop reported lost to the service desk/);

    const unfiltered = tableRows((await consoles.local!.get('/admin/audit')).body);
    expect(new Set(unfiltered.map((r) => r[1])).size).toBeGreaterThan(1);
    expect(unfiltered.some((r) => r[3] === people.south!.email)).toBe(false);
    expect(tableRows((await consoles.local!.get(`/admin/audit?type=session.revoked&email=${encodeURIComponent(people.south!.email)}`)).body)).toEqual([]);

    const href = linkTo(page.body, 'Download as CSV');
    expect(href).toBe('/admin/audit?type=session.revoked&format=csv');
    const csv = await consoles.local!.get(href!);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe(AUDIT_CSV_HEADER);
    expect(lines.some((line) => line.includes(',session.revoked,') && line.includes('Laptop reported lost to the service desk') && line.includes(people.north!.email))).toBe(true);
    expect(lines.some((line) => line.includes(people.south!.email))).toBe(false);
  });

  it('refuses a person without an administering role with 403, and sends someone not signed in to sign in', async () => {
    const person = new TestBrowser(app, '198.51.100.30');
    expect((await person.signIn(people.north!.email, PASSWORD)).statusCode).toBe(303);
    for (const url of ['/admin/sign-ins', '/admin/audit', '/admin/sign-ins?format=csv', '/admin/audit?format=csv']) {
      const refused = await person.get(url);
      expect(refused.statusCode, url).toBe(403);
      expect(refused.body, url).toContain('You cannot use the admin console');
      expect(refused.body, url).not.toContain(people.south!.email);
    }
    const stranger = await new TestBrowser(app).get('/admin/sign-ins');
    expect(stranger.statusCode).toBe(303);
    expect(stranger.headers.location).toMatch(/^\/sign-in\?returnTo=/);
  });
});
