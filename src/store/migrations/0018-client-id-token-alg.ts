/**
 * Each client's ID token signing algorithm (OpenID Connect Dynamic Client Registration 1.0 §2,
 * `id_token_signed_response_alg`): RS256, every client's default (OpenID Connect Core §15.1), or ES256
 * for a client that accepts it — a tenth of the CPU to sign (docs/performance.md#npm-run-benchoidc).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('oidc_clients').addColumn('id_token_alg', 'text', (c) => c.notNull().defaultTo('RS256')).execute();
}
