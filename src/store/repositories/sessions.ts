import type { Kysely } from 'kysely';
import type { MethodUse } from '../../core/methods.js';
import type { SessionRestriction } from '../../core/session.js';
import { write } from '../pipeline.js';
import { prepared } from '../prepared.js';
import type { DatabaseSchema, SessionRow } from '../schema.js';

// Every sign-in or signed-in request runs these (src/store/prepared.ts).
const insertSession = prepared(10, (db, id, userId, createdAt, lastSeenAt, expiresAt, methods, restricted, ip, userAgent, grantUntil) =>
  db.insertInto('sessions').values({
    id,
    user_id: userId,
    created_at: createdAt,
    last_seen_at: lastSeenAt,
    expires_at: expiresAt,
    methods,
    restricted,
    oidc_session_id: null,
    ip,
    user_agent: userAgent,
    registration_grant_until: grantUntil,
  }),
);
const sessionById = prepared(1, (db, id) => db.selectFrom('sessions').selectAll().where('id', '=', id));
const touchSession = prepared(3, (db, id, lastSeenAt, expiresAt) =>
  db.updateTable('sessions').set({ last_seen_at: lastSeenAt, expires_at: expiresAt }).where('id', '=', id),
);

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
    /** Written alongside the sign-in's other closing writes (src/store/pipeline.ts). */
    async insert(session: NewSession): Promise<void> {
      await write(db, async (on) => void (await insertSession(
        on,
        session.id,
        session.userId,
        (session.createdAt ?? session.now).toISOString(),
        session.now.toISOString(),
        session.expiresAt.toISOString(),
        JSON.stringify(session.methods),
        session.restricted,
        session.ip,
        session.userAgent?.slice(0, 512) ?? null,
        session.registrationGrantUntil?.toISOString() ?? null,
      )));
    },
    async find(id: string): Promise<SessionRow | undefined> {
      return (await sessionById(db, id)).rows[0];
    },
    async touch(id: string, now: Date, expiresAt: Date): Promise<void> {
      await touchSession(db, id, now.toISOString(), expiresAt.toISOString());
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
