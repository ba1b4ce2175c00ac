/**
 * Keeps `users.policy_profile` (src/core/policy/profile.ts) in step with the user's roles, groups and
 * active methods. Every repository function that changes one of those calls `refreshPolicyProfile` on
 * the same connection or transaction, so the profile is never committed out of step.
 */
import { sql, type Kysely } from 'kysely';
import { KIND_BITS, profileKey } from '../../core/policy/profile.js';
import type { Dialect } from '../database.js';
import type { DatabaseSchema } from '../schema.js';

export async function refreshPolicyProfile(db: Kysely<DatabaseSchema>, userId: string): Promise<void> {
  const [roles, groups, methods] = await Promise.all([
    db.selectFrom('role_assignments').select('role_name').where('user_id', '=', userId).execute(),
    db.selectFrom('group_members as m').innerJoin('groups as g', 'g.id', 'm.group_id').select('g.name').where('m.user_id', '=', userId).execute(),
    db.selectFrom('methods').select('kind').where('user_id', '=', userId).where('status', '=', 'active').execute(),
  ]);
  const key = profileKey({ roles: roles.map((r) => r.role_name), groups: groups.map((g) => g.name), kinds: methods.map((m) => m.kind) });
  await db.updateTable('users').set({ policy_profile: key }).where('id', '=', userId).execute();
}

/**
 * Active users counted per profile: one GROUP BY over the `(status, policy_profile)` index (ADR 0006).
 * The compliance summary and `policy check`'s count of people a document would strand both start here.
 */
export async function activeProfileCounts(db: Kysely<DatabaseSchema>, organisations?: readonly string[]): Promise<Array<{ profile: string; users: number }>> {
  let query = db
    .selectFrom('users')
    .select((eb) => ['policy_profile as profile', eb.fn.countAll<number | string>().as('users')])
    .where('status', '=', 'active');
  // An administrator's own organisations (the admin console's dashboard): by the organisation index.
  if (organisations) query = query.where('organisation_id', 'in', organisations.length ? organisations : ['\u0000none']);
  const rows = await query.groupBy('policy_profile').execute();
  return rows.map((r) => ({ profile: r.profile, users: Number(r.users) }));
}

/**
 * Every user's profile at once, in SQL (the migration that adds the column, and a check in the tests
 * that the two agree): the same key as `profileKey`, with binary ordering on both databases.
 */
export async function recomputeAllPolicyProfiles(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const agg = (column: string) =>
    dialect === 'postgres'
      ? sql`string_agg(${sql.ref(column)}, ',' ORDER BY ${sql.ref(column)} COLLATE "C")`
      : sql`group_concat(${sql.ref(column)}, ',' ORDER BY ${sql.ref(column)})`;
  const mask = sql`SUM(DISTINCT CASE kind ${sql.join(
    KIND_BITS.map(([kind, bit]) => sql`WHEN ${sql.lit(kind)} THEN ${sql.lit(bit)}`),
    sql` `,
  )} ELSE 0 END)`;
  await sql`
    UPDATE users SET policy_profile =
      COALESCE((SELECT ${agg('role_name')} FROM (SELECT DISTINCT role_name FROM role_assignments a WHERE a.user_id = users.id) r), '')
      || '|' ||
      COALESCE((SELECT ${agg('name')} FROM (SELECT DISTINCT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = users.id) x), '')
      || '|' ||
      CAST(COALESCE((SELECT ${mask} FROM methods me WHERE me.user_id = users.id AND me.status = 'active'), 0) AS TEXT)
  `.execute(db);
}
