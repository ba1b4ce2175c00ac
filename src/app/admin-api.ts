/**
 * The admin API's use cases (issue #15 points 1 and 6): personal API tokens, who holds one and what
 * they may do, and the reads and actions the API offers — always within the holder's scope
 * (src/core/admin/scope.ts), so that guessing another organisation's user id finds no one. The console
 * and the CLI are to share these.
 */
import { randomUUID } from 'node:crypto';
import { auditEventTypes, type Actor } from '../core/audit.js';
import { administers, authorityOf, may, mayChangeRole, visibleOrganisations, type AdminAction, type Authority } from '../core/admin/scope.js';
import { GLOBAL_SCOPE } from '../core/directory.js';
import { methodDefinitions, type SecondFactorKind } from '../core/methods/registry.js';
import { PortcullisError } from '../core/errors.js';
import { hmac, randomToken } from '../crypto/tokens.js';
import type { AdminTokenRow, UserRow } from '../store/schema.js';
import { addGroupMember, removeGroupMember, resetMethods, revokeSessions, unblockPush } from './admin.js';
import { disableUser, enableUser, grantRole, revokeRole } from './directory.js';
import { complianceSummary, complianceTrend, stateSelector, statesOf, type StateName } from './compliance.js';
import { parseProfile } from '../core/policy/profile.js';
import { normaliseEmail } from '../core/email.js';
import { signInReasonText, type SignInReason } from '../core/reasons.js';
import { sql, type SqlBool } from 'kysely';
import type { AppContext } from './context.js';
import { listMethods } from './security-info.js';
import { addException, evaluateUser } from './policy.js';
import { oidcArtefactAdapter } from './oidc/grants.js';
import { issuePass, TAP_MAX_SECONDS, TAP_MIN_SECONDS } from './tap.js';

/** What a token may be used for; an action needs its scope as well as the holder's role. */
export const ADMIN_TOKEN_SCOPES = ['admin:read', 'admin:passes', 'admin:sessions', 'admin:accounts', 'admin:policy'] as const;
export type AdminTokenScope = (typeof ADMIN_TOKEN_SCOPES)[number];

const TOKEN_PREFIX = 'pcat_';
const MAX_TOKEN_DAYS = 365;

const hashOf = (ctx: AppContext, token: string) => hmac(ctx.keys.codeHash, `admin-token:${token}`);

/** `portcullis token add`: a token for an administrator, shown once; only its keyed hash is kept. */
export async function createAdminToken(
  ctx: AppContext,
  email: string,
  input: { name: string; scopes: readonly string[]; days: number },
  actor: Actor,
): Promise<{ id: string; token: string; expiresAt: Date; scopes: AdminTokenScope[] }> {
  const user = await ctx.store.users.findByEmail(email);
  if (!user) throw new PortcullisError('user-not-found', { email: email.trim() });
  const name = input.name.trim();
  if (name.length < 1 || name.length > 80) throw new PortcullisError('admin-token-name-invalid');
  const unknown = input.scopes.filter((s) => !(ADMIN_TOKEN_SCOPES as readonly string[]).includes(s));
  if (unknown.length || input.scopes.length === 0) throw new PortcullisError('admin-token-scope-invalid', { scopes: ADMIN_TOKEN_SCOPES.join(', ') });
  if (!Number.isInteger(input.days) || input.days < 1 || input.days > MAX_TOKEN_DAYS) throw new PortcullisError('admin-token-days-invalid', { max: MAX_TOKEN_DAYS });
  if (!administers(authorityOf(await ctx.store.roles.assignmentsOf(user.id)))) throw new PortcullisError('admin-forbidden');
  const token = `${TOKEN_PREFIX}${randomToken(32)}`;
  const id = randomUUID();
  const now = ctx.clock();
  const expiresAt = new Date(now.getTime() + input.days * 86_400_000);
  const scopes = [...new Set(input.scopes)].sort() as AdminTokenScope[];
  await ctx.store.transaction(async (repos, trx) => {
    await trx
      .insertInto('admin_tokens')
      .values({ id, user_id: user.id, name, token_hash: hashOf(ctx, token), scopes: scopes.join(' '), created_at: now.toISOString(), expires_at: expiresAt.toISOString(), last_used_at: null, revoked_at: null })
      .execute();
    await repos.audit.append({ type: 'admin-token.created', at: now, actor, subjectUserId: user.id, ip: null, details: { tokenId: id, name, scopes, expiresAt: expiresAt.toISOString() } });
  });
  return { id, token, expiresAt, scopes };
}

