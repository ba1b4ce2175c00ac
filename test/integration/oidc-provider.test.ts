/**
 * The OpenID Connect provider mounted at /oidc (issue #13, first step), through buildApp() and inject()
 * on SQLite and PostgreSQL: discovery, the JWKS and its keys across a rotation, headers, and two nodes
 * on one database sharing one key set.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext, type AppContext } from '../../src/app/context.js';
import { KEY_PUBLISH_AHEAD_SECONDS, SIGNING_KEY_RETIRE_AFTER_SECONDS } from '../../src/app/oidc/lifetimes.js';
import { ensureSigningKeys, listSigningKeys, rotateSigningKeys } from '../../src/app/oidc/signing-keys.js';
import { loadConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/server/app.js';
import { OIDC_CSP } from '../../src/server/oidc/plugin.js';
import { createTestContext, createTestDatabase, dialects, TEST_SECRET, type TestContext } from '../helpers/context.js';

const ISSUER = 'http://localhost:8080/oidc';
// RFC 7517 §6.3.2 and §6.2.2: the private parts of RSA and EC keys, never to be published.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

interface Jwk {
  kid: string;
  kty: string;
  alg?: string;
  use?: string;
  [member: string]: unknown;
}

async function jwks(app: FastifyInstance): Promise<Jwk[]> {
  const response = await app.inject({ method: 'GET', url: '/oidc/jwks' });
  expect(response.statusCode).toBe(200);
  return (response.json() as { keys: Jwk[] }).keys;
}

describe.each(dialects)('OpenID Connect provider on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;

  beforeAll(async () => {
    ctx = await createTestContext(dialect, {}, { controlClock: true });
    app = await buildApp(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('publishes its discovery document at the issuer (OpenID Connect Discovery 1.0 §4)', async () => {
    const response = await app.inject({ method: 'GET', url: '/oidc/.well-known/openid-configuration' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const document = response.json() as Record<string, unknown>;
    // §4.3: the issuer in the document is exactly the one it was fetched under.
    expect(document.issuer).toBe(ISSUER);
    // RFC 7636 §4.2 S256 only: plain would let a stolen code be redeemed.
    expect(document.code_challenge_methods_supported).toEqual(['S256']);
    expect(document).toMatchObject({
      authorization_endpoint: `${ISSUER}/auth`,
      token_endpoint: `${ISSUER}/token`,
      userinfo_endpoint: `${ISSUER}/me`,
      jwks_uri: `${ISSUER}/jwks`,
      revocation_endpoint: `${ISSUER}/token/revocation`, // RFC 7009
      introspection_endpoint: `${ISSUER}/token/introspection`, // RFC 7662
      end_session_endpoint: `${ISSUER}/session/end`, // OpenID Connect RP-Initiated Logout 1.0
    });
    // Discovery §3: RS256 must be among the ID token algorithms.
    expect(document.id_token_signing_alg_values_supported).toContain('RS256');
  });

  it('builds its endpoints from PUBLIC_URL, whatever Host or X-Forwarded-Host the request carries', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/oidc/.well-known/openid-configuration',
      headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' },
    });
    const document = response.json() as Record<string, string>;
    expect(document.issuer).toBe(ISSUER);
    expect(document.token_endpoint).toBe(`${ISSUER}/token`);
    expect(JSON.stringify(document)).not.toContain('evil.example');
  });

  it('sends its own strict headers, not the page CSP, on its JSON endpoints', async () => {
    const response = await app.inject({ method: 'GET', url: '/oidc/jwks' });
    expect(response.headers['content-security-policy']).toBe(OIDC_CSP);
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-frame-options']).toBe('DENY');
  });

  it('answers POSTs under /oidc itself: no CSRF refusal, an OAuth error (RFC 6749 §5.2, RFC 7009 §2.2.1)', async () => {
    for (const url of ['/oidc/token', '/oidc/token/revocation', '/oidc/token/introspection']) {
      const response = await app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://elsewhere.example' },
        payload: 'grant_type=authorization_code&code=x&client_id=nobody&token=x',
      });
      expect(response.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, url).not.toBe(403);
      expect((response.json() as { error: string }).error, url).toMatch(/^invalid_(client|request)$/);
    }
  });

  it('answers every unknown path under /oidc itself (why interaction pages live outside the mount)', async () => {
    const response = await app.inject({ method: 'GET', url: '/oidc/no-such-endpoint' });
    expect(response.statusCode).toBe(404);
    // oidc-provider's (Koa's) 404, not our error page: Fastify never saw the request.
    expect(response.body).not.toContain('<html');
    expect(response.headers['content-security-policy']).toBe(OIDC_CSP);
  });

  it('made one RS256 and one ES256 key on first start, and publishes only their public parts (RFC 7517)', async () => {
    const keys = await jwks(app);
    expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    for (const key of keys) {
      expect(key.use).toBe('sig');
      expect(key.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
      for (const member of PRIVATE_MEMBERS) expect(key, `${key.alg} ${member}`).not.toHaveProperty(member);
    }
    const stored = await listSigningKeys(ctx);
    expect(stored.map((k) => [k.alg, k.state]).sort()).toEqual([['ES256', 'current'], ['RS256', 'current']]);
  });

  it('keeps the private keys sealed at rest', async () => {
    const rows = await ctx.store.database.db.selectFrom('oidc_signing_keys').select(['private_jwk_sealed', 'public_jwk']).execute();
    for (const row of rows) {
      expect(row.private_jwk_sealed).toMatch(/^v1\./);
      expect(JSON.parse(row.public_jwk)).not.toHaveProperty('d');
    }
  });

  it('after a rotation publishes the new and the previous keys, then drops the previous ones once they retire', async () => {
    const before = (await jwks(app)).map((k) => k.kid);
    const current = await rotateSigningKeys(ctx);
    // Nodes reload the key set within a minute: the new keys are published, and the previous ones still come
    // first (oidc-provider signs with the first key of each algorithm), so no node signs with a key that
    // another, not yet reloaded, does not publish.
    ctx.advance(61);
    const after = await jwks(app);
    expect(after).toHaveLength(4);
    expect(after.map((k) => k.kid)).toEqual(expect.arrayContaining([...before, ...current.map((k) => k.kid)]));
    expect(after.slice(0, 2).map((k) => k.kid).sort()).toEqual([...before].sort());
    for (const key of after) for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
    // Once every node publishes them (KEY_PUBLISH_AHEAD_SECONDS), and a reload later, the new keys sign.
    ctx.advance(KEY_PUBLISH_AHEAD_SECONDS - 61 + 61);
    const signing = await jwks(app);
    expect(signing).toHaveLength(4);
    expect(signing.slice(0, 2).map((k) => k.kid).sort()).toEqual(current.map((k) => k.kid).sort());

    ctx.advance(SIGNING_KEY_RETIRE_AFTER_SECONDS);
    const later = await jwks(app);
    expect(later.map((k) => k.kid).sort()).toEqual(current.map((k) => k.kid).sort());
    const states = await listSigningKeys(ctx);
    expect(states.filter((k) => before.includes(k.kid)).map((k) => k.state)).toEqual(['retired', 'retired']);
  });
});

describe('two nodes on one PostgreSQL database', () => {
  const contexts: AppContext[] = [];
  const apps: FastifyInstance[] = [];
  let drop: () => Promise<void> = async () => {};

  async function node(url: string): Promise<AppContext> {
    const config = loadConfig({
      env: {
        PUBLIC_URL: 'http://localhost:8080',
        PORTCULLIS_SECRET: TEST_SECRET,
        PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-oidc-')),
        DATABASE_URL: url,
        LOG_LEVEL: 'silent',
      },
    });
    const ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    contexts.push(ctx);
    return ctx;
  }

  beforeAll(async () => {
    const database = await createTestDatabase('postgres');
    drop = database.drop;
    const [a, b] = [await node(database.url), await node(database.url)];
    // Both start at once: each would make keys if it found none.
    const made = await Promise.all([ensureSigningKeys(a!), ensureSigningKeys(b!), ensureSigningKeys(a!)]);
    expect(made.flat().sort()).toEqual(['ES256', 'RS256']);
    apps.push(await buildApp(a!), await buildApp(b!));
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const ctx of contexts) await ctx.close();
    await drop();
  });

  it('has one current key per algorithm, and both nodes publish the same JWKS', async () => {
    const keys = await listSigningKeys(contexts[0]!);
    expect(keys.map((k) => [k.alg, k.state]).sort()).toEqual([['ES256', 'current'], ['RS256', 'current']]);
    const [first, second] = [await jwks(apps[0]!), await jwks(apps[1]!)];
    expect(second).toEqual(first);
  });
});
