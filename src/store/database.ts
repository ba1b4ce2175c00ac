/**
 * Opens the database: SQLite (better-sqlite3, WAL) by default, PostgreSQL (pg) for scale-out.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig } from '../config/load.js';
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
    db = new Kysely<DatabaseSchema>({ dialect: new SqliteDialect({ database: withStatementCache(connection) }) });
  } else {
    const pool = new pg.Pool({ connectionString: config.url, max: 10 });
    // An idle client's error (the server restarting) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }) });
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
