import type { Kysely } from 'kysely';
import type { RoleDefinition } from '../../core/directory.js';
import type { DatabaseSchema } from '../schema.js';
import { refreshPolicyProfile } from './policy-profile.js';

function toDefinition(row: { name: string; elevated: number; scope: RoleDefinition['scope']; description: string }): RoleDefinition {
  return { name: row.name, elevated: row.elevated === 1, scope: row.scope, description: row.description };
}

export function createRoleRepository(db: Kysely<DatabaseSchema>) {
  return {
    async find(name: string): Promise<RoleDefinition | undefined> {
      const row = await db.selectFrom('roles').selectAll().where('name', '=', name.trim().toLowerCase()).executeTakeFirst();
      return row ? toDefinition(row) : undefined;
    },
    async list(): Promise<RoleDefinition[]> {
      return (await db.selectFrom('roles').selectAll().orderBy('name').execute()).map(toDefinition);
    },
    /** Adds the assignments not already held; returns the scopes newly granted. */
    async grant(userId: string, role: string, scopes: readonly string[], now: Date): Promise<string[]> {
      const held = await db
        .selectFrom('role_assignments')
        .select('scope')
        .where('user_id', '=', userId)
        .where('role_name', '=', role)
        .execute();
      const heldScopes = new Set(held.map((h) => h.scope));
      const fresh = scopes.filter((s) => !heldScopes.has(s));
      if (fresh.length) {
        await db
          .insertInto('role_assignments')
          .values(fresh.map((scope) => ({ user_id: userId, role_name: role, scope, created_at: now.toISOString() })))
          .onConflict((oc) => oc.doNothing())
          .execute();
        await refreshPolicyProfile(db, userId);
      }
      return fresh;
    },
    /** Removes the assignments in `scopes` (all of the role's assignments when none are named); returns those removed. */
    async revoke(userId: string, role: string, scopes: readonly string[]): Promise<string[]> {
      let query = db.deleteFrom('role_assignments').where('user_id', '=', userId).where('role_name', '=', role);
      if (scopes.length) query = query.where('scope', 'in', [...scopes]);
      const removed = await query.returning('scope').execute();
      if (removed.length) await refreshPolicyProfile(db, userId);
      return removed.map((r) => r.scope);
    },
    /** Active users who administer an organisation: global administrators, and its local administrators. */
    async administratorsFor(organisationId: string): Promise<Array<{ id: string; email: string; display_name: string }>> {
      return db
        .selectFrom('role_assignments as a')
        .innerJoin('users as u', 'u.id', 'a.user_id')
        .select(['u.id', 'u.email', 'u.display_name'])
        .distinct()
        .where('u.status', '=', 'active')
        .where((eb) => eb.or([eb('a.role_name', '=', 'global-admin'), eb.and([eb('a.role_name', '=', 'local-admin'), eb('a.scope', '=', organisationId)])]))
        .orderBy('u.email')
        .execute();
    },
    async assignmentsOf(userId: string): Promise<Array<{ role: string; scope: string; elevated: boolean }>> {
      const rows = await db
        .selectFrom('role_assignments as a')
        .innerJoin('roles as r', 'r.name', 'a.role_name')
        .select(['a.role_name', 'a.scope', 'r.elevated'])
        .where('a.user_id', '=', userId)
        .orderBy('a.role_name')
        .execute();
      return rows.map((r) => ({ role: r.role_name, scope: r.scope, elevated: r.elevated === 1 }));
    },
  };
}

export type RoleRepository = ReturnType<typeof createRoleRepository>;
