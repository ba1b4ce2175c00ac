/**
 * Directory use cases shared by the CLI and (later) the admin console: organisations, users, roles,
 * activation links. Each change is one transaction with its audit event.
 */
import { randomUUID } from 'node:crypto';
import type { Actor } from '../core/audit.js';
import { checkRoleGrant, DEFAULT_ROLE, isValidDisplayName, isValidOrganisationName, type RoleDefinition } from '../core/directory.js';
import { isValidEmail, normaliseEmail } from '../core/email.js';
import { PortcullisError } from '../core/errors.js';
import { hashToken, randomToken } from '../crypto/tokens.js';
import { isUniqueViolation } from '../store/errors.js';
import type { Repositories } from '../store/index.js';
import type { OrganisationRow, UserRow } from '../store/schema.js';
import { EMPTY_PROFILE } from '../core/policy/profile.js';
import { assertDirectoryChangeKeepsPolicy } from './policy.js';
import type { AppContext } from './context.js';
import { administers, authorityOf } from '../core/admin/scope.js';
import { signOutOfApplications } from './oidc/sign-out.js';
import { assertAcceptablePassword } from './passwords.js';

/** A role to grant, optionally scoped to organisations (by name). */
export interface RoleRequest {
  role: string;
  organisations: string[];
}

export interface NewUserInput {
  email: string;
  displayName: string;
  organisation: string;
  roles: RoleRequest[];
  password?: string | undefined;
}

export interface NewUserResult {
  user: UserRow;
  /** Present when the user has no password yet: the one-time link to set one. */
  activationUrl: string | null;
}

export async function addOrganisation(ctx: AppContext, name: string, actor: Actor): Promise<OrganisationRow> {
  if (!isValidOrganisationName(name)) throw new PortcullisError('organisation-name-invalid');
  return ctx.store.transaction(async (repos) => {
    const now = ctx.clock();
    const row = await repos.organisations.create(name, now);
    await repos.audit.append({
      type: 'organisation.created',
      at: now,
      actor,
      subjectUserId: null,
      ip: null,
      details: { organisationId: row.id, name: row.name },
    });
    return row;
  });
}

async function requireOrganisation(repos: Repositories, name: string): Promise<OrganisationRow> {
  const org = await repos.organisations.findByName(name);
  if (!org) throw new PortcullisError('organisation-not-found', { name: name.trim() });
  return org;
}

async function requireRole(repos: Repositories, name: string): Promise<RoleDefinition> {
  const role = await repos.roles.find(name);
  if (!role) throw new PortcullisError('role-not-found', { role: name });
  return role;
}

async function requireUser(repos: Repositories, email: string): Promise<UserRow> {
  const user = await repos.users.findByEmail(email);
  if (!user) throw new PortcullisError('user-not-found', { email: email.trim() });
  return user;
}

/** Resolves a role request into the scopes to grant. A role that needs a scope defaults to the user's own organisation. */
async function scopesFor(repos: Repositories, role: RoleDefinition, organisations: string[], defaultOrganisationId?: string): Promise<string[]> {
  const ids: string[] = [];
  for (const name of organisations) ids.push((await requireOrganisation(repos, name)).id);
  if (ids.length === 0 && role.scope === 'required' && defaultOrganisationId) ids.push(defaultOrganisationId);
  const check = checkRoleGrant(role, ids);
  if (!check.ok) throw new PortcullisError(check.code, check.params);
  return check.scopes;
}

async function issueActivationToken(ctx: AppContext, repos: Repositories, userId: string, now: Date): Promise<string> {
  const token = randomToken(32);
  await repos.userTokens.replace({
    id: hashToken(token),
    userId,
    purpose: 'activation',
    now,
    expiresAt: new Date(now.getTime() + ctx.config.activationLinkSeconds * 1000),
  });
  return new URL(`activate/${token}`, withTrailingSlash(ctx.config.publicUrl)).toString();
}

function withTrailingSlash(url: URL): URL {
  const copy = new URL(url);
  if (!copy.pathname.endsWith('/')) copy.pathname += '/';
  return copy;
}

