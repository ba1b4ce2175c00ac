import type { Kysely } from 'kysely';
import type { DatabaseSchema, UserTokensTable } from '../schema.js';

export function createUserTokenRepository(db: Kysely<DatabaseSchema>) {
  return {
    /** Stores a token's hash; any earlier unused token of the same purpose for the user stops working. */
    async replace(row: { id: string; userId: string; purpose: UserTokensTable['purpose']; now: Date; expiresAt: Date }): Promise<void> {
      await db.deleteFrom('user_tokens').where('user_id', '=', row.userId).where('purpose', '=', row.purpose).execute();
      await db
        .insertInto('user_tokens')
        .values({
          id: row.id,
          user_id: row.userId,
          purpose: row.purpose,
          created_at: row.now.toISOString(),
          expires_at: row.expiresAt.toISOString(),
          used_at: null,
        })
        .execute();
    },
    /** The user a live, unused token belongs to, without using it up. */
    async peek(id: string, purpose: UserTokensTable['purpose'], now: Date): Promise<string | undefined> {
      const row = await db
        .selectFrom('user_tokens')
        .select('user_id')
        .where('id', '=', id)
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now.toISOString())
        .executeTakeFirst();
      return row?.user_id;
    },
    /** Uses a token up, atomically: of two racing requests exactly one gets the user id. */
    async consume(id: string, purpose: UserTokensTable['purpose'], now: Date): Promise<string | undefined> {
      const row = await db
        .updateTable('user_tokens')
        .set({ used_at: now.toISOString() })
        .where('id', '=', id)
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now.toISOString())
        .returning('user_id')
        .executeTakeFirst();
      return row?.user_id;
    },
  };
}

export type UserTokenRepository = ReturnType<typeof createUserTokenRepository>;
