/**
 * A person's OpenID Connect grants (oidc-provider's Grant model, stored by src/store/oidc-adapter.ts),
 * looked up by account: the applications they have allowed, for "My account" and for a consent remembered
 * across browsers (docs/oidc.md#consent). Grants always live in the database, never in Redis.
 */
import type { Kysely } from 'kysely';
import type { DatabaseSchema } from './schema.js';

export interface StoredGrant {
  grantId: string;
  clientId: string;
  /** The OpenID scopes granted, space-separated. */
  scope: string;
  /** When it was first given (its `iat`), seconds since the epoch. */
  issuedAt: number;
}

interface GrantPayload {
  clientId?: unknown;
  accountId?: unknown;
  openid?: { scope?: unknown };
  iat?: unknown;
}

/** The live grants of an account, newest first. */
export async function listGrantsForAccount(db: Kysely<DatabaseSchema>, accountId: string, now: Date): Promise<StoredGrant[]> {
  const rows = await db
    .selectFrom('oidc_artefacts')
    .select(['id', 'payload'])
    .where('model', '=', 'Grant')
    .where('account_id', '=', accountId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.toISOString())]))
    .execute();
  const grants: StoredGrant[] = [];
  for (const row of rows) {
    const payload = JSON.parse(row.payload) as GrantPayload;
    // The column is a copy of the payload's field; the payload is what oidc-provider reads.
    if (payload.accountId !== accountId || typeof payload.clientId !== 'string') continue;
    grants.push({
      grantId: row.id,
      clientId: payload.clientId,
      scope: typeof payload.openid?.scope === 'string' ? payload.openid.scope : '',
      issuedAt: typeof payload.iat === 'number' ? payload.iat : 0,
    });
  }
  return grants.sort((a, b) => b.issuedAt - a.issuedAt);
}

/** One client an oidc-provider Session signed in to: its per-client `sid` and the grant it used. */
export interface SessionAuthorization {
  clientId: string;
  sid: string | null;
  grantId: string | null;
}

export interface StoredProviderSession {
  /** The Session's id (oidc-provider's `jti`), the key of its row. */
  sessionId: string;
  authorizations: SessionAuthorization[];
}

interface SessionPayload {
  accountId?: unknown;
  authorizations?: Record<string, { sid?: unknown; grantId?: unknown } | undefined>;
}

/**
 * The live oidc-provider sessions of an account, with the clients each signed in to. The adapter copies a
 * payload's `accountId` into `account_id` for every model (migration 0011), so a Session row has it too.
 */
export async function listProviderSessionsForAccount(db: Kysely<DatabaseSchema>, accountId: string, now: Date): Promise<StoredProviderSession[]> {
  const rows = await db
    .selectFrom('oidc_artefacts')
    .select(['id', 'payload'])
    .where('model', '=', 'Session')
    .where('account_id', '=', accountId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.toISOString())]))
    .execute();
  const sessions: StoredProviderSession[] = [];
  for (const row of rows) {
    const payload = JSON.parse(row.payload) as SessionPayload;
    if (payload.accountId !== accountId) continue;
    const authorizations = Object.entries(payload.authorizations ?? {}).map(([clientId, authorization]) => ({
      clientId,
      sid: typeof authorization?.sid === 'string' ? authorization.sid : null,
      grantId: typeof authorization?.grantId === 'string' ? authorization.grantId : null,
    }));
    sessions.push({ sessionId: row.id, authorizations });
  }
  return sessions;
}
