/**
 * The account of each OpenID Connect artefact (issue #13, third step), so that a person's grants can be
 * found without their browser's provider session: "My account" lists the applications they have allowed
 * and revokes one, and a consent given in one browser is remembered in another (docs/oidc.md#consent).
 * Set by the adapter from the payload's `accountId`; rows written before it stay null (they expire).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('oidc_artefacts').addColumn('account_id', 'text').execute();
  await db.schema.createIndex('oidc_artefacts_account_idx').on('oidc_artefacts').columns(['account_id', 'model']).execute();
}
