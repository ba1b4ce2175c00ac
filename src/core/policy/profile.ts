/**
 * A user's policy profile: everything about them that their compliance depends on and that changes
 * only when an administrator or they themselves change something — their roles, their groups and the
 * kinds of second method they have registered — as one short key ("local-admin,user|mfa pilot|9").
 *
 * The store keeps it on the user's row, refreshed in the same transaction as every change to roles,
 * groups or methods, so the compliance report can count users per profile with one indexed GROUP BY
 * and hand each distinct profile to the one evaluator, the core's `evaluatePolicy`. Live exceptions
 * depend on the date and are joined in separately.
 */
import { methodDefinitions, type SecondFactorKind } from '../methods/registry.js';

/** Method kinds as bits (each definition's `profileBit`): a user's kinds fold into one number, in SQL (SUM of DISTINCT bits) or here. */
export const KIND_BITS: ReadonlyArray<readonly [SecondFactorKind, number]> = Object.values(methodDefinitions)
  .flatMap((d) => (d.profileBit === null ? [] : [[d.kind, d.profileBit] as const]))
  .sort((a, b) => a[1] - b[1]);

export interface Profile {
  roles: string[];
  groups: string[];
  kinds: SecondFactorKind[];
}

/** The profile of a user with no roles, groups or methods (a new row, before its first role). */
export const EMPTY_PROFILE = '||0';

export function maskOf(kinds: Iterable<string>): number {
  let mask = 0;
  for (const kind of kinds) mask |= KIND_BITS.find(([k]) => k === kind)?.[1] ?? 0;
  return mask;
}

export function kindsOfMask(mask: number): SecondFactorKind[] {
  return KIND_BITS.filter(([, bit]) => (mask & bit) !== 0).map(([kind]) => kind);
}

/**
 * Code-point order, which is UTF-8 byte order: the order SQLite's BINARY and PostgreSQL's "C" collations
 * give. (JavaScript's default sort is UTF-16 code-unit order, which differs for a character above
 * U+FFFF against one in U+E000–U+FFFF, such as '𝐀' and 'ｆ'.)
 */
function byCodePoint(a: string, b: string): number {
  for (let i = 0; i < a.length && i < b.length; ) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

/** Distinct, in the order SQL's binary collation gives (recomputeAllPolicyProfiles must agree). */
const ordered = (names: Iterable<string>): string[] => [...new Set(names)].sort(byCodePoint);

export function profileKey(input: { roles: Iterable<string>; groups: Iterable<string>; kinds: Iterable<string> }): string {
  return `${ordered(input.roles).join(',')}|${ordered(input.groups).join(',')}|${maskOf(input.kinds)}`;
}

export function parseProfile(key: string): Profile {
  const [roles = '', groups = '', mask = '0'] = key.split('|');
  return { roles: roles ? roles.split(',') : [], groups: groups ? groups.split(',') : [], kinds: kindsOfMask(Number(mask)) };
}
