/**
 * The client credentials grant (RFC 6749 §4.4) with a real OAuth client, openid-client 6, against Portcullis
 * listening on localhost (issue #13, second step): on SQLite, PostgreSQL, and PostgreSQL with Redis (where
 * ClientCredentials tokens live in Redis). Introspection (RFC 7662), revocation (RFC 7009), refusals audited
 * and counted, secret rotation, removal, and a public client refused the grant.
 */
import type { FastifyInstance } from 'fastify';
import * as oauth from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addClient, removeClient, rotateClientSecret } from '../../src/app/oidc/clients.js';
import { buildApp } from '../../src/server/app.js';
import { freePort, listen } from '../helpers/browser.js';
import { createTestContext, type TestContext } from '../helpers/context.js';

const setups: { name: string; dialect: 'sqlite' | 'postgres'; env: Record<string, string> }[] = [
  { name: 'sqlite', dialect: 'sqlite', env: {} },
  { name: 'postgres', dialect: 'postgres', env: {} },
  { name: 'postgres and redis', dialect: 'postgres', env: { REDIS_URL: 'redis://127.0.0.1:6379/0' } },
];
const actor = { kind: 'cli' as const, name: 'test' };
const service = { name: 'Payroll export', redirectUris: [], postLogoutRedirectUris: [], confidential: true, firstParty: false, service: true, scopes: ['reports:read', 'reports:list'] };

/** The OAuth error code of a refused request, however openid-client reports it (body or WWW-Authenticate). */
async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const e = error as { error?: string; error_description?: string; code?: string; cause?: unknown };
    if (typeof e.error === 'string') return `${e.error}: ${e.error_description ?? ''}`;
    const challenges = e.cause as { parameters?: { error?: string } }[] | undefined;
    return `${challenges?.[0]?.parameters?.error ?? e.code ?? String(error)}:`;
  }
  throw new Error('the request succeeded');
}

