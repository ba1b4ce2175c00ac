/**
 * Who a policy document would strand (issue #12): people with registered second methods of which it
 * enables none for them. They can no longer sign in fully with what they have — during grace only into
 * a session that sets up an allowed method, after it only with a Temporary Access Pass — so
 * `policy check` and `policy apply` count them, by role, before the document is applied.
 *
 * The question depends only on roles, groups and registered kinds — a policy profile (profile.ts) — and
 * not on dates or exceptions (an exception exempts from a requirement; it enables no method), so the
 * caller counts users per profile in SQL and this decides each distinct profile once (ADR 0006).
 */
import type { CompiledPolicy } from './document.js';
import { enabledMethods } from './evaluate.js';
import type { Profile } from './profile.js';
import { onlyDisabledMethods } from './session.js';

/** How someone holding no role at all is listed (the built-in roles are lower-case words: none is called this). */
export const NO_ROLE = '(no role)';

export interface StrandedCount {
  /** People the document would strand. */
  total: number;
  /** Per role they hold, most first (someone with several roles is counted under each). */
  byRole: Array<{ role: string; people: number }>;
}

/** Whether a person of this profile has registered methods and the policy enables none of them for them. */
export function strands(policy: CompiledPolicy, profile: Profile, elevatedRoles: ReadonlySet<string>): boolean {
  const subject = { roles: profile.roles, groups: profile.groups, elevated: profile.roles.some((r) => elevatedRoles.has(r)) };
  return onlyDisabledMethods(profile.kinds.map((kind) => ({ kind })), enabledMethods(policy, subject));
}

export function countStranded(policy: CompiledPolicy, profiles: Iterable<{ profile: Profile; users: number }>, elevatedRoles: ReadonlySet<string>): StrandedCount {
  let total = 0;
  const perRole = new Map<string, number>();
  for (const { profile, users } of profiles) {
    if (users <= 0 || !strands(policy, profile, elevatedRoles)) continue;
    total += users;
    for (const role of profile.roles.length ? new Set(profile.roles) : [NO_ROLE]) perRole.set(role, (perRole.get(role) ?? 0) + users);
  }
  const byRole = [...perRole].map(([role, people]) => ({ role, people })).sort((a, b) => b.people - a.people || (a.role < b.role ? -1 : a.role > b.role ? 1 : 0));
  return { total, byRole };
}
