/**
 * Second factors: registered methods (TOTP seeds sealed under the key-encryption key, phone numbers in
 * E.164), one-time code challenges (codes stored only as keyed hashes), each user's default method, and
 * the grant that lets someone with no method register their first one right after the password.
 */
import type { Kysely } from 'kysely';
import type { MigrationContext } from './index.js';

export async function up(db: Kysely<any>, _context: MigrationContext): Promise<void> {
  await db.schema
    .createTable('methods')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('phone_e164', 'text')
    .addColumn('secret_sealed', 'text')
    .addColumn('totp_last_step', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('activated_at', 'text')
    .addColumn('last_used_at', 'text')
    .addColumn('pending_expires_at', 'text')
    .execute();
  await db.schema.createIndex('methods_user_idx').on('methods').columns(['user_id', 'status']).execute();

  await db.schema.alterTable('users').addColumn('default_method_id', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('registration_grant_until', 'text').execute();

  await db.schema
    .createTable('challenges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('method_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('binding', 'text', (c) => c.notNull())
    .addColumn('code_hash', 'text')
    .addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sends', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_sent_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('consumed_at', 'text')
    .execute();
  await db.schema.createIndex('challenges_binding_idx').on('challenges').column('binding').execute();
  await db.schema.createIndex('challenges_expires_idx').on('challenges').column('expires_at').execute();
}
