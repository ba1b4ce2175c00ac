/**
 * Test contexts on a fresh database: SQLite in a temporary folder, or a new PostgreSQL database at
 * 127.0.0.1:5432 (TEST_POSTGRES_URL overrides), created for the test file and dropped afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { createAppContext, type AppContext, type CreateContextOptions } from '../../src/app/context.js';
import { loadConfig } from '../../src/config/load.js';
import { createPostgresDatabase } from './postgres.js';

export type TestDialect = 'sqlite' | 'postgres';

/** Every integration suite runs on both. */
export const dialects: TestDialect[] = ['sqlite', 'postgres'];

export const TEST_SECRET = Buffer.alloc(32, 7).toString('base64url');

const adminUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(dialect: TestDialect): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'portcullis-test-'));
    return { url: `sqlite:${path.join(dir, 'test.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  return createPostgresDatabase(adminUrl, 'portcullis_test');
}

export interface TestContext extends AppContext {
  database: TestDatabase;
  /** Moves the test clock (when the context was made with a controllable clock). */
  advance(seconds: number): void;
  /** Closes the context and drops the database. */
  destroy(): Promise<void>;
}

export async function createTestContext(
  dialect: TestDialect,
  env: Record<string, string> = {},
  options: CreateContextOptions & { controlClock?: boolean } = {},
): Promise<TestContext> {
  const database = await createTestDatabase(dialect);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'portcullis-data-'));
  const config = loadConfig({
    env: {
      PUBLIC_URL: 'http://localhost:8080',
      PORTCULLIS_SECRET: TEST_SECRET,
      PORTCULLIS_DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      LOG_LEVEL: 'silent',
      ...env,
    },
  });
  let offset = 0;
  const clock = options.controlClock ? () => new Date(Date.now() + offset) : undefined;
  const ctx = await createAppContext(config, {
    logger: options.logger ?? pino({ level: 'silent' }),
    ...(clock ? { clock } : {}),
    ...options,
  });
  return Object.assign(ctx, {
    database,
    advance(seconds: number) {
      offset += seconds * 1000;
    },
    async destroy() {
      await ctx.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}