export async function listAdminTokens(ctx: AppContext): Promise<Array<Omit<AdminTokenRow, 'token_hash'> & { email: string }>> {
  return ctx.store.database.db
    .selectFrom('admin_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select(['t.id', 't.user_id', 't.name', 't.scopes', 't.created_at', 't.expires_at', 't.last_used_at', 't.revoked_at', 'u.email'])
    .orderBy('t.created_at')
    .execute();
}

export async function revokeAdminToken(ctx: AppContext, id: string, actor: Actor): Promise<void> {
  const now = ctx.clock();
  await ctx.store.transaction(async (repos, trx) => {
    const row = await trx.updateTable('admin_tokens').set({ revoked_at: now.toISOString() }).where('id', '=', id).where('revoked_at', 'is', null).returning(['user_id']).executeTakeFirst();
    if (!row) throw new PortcullisError('admin-token-not-found');
    await repos.audit.append({ type: 'admin-token.revoked', at: now, actor, subjectUserId: row.user_id, ip: null, details: { tokenId: id } });
  });
}

/** The administrator a request acts as: their user (none for a service client), what they may do, and what the token does. */
export interface AdminCaller {
  user: UserRow | null;
  authority: Authority;
  scopes: ReadonlySet<AdminTokenScope>;
  actor: Actor;
}

/**
 * `Authorization: Bearer pcat_…`: a live token of an active administrator who meets the policy now (an
 * administrator must be compliant to administer). Every failure is the same 401, so a probe learns nothing.
 */
export async function authenticateAdmin(ctx: AppContext, authorization: string | undefined): Promise<AdminCaller> {
  const oauth = /^Bearer ([A-Za-z0-9_-]{43})$/.exec(authorization ?? '');
  if (oauth) return authenticateClient(ctx, oauth[1]!);
  const match = /^Bearer (pcat_[A-Za-z0-9_-]{43})$/.exec(authorization ?? '');
  if (!match) throw new PortcullisError('admin-token-invalid');
  const now = ctx.clock();
  const row = await ctx.store.database.db
    .selectFrom('admin_tokens')
    .selectAll()
    .where('token_hash', '=', hashOf(ctx, match[1]!))
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now.toISOString())
    .executeTakeFirst();
  const user = row ? await ctx.store.users.findById(row.user_id) : undefined;
  if (!row || !user || user.status !== 'active') throw new PortcullisError('admin-token-invalid');
  const authority = authorityOf(await ctx.store.roles.assignmentsOf(user.id));
  if (!administers(authority)) throw new PortcullisError('admin-forbidden');
  // Meeting every requirement in force: before a requirement's date ("action needed") they still may;
  // in its grace or past it, not until they have set up what it asks.
  const { state } = await evaluateUser(ctx, user);
  if (state.state === 'in-grace' || state.state === 'non-compliant') throw new PortcullisError('admin-not-compliant');
  await ctx.store.database.db.updateTable('admin_tokens').set({ last_used_at: now.toISOString() }).where('id', '=', row.id).execute();
  return { user, authority, scopes: new Set(row.scopes.split(' ') as AdminTokenScope[]), actor: { kind: 'user', userId: user.id } };
}

/**
 * An OAuth access token from Portcullis's own provider: a service client's client credentials token
 * (RFC 6749 §4.4), opaque, found where the provider keeps it — revoked (RFC 7009) or expired, it is gone.
 * Its scopes are the admin scopes it was issued; where it may use them is its `admin-scope`.
 */
async function authenticateClient(ctx: AppContext, token: string): Promise<AdminCaller> {
  const stored = await oidcArtefactAdapter(ctx, { alreadyConsumed: () => new PortcullisError('admin-token-invalid') })('ClientCredentials').find(token);
  const payload = stored as { clientId?: unknown; scope?: unknown; kind?: unknown; exp?: unknown } | undefined;
  if (!payload || payload.kind !== 'ClientCredentials' || typeof payload.clientId !== 'string') throw new PortcullisError('admin-token-invalid');
  if (typeof payload.exp === 'number' && payload.exp * 1000 <= ctx.clock().getTime()) throw new PortcullisError('admin-token-invalid');
  const grant = await ctx.store.database.db.selectFrom('admin_clients').select('organisations').where('client_id', '=', payload.clientId).executeTakeFirst();
  if (!grant) throw new PortcullisError('admin-forbidden');
  const organisations = JSON.parse(grant.organisations) as string[];
  // A service acts as a local administrator would, where it was told: never on the policy or the roles of administrators.
  const authority = authorityOf(organisations.map((scope) => ({ role: 'local-admin', scope })));
  const scopes = String(payload.scope ?? '').split(' ').filter((s): s is AdminTokenScope => (ADMIN_TOKEN_SCOPES as readonly string[]).includes(s));
  return { user: null, authority, scopes: new Set(scopes), actor: { kind: 'client', clientId: payload.clientId } };
}

