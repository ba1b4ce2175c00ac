/**
 * One transaction for a request's writes (docs/performance.md#npm-run-benchoidc): oidc-provider saves
 * each artefact of a token request with its own adapter call — a refresh grant consumes the old refresh
 * token, inserts the new one and the access token, and we append the audit event — and each was its own
 * commit. Inside `inOneTransaction`, the adapter's upserts and consumes and the audit log's appends made
 * outside any transaction are kept, in order, and written together when the request's work is done and
 * before its answer is sent: all of them or none. A crash in between loses nothing confirmed to anyone
 * (the client was not answered), and a refresh token's consume and its successor commit together, so a
 * retried refresh is not taken for a replay.
 *
 * Reads are not deferred: the token endpoint never reads back what it wrote in the same request.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Kysely, Transaction } from 'kysely';
import type { DatabaseSchema } from './schema.js';

type Db = Kysely<DatabaseSchema> | Transaction<DatabaseSchema>;

interface Unit {
  ops: Array<(db: Db) => Promise<void>>;
  /** Set once the writes are being made: anything later (a late continuation) writes at once. */
  closed: boolean;
}

const units = new AsyncLocalStorage<Unit>();

/**
 * Defers `write` to the current unit, if there is one open and `db` is not a transaction of its own
 * (a write inside an explicit transaction stays in it); returns false when the caller must write now.
 */
export function deferWrite(db: Db, write: (db: Db) => Promise<void>): boolean {
  const unit = units.getStore();
  if (!unit || unit.closed || db.isTransaction) return false;
  unit.ops.push(write);
  return true;
}

/** Runs `work`, then writes what it deferred in one transaction (one statement alone needs none). */
export async function inOneTransaction<T>(db: Kysely<DatabaseSchema>, work: () => Promise<T>): Promise<T> {
  const unit: Unit = { ops: [], closed: false };
  const result = await units.run(unit, work);
  unit.closed = true;
  if (unit.ops.length === 1) await unit.ops[0]!(db);
  else if (unit.ops.length > 1) {
    await db.transaction().execute(async (trx) => {
      for (const op of unit.ops) await op(trx);
    });
  }
  return result;
}
