/**
 * The directory: organisations, users, roles and groups. Roles are data (a row each), and a role may be
 * marked elevated. A role's scope rule says whether a grant names organisations: a local administrator
 * administers only the organisations named in the grant.
 */
import type { ErrorCode, ErrorParams } from './errors.js';

export type UserStatus = 'active' | 'disabled';

export type RoleScope = 'none' | 'optional' | 'required';

export interface RoleDefinition {
  name: string;
  elevated: boolean;
  scope: RoleScope;
  description: string;
}

/** Seeded by the first migration. */
export const builtInRoles: readonly RoleDefinition[] = [
  { name: 'global-admin', elevated: true, scope: 'none', description: 'Administers every organisation and the policy' },
  { name: 'local-admin', elevated: true, scope: 'required', description: 'Administers the users of the organisations named' },
  { name: 'helpdesk', elevated: true, scope: 'optional', description: 'Helps users with their sign-in methods' },
  { name: 'user', elevated: false, scope: 'none', description: 'A mailbox user' },
];

/** Every new user holds this role. */
export const DEFAULT_ROLE = 'user';

/** A role assignment applying everywhere is stored with this scope. */
export const GLOBAL_SCOPE = '*';

export type GrantCheck = { ok: true; scopes: string[] } | { ok: false; code: ErrorCode; params: ErrorParams };

/** Which scopes a grant of `role` to the given organisations (ids) creates. */
export function checkRoleGrant(role: RoleDefinition, organisationIds: readonly string[]): GrantCheck {
  const unique = [...new Set(organisationIds)];
  if (role.scope === 'none' && unique.length > 0) return { ok: false, code: 'role-scope-not-allowed', params: { role: role.name } };
  if (role.scope === 'required' && unique.length === 0) return { ok: false, code: 'role-scope-required', params: { role: role.name } };
  return { ok: true, scopes: unique.length === 0 ? [GLOBAL_SCOPE] : unique };
}

/**
 * What no name may hold (issue #12): control characters (C0, DEL, C1) — a newline lets a formula through
 * the compliance report's CSV guard in a semicolon-separated spreadsheet, splits a log line or a mail
 * header, and an escape recolours a terminal; line and paragraph separators, which are newlines too;
 * the bidirectional embeddings, overrides and isolates, which make a name display as another; and
 * unpaired surrogates, which have no UTF-8 form to store. Joiners (emoji, Persian) stay allowed.
 */
const NOT_IN_NAMES = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\u202a-\u202e\u2066-\u2069]/u;

/** Whether a name holds a character no name may hold (see NOT_IN_NAMES). */
export function hasForbiddenNameCharacters(name: string): boolean {
  return NOT_IN_NAMES.test(name);
}

function isValidName(name: string, max: number): boolean {
  const trimmed = name.trim();
  return trimmed.length >= 1 && trimmed.length <= max && !hasForbiddenNameCharacters(trimmed);
}

export function isValidOrganisationName(name: string): boolean {
  return isValidName(name, 120);
}

export function isValidDisplayName(name: string): boolean {
  return isValidName(name, 200);
}

/** Group names go into policy targets (`group:NAME`) and profiles: no commas or bars. */
export function isValidGroupName(name: string): boolean {
  return /^[\p{L}\p{N}][\p{L}\p{N} ._()&'-]{0,79}$/u.test(name.trim());
}
