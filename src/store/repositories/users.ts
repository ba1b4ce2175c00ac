import type { Kysely } from 'kysely';
import { normaliseEmail } from '../../core/email.js';
import type { UserStatus } from '../../core/directory.js';
import { prepared } from '../prepared.js';
import type { DatabaseSchema, NewUserRow, UserRow } from '../schema.js';

// Every sign-in runs these (src/store/prepared.ts).
const userByEmail = prepared(1, (db, email) => db.selectFrom('users').selectAll().where('email_normalised', '=', email));
const userById = prepared(1, (db, id) => db.selectFrom('users').selectAll().where('id', '=', id));

export interface UserListEntry {
  id: string;
  email: string;
  displayName: string;
  organisation: string;
  status: UserStatus;
  hasPassword: boolean;
  roles: Array<{ role: string; scope: string }>;
  createdAt: string;
}

export function createUserRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insert(row: NewUserRow): Promise<void> {
      await db.insertInto('users').values(row).execute();
    },
    async findByEmail(email: string): Promise<UserRow | undefined> {
      return (await userByEmail(db, normaliseEmail(email))).rows[0];
    },
    async findById(id: string): Promise<UserRow | undefined> {
      return (await userById(db, id)).rows[0];
    },
    async setStatus(id: string, status: UserStatus, now: Date): Promise<void> {
      await db.updateTable('users').set({ status, updated_at: now.toISOString() }).where('id', '=', id).execute();
    },
    async setPasswordHash(id: string, hash: string, now: Date, changed: boolean): Promise<void> {
      const at = now.toISOString();
      await db
        .updateTable('users')
        .set(changed ? { password_hash: hash, password_changed_at: at, updated_at: at } : { password_hash: hash, updated_at: at })
        .where('id', '=', id)
        .execute();
    },
    async setDefaultMethod(id: string, methodId: string | null, now: Date): Promise<void> {
      await db.updateTable('users').set({ default_method_id: methodId, updated_at: now.toISOString() }).where('id', '=', id).execute();
    },
    /** Replaces a hash only if it is still the one read, so a rehash never overwrites a password change. */
    async replacePasswordHash(id: string, previous: string, next: string): Promise<void> {
      await db.updateTable('users').set({ password_hash: next }).where('id', '=', id).where('password_hash', '=', previous).execute();
    },
    async list(options: { limit?: number; organisationId?: string } = {}): Promise<UserListEntry[]> {
      let query = db
        .selectFrom('users as u')
        .innerJoin('organisations as o', 'o.id', 'u.organisation_id')
        .select([
          'u.id',
          'u.email',
          'u.display_name',
          'u.status',
          'u.password_hash',
          'u.created_at',
          'o.name as organisation',
        ])
        .orderBy('u.email_normalised');
      if (options.organisationId) query = query.where('u.organisation_id', '=', options.organisationId);
      if (options.limit) query = query.limit(options.limit);
      const users = await query.execute();
      const assignments = users.length
        ? await db
            .selectFrom('role_assignments as r')
            .leftJoin('organisations as o', 'o.id', 'r.scope')
            .select(['r.user_id', 'r.role_name', 'r.scope', 'o.name as organisation'])
            .where(
              'r.user_id',
              'in',
              users.map((u) => u.id),
            )
            .orderBy('r.role_name')
            .execute()
        : [];
      return users.map((u) => ({
        id: u.id,
        email: u.email,
        displayName: u.display_name,
        organisation: u.organisation,
        status: u.status,
        hasPassword: u.password_hash !== null,
        roles: assignments
          .filter((a) => a.user_id === u.id)
          .map((a) => ({ role: a.role_name, scope: a.scope === '*' ? '*' : (a.organisation ?? a.scope) })),
        createdAt: u.created_at,
      }));
    },
  };
}

export type UserRepository = ReturnType<typeof createUserRepository>;