/** `portcullis client admin-scope`: where a service client may use its admin scopes (every organisation, or these). */
export async function setClientAdminScope(ctx: AppContext, clientId: string, where: { everywhere: boolean; organisations: readonly string[] }, actor: Actor): Promise<string[]> {
  const client = await ctx.store.database.db.selectFrom('oidc_clients').select(['client_id', 'kind']).where('client_id', '=', clientId).executeTakeFirst();
  if (!client) throw new PortcullisError('admin-client-not-found', { clientId });
  if (client.kind !== 'service') throw new PortcullisError('admin-client-not-service');
  if (where.everywhere === where.organisations.length > 0) throw new PortcullisError('admin-client-scope-invalid');
  const ids: string[] = [];
  for (const name of where.organisations) {
    const organisation = await ctx.store.organisations.findByName(name);
    if (!organisation) throw new PortcullisError('organisation-not-found', { name });
    ids.push(organisation.id);
  }
  const organisations = where.everywhere ? [GLOBAL_SCOPE] : [...new Set(ids)].sort();
  const now = ctx.clock();
  await ctx.store.transaction(async (repos, trx) => {
    await trx.deleteFrom('admin_clients').where('client_id', '=', clientId).execute();
    await trx.insertInto('admin_clients').values({ client_id: clientId, organisations: JSON.stringify(organisations), created_at: now.toISOString() }).execute();
    await repos.audit.append({ type: 'admin-client.scope-set', at: now, actor, subjectUserId: null, ip: null, details: { client_id: clientId, organisations } });
  });
  return organisations;
}

/**
 * The admin console's caller: the signed-in person (a full session), if their roles administer anything
 * and they meet the policy's requirements in force. The console does everything their roles allow.
 */
export async function adminCallerForSession(ctx: AppContext, session: { user: UserRow; restricted: unknown }): Promise<AdminCaller> {
  if (session.restricted) throw new PortcullisError('admin-not-compliant');
  const authority = authorityOf(await ctx.store.roles.assignmentsOf(session.user.id));
  if (!administers(authority)) throw new PortcullisError('admin-forbidden');
  const { state } = await evaluateUser(ctx, session.user);
  if (state.state === 'in-grace' || state.state === 'non-compliant') throw new PortcullisError('admin-not-compliant');
  return { user: session.user, authority, scopes: new Set(ADMIN_TOKEN_SCOPES), actor: { kind: 'user', userId: session.user.id } };
}

export function requireScope(caller: AdminCaller, scope: AdminTokenScope): void {
  if (!caller.scopes.has(scope)) throw new PortcullisError('admin-scope-missing', { scope });
}

/** The caller as the actor of one action, with why they did it (kept in every event it writes as `why`). */
export function because(caller: AdminCaller, reason: string): Actor {
  const why = reason.trim().replace(/\s+/g, ' ');
  if (why.length < 3 || why.length > 500) throw new PortcullisError('admin-reason-required');
  const actor = caller.actor;
  return actor.kind === 'user' || actor.kind === 'cli' || actor.kind === 'client' ? { ...actor, reason: why } : actor;
}

/** A user the caller may `action`; one they may not even see is not found, as if there were none. */
async function userFor(ctx: AppContext, caller: AdminCaller, userId: string, action: AdminAction): Promise<UserRow> {
  const user = /^[0-9a-f-]{36}$/.test(userId) ? await ctx.store.users.findById(userId) : undefined;
  if (!user || !may(caller.authority, 'view', user.organisation_id)) throw new PortcullisError('user-not-found', { email: userId });
  if (!may(caller.authority, action, user.organisation_id)) throw new PortcullisError('admin-forbidden');
  return user;
}

export interface AdminUserSummary {
  id: string;
  email: string;
  name: string;
  organisation: string;
  status: string;
  roles: string[];
  groups: string[];
  methods: string[];
  /** Their compliance state now (active accounts; a disabled one is not evaluated). */
  compliance: StateName | null;
}

/** What a user search may be narrowed by (issue #15 point 3). */
export interface UserFilter {
  /** The start of an email address or a name. */
  q?: string;
  organisationId?: string;
  role?: string;
  group?: string;
  /** A method kind the person has registered, or `none` for those with no second method. */
  method?: string;
  status?: 'active' | 'disabled';
  /** Their compliance state now (active accounts only). */
  compliance?: StateName;
  /** The next page: users whose email address sorts after this one. */
  after?: string;
  limit: number;
}

/**
 * Users the caller may see, in email order, narrowed by the filter. Roles, groups and methods are in
 * each user's policy profile (src/core/policy/profile.ts), so those filters, and compliance, become one
 * list of matching profiles — found with one GROUP BY over the (status, profile) index and each profile
 * evaluated once — and the users are then one indexed query (ADR 0006's counting, reused).
 */
