/**
 * The admin console's search by the start of an email address or a name (issue #15 point 3): each a
 * range on an index, so a prefix that matches late in the alphabet, or nobody, is found as fast as one
 * that matches early (bench/admin). On PostgreSQL the ranges are compared byte by byte (COLLATE "C"),
 * whatever the database's own collation, so the indexes are made with it too.
 */
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './index.js';

export async function up(db: Kysely<any>, context: MigrationContext): Promise<void> {
  if (context.dialect === 'postgres') {
    await sql`create index users_email_prefix_idx on users ((email_normalised collate "C"))`.execute(db);
    await sql`create index users_name_prefix_idx on users ((lower(display_name) collate "C"))`.execute(db);
  } else {
    await sql`create index users_name_prefix_idx on users (lower(display_name))`.execute(db);
  }
}
