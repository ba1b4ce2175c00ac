/**
 * The policy in the admin console and the admin API (issue #15 point 4), through buildApp() and
 * inject(), on SQLite and PostgreSQL: a preview of an edit shows the compliance counts change before
 * anything is applied; a document that does not parse or does not compile is shown with its problem in
 * place and changes nothing; applying and rolling back each make a new version, audited with who and
 * why; the diff names the lines added and removed; only a global administrator with `admin:policy` may
 * change the policy, though every administrator may look; and the API's schemas name a missing field.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../src/app/admin-api.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { totpStrategy } from '../../src/app/methods/totp/index.js';
import { applyPolicyText } from '../../src/app/policy.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';

const actor = { kind: 'system' } as const;
const API = '/api/admin/v1';
const PASSWORD = 'lantern-harbour-correct';

const FIRST = `version: 1
methods:
  totp: { enabled: true }
  tap: { enabled: true }
`;
/** Everyone without an elevated role must have set up a method by a date long past: they all become non-compliant. */
const REGISTRATION = `version: 1
methods:
  totp: { enabled: true }
  tap: { enabled: true }
registration:
  - id: everyone-registers
    name: Everyone sets up a second sign-in method
    include: [all]
    exclude: [elevated]
    by: 2020-01-01
`;

/** The text of an HTML page with its tags and entities undone, for finding words as a reader sees them. */
const textOf = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');

