/**
 * `portcullis keys list` and `keys rotate` (issue #13), the real binary against SQLite and PostgreSQL.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNING_KEY_RETIRE_AFTER_SECONDS } from '../../src/app/oidc/lifetimes.js';
import { loadConfig } from '../../src/config/load.js';
import { openDatabase } from '../../src/store/database.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

interface ListedKey {
  kid: string;
  alg: string;
  state: string;
  createdAt: string;
  retireAfter: string | null;
}

describe.each(dialects)('portcullis keys on %s', (dialect) => {
  let database: TestDatabase;
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(args, env);
  const list = async (): Promise<ListedKey[]> => {
    const result = await cli(['keys', 'list', '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as ListedKey[];
  };

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    env = {
      DATABASE_URL: database.url,
      PORTCULLIS_SECRET: TEST_SECRET,
      PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-keys-')),
      PUBLIC_URL: 'https://id.example.org',
    };
  });
  afterAll(async () => database?.drop());

  it('says it needs the server configuration', async () => {
    const result = await cli(['keys', 'rotate', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Needs: the server configuration');
  });

  it('lists nothing before the first start, and says so', async () => {
    const result = await cli(['keys', 'list']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('No signing keys yet');
    expect(await list()).toEqual([]);
  });

  it('rotates: new current keys, the old ones previous until the longest token lifetime has passed', async () => {
    expect((await cli(['keys', 'rotate'])).code).toBe(0);
    const first = await list();
    expect(first.map((k) => [k.alg, k.state]).sort()).toEqual([['ES256', 'current'], ['RS256', 'current']]);

    const started = Date.now();
    const result = await cli(['keys', 'rotate']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('New current keys');
    const second = await list();
    expect(second).toHaveLength(4);
    const previous = second.filter((k) => k.state === 'previous');
    expect(previous.map((k) => k.kid).sort()).toEqual(first.map((k) => k.kid).sort());
    for (const key of previous) {
      const retireAfter = Date.parse(key.retireAfter!);
      expect(retireAfter).toBeGreaterThanOrEqual(started + SIGNING_KEY_RETIRE_AFTER_SECONDS * 1000 - 1000);
      expect(retireAfter).toBeLessThanOrEqual(Date.now() + SIGNING_KEY_RETIRE_AFTER_SECONDS * 1000 + 1000);
    }
    expect(second.filter((k) => k.state === 'current').every((k) => k.retireAfter === null)).toBe(true);
  });

  it('shows a previous key as retired once its retire-after time has passed', async () => {
    // Move the retire-after times into the past, as time would.
    const db = openDatabase(loadConfig({ env }).database);
    try {
      await db.db.updateTable('oidc_signing_keys').set({ retire_after: new Date(Date.now() - 1000).toISOString() }).where('state', '=', 'previous').execute();
    } finally {
      await db.close();
    }
    const keys = await list();
    expect(keys.filter((k) => k.state === 'retired')).toHaveLength(2);
    expect(keys.filter((k) => k.state === 'current')).toHaveLength(2);
    const table = await cli(['keys', 'list']);
    expect(table.stdout.split('\n')[0]).toMatch(/^KID\s+ALG\s+STATE\s+CREATED\s+RETIRE AFTER$/);
    expect(table.stdout).toContain('retired');
  });

  it('never prints key material', async () => {
    for (const args of [['keys', 'list'], ['keys', 'list', '--json'], ['keys', 'rotate']]) {
      const result = await cli(args);
      expect(result.stdout).not.toMatch(/"(d|p|q|n|x|y)"\s*:/);
      expect(result.stdout).not.toContain('v1.');
    }
  });
});