export async function searchUsers(ctx: AppContext, caller: AdminCaller, filter: UserFilter): Promise<AdminUserSummary[]> {
  requireScope(caller, 'admin:read');
  const visible = visibleOrganisations(caller.authority);
  if (visible !== 'everywhere' && visible.length === 0) return [];
  const db = ctx.store.database.db;
  const organisations = filter.organisationId ? (visible === 'everywhere' || visible.includes(filter.organisationId) ? [filter.organisationId] : []) : visible === 'everywhere' ? null : visible;
  if (organisations && organisations.length === 0) return [];
  const status = filter.compliance ? 'active' : filter.status;
  if (filter.compliance && filter.status === 'disabled') return [];
  let query = db
    .selectFrom('users as u')
    .innerJoin('organisations as o', 'o.id', 'u.organisation_id')
    .select(['u.id', 'u.email', 'u.display_name', 'o.name as organisation', 'u.status', 'u.policy_profile'])
    .orderBy('u.email_normalised')
    .limit(filter.limit);
  if (organisations) query = query.where('u.organisation_id', 'in', organisations);
  if (status) query = query.where('u.status', '=', status);
  if (filter.role || filter.group || filter.method || filter.compliance) {
    let profileQuery = db.selectFrom('users').select('policy_profile').distinct();
    if (status) profileQuery = profileQuery.where('status', '=', status);
    if (organisations) profileQuery = profileQuery.where('organisation_id', 'in', organisations);
    const candidates = (await profileQuery.execute())
      .map((r) => r.policy_profile)
      .filter((text) => {
        const profile = parseProfile(text);
        if (filter.role && !profile.roles.includes(filter.role)) return false;
        if (filter.group && !profile.groups.includes(filter.group)) return false;
        if (filter.method === 'none' ? profile.kinds.length > 0 : filter.method && !(profile.kinds as string[]).includes(filter.method)) return false;
        return true;
      });
    if (filter.compliance) {
      const { profiles, included, excluded } = await stateSelector(ctx, filter.compliance, candidates, organisations);
      if (profiles.length === 0 && included.length === 0) return [];
      query = query.where((eb) =>
        eb.or([
          ...(profiles.length ? [eb.and([eb('u.policy_profile', 'in', profiles), ...(excluded.length ? [eb('u.id', 'not in', excluded)] : [])])] : []),
          ...(included.length ? [eb('u.id', 'in', included)] : []),
        ]),
      );
    } else {
      if (candidates.length === 0) return [];
      query = query.where('u.policy_profile', 'in', candidates);
    }
  }
  if (filter.q) {
    // The start of an email address or a name: two index ranges (migration 0019), compared byte by byte.
    const from = normaliseEmail(filter.q);
    const to = `${from}\u{10FFFF}`;
    const postgres = ctx.store.database.dialect === 'postgres';
    const c = postgres ? sql` collate "C"` : sql``;
    query = query.where((eb) =>
      eb.or([
        sql<SqlBool>`(u.email_normalised${c} >= ${from} and u.email_normalised${c} < ${to})`,
        sql<SqlBool>`(lower(u.display_name)${c} >= ${from} and lower(u.display_name)${c} < ${to})`,
      ]),
    );
    // PostgreSQL would rather walk the email index in order and filter (it cannot guess how few rows the
    // ranges hold): 0.6 s for a prefix late in the alphabet. Ordered by an expression no index gives, it
    // takes the two ranges (a BitmapOr) and sorts what they find.
    if (postgres) query = query.clearOrderBy().orderBy(sql`u.email_normalised || ''`);
  }
  if (filter.after) query = query.where('u.email_normalised', '>', normaliseEmail(filter.after));
  const rows = await query.execute();
  const states = await statesOf(ctx, rows.filter((r) => r.status === 'active').map((r) => ({ id: r.id, profile: r.policy_profile })));
  return rows.map((r) => {
    const profile = parseProfile(r.policy_profile);
    return { id: r.id, email: r.email, name: r.display_name, organisation: r.organisation, status: r.status, roles: profile.roles, groups: profile.groups, methods: profile.kinds, compliance: states.get(r.id) ?? null };
  });
}

/** Every page of a search, for a CSV of the whole list (flat memory: keyset pages of 1,000). */
export async function* searchUserPages(ctx: AppContext, caller: AdminCaller, filter: Omit<UserFilter, 'limit' | 'after'>): AsyncGenerator<AdminUserSummary[]> {
  let after: string | undefined;
  for (;;) {
    const page = await searchUsers(ctx, caller, { ...filter, limit: 1000, ...(after ? { after } : {}) });
    if (page.length) yield page;
    if (page.length < 1000) return;
    after = normaliseEmail(page[page.length - 1]!.email);
  }
}

