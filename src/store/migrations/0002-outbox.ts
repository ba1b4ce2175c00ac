/**
 * The outbox: every text message, call and email is first written here (in the caller's transaction
 * when there is one), then sent by the dispatcher (src/channels/outbox.ts). A row records the message
 * sealed at rest, its delivery state and the provider's answer.
 *
 * The payload is the message as JSON sealed with AES-256-GCM under the key-encryption key, bound to the
 * row id (src/crypto/seal.ts): it may carry a one-time code, and codes are never stored in the clear.
 * Real providers' rows have their payload wiped (set to null) once sent or dead; the development
 * outbox keeps it, because reading it is its purpose.
 */
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './index.js';

export async function up(db: Kysely<any>, _context: MigrationContext): Promise<void> {
  await db.schema
    .createTable('outbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('channel', 'text', (c) => c.notNull().check(sql`channel in ('sms', 'voice', 'email')`))
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('payload', 'text')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending').check(sql`status in ('pending', 'sending', 'sent', 'dead')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('claimed_until', 'text')
    .addColumn('claim_token', 'text')
    .addColumn('last_error', 'text')
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('provider_message_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('sent_at', 'text')
    .execute();
  // The dispatcher's question: what is due (pending and due, or sending with an expired claim)?
  await db.schema.createIndex('outbox_due_idx').on('outbox').columns(['status', 'next_attempt_at']).execute();
  // The development outbox lists the newest first, per provider; housekeeping deletes old rows.
  await db.schema.createIndex('outbox_provider_created_idx').on('outbox').columns(['provider', 'created_at']).execute();
  await db.schema.createIndex('outbox_created_idx').on('outbox').column('created_at').execute();
}
