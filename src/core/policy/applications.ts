/**
 * Applications in the policy (issue #13 point 4; docs/policy.md#applications): a requirement may target
 * sign-ins to registered applications with `client:KEY`, as Entra Conditional Access's "target resources".
 *
 * A target set has two parts. Its user part (`all`, `elevated`, `role:`, `group:`) selects people; its
 * client part (`client:KEY`) selects sign-ins to applications:
 * - no client target: the requirement applies to signing in to Portcullis itself, and so to everything;
 * - `client:` targets in `include`: only to sign-ins to one of those applications, for the people the
 *   user part selects (no user part: everyone);
 * - `client:` targets only in `exclude`: to sign-ins to every application but those. Not to Portcullis's
 *   own sign-in, which every sign-in to an application starts with: the exemption could never hold.
 *
 * The applications of an evaluation are the keys of the sign-in's client (one, at the interaction) or
 * of the clients a person uses (the report); keys the policy does not name fold into `OTHER_APPLICATION`.
 */
import { isClientTarget, type CompiledPolicy, type TargetSet } from './document.js';

export { isClientTarget };

/** Stands for every application the policy does not name (no key can be `*`). */
export const OTHER_APPLICATION = '*';

export const clientKeyOf = (target: string): string => target.slice('client:'.length);

export interface ApplicationScope {
  include: string[];
  exclude: string[];
}

/** The client part of a target set; null when it has none (Portcullis itself, and so everything). */
export function applicationScope(set: TargetSet): ApplicationScope | null {
  const include = set.include.filter(isClientTarget).map(clientKeyOf);
  const exclude = set.exclude.filter(isClientTarget).map(clientKeyOf);
  return include.length || exclude.length ? { include, exclude } : null;
}

/**
 * Whether a set's client part holds for a sign-in to these applications. `applications` undefined is a
 * sign-in to Portcullis itself (Security info, the sign-in pages), which only sets without a client part
 * reach.
 */
export function appliesToApplications(set: TargetSet, applications: readonly string[] | undefined): boolean {
  const scope = applicationScope(set);
  if (!scope) return true;
  if (!applications) return false;
  return applications.some((key) => (scope.include.length === 0 || scope.include.includes(key)) && !scope.exclude.includes(key));
}

/** The application keys the requirements name, sorted. */
export function namedApplications(policy: Pick<CompiledPolicy, 'requirements'>): string[] {
  const keys = new Set<string>();
  for (const r of policy.requirements) for (const t of [...r.include, ...r.exclude]) if (isClientTarget(t)) keys.add(clientKeyOf(t));
  return [...keys].sort();
}

/** Whether any requirement targets applications at all (the report's fast path skips them otherwise). */
export function hasApplicationRequirements(policy: Pick<CompiledPolicy, 'requirements'>): boolean {
  return policy.requirements.some((r) => applicationScope(r) !== null);
}

/**
 * The applications a person uses, as evaluation reads them: the named keys they use, and
 * `OTHER_APPLICATION` once for any number of others. Sorted, so that it can key a cache.
 */
export function applicationsFor(used: Iterable<string>, named: ReadonlySet<string>): string[] {
  const result = new Set<string>();
  for (const key of used) result.add(named.has(key) ? key : OTHER_APPLICATION);
  return [...result].sort();
}