/**
 * One user's page: who they are, their roles and groups, methods and default, paired phones, sessions,
 * recent sign-ins with their reasons, exceptions and passes, and where they stand against the policy.
 */
export async function userDetail(ctx: AppContext, caller: AdminCaller, userId: string) {
  requireScope(caller, 'admin:read');
  const user = await userFor(ctx, caller, userId, 'view');
  const db = ctx.store.database.db;
  const now = ctx.clock();
  const [organisation, methods, assignments, groups, devices, sessions, exceptions, pass, evaluation, signIns] = await Promise.all([
    ctx.store.organisations.findById(user.organisation_id),
    listMethods(ctx, user.id, user.default_method_id),
    ctx.store.roles.assignmentsOf(user.id),
    db.selectFrom('group_members as m').innerJoin('groups as g', 'g.id', 'm.group_id').select(['g.name', 'm.added_at']).where('m.user_id', '=', user.id).orderBy('g.name').execute(),
    db.selectFrom('devices').select(['id', 'created_at', 'last_seen_at']).where('user_id', '=', user.id).execute(),
    db.selectFrom('sessions').select(['id', 'created_at', 'last_seen_at', 'expires_at', 'methods', 'ip', 'user_agent']).where('user_id', '=', user.id).where('expires_at', '>', now.toISOString()).orderBy('last_seen_at', 'desc').execute(),
    db.selectFrom('policy_exceptions').select(['id', 'requirement_id', 'until', 'reason', 'created_by', 'created_at', 'revoked_at']).where('user_id', '=', user.id).orderBy('created_at', 'desc').limit(20).execute(),
    db.selectFrom('temporary_access_passes').select(['created_by', 'created_at', 'expires_at', 'used_at', 'multi_use']).where('user_id', '=', user.id).executeTakeFirst(),
    user.status === 'active' ? evaluateUser(ctx, user) : null,
    signInLog(ctx, caller, { userId: user.id, limit: 10 }),
  ]);
  const names = new Map(methods.map((m) => [m.id, m.detail || m.name]));
  const scoped = [...new Set(assignments.map((a) => a.scope).filter((x) => x !== GLOBAL_SCOPE))];
  const scopeNames = new Map(scoped.length ? (await db.selectFrom('organisations').select(['id', 'name']).where('id', 'in', scoped).execute()).map((o) => [o.id, o.name]) : []);
  return {
    id: user.id,
    email: user.email,
    name: user.display_name,
    organisation: organisation?.name ?? '',
    organisationId: user.organisation_id,
    status: user.status,
    pushBlocked: user.push_blocked_at !== null,
    /** What the caller may do to this person (their roles and their token's scopes). */
    actions: allowedActions(caller, user),
    roles: assignments.map((a) => ({ role: a.role, elevated: a.elevated, organisation: a.scope === GLOBAL_SCOPE ? null : (scopeNames.get(a.scope) ?? a.scope) })),
    groups: groups.map((g) => g.name),
    compliance: evaluation
      ? {
          state: evaluation.state.state,
          requirements: evaluation.requirements.map((r) => ({ id: r.id, mode: r.mode, state: r.state.state })),
        }
      : null,
    methods: methods.map((m) => ({ id: m.id, kind: m.kind, name: m.name, detail: m.detail, isDefault: m.isDefault, addedAt: m.addedAt.toISOString(), lastUsedAt: m.lastUsedAt?.toISOString() ?? null })),
    devices: devices.map((d) => ({ id: d.id, name: names.get(d.id) ?? 'Authenticator app', pairedAt: d.created_at, lastSeenAt: d.last_seen_at })),
    sessions: sessions.map((x) => ({ id: x.id.slice(0, 8), startedAt: x.created_at, lastSeenAt: x.last_seen_at, expiresAt: x.expires_at, methods: [...new Set((JSON.parse(x.methods) as Array<{ method: string }>).map((m) => m.method))], ip: x.ip, userAgent: x.user_agent })),
    signIns,
    exceptions: exceptions.map((e) => ({ id: e.id, requirement: e.requirement_id, until: e.until, reason: e.reason, by: e.created_by, at: e.created_at, live: e.revoked_at === null && e.until > now.toISOString(), revokedAt: e.revoked_at })),
    pass: pass ? { issuedBy: pass.created_by, issuedAt: pass.created_at, expiresAt: pass.expires_at, usedAt: pass.used_at, multiUse: pass.multi_use === 1, live: pass.expires_at > now.toISOString() && (pass.used_at === null || pass.multi_use === 1) } : null,
  };
}

