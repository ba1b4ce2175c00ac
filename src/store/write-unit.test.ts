import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from './database.js';
import { migrateToLatest } from './migrations/index.js';
import { deferWrite, inOneTransaction } from './write-unit.js';

describe('one transaction for a request’s writes', () => {
  let database: Database;
  const names = async () => (await database.db.selectFrom('organisations').select('name').orderBy('name').execute()).map((r) => r.name);
  const insert = (name: string) => async (db: Database['db']) =>
    void (await db.insertInto('organisations').values({ id: name, name, name_normalised: name, created_at: '2026-01-01T00:00:00Z' }).execute());

  beforeAll(async () => {
    database = openDatabase({ kind: 'sqlite', file: ':memory:' });
    await migrateToLatest(database.db, 'sqlite');
  });
  afterAll(async () => database.close());

  it('writes at once outside a unit, and keeps writes inside one until its work is done', async () => {
    expect(deferWrite(database.db, insert('a'))).toBe(false);
    let seenDuring: string[] = [];
    await inOneTransaction(database.db, async () => {
      expect(deferWrite(database.db, insert('b'))).toBe(true);
      expect(deferWrite(database.db, insert('c'))).toBe(true);
      seenDuring = await names();
    });
    expect(seenDuring).toEqual([]);
    expect(await names()).toEqual(['b', 'c']);
  });

  it('writes all or none: a failing write rolls back those before it', async () => {
    await expect(
      inOneTransaction(database.db, async () => {
        deferWrite(database.db, insert('d'));
        deferWrite(database.db, async () => {
          throw new Error('lost the race');
        });
      }),
    ).rejects.toThrow('lost the race');
    expect(await names()).toEqual(['b', 'c']);
  });

  it('leaves a write inside an explicit transaction in it, and writes at once after the unit closed', async () => {
    let late: Promise<void> | null = null;
    await inOneTransaction(database.db, async () => {
      await database.db.transaction().execute(async (trx) => {
        expect(deferWrite(trx, insert('e'))).toBe(false);
      });
      late = new Promise((resolve) => setTimeout(resolve, 10)).then(() => expect(deferWrite(database.db, insert('f'))).toBe(false));
    });
    await late;
  });
});