describe.each(setups)('client credentials on $name', ({ dialect, env }) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let issuer: URL;
  const configure = (clientId: string, auth: oauth.ClientAuth) =>
    // http://localhost in tests only: openid-client refuses http issuers unless told (RFC 8252 §8.3 loopback).
    oauth.discovery(issuer, clientId, undefined, auth, { execute: [oauth.allowInsecureRequests] });
  const errorsCounted = async (error: string): Promise<number> => {
    const metric = await ctx.metrics.oidcTokenErrors.get();
    return metric.values.find((v) => v.labels.error === error)?.value ?? 0;
  };
  const auditEvents = async (type: 'oidc.token-issued' | 'oidc.grant-refused' | 'oidc.token-revoked', clientId: string) => {
    // Appended from oidc-provider's (synchronous) events without holding the response: wait for it.
    for (let i = 0; i < 50; i++) {
      const rows = (await ctx.store.audit.list({ type, limit: 500 })).filter((row) => (JSON.parse(row.details) as { client_id?: string }).client_id === clientId);
      if (rows.length) return rows.map((row) => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> }));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return [];
  };

  beforeAll(async () => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    ctx = await createTestContext(dialect, { PUBLIC_URL: origin, ...env });
    app = await buildApp(ctx);
    await listen(app, port);
    issuer = new URL(`${origin}/oidc`);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('issues a service client an access token that introspection says is active, until it is revoked', async () => {
    const { client, secret } = await addClient(ctx, service, actor);
    const config = await configure(client.clientId, oauth.ClientSecretBasic(secret!));
    expect(config.serverMetadata().grant_types_supported).toContain('client_credentials');

    // Asked for one allowed scope, one it was not registered with: it gets only the allowed one (RFC 6749 §3.3).
    const tokens = await oauth.clientCredentialsGrant(config, { scope: 'reports:read admin:all' });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe('reports:read');
    expect(tokens.refresh_token).toBeUndefined(); // RFC 6749 §4.4.3: no refresh token here
    expect(tokens.expires_in).toBeGreaterThan(0);

    const active = await oauth.tokenIntrospection(config, tokens.access_token);
    expect(active).toMatchObject({ active: true, client_id: client.clientId, scope: 'reports:read', aud: issuer.href });

    // With Redis, ClientCredentials tokens live there and not in the database (docs/oidc.md#storage).
    const stored = await ctx.store.database.db.selectFrom('oidc_artefacts').select('id').where('model', '=', 'ClientCredentials').execute();
    expect(stored.length > 0).toBe(!('REDIS_URL' in env));

    const issued = await auditEvents('oidc.token-issued', client.clientId);
    expect(issued[0]).toMatchObject({ actor_type: 'client', actor_id: client.clientId, details: { grant_type: 'client_credentials', scope: 'reports:read' } });

    // RFC 7009 §2.2: revoked, and RFC 7662 §2.2: then inactive.
    await oauth.tokenRevocation(config, tokens.access_token);
    expect(await oauth.tokenIntrospection(config, tokens.access_token)).toEqual({ active: false });
    expect(await auditEvents('oidc.token-revoked', client.clientId)).toHaveLength(1);
  });

  it('lets a client introspect or revoke only its own tokens (RFC 7662 §4, RFC 7009 §2.1)', async () => {
    const a = await addClient(ctx, service, actor);
    const b = await addClient(ctx, service, actor);
    const configA = await configure(a.client.clientId, oauth.ClientSecretBasic(a.secret!));
    const configB = await configure(b.client.clientId, oauth.ClientSecretBasic(b.secret!));
    const tokens = await oauth.clientCredentialsGrant(configA, { scope: 'reports:read' });
    expect((await oauth.tokenIntrospection(configB, tokens.access_token)).active).toBe(false);
    await oauth.tokenRevocation(configB, tokens.access_token).catch(() => undefined);
    expect((await oauth.tokenIntrospection(configA, tokens.access_token)).active).toBe(true);
  });

  it('refuses a wrong secret as invalid_client (RFC 6749 §5.2), audited with its reason and counted', async () => {
    const { client } = await addClient(ctx, service, actor);
    const before = await errorsCounted('invalid_client');
    const config = await configure(client.clientId, oauth.ClientSecretBasic('not-the-secret'));
    expect(await refusal(oauth.clientCredentialsGrant(config))).toMatch(/^invalid_client:/);
    expect(await errorsCounted('invalid_client')).toBe(before + 1);
    const [event] = await auditEvents('oidc.grant-refused', client.clientId);
    expect(event).toMatchObject({ actor_type: 'anonymous', details: { error: 'invalid_client', grant_type: 'client_credentials' } });
    expect(String(event!.details.reason)).toMatch(/secret/);
    const exposition = await ctx.metrics.registry.metrics();
    expect(exposition).toMatch(/portcullis_oidc_token_errors_total\{error="invalid_client"\} \d+/);
  });

  it('after rotate-secret, refuses the old secret and accepts the new one', async () => {
    const { client, secret: old } = await addClient(ctx, service, actor);
    const { secret: fresh } = await rotateClientSecret(ctx, client.clientId, actor);
    expect(fresh).not.toBe(old);
    expect(await refusal(oauth.clientCredentialsGrant(await configure(client.clientId, oauth.ClientSecretBasic(old!))))).toMatch(/^invalid_client:/);
    const tokens = await oauth.clientCredentialsGrant(await configure(client.clientId, oauth.ClientSecretBasic(fresh)), { scope: 'reports:list' });
    expect(tokens.scope).toBe('reports:list');
  });

  it('refuses a removed client', async () => {
    const { client, secret } = await addClient(ctx, service, actor);
    const config = await configure(client.clientId, oauth.ClientSecretBasic(secret!));
    await oauth.clientCredentialsGrant(config);
    await removeClient(ctx, client.clientId, actor);
    expect(await refusal(oauth.clientCredentialsGrant(config))).toMatch(/^invalid_client:/);
  });

  // RFC 6749 §4.4: the grant is for confidential clients; here, for service clients only. oidc-provider answers
  // invalid_request ("requested grant type is not allowed for this client") where §5.2 would allow unauthorized_client.
  it('refuses the grant to a public client, and to a confidential one that signs users in', async () => {
    const spa = await addClient(ctx, { ...service, service: false, confidential: false, scopes: [], redirectUris: ['http://localhost:9999/cb'] }, actor);
    expect(spa.secret).toBeNull();
    expect(await refusal(oauth.clientCredentialsGrant(await configure(spa.client.clientId, oauth.None())))).toBe('invalid_request: requested grant type is not allowed for this client');
    const web = await addClient(ctx, { ...service, service: false, scopes: [], redirectUris: ['https://app.example.org/cb'] }, actor);
    expect(await refusal(oauth.clientCredentialsGrant(await configure(web.client.clientId, oauth.ClientSecretBasic(web.secret!))))).toBe('invalid_request: requested grant type is not allowed for this client');
  });

  it('refuses a resource other than its own (RFC 8707 §2: invalid_target)', async () => {
    const { client, secret } = await addClient(ctx, service, actor);
    const config = await configure(client.clientId, oauth.ClientSecretBasic(secret!));
    expect(await refusal(oauth.clientCredentialsGrant(config, { resource: 'https://elsewhere.example.org/' }))).toMatch(/^invalid_target:/);
  });
});
