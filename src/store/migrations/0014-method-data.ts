/**
 * What a method unit keeps of its own (issue #14): `data`, a JSON document only that unit reads (a
 * passkey's public key, signature counter, AAGUID and backup flags; recovery codes' keyed hashes and
 * which are used), and `lookup_key`, a value a unit finds its method by (a passkey's credential id,
 * which WebAuthn §7.1 step 25 requires to be registered to one account only: unique per kind). A new
 * method needs no migration of its own for either.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('methods').addColumn('data', 'text').execute();
  await db.schema.alterTable('methods').addColumn('lookup_key', 'text').execute();
  await db.schema.createIndex('methods_lookup_key_idx').on('methods').columns(['kind', 'lookup_key']).unique().execute();
}
