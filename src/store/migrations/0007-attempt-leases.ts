/**
 * One attempt in flight per throttle counter (issue #12): a counter row can hold a lease, taken
 * atomically before the work it limits (an argon2id verify, a code check) and given up after, so a
 * burst of parallel guesses cannot all be checked against a count read before any of them was recorded.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('throttles').addColumn('lease_owner', 'text').execute();
  await db.schema.alterTable('throttles').addColumn('lease_until', 'text').execute();
}
