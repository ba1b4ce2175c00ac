/**
 * The audit log's chain and checkpoints (migration 0013). The sealer and `audit verify` in
 * src/app/audit-chain.ts compute the MACs; this file only reads and appends rows. Every read is a page
 * (keyset, `limit`), so nothing here holds a whole table in memory.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.js';
import type { AuditEventRow, DatabaseSchema } from '../schema.js';

type Db = Kysely<DatabaseSchema>;

/** Any constant: the one lock PostgreSQL's sealers take, per transaction, so one node seals at a time. */
const SEAL_LOCK = 0x706f_7274_6175; // "portau"

export interface ChainHeadRow {
  seq: number;
  mac: string;
  sealedAt: string;
  /** The head's event time; null when the event is gone. */
  eventAt: string | null;
  /** The highest event id in the chain (ids commit out of order on PostgreSQL: not always the head's). */
  maxEventId: number;
}

export interface ChainEntryRow {
  seq: number;
  eventId: number;
  prevMac: string;
  mac: string;
  /** Null when the event row is gone. */
  event: AuditEventRow | null;
}

export interface CheckpointRow {
  seq: number;
  mac: string;
  at: string;
}

export interface NewChainEntry {
  seq: number;
  eventId: number;
  prevMac: string;
  mac: string;
  sealedAt: string;
}

/** Event ids looked at per query when looking for unsealed events. */
const WINDOW = 1000;

const eventColumns = ['e.id', 'e.at', 'e.type', 'e.actor_type', 'e.actor_id', 'e.subject_user_id', 'e.ip', 'e.details'] as const;

function toEvent(row: { id: number | string; at: string; type: string; actor_type: string; actor_id: string | null; subject_user_id: string | null; ip: string | null; details: string }): AuditEventRow {
  return { ...row, id: Number(row.id) };
}

