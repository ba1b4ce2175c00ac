/**
 * The directory on SQLite and PostgreSQL: case-insensitive unique emails, roles scoped to organisations,
 * groups, and an audit event for every change (actor, subject, UTC time).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser, disableUser, grantRole, revokeRole } from '../../src/app/directory.js';
import { isPortcullisError } from '../../src/core/errors.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';

const cli = { kind: 'cli', name: 'operator' } as const;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isPortcullisError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

describe.each(dialects)('directory on %s', (dialect) => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    await addOrganisation(ctx, 'North Trust', cli);
    await addOrganisation(ctx, 'South Surgery', cli);
  });
  afterAll(async () => ctx?.destroy());

  it('keeps emails unique whatever their case, and keeps the case typed', async () => {
    const { user } = await addUser(ctx, { email: 'Pat.Jones@Example.org', displayName: 'Pat Jones', organisation: 'North Trust', roles: [] }, cli);
    expect(user.email).toBe('Pat.Jones@Example.org');
    expect(await codeOf(addUser(ctx, { email: 'pat.jones@example.ORG', displayName: 'Other', organisation: 'North Trust', roles: [] }, cli))).toBe('user-exists');
    expect((await ctx.store.users.findByEmail('PAT.JONES@example.org'))?.id).toBe(user.id);
    expect(await codeOf(addOrganisation(ctx, 'north trust', cli))).toBe('organisation-exists');
  });

  it('marks roles elevated, and scopes a local administrator to the organisations named', async () => {
    const roles = await ctx.store.roles.list();
    expect(Object.fromEntries(roles.map((r) => [r.name, r.elevated]))).toEqual({ 'global-admin': true, helpdesk: true, 'local-admin': true, user: false });
    await addUser(ctx, { email: 'lee@example.org', displayName: 'Lee', organisation: 'South Surgery', roles: [] }, cli);
    expect(await codeOf(grantRole(ctx, 'lee@example.org', 'local-admin', [], cli))).toBe('role-scope-required');
    expect(await codeOf(grantRole(ctx, 'lee@example.org', 'local-admin', ['Nowhere'], cli))).toBe('organisation-not-found');
    await grantRole(ctx, 'lee@example.org', 'local-admin', ['South Surgery', 'North Trust'], cli);
    await revokeRole(ctx, 'lee@example.org', 'local-admin', ['North Trust'], cli);
    const lee = await ctx.store.users.findByEmail('lee@example.org');
    const south = await ctx.store.organisations.findByName('South Surgery');
    expect(await ctx.store.roles.assignmentsOf(lee!.id)).toEqual([
      { role: 'local-admin', scope: south!.id, elevated: true },
      { role: 'user', scope: '*', elevated: false },
    ]);
    expect(await codeOf(revokeRole(ctx, 'lee@example.org', 'helpdesk', [], cli))).toBe('role-not-held');
  });

  it('records every directory change in the audit log with actor, subject and UTC time', async () => {
    const { user } = await addUser(ctx, { email: 'sam@example.org', displayName: 'Sam', organisation: 'North Trust', roles: [{ role: 'helpdesk', organisations: [] }] }, cli);
    await grantRole(ctx, 'sam@example.org', 'global-admin', [], cli);
    await revokeRole(ctx, 'sam@example.org', 'global-admin', [], cli);
    await disableUser(ctx, 'sam@example.org', cli);
    const events = await ctx.store.audit.list({ subjectUserId: user.id });
    expect(events.map((e) => e.type).reverse()).toEqual(['user.created', 'role.granted', 'role.revoked', 'user.disabled']);
    for (const event of events) {
      expect(event.actor_type).toBe('cli');
      expect(event.actor_id).toBe('operator');
      expect(event.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    expect(JSON.parse(events.find((e) => e.type === 'role.granted')!.details)).toMatchObject({ role: 'global-admin', elevated: true });
    expect((await ctx.store.audit.list({ type: 'organisation.created' })).length).toBe(2);
  });

  it('keeps groups of users, case-insensitively named', async () => {
    const pilot = await ctx.store.groups.create('Push pilot', 'Early adopters of push', new Date());
    expect(await codeOf(ctx.store.groups.create('push PILOT', '', new Date()))).toBe('group-exists');
    const pat = await ctx.store.users.findByEmail('pat.jones@example.org');
    await ctx.store.groups.addMember(pilot.id, pat!.id, new Date());
    await ctx.store.groups.addMember(pilot.id, pat!.id, new Date());
    expect(await ctx.store.groups.memberIds(pilot.id)).toEqual([pat!.id]);
    expect((await ctx.store.groups.groupsOf(pat!.id)).map((g) => g.name)).toEqual(['Push pilot']);
    expect(await ctx.store.groups.removeMember(pilot.id, pat!.id)).toBe(true);
    expect(await ctx.store.groups.groupsOf(pat!.id)).toEqual([]);
  });

  it('writes a user with a bad role not at all', async () => {
    expect(await codeOf(addUser(ctx, { email: 'half@example.org', displayName: 'Half', organisation: 'North Trust', roles: [{ role: 'wizard', organisations: [] }] }, cli))).toBe('role-not-found');
    expect(await ctx.store.users.findByEmail('half@example.org')).toBeUndefined();
  });
});
