import type { Kysely } from 'kysely';
import type { AuditEvent, AuditEventType } from '../../core/audit.js';
import { prepared } from '../prepared.js';
import { write } from '../pipeline.js';
import type { AuditEventRow, DatabaseSchema } from '../schema.js';

// Every sign-in appends one (src/store/prepared.ts).
const appendEvent = prepared(7, (db, at, type, actorType, actorId, subjectUserId, ip, details) =>
  db.insertInto('audit_events').values({ at, type, actor_type: actorType, actor_id: actorId, subject_user_id: subjectUserId, ip, details }),
);

function actorColumns(actor: AuditEvent['actor']): { actor_type: string; actor_id: string | null } {
  switch (actor.kind) {
    case 'user':
      return { actor_type: 'user', actor_id: actor.userId };
    case 'cli':
      return { actor_type: 'cli', actor_id: actor.name };
    case 'client':
      return { actor_type: 'client', actor_id: actor.clientId };
    default:
      return { actor_type: actor.kind, actor_id: null };
  }
}

export function createAuditRepository(db: Kysely<DatabaseSchema>) {
  return {
    /** The only write: there is no update or delete. */
    async append(event: AuditEvent): Promise<void> {
      const actor = actorColumns(event.actor);
      // Who, whom and why: an administrator's reason goes with every event their action writes.
      const reason = 'reason' in event.actor ? event.actor.reason : undefined;
      const details = reason ? { ...event.details, why: reason } : event.details;
      const values = [event.at.toISOString(), event.type, actor.actor_type, actor.actor_id, event.subjectUserId, event.ip, JSON.stringify(details)] as const;
      // A token request's audit event commits with its tokens (src/store/write-unit.ts); a sign-in's goes
      // alongside its other closing writes (src/store/pipeline.ts).
      await write(db, async (on) => void (await appendEvent(on, ...values)));
    },
    async list(filter: { subjectUserId?: string; type?: AuditEventType; limit?: number } = {}): Promise<AuditEventRow[]> {
      let query = db.selectFrom('audit_events').selectAll().orderBy('id', 'desc').limit(filter.limit ?? 100);
      if (filter.subjectUserId) query = query.where('subject_user_id', '=', filter.subjectUserId);
      if (filter.type) query = query.where('type', '=', filter.type);
      return query.execute();
    },
  };
}

export type AuditRepository = ReturnType<typeof createAuditRepository>;