const ACTION_SCOPES: ReadonlyArray<readonly [AdminAction, AdminTokenScope]> = [
  ['issue-pass', 'admin:passes'],
  ['revoke-sessions', 'admin:sessions'],
  ['unblock-push', 'admin:accounts'],
  ['require-re-registration', 'admin:accounts'],
  ['grant-exception', 'admin:accounts'],
  ['disable', 'admin:accounts'],
  ['enable', 'admin:accounts'],
  ['change-roles', 'admin:accounts'],
];

function allowedActions(caller: AdminCaller, user: UserRow): AdminAction[] {
  return ACTION_SCOPES.filter(([action, scope]) => caller.scopes.has(scope) && may(caller.authority, action, user.organisation_id)).map(([action]) => action);
}

/** A Temporary Access Pass for the user (10 minutes to 30 days; one-time unless said), shown once. */
export async function issuePassFor(ctx: AppContext, caller: AdminCaller, userId: string, input: { lifetimeMinutes: number; multiUse: boolean; length?: number; reason: string }) {
  requireScope(caller, 'admin:passes');
  const actor = because(caller, input.reason);
  const user = await userFor(ctx, caller, userId, 'issue-pass');
  const lifetimeSeconds = input.lifetimeMinutes * 60;
  if (lifetimeSeconds < TAP_MIN_SECONDS || lifetimeSeconds > TAP_MAX_SECONDS) throw new PortcullisError('tap-lifetime-invalid');
  const { pass, expiresAt } = await issuePass(ctx, user.email, { lifetimeSeconds, multiUse: input.multiUse, ...(input.length ? { length: input.length } : {}) }, actor);
  return { pass, expiresAt: expiresAt.toISOString(), multiUse: input.multiUse };
}

/** Ends the user's sessions, and what applications hold (back-channel logouts). */
export async function revokeSessionsFor(ctx: AppContext, caller: AdminCaller, userId: string, reason: string) {
  requireScope(caller, 'admin:sessions');
  const actor = because(caller, reason);
  const user = await userFor(ctx, caller, userId, 'revoke-sessions');
  const { sessions } = await revokeSessions(ctx, user.email, actor);
  return { sessions };
}

/** The account actions (`admin:accounts`): disable, enable, unblock push, require re-registration, an exception. */
export async function disableFor(ctx: AppContext, caller: AdminCaller, userId: string, reason: string) {
  requireScope(caller, 'admin:accounts');
  const actor = because(caller, reason);
  const user = await userFor(ctx, caller, userId, 'disable');
  const { sessionsEnded } = await disableUser(ctx, user.email, actor);
  return { status: 'disabled', sessionsEnded };
}

export async function enableFor(ctx: AppContext, caller: AdminCaller, userId: string, reason: string) {
  requireScope(caller, 'admin:accounts');
  const actor = because(caller, reason);
  const user = await userFor(ctx, caller, userId, 'enable');
  await enableUser(ctx, user.email, actor);
  return { status: 'active' };
}

export async function unblockPushFor(ctx: AppContext, caller: AdminCaller, userId: string, reason: string) {
  requireScope(caller, 'admin:accounts');
  const actor = because(caller, reason);
  const user = await userFor(ctx, caller, userId, 'unblock-push');
  await unblockPush(ctx, user.email, actor);
  return { pushBlocked: false };
}

/** Every method removed, sessions ended: the person sets up again at their next sign-in (with a pass, where needed). */
export async function requireReRegistrationFor(ctx: AppContext, caller: AdminCaller, userId: string, reason: string) {
  requireScope(caller, 'admin:accounts');
  const actor = because(caller, reason);
  const user = await userFor(ctx, caller, userId, 'require-re-registration');
  const { methods, sessions } = await resetMethods(ctx, user.email, actor);
  return { methodsRemoved: methods, sessionsEnded: sessions };
}

/** An exception to one requirement: 24 hours for a lost phone by default, up to 180 days, always with a reason. */
export async function grantExceptionFor(ctx: AppContext, caller: AdminCaller, userId: string, input: { requirement: string; hours: number; reason: string }) {
  requireScope(caller, 'admin:accounts');
  const actor = because(caller, input.reason);
  const user = await userFor(ctx, caller, userId, 'grant-exception');
  const until = new Date(ctx.clock().getTime() + input.hours * 3_600_000);
  const { id } = await addException(ctx, { email: user.email, requirementId: input.requirement, until, reason: input.reason }, actor);
  return { id, until: until.toISOString() };
}

/**
 * A role given or taken away (issue #15 point 3: "roles and groups within the policy's rules"): the
 * caller's own roles are not theirs to change here; who may grant what is `mayChangeRole`; a change that
 * would leave the person unable to meet the policy is refused by the directory, with the reason.
 */
