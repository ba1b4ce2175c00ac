/**
 * Registered OpenID Connect clients (issue #13, second step): added by `portcullis client add`, read by
 * oidc-provider through the adapter's Client model (src/app/oidc/clients.ts). A confidential client's
 * secret is sealed (AES-256-GCM under the key-encryption key, bound to `oidc-client-secret:<client_id>`):
 * oidc-provider compares the presented secret itself, so it must be able to open it.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('oidc_clients')
    .addColumn('client_id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    // 'confidential' (a secret, client_secret_basic), 'public' (none, PKCE) or 'service' (client credentials).
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('first_party', 'integer', (c) => c.notNull())
    // JSON arrays of strings: few per client, always read whole.
    .addColumn('redirect_uris', 'text', (c) => c.notNull())
    .addColumn('post_logout_redirect_uris', 'text', (c) => c.notNull())
    .addColumn('grant_types', 'text', (c) => c.notNull())
    .addColumn('backchannel_logout_uri', 'text')
    // RFC 7591 §2 `scope`: the scopes a service client may ask for, space-separated; null for the others.
    .addColumn('scope', 'text')
    .addColumn('secret_sealed', 'text')
    .addColumn('secret_created_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
