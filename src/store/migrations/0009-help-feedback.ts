/**
 * "Was this article helpful?" (issue #16): one row per answer. Reasons are ids from the catalogue in
 * src/app/help/reasons.ts, stored as a JSON array of strings; the comment is plain text as typed (it is
 * escaped whenever it is shown). No user id and no client address are kept: feedback is about the
 * article, not the person, and signed-in or not it is the same.
 */
import type { Kysely } from 'kysely';
import type { MigrationContext } from './index.js';

export async function up(db: Kysely<any>, _context: MigrationContext): Promise<void> {
  await db.schema
    .createTable('help_feedback')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('article', 'text', (c) => c.notNull())
    .addColumn('helpful', 'integer', (c) => c.notNull())
    .addColumn('reasons', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('comment', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  // The report reads a period, optionally for one article.
  await db.schema.createIndex('help_feedback_created_idx').on('help_feedback').columns(['created_at', 'article']).execute();
}
