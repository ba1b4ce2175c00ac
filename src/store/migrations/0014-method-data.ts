/**
 * What a method unit keeps of its own (issue #14): `data`, a JSON document only that unit reads (a
 * passkey's public key, signature counter, AAGUID and backup flags; recovery codes' keyed hashes and
 * which are used), and `lookup_key`, a value a unit finds its method by (a passkey's credential id,
 * which WebAuthn §7.1 step 25 requires to be registered to one account only: unique per kind), and
 * `model`, the authenticator's model where it has one (a passkey's AAGUID), which a policy's strength
 * may list and the compliance report reads without opening `data`. A new method needs no migration of its
 * own for any of them.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('methods').addColumn('data', 'text').execute();
  await db.schema.alterTable('methods').addColumn('lookup_key', 'text').execute();
  await db.schema.alterTable('methods').addColumn('model', 'text').execute();
  await db.schema.createIndex('methods_lookup_key_idx').on('methods').columns(['kind', 'lookup_key']).unique().execute();
}
