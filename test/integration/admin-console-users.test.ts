/**
 * The admin console's users (issue #15 points 1, 3 and 7) through buildApp() and inject(), on SQLite
 * and PostgreSQL: the search and its filters within the caller's scope (another organisation's person
 * is not found, by search or by guessing their id), a person's page, and the actions — each a page that
 * says what it will do and asks why, refused with the error in place when the reason is missing (nothing
 * changes), done on POST and audited with who, whom and why; the pass shown once and never cached; the
 * helpdesk offered passes only.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe.each(dialects)('the admin console’s users on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const tag = `${dialect}-${Date.now()}`;
  const people: Record<string, { id: string; email: string }> = {};
  const totpKeys: Record<string, string> = {};
  const consoles: Record<string, TestBrowser> = {};
  const auditCount = async () => Number((await ctx.store.database.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);

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

  async function consoleFor(key: string): Promise<TestBrowser> {
    const browser = new TestBrowser(app, '203.0.113.31');
    expect((await browser.signIn(people[key]!.email, PASSWORD)).headers.location).toBe('/sign-in/verify');
    await browser.get('/sign-in/verify');
    const done = await browser.post('/sign-in/verify', { code: generateTotp(totpKeys[key]!, new Date(ctx.clock().getTime() + 30_000)) });
    expect(done.statusCode).toBe(303);
    expect((await browser.get('/admin')).statusCode).toBe(200);
    return browser;
  }

  beforeAll(async () => {
    ctx = await createTestContext(dialect, {});
    const north = await addOrganisation(ctx, `North ${tag}`, actor);
    const south = await addOrganisation(ctx, `South ${tag}`, actor);
    await applyPolicyText(ctx, METHODS, actor, 'console users test');
    const person = async (key: string, organisation: string, roles: Array<{ role: string; organisations: string[] }>) => {
      const email = `${key}-${tag}@example.org`;
      const { user } = await addUser(ctx, { email, displayName: `${key[0]!.toUpperCase()}${key.slice(1)} Person`, organisation, roles, password: PASSWORD }, actor);
      people[key] = { id: user.id, email };
    };
    await person('local', north.name, [{ role: 'local-admin', organisations: [north.name] }]);
    await person('helpdesk', north.name, [{ role: 'helpdesk', organisations: [north.name] }]);
    await person('nurse', north.name, []);
    await person('porter', north.name, []);
    await person('south', south.name, []);
    app = await buildApp(ctx);
    await enrolTotp('local');
    await enrolTotp('helpdesk');
    await enrolTotp('nurse');
    await applyPolicyText(ctx, `${METHODS}requirements:\n  - id: admins-mfa\n    include: [elevated]\n    strength: mfa\n    effective: 2020-01-01\nregistration:\n  - id: everyone-registers\n    include: [all]\n    by: 2099-01-01\n`, actor, 'administrators use a second factor');
    consoles.local = await consoleFor('local');
    consoles.helpdesk = await consoleFor('helpdesk');
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('finds people within the caller’s organisations by name, method and compliance; never another organisation’s, even by id', async () => {
    const all = await consoles.local!.get('/admin/users?all=yes');
    expect(all.statusCode).toBe(200);
    const emails = tableRows(all.body).map((r) => r[1]);
    expect(emails).toEqual(expect.arrayContaining([people.nurse!.email, people.porter!.email, people.local!.email]));
    expect(all.body).not.toContain(people.south!.email);
    const byName = tableRows((await consoles.local!.get('/admin/users?q=nurse')).body);
    expect(byName.map((r) => r[0])).toEqual(['Nurse Person']);
    const none = tableRows((await consoles.local!.get('/admin/users?method=none')).body).map((r) => r[1]);
    expect(none).toContain(people.porter!.email);
    expect(none).not.toContain(people.nurse!.email);
    const actionNeeded = tableRows((await consoles.local!.get('/admin/users?compliance=action-needed')).body).map((r) => r[1]);
    expect(actionNeeded).toEqual([people.porter!.email]);
    expect((await consoles.local!.get(`/admin/users?q=${encodeURIComponent(people.south!.email)}`)).body).toContain('Nobody matches these filters');
    // Guessing the other organisation's person's id: not found, and no action page either.
    expect((await consoles.local!.get(`/admin/users/${people.south!.id}`)).statusCode).toBe(404);
    expect((await consoles.local!.get(`/admin/users/${people.south!.id}/disable`)).statusCode).toBe(404);
    const before = await auditCount();
    expect((await consoles.local!.post(`/admin/users/${people.south!.id}/disable`, { reason: 'Guessing an id' })).statusCode).toBe(404);
    expect(await auditCount()).toBe(before);
    expect((await ctx.store.users.findById(people.south!.id))!.status).toBe('active');
    // The list as CSV, through the link on the page.
    const csvHref = linkTo((await consoles.local!.get('/admin/users?method=none')).body, 'Download as CSV')!;
    const csv = await consoles.local!.get(csvHref);
    expect(csv.headers['content-type']).toContain('text/csv');
    expect(csv.body.split('\r\n')[0]).toBe('email,name,organisation,status,roles,groups,methods,compliance');
    expect(csv.body).toContain(people.porter!.email);
    expect(csv.body).not.toContain(people.nurse!.email);
  });

  it('answers a bad filter with the error in place (400), never a 500', async () => {
    for (const query of ['compliance=fine', 'organisation=not-an-id', 'role=emperor', 'method=carrier-pigeon', 'status=asleep', 'format=pdf', 'q=a&q=b']) {
      const page = await consoles.local!.get(`/admin/users?${query}`);
      expect(page.statusCode, query).toBe(400);
      expect(page.body, query).toContain('There is a problem');
    }
  });

  it('shows a person’s page with what the caller may do: the helpdesk passes only', async () => {
    const page = await consoles.local!.get(`/admin/users/${people.nurse!.id}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Sign-in methods');
    expect(page.body).toContain('Authenticator app');
    expect(page.body).toContain('everyone-registers');
    for (const action of ['Issue a Temporary Access Pass', 'End Nurse Person’s sessions', 'Disable Nurse Person’s account', 'Change Nurse Person’s roles']) expect(page.body).toContain(action);
    const helpdesk = await consoles.helpdesk!.get(`/admin/users/${people.nurse!.id}`);
    expect(helpdesk.body).toContain('Issue a Temporary Access Pass');
    expect(helpdesk.body).not.toContain('Disable Nurse Person');
    expect((await consoles.helpdesk!.get(`/admin/users/${people.nurse!.id}/disable`)).statusCode).toBe(403);
    expect((await consoles.helpdesk!.post(`/admin/users/${people.nurse!.id}/disable`, { reason: 'Not mine to do' })).statusCode).toBe(403);
    expect((await ctx.store.users.findById(people.nurse!.id))!.status).toBe('active');
  });

  it('issues a pass after saying what it will do and asking why; shows it once, never cached; audited with why', async () => {
    const confirm = await consoles.helpdesk!.get(`/admin/users/${people.porter!.id}/pass`);
    expect(confirm.body).toContain('You will see it once');
    expect(/<button[^>]*>\s*Issue pass\s*<\/button>/.test(confirm.body)).toBe(true);
    const before = await auditCount();
    const noReason = await consoles.helpdesk!.post(`/admin/users/${people.porter!.id}/pass`, { lifetime: '60', length: '16', reason: '' });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.body).toContain('Say why');
    expect(await ctx.store.policy.pass(people.porter!.id)).toBeUndefined();
    expect(await auditCount()).toBe(before);
    const badLength = await consoles.helpdesk!.post(`/admin/users/${people.porter!.id}/pass`, { lifetime: '60', length: '4', reason: 'Lost phone' });
    expect(badLength.statusCode).toBe(400);
    expect(badLength.body).toContain('8 to 48 characters');
    const issued = await consoles.helpdesk!.post(`/admin/users/${people.porter!.id}/pass`, { lifetime: '240', length: '12', reason: 'Call 5521: phone lost on the ward' });
    expect(issued.statusCode).toBe(200);
    expect(issued.headers['cache-control']).toBe('no-store');
    const pass = /id="pass">([A-Z0-9]+)</.exec(issued.body)![1]!;
    expect(pass).toHaveLength(12);
    const [event] = await ctx.store.audit.list({ subjectUserId: people.porter!.id, type: 'tap.issued', limit: 1 });
    expect(event!.actor_id).toBe(people.helpdesk!.id);
    expect(JSON.parse(event!.details)).toMatchObject({ why: 'Call 5521: phone lost on the ward', multiUse: false, length: 12 });
    const page = await consoles.helpdesk!.get(`/admin/users/${people.porter!.id}`);
    expect(page.body).toContain('Live');
    expect(page.body).not.toContain(pass);
  });

  it('disables and enables an account through its confirmation, and refuses a role the caller may not give, in place', async () => {
    const confirm = await consoles.local!.get(`/admin/users/${people.porter!.id}/disable`);
    expect(confirm.body).toContain('will not be able to sign in');
    const done = await consoles.local!.post(`/admin/users/${people.porter!.id}/disable`, { reason: 'Left the trust' });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toContain(`/admin/users/${people.porter!.id}?done=`);
    expect((await ctx.store.users.findById(people.porter!.id))!.status).toBe('disabled');
    expect((await consoles.local!.get(done.headers.location!)).body).toContain('Account disabled');
    expect((await consoles.local!.post(`/admin/users/${people.porter!.id}/enable`, { reason: 'Came back' })).statusCode).toBe(303);
    expect((await ctx.store.users.findById(people.porter!.id))!.status).toBe('active');

    await consoles.local!.get(`/admin/users/${people.porter!.id}/roles`);
    const refused = await consoles.local!.post(`/admin/users/${people.porter!.id}/roles`, { change: 'grant', role: 'global-admin', reason: 'Promotion' });
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('You cannot give or take away the global-admin role');
    const granted = await consoles.local!.post(`/admin/users/${people.porter!.id}/roles`, { change: 'grant', role: 'helpdesk', organisations: `North ${tag}`, reason: 'Joins the helpdesk rota' });
    expect(granted.statusCode).toBe(303);
    expect((await ctx.store.roles.assignmentsOf(people.porter!.id)).map((a) => a.role)).toContain('helpdesk');
  });

  it('exports the dashboard’s lists as CSV: the local administrator’s organisation only', async () => {
    const csv = await consoles.local!.get('/admin?format=csv');
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('list,label,people');
    // North's elevated people: the local administrator and the helpdesk, both with an authenticator app.
    expect(lines).toContain('elevated users by state,Compliant,2');
    expect(lines).toContain('users by sign-in method,Authenticator app – code,3');
    expect(lines).toContain('requirement everyone-registers,Action needed,1');
  });
});
