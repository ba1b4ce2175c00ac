/** The `oidc_clients` table (migration 0010): registered OpenID Connect clients, secrets sealed. */
import type { Kysely, Selectable } from 'kysely';
import { prepared } from '../prepared.js';
import type { DatabaseSchema, OidcClientsTable } from '../schema.js';

export type OidcClientRow = Selectable<OidcClientsTable>;

// oidc-provider loads the client on every request to the provider (src/store/prepared.ts).
const clientById = prepared(1, (db, clientId) => db.selectFrom('oidc_clients').selectAll().where('client_id', '=', clientId));

export function createOidcClientRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insert(row: OidcClientRow): Promise<void> {
      await db.insertInto('oidc_clients').values(row).execute();
    },
    async find(clientId: string): Promise<OidcClientRow | undefined> {
      return (await clientById(db, clientId)).rows[0];
    },
    async findByKey(key: string): Promise<OidcClientRow | undefined> {
      return db.selectFrom('oidc_clients').selectAll().where('key', '=', key).executeTakeFirst();
    },
    /** The keys that are `key` or start with `key-` (the candidates `uniqueClientKey` must avoid). */
    async keysLike(key: string): Promise<string[]> {
      const rows = await db
        .selectFrom('oidc_clients')
        .select('key')
        .where((eb) => eb.or([eb('key', '=', key), eb('key', 'like', `${key.slice(0, 61)}%`)]))
        .execute();
      return rows.map((r) => r.key);
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