describe.each(dialects)('the policy in the admin console and API on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const tag = `${dialect}-${Date.now()}`;
  const people: Record<string, { id: string; email: string }> = {};
  const tokens: Record<string, string> = {};
  const browsers: Record<string, TestBrowser> = {};

  const call = (method: 'GET' | 'POST', url: string, token: string, body?: unknown) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
  const versions = async () => (await ctx.store.policy.versions()).map((v) => v.version);
  const latest = async () => (await ctx.store.database.db.selectFrom('policy_versions').selectAll().orderBy('version', 'desc').limit(1).executeTakeFirstOrThrow());
  const auditCount = async () => Number((await ctx.store.database.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);
  const lastApplied = async () => (await ctx.store.audit.list({ type: 'policy.applied', limit: 1 }))[0]!;

  beforeAll(async () => {
    ctx = await createTestContext(dialect, {});
    const north = await addOrganisation(ctx, `North ${tag}`, actor);
    const south = await addOrganisation(ctx, `South ${tag}`, actor);
    await applyPolicyText(ctx, FIRST, actor, 'the first policy');
    const person = async (key: string, organisation: string, roles: Array<{ role: string; organisations: string[] }>) => {
      const email = `${key}-${tag}@example.org`;
      const { user } = await addUser(ctx, { email, displayName: `${key} person`, organisation, roles, password: PASSWORD }, actor);
      people[key] = { id: user.id, email };
    };
    await person('global', north.name, [{ role: 'global-admin', organisations: [] }]);
    await person('local', north.name, [{ role: 'local-admin', organisations: [north.name] }]);
    await person('helpdesk', south.name, [{ role: 'helpdesk', organisations: [] }]);
    await person('nurse', north.name, []);
    await person('porter', south.name, []);
    const all = ['admin:read', 'admin:passes', 'admin:sessions', 'admin:accounts', 'admin:policy'];
    for (const key of ['global', 'local', 'helpdesk']) tokens[key] = (await createAdminToken(ctx, people[key]!.email, { name: `${key} tooling`, scopes: all, days: 30 }, actor)).token;
    tokens.readOnly = (await createAdminToken(ctx, people.global!.email, { name: 'reports', scopes: ['admin:read'], days: 30 }, actor)).token;
    app = await buildApp(ctx);
    // The policy asks nothing of administrators yet, so a password is all it takes to meet it.
    for (const key of ['global', 'local', 'helpdesk']) {
      const browser = new TestBrowser(app);
      expect((await browser.signIn(people[key]!.email, PASSWORD)).statusCode).toBe(303);
      expect((await browser.get('/admin')).statusCode).toBe(200);
      browsers[key] = browser;
    }
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('shows a global administrator the counts now and after an edit before anything is applied', async () => {
    const before = await versions();
    const browser = browsers.global!;
    const policy = await browser.get('/admin/policy');
    expect(policy.statusCode).toBe(200);
    expect(policy.body).toContain('href="/admin/policy/edit"');
    const edit = await browser.get('/admin/policy/edit');
    expect(edit.statusCode).toBe(200);
    expect(edit.body).toContain('id="document"');
    expect(edit.body).toContain('totp: { enabled: true }');

    const preview = await browser.post('/admin/policy/preview', { document: REGISTRATION, reason: 'Everyone should have a second method' });
    expect(preview.statusCode).toBe(200);
    const text = textOf(preview.body);
    expect(text).toContain('Check what this change will do');
    expect(text).toContain('Everyone sets up a second sign-in method');
    expect(text).toContain('New in this change');
    // The two people without an elevated role (the nurse and the porter) go from compliant to non-compliant.
    expect(text).toMatch(/Non-compliant 0 2 2 more/);
    expect(text).toMatch(/Compliant 5 3 2 fewer/);
    // The form carries the draft on, to be applied only when confirmed.
    expect(preview.body).toContain('action="/admin/policy/apply"');
    expect(preview.body).toContain('name="document" value="version: 1');
    expect(await versions()).toEqual(before);

    const api = await call('POST', `${API}/policy/preview`, tokens.global!, { document: REGISTRATION });
    expect(api.statusCode).toBe(200);
    const counts = (api.json() as { ok: boolean; counts: { users: { now: { byState: Record<string, number> }; after: { byState: Record<string, number> } }; elevated: { now: { total: number }; after: { total: number } }; requirements: Array<{ id: string; now: unknown; after: { total: number } }> } }).counts;
    expect(counts.users.now.byState['non-compliant']).toBe(0);
    expect(counts.users.after.byState['non-compliant']).toBe(2);
    expect(counts.elevated.after.total).toBe(3);
    // The requirement excludes the elevated: it applies to the nurse and the porter alone.
    expect(counts.requirements).toEqual([expect.objectContaining({ id: 'everyone-registers', now: null, after: { total: 2, byState: expect.objectContaining({ 'non-compliant': 2, compliant: 0 }) } })]);
    expect(await versions()).toEqual(before);
  });

  it('shows a document that does not parse or does not compile with its problem in place, and changes nothing', async () => {
    const before = await versions();
    const audited = await auditCount();
    const browser = browsers.global!;
    await browser.get('/admin/policy/edit');
    const broken = 'version: 1\nmethods: [totp\n';
    const notYaml = await browser.post('/admin/policy/preview', { document: broken, reason: 'Trying something' });
    expect(notYaml.statusCode).toBe(400);
    expect(notYaml.body).toContain('There is a problem');
    expect(notYaml.body).toContain('href="#document"');
    expect(notYaml.body).toContain('not valid YAML or JSON');
    expect(notYaml.body).toMatch(/id="document-error"/);
    // The text typed is kept, to be put right.
    expect(notYaml.body).toContain('methods: [totp');

    const unknownMethod = await browser.post('/admin/policy/preview', { document: 'version: 1\nmethods:\n  carrier-pigeon: { enabled: true }\n', reason: 'Trying something' });
    expect(unknownMethod.statusCode).toBe(400);
    expect(textOf(unknownMethod.body)).toMatch(/methods\.carrier-pigeon|carrier-pigeon/);
    expect(unknownMethod.body).toContain('id="document-error"');

    // Applying it directly (a form sent by hand) is refused the same way.
    const applied = await browser.post('/admin/policy/apply', { document: broken, reason: 'Trying something' });
    expect(applied.statusCode).toBe(400);
    expect(applied.body).toContain('href="#document"');

    const api = await call('POST', `${API}/policy`, tokens.global!, { document: broken, reason: 'Trying something' });
    expect(api.statusCode).toBe(400);
    expect(api.json()).toMatchObject({ code: 'policy-invalid' });
    const previewed = (await call('POST', `${API}/policy/preview`, tokens.global!, { document: broken })).json() as { ok: boolean; problems: unknown[]; counts: unknown };
    expect(previewed).toMatchObject({ ok: false, counts: null });
    expect(previewed.problems.length).toBeGreaterThan(0);
    expect(await versions()).toEqual(before);
    expect(await auditCount()).toBe(audited);
  });

  it('applies an edit as a new version, with the reason as its comment and in the audit event as why', async () => {
    const browser = browsers.global!;
    const before = (await latest()).version;
    await browser.post('/admin/policy/preview', { document: REGISTRATION, reason: 'Everyone should have a second method' });
    const tooShort = await browser.post('/admin/policy/apply', { document: REGISTRATION, reason: 'no' });
    expect(tooShort.statusCode).toBe(400);
    expect(tooShort.body).toContain('href="#reason"');
    expect((await latest()).version).toBe(before);

    const applied = await browser.post('/admin/policy/apply', { document: REGISTRATION, reason: 'Everyone should have a second method' });
    expect(applied.statusCode).toBe(303);
    expect(applied.headers.location).toBe(`/admin/policy?done=applied&version=${before + 1}`);
    const row = await latest();
    expect(row).toMatchObject({ version: before + 1, document: REGISTRATION, comment: 'Everyone should have a second method', applied_by: `user:${people.global!.id}` });
    const event = await lastApplied();
    expect({ actor: event.actor_id, details: JSON.parse(event.details) }).toEqual({
      actor: people.global!.id,
      details: { version: before + 1, comment: 'Everyone should have a second method', why: 'Everyone should have a second method' },
    });
    const page = textOf((await browser.get(applied.headers.location!)).body);
    expect(page).toContain(`Version ${before + 1} of the policy is now in force`);
    expect(page).toContain(people.global!.email);

    // As a browser sends a text area: with CRLF line ends, kept as LF so that diffs compare lines alike.
    const api = await call('POST', `${API}/policy`, tokens.global!, { document: FIRST.replace(/\n/g, '\r\n'), reason: 'Back to the first policy for now' });
    expect(api.statusCode).toBe(201);
    expect(api.json()).toEqual({ version: before + 2 });
    expect(JSON.parse((await lastApplied()).details)).toMatchObject({ version: before + 2, why: 'Back to the first policy for now' });
    expect((await latest()).document).toBe(FIRST);
    expect((await call('GET', `${API}/policy`, tokens.readOnly!)).json()).toMatchObject({ version: before + 2, document: FIRST, mayEdit: false });
  });

  it('names the lines a version added and removed', async () => {
    const first = await applyPolicyText(ctx, FIRST, actor, 'diff from');
    const second = await applyPolicyText(ctx, FIRST.replace('  tap: { enabled: true }\n', '  tap: { enabled: false }\n  voice: { enabled: true }\n'), actor, 'diff to');
    const diff = (await call('GET', `${API}/policy/diff?from=${first.version}&to=${second.version}`, tokens.readOnly!)).json() as { added: number; removed: number; lines: Array<{ kind: string; text: string; fromLine: number | null; toLine: number | null }> };
    expect(diff.added).toBe(2);
    expect(diff.removed).toBe(1);
    expect(diff.lines.filter((l) => l.kind !== 'unchanged')).toEqual([
      { kind: 'removed', text: '  tap: { enabled: true }', fromLine: 4, toLine: null },
      { kind: 'added', text: '  tap: { enabled: false }', fromLine: null, toLine: 4 },
      { kind: 'added', text: '  voice: { enabled: true }', fromLine: null, toLine: 5 },
    ]);
    expect(diff.lines[0]).toEqual({ kind: 'unchanged', text: 'version: 1', fromLine: 1, toLine: 1 });

    const page = await browsers.helpdesk!.get(`/admin/policy/diff?from=${first.version}&to=${second.version}`);
    expect(page.statusCode).toBe(200);
    const text = textOf(page.body);
    // Said in words, not by colour alone.
    expect(text).toContain('2 lines added, 1 line removed');
    expect(text).toMatch(/Removed 4 tap: \{ enabled: true \}/);
    expect(text).toMatch(/Added 5 voice: \{ enabled: true \}/);
    expect((await browsers.helpdesk!.get(`/admin/policy/diff?from=${first.version}&to=99999`)).statusCode).toBe(404);
    expect((await call('GET', `${API}/policy/diff?from=${first.version}&to=99999`, tokens.readOnly!)).json()).toMatchObject({ status: 404, code: 'admin-policy-version-not-found' });
  });

  it('rolls back to an earlier version as a new version with its document, audited with why', async () => {
    const browser = browsers.global!;
    const target = await applyPolicyText(ctx, REGISTRATION, actor, 'to roll back to');
    await applyPolicyText(ctx, FIRST, actor, 'in force');
    const current = (await latest()).version;

    const confirm = await browser.get(`/admin/policy/versions/${target.version}/rollback`);
    expect(confirm.statusCode).toBe(200);
    const text = textOf(confirm.body);
    expect(text).toContain(`Roll back to policy version ${target.version}`);
    expect(text).toContain(`Changes from version ${current} (in force) to version ${target.version}`);
    expect(text).toMatch(/Added \d+ - id: everyone-registers/);

    const noReason = await browser.post(`/admin/policy/versions/${target.version}/rollback`, { reason: '' });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.body).toContain('href="#reason"');
    expect((await latest()).version).toBe(current);

    const rolled = await browser.post(`/admin/policy/versions/${target.version}/rollback`, { reason: 'The first policy was too lax' });
    expect(rolled.statusCode).toBe(303);
    expect(rolled.headers.location).toBe(`/admin/policy?done=rolled-back&version=${current + 1}`);
    const row = await latest();
    expect(row).toMatchObject({ version: current + 1, document: REGISTRATION, comment: `Rolled back to version ${target.version}: The first policy was too lax` });
    expect(JSON.parse((await lastApplied()).details)).toMatchObject({ version: current + 1, why: 'The first policy was too lax' });

    // The API: to the version before, then refusing the one in force and one that does not exist.
    const api = await call('POST', `${API}/policy/versions/${current}/rollback`, tokens.global!, { reason: 'Undo the rollback' });
    expect(api.statusCode).toBe(201);
    expect(api.json()).toEqual({ version: current + 2 });
    expect((await latest()).document).toBe(FIRST);
    expect((await lastApplied()).actor_id).toBe(people.global!.id);
    expect((await call('POST', `${API}/policy/versions/${current + 2}/rollback`, tokens.global!, { reason: 'Again' })).json()).toMatchObject({ status: 409, code: 'admin-policy-rollback-current' });
    expect((await call('POST', `${API}/policy/versions/99999/rollback`, tokens.global!, { reason: 'Nowhere' })).json()).toMatchObject({ status: 404, code: 'admin-policy-version-not-found' });
    expect((await browser.get('/admin/policy/versions/99999')).statusCode).toBe(404);
    expect((await browser.get('/admin/policy/versions/not-a-number/rollback')).statusCode).toBe(404);
  });

  it('lets a local administrator and the helpdesk look, but not edit, apply or roll back; nor a read-only token', async () => {
    const before = await versions();
    const audited = await auditCount();
    const first = before.at(-1)!;
    for (const key of ['local', 'helpdesk']) {
      const browser = browsers[key]!;
      const page = await browser.get('/admin/policy');
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('href="/admin/policy/edit"');
      const version = await browser.get(`/admin/policy/versions/${first}`);
      expect(version.statusCode).toBe(200);
      expect(version.body).not.toContain('/rollback"');
      expect((await browser.get('/admin/policy/edit')).statusCode).toBe(403);
      expect((await browser.post('/admin/policy/preview', { document: REGISTRATION, reason: 'Let me try' })).statusCode).toBe(403);
      expect((await browser.post('/admin/policy/apply', { document: REGISTRATION, reason: 'Let me try' })).statusCode).toBe(403);
      expect((await browser.get(`/admin/policy/versions/${first}/rollback`)).statusCode).toBe(403);
      expect((await browser.post(`/admin/policy/versions/${first}/rollback`, { reason: 'Let me try' })).statusCode).toBe(403);

      expect((await call('GET', `${API}/policy`, tokens[key]!)).json()).toMatchObject({ mayEdit: false });
      expect((await call('GET', `${API}/policy/versions`, tokens[key]!)).statusCode).toBe(200);
      for (const [url, body] of [
        [`${API}/policy/preview`, { document: REGISTRATION }],
        [`${API}/policy`, { document: REGISTRATION, reason: 'Let me try' }],
        [`${API}/policy/versions/${first}/rollback`, { reason: 'Let me try' }],
      ] as const) {
        const refused = await call('POST', url, tokens[key]!, body);
        expect(refused.statusCode, `${key} ${url}`).toBe(403);
        expect(refused.json()).toMatchObject({ code: 'admin-forbidden' });
      }
    }
    for (const [url, body] of [
      [`${API}/policy/preview`, { document: REGISTRATION }],
      [`${API}/policy`, { document: REGISTRATION, reason: 'Only reading' }],
      [`${API}/policy/versions/${first}/rollback`, { reason: 'Only reading' }],
    ] as const) {
      expect((await call('POST', url, tokens.readOnly!, body)).json()).toMatchObject({ status: 403, code: 'admin-scope-missing' });
    }
    expect((await call('GET', `${API}/policy/versions/${first}`, tokens.readOnly!)).statusCode).toBe(200);
    expect(await versions()).toEqual(before);
    expect(await auditCount()).toBe(audited);
  });

  it('asks for a say-so before applying a change that would leave someone with no method they may use (issue #12)', async () => {
    await applyPolicyText(ctx, FIRST, actor, 'before stranding');
    const nurse = (await ctx.store.users.findById(people.nurse!.id))!;
    const enrolment = await totpStrategy.beginEnrolment!(ctx, nurse, {}, { purpose: 'enrolment', binding: 'test', ip: '127.0.0.1' });
    await ctx.store.methods.activate(nurse.id, enrolment.methodId, ctx.clock(), null);
    const strands = 'version: 1\nmethods:\n  tap: { enabled: true }\n';
    const before = (await latest()).version;
    const browser = browsers.global!;
    const preview = await browser.post('/admin/policy/preview', { document: strands, reason: 'Authenticator apps are going' });
    expect(preview.statusCode).toBe(200);
    expect(textOf(preview.body)).toContain('Some people will not be able to sign in');
    expect(preview.body).toContain('name="allowStranded"');
    const unconfirmed = await browser.post('/admin/policy/apply', { document: strands, reason: 'Authenticator apps are going' });
    expect(unconfirmed.statusCode).toBe(400);
    expect(unconfirmed.body).toContain('href="#allowStranded"');
    expect((await latest()).version).toBe(before);
    expect((await call('POST', `${API}/policy`, tokens.global!, { document: strands, reason: 'Authenticator apps are going' })).json()).toMatchObject({ status: 409, code: 'policy-strands-people' });
    expect((await latest()).version).toBe(before);
    const confirmed = await browser.post('/admin/policy/apply', { document: strands, reason: 'Authenticator apps are going', allowStranded: 'yes' });
    expect(confirmed.statusCode).toBe(303);
    expect((await latest()).document).toBe(strands);
  });

  it('refuses a request the schemas do not allow, naming the field, and changes nothing', async () => {
    const before = await versions();
    const audited = await auditCount();
    const missing = await call('POST', `${API}/policy`, tokens.global!, { document: REGISTRATION });
    expect(missing.statusCode).toBe(400);
    expect(missing.headers['content-type']).toContain('application/problem+json');
    expect(missing.json()).toMatchObject({ code: 'request-invalid', field: 'reason' });
    expect((await call('POST', `${API}/policy/versions/${before[0]}/rollback`, tokens.global!, {})).json()).toMatchObject({ code: 'request-invalid', field: 'reason' });
    expect((await call('POST', `${API}/policy`, tokens.global!, { reason: 'No document' })).json()).toMatchObject({ code: 'request-invalid', field: 'document' });
    expect((await call('POST', `${API}/policy`, tokens.global!, { document: REGISTRATION, reason: 'Extra', force: true })).json()).toMatchObject({ code: 'request-invalid', field: 'force' });
    expect((await call('GET', `${API}/policy/diff?from=1`, tokens.global!)).json()).toMatchObject({ code: 'request-invalid', field: 'to' });
    expect((await call('GET', `${API}/policy/versions/0`, tokens.global!)).statusCode).toBe(400);
    expect(await versions()).toEqual(before);
    expect(await auditCount()).toBe(audited);
  });
});
