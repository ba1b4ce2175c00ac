import type { Kysely } from 'kysely';
import { write } from '../pipeline.js';
import type { DatabaseSchema, DeviceEnrolmentRow, DeviceRow, PushChallengeRow, PushChallengeStatus } from '../schema.js';

export function createPushRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insertEnrolment(row: { id: string; userId: string; codeHash: string; now: Date; expiresAt: Date }): Promise<void> {
      await db
        .insertInto('device_enrolments')
        .values({ id: row.id, user_id: row.userId, code_hash: row.codeHash, created_at: row.now.toISOString(), expires_at: row.expiresAt.toISOString(), used_at: null, method_id: null, test_challenge_id: null })
        .execute();
    },
    async findEnrolment(id: string, userId: string): Promise<DeviceEnrolmentRow | undefined> {
      return db.selectFrom('device_enrolments').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    },
    /** Uses an activation code up, atomically: of two racing pairings exactly one gets the enrolment. */
    async consumeEnrolment(codeHash: string, now: Date): Promise<DeviceEnrolmentRow | undefined> {
      return db
        .updateTable('device_enrolments')
        .set({ used_at: now.toISOString() })
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now.toISOString())
        .returningAll()
        .executeTakeFirst();
    },
    async completeEnrolment(id: string, methodId: string, testChallengeId: string): Promise<void> {
      await db.updateTable('device_enrolments').set({ method_id: methodId, test_challenge_id: testChallengeId }).where('id', '=', id).execute();
    },
    async insertDevice(row: { id: string; userId: string; publicJwk: string; subscriptionSealed: string | null; now: Date }): Promise<void> {
      await db
        .insertInto('devices')
        .values({ id: row.id, user_id: row.userId, public_jwk: row.publicJwk, push_subscription_sealed: row.subscriptionSealed, created_at: row.now.toISOString(), last_seen_at: row.now.toISOString() })
        .execute();
    },
    async findDevice(id: string): Promise<DeviceRow | undefined> {
      return db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
    },
    /** Nobody reads it back in the request: it goes alongside the request's other statements (src/store/pipeline.ts). */
    async touchDevice(id: string, now: Date): Promise<void> {
      await write(db, async (on) => void (await on.updateTable('devices').set({ last_seen_at: now.toISOString() }).where('id', '=', id).execute()));
    },
    async setSubscription(id: string, sealed: string | null): Promise<void> {
      await db.updateTable('devices').set({ push_subscription_sealed: sealed }).where('id', '=', id).execute();
    },
    async insertChallenge(row: Omit<PushChallengeRow, 'decided_at'>): Promise<void> {
      await db.insertInto('push_challenges').values({ ...row, decided_at: null }).execute();
    },
    async findChallenge(id: string): Promise<PushChallengeRow | undefined> {
      return db.selectFrom('push_challenges').selectAll().where('id', '=', id).executeTakeFirst();
    },
    /** Pending and unexpired challenges of a user (at most one, by the rules, but read all). */
    async pendingForUser(userId: string, now: Date): Promise<PushChallengeRow[]> {
      return db
        .selectFrom('push_challenges')
        .selectAll()
        .where('user_id', '=', userId)
        .where('status', '=', 'pending')
        .where('expires_at', '>', now.toISOString())
        .orderBy('created_at', 'desc')
        .execute();
    },
    async pendingForMethod(methodId: string, now: Date): Promise<PushChallengeRow[]> {
      return db
        .selectFrom('push_challenges')
        .selectAll()
        .where('method_id', '=', methodId)
        .where('status', '=', 'pending')
        .where('expires_at', '>', now.toISOString())
        .orderBy('created_at', 'desc')
        .execute();
    },
    /** Pushes sent to a user since `since` (for the hourly cap and the minimum gap). */
    async sentSince(userId: string, since: Date): Promise<{ count: number; last: Date | null }> {
      const row = await db
        .selectFrom('push_challenges')
        .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.max('created_at').as('last')])
        .where('user_id', '=', userId)
        .where('purpose', '!=', 'test')
        .where('created_at', '>', since.toISOString())
        .executeTakeFirstOrThrow();
      return { count: Number(row.n), last: row.last ? new Date(row.last as string) : null };
    },
    /** Records a decision, atomically: only a pending, unexpired challenge changes. */
    async decide(id: string, status: Exclude<PushChallengeStatus, 'pending'>, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('push_challenges')
        .set({ status, decided_at: now.toISOString() })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .where('expires_at', '>', now.toISOString())
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    /** An approval completes one sign-in: approved → used, atomically. */
    async useApproval(id: string, now: Date): Promise<boolean> {
      const result = await db.updateTable('push_challenges').set({ status: 'used', decided_at: now.toISOString() }).where('id', '=', id).where('status', '=', 'approved').executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async expireStale(now: Date): Promise<number> {
      const result = await db
        .updateTable('push_challenges')
        .set({ status: 'expired', decided_at: now.toISOString() })
        .where('status', '=', 'pending')
        .where('expires_at', '<=', now.toISOString())
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },
    async setUserBlocked(userId: string, at: Date | null): Promise<void> {
      await db.updateTable('users').set({ push_blocked_at: at ? at.toISOString() : null }).where('id', '=', userId).execute();
    },
  };
}

export type PushRepository = ReturnType<typeof createPushRepository>;
