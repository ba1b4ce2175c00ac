import type { Kysely } from 'kysely';
import { prepared } from '../prepared.js';
import type { DatabaseSchema, PolicyExceptionRow, TemporaryAccessPassRow } from '../schema.js';

// A sign-in evaluates the policy for its user (src/store/prepared.ts).
const liveExceptionsOf = prepared(2, (db, userId, now) =>
  db.selectFrom('policy_exceptions').selectAll().where('user_id', '=', userId).where('revoked_at', 'is', null).where('until', '>', now),
);
const snoozesOf = prepared(1, (db, userId) => db.selectFrom('campaign_snoozes').select(['campaign_id', 'count', 'until']).where('user_id', '=', userId));
const passOf = prepared(1, (db, userId) => db.selectFrom('temporary_access_passes').selectAll().where('user_id', '=', userId));

export function createPolicyRepository(db: Kysely<DatabaseSchema>) {
  return {
    async latest(): Promise<{ version: number; document: string; applied_by: string; applied_at: string } | undefined> {
      return db.selectFrom('policy_versions').select(['version', 'document', 'applied_by', 'applied_at']).orderBy('version', 'desc').limit(1).executeTakeFirst();
    },
    /** The next version number; the primary key refuses a second writer of the same number. */
    async insertVersion(row: { document: string; appliedBy: string; now: Date; comment: string }): Promise<number> {
      const last = await db.selectFrom('policy_versions').select((eb) => eb.fn.max('version').as('v')).executeTakeFirst();
      const version = Number(last?.v ?? 0) + 1;
      await db.insertInto('policy_versions').values({ version, document: row.document, applied_by: row.appliedBy, applied_at: row.now.toISOString(), comment: row.comment }).execute();
      return version;
    },
    async versions(): Promise<Array<{ version: number; applied_by: string; applied_at: string; comment: string }>> {
      return db.selectFrom('policy_versions').select(['version', 'applied_by', 'applied_at', 'comment']).orderBy('version', 'desc').execute();
    },
    async insertException(row: Omit<PolicyExceptionRow, 'revoked_at' | 'revoked_by'>): Promise<void> {
      await db.insertInto('policy_exceptions').values({ ...row, revoked_at: null, revoked_by: null }).execute();
    },
    async liveExceptions(userId: string, now: Date): Promise<PolicyExceptionRow[]> {
      return (await liveExceptionsOf(db, userId, now.toISOString())).rows;
    },
    async exceptions(filter: { userId?: string; includeEnded?: boolean; now: Date }): Promise<Array<PolicyExceptionRow & { email: string }>> {
      let query = db.selectFrom('policy_exceptions as e').innerJoin('users as u', 'u.id', 'e.user_id').selectAll('e').select('u.email').orderBy('e.created_at', 'desc');
      if (filter.userId) query = query.where('e.user_id', '=', filter.userId);
      if (!filter.includeEnded) query = query.where('e.revoked_at', 'is', null).where('e.until', '>', filter.now.toISOString());
      return query.execute();
    },
    async revokeException(id: string, by: string, now: Date): Promise<PolicyExceptionRow | undefined> {
      return db
        .updateTable('policy_exceptions')
        .set({ revoked_at: now.toISOString(), revoked_by: by })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
    },
    async snoozes(userId: string): Promise<Array<{ campaign_id: string; count: number; until: string | null }>> {
      return (await snoozesOf(db, userId)).rows;
    },
    async snooze(userId: string, campaignId: string, until: Date): Promise<number> {
      const row = await db
        .insertInto('campaign_snoozes')
        .values({ user_id: userId, campaign_id: campaignId, count: 1, until: until.toISOString() })
        .onConflict((oc) => oc.columns(['user_id', 'campaign_id']).doUpdateSet((eb) => ({ count: eb('campaign_snoozes.count', '+', 1), until: until.toISOString() })))
        .returning('count')
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },
    async replacePass(row: TemporaryAccessPassRow): Promise<void> {
      await db.deleteFrom('temporary_access_passes').where('user_id', '=', row.user_id).execute();
      await db.insertInto('temporary_access_passes').values(row).execute();
    },
    async pass(userId: string): Promise<TemporaryAccessPassRow | undefined> {
      return (await passOf(db, userId)).rows[0];
    },
    /** Uses a one-time pass up atomically (of two racing sign-ins, one wins); a multi-use pass just records its use. */
    async usePass(userId: string, passHash: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('temporary_access_passes')
        .set({ used_at: now.toISOString() })
        .where('user_id', '=', userId)
        .where('pass_hash', '=', passHash)
        .where('expires_at', '>', now.toISOString())
        .where((eb) => eb.or([eb('multi_use', '=', 1), eb('used_at', 'is', null)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async deletePass(userId: string): Promise<void> {
      await db.deleteFrom('temporary_access_passes').where('user_id', '=', userId).execute();
    },
  };
}

export type PolicyRepository = ReturnType<typeof createPolicyRepository>;