/** Validates and writes one user with their roles, in the caller's transaction. */
async function insertUser(ctx: AppContext, repos: Repositories, input: NewUserInput, actor: Actor): Promise<NewUserResult> {
  const email = input.email.trim();
  if (!isValidEmail(email)) throw new PortcullisError('email-invalid');
  if (!isValidDisplayName(input.displayName)) throw new PortcullisError('display-name-invalid');
  const organisation = await requireOrganisation(repos, input.organisation);
  const grants: Array<{ role: RoleDefinition; scopes: string[] }> = [];
  const requests = input.roles.some((r) => r.role === DEFAULT_ROLE) ? input.roles : [{ role: DEFAULT_ROLE, organisations: [] }, ...input.roles];
  for (const request of requests) {
    const role = await requireRole(repos, request.role);
    grants.push({ role, scopes: await scopesFor(repos, role, request.organisations, organisation.id) });
  }
  let passwordHash: string | null = null;
  if (input.password !== undefined) {
    assertAcceptablePassword(input.password, ctx.config, email);
    passwordHash = await ctx.hasher.hash(input.password);
  }
  const now = ctx.clock();
  const at = now.toISOString();
  const user: UserRow = {
    id: randomUUID(),
    email,
    email_normalised: normaliseEmail(email),
    display_name: input.displayName.trim(),
    organisation_id: organisation.id,
    status: 'active',
    password_hash: passwordHash,
    password_changed_at: passwordHash ? at : null,
    created_at: at,
    updated_at: at,
    default_method_id: null,
    push_blocked_at: null,
    // Set from the roles granted below, in this transaction.
    policy_profile: EMPTY_PROFILE,
  };
  try {
    await repos.users.insert(user);
  } catch (error) {
    if (isUniqueViolation(error)) throw new PortcullisError('user-exists', { email });
    throw error;
  }
  for (const grant of grants) await repos.roles.grant(user.id, grant.role.name, grant.scopes, now);
  await repos.audit.append({
    type: 'user.created',
    at: now,
    actor,
    subjectUserId: user.id,
    ip: null,
    details: {
      email,
      organisation: organisation.name,
      roles: grants.map((g) => g.role.name),
      passwordSet: passwordHash !== null,
    },
  });
  const activationUrl = passwordHash ? null : await issueActivationToken(ctx, repos, user.id, now);
  return { user, activationUrl };
}

export async function addUser(ctx: AppContext, input: NewUserInput, actor: Actor): Promise<NewUserResult> {
  return ctx.store.transaction((repos) => insertUser(ctx, repos, input, actor));
}

/** Same as addUser, for callers already in a transaction (import). */
export { insertUser };

export async function disableUser(ctx: AppContext, email: string, actor: Actor): Promise<{ user: UserRow; sessionsEnded: number }> {
  const disabled = await ctx.store.transaction(async (repos): Promise<{ user: UserRow; sessionsEnded: number }> => {
    const user = await requireUser(repos, email);
    const now = ctx.clock();
    await repos.users.setStatus(user.id, 'disabled', now);
    // A disabled account keeps no session (OWASP ASVS 5 V7.4.2).
    const sessionsEnded = await repos.sessions.deleteAllForUser(user.id);
    await repos.audit.append({
      type: 'user.disabled',
      at: now,
      actor,
      subjectUserId: user.id,
      ip: null,
      details: { email: user.email, sessionsEnded },
    });
    return { user: { ...user, status: 'disabled' }, sessionsEnded };
  });
  // After the commit: a disabled person keeps no grant, refresh token or application session either. The CLI
  // waits for the back-channel logouts (at most two short attempts) so that it does not exit before them.
  await (await signOutOfApplications(ctx, disabled.user.id, 'user-disabled')).deliveries;
  return disabled;
}

/**
 * Enables a disabled account: the person signs in again with what they had — methods, and the phone's
 * pairing, which a disabled account's device requests were told to wait out, not to forget (issue #15).
 */
export async function enableUser(ctx: AppContext, email: string, actor: Actor): Promise<{ user: UserRow }> {
  return ctx.store.transaction(async (repos) => {
    const user = await requireUser(repos, email);
    if (user.status === 'active') return { user };
    const now = ctx.clock();
    await repos.users.setStatus(user.id, 'active', now);
    await repos.audit.append({ type: 'user.enabled', at: now, actor, subjectUserId: user.id, ip: null, details: { email: user.email } });
    return { user: { ...user, status: 'active' } };
  });
}

export async function grantRole(
  ctx: AppContext,
  email: string,
  roleName: string,
  organisations: string[],
  actor: Actor,
): Promise<{ user: UserRow; role: RoleDefinition; granted: string[] }> {
  await checkRoleChange(ctx, email, roleName, 'grant', organisations);
  return ctx.store.transaction(async (repos) => {
    const user = await requireUser(repos, email);
    const role = await requireRole(repos, roleName);
    const scopes = await scopesFor(repos, role, organisations);
    const now = ctx.clock();
    const granted = await repos.roles.grant(user.id, role.name, scopes, now);
    if (granted.length) {
      await repos.audit.append({
        type: 'role.granted',
        at: now,
        actor,
        subjectUserId: user.id,
        ip: null,
        details: { role: role.name, elevated: role.elevated, scopes: granted },
      });
    }
    return { user, role, granted };
  });
}

