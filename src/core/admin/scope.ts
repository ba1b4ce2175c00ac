/**
 * Who may do what to whom in the admin console, the admin API and the CLI (issue #15 point 1), decided
 * once here and enforced in the use cases: a global administrator everything, everywhere; a local
 * administrator the users of the organisations their role names; the helpdesk may look people up and
 * issue Temporary Access Passes (where its role names organisations, only there) but not change the
 * policy or anyone's roles. Pure: it takes the role grants, never reads them.
 */
import { GLOBAL_SCOPE } from '../directory.js';

export const ADMIN_ACTIONS = [
  'view',
  'issue-pass',
  'revoke-sessions',
  'unblock-push',
  'require-re-registration',
  'grant-exception',
  'disable',
  'enable',
  'change-roles',
  'edit-policy',
] as const;

export type AdminAction = (typeof ADMIN_ACTIONS)[number];

/** What each administering role may do; a role not listed administers nothing. */
const ROLE_ACTIONS: Record<string, readonly AdminAction[]> = {
  'global-admin': ADMIN_ACTIONS,
  'local-admin': ['view', 'issue-pass', 'revoke-sessions', 'unblock-push', 'require-re-registration', 'grant-exception', 'disable', 'enable', 'change-roles'],
  helpdesk: ['view', 'issue-pass'],
};

/** Per action, where it may be done: everywhere, or in these organisations (ids). */
export type Authority = ReadonlyMap<AdminAction, 'everywhere' | ReadonlySet<string>>;

export function authorityOf(grants: ReadonlyArray<{ role: string; scope: string }>): Authority {
  const authority = new Map<AdminAction, 'everywhere' | Set<string>>();
  for (const grant of grants) {
    for (const action of ROLE_ACTIONS[grant.role] ?? []) {
      const current = authority.get(action);
      if (current === 'everywhere') continue;
      if (grant.scope === GLOBAL_SCOPE) authority.set(action, 'everywhere');
      else authority.set(action, new Set([...(current ?? []), grant.scope]));
    }
  }
  return authority;
}

/** Whether the holder administers anything at all (the console's door). */
export function administers(authority: Authority): boolean {
  return authority.has('view');
}

/** Whether `action` may be done to a user of `organisationId` (null: an action on no one user, such as the policy). */
export function may(authority: Authority, action: AdminAction, organisationId: string | null): boolean {
  const where = authority.get(action);
  if (!where) return false;
  if (where === 'everywhere') return true;
  return organisationId !== null && where.has(organisationId);
}

/** The organisations whose users the holder may see: every one, or these. */
export function visibleOrganisations(authority: Authority): 'everywhere' | string[] {
  const where = authority.get('view');
  if (!where) return [];
  return where === 'everywhere' ? 'everywhere' : [...where].sort();
}

/**
 * Whether the holder may give or take away `role` for a user of `userOrganisationId`, scoped to
 * `scopes` (organisation ids; none for an unscoped grant). The policy's rules for roles are checked
 * apart (a role whose requirement the person could not meet is refused by the directory). Here: only
 * those who change roles everywhere (global administrators) touch global grants or the global
 * administrator role; a local administrator grants roles only within the organisations they administer.
 */
export function mayChangeRole(authority: Authority, role: string, userOrganisationId: string, scopes: readonly string[]): boolean {
  const where = authority.get('change-roles');
  if (!where || !may(authority, 'change-roles', userOrganisationId)) return false;
  if (where === 'everywhere') return true;
  if (role === 'global-admin') return false;
  // An administering role (local administrator, helpdesk) must be scoped to organisations of the holder's.
  if (ROLE_ACTIONS[role] && scopes.length === 0) return false;
  return scopes.every((id) => where.has(id));
}
