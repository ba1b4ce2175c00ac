import type { Kysely } from 'kysely';
import type { SignInState } from '../../core/sign-in/flow.js';
import type { DatabaseSchema } from '../schema.js';

export function createSignInFlowRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insert(id: string, state: SignInState, now: Date, expiresAt: Date): Promise<void> {
      await db
        .insertInto('sign_in_flows')
        .values({ id, state: JSON.stringify(state), created_at: now.toISOString(), expires_at: expiresAt.toISOString() })
        .execute();
    },
    async find(id: string, now: Date): Promise<SignInState | undefined> {
      const row = await db
        .selectFrom('sign_in_flows')
        .select('state')
        .where('id', '=', id)
        .where('expires_at', '>', now.toISOString())
        .executeTakeFirst();
      return row ? (JSON.parse(row.state) as SignInState) : undefined;
    },
    async update(id: string, state: SignInState): Promise<void> {
      await db.updateTable('sign_in_flows').set({ state: JSON.stringify(state) }).where('id', '=', id).execute();
    },
    async delete(id: string): Promise<void> {
      await db.deleteFrom('sign_in_flows').where('id', '=', id).execute();
    },
    async deleteExpired(now: Date): Promise<number> {
      const result = await db.deleteFrom('sign_in_flows').where('expires_at', '<=', now.toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type SignInFlowRepository = ReturnType<typeof createSignInFlowRepository>;