export async function changeRoleFor(
  ctx: AppContext,
  caller: AdminCaller,
  userId: string,
  input: { change: 'grant' | 'revoke'; role: string; organisations: readonly string[]; reason: string },
) {
  requireScope(caller, 'admin:accounts');
  const actor = because(caller, input.reason);
  const user = await userFor(ctx, caller, userId, 'change-roles');
  if (caller.user?.id === user.id) throw new PortcullisError('admin-own-roles');
  const role = await ctx.store.roles.find(input.role);
  if (!role) throw new PortcullisError('role-not-found', { role: input.role });
  const scopes: string[] = [];
  for (const name of input.organisations) {
    const organisation = await ctx.store.organisations.findByName(name);
    if (!organisation) throw new PortcullisError('organisation-not-found', { name });
    scopes.push(organisation.id);
  }
  if (!mayChangeRole(caller.authority, role.name, user.organisation_id, scopes)) throw new PortcullisError('admin-role-not-allowed', { role: role.name });
  if (input.change === 'grant') {
    const { granted } = await grantRole(ctx, user.email, role.name, [...input.organisations], actor);
    return { role: role.name, granted: granted.length };
  }
  const { revoked } = await revokeRole(ctx, user.email, role.name, [...input.organisations], actor);
  return { role: role.name, revoked: revoked.length };
}

/** A group joined or left, within the policy's rules (as roles); groups change nobody's authority. */
export async function changeGroupFor(ctx: AppContext, caller: AdminCaller, userId: string, input: { change: 'add' | 'remove'; group: string; reason: string }) {
  requireScope(caller, 'admin:accounts');
  const actor = because(caller, input.reason);
  const user = await userFor(ctx, caller, userId, 'change-roles');
  if (input.change === 'add') await addGroupMember(ctx, input.group, user.email, actor);
  else await removeGroupMember(ctx, input.group, user.email, actor);
  return { group: input.group, member: input.change === 'add' };
}

/** The roles and groups there are, for the console's choices. */
export async function directoryChoices(ctx: AppContext, caller: AdminCaller) {
  requireScope(caller, 'admin:read');
  const [roles, groups] = await Promise.all([ctx.store.roles.list(), ctx.store.database.db.selectFrom('groups').select(['name', 'description']).orderBy('name').execute()]);
  return { roles: roles.map((r) => ({ name: r.name, elevated: r.elevated, scope: r.scope, description: r.description })), groups };
}

/** Every kind of audit event, for the console's filter. */
export const AUDIT_EVENT_TYPES: readonly string[] = [...auditEventTypes].sort();

/** The organisations the caller may see, by name (the console's filters). */
export async function organisationsFor(ctx: AppContext, caller: AdminCaller): Promise<Array<{ id: string; name: string }>> {
  requireScope(caller, 'admin:read');
  const visible = visibleOrganisations(caller.authority);
  if (visible !== 'everywhere' && visible.length === 0) return [];
  let query = ctx.store.database.db.selectFrom('organisations').select(['id', 'name']).orderBy('name');
  if (visible !== 'everywhere') query = query.where('id', 'in', visible);
  return query.execute();
}

export interface LogFilter {
  userId?: string;
  /** The subject's email address (exact, any case): the console's filter. */
  email?: string;
  organisationId?: string;
  limit: number;
  /** Events before this id (the next page). */
  before?: number;
}

/** Audit events whose subject the caller may see (events about no one person: global administrators only). */
function scopedEvents(ctx: AppContext, caller: AdminCaller, filter: LogFilter) {
  const visible = visibleOrganisations(caller.authority);
  let query = ctx.store.database.db
    .selectFrom('audit_events as e')
    .leftJoin('users as u', 'u.id', 'e.subject_user_id')
    .leftJoin('organisations as o', 'o.id', 'u.organisation_id')
    .leftJoin('users as a', (join) => join.onRef('a.id', '=', 'e.actor_id').on('e.actor_type', '=', 'user'))
    .select(['e.id', 'e.type', 'e.at', 'e.actor_type', 'e.actor_id', 'e.ip', 'e.details', 'u.email', 'o.name as organisation', 'a.email as actorEmail'])
    .orderBy('e.id', 'desc')
    .limit(filter.limit);
  if (visible !== 'everywhere') query = query.where('u.organisation_id', 'in', visible.length ? visible : ['\u0000none']);
  if (filter.userId) query = query.where('e.subject_user_id', '=', filter.userId);
  if (filter.email) query = query.where('u.email_normalised', '=', filter.email.trim().toLowerCase());
  if (filter.organisationId) query = query.where('u.organisation_id', '=', filter.organisationId);
  if (filter.before !== undefined) query = query.where('e.id', '<', filter.before);
  return query;
}

