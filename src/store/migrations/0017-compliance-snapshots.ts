/**
 * The dashboard's trend (issue #15 point 2): once a day, the compliance counts of everyone and of each
 * organisation, kept. One row per day and scope ('*': every organisation); the first node to write a
 * day's row wins, the others find it there.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('compliance_snapshots')
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    /** JSON: { users: StateCounts, elevated: StateCounts, withoutMethod } */
    .addColumn('counts', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('compliance_snapshots_pk', ['day', 'scope'])
    .execute();
}
