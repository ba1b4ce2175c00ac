/**
 * The OpenID Connect provider's storage (issue #13): one table for every oidc-provider model
 * (src/store/oidc-adapter.ts), keyed by (model, id), and its signing keys, sealed at rest.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('oidc_artefacts')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    // oidc-provider's payload as JSON text: its fields change between versions (docs/oidc.md).
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('grant_id', 'text')
    .addColumn('user_code', 'text')
    .addColumn('uid', 'text')
    // null: kept until destroyed (oidc-provider gives no lifetime, as for a registered Client).
    .addColumn('expires_at', 'text')
    .addColumn('consumed_at', 'text')
    .addPrimaryKeyConstraint('oidc_artefacts_pk', ['model', 'id'])
    .execute();
  await db.schema.createIndex('oidc_artefacts_grant_idx').on('oidc_artefacts').column('grant_id').execute();
  await db.schema.createIndex('oidc_artefacts_uid_idx').on('oidc_artefacts').column('uid').execute();
  await db.schema.createIndex('oidc_artefacts_user_code_idx').on('oidc_artefacts').column('user_code').execute();
  await db.schema.createIndex('oidc_artefacts_expires_idx').on('oidc_artefacts').column('expires_at').execute();

  await db.schema
    .createTable('oidc_signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    // The private JWK, sealed with AES-256-GCM under the key-encryption key, bound to `oidc-signing-key:<kid>`.
    .addColumn('private_jwk_sealed', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    // Set when the key stops being current: until then it still verifies what it signed.
    .addColumn('retire_after', 'text')
    .execute();
  // At most one current key per algorithm, whatever the number of nodes starting at once: the first
  // start's insert-if-absent relies on it (src/app/oidc-keys.ts). A partial unique index, in both dialects.
  await db.schema
    .createIndex('oidc_signing_keys_one_current_idx')
    .on('oidc_signing_keys')
    .column('alg')
    .unique()
    .where(sql.ref('state'), '=', sql.lit('current'))
    .execute();
}
