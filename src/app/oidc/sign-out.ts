/**
 * Signing a person out of every application (issue #13 point 5; docs/oidc.md#signing-out-of-applications).
 *
 * "Sign out everywhere", disabling a user, `session revoke`, `user reset-methods` and a push fraud report end
 * the person's Portcullis sessions; this ends what applications hold too:
 * - every oidc-provider Grant of the account is revoked with every code, access token and refresh token issued
 *   under it (the adapter's `revokeByGrantId`, then the Grant itself, as `revokeAllowedApplication` does), so a
 *   refresh is refused `invalid_grant` and introspection says `active: false` at once;
 * - every oidc-provider Session of the account is destroyed, so no application signs the person in silently;
 * - each client with a `backchannel_logout_uri` that the person had a grant or a session with is sent an
 *   OpenID Connect Back-Channel Logout 1.0 logout token.
 *
 * Why our own logout token rather than oidc-provider's `client.backchannelLogout(sub, sid)`: that method needs
 * a running Provider instance, which the CLI (`session revoke`, `user disable`, `user reset-methods`) does not
 * have, and it signs with the Provider's key set of the moment; here the token is signed with the current RS256
 * key from `oidc_signing_keys`, the key every node publishes in /oidc/jwks. The claims are those of §2.4.
 *
 * Why not the outbox: its channels are SMS, voice and email, each with providers, message checks and
 * configuration; a logout token lasts two minutes, so a retry hours later is useless anyway. Delivery is
 * therefore one POST with a short timeout and one retry, and the revocation never waits for it: the caller gets
 * `deliveries`, a promise that never rejects, to await (the CLI, which must not exit first) or not (a person's
 * request). Each outcome is audited (`oidc.backchannel-logout-sent` / `-failed`).
 */
import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT } from 'jose';
import { issuerFor } from './issuer.js';
import { createOidcAdapterFactory } from '../../store/oidc-adapter.js';
import { listGrantsForAccount, listProviderSessionsForAccount } from '../../store/oidc-grants.js';
import type { AppContext } from '../context.js';
import { listClients } from './clients.js';
import { loadPublishedKeys } from './signing-keys.js';

/** Why the person is being signed out of applications; kept in the audit events. */
export type ApplicationSignOutReason = 'signed-out-everywhere' | 'user-disabled' | 'sessions-revoked' | 'methods-reset' | 'push-fraud-reported';

export interface ApplicationSignOut {
  grantsRevoked: number;
  sessionsEnded: number;
  /** Back-channel logouts being delivered; settles (never rejects) when every one was sent or failed. */
  deliveries: Promise<void>;
}

/** OpenID Connect Back-Channel Logout 1.0 §2.4: the event that makes a JWT a logout token. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** §2.4 asks for a short life; two minutes allows for a retry and for clock differences. */
const LOGOUT_TOKEN_SECONDS = 120;
/** The application must answer quickly (§2.8); a slow one must not hold a retry up for long. */
const DELIVERY_TIMEOUT_MS = 5_000;
const RETRY_AFTER_MS = 1_000;

interface LogoutTarget {
  clientId: string;
  uri: string;
  /** One logout token per sid the provider sessions named for this client; null: sub only (§2.4 allows either). */
  sid: string | null;
}

/** Revokes every grant and provider session of the account and starts the back-channel logouts. */
export async function signOutOfApplications(ctx: AppContext, userId: string, reason: ApplicationSignOutReason): Promise<ApplicationSignOut> {
  const now = ctx.clock();
  const db = ctx.store.database.db;
  const [grants, sessions, clients] = await Promise.all([listGrantsForAccount(db, userId, now), listProviderSessionsForAccount(db, userId, now), listClients(ctx)]);
  const adapters = createOidcAdapterFactory({ db, redis: ctx.redis, clock: ctx.clock, alreadyConsumed: () => new Error('not consumed here') });

  // A session may name a grant that listGrantsForAccount did not find (an older row without account_id).
  const grantClients = new Map(grants.map((grant) => [grant.grantId, grant.clientId]));
  for (const session of sessions) for (const a of session.authorizations) if (a.grantId && !grantClients.has(a.grantId)) grantClients.set(a.grantId, a.clientId);
  for (const [grantId, clientId] of grantClients) {
    // revokeByGrantId removes the grant's codes, access and refresh tokens in both stores (src/store/oidc-adapter.ts).
    await adapters('AccessToken').revokeByGrantId(grantId);
    await adapters('Grant').destroy(grantId);
    await ctx.store.audit.append({
      type: 'oidc.grant-revoked',
      at: now,
      actor: { kind: 'system' },
      subjectUserId: userId,
      ip: null,
      details: { client_id: clientId, grant_id: grantId, reason },
    });
  }
  for (const session of sessions) await adapters('Session').destroy(session.sessionId);

  const uris = new Map(clients.filter((client) => client.backChannelLogoutUri).map((client) => [client.clientId, client.backChannelLogoutUri!]));
  const targets = new Map<string, LogoutTarget>();
  for (const session of sessions) {
    for (const a of session.authorizations) {
      const uri = uris.get(a.clientId);
      if (uri) targets.set(`${a.clientId} ${a.sid ?? ''}`, { clientId: a.clientId, uri, sid: a.sid });
    }
  }
  for (const clientId of new Set(grantClients.values())) {
    const uri = uris.get(clientId);
    const named = [...targets.values()].some((target) => target.clientId === clientId);
    if (uri && !named) targets.set(`${clientId} `, { clientId, uri, sid: null });
  }

  const deliveries = targets.size === 0 ? Promise.resolve() : deliverAll(ctx, userId, reason, [...targets.values()]);
  return { grantsRevoked: grantClients.size, sessionsEnded: sessions.length, deliveries };
}

