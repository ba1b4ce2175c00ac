/**
 * Display and organisation names with control characters (a newline above all) are refused wherever
 * they come in — `org add`, `user add`, CSV import, ORGANISATION_NAME — with a message naming the field,
 * and nothing is written (issue #12). On SQLite and PostgreSQL, and through the real binary.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { importUsers } from '../../src/app/import-users.js';
import { isPortcullisError } from '../../src/core/errors.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { runCli } from '../helpers/cli.js';
import { createTestContext, createTestDatabase, dialects, TEST_SECRET, type TestContext, type TestDatabase } from '../helpers/context.js';

const cli = { kind: 'cli', name: 'operator' } as const;

async function messageOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isPortcullisError(error)) return error.message;
    throw error;
  }
  return 'no error';
}

describe.each(dialects)('names with control characters on %s', (dialect) => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    await addOrganisation(ctx, 'North Trust', cli);
  });
  afterAll(async () => ctx?.destroy());

  const counts = async () => ({
    organisations: (await ctx.store.organisations.list()).length,
    users: (await ctx.store.users.list({})).length,
    audit: (await ctx.store.audit.list({ limit: 1000 })).length,
  });

  it('refuses an organisation name with a newline, naming the field, and writes nothing', async () => {
    const before = await counts();
    for (const name of ['North\nTrust', 'Evil\r\n=cmd|" /C calc"!A0', 'Trust\u2028Two', 'Nul\u0000']) {
      expect(await messageOf(addOrganisation(ctx, name, cli))).toBe('Enter an organisation name of 1 to 120 characters, without line breaks or control characters');
    }
    expect(await counts()).toEqual(before);
  });

  it('refuses a display name with a newline, naming the field, and writes nothing', async () => {
    const before = await counts();
    const message = await messageOf(addUser(ctx, { email: 'nl@example.org', displayName: 'Ann\n=1+1', organisation: 'North Trust', roles: [] }, cli));
    expect(message).toBe('Enter a display name of 1 to 200 characters, without line breaks or control characters');
    expect(await ctx.store.users.findByEmail('nl@example.org')).toBeUndefined();
    expect(await counts()).toEqual(before);
  });

  it('reports an imported row whose name holds a newline by its line, and imports the others', async () => {
    const csv = ['email,name,organisation', 'good@example.org,Good Name,North Trust', '"bad@example.org","Bad\n=HYPERLINK(""http://evil.example"")","North Trust"', 'also@example.org,Also Good,North Trust'].join('\n');
    const report = await importUsers(ctx, Readable.from([csv]), cli);
    expect(report.imported).toBe(2);
    expect(report.failed).toEqual([{ line: 4, email: 'bad@example.org', message: 'Enter a display name of 1 to 200 characters, without line breaks or control characters' }]);
    expect(await ctx.store.users.findByEmail('bad@example.org')).toBeUndefined();
    expect((await ctx.store.users.findByEmail('good@example.org'))?.display_name).toBe('Good Name');
  });
});

describe('names with control characters through the real binary', () => {
  let database: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    env = { DATABASE_URL: database.url, PORTCULLIS_SECRET: TEST_SECRET, PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-names-')), PUBLIC_URL: 'https://id.example.org' };
  });
  afterAll(async () => database?.drop());

  it('refuses `org add` and `user add --name` with a newline, saying which field, and lists nothing new', async () => {
    const org = await runCli(['org', 'add', 'North\nTrust'], env);
    expect(org.code).toBe(1);
    expect(org.stderr.trim()).toBe('Enter an organisation name of 1 to 120 characters, without line breaks or control characters');
    expect((await runCli(['org', 'add', 'North Trust'], env)).code).toBe(0);
    const user = await runCli(['user', 'add', '--email', 'ann@example.org', '--name', 'Ann\r\n=1+1', '--org', 'North Trust'], env);
    expect(user.code).toBe(1);
    expect(user.stderr.trim()).toBe('Enter a display name of 1 to 200 characters, without line breaks or control characters');
    expect(JSON.parse((await runCli(['org', 'list', '--json'], env)).stdout)).toEqual([expect.objectContaining({ name: 'North Trust' })]);
    expect(JSON.parse((await runCli(['user', 'list', '--json'], env)).stdout)).toEqual([]);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'pc-names-csv-'));
    const file = path.join(dir, 'users.csv');
    writeFileSync(file, 'email,name,organisation\nbo@example.org,"Bo\n=cmd",North Trust\n');
    const imported = await runCli(['import', 'users', file], env);
    expect(imported.code).toBe(1);
    expect(imported.stderr).toContain('line 3: bo@example.org: Enter a display name of 1 to 200 characters, without line breaks or control characters');
  });
});

describe('ORGANISATION_NAME', () => {
  it('refuses line breaks and control characters (it goes into email subjects and page headers)', () => {
    const load = (name: string) => () =>
      loadConfig({ env: { PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-names-')), PORTCULLIS_SECRET: TEST_SECRET, ORGANISATION_NAME: name } });
    for (const name of ['NHS\nmail', 'NHS\u0000mail', 'NHS\u202email']) {
      expect(load(name)).toThrow(ConfigError);
      expect(load(name)).toThrow('Configuration option ORGANISATION_NAME');
    }
    expect(load('NHSmail – Zoë’s Trust')().organisationName).toBe('NHSmail – Zoë’s Trust');
  });
});
