/**
 * The audit log's chain (issue #15 point 5): `audit_chain`, one row per sealed audit event in the order
 * sealed, each with the MAC of the one before; and `audit_checkpoints`, the chain's head written now and
 * then. Both append-only, like `audit_events`. Existing events are sealed by the sealer's first run,
 * not here (src/app/audit-chain.ts).
 *
 * PostgreSQL also refuses TRUNCATE of the three tables: a row trigger does not fire on it.
 */
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './index.js';

export async function up(db: Kysely<any>, { dialect }: MigrationContext): Promise<void> {
  await db.schema
    .createTable('audit_chain')
    // Assigned by the sealer (the last seq + 1, under its lock), so gaps mean a removed row.
    .addColumn('seq', 'integer', (c) => c.primaryKey())
    .addColumn('event_id', dialect === 'postgres' ? 'bigint' : 'integer', (c) => c.notNull())
    .addColumn('prev_mac', 'text', (c) => c.notNull())
    .addColumn('mac', 'text', (c) => c.notNull())
    .addColumn('sealed_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('audit_chain_event_unique', ['event_id'])
    .addForeignKeyConstraint('audit_chain_event_fk', ['event_id'], 'audit_events', ['id'])
    .execute();

  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
      dialect === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
    )
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('mac', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_checkpoints_seq_idx').on('audit_checkpoints').column('seq').execute();

  if (dialect === 'postgres') {
    await sql`create function audit_append_only() returns trigger language plpgsql as $$
      begin raise exception '% is append-only', TG_TABLE_NAME; end $$`.execute(db);
    for (const table of ['audit_chain', 'audit_checkpoints']) {
      await sql`create trigger ${sql.raw(`${table}_no_update`)} before update or delete on ${sql.table(table)}
        for each row execute function audit_append_only()`.execute(db);
    }
    for (const table of ['audit_events', 'audit_chain', 'audit_checkpoints']) {
      await sql`create trigger ${sql.raw(`${table}_no_truncate`)} before truncate on ${sql.table(table)}
        for each statement execute function audit_append_only()`.execute(db);
    }
  } else {
    for (const table of ['audit_chain', 'audit_checkpoints']) {
      await sql`create trigger ${sql.raw(`${table}_no_update`)} before update on ${sql.table(table)}
        begin select raise(abort, ${sql.raw(`'${table} is append-only'`)}); end`.execute(db);
      await sql`create trigger ${sql.raw(`${table}_no_delete`)} before delete on ${sql.table(table)}
        begin select raise(abort, ${sql.raw(`'${table} is append-only'`)}); end`.execute(db);
    }
  }
}