export async function revokeRole(
  ctx: AppContext,
  email: string,
  roleName: string,
  organisations: string[],
  actor: Actor,
): Promise<{ user: UserRow; role: RoleDefinition; revoked: string[] }> {
  await checkRoleChange(ctx, email, roleName, 'revoke', organisations);
  return ctx.store.transaction(async (repos) => {
    const user = await requireUser(repos, email);
    const role = await requireRole(repos, roleName);
    const scopes: string[] = [];
    for (const name of organisations) scopes.push((await requireOrganisation(repos, name)).id);
    const revoked = await repos.roles.revoke(user.id, role.name, scopes);
    if (revoked.length === 0) throw new PortcullisError('role-not-held', { email: user.email, role: role.name });
    await repos.audit.append({
      type: 'role.revoked',
      at: ctx.clock(),
      actor,
      subjectUserId: user.id,
      ip: null,
      details: { role: role.name, scopes: revoked },
    });
    return { user, role, revoked };
  });
}

/**
 * Refuses a role change that would leave the user unable to satisfy the method policy (a role whose
 * requirement no method enabled for them meets), with the reason, before anything changes.
 */
async function checkRoleChange(ctx: AppContext, email: string, roleName: string, change: 'grant' | 'revoke', organisations: string[]): Promise<void> {
  const [user, role] = await Promise.all([ctx.store.users.findByEmail(email), ctx.store.roles.find(roleName)]);
  if (!user || !role) return; // the transaction reports the missing user or role
  const held = await ctx.store.roles.assignmentsOf(user.id);
  const names = new Set(held.map((a) => a.role));
  if (change === 'grant') names.add(role.name);
  else {
    const ids = await Promise.all(organisations.map(async (name) => (await ctx.store.organisations.findByName(name))?.id));
    const left = held.filter((a) => a.role === role.name && organisations.length > 0 && !ids.includes(a.scope));
    if (left.length === 0) names.delete(role.name);
  }
  await assertDirectoryChangeKeepsPolicy(ctx, user, { roles: [...names] });
}

/** A fresh activation link for a user (any earlier one stops working). */
export async function issueActivationLink(ctx: AppContext, email: string): Promise<{ user: UserRow; url: string }> {
  return ctx.store.transaction(async (repos) => {
    const user = await requireUser(repos, email);
    return { user, url: await issueActivationToken(ctx, repos, user.id, ctx.clock()) };
  });
}

/** The user an activation token would activate, if it is live. */
export async function findActivation(ctx: AppContext, token: string): Promise<UserRow | undefined> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  const userId = await ctx.store.userTokens.peek(hashToken(token), 'activation', ctx.clock());
  const user = userId ? await ctx.store.users.findById(userId) : undefined;
  return user?.status === 'active' ? user : undefined;
}

/**
 * Sets a first password from an activation link. The password is checked before the token is used, so
 * a rejected password does not spend the link; the token is then used up atomically.
 */
export async function activateAccount(ctx: AppContext, token: string, password: string, ip: string | null): Promise<UserRow> {
  const user = await findActivation(ctx, token);
  if (!user) throw new PortcullisError('activation-link-invalid');
  assertAcceptablePassword(password, ctx.config, user.email);
  const hash = await ctx.hasher.hash(password);
  return ctx.store.transaction(async (repos) => {
    const now = ctx.clock();
    const userId = await repos.userTokens.consume(hashToken(token), 'activation', now);
    if (userId !== user.id) throw new PortcullisError('activation-link-invalid');
    await repos.users.setPasswordHash(user.id, hash, now, true);
    // Any session from before the new password ends (OWASP ASVS 5 V7.4.3).
    await repos.sessions.deleteAllForUser(user.id);
    await repos.audit.append({
      type: 'user.activated',
      at: now,
      actor: { kind: 'user', userId: user.id },
      subjectUserId: user.id,
      ip,
      details: { email: user.email },
    });
    return user;
  });
}

/** "My account": the person's organisation, and their roles with the organisation each is held in. */
export async function accountSummary(ctx: AppContext, user: UserRow) {
  const [organisation, roles] = await Promise.all([ctx.store.organisations.findById(user.organisation_id), ctx.store.roles.assignmentsOf(user.id)]);
  const organisationNames = new Map<string, string>();
  for (const assignment of roles) {
    if (assignment.scope !== '*' && !organisationNames.has(assignment.scope)) {
      organisationNames.set(assignment.scope, (await ctx.store.organisations.findById(assignment.scope))?.name ?? assignment.scope);
    }
  }
  const roleLines = roles.map((r) => (r.scope === '*' ? r.role : `${r.role} (${organisationNames.get(r.scope)})`));
  // An administering role: My account links to the admin console.
  const administrator = administers(authorityOf(roles));
  return { organisation, roleLines, administrator };
}
