/**
 * The OpenID Connect provider's signing keys (docs/oidc.md#signing-keys). Generated on first start,
 * kept in the database with the private part sealed (AES-256-GCM under the key-encryption key, bound
 * to `oidc-signing-key:<kid>`, exactly as TOTP seeds are), and rotated by `portcullis keys rotate`.
 *
 * One current key per algorithm: RS256, which OpenID Connect Core §15.1 and the Basic OP profile require
 * every provider to support (and oidc-provider's default ID token algorithm), and ES256, smaller and
 * faster, for clients that ask for it. A key stops being current at a rotation and becomes `previous`:
 * still published, so tokens it signed still verify, until `retire_after`; then it is `retired` and
 * leaves the JWKS.
 */
import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Kysely, Transaction } from 'kysely';
import { openText, sealText } from '../../crypto/seal.js';
import type { DatabaseSchema } from '../../store/schema.js';
import { KEY_PUBLISH_AHEAD_SECONDS, SIGNING_KEY_RETIRE_AFTER_SECONDS } from './lifetimes.js';

export const SIGNING_ALGORITHMS = ['RS256', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];
export type SigningKeyState = 'current' | 'previous' | 'retired';

export interface SigningKeyContext {
  store: { database: { db: Kysely<DatabaseSchema> } };
  keys: { keyEncryption: Uint8Array };
  clock: () => Date;
}

export interface SigningKeyInfo {
  kid: string;
  alg: string;
  state: SigningKeyState;
  createdAt: Date;
  /** When it leaves the JWKS; null while current. */
  retireAfter: Date | null;
}

const sealingContext = (kid: string): string => `oidc-signing-key:${kid}`;

/** A new key pair as JWKs; the kid is the public key's RFC 7638 thumbprint. */
async function generateKey(alg: SigningAlgorithm): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey } =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const exported = privateKey.export({ format: 'jwk' }) as JWK;
  const publicJwk: JWK = alg === 'RS256' ? { kty: 'RSA', n: exported.n!, e: exported.e! } : { kty: 'EC', crv: 'P-256', x: exported.x!, y: exported.y! };
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return { kid, privateJwk: { ...exported, kid, alg, use: 'sig' }, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
}

async function insertCurrent(db: Kysely<DatabaseSchema> | Transaction<DatabaseSchema>, ctx: SigningKeyContext, alg: SigningAlgorithm, now: Date): Promise<boolean> {
  const key = await generateKey(alg);
  const result = await db
    .insertInto('oidc_signing_keys')
    .values({
      kid: key.kid,
      alg,
      state: 'current',
      private_jwk_sealed: sealText(ctx.keys.keyEncryption, JSON.stringify(key.privateJwk), sealingContext(key.kid)),
      public_jwk: JSON.stringify(key.publicJwk),
      created_at: now.toISOString(),
      retire_after: null,
    })
    // The partial unique index (one current key per alg) turns a second node's insert into nothing.
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** Marks keys past their retire_after as retired (they leave the JWKS). */
async function retireDue(ctx: SigningKeyContext, now: Date): Promise<void> {
  await ctx.store.database.db
    .updateTable('oidc_signing_keys')
    .set({ state: 'retired' })
    .where('state', '=', 'previous')
    .where('retire_after', '<=', now.toISOString())
    .execute();
}

/**
 * First start: creates a current key for each algorithm that has none. Safe when several nodes start
 * together: only one insert per algorithm succeeds, the others find its key. Returns the kids created here.
 */
export async function ensureSigningKeys(ctx: SigningKeyContext): Promise<string[]> {
  const now = ctx.clock();
  const existing = await ctx.store.database.db.selectFrom('oidc_signing_keys').select('alg').where('state', '=', 'current').execute();
  const have = new Set(existing.map((row) => row.alg));
  const created: string[] = [];
  for (const alg of SIGNING_ALGORITHMS) {
    if (have.has(alg)) continue;
    if (await insertCurrent(ctx.store.database.db, ctx, alg, now)) created.push(alg);
  }
  return created;
}

/**
 * A new current key for each algorithm; the keys they replace become previous, and stay published until
 * the longest lifetime of a token they could have signed has passed.
 */
export async function rotateSigningKeys(ctx: SigningKeyContext): Promise<SigningKeyInfo[]> {
  const now = ctx.clock();
  const retireAfter = new Date(now.getTime() + SIGNING_KEY_RETIRE_AFTER_SECONDS * 1000).toISOString();
  await ctx.store.database.db.transaction().execute(async (trx) => {
    await trx.updateTable('oidc_signing_keys').set({ state: 'previous', retire_after: retireAfter }).where('state', '=', 'current').execute();
    for (const alg of SIGNING_ALGORITHMS) {
      // Inside the transaction the index has just been freed, so this insert is the only current one.
      if (!(await insertCurrent(trx, ctx, alg, now))) throw new Error(`Another rotation of the ${alg} signing key ran at the same time; run keys list and try again.`);
    }
  });
  return (await listSigningKeys(ctx)).filter((key) => key.state === 'current');
}

/** Every key, newest first, with its state as of now. */
export async function listSigningKeys(ctx: SigningKeyContext): Promise<SigningKeyInfo[]> {
  await retireDue(ctx, ctx.clock());
  const rows = await ctx.store.database.db
    .selectFrom('oidc_signing_keys')
    .select(['kid', 'alg', 'state', 'created_at', 'retire_after'])
    .orderBy('created_at', 'desc')
    .orderBy('alg')
    .execute();
  return rows.map((row) => ({
    kid: row.kid,
    alg: row.alg,
    state: row.state,
    createdAt: new Date(row.created_at),
    retireAfter: row.retire_after ? new Date(row.retire_after) : null,
  }));
}

export interface PublishedKeySet {
  /** Private JWKs for oidc-provider's `jwks` option: current keys first (oidc-provider signs with the first key of an algorithm). */
  keys: JWK[];
  /** The kids and states, to tell whether the set changed since it was loaded. */
  fingerprint: string;
}

/** The current and previous keys, opened, for the provider. */
export async function loadPublishedKeys(ctx: SigningKeyContext): Promise<PublishedKeySet> {
  await retireDue(ctx, ctx.clock());
  const rows = await ctx.store.database.db
    .selectFrom('oidc_signing_keys')
    .select(['kid', 'state', 'private_jwk_sealed', 'created_at'])
    .where('state', 'in', ['current', 'previous'])
    .orderBy('created_at', 'desc')
    .execute();
  // oidc-provider signs with the first key of each algorithm: the current one once every node publishes it
  // (KEY_PUBLISH_AHEAD_SECONDS after it was made), until then the previous one; a current key with no other
  // of its algorithm (the first start) signs at once, as it is first of its algorithm either way.
  const now = ctx.clock().getTime();
  const signsNow = (row: { state: string; created_at: string }) => row.state === 'current' && now - Date.parse(row.created_at) >= KEY_PUBLISH_AHEAD_SECONDS * 1000;
  const rank = (row: { state: string; created_at: string }) => (signsNow(row) ? 0 : row.state === 'previous' ? 1 : 2);
  rows.sort((a, b) => rank(a) - rank(b));
  return {
    keys: rows.map((row) => JSON.parse(openText(ctx.keys.keyEncryption, row.private_jwk_sealed, sealingContext(row.kid))) as JWK),
    // Changes when a new key starts signing, so that every node reloads then.
    fingerprint: rows.map((row) => `${row.kid}:${row.state}:${rank(row)}`).join(','),
  };
}
