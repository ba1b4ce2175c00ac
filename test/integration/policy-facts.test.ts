/**
 * The directory facts the method policy evaluates for a user (roles, groups, a Temporary Access Pass,
 * exceptions, campaign snoozes), read in one statement on each database: each part as its own, only
 * this user's, live exceptions only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';

const actor = { kind: 'cli', name: 'test' } as const;

describe.each(dialects)('policy facts (%s)', (dialect) => {
  let ctx: TestContext;
  const ids: Record<string, string> = {};
  let organisationId = '';

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    const organisation = await addOrganisation(ctx, 'Facts Trust', actor);
    organisationId = organisation.id;
    for (const name of ['full', 'other', 'bare']) {
      ids[name] = (await addUser(ctx, { email: `${name}@example.org`, displayName: name, organisation: 'Facts Trust', roles: [] }, actor)).user.id;
    }
    const now = new Date();
    const at = (minutes: number) => new Date(now.getTime() + minutes * 60_000).toISOString();
    await ctx.store.roles.grant(ids.full!, 'local-admin', [organisation.id], now);
    await ctx.store.roles.grant(ids.other!, 'global-admin', ['*'], now);
    const [pilot, alpha] = [await ctx.store.groups.create('Push pilot', '', now), await ctx.store.groups.create('alpha testers', '', now)];
    await ctx.store.groups.addMember(pilot.id, ids.full!, now);
    await ctx.store.groups.addMember(alpha.id, ids.full!, now);
    await ctx.store.groups.addMember(pilot.id, ids.other!, now);
    await ctx.store.policy.replacePass({ user_id: ids.full!, pass_hash: 'h', multi_use: 1, created_by: 'test', created_at: at(0), expires_at: at(60), used_at: null });
    const exception = { reason: 'test', created_by: 'test', created_at: at(0) };
    await ctx.store.policy.insertException({ ...exception, id: 'x-live', user_id: ids.full!, requirement_id: 'admins-push', until: at(60) });
    await ctx.store.policy.insertException({ ...exception, id: 'x-ended', user_id: ids.full!, requirement_id: 'ended', until: at(-1) });
    await ctx.store.policy.insertException({ ...exception, id: 'x-revoked', user_id: ids.full!, requirement_id: 'revoked', until: at(60) });
    await ctx.store.policy.revokeException('x-revoked', 'test', now);
    await ctx.store.policy.insertException({ ...exception, id: 'x-other', user_id: ids.other!, requirement_id: 'others', until: at(60) });
    await ctx.store.policy.snooze(ids.full!, 'move-to-push', new Date(at(30)));
    await ctx.store.policy.snooze(ids.full!, 'move-to-push', new Date(at(45)));
  });

  afterAll(async () => {
    await ctx?.destroy();
  });

  it("reads every part of one user's facts, and nobody else's", async () => {
    const facts = await ctx.store.policy.facts(ids.full!, new Date());
    expect(facts.roles).toEqual([
      { role: 'local-admin', scope: organisationId, elevated: true },
      { role: 'user', scope: '*', elevated: false },
    ]);
    expect(facts.groups).toEqual(['alpha testers', 'Push pilot']);
    expect(facts.pass).toEqual({ expiresAt: expect.any(String), multiUse: true, usedAt: null });
    expect(facts.exceptions).toEqual([{ requirementId: 'admins-push', until: expect.any(String) }]);
    expect(facts.snoozes).toEqual([{ campaignId: 'move-to-push', count: 2, until: expect.any(String) }]);
  });

  it('gives empty parts for a user with none of them (every user holds the user role)', async () => {
    expect(await ctx.store.policy.facts(ids.bare!, new Date())).toEqual({ roles: [{ role: 'user', scope: '*', elevated: false }], groups: [], pass: null, exceptions: [], snoozes: [] });
  });

  it('agrees with the separate queries the rest of the directory uses', async () => {
    const facts = await ctx.store.policy.facts(ids.other!, new Date());
    expect(facts.roles).toEqual(await ctx.store.roles.assignmentsOf(ids.other!));
    expect(facts.groups).toEqual((await ctx.store.groups.groupsOf(ids.other!)).map((g) => g.name));
    expect(facts.exceptions).toEqual([{ requirementId: 'others', until: expect.any(String) }]);
  });
});
