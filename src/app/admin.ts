/**
 * Administrators' actions on one person's sign-in (the CLI's `push unblock`, `user reset-methods`,
 * `session revoke`) and on groups. Each is audited and, where it changes the person's sign-in, emailed
 * to them. Role and group changes are checked against the method policy first: a change that would
 * leave the person unable to satisfy it is refused with the reason (the same check `policy check` runs).
 */
import type { Actor } from '../core/audit.js';
import { isValidGroupName } from '../core/directory.js';
import { PortcullisError } from '../core/errors.js';
import type { GroupRow } from '../store/repositories/groups.js';
import type { UserRow } from '../store/schema.js';
import type { AppContext } from './context.js';
import { notifyUser } from './notifications.js';
import { signOutOfApplications } from './oidc/sign-out.js';
import { assertDirectoryChangeKeepsPolicy } from './policy.js';

async function requireUser(ctx: AppContext, email: string): Promise<UserRow> {
  const user = await ctx.store.users.findByEmail(email);
  if (!user) throw new PortcullisError('user-not-found', { email: email.trim() });
  return user;
}

async function requireGroup(ctx: AppContext, name: string): Promise<GroupRow> {
  const group = await ctx.store.groups.findByName(name);
  if (!group) throw new PortcullisError('group-not-found', { name: name.trim() });
  return group;
}

/** After a fraud report ("No, it's not me") blocked push: lets sign-in requests reach the app again. */
export async function unblockPush(ctx: AppContext, email: string, actor: Actor): Promise<UserRow> {
  const user = await requireUser(ctx, email);
  if (!user.push_blocked_at) throw new PortcullisError('push-not-blocked', { email: user.email });
  const now = ctx.clock();
  await ctx.store.transaction(async (repos) => {
    await repos.push.setUserBlocked(user.id, null);
    await repos.audit.append({ type: 'push.unblocked', at: now, actor, subjectUserId: user.id, ip: null, details: { blockedAt: user.push_blocked_at } });
  });
  await notifyUser(ctx, user, { kind: 'push-unblocked' });
  return user;
}

/**
 * "Require re-register MFA": every method (and paired device) goes, the default with them, and every
 * session ends; at the next sign-in the person sets up a method again under the policy's rules.
 */
export async function resetMethods(ctx: AppContext, email: string, actor: Actor): Promise<{ user: UserRow; methods: number; sessions: number }> {
  const user = await requireUser(ctx, email);
  const now = ctx.clock();
  const result = await ctx.store.transaction(async (repos) => {
    const methods = await repos.methods.deleteAllForUser(user.id);
    await repos.users.setDefaultMethod(user.id, null, now);
    await repos.policy.deletePass(user.id);
    const sessions = await repos.sessions.deleteAllForUser(user.id);
    await repos.audit.append({ type: 'user.methods-reset', at: now, actor, subjectUserId: user.id, ip: null, details: { methods, sessions } });
    return { methods, sessions };
  });
  // Applications too; the CLI waits for the back-channel logouts so that it does not exit before them.
  await (await signOutOfApplications(ctx, user.id, 'methods-reset')).deliveries;
  await notifyUser(ctx, user, { kind: 'methods-reset', count: result.methods });
  return { user, ...result };
}

/** Ends every session of one person (a lost laptop, a leaver, a suspected compromise). */
export async function revokeSessions(ctx: AppContext, email: string, actor: Actor): Promise<{ user: UserRow; sessions: number }> {
  const user = await requireUser(ctx, email);
  const now = ctx.clock();
  const sessions = await ctx.store.transaction(async (repos) => {
    const count = await repos.sessions.deleteAllForUser(user.id);
    await repos.audit.append({ type: 'session.revoked', at: now, actor, subjectUserId: user.id, ip: null, details: { sessions: count } });
    return count;
  });
  // Applications too; the CLI waits for the back-channel logouts so that it does not exit before them.
  await (await signOutOfApplications(ctx, user.id, 'sessions-revoked')).deliveries;
  if (sessions > 0) await notifyUser(ctx, user, { kind: 'sessions-revoked', count: sessions });
  return { user, sessions };
}

export async function createGroup(ctx: AppContext, name: string, description: string, actor: Actor): Promise<GroupRow> {
  if (!isValidGroupName(name)) throw new PortcullisError('group-name-invalid');
  const now = ctx.clock();
  return ctx.store.transaction(async (repos) => {
    const group = await repos.groups.create(name, description.trim(), now);
    await repos.audit.append({ type: 'group.created', at: now, actor, subjectUserId: null, ip: null, details: { group: group.name } });
    return group;
  });
}

export async function addGroupMember(ctx: AppContext, groupName: string, email: string, actor: Actor): Promise<{ user: UserRow; group: GroupRow }> {
  const [group, user] = await Promise.all([requireGroup(ctx, groupName), requireUser(ctx, email)]);
  const groups = (await ctx.store.groups.groupsOf(user.id)).map((g) => g.name);
  if (!groups.includes(group.name)) await assertDirectoryChangeKeepsPolicy(ctx, user, { groups: [...groups, group.name] });
  const now = ctx.clock();
  await ctx.store.transaction(async (repos) => {
    await repos.groups.addMember(group.id, user.id, now);
    await repos.audit.append({ type: 'group.member-added', at: now, actor, subjectUserId: user.id, ip: null, details: { group: group.name } });
  });
  return { user, group };
}

export async function removeGroupMember(ctx: AppContext, groupName: string, email: string, actor: Actor): Promise<{ user: UserRow; group: GroupRow }> {
  const [group, user] = await Promise.all([requireGroup(ctx, groupName), requireUser(ctx, email)]);
  const groups = (await ctx.store.groups.groupsOf(user.id)).map((g) => g.name);
  if (!groups.includes(group.name)) throw new PortcullisError('group-member-missing', { email: user.email, name: group.name });
  await assertDirectoryChangeKeepsPolicy(ctx, user, { groups: groups.filter((g) => g !== group.name) });
  const now = ctx.clock();
  await ctx.store.transaction(async (repos) => {
    await repos.groups.removeMember(group.id, user.id);
    await repos.audit.append({ type: 'group.member-removed', at: now, actor, subjectUserId: user.id, ip: null, details: { group: group.name } });
  });
  return { user, group };
}

export async function listGroups(ctx: AppContext): Promise<Array<GroupRow & { members: number }>> {
  const db = ctx.store.database.db;
  const rows = await db
    .selectFrom('groups as g')
    .leftJoin('group_members as m', 'm.group_id', 'g.id')
    .select((eb) => ['g.id', 'g.name', 'g.description', eb.fn.count<number | string>('m.user_id').as('members')])
    .groupBy(['g.id', 'g.name', 'g.description'])
    .orderBy('g.name')
    .execute();
  return rows.map((r) => ({ ...r, members: Number(r.members) }));
}
