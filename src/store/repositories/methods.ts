import type { Kysely } from 'kysely';
import { prepared } from '../prepared.js';
import type { DatabaseSchema, MethodRow } from '../schema.js';
import { refreshPolicyProfile } from './policy-profile.js';

// Every sign-in runs these (src/store/prepared.ts).
const methodForUser = prepared(2, (db, userId, id) => db.selectFrom('methods').selectAll().where('id', '=', id).where('user_id', '=', userId));
const activeMethods = prepared(1, (db, userId) =>
  db.selectFrom('methods').selectAll().where('user_id', '=', userId).where('status', '=', 'active').orderBy('created_at').orderBy('id'),
);
/** The same, by the user's address: read with the user at the password step (src/app/sign-in.ts). */
const activeMethodsByEmail = prepared(1, (db, email) =>
  db
    .selectFrom('methods')
    .selectAll()
    .where('user_id', '=', (eb) => eb.selectFrom('users').select('users.id').where('users.email_normalised', '=', email))
    .where('status', '=', 'active')
    .orderBy('created_at')
    .orderBy('id'),
);
const claimStep = prepared(3, (db, id, step, now) =>
  db
    .updateTable('methods')
    .set({ totp_last_step: step as unknown as number, last_used_at: now })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step as unknown as number)])),
);

export interface NewMethod {
  id: string;
  userId: string;
  kind: string;
  label: string;
  phoneE164: string | null;
  secretSealed: string | null;
  now: Date;
  pendingExpiresAt: Date;
  /** The unit's own JSON, and the value it finds the method by (unique per kind). */
  data?: string | null;
  lookupKey?: string | null;
}

export function createMethodRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insertPending(method: NewMethod): Promise<void> {
      await db
        .insertInto('methods')
        .values({
          id: method.id,
          user_id: method.userId,
          kind: method.kind,
          status: 'pending',
          label: method.label,
          phone_e164: method.phoneE164,
          secret_sealed: method.secretSealed,
          totp_last_step: null,
          created_at: method.now.toISOString(),
          activated_at: null,
          last_used_at: null,
          pending_expires_at: method.pendingExpiresAt.toISOString(),
          data: method.data ?? null,
          lookup_key: method.lookupKey ?? null,
          model: null,
        })
        .execute();
    },
    async find(id: string): Promise<MethodRow | undefined> {
      return db.selectFrom('methods').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async findForUser(userId: string, id: string): Promise<MethodRow | undefined> {
      return (await methodForUser(db, userId, id)).rows[0];
    },
    async activeForUser(userId: string): Promise<MethodRow[]> {
      return (await activeMethods(db, userId)).rows;
    },
    /** The active methods of the user with this normalised address (none when there is none). */
    async activeForEmail(emailNormalised: string): Promise<MethodRow[]> {
      return (await activeMethodsByEmail(db, emailNormalised)).rows;
    },
    async countActive(userId: string, kind?: string): Promise<number> {
      let query = db
        .selectFrom('methods')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('user_id', '=', userId)
        .where('status', '=', 'active');
      if (kind) query = query.where('kind', '=', kind);
      return Number((await query.executeTakeFirstOrThrow()).n);
    },
    /** Makes a pending method active; false if it was not pending (or not the user's). */
    async activate(
      userId: string,
      id: string,
      now: Date,
      totpStep: number | null,
      unit?: { data: string | null; lookupKey: string | null; label?: string; model?: string | null },
    ): Promise<boolean> {
      const result = await db
        .updateTable('methods')
        .set({
          status: 'active',
          activated_at: now.toISOString(),
          last_used_at: now.toISOString(),
          pending_expires_at: null,
          totp_last_step: totpStep,
          ...(unit ? { data: unit.data, lookup_key: unit.lookupKey, model: unit.model ?? null, ...(unit.label !== undefined ? { label: unit.label } : {}) } : {}),
        })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('status', '=', 'pending')
        .where('pending_expires_at', '>', now.toISOString())
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await refreshPolicyProfile(db, userId);
      return true;
    },
    /**
     * Records a TOTP step as used, atomically: true for exactly one of any requests racing with the same
     * or an earlier step (RFC 6238 §5.2).
     */
    async claimTotpStep(id: string, step: number, now: Date): Promise<boolean> {
      const result = await claimStep(db, id, step, now.toISOString());
      return Number(result.numAffectedRows ?? 0) === 1;
    },
    /** The active method a unit finds by its lookup key (a passkey by its credential id). */
    async findByLookupKey(kind: string, lookupKey: string): Promise<MethodRow | undefined> {
      return db.selectFrom('methods').selectAll().where('kind', '=', kind).where('lookup_key', '=', lookupKey).where('status', '=', 'active').executeTakeFirst();
    },
    /** Whether any method of this kind, pending or active, holds the lookup key. */
    async lookupKeyTaken(kind: string, lookupKey: string): Promise<boolean> {
      return (await db.selectFrom('methods').select('id').where('kind', '=', kind).where('lookup_key', '=', lookupKey).executeTakeFirst()) !== undefined;
    },
    /**
     * Replaces a unit's data, only if it is still `before`: true for exactly one of any requests racing
     * from the same state (a recovery code used once, a signature counter moved forward once).
     */
    async replaceData(id: string, before: string | null, after: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('methods')
        .set({ data: after, last_used_at: now.toISOString() })
        .where('id', '=', id)
        .where('status', '=', 'active')
        .where((eb) => (before === null ? eb('data', 'is', null) : eb('data', '=', before)))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async rename(id: string, label: string): Promise<void> {
      await db.updateTable('methods').set({ label }).where('id', '=', id).execute();
    },
    async markUsed(id: string, now: Date): Promise<void> {
      await db.updateTable('methods').set({ last_used_at: now.toISOString() }).where('id', '=', id).execute();
    },
    async delete(userId: string, id: string): Promise<boolean> {
      const result = await db.deleteFrom('methods').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
      if (Number(result.numDeletedRows) !== 1) return false;
      await refreshPolicyProfile(db, userId);
      return true;
    },
    async deleteAllForUser(userId: string): Promise<number> {
      const result = await db.deleteFrom('methods').where('user_id', '=', userId).executeTakeFirst();
      await refreshPolicyProfile(db, userId);
      return Number(result.numDeletedRows);
    },
    async deleteStalePending(now: Date): Promise<number> {
      const result = await db.deleteFrom('methods').where('status', '=', 'pending').where('pending_expires_at', '<=', now.toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type MethodRepository = ReturnType<typeof createMethodRepository>;
