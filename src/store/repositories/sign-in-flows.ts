import type { Kysely } from 'kysely';
import type { SignInState } from '../../core/sign-in/flow.js';
import { write } from '../pipeline.js';
import { prepared } from '../prepared.js';
import type { DatabaseSchema } from '../schema.js';

// Every sign-in runs these (src/store/prepared.ts).
const insertFlow = prepared(4, (db, id, state, createdAt, expiresAt) =>
  db.insertInto('sign_in_flows').values({ id, state, created_at: createdAt, expires_at: expiresAt }),
);
const findFlow = prepared(2, (db, id, now) => db.selectFrom('sign_in_flows').select('state').where('id', '=', id).where('expires_at', '>', now));
const updateFlow = prepared(2, (db, id, state) => db.updateTable('sign_in_flows').set({ state }).where('id', '=', id));
const deleteFlow = prepared(1, (db, id) => db.deleteFrom('sign_in_flows').where('id', '=', id));

export function createSignInFlowRepository(db: Kysely<DatabaseSchema>) {
  return {
    // The writes go alongside the request's others (src/store/pipeline.ts).
    async insert(id: string, state: SignInState, now: Date, expiresAt: Date): Promise<void> {
      const value = JSON.stringify(state);
      await write(db, async (on) => void (await insertFlow(on, id, value, now.toISOString(), expiresAt.toISOString())));
    },
    async find(id: string, now: Date): Promise<SignInState | undefined> {
      const [row] = (await findFlow(db, id, now.toISOString())).rows;
      return row ? (JSON.parse(row.state) as SignInState) : undefined;
    },
    async update(id: string, state: SignInState): Promise<void> {
      const value = JSON.stringify(state);
      await write(db, async (on) => void (await updateFlow(on, id, value)));
    },
    async delete(id: string): Promise<void> {
      await write(db, async (on) => void (await deleteFlow(on, id)));
    },
    async deleteExpired(now: Date): Promise<number> {
      const result = await db.deleteFrom('sign_in_flows').where('expires_at', '<=', now.toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type SignInFlowRepository = ReturnType<typeof createSignInFlowRepository>;