export function createAuditChainRepository(db: Db, dialect: Dialect) {
  return {
    /**
     * Runs `work` as the only sealer: on PostgreSQL in a transaction holding an advisory lock (null when
     * another node holds it); on SQLite in a write transaction taken at its start (BEGIN IMMEDIATE), which
     * excludes other writers, other processes included.
     */
    async underSealLock<T>(work: (db: Db) => Promise<T>): Promise<{ locked: true; value: T } | { locked: false }> {
      if (dialect === 'postgres') {
        return db.transaction().execute(async (trx) => {
          const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${SEAL_LOCK}) as locked`.execute(trx);
          if (!rows[0]?.locked) return { locked: false as const };
          return { locked: true as const, value: await work(trx) };
        });
      }
      return db.connection().execute(async (connection) => {
        await sql`begin immediate`.execute(connection);
        try {
          const value = await work(connection);
          await sql`commit`.execute(connection);
          return { locked: true as const, value };
        } catch (error) {
          await sql`rollback`.execute(connection).catch(() => undefined);
          throw error;
        }
      });
    },

    async head(on: Db = db): Promise<ChainHeadRow | null> {
      const row = await on
        .selectFrom('audit_chain as c')
        .leftJoin('audit_events as e', 'e.id', 'c.event_id')
        .select(['c.seq', 'c.mac', 'c.sealed_at', 'e.at'])
        .orderBy('c.seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (!row) return null;
      const max = await on.selectFrom('audit_chain').select((eb) => eb.fn.max('event_id').as('max')).executeTakeFirst();
      return { seq: row.seq, mac: row.mac, sealedAt: row.sealed_at, eventAt: row.at ?? null, maxEventId: Number(max?.max ?? 0) };
    },

    /**
     * Up to `limit` events not in the chain with an id above `afterId` (and a time from `atFloor`, when
     * given), in id order; `scannedTo` is the id up to which every event was looked at.
     *
     * It walks the ids in windows of WINDOW rows (the primary key), probing the chain's unique event_id
     * index for each: a plain anti-join would be planned as a hash of the whole chain on PostgreSQL
     * whenever its statistics lag, and the sealer runs every second.
     */
    async unsealed(on: Db, options: { afterId: number; atFloor: string | null; limit: number }): Promise<{ events: AuditEventRow[]; scannedTo: number }> {
      let cursor = options.afterId;
      if (options.atFloor !== null) {
        // Nothing below the oldest event at or after the floor can qualify (audit_events_at_idx).
        const oldest = await on.selectFrom('audit_events').select((eb) => eb.fn.min('id').as('id')).where('at', '>=', options.atFloor).executeTakeFirst();
        if (oldest?.id === null || oldest?.id === undefined) return { events: [], scannedTo: cursor };
        cursor = Math.max(cursor, Number(oldest.id) - 1);
      }
      const ids: number[] = [];
      for (;;) {
        const window = on.selectFrom('audit_events').select(['id', 'at']).where('id', '>', cursor).orderBy('id').limit(WINDOW).as('w');
        // A correlated subquery is always one index probe per row, whatever the statistics say.
        const rows = await on
          .selectFrom(window)
          .select((eb) => ['w.id', 'w.at', eb.selectFrom('audit_chain as c').select('c.seq').whereRef('c.event_id', '=', 'w.id').as('seq')])
          .orderBy('w.id')
          .execute();
        for (const row of rows) {
          cursor = Number(row.id);
          if (row.seq === null && (options.atFloor === null || row.at >= options.atFloor)) {
            ids.push(cursor);
            if (ids.length === options.limit) break;
          }
        }
        if (ids.length === options.limit || rows.length < WINDOW) break;
      }
      if (!ids.length) return { events: [], scannedTo: cursor };
      const events = await on.selectFrom('audit_events as e').select(eventColumns).where('e.id', 'in', ids).orderBy('e.id').execute();
      return { events: events.map(toEvent), scannedTo: cursor };
    },

    async append(on: Db, entries: NewChainEntry[]): Promise<void> {
      if (!entries.length) return;
      await on
        .insertInto('audit_chain')
        .values(entries.map((e) => ({ seq: e.seq, event_id: e.eventId, prev_mac: e.prevMac, mac: e.mac, sealed_at: e.sealedAt })))
        .execute();
    },

    /** The chain in seq order from after `afterSeq`, each entry with its event (if it is still there). */
    async entries(afterSeq: number, limit: number): Promise<ChainEntryRow[]> {
      const rows = await db
        .selectFrom('audit_chain as c')
        .leftJoin('audit_events as e', 'e.id', 'c.event_id')
        .select(['c.seq', 'c.event_id', 'c.prev_mac', 'c.mac', ...eventColumns])
        .where('c.seq', '>', afterSeq)
        .orderBy('c.seq')
        .limit(limit)
        .execute();
      return rows.map((r) => ({
        seq: r.seq,
        eventId: Number(r.event_id),
        prevMac: r.prev_mac,
        mac: r.mac,
        event:
          r.id === null || r.id === undefined
            ? null
            : toEvent({ id: r.id, at: r.at!, type: r.type!, actor_type: r.actor_type!, actor_id: r.actor_id ?? null, subject_user_id: r.subject_user_id ?? null, ip: r.ip ?? null, details: r.details! }),
      }));
    },

    async countEvents(): Promise<number> {
      const row = await db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    async latestCheckpoint(on: Db = db): Promise<CheckpointRow | null> {
      const row = await on.selectFrom('audit_checkpoints').select(['seq', 'mac', 'at']).orderBy('id', 'desc').limit(1).executeTakeFirst();
      return row ?? null;
    },

    async addCheckpoint(on: Db, checkpoint: CheckpointRow): Promise<void> {
      await on.insertInto('audit_checkpoints').values(checkpoint).execute();
    },

    /** Checkpoints whose entry the chain no longer holds, or holds with another MAC, in seq order. */
    async checkpointsOffChain(limit: number): Promise<Array<CheckpointRow & { chainMac: string | null }>> {
      const rows = await db
        .selectFrom('audit_checkpoints as k')
        .leftJoin('audit_chain as c', 'c.seq', 'k.seq')
        .select(['k.seq', 'k.mac', 'k.at', 'c.mac as chain_mac'])
        .where((eb) => eb.or([eb('c.seq', 'is', null), eb('c.mac', '<>', eb.ref('k.mac'))]))
        .orderBy('k.seq')
        .orderBy('k.id')
        .limit(limit)
        .execute();
      return rows.map((r) => ({ seq: r.seq, mac: r.mac, at: r.at, chainMac: r.chain_mac ?? null }));
    },

    async entryMac(seq: number): Promise<string | null> {
      const row = await db.selectFrom('audit_chain').select('mac').where('seq', '=', seq).executeTakeFirst();
      return row?.mac ?? null;
    },
  };
}

export type AuditChainRepository = ReturnType<typeof createAuditChainRepository>;
