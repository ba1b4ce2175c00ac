/**
 * Fewer index writes per token (docs/performance.md#npm-run-benchoidc): `uid` (sessions and
 * interactions), `user_code` (device codes) and `client_id` (grants) are empty on every access and
 * refresh token, yet each such row was written into their indexes too — three of a token's seven index
 * inserts, in every refresh grant twice. Indexed only where set; every query of them names a value (or
 * says `is not null`), so the planners still use them.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('oidc_artefacts_uid_idx').execute();
  await db.schema.dropIndex('oidc_artefacts_user_code_idx').execute();
  await db.schema.dropIndex('oidc_artefacts_client_idx').execute();
  await db.schema.createIndex('oidc_artefacts_uid_idx').on('oidc_artefacts').column('uid').where('uid', 'is not', null).execute();
  await db.schema.createIndex('oidc_artefacts_user_code_idx').on('oidc_artefacts').column('user_code').where('user_code', 'is not', null).execute();
  await db.schema.createIndex('oidc_artefacts_client_idx').on('oidc_artefacts').columns(['model', 'client_id', 'account_id']).where('client_id', 'is not', null).execute();
}
