/**
 * `portcullis token add | list | revoke` (issue #15 point 6): a personal API token is printed once, kept
 * only hashed, listed without itself, and refused by the admin API once revoked. On SQLite (the verbs
 * share the admin API's use cases, tested on both databases in admin-api.test.ts).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { openDatabase } from '../../src/store/database.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

describe('portcullis token', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(args, env);

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    env = { DATABASE_URL: database.url, PORTCULLIS_SECRET: TEST_SECRET, PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-tokens-')), PUBLIC_URL: 'https://id.example.org' };
    expect((await cli(['org', 'add', 'Token Trust'])).code).toBe(0);
    expect((await cli(['user', 'add', '--email', 'alex@example.org', '--name', 'Alex', '--org', 'Token Trust', '--role', 'global-admin'])).code).toBe(0);
  });
  afterAll(async () => database?.drop());

  it('prints a token once, keeps only its hash, lists it without the token, and revokes it', async () => {
    const added = await cli(['token', 'add', '--user', 'alex@example.org', '--name', 'Reports', '--scope', 'admin:read,admin:passes', '--json']);
    expect(added.code, added.stderr).toBe(0);
    const { id, token, scopes } = JSON.parse(added.stdout) as { id: string; token: string; scopes: string[] };
    expect(token).toMatch(/^pcat_[A-Za-z0-9_-]{43}$/);
    expect(scopes).toEqual(['admin:passes', 'admin:read']);
    const db = openDatabase(loadConfig({ env }).database);
    try {
      const row = await db.db.selectFrom('admin_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(JSON.stringify(row)).not.toContain(token.slice(5));
    } finally {
      await db.close();
    }
    const listed = await cli(['token', 'list']);
    expect(listed.stdout).toContain(id);
    expect(listed.stdout).toContain('Reports');
    expect(listed.stdout).not.toContain(token);
    const revoked = await cli(['token', 'revoke', id]);
    expect(revoked.code).toBe(0);
    expect((await cli(['token', 'list', '--json'])).stdout).toContain('"revoked_at": "');
    // Not twice, and a scope we do not have is a usage error.
    expect((await cli(['token', 'revoke', id])).code).not.toBe(0);
    const badScope = await cli(['token', 'add', '--user', 'alex@example.org', '--name', 'X', '--scope', 'admin:everything']);
    expect(badScope.code).not.toBe(0);
    expect(badScope.stderr).toContain('admin:read, admin:passes, admin:sessions, admin:accounts');
  });

  it('tells a service client where it may use its admin scopes (client admin-scope)', async () => {
    const added = await cli(['client', 'add', '--service', '--name', 'Robot', '--scope', 'admin:read', '--json']);
    expect(added.code, added.stderr).toBe(0);
    const { clientId } = JSON.parse(added.stdout) as { clientId: string };
    const scoped = await cli(['client', 'admin-scope', clientId, '--organisation', 'Token Trust']);
    expect(scoped.code, scoped.stderr).toBe(0);
    expect(scoped.stdout).toContain('in 1 organisation');
    const both = await cli(['client', 'admin-scope', clientId, '--everywhere', '--organisation', 'Token Trust']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('Say either --everywhere or one or more --organisation');
    expect((await cli(['client', 'admin-scope', clientId, '--organisation', 'Nowhere'])).stderr).toContain('There is no organisation called Nowhere');
  });
});
