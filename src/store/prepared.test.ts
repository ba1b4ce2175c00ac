import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openDatabase, type Database } from './database.js';
import { migrateToLatest } from './migrations/index.js';
import { prepared, PreparedQueryError } from './prepared.js';

let database: Database;

beforeAll(async () => {
  database = openDatabase({ kind: 'sqlite', file: ':memory:' });
  await migrateToLatest(database.db, 'sqlite');
});
afterAll(() => database.close());

const now = '2026-11-28T12:00:00.000Z';
const later = '2026-11-28T13:00:00.000Z';

describe('prepared queries', () => {
  const insert = prepared(4, (db, id, state, createdAt, expiresAt) => db.insertInto('sign_in_flows').values({ id, state, created_at: createdAt, expires_at: expiresAt }));
  // A constant beside the placeholders: 'never' is bound as a parameter too, and must stay as built.
  const live = prepared(2, (db, id, at) => db.selectFrom('sign_in_flows').select(['id', 'state']).where('id', '=', id).where('expires_at', '>', at).where('state', '!=', 'never'));

  it('runs with new values each time, keeping constants as built', async () => {
    await insert(database.db, 'flow-1', '{"a":1}', now, later);
    await insert(database.db, 'flow-2', 'never', now, later);
    expect((await live(database.db, 'flow-1', now)).rows).toEqual([{ id: 'flow-1', state: '{"a":1}' }]);
    expect((await live(database.db, 'flow-2', now)).rows).toEqual([]);
    expect((await live(database.db, 'flow-1', later)).rows).toEqual([]);
  });

  it('runs inside a transaction, and a rollback undoes it', async () => {
    await expect(
      database.db.transaction().execute(async (trx) => {
        await insert(trx, 'flow-3', '{}', now, later);
        expect((await live(trx, 'flow-3', now)).rows).toHaveLength(1);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect((await live(database.db, 'flow-3', now)).rows).toEqual([]);
  });

  it('refuses a query whose placeholder is changed, inlined or left out, and a call with the wrong number of values', async () => {
    const changed = prepared(1, (db, id) => db.selectFrom('sign_in_flows').select('id').where('id', '=', id.toUpperCase()));
    await expect(changed(database.db, 'x')).rejects.toThrow(PreparedQueryError);
    const inlined = prepared(1, (db, id) => db.selectFrom('sign_in_flows').select('id').where(sql.lit(id), '=', 'x'));
    await expect(inlined(database.db, 'x')).rejects.toThrow(PreparedQueryError);
    const unused = prepared(2, (db, id) => db.selectFrom('sign_in_flows').select('id').where('id', '=', id));
    await expect(unused(database.db, 'x', 'y')).rejects.toThrow(PreparedQueryError);
    await expect(live(database.db, 'flow-1')).rejects.toThrow(PreparedQueryError);
  });
});
