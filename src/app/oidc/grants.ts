/**
 * The applications a person has allowed (oidc-provider grants; docs/oidc.md#consent): listed on "My
 * account", revoked from there, and found again by account so that a consent given once is not asked again
 * in another browser.
 *
 * Revoking does what oidc-provider's `Grant#destroy` and its `revokeByGrantId` do, through the same adapter:
 * the grant goes, and every code, access token and refresh token issued under it (RFC 7009 §2.1 "revocation
 * of the grant"), in the database and in Redis. The provider's session may still name the grant id; a grant
 * that is not found is no grant, so consent is asked again.
 */
import type { ClientInfo as RequestInfo } from '../sessions.js';
import { createOidcAdapterFactory } from '../../store/oidc-adapter.js';
import { listGrantsForAccount } from '../../store/oidc-grants.js';
import type { AppContext } from '../context.js';
import { listClients } from './clients.js';

export interface AllowedApplication {
  grantId: string;
  clientId: string;
  name: string;
  scopes: string[];
  allowedAt: Date;
}

/** The applications this person has allowed, newest first (grants of removed clients are left out). */
export async function listAllowedApplications(ctx: AppContext, userId: string): Promise<AllowedApplication[]> {
  const [grants, clients] = await Promise.all([listGrantsForAccount(ctx.store.database.db, userId, ctx.clock()), listClients(ctx)]);
  const names = new Map(clients.map((client) => [client.clientId, client.name]));
  return grants
    .filter((grant) => names.has(grant.clientId))
    .map((grant) => ({
      grantId: grant.grantId,
      clientId: grant.clientId,
      name: names.get(grant.clientId)!,
      scopes: grant.scope.split(' ').filter(Boolean),
      allowedAt: new Date(grant.issuedAt * 1000),
    }));
}

/** The grant this person gave this client, in any browser, if it is still live. */
export async function rememberedGrantId(ctx: AppContext, userId: string, clientId: string): Promise<string | undefined> {
  const grants = await listGrantsForAccount(ctx.store.database.db, userId, ctx.clock());
  return grants.find((grant) => grant.clientId === clientId)?.grantId;
}

/** Revokes one of this person's grants and every token issued under it; false if it is not theirs. */
export async function revokeAllowedApplication(ctx: AppContext, userId: string, grantId: string, request: RequestInfo): Promise<boolean> {
  const grant = (await listAllowedApplications(ctx, userId)).find((g) => g.grantId === grantId);
  if (!grant) return false;
  const adapters = createOidcAdapterFactory({
    db: ctx.store.database.db,
    redis: ctx.redis,
    clock: ctx.clock,
    alreadyConsumed: () => new Error('not consumed here'),
  });
  // revokeByGrantId removes the grant's artefacts of every model, in both stores (src/store/oidc-adapter.ts).
  await adapters('AccessToken').revokeByGrantId(grantId);
  await adapters('Grant').destroy(grantId);
  await ctx.store.audit.append({
    type: 'oidc.grant-revoked',
    at: ctx.clock(),
    actor: { kind: 'user', userId },
    subjectUserId: userId,
    ip: request.ip,
    details: { client_id: grant.clientId, grant_id: grantId, reason: 'revoked-on-my-account' },
  });
  return true;
}

/** The provider's storage (src/store/oidc-adapter.ts) on this context's database, and Redis when set. */
export function oidcArtefactAdapter(ctx: AppContext, options: { alreadyConsumed: () => Error }): ReturnType<typeof createOidcAdapterFactory> {
  return createOidcAdapterFactory({ db: ctx.store.database.db, redis: ctx.redis, clock: ctx.clock, alreadyConsumed: options.alreadyConsumed });
}
