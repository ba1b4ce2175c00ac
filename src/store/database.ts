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
import type { DatabaseSchema } from './schema.js';

export type Dialect = DatabaseConfig['kind'];

export interface Database {
  db: Kysely<DatabaseSchema>;
  dialect: Dialect;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Kysely's SQLite driver prepares every statement afresh; preparing costs about as much as running a
 * simple query. Statements are reusable (Kysely runs one query at a time on the connection), so they are
 * kept by their SQL text. The cache is emptied when it grows past a bound (queries with IN lists vary).
 */
function withStatementCache(connection: SQLite.Database): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    prepare(text: string) {
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
function retryingConnect(pool: pg.Pool): { connect(): Promise<pg.PoolClient>; end(): Promise<void> } {
  const connect = async (): Promise<pg.PoolClient> => {
    try {
      return await pool.connect();
    } catch (error) {
      if (!isDependencyUnavailable(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
      return pool.connect();
    }
  };
  return {
    async connect() {
      const client = await connect();
      // A connection that drops while a client is checked out (between the statements of a transaction, say)
      // makes the client emit 'error', which with no listener would end the process (found by
      // test/integration/node-loss.test.ts). The statement in flight or the next one fails on it instead (503);
      // the pool discards the client when it is released with that error.
      if (client.listenerCount('error') === 0) client.on('error', () => {});
      return client;
    },
    end: () => pool.end(),
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
    db = new Kysely<DatabaseSchema>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(connection) }) });
  } else {
    // A connection that cannot be had in 5 s (an unreachable server) fails the request with a 503,
    // rather than holding it until the client gives up.
    const { Pool } = require('pg') as typeof pg;
    const pool = new Pool({ connectionString: config.url, max: 10, connectionTimeoutMillis: 5000 });
    // An idle client's error (the server restarting) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool: retryingConnect(pool) }) });
  }
  return {
    db,
    dialect: config.kind,
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
