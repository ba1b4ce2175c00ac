/**
 * Opens the database: SQLite (better-sqlite3, WAL) by default, PostgreSQL (pg) for scale-out.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type Driver, type SqliteDatabase, type SqliteDialectConfig } from 'kysely';
import { createRequire } from 'node:module';
import type pg from 'pg';

/** pg is loaded only for PostgreSQL: a SQLite server never holds it (about 2 MB of heap, 85 ms of start; docs/performance.md#memory-and-start). */
const require = createRequire(import.meta.url);
import type { DatabaseConfig } from '../config/load.js';
import { isDependencyUnavailable } from './errors.js';
import { currentPipelineScope, inPipelineScope, type PipelineScope } from './pipeline.js';
import { statementName } from './prepared.js';
import type { DatabaseSchema } from './schema.js';

export type Dialect = DatabaseConfig['kind'];

/** Statements run and round trips made since the database was opened (metrics, bench/sign-in). */
export interface StatementCounts {
  statements: number;
  /** Of which inserts, updates and deletes. */
  writes: number;
  /**
   * Times a statement was sent while nothing else was awaited on its connection (PostgreSQL: statements
   * sent together in a pipeline are one). SQLite runs in this process: none.
   */
  roundTrips: number;
}

export interface Database {
  db: Kysely<DatabaseSchema>;
  dialect: Dialect;
  counts: StatementCounts;
  /**
   * Runs `work` with its statements pipelined on one connection where they are issued together
   * (src/store/pipeline.ts); on SQLite, simply runs it.
   */
  pipelined<T>(work: () => Promise<T>): Promise<T>;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Kysely writes its SQL in lower case: an insert, update or delete starts with its verb. */
const isWrite = (text: string) => text.startsWith('insert') || text.startsWith('update') || text.startsWith('delete');

/**
 * Kysely's SQLite driver prepares every statement afresh; preparing costs about as much as running a
 * simple query. Statements are reusable (Kysely runs one query at a time on the connection), so they are
 * kept by their SQL text. The cache is emptied when it grows past a bound (queries with IN lists vary).
 */
function withStatementCache(connection: SQLite.Database, counts: StatementCounts): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    prepare(text: string) {
      // Kysely prepares once per statement it runs.
      counts.statements++;
      if (isWrite(text)) counts.writes++;
      let statement = statements.get(text);
      if (!statement) {
        if (statements.size >= 500) statements.clear();
        statement = connection.prepare(text);
        statements.set(text, statement);
      }
      return statement as unknown as ReturnType<SqliteDatabase['prepare']>;
    },
    close() {
      statements.clear();
      connection.close();
    },
  };
}

/**
 * Getting a connection is retried once, after a moment, when the server refused or dropped it (a
 * PostgreSQL restart, a failover): nothing has been sent yet, so a retry cannot do anything twice.
 * A statement that fails on a connection that dies under it is never retried here: whether a write
 * committed is then unknown, so the request fails (503) and the person tries again.
 */
