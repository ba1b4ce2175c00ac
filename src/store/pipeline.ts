/**
 * Fewer round trips to PostgreSQL on the sign-in path (issue #18 point 2; docs/performance.md#the-postgresql-path).
 *
 * Inside `pipelined(work)` — one per sign-in request — the statements made outside a transaction share
 * one connection in pg's pipeline mode: statements issued together (`together`, and the writes started by
 * `write` below) are sent together, and their answers come back together: one round trip where there
 * were several, and one wake-up of the event loop where there were several. A transaction begun inside
 * the scope still takes a connection of its own, so nothing issued beside it lands inside it.
 *
 * Writes whose result nobody reads (an audit event, a session, a flow deleted, a throttle cleared) are
 * started at once and not waited for, so they join whatever is sent next; the scope waits for all of
 * them before it returns, so the answer to the person is sent only after they are written, and a write
 * that fails fails the request as it would have. On SQLite (in-process, no round trips) the scope is
 * nothing: every statement runs at once, in order.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Kysely, Transaction } from 'kysely';
import type { DatabaseSchema } from './schema.js';
import { deferWrite } from './write-unit.js';

type Db = Kysely<DatabaseSchema> | Transaction<DatabaseSchema>;

export interface PipelineScope {
  /** The connection the scope's statements share, once one is needed (PostgreSQL only). */
  shared: Promise<unknown> | null;
  /** Set when the scope has ended: anything later (a late continuation) runs outside it. */
  closed: boolean;
  /** Writes started and not yet waited for. */
  started: Array<Promise<unknown>>;
}

export const pipelineScopes = new AsyncLocalStorage<PipelineScope>();

/** The open scope, if any. */
export function currentPipelineScope(): PipelineScope | undefined {
  const scope = pipelineScopes.getStore();
  return scope && !scope.closed ? scope : undefined;
}

/**
 * Runs `work` in a scope (joining the current one, if any), then waits for the writes it started; the
 * first error, of the work or of a write, is thrown. `release` gives back the shared connection.
 */
export async function inPipelineScope<T>(work: () => Promise<T>, release: (scope: PipelineScope, failed: boolean) => Promise<void>): Promise<T> {
  if (currentPipelineScope()) return work();
  const scope: PipelineScope = { shared: null, closed: false, started: [] };
  let failure: { error: unknown } | null = null;
  let result: T | undefined;
  try {
    result = await pipelineScopes.run(scope, work);
  } catch (error) {
    failure = { error };
  }
  // A write may start another (none does today): wait until none is left.
  while (scope.started.length) {
    for (const settled of await Promise.allSettled(scope.started.splice(0))) {
      if (settled.status === 'rejected' && !failure) failure = { error: settled.reason };
    }
  }
  scope.closed = true;
  await release(scope, failure !== null);
  if (failure) throw failure.error;
  return result as T;
}

/**
 * A write nobody reads back: kept for the current write unit (src/store/write-unit.ts), started now
 * alongside the scope's other statements, or else written now.
 */
export async function write(db: Db, op: (db: Db) => Promise<void>): Promise<void> {
  if (deferWrite(db, op)) return;
  const scope = db.isTransaction ? undefined : currentPipelineScope();
  if (!scope) return op(db);
  const started = op(db);
  // Handled here so that a failure before the scope waits for it is not an unhandled rejection; the
  // scope still sees it (Promise.allSettled) and throws it.
  started.catch(() => undefined);
  scope.started.push(started);
}
