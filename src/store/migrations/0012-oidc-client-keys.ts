/**
 * Applications in the policy (issue #13 point 4): each client gets a policy key (`client:KEY` in a policy
 * requirement; `client add --key`), unique; the clients already registered get one from their name
 * (slugified, made unique with -2, -3…). Grant rows get their client's id as a column, so that the report
 * can count the people who use an application (those holding a grant for it) with an index, not by
 * reading every payload; the adapter fills it on upsert, and existing Grant rows are filled here.
 */
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './index.js';
import { clientKeyFromName, uniqueClientKey } from '../../core/oidc/client-key.js';

export async function up(db: Kysely<any>, context: MigrationContext): Promise<void> {
  await db.schema.alterTable('oidc_clients').addColumn('key', 'text').execute();
  const rows = await db.selectFrom('oidc_clients').select(['client_id', 'name']).orderBy('created_at').orderBy('client_id').execute();
  const taken = new Set<string>();
  for (const row of rows as Array<{ client_id: string; name: string }>) {
    const key = uniqueClientKey(clientKeyFromName(row.name), taken);
    taken.add(key);
    await db.updateTable('oidc_clients').set({ key }).where('client_id', '=', row.client_id).execute();
  }
  await db.schema.createIndex('oidc_clients_key_idx').on('oidc_clients').column('key').unique().execute();

  await db.schema.alterTable('oidc_artefacts').addColumn('client_id', 'text').execute();
  const clientId = context.dialect === 'postgres' ? sql`(payload::json ->> 'clientId')` : sql`json_extract(payload, '$.clientId')`;
  await db.updateTable('oidc_artefacts').set({ client_id: clientId }).where('model', '=', 'Grant').execute();
  // The report's count of an application's people: Grant rows by client, with the account beside it.
  await db.schema.createIndex('oidc_artefacts_client_idx').on('oidc_artefacts').columns(['model', 'client_id', 'account_id']).execute();
}
