import type { Kysely } from 'kysely';
import type { ChallengeRow, ChallengesTable, DatabaseSchema } from '../schema.js';

export interface NewChallenge {
  id: string;
  userId: string | null;
  methodId: string | null;
  kind: string;
  purpose: ChallengesTable['purpose'];
  binding: string;
  codeHash: string | null;
  now: Date;
  expiresAt: Date;
}

export function createChallengeRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insert(challenge: NewChallenge): Promise<void> {
      await db
        .insertInto('challenges')
        .values({
          id: challenge.id,
          user_id: challenge.userId,
          method_id: challenge.methodId,
          kind: challenge.kind,
          purpose: challenge.purpose,
          binding: challenge.binding,
          code_hash: challenge.codeHash,
          failed_attempts: 0,
          sends: challenge.codeHash ? 1 : 0,
          created_at: challenge.now.toISOString(),
          last_sent_at: challenge.now.toISOString(),
          expires_at: challenge.expiresAt.toISOString(),
          consumed_at: null,
        })
        .execute();
    },
    /** The challenge, only if it belongs to this binding (a code works only where it was sent). */
    async findBound(id: string, binding: string): Promise<ChallengeRow | undefined> {
      return db.selectFrom('challenges').selectAll().where('id', '=', id).where('binding', '=', binding).executeTakeFirst();
    },
    /**
     * Reserves one of the challenge's tries before the entry is compared (issue #12): adds one to its
     * wrong tries, atomically, only while it is unused, in date, bound here and under the limit; returns
     * the stored hash and the count with this try, or nothing. So of many entries sent together at
     * most `maxAttempts` are ever compared. A right entry gives its try back as it uses the challenge up.
     */
    async reserveAttempt(id: string, binding: string, now: Date, maxAttempts: number): Promise<{ codeHash: string | null; failedAttempts: number } | undefined> {
      const row = await db
        .updateTable('challenges')
        .set((eb) => ({ failed_attempts: eb('failed_attempts', '+', 1) }))
        .where('id', '=', id)
        .where('binding', '=', binding)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now.toISOString())
        .where('failed_attempts', '<', maxAttempts)
        .returning(['code_hash', 'failed_attempts'])
        .executeTakeFirst();
      return row ? { codeHash: row.code_hash, failedAttempts: Number(row.failed_attempts) } : undefined;
    },
    /**
     * Uses the challenge up, atomically, if the code hash still matches, it is unused and in date, giving
     * back the try its entry reserved: of two racing requests exactly one succeeds.
     */
    async consume(id: string, codeHash: string | null, now: Date): Promise<boolean> {
      let query = db
        .updateTable('challenges')
        .set((eb) => ({ consumed_at: now.toISOString(), failed_attempts: eb('failed_attempts', '-', 1) }))
        .where('id', '=', id)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now.toISOString());
      query = codeHash === null ? query.where('code_hash', 'is', null) : query.where('code_hash', '=', codeHash);
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    /** A new code for the same challenge: new hash and lifetime; the failure count is kept. */
    async replaceCode(id: string, codeHash: string, now: Date, expiresAt: Date): Promise<void> {
      await db
        .updateTable('challenges')
        .set((eb) => ({ code_hash: codeHash, last_sent_at: now.toISOString(), expires_at: expiresAt.toISOString(), sends: eb('sends', '+', 1) }))
        .where('id', '=', id)
        .where('consumed_at', 'is', null)
        .execute();
    },
    async deleteExpired(now: Date): Promise<number> {
      // Kept a day past expiry for the record of attempts, then removed.
      const cutoff = new Date(now.getTime() - 86_400_000).toISOString();
      const result = await db.deleteFrom('challenges').where('expires_at', '<=', cutoff).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type ChallengeRepository = ReturnType<typeof createChallengeRepository>;
