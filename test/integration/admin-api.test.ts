/**
 * The admin API (issue #15 points 1, 6 and 7) through buildApp() and inject(), on SQLite and PostgreSQL:
 * personal API tokens, scope enforced in the use cases (a local administrator can neither see nor act on
 * another organisation's users, even by guessing ids), the helpdesk's narrower rights, every action
 * audited with who and whom, the schemas rejecting bad input with the field named and changing nothing,
 * errors as RFC 9457 problem+json with a stable code, and the OpenAPI document generated from the routes.
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken, revokeAdminToken, setClientAdminScope } from '../../src/app/admin-api.js';
import { addClient } from '../../src/app/oidc/clients.js';
import { totpStrategy } from '../../src/app/methods/totp/index.js';
import { startPairing } from '../../src/app/methods/push/pairing.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { applyPolicyText } from '../../src/app/policy.js';
import { createGroup } from '../../src/app/admin.js';
import { snapshotCompliance } from '../../src/app/compliance.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { TestBrowser } from '../helpers/http.js';

const actor = { kind: 'system' } as const;
const API = '/api/admin/v1';

describe.each(dialects)('the admin API on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const tag = `${dialect}-${Date.now()}`;
  const people: Record<string, { id: string; email: string }> = {};
  const tokens: Record<string, string> = {};

  const call = (method: 'GET' | 'POST', url: string, token: string | null, body?: unknown) =>
    app.inject({ method, url, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
  const auditCount = async () => (await ctx.store.database.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n;

  beforeAll(async () => {
    ctx = await createTestContext(dialect, {});
    const a = await addOrganisation(ctx, `North ${tag}`, actor);
    const b = await addOrganisation(ctx, `South ${tag}`, actor);
    await applyPolicyText(ctx, 'version: 1\nmethods:\n  totp: { enabled: true }\n  tap: { enabled: true }\n', actor, 'admin API test');
    const person = async (key: string, organisation: string, roles: Array<{ role: string; organisations: string[] }>) => {
      const email = `${key}-${tag}@example.org`;
      const { user } = await addUser(ctx, { email, displayName: `${key} person`, organisation, roles }, actor);
      people[key] = { id: user.id, email };
    };
    await person('global', a.name, [{ role: 'global-admin', organisations: [] }]);
    await person('local', a.name, [{ role: 'local-admin', organisations: [a.name] }]);
    await person('helpdesk', b.name, [{ role: 'helpdesk', organisations: [] }]);
    await person('north', a.name, []);
    await person('south', b.name, []);
    for (const key of ['global', 'local', 'helpdesk']) {
      tokens[key] = (await createAdminToken(ctx, people[key]!.email, { name: `${key} tooling`, scopes: ['admin:read', 'admin:passes', 'admin:sessions', 'admin:accounts'], days: 30 }, actor)).token;
    }
    tokens.readOnly = (await createAdminToken(ctx, people.global!.email, { name: 'reports', scopes: ['admin:read'], days: 30 }, actor)).token;
    app = await buildApp(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('refuses a request without a live token, as problem+json with a stable code, and gives no token to a non-administrator', async () => {
    for (const token of [null, 'pcat_not-a-token', `pcat_${'A'.repeat(43)}`]) {
      const response = await call('GET', `${API}/users`, token);
      expect(response.statusCode).toBe(401);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.json()).toMatchObject({ status: 401, code: 'admin-token-invalid' });
    }
    const revoked = await createAdminToken(ctx, people.global!.email, { name: 'short-lived', scopes: ['admin:read'], days: 1 }, actor);
    expect((await call('GET', `${API}/users`, revoked.token)).statusCode).toBe(200);
    await revokeAdminToken(ctx, revoked.id, actor);
    expect((await call('GET', `${API}/users`, revoked.token)).json()).toMatchObject({ code: 'admin-token-invalid' });
    await expect(createAdminToken(ctx, people.north!.email, { name: 'mine', scopes: ['admin:read'], days: 1 }, actor)).rejects.toMatchObject({ code: 'admin-forbidden' });
  });

  it('shows a local administrator only their own organisation’s users, and another’s not even by id', async () => {
    const listed = (await call('GET', `${API}/users?q=${encodeURIComponent('')}`, tokens.local!)).statusCode;
    expect(listed).toBe(400);
    const mine = (await call('GET', `${API}/users?limit=500`, tokens.local!)).json() as { users: Array<{ email: string }> };
    const emails = mine.users.map((u) => u.email);
    expect(emails).toContain(people.north!.email);
    expect(emails).not.toContain(people.south!.email);
    expect(emails).not.toContain(people.helpdesk!.email);
    const all = ((await call('GET', `${API}/users?limit=500`, tokens.global!)).json() as { users: Array<{ email: string }> }).users.map((u) => u.email);
    expect(all).toEqual(expect.arrayContaining([people.north!.email, people.south!.email]));

    const before = await auditCount();
    const guessed = await call('GET', `${API}/users/${people.south!.id}`, tokens.local!);
    expect(guessed.statusCode).toBe(404);
    expect(guessed.json()).toMatchObject({ code: 'user-not-found' });
    const pass = await call('POST', `${API}/users/${people.south!.id}/passes`, tokens.local!, { reason: 'Caller lost their phone' });
    expect(pass.statusCode).toBe(404);
    expect(await ctx.store.policy.pass(people.south!.id)).toBeUndefined();
    expect(await auditCount()).toEqual(before);
    expect((await call('GET', `${API}/users/${people.north!.id}`, tokens.local!)).json()).toMatchObject({ email: people.north!.email, methods: [] });
  });

  it('issues a one-time pass, audited with who and whom, one live per user; the helpdesk may, but may not end sessions', async () => {
    const first = await call('POST', `${API}/users/${people.north!.id}/passes`, tokens.helpdesk!, { lifetimeMinutes: 60, reason: 'Caller lost their phone on a ward round' });
    expect(first.statusCode).toBe(201);
    const issued = first.json() as { pass: string; expiresAt: string; multiUse: boolean };
    expect(issued.pass).toMatch(/^[A-Z0-9]{16}$/);
    expect(issued.multiUse).toBe(false);
    expect(Date.parse(issued.expiresAt) - Date.now()).toBeGreaterThan(59 * 60_000);
    const [event] = await ctx.store.audit.list({ subjectUserId: people.north!.id, type: 'tap.issued', limit: 1 });
    expect({ type: event!.actor_type, id: event!.actor_id }).toEqual({ type: 'user', id: people.helpdesk!.id });
    // Who, whom and why: the reason given is kept in the event.
    expect(JSON.parse(event!.details)).toMatchObject({ why: 'Caller lost their phone on a ward round' });
    const firstHash = (await ctx.store.policy.pass(people.north!.id))!.pass_hash;
    await call('POST', `${API}/users/${people.north!.id}/passes`, tokens.helpdesk!, { reason: 'Caller lost the first pass' });
    expect((await ctx.store.policy.pass(people.north!.id))!.pass_hash).not.toBe(firstHash);

    const refused = await call('POST', `${API}/users/${people.north!.id}/sessions/revoke`, tokens.helpdesk!, { reason: 'Helpdesk call 4471' });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'admin-forbidden' });
    const ended = await call('POST', `${API}/users/${people.north!.id}/sessions/revoke`, tokens.local!, { reason: 'Helpdesk call 4471' });
    expect(ended.statusCode).toBe(200);
    expect(ended.json()).toEqual({ sessions: 0 });
    // A token without the scope cannot act, whatever its holder's roles.
    expect((await call('POST', `${API}/users/${people.north!.id}/passes`, tokens.readOnly!, { reason: 'Caller lost their phone' })).json()).toMatchObject({ status: 403, code: 'admin-scope-missing' });
  });

  it('rejects bad input by its schema, naming the field, and changes nothing', async () => {
    const before = await auditCount();
    const pass = await ctx.store.policy.pass(people.north!.id);
    for (const [body, field] of [
      [{ lifetimeMinutes: 5, reason: 'Lost phone' }, 'lifetimeMinutes'],
      [{ lifetimeMinutes: 60 * 24 * 31, reason: 'Lost phone' }, 'lifetimeMinutes'],
      [{ multiUse: 'yes', reason: 'Lost phone' }, 'multiUse'],
      [{ colour: 'red', reason: 'Lost phone' }, 'colour'],
      [{ lifetimeMinutes: 60 }, 'reason'],
      [{ reason: 'no' }, 'reason'],
    ] as const) {
      const response = await call('POST', `${API}/users/${people.north!.id}/passes`, tokens.global!, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json()).toMatchObject({ code: 'request-invalid', field });
    }
    const notAnId = await call('GET', `${API}/users/not-a-uuid`, tokens.global!);
    expect(notAnId.json()).toMatchObject({ status: 400, code: 'request-invalid', field: 'id' });
    const limit = await call('GET', `${API}/users?limit=0`, tokens.global!);
    expect(limit.json()).toMatchObject({ code: 'request-invalid', field: 'limit' });
    expect(await auditCount()).toEqual(before);
    expect((await ctx.store.policy.pass(people.north!.id))?.pass_hash).toBe(pass?.pass_hash);
  });

  it('answers any JSON body below 500: issued (201) or refused with a problem (400), never anything else (fuzzed)', async () => {
    // What the fuzzer once found: Fastify's own refusal of a prototype key, answered as a problem too.
    for (const payload of ['{"__proto__":[]}', '{"constructor":{"prototype":{}}}', 'not json', '[]', 'null']) {
      const response = await app.inject({ method: 'POST', url: `${API}/users/${people.north!.id}/passes`, headers: { authorization: `Bearer ${tokens.global}`, 'content-type': 'application/json' }, payload });
      expect(response.statusCode, `${payload} → ${response.body}`).toBe(400);
      expect(response.json()).toMatchObject({ status: 400, code: 'request-invalid' });
    }
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json(), fc.record({ lifetimeMinutes: fc.oneof(fc.integer(), fc.double(), fc.string()), multiUse: fc.oneof(fc.boolean(), fc.string(), fc.constant(null)), reason: fc.oneof(fc.constant('Lost phone'), fc.string()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v))), async (payload) => {
        const response = await app.inject({ method: 'POST', url: `${API}/users/${people.north!.id}/passes`, headers: { authorization: `Bearer ${tokens.global}`, 'content-type': 'application/json' }, payload });
        expect([201, 400], `${payload} → ${response.statusCode} ${response.body}`).toContain(response.statusCode);
        if (response.statusCode === 400) expect(response.headers['content-type']).toContain('application/problem+json');
      }),
      { numRuns: 60 },
    );
  });

  it('gives the sign-in log and the audit log within scope, filtered by user, method and result (newest first)', async () => {
    const email = `signer-${tag}@example.org`;
    const { user } = await addUser(ctx, { email, displayName: 'Signer', organisation: `North ${tag}`, roles: [], password: 'lantern-harbour-correct' }, actor);
    expect((await new TestBrowser(app).signIn(email, 'not-the-password')).statusCode).toBe(401);
    expect((await new TestBrowser(app).signIn(email, 'lantern-harbour-correct')).statusCode).toBe(303);
    await new TestBrowser(app).signIn(`nobody-${tag}@example.org`, 'whatever-it-is');

    type Entry = { result: string; reason: string; methods: string[]; email: string | null };
    const log = async (token: string, query = '') => ((await call('GET', `${API}/sign-ins?limit=1000${query}`, token)).json() as { signIns: Entry[] }).signIns;
    const local = await log(tokens.local!);
    const mine = local.filter((e) => e.email === email);
    expect(mine.map((e) => `${e.result}:${e.reason}`)).toEqual(['success:success', 'failure:password-incorrect']);
    expect(mine[0]!.methods).toEqual(['password']);
    // An address that is no account is about no one: a local administrator does not see it; a global one does.
    expect(local.some((e) => e.email === `nobody-${tag}@example.org`)).toBe(false);
    expect((await log(tokens.global!)).some((e) => e.email === `nobody-${tag}@example.org`)).toBe(true);
    expect((await log(tokens.local!, `&user=${user.id}&result=failure`)).map((e) => e.reason)).toEqual(['password-incorrect']);
    expect((await log(tokens.local!, `&user=${user.id}&method=passkey`))).toEqual([]);
    expect((await call('GET', `${API}/sign-ins?result=maybe`, tokens.local!)).json()).toMatchObject({ code: 'request-invalid', field: 'result' });

    // Exportable as CSV, with the report's formula guard: an address typed as a formula is text in a spreadsheet.
    await new TestBrowser(app).signIn(`=HYPERLINK-${tag}@example.org`, 'whatever-it-is');
    const csv = await call('GET', `${API}/sign-ins?format=csv&result=failure&limit=1000`, tokens.global!);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('at,result,reason,methods,email,organisation,ip');
    expect(lines.filter((line) => line.toLowerCase().includes('hyperlink')), lines.slice(0, 3).join('\n')).toEqual([expect.stringContaining(`,'=`)]);
    expect(lines.some((line) => line.includes(`,=HYPERLINK`))).toBe(false);
    const auditCsv = await call('GET', `${API}/audit?type=tap.issued&format=csv`, tokens.local!);
    expect(auditCsv.body.split('\r\n')[0]).toBe('id,at,type,actor,subject,organisation,ip,details');

    const audit = ((await call('GET', `${API}/audit?type=tap.issued&limit=1000`, tokens.local!)).json() as { events: Array<{ subject: string; actor: string }> }).events;
    expect(audit.length).toBeGreaterThan(0);
    expect(new Set(audit.map((e) => e.subject))).toEqual(new Set([people.north!.email]));
    expect(audit.some((e) => e.actor === `user:${people.helpdesk!.id}`)).toBe(true);
  });

  it('serves an OpenAPI 3.1 document generated from the routes’ own schemas', async () => {
    const response = await call('GET', `${API}/openapi.json`, null);
    expect(response.statusCode).toBe(200);
    const doc = response.json() as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, { minimum?: number }> } }> } }>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        `${API}/audit`,
        `${API}/dashboard`,
        ...['', '/diff', '/preview', '/versions', '/versions/{version}', '/versions/{version}/rollback'].map((p) => `${API}/policy${p}`),
        `${API}/sign-ins`,
        ...['', '/{id}', '/{id}/disable', '/{id}/enable', '/{id}/exceptions', '/{id}/groups', '/{id}/passes', '/{id}/push/unblock', '/{id}/re-registration', '/{id}/roles', '/{id}/sessions/revoke'].map((p) => `${API}/users${p}`),
      ],
    );
    // Every action asks why, in its schema.
    expect(doc.paths[`${API}/users/{id}/disable`]!.post!.requestBody!.content['application/json']!.schema.properties.reason).toBeDefined();
    expect(doc.paths[`${API}/users/{id}/passes`]!.post!.requestBody!.content['application/json']!.schema.properties.lifetimeMinutes!.minimum).toBe(10);
  });

  it('takes OAuth access tokens from Portcullis’s own provider: a service client’s client credentials, its scopes, where it was told (RFC 6749 §4.4, RFC 7009)', async () => {
    const { client, secret } = await addClient(ctx, { name: `Helpdesk robot ${tag}`, redirectUris: [], postLogoutRedirectUris: [], confidential: true, firstParty: false, service: true, scopes: ['admin:read', 'admin:passes'] }, actor);
    const basic = `Basic ${Buffer.from(`${client.clientId}:${secret}`).toString('base64')}`;
    const tokenFor = async (scope: string) => {
      const response = await app.inject({ method: 'POST', url: '/oidc/token', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ grant_type: 'client_credentials', scope }).toString() });
      expect(response.statusCode, response.body).toBe(200);
      return (response.json() as { access_token: string }).access_token;
    };
    const token = await tokenFor('admin:read admin:passes');
    // Until it is told where, a service administers nowhere.
    expect((await call('GET', `${API}/users`, token)).json()).toMatchObject({ status: 403, code: 'admin-forbidden' });
    await setClientAdminScope(ctx, client.clientId, { everywhere: false, organisations: [`North ${tag}`] }, actor);
    const emails = ((await call('GET', `${API}/users?limit=500`, token)).json() as { users: Array<{ email: string }> }).users.map((u) => u.email);
    expect(emails).toContain(people.north!.email);
    expect(emails).not.toContain(people.south!.email);
    expect((await call('GET', `${API}/users/${people.south!.id}`, token)).statusCode).toBe(404);
    expect((await call('POST', `${API}/users/${people.north!.id}/passes`, token, { reason: 'Robot issues a pass' })).statusCode).toBe(201);
    const [event] = await ctx.store.audit.list({ subjectUserId: people.north!.id, type: 'tap.issued', limit: 1 });
    expect({ type: event!.actor_type, id: event!.actor_id }).toEqual({ type: 'client', id: client.clientId });
    // A scope it was not given, and a token revoked at the provider.
    expect((await call('POST', `${API}/users/${people.north!.id}/sessions/revoke`, token, { reason: 'Helpdesk call 4471' })).json()).toMatchObject({ code: 'admin-scope-missing' });
    const revoked = await app.inject({ method: 'POST', url: '/oidc/token/revocation', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ token }).toString() });
    expect(revoked.statusCode).toBe(200);
    expect((await call('GET', `${API}/users`, token)).json()).toMatchObject({ status: 401, code: 'admin-token-invalid' });
  });

  it('disables and enables an account, keeping the phone paired: its requests are told to wait, not that it is unknown', async () => {
    const pairing = await startPairing(ctx, (await ctx.store.users.findById(people.north!.id))!);
    const device = await TestDevice.create(app);
    const paired = await device.pair(pairing.url, 'North phone');
    expect(paired.statusCode).toBe(201);
    const { deviceId } = paired.json() as { deviceId: string };
    expect((await device.request('GET', '/device/v1/challenges')).statusCode).toBe(200);

    // The helpdesk may not; a local administrator of the organisation may.
    expect((await call('POST', `${API}/users/${people.north!.id}/disable`, tokens.helpdesk!, { reason: 'Helpdesk call 4471' })).json()).toMatchObject({ code: 'admin-forbidden' });
    const disabled = await call('POST', `${API}/users/${people.north!.id}/disable`, tokens.local!, { reason: 'Helpdesk call 4471' });
    expect(disabled.json()).toMatchObject({ status: 'disabled' });
    expect((await ctx.store.users.findById(people.north!.id))!.status).toBe('disabled');
    const waiting = await device.request('GET', '/device/v1/challenges');
    expect(waiting.statusCode).toBe(403);
    expect(waiting.json()).toMatchObject({ error: 'device-account-disabled' });
    expect(await ctx.store.push.findDevice(deviceId)).toBeDefined();

    expect((await call('POST', `${API}/users/${people.north!.id}/enable`, tokens.local!, { reason: 'Helpdesk call 4471' })).json()).toEqual({ status: 'active' });
    expect((await device.request('GET', '/device/v1/challenges')).statusCode).toBe(200);
    const events = (await ctx.store.audit.list({ subjectUserId: people.north!.id, limit: 20 })).map((e) => `${e.type}:${e.actor_id}`);
    expect(events).toEqual(expect.arrayContaining([`user.disabled:${people.local!.id}`, `user.enabled:${people.local!.id}`]));
  });

  it('grants an exception (24 hours by default, with a reason) and requires re-registration, within scope', async () => {
    await applyPolicyText(ctx, `version: 1
methods:
  totp: { enabled: true }
  tap: { enabled: true }
registration:
  - id: everyone-registers
    include: [all]
    exclude: [elevated]
    by: 2020-01-01
`, actor, 'everyone registers');
    const missingReason = await call('POST', `${API}/users/${people.north!.id}/exceptions`, tokens.local!, { requirement: 'everyone-registers' });
    expect(missingReason.json()).toMatchObject({ code: 'request-invalid', field: 'reason' });
    const unknown = await call('POST', `${API}/users/${people.north!.id}/exceptions`, tokens.local!, { requirement: 'no-such-thing', reason: 'Lost phone' });
    expect(unknown.statusCode).toBe(404);
    const granted = await call('POST', `${API}/users/${people.north!.id}/exceptions`, tokens.local!, { requirement: 'everyone-registers', reason: 'Lost phone on a night shift' });
    expect(granted.statusCode).toBe(201);
    const until = Date.parse((granted.json() as { until: string }).until);
    expect(Math.abs(until - (Date.now() + 24 * 3_600_000))).toBeLessThan(60_000);
    expect((await call('POST', `${API}/users/${people.south!.id}/exceptions`, tokens.local!, { requirement: 'everyone-registers', reason: 'Guessing' })).statusCode).toBe(404);

    const reset = await call('POST', `${API}/users/${people.north!.id}/re-registration`, tokens.local!, { reason: 'Helpdesk call 4471' });
    expect(reset.json()).toMatchObject({ methodsRemoved: 1 });
    expect(await ctx.store.methods.activeForUser(people.north!.id)).toEqual([]);
    await ctx.store.push.setUserBlocked(people.north!.id, new Date());
    expect((await call('POST', `${API}/users/${people.north!.id}/push/unblock`, tokens.local!, { reason: 'Helpdesk call 4471' })).json()).toEqual({ pushBlocked: false });
    expect((await ctx.store.users.findById(people.north!.id))!.push_blocked_at).toBeNull();
  });

  it('gives a dashboard of the caller’s organisations: users and elevated users by state, the method mix, the next deadline with the number at risk', async () => {
    const inThirtyDays = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    await applyPolicyText(ctx, `version: 1
methods:
  totp: { enabled: true }
  tap: { enabled: true }
requirements:
  - id: elevated-mfa
    name: Those with elevated rights use a second factor
    include: [elevated]
    strength: mfa
    effective: ${inThirtyDays}
`, actor, 'a deadline ahead');
    // South's person sets up an authenticator app: the method mix counts it, for South only.
    const south = (await ctx.store.users.findById(people.south!.id))!;
    const enrolment = await totpStrategy.beginEnrolment!(ctx, south, {}, { purpose: 'enrolment', binding: 'test', ip: '127.0.0.1' });
    await ctx.store.methods.activate(south.id, enrolment.methodId, ctx.clock(), null);
    type Dashboard = { users: { total: number }; elevated: { total: number; byState: Record<string, number> }; nextDeadline: { requirement: string; daysLeft: number; atRisk: number } | null; methodMix: Record<string, number> };
    const local = (await call('GET', `${API}/dashboard`, tokens.local!)).json() as Dashboard;
    const global = (await call('GET', `${API}/dashboard`, tokens.global!)).json() as Dashboard;
    const northActive = (await ctx.store.database.db.selectFrom('users').select('id').where('organisation_id', '=', (await ctx.store.users.findById(people.north!.id))!.organisation_id).where('status', '=', 'active').execute()).length;
    expect(local.users.total).toBe(northActive);
    expect(global.users.total).toBeGreaterThan(local.users.total);
    // North's elevated people: the global and the local administrator, neither with a method yet.
    expect(local.elevated.total).toBe(2);
    expect(local.nextDeadline).toMatchObject({ requirement: 'elevated-mfa', atRisk: 2 });
    expect(local.nextDeadline!.daysLeft).toBeGreaterThanOrEqual(29);
    expect(global.nextDeadline!.atRisk).toBe(3);
    expect(global.methodMix.totp).toBe(1);
    expect(local.methodMix.totp).toBeUndefined();

    // The trend: a snapshot a day, once (a second call on the same day writes nothing), per organisation.
    const yesterday = new Date(Date.now() - 86_400_000);
    expect(await snapshotCompliance(ctx, yesterday)).toBe(true);
    expect(await snapshotCompliance(ctx, yesterday)).toBe(false);
    expect(await snapshotCompliance(ctx)).toBe(true);
    type Trend = { trend: Array<{ day: string; users: { total: number }; elevated: { byState: Record<string, number> } }> };
    const localTrend = ((await call('GET', `${API}/dashboard`, tokens.local!)).json() as Trend).trend;
    expect(localTrend.map((p) => p.day)).toEqual([yesterday.toISOString().slice(0, 10), new Date().toISOString().slice(0, 10)]);
    expect(localTrend[1]!.users.total).toBe(local.users.total);
    expect(localTrend[1]!.elevated.byState['action-needed']).toBe(2);
    const globalTrend = ((await call('GET', `${API}/dashboard`, tokens.global!)).json() as Trend).trend;
    expect(globalTrend[1]!.users.total).toBe(global.users.total);
  });

  it('finds users by role, method, account status and compliance (an exception moving one person), a page at a time and as CSV', async () => {
    // After the dashboard's policy: the elevated (both administrators in North, the helpdesk in South)
    // have 30 days to set up a second factor; South's person has an authenticator app.
    type Found = { users: Array<{ email: string; compliance: string | null; roles: string[]; methods: string[] }> };
    const emails = async (query: string, token = tokens.global!) => {
      const response = await call('GET', `${API}/users?limit=500&${query}`, token);
      expect(response.statusCode, response.body).toBe(200);
      return (response.json() as Found).users.map((u) => u.email).filter((e) => e.includes(tag));
    };
    expect(await emails('role=helpdesk')).toEqual([people.helpdesk!.email]);
    expect(await emails('method=totp')).toEqual([people.south!.email]);
    expect(await emails('method=none')).toEqual(expect.arrayContaining([people.north!.email, people.global!.email]));
    expect(await emails('method=none')).not.toContain(people.south!.email);
    expect((await emails('compliance=action-needed')).sort()).toEqual([people.global!.email, people.helpdesk!.email, people.local!.email].sort());
    expect((await emails('compliance=action-needed', tokens.local!)).sort()).toEqual([people.global!.email, people.local!.email].sort());
    expect(await emails('compliance=compliant')).toEqual(expect.arrayContaining([people.north!.email, people.south!.email]));
    // An exception makes its person exempt, whatever their profile says.
    expect((await call('POST', `${API}/users/${people.local!.id}/exceptions`, tokens.global!, { requirement: 'elevated-mfa', hours: 48, reason: 'New phone on order' })).statusCode).toBe(201);
    expect(await emails('compliance=exempt')).toEqual([people.local!.email]);
    expect(await emails('compliance=action-needed')).not.toContain(people.local!.email);
    // A disabled account is found by its status, and not by a compliance state.
    expect((await call('POST', `${API}/users/${people.north!.id}/disable`, tokens.local!, { reason: 'Left the trust' })).statusCode).toBe(200);
    expect(await emails('status=disabled')).toEqual([people.north!.email]);
    expect(await emails('compliance=compliant')).not.toContain(people.north!.email);
    expect((await call('POST', `${API}/users/${people.north!.id}/enable`, tokens.local!, { reason: 'Came back' })).statusCode).toBe(200);
    // Pages in email order.
    const all = await emails('status=active');
    const first = ((await call('GET', `${API}/users?limit=1&status=active`, tokens.local!)).json() as Found).users[0]!;
    const second = ((await call('GET', `${API}/users?limit=1&status=active&after=${encodeURIComponent(first.email)}`, tokens.local!)).json() as Found).users[0]!;
    expect(second.email.toLowerCase() > first.email.toLowerCase()).toBe(true);
    expect(all.length).toBeGreaterThan(2);
    // The whole list as CSV, the same people as the search.
    const csv = await call('GET', `${API}/users?format=csv&compliance=action-needed`, tokens.global!);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('email,name,organisation,status,roles,groups,methods,compliance');
    expect(lines.slice(1).filter((l) => l.includes(tag)).map((l) => l.split(',')[0]).sort()).toEqual([people.global!.email, people.helpdesk!.email].sort());
    // Bad filters are refused, naming the field.
    expect((await call('GET', `${API}/users?compliance=fine`, tokens.global!)).json()).toMatchObject({ code: 'request-invalid', field: 'compliance' });
  });

  it('gives a user’s page: roles, compliance, exceptions, pass, recent sign-ins', async () => {
    const detail = (await call('GET', `${API}/users/${people.local!.id}`, tokens.global!)).json() as {
      roles: Array<{ role: string; organisation: string | null }>;
      compliance: { state: string; requirements: Array<{ id: string; state: string }> };
      exceptions: Array<{ requirement: string; live: boolean; reason: string }>;
      signIns: unknown[];
      sessions: unknown[];
      devices: unknown[];
    };
    expect(detail.roles).toContainEqual({ role: 'local-admin', elevated: true, organisation: `North ${tag}` });
    expect(detail.compliance).toMatchObject({ state: 'exempt', requirements: [{ id: 'elevated-mfa', state: 'exempt' }] });
    expect(detail.exceptions[0]).toMatchObject({ requirement: 'elevated-mfa', live: true, reason: 'New phone on order' });
    expect(Array.isArray(detail.signIns) && Array.isArray(detail.sessions) && Array.isArray(detail.devices)).toBe(true);
    expect((await call('POST', `${API}/users/${people.north!.id}/passes`, tokens.global!, { reason: 'Lost phone', multiUse: true })).statusCode).toBe(201);
    const north = (await call('GET', `${API}/users/${people.north!.id}`, tokens.global!)).json() as { pass: { live: boolean; multiUse: boolean; issuedBy: string } | null };
    expect(north.pass).toMatchObject({ multiUse: true, live: true });
  });

  it('changes roles and groups within the caller’s organisations and the policy’s rules, audited with why', async () => {
    const role = (token: string, key: string, body: object) => call('POST', `${API}/users/${people[key]!.id}/roles`, token, { reason: 'Joined the helpdesk rota', ...body });
    const granted = await role(tokens.local!, 'north', { change: 'grant', role: 'helpdesk', organisations: [`North ${tag}`] });
    expect(granted.json()).toEqual({ role: 'helpdesk', granted: 1 });
    const [event] = await ctx.store.audit.list({ subjectUserId: people.north!.id, type: 'role.granted', limit: 1 });
    expect(JSON.parse(event!.details)).toMatchObject({ role: 'helpdesk', why: 'Joined the helpdesk rota' });
    expect((await role(tokens.local!, 'north', { change: 'grant', role: 'global-admin' })).json()).toMatchObject({ status: 403, code: 'admin-role-not-allowed' });
    expect((await role(tokens.local!, 'north', { change: 'grant', role: 'helpdesk', organisations: [`South ${tag}`] })).json()).toMatchObject({ code: 'admin-role-not-allowed' });
    expect((await role(tokens.local!, 'local', { change: 'revoke', role: 'local-admin', organisations: [`North ${tag}`] })).json()).toMatchObject({ code: 'admin-own-roles' });
    expect((await role(tokens.helpdesk!, 'north', { change: 'revoke', role: 'helpdesk', organisations: [`North ${tag}`] })).json()).toMatchObject({ code: 'admin-forbidden' });
    expect((await role(tokens.local!, 'south', { change: 'grant', role: 'helpdesk', organisations: [`South ${tag}`] })).statusCode).toBe(404);
    expect((await role(tokens.local!, 'north', { change: 'revoke', role: 'helpdesk', organisations: [`North ${tag}`] })).json()).toEqual({ role: 'helpdesk', revoked: 1 });

    await createGroup(ctx, `night-shift-${tag}`, 'Night shift', actor);
    const joined = await call('POST', `${API}/users/${people.north!.id}/groups`, tokens.local!, { change: 'add', group: `night-shift-${tag}`, reason: 'Moved to nights' });
    expect(joined.json()).toEqual({ group: `night-shift-${tag}`, member: true });
    expect(((await call('GET', `${API}/users/${people.north!.id}`, tokens.local!)).json() as { groups: string[] }).groups).toEqual([`night-shift-${tag}`]);
    expect(await (async () => ((await call('GET', `${API}/users?limit=500&group=${encodeURIComponent(`night-shift-${tag}`)}`, tokens.local!)).json() as { users: Array<{ email: string }> }).users.map((u) => u.email))()).toEqual([people.north!.email]);
  });

  it('audits every action with who, whom and why (the reason given)', async () => {
    const why = `Audit check ${tag}`;
    const target = people.north!;
    const actions: Array<[string, object, string]> = [
      ['passes', {}, 'tap.issued'],
      ['sessions/revoke', {}, 'session.revoked'],
      ['disable', {}, 'user.disabled'],
      ['enable', {}, 'user.enabled'],
      ['push/unblock', {}, 'push.unblocked'],
      ['exceptions', { requirement: 'elevated-mfa', hours: 24 }, 'policy.exception-added'],
      ['re-registration', {}, 'user.methods-reset'],
      ['roles', { change: 'grant', role: 'helpdesk', organisations: [`North ${tag}`] }, 'role.granted'],
    ];
    for (const [path, body, type] of actions) {
      // (As a fraud report would have left it.)
      if (path === 'push/unblock') await ctx.store.database.db.updateTable('users').set({ push_blocked_at: new Date().toISOString() }).where('id', '=', target.id).execute();
      const response = await call('POST', `${API}/users/${target.id}/${path}`, tokens.global!, { ...body, reason: `${why} ${path}` });
      expect(response.statusCode, `${path}: ${response.body}`).toBeLessThan(300);
      const events = await ctx.store.audit.list({ subjectUserId: target.id, type: type as never, limit: 1 });
      expect(events[0], path).toBeDefined();
      expect({ actor: events[0]!.actor_id, why: (JSON.parse(events[0]!.details) as { why?: string }).why }, path).toEqual({ actor: people.global!.id, why: `${why} ${path}` });
    }
  });

  it('refuses an administrator who does not meet the policy now: an administrator must be compliant to administer', async () => {
    await applyPolicyText(
      ctx,
      `version: 1
methods:
  totp: { enabled: true }
  tap: { enabled: true }
requirements:
  - id: admins-mfa
    include: [elevated]
    strength: mfa
    effective: 2020-01-01
`,
      actor,
      'admins need a second factor',
    );
    const refused = await call('GET', `${API}/users`, tokens.global!);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'admin-not-compliant' });
  });
});