/**
 * The sign-in log (issue #15 point 5): each attempt's result and reason, by user, organisation, method
 * and result. Failures for an address that is no account are about no one: only global administrators see them.
 */
export async function signInLog(ctx: AppContext, caller: AdminCaller, filter: LogFilter & { method?: string; result?: 'success' | 'failure' }) {
  requireScope(caller, 'admin:read');
  let query = scopedEvents(ctx, caller, filter).where('e.type', 'in', filter.result === 'success' ? ['sign-in.succeeded'] : filter.result === 'failure' ? ['sign-in.failed'] : ['sign-in.succeeded', 'sign-in.failed']);
  // The method as a JSON string token of the details ("method":"sms", "methods":["password","sms"]).
  if (filter.method) query = query.where('e.details', 'like', `%"${filter.method}"%`);
  return (await query.execute()).map((row) => {
    const details = JSON.parse(row.details) as { reason?: string; method?: string; methods?: string[]; email?: string; passwordless?: boolean };
    return {
      id: row.id,
      at: row.at,
      result: row.type === 'sign-in.succeeded' ? 'success' : 'failure',
      reason: row.type === 'sign-in.succeeded' ? 'success' : (details.reason ?? 'unknown'),
      /** The reason in words (the sign-in catalogue's), for the console. */
      reasonText: row.type === 'sign-in.succeeded' ? 'Signed in' : (signInReasonText[details.reason as SignInReason] ?? details.reason ?? 'Unknown'),
      methods: details.methods ?? (details.method ? [details.method] : []),
      email: row.email ?? details.email ?? null,
      organisation: row.organisation ?? null,
      ip: row.ip,
    };
  });
}

/** The audit log (the tamper-evident chain: `portcullis audit verify`), filtered and scoped. */
export async function auditLog(ctx: AppContext, caller: AdminCaller, filter: LogFilter & { type?: string }) {
  requireScope(caller, 'admin:read');
  let query = scopedEvents(ctx, caller, filter);
  if (filter.type) query = query.where('e.type', '=', filter.type);
  return (await query.execute()).map((row) => ({
    id: row.id,
    at: row.at,
    type: row.type,
    actor: row.actor_id ? `${row.actor_type}:${row.actor_id}` : row.actor_type,
    /** Who, in words: an administrator's email address, the client's id, or the system. */
    actorName: row.actorEmail ?? (row.actor_id ? `${row.actor_type} ${row.actor_id}` : row.actor_type),
    subject: row.email ?? null,
    organisation: row.organisation ?? null,
    ip: row.ip,
    details: JSON.parse(row.details) as Record<string, unknown>,
  }));
}

/**
 * The dashboard (issue #15 point 2): registration and compliance at a glance for the caller's
 * organisations (every one, for a global administrator) — users and elevated users by state, the method
 * mix, those without a method, and the next deadline with the number at risk — from the same per-profile
 * counting as the compliance report.
 */
export async function dashboard(ctx: AppContext, caller: AdminCaller) {
  requireScope(caller, 'admin:read');
  const visible = visibleOrganisations(caller.authority);
  const at = ctx.clock();
  const summary = await complianceSummary(ctx, at, visible === 'everywhere' ? undefined : visible);
  const upcoming = summary.requirements
    .filter((r) => r.mode === 'enforce' && Date.parse(r.date) > at.getTime())
    .sort((a, b) => Date.parse(a.date) - Date.parse(b.date))[0];
  return {
    at: summary.at,
    policyVersion: summary.policyVersion,
    users: summary.users,
    elevated: summary.elevated,
    withoutMethod: summary.withoutMethod,
    methodMix: summary.methodMix,
    /** The method mix by name, most used first (the console's chart and table). */
    methods: Object.entries(summary.methodMix)
      .map(([kind, users]) => ({ kind, name: methodDefinitions[kind as SecondFactorKind]?.name ?? kind, users: users ?? 0 }))
      .sort((a, b) => b.users - a.users),
    nextDeadline: upcoming
      ? { requirement: upcoming.id, name: upcoming.name, date: upcoming.date, daysLeft: Math.ceil((Date.parse(upcoming.date) - at.getTime()) / 86_400_000), atRisk: upcoming.byState['action-needed'] + upcoming.byState['in-grace'] + upcoming.byState['non-compliant'] }
      : null,
    requirements: summary.requirements,
    /** The last 30 days' daily snapshots of the same organisations, oldest first. */
    trend: await complianceTrend(ctx, visible === 'everywhere' ? undefined : visible),
  };
}