function retryingConnect(pool: pg.Pool): () => Promise<pg.PoolClient> {
  return async () => {
    try {
      return await pool.connect();
    } catch (error) {
      if (!isDependencyUnavailable(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
      return pool.connect();
    }
  };
}

type Query = (text: unknown, values?: unknown) => Promise<pg.QueryResult>;
const wrapped = new WeakSet<pg.PoolClient>();
const TRANSACTION_START = /^\s*(begin|start transaction)\b/i;

/**
 * The connections Kysely's PostgresDialect draws from. Each client counts what it sends, names the
 * statements of the sign-in path (src/store/prepared.ts: PostgreSQL then parses and plans each once per
 * connection, not on every sign-in) and runs in pg's pipeline mode, which changes nothing for statements
 * sent one at a time. Inside a pipelined scope (src/store/pipeline.ts), the statements made outside a
 * transaction share one client, so those issued together travel together.
 */
function postgresConnections(pool: pg.Pool, counts: StatementCounts) {
  const connect = retryingConnect(pool);
  const acquire = async (): Promise<pg.PoolClient> => {
    const client = await connect();
    if (!wrapped.has(client)) {
      wrapped.add(client);
      // A connection that drops while a client is checked out (between the statements of a transaction, say)
      // makes the client emit 'error', which with no listener would end the process (found by
      // test/integration/node-loss.test.ts). The statement in flight or the next one fails on it instead (503);
      // the pool discards the client when it is released with that error.
      if (client.listenerCount('error') === 0) client.on('error', () => {});
      const send = client.query.bind(client) as Query;
      let inFlight = 0;
      const settle = () => void inFlight--;
      (client as unknown as { query: Query }).query = (text, values) => {
        if (typeof text !== 'string') return send(text, values);
        counts.statements++;
        if (isWrite(text)) counts.writes++;
        if (inFlight++ === 0) counts.roundTrips++;
        const name = statementName(text);
        const result = send(name ? { name, text } : text, values);
        result.then(settle, settle);
        return result;
      };
    }
    return client;
  };
  /** A scope's stand-in for a client: the shared one, or for a transaction a client of its own. */
  const scoped = (scope: PipelineScope) => {
    let own: Promise<pg.PoolClient> | null = null;
    let bound = false;
    return {
      query(text: unknown, values?: unknown): Promise<pg.QueryResult> {
        if (!bound) {
          bound = true;
          if (typeof text === 'string' && TRANSACTION_START.test(text)) own = acquire();
        }
        const client = own ?? (scope.shared ??= acquire()) as Promise<pg.PoolClient>;
        return client.then((c) => c.query(text as string, values as unknown[]));
      },
      release(error?: Error | boolean) {
        // The shared client is given back when the scope ends.
        own?.then((c) => c.release(error), () => undefined);
      },
    };
  };
  return {
    connect: async () => {
      const scope = currentPipelineScope();
      return scope ? (scoped(scope) as unknown as pg.PoolClient) : acquire();
    },
    end: () => pool.end(),
    pipelined: <T>(work: () => Promise<T>) =>
      inPipelineScope(work, async (scope, failed) => {
        const client = (await (scope.shared as Promise<pg.PoolClient> | null)?.catch(() => null)) ?? null;
        // After a failure the connection may be in any state: the pool replaces it.
        client?.release(failed ? new Error('a pipelined request failed') : undefined);
      }),
  };
}

/**
 * Transactions on SQLite begin IMMEDIATE (taking the write lock at once, waiting up to busy_timeout for
 * it). A deferred BEGIN that reads and then writes while another process (a `portcullis` verb beside
 * the server) holds the write lock gets SQLITE_BUSY at once, without waiting — SQLite cannot wait there
 * without risking a deadlock (https://www.sqlite.org/lang_transaction.html) — and the verb failed with
 * "database is locked" under load (issue #17, crash-consistency test).
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

export function openDatabase(config: DatabaseConfig): Database {
  let db: Kysely<DatabaseSchema>;
  const counts: StatementCounts = { statements: 0, writes: 0, roundTrips: 0 };
  let pipelined = <T>(work: () => Promise<T>) => work();
  if (config.kind === 'sqlite') {
    if (config.file !== ':memory:') mkdirSync(path.dirname(config.file), { recursive: true, mode: 0o700 });
    const connection = new SQLite(config.file);
    connection.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode; only a power loss can drop the last commits.
    connection.pragma('synchronous = NORMAL');
    connection.pragma('foreign_keys = ON');
    connection.pragma('busy_timeout = 5000');
    // 64 MiB of page cache (the default is 2 MiB): the compliance report walks every user, and the
    // working set of a directory of a million users does not fit in 2 MiB.
    connection.pragma('cache_size = -65536');
    db = new Kysely<DatabaseSchema>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(connection, counts) }) });
  } else {
    // A connection that cannot be had in 5 s (an unreachable server) fails the request with a 503,
    // rather than holding it until the client gives up.
    const { Pool } = require('pg') as typeof pg;
    // pipeline: pg sends a statement without waiting for the answers to those before it on the same client.
    const pool = new Pool({ connectionString: config.url, max: 10, connectionTimeoutMillis: 5000, pipeline: true } as pg.PoolConfig);
    // An idle client's error (the server restarting) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const connections = postgresConnections(pool, counts);
    pipelined = connections.pipelined;
    db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool: connections }) });
  }
  return {
    db,
    dialect: config.kind,
    counts,
    pipelined,
    async ping() {
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await db.destroy();
    },
  };
}
