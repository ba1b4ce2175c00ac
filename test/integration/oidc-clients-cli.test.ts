/**
 * `portcullis client add/list/show/remove/rotate-secret` (issue #13, second step), the real binary against
 * SQLite and PostgreSQL: what each verb prints, that a secret is printed once and stored only sealed, and
 * that a bad value is refused (exit 2) naming its option.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { openText } from '../../src/crypto/seal.js';
import { deriveKeys } from '../../src/crypto/keys.js';
import { openDatabase } from '../../src/store/database.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

interface ListedClient {
  clientId: string;
  name: string;
  kind: string;
  firstParty: boolean;
  tokenEndpointAuthMethod: string;
  grantTypes: string[];
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backChannelLogoutUri: string | null;
  scopes: string[];
  secretCreatedAt: string | null;
  clientSecret?: string | null;
}

describe.each(dialects)('portcullis client on %s', (dialect) => {
  let database: TestDatabase;
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(args, env);
  const addJson = async (args: string[]): Promise<ListedClient> => {
    const result = await cli(['client', 'add', ...args, '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as ListedClient;
  };
  const storedRow = async (clientId: string) => {
    const db = openDatabase(loadConfig({ env }).database);
    try {
      return await db.db.selectFrom('oidc_clients').selectAll().where('client_id', '=', clientId).executeTakeFirstOrThrow();
    } finally {
      await db.close();
    }
  };
  const secrets: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    env = {
      DATABASE_URL: database.url,
      PORTCULLIS_SECRET: TEST_SECRET,
      PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-clients-')),
      PUBLIC_URL: 'https://id.example.org',
    };
  });
  afterAll(async () => database?.drop());

  it('says, for every verb, that it needs the server configuration and database', async () => {
    for (const verb of ['add', 'list', 'show', 'remove', 'rotate-secret']) {
      const result = await cli(['client', verb, '--help']);
      expect(result.code, verb).toBe(0);
      expect(result.stdout, verb).toContain('Needs: the server configuration (environment or PORTCULLIS_CONFIG) and its database.');
    }
  });

  it('says when there are no clients', async () => {
    const result = await cli(['client', 'list']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('There are no clients yet');
  });

  it('adds a confidential client, prints its secret once, and stores it only sealed', async () => {
    const result = await cli([
      'client', 'add', '--name', 'Staff rota', '--confidential', '--first-party',
      '--redirect-uri', 'https://rota.example.org/callback', '--redirect-uri', 'http://localhost:3000/callback',
      '--post-logout-redirect-uri', 'https://rota.example.org/', '--back-channel-logout-uri', 'https://rota.example.org/logout',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const clientId = /Client ID: (\S+)/.exec(result.stdout)![1]!;
    const secret = /Client secret: (\S+)/.exec(result.stdout)![1]!;
    // 256 bits of randomness, base64url: 43 characters.
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(clientId).toMatch(/^[0-9a-f]{32}$/);
    expect(result.stdout).toContain('shown only this once');
    secrets.push(secret);

    const row = await storedRow(clientId);
    expect(row.secret_sealed).toMatch(/^v1\./);
    expect(row.secret_sealed).not.toContain(secret);
    expect(JSON.stringify(row)).not.toContain(secret);
    // Sealed under the key-encryption key and bound to this client: it opens only as this client's secret.
    const { keyEncryption } = deriveKeys(loadConfig({ env }).secret.key);
    expect(openText(keyEncryption, row.secret_sealed!, `oidc-client-secret:${clientId}`)).toBe(secret);
    expect(() => openText(keyEncryption, row.secret_sealed!, 'oidc-client-secret:another')).toThrow();

    const shown = await cli(['client', 'show', clientId, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      clientId,
      name: 'Staff rota',
      kind: 'confidential',
      firstParty: true,
      tokenEndpointAuthMethod: 'client_secret_basic',
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: ['https://rota.example.org/callback', 'http://localhost:3000/callback'],
      postLogoutRedirectUris: ['https://rota.example.org/'],
      backChannelLogoutUri: 'https://rota.example.org/logout',
    });
  });

  it('adds a public client (no secret, PKCE) and a service client (client credentials only, with its scopes)', async () => {
    const spa = await addJson(['--name', 'Timesheets', '--redirect-uri', 'http://127.0.0.1:8400/cb', '--id-token-alg', 'ES256']);
    expect(spa).toMatchObject({ kind: 'public', tokenEndpointAuthMethod: 'none', firstParty: false, clientSecret: null, grantTypes: ['authorization_code', 'refresh_token'], idTokenSignedResponseAlg: 'ES256' });
    expect((await storedRow(spa.clientId)).id_token_alg).toBe('ES256');
    expect((await storedRow(spa.clientId)).secret_sealed).toBeNull();

    const service = await addJson(['--name', 'Payroll export', '--service', '--scope', 'reports:read', '--scope', 'reports:list reports:read']);
    expect(service).toMatchObject({ kind: 'service', grantTypes: ['client_credentials'], redirectUris: [], scopes: ['reports:read', 'reports:list'] });
    expect(service.clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    secrets.push(service.clientSecret!);
  });

  it('rotates a secret: a new one, printed once, and the stored one replaced', async () => {
    const [service] = (JSON.parse((await cli(['client', 'list', '--json'])).stdout) as ListedClient[]).filter((c) => c.kind === 'service');
    const before = await storedRow(service!.clientId);
    const result = await cli(['client', 'rotate-secret', service!.clientId]);
    expect(result.code, result.stderr).toBe(0);
    const secret = /Client secret: (\S+)/.exec(result.stdout)![1]!;
    expect(secrets).not.toContain(secret);
    secrets.push(secret);
    const after = await storedRow(service!.clientId);
    expect(after.secret_sealed).not.toBe(before.secret_sealed);
    expect(openText(deriveKeys(loadConfig({ env }).secret.key).keyEncryption, after.secret_sealed!, `oidc-client-secret:${service!.clientId}`)).toBe(secret);

    const spa = (JSON.parse((await cli(['client', 'list', '--json'])).stdout) as ListedClient[]).find((c) => c.kind === 'public')!;
    const refused = await cli(['client', 'rotate-secret', spa.clientId]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is public: it has no secret to rotate');
  });

  it('never prints a secret again: list and show, as text or JSON', async () => {
    const listed = JSON.parse((await cli(['client', 'list', '--json'])).stdout) as ListedClient[];
    expect(listed).toHaveLength(3);
    const outputs = [await cli(['client', 'list']), await cli(['client', 'list', '--json'])];
    for (const c of listed) outputs.push(await cli(['client', 'show', c.clientId]), await cli(['client', 'show', c.clientId, '--json']));
    for (const result of outputs) {
      expect(result.code, result.stderr).toBe(0);
      for (const secret of secrets) expect(result.stdout).not.toContain(secret);
      expect(result.stdout).not.toContain('v1.');
      expect(result.stdout).not.toMatch(/secret":/i);
    }
    const table = outputs[0]!.stdout.split('\n')[0];
    expect(table).toMatch(/^CLIENT ID\s+KEY\s+NAME\s+KIND\s+FIRST PARTY\s+GRANT TYPES\s+CREATED$/);
  });

  it.each([
    [['--name', 'A', '--redirect-uri', 'http://app.example.org/cb'], '--redirect-uri', 'must use https'],
    [['--name', 'A', '--redirect-uri', 'https://app.example.org/cb#done'], '--redirect-uri', 'fragment'],
    [['--name', 'A', '--redirect-uri', '/cb'], '--redirect-uri', 'not an absolute URI'],
    [['--name', 'A', '--redirect-uri', 'javascript:alert(1)'], '--redirect-uri', 'must use https'],
    [['--name', 'Line one\nLine two', '--redirect-uri', 'https://app.example.org/cb'], '--name', 'control characters'],
    [['--name', 'A'], '--redirect-uri', 'at least one'],
    [['--name', 'A', '--redirect-uri', 'https://a.example.org/cb', '--post-logout-redirect-uri', 'http://a.example.org/'], '--post-logout-redirect-uri', 'must use https'],
    [['--name', 'A', '--redirect-uri', 'https://a.example.org/cb', '--back-channel-logout-uri', 'http://a.example.org/bc'], '--back-channel-logout-uri', 'must use https'],
    [['--name', 'A', '--service', '--redirect-uri', 'https://a.example.org/cb'], '--redirect-uri', 'no redirect URI'],
    [['--name', 'A', '--service', '--scope', 'a"b'], '--scope', 'not a scope'],
  ])('refuses %j, naming %s, and adds nothing', async (args, option, message) => {
    const result = await cli(['client', 'add', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(option);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
    expect(JSON.parse((await cli(['client', 'list', '--json'])).stdout)).toHaveLength(3);
  });

  it('exits 2 for a missing --name, and 1 for an unknown client', async () => {
    expect((await cli(['client', 'add', '--redirect-uri', 'https://a.example.org/cb'])).code).toBe(2);
    const badAlg = await cli(['client', 'add', '--name', 'Odd', '--redirect-uri', 'https://a.example.org/cb', '--id-token-alg', 'HS256']);
    expect(badAlg.code).toBe(2);
    expect(badAlg.stderr).toContain('--id-token-alg');
    for (const verb of ['show', 'remove', 'rotate-secret']) {
      const result = await cli(['client', verb, 'no-such-client']);
      expect(result.code, verb).toBe(1);
      expect(result.stderr).toContain('There is no client no-such-client');
    }
  });

  it('removes a client', async () => {
    const [first] = JSON.parse((await cli(['client', 'list', '--json'])).stdout) as ListedClient[];
    const result = await cli(['client', 'remove', first!.clientId]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`Removed client Staff rota (${first!.clientId})`);
    expect((await cli(['client', 'show', first!.clientId])).code).toBe(1);
    expect(JSON.parse((await cli(['client', 'list', '--json'])).stdout)).toHaveLength(2);
  });
});
