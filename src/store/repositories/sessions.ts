import type { Kysely } from 'kysely';
import type { MethodUse } from '../../core/methods.js';
import type { SessionRestriction } from '../../core/session.js';
import type { DatabaseSchema, SessionRow } from '../schema.js';

export interface NewSession {
  id: string;
  userId: string;
  now: Date;
  createdAt?: Date;
  registrationGrantUntil?: Date | null;
  expiresAt: Date;
  methods: MethodUse[];
  restricted: SessionRestriction | null;
  ip: string | null;
  userAgent: string | null;
}

export function createSessionRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insert(session: NewSession): Promise<void> {
      const at = session.now.toISOString();
      await db
        .insertInto('sessions')
        .values({
          id: session.id,
          user_id: session.userId,
          created_at: (session.createdAt ?? session.now).toISOString(),
          last_seen_at: at,
          expires_at: session.expiresAt.toISOString(),
          methods: JSON.stringify(session.methods),
          restricted: session.restricted,
          oidc_session_id: null,
          ip: session.ip,
          user_agent: session.userAgent?.slice(0, 512) ?? null,
          registration_grant_until: session.registrationGrantUntil?.toISOString() ?? null,
        })
        .execute();
    },
    async find(id: string): Promise<SessionRow | undefined> {
      return db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async touch(id: string, now: Date, expiresAt: Date): Promise<void> {
      await db
        .updateTable('sessions')
        .set({ last_seen_at: now.toISOString(), expires_at: expiresAt.toISOString() })
        .where('id', '=', id)
        .execute();
    },
    async delete(id: string): Promise<boolean> {
      const result = await db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async deleteAllForUser(userId: string): Promise<number> {
      const result = await db.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async countForUser(userId: string): Promise<number> {
      const row = await db
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async endRegistrationGrant(id: string): Promise<void> {
      await db.updateTable('sessions').set({ registration_grant_until: null }).where('id', '=', id).execute();
    },
    /** Ends every session of a user but one (after a password change, the one that changed it). */
    async deleteOthersForUser(userId: string, keepId: string): Promise<number> {
      const result = await db.deleteFrom('sessions').where('user_id', '=', userId).where('id', '!=', keepId).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async deleteExpired(now: Date): Promise<number> {
      const result = await db.deleteFrom('sessions').where('expires_at', '<=', now.toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type SessionRepository = ReturnType<typeof createSessionRepository>;
