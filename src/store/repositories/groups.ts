import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { PortcullisError } from '../../core/errors.js';
import { isUniqueViolation } from '../errors.js';
import type { DatabaseSchema } from '../schema.js';
import { refreshPolicyProfile } from './policy-profile.js';

export interface GroupRow {
  id: string;
  name: string;
  description: string;
}

export function normaliseGroupName(name: string): string {
  return name.trim().normalize('NFC').toLowerCase();
}

/** Groups: named sets of users (an exemption list, a pilot group) that the method policy targets. */
export function createGroupRepository(db: Kysely<DatabaseSchema>) {
  return {
    async create(name: string, description: string, now: Date): Promise<GroupRow> {
      const row = { id: randomUUID(), name: name.trim(), name_normalised: normaliseGroupName(name), description, created_at: now.toISOString() };
      try {
        await db.insertInto('groups').values(row).execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw new PortcullisError('group-exists', { name: row.name });
        throw error;
      }
      return { id: row.id, name: row.name, description };
    },
    async findByName(name: string): Promise<GroupRow | undefined> {
      return db.selectFrom('groups').select(['id', 'name', 'description']).where('name_normalised', '=', normaliseGroupName(name)).executeTakeFirst();
    },
    /** Adds a member; adding someone already in the group changes nothing. */
    async addMember(groupId: string, userId: string, now: Date): Promise<void> {
      await db
        .insertInto('group_members')
        .values({ group_id: groupId, user_id: userId, added_at: now.toISOString() })
        .onConflict((oc) => oc.columns(['group_id', 'user_id']).doNothing())
        .execute();
      await refreshPolicyProfile(db, userId);
    },
    async removeMember(groupId: string, userId: string): Promise<boolean> {
      const result = await db.deleteFrom('group_members').where('group_id', '=', groupId).where('user_id', '=', userId).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
      await refreshPolicyProfile(db, userId);
      return true;
    },
    async groupsOf(userId: string): Promise<GroupRow[]> {
      return db
        .selectFrom('group_members as m')
        .innerJoin('groups as g', 'g.id', 'm.group_id')
        .select(['g.id', 'g.name', 'g.description'])
        .where('m.user_id', '=', userId)
        .orderBy('g.name_normalised')
        .execute();
    },
    async memberIds(groupId: string): Promise<string[]> {
      const rows = await db.selectFrom('group_members').select('user_id').where('group_id', '=', groupId).execute();
      return rows.map((r) => r.user_id);
    },
  };
}