async function deliverAll(ctx: AppContext, userId: string, reason: ApplicationSignOutReason, targets: LogoutTarget[]): Promise<void> {
  try {
    const key = await currentRs256Key(ctx);
    await Promise.all(targets.map((target) => deliverOne(ctx, key, userId, reason, target)));
  } catch (error) {
    // Never rejects: the caller may not be waiting, and the revocation has already happened.
    ctx.logger.error({ err: error, userId }, 'back-channel logouts could not be sent');
  }
}

type SigningKey = { kid: string; key: Awaited<ReturnType<typeof importJWK>> };

/** The current RS256 key: loadPublishedKeys lists current keys first (src/app/oidc/signing-keys.ts). */
async function currentRs256Key(ctx: AppContext): Promise<SigningKey> {
  const { keys } = await loadPublishedKeys(ctx);
  const jwk = keys.find((candidate) => candidate.alg === 'RS256');
  if (!jwk?.kid) throw new Error('no current RS256 signing key');
  return { kid: jwk.kid, key: await importJWK(jwk, 'RS256') };
}

/** OpenID Connect Back-Channel Logout 1.0 §2.4: iss, aud, iat, exp, jti, sub, sid when known, events; never a nonce. */
export async function signLogoutToken(signing: SigningKey, issuer: string, clientId: string, sub: string, sid: string | null, now: Date): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000);
  const claims: Record<string, unknown> = { sub, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } };
  if (sid) claims.sid = sid;
  return new SignJWT(claims)
    // §2.4: "explicitly typed" with logout+jwt, so that it cannot be taken for an ID token.
    .setProtectedHeader({ alg: 'RS256', kid: signing.kid, typ: 'logout+jwt' })
    .setIssuer(issuer)
    .setAudience(clientId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + LOGOUT_TOKEN_SECONDS)
    .setJti(randomUUID())
    .sign(signing.key);
}

async function deliverOne(ctx: AppContext, signing: SigningKey, userId: string, reason: ApplicationSignOutReason, target: LogoutTarget): Promise<void> {
  const token = await signLogoutToken(signing, issuerFor(ctx.config.publicUrl), target.clientId, userId, target.sid, ctx.clock());
  let outcome = 'not sent';
  let attempts = 0;
  for (; attempts < 2; ) {
    attempts += 1;
    outcome = await post(target.uri, token);
    if (outcome === 'ok') break;
    if (attempts < 2) await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
  }
  const sent = outcome === 'ok';
  if (!sent) ctx.logger.warn({ clientId: target.clientId, userId, outcome }, 'a back-channel logout was not accepted');
  await ctx.store.audit.append({
    type: sent ? 'oidc.backchannel-logout-sent' : 'oidc.backchannel-logout-failed',
    at: ctx.clock(),
    actor: { kind: 'system' },
    subjectUserId: userId,
    ip: null,
    details: { client_id: target.clientId, sid: target.sid, reason, attempts, ...(sent ? {} : { error: outcome }) },
  });
}

/** §2.5: a form-encoded POST of `logout_token`; §2.8: 200 OK means accepted (204 is taken too, as oidc-provider does). */
async function post(uri: string, token: string): Promise<string> {
  try {
    const response = await fetch(uri, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }).toString(),
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.status === 200 || response.status === 204 ? 'ok' : `status ${response.status}`;
  } catch (error) {
    return error instanceof Error ? error.name : 'network error';
  }
}
