/** The `oidc_clients` table (migration 0010): registered OpenID Connect clients, secrets sealed. */
import type { Kysely, Selectable } from 'kysely';
import type { DatabaseSchema, OidcClientsTable } from '../schema.js';

export type OidcClientRow = Selectable<OidcClientsTable>;

export function createOidcClientRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insert(row: OidcClientRow): Promise<void> {
      await db.insertInto('oidc_clients').values(row).execute();
    },
    async find(clientId: string): Promise<OidcClientRow | undefined> {
      return db.selectFrom('oidc_clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    },
    async list(): Promise<OidcClientRow[]> {
      return db.selectFrom('oidc_clients').selectAll().orderBy('created_at').orderBy('client_id').execute();
    },
    /** Whether a client was there to remove. */
    async remove(clientId: string): Promise<boolean> {
      const result = await db.deleteFrom('oidc_clients').where('client_id', '=', clientId).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
    /** Replaces a confidential or service client's secret; false if there is no such client with a secret. */
    async replaceSecret(clientId: string, secretSealed: string, at: string): Promise<boolean> {
      const result = await db
        .updateTable('oidc_clients')
        .set({ secret_sealed: secretSealed, secret_created_at: at })
        .where('client_id', '=', clientId)
        .where('secret_sealed', 'is not', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}

export type OidcClientRepository = ReturnType<typeof createOidcClientRepository>;
