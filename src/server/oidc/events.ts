/**
 * What the provider did, into the audit log and the metrics (issue #13 §6; docs/oidc.md#what-is-audited).
 * oidc-provider emits events synchronously from inside its request handling; each is turned into one audit
 * event here, appended without holding the response up (a failed append is logged, never answered as a 500).
 *
 * - `grant.success` → `oidc.token-issued`: the grant type, client, subject and scope of what the token
 *   endpoint issued.
 * - `grant.error` → `oidc.grant-refused` with its OAuth error (RFC 6749 §5.2) and oidc-provider's reason,
 *   and one count on `portcullis_oidc_token_errors_total{error}`.
 * - `grant.revoked` → `oidc.grant-revoked`: by revocation, or because a used refresh token or code was
 *   presented again (RFC 6749 §10.4 and §4.1.2: the whole grant goes).
 * - `access_token.destroyed`, `client_credentials.destroyed`, `refresh_token.destroyed` → `oidc.token-revoked`.
 * - `backchannel.success`, `backchannel.error` (the logout tokens of an RP-initiated logout) →
 *   `oidc.backchannel-logout-sent` / `-failed` with `reason: rp-initiated-logout`.
 */
import type Provider from 'oidc-provider';
import type { AppContext } from '../../app/context.js';
import type { Actor, AuditDetails, AuditEventType } from '../../core/audit.js';

/** The few fields read from oidc-provider's Koa context; its own type is far wider than this needs. */
interface ProviderRequest {
  ip?: string;
  get?(header: string): string;
  oidc?: {
    route?: string;
    params?: Record<string, unknown>;
    client?: { clientId: string };
    entities?: {
      Account?: { accountId: string };
      AccessToken?: { scope?: string; accountId?: string };
      ClientCredentials?: { scope?: string };
      RotatedRefreshToken?: unknown;
      RefreshToken?: unknown;
    };
  };
}

interface ProviderError {
  error?: string;
  error_description?: string;
  error_detail?: string;
}

interface ProviderToken {
  kind?: string;
  clientId?: string;
  accountId?: string;
  grantId?: string;
}

/**
 * The client a refused request claimed to be, for the audit log: the authenticated one, or the id it sent
 * in `client_id` or in HTTP Basic (RFC 6749 §2.3.1: form-encoded, then base64).
 */
function claimedClientId(request: ProviderRequest): string | null {
  if (request.oidc?.client) return request.oidc.client.clientId;
  const param = request.oidc?.params?.client_id;
  if (typeof param === 'string' && param) return param;
  const header = request.get?.('authorization') ?? '';
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!match) return null;
  const user = Buffer.from(match[1]!, 'base64').toString('utf8').split(':')[0] ?? '';
  try {
    return decodeURIComponent(user.replace(/\+/g, ' ')) || null;
  } catch {
    return null;
  }
}

export function recordProviderEvents(provider: Provider, ctx: AppContext): void {
  const append = (type: AuditEventType, actor: Actor, subjectUserId: string | null, ip: string | null, details: AuditDetails): void => {
    ctx.store.audit.append({ type, at: ctx.clock(), actor, subjectUserId, ip, details }).catch((error: unknown) => {
      ctx.logger.error({ err: error, type }, 'could not append an OpenID Connect audit event');
    });
  };
  const asRequest = (value: unknown): ProviderRequest => value as ProviderRequest;

  provider.on('grant.success', (koa: unknown) => {
    const request = asRequest(koa);
    const oidc = request.oidc;
    const clientId = oidc?.client?.clientId ?? null;
    const grantType = typeof oidc?.params?.grant_type === 'string' ? oidc.params.grant_type : null;
    const entities = oidc?.entities;
    const scope = entities?.ClientCredentials?.scope ?? entities?.AccessToken?.scope ?? null;
    append('oidc.token-issued', clientId ? { kind: 'client', clientId } : { kind: 'anonymous' }, entities?.Account?.accountId ?? null, request.ip ?? null, {
      client_id: clientId,
      grant_type: grantType,
      scope,
      refresh_token_rotated: entities?.RotatedRefreshToken !== undefined,
    });
  });

  provider.on('grant.error', (koa: unknown, error: unknown) => {
    const request = asRequest(koa);
    const refusal = error as ProviderError;
    const code = refusal.error ?? 'server_error';
    ctx.metrics.oidcTokenErrors.inc({ error: code });
    const clientId = claimedClientId(request);
    // oidc-provider has loaded the client before it checks its secret: it is the actor only if that passed.
    const authenticated = code === 'invalid_client' ? undefined : request.oidc?.client?.clientId;
    append('oidc.grant-refused', authenticated ? { kind: 'client', clientId: authenticated } : { kind: 'anonymous' }, null, request.ip ?? null, {
      client_id: clientId,
      grant_type: typeof request.oidc?.params?.grant_type === 'string' ? request.oidc.params.grant_type : null,
      error: code,
      // error_detail is oidc-provider's reason for us (e.g. "invalid secret provided"), never sent to the client.
      reason: refusal.error_detail ?? refusal.error_description ?? null,
    });
  });

  provider.on('grant.revoked', (koa: unknown, grantId: string) => {
    const request = asRequest(koa);
    const clientId = request.oidc?.client?.clientId ?? null;
    append('oidc.grant-revoked', clientId ? { kind: 'client', clientId } : { kind: 'anonymous' }, null, request.ip ?? null, {
      client_id: clientId,
      grant_id: grantId,
      // At the token endpoint a grant is revoked only when a used refresh token or code comes back.
      reason: request.oidc?.route === 'token' ? 'token-reused' : 'revoked',
    });
  });

  const revoked = (value: unknown): void => {
    const token = value as ProviderToken;
    append('oidc.token-revoked', token.clientId ? { kind: 'client', clientId: token.clientId } : { kind: 'anonymous' }, token.accountId ?? null, null, {
      client_id: token.clientId ?? null,
      kind: token.kind ?? null,
      grant_id: token.grantId ?? null,
    });
  };
  // RP-initiated logout (the end-session endpoint): oidc-provider sends the back-channel logout tokens itself
  // (Back-Channel Logout 1.0 §2.5), one try each; audited as Portcullis's own deliveries are (src/app/oidc/sign-out.ts).
  const backchannel = (sent: boolean, client: unknown, accountId: unknown, sid: unknown, error?: unknown): void => {
    const clientId = (client as { clientId?: string } | undefined)?.clientId ?? null;
    const userId = typeof accountId === 'string' ? accountId : null;
    if (!sent) ctx.logger.warn({ clientId, userId, err: error }, 'a back-channel logout was not accepted');
    append(sent ? 'oidc.backchannel-logout-sent' : 'oidc.backchannel-logout-failed', { kind: 'system' }, userId, null, {
      client_id: clientId,
      sid: typeof sid === 'string' ? sid : null,
      reason: 'rp-initiated-logout',
      attempts: 1,
      ...(sent ? {} : { error: error instanceof Error ? error.message : String(error) }),
    });
  };
  provider.on('backchannel.success', (_koa: unknown, client: unknown, accountId: unknown, sid: unknown) => backchannel(true, client, accountId, sid));
  provider.on('backchannel.error', (_koa: unknown, error: unknown, client: unknown, accountId: unknown, sid: unknown) => backchannel(false, client, accountId, sid, error));
  provider.on('access_token.destroyed', revoked);
  provider.on('client_credentials.destroyed', revoked);
  provider.on('refresh_token.destroyed', revoked);
}
