/**
 * Migration 0012 (issue #13 point 4), on SQLite and PostgreSQL: clients registered before policy keys get one
 * from their name (slugified, made unique with -2, -3… in the order they were registered), the key is unique,
 * and existing Grant rows get their client's id as a column, from the payload.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

const MIGRATIONS = path.resolve(import.meta.dirname, '..', '..', 'src', 'store', 'migrations');

describe.each(dialects)('migration 0012 (client policy keys) on %s', (dialect) => {
  let database: TestDatabase;
  let opened: Database;
  // The migrations are written for Kysely<any>: the schema of before 0012 is not the one typed now.
  let db: Kysely<any>;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    opened = openDatabase(loadConfig({ env: { DATABASE_URL: database.url, PORTCULLIS_SECRET: TEST_SECRET } }).database);
    db = opened.db as Kysely<any>;
    const files = readdirSync(MIGRATIONS).filter((f) => /^\d{4}-.*\.ts$/.test(f)).sort();
    for (const file of files.filter((f) => f < '0012')) {
      const migration = (await import(path.join(MIGRATIONS, file))) as { up(db: Kysely<any>, context: { dialect: string }): Promise<void> };
      await migration.up(db, { dialect });
    }
  });
  afterAll(async () => {
    await opened?.close();
    await database?.drop();
  });

  it('gives the clients registered before it a key from their name, unique, and fills client_id on Grant rows', async () => {
    const client = (id: string, name: string, at: string) => ({
      client_id: id,
      name,
      kind: 'public',
      first_party: 0,
      redirect_uris: '[]',
      post_logout_redirect_uris: '[]',
      grant_types: '[]',
      backchannel_logout_uri: null,
      scope: null,
      secret_sealed: null,
      secret_created_at: null,
      created_at: at,
    });
    await db
      .insertInto('oidc_clients')
      .values([client('c1', 'Staff rota', '2024-01-01T00:00:00Z'), client('c2', 'Staff Rota!', '2024-01-02T00:00:00Z'), client('c3', '日本', '2024-01-03T00:00:00Z')])
      .execute();
    const artefact = (model: string, id: string, payload: object) => ({ model, id, payload: JSON.stringify(payload), grant_id: null, user_code: null, uid: null, account_id: 'u1', expires_at: null, consumed_at: null });
    await db.insertInto('oidc_artefacts').values([artefact('Grant', 'g1', { accountId: 'u1', clientId: 'c2' }), artefact('Session', 's1', { accountId: 'u1', clientId: 'c2' })]).execute();

    const migration = (await import(path.join(MIGRATIONS, readdirSync(MIGRATIONS).find((f) => f.startsWith('0012-'))!))) as { up(db: Kysely<any>, context: { dialect: string }): Promise<void> };
    await migration.up(db, { dialect });

    const keys = await db.selectFrom('oidc_clients').select(['client_id', 'key']).orderBy('client_id').execute();
    expect(keys).toEqual([
      { client_id: 'c1', key: 'staff-rota' },
      { client_id: 'c2', key: 'staff-rota-2' },
      { client_id: 'c3', key: 'client' },
    ]);
    await expect(db.updateTable('oidc_clients').set({ key: 'staff-rota' }).where('client_id', '=', 'c3').execute()).rejects.toThrow();
    const artefacts = await db.selectFrom('oidc_artefacts').select(['id', 'client_id']).orderBy('id').execute();
    expect(artefacts).toEqual([
      { id: 'g1', client_id: 'c2' },
      { id: 's1', client_id: null },
    ]);
  });
});
