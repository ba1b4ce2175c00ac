/**
 * Service clients on the admin API (issue #15 point 6): a client credentials token carries the admin
 * scopes (`client add --service --scope admin:read …`); where it may use them — every organisation, or
 * the ones named — is said here (`portcullis client admin-scope`), as a local administrator's role says it.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('admin_clients')
    .addColumn('client_id', 'text', (c) => c.primaryKey().references('oidc_clients.client_id').onDelete('cascade'))
    /** JSON: ["*"] for every organisation, or organisation ids. */
    .addColumn('organisations', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
