/**
 * The oidc-provider instance (docs/oidc.md): its configuration, built from ours. This is the one place
 * that touches oidc-provider's own types; the casts it needs are here.
 *
 * What this step configures (issue #13): the issuer `${PUBLIC_URL}/oidc`; storage through OidcAdapter;
 * the signing keys from the database; cookies signed with a key derived from PORTCULLIS_SECRET; PKCE
 * required for every client, S256 only (RFC 7636 §4.2; oidc-provider 9 supports no other method);
 * revocation (RFC 7009), introspection (RFC 7662) and RP-initiated logout; no development interactions.
 * The second step: registered clients from `oidc_clients`, the client credentials grant (RFC 6749 §4.4) with
 * its resource and scopes, refresh token rotation with reuse detection, CORS denied to every client.
 * Interactions are sent to `/oidc-interaction/<uid>`, outside the mount (oidc-provider's catch-all 404
 * would answer anything under /oidc); that surface is the next step.
 */
import type { JWK } from 'jose';
import Provider, { errors, type Configuration, type FindAccount } from 'oidc-provider';
import type { AppContext } from '../../app/context.js';
import { createClientAdapter } from '../../app/oidc/clients.js';
import { OIDC_LIFETIMES } from '../../app/oidc/lifetimes.js';
import { createOidcAdapterFactory } from '../../store/oidc-adapter.js';

export const OIDC_MOUNT = '/oidc';

/** Where oidc-provider sends the browser to sign in or consent: a Portcullis page outside the mount. */
export const interactionPath = (uid: string): string => `/oidc-interaction/${uid}`;

export function issuerFor(publicUrl: URL): string {
  return `${publicUrl.origin}${publicUrl.pathname.replace(/\/$/, '')}${OIDC_MOUNT}`;
}

/** Accounts are Portcullis users; a disabled user is no account. Claims beyond `sub` come with the next step. */
function findAccountIn(ctx: AppContext): FindAccount {
  return async (_oidcCtx, sub) => {
    const user = await ctx.store.users.findById(sub);
    if (!user || user.status !== 'active') return undefined;
    return { accountId: user.id, claims: () => ({ sub: user.id }) };
  };
}

/**
 * Client credentials (RFC 6749 §4.4) tokens are issued for one resource (RFC 8707), the issuer itself, and
 * carry only the scopes the service client was registered with (`client add --service --scope …`). Without a
 * resource, oidc-provider would keep only its own OpenID scopes, so a service could ask for no API scope at
 * all; with one, it keeps the requested scopes the resource server info allows and drops the rest (RFC 6749
 * §3.3 lets the server issue fewer scopes than asked; the token response then says which). The tokens are
 * opaque, so that revocation (RFC 7009) ends them and resource servers check them by introspection (RFC 7662).
 * No other resource exists yet: any other `resource` is `invalid_target`.
 */
function resourceIndicatorsFor(issuer: string): NonNullable<NonNullable<Configuration['features']>['resourceIndicators']> {
  return {
    enabled: true,
    defaultResource: (oidcCtx, _client, oneOf) => oneOf ?? (oidcCtx.oidc.params?.grant_type === 'client_credentials' ? issuer : undefined),
    useGrantedResource: () => false,
    getResourceServerInfo: (_oidcCtx, resource, client) => {
      if (resource !== issuer || !client.grantTypes?.includes('client_credentials')) throw new errors.InvalidTarget();
      // `service_scope` is our extra client metadata (src/app/oidc/clients.ts); oidc-provider keeps its name.
      const allowed = (client as unknown as { service_scope?: unknown }).service_scope;
      return { scope: typeof allowed === 'string' ? allowed : '', audience: issuer, accessTokenFormat: 'opaque' };
    },
  };
}

/** RFC 7009 §2.1 and RFC 7662 §4: a client may revoke or introspect only the tokens issued to it. */
const ownTokensOnly = async (_oidcCtx: unknown, client: { clientId: string }, token: { clientId?: string }): Promise<boolean> =>
  token.clientId === client.clientId;

export function createProvider(ctx: AppContext, signingKeys: JWK[]): Provider {
  const artefacts = createOidcAdapterFactory({
    db: ctx.store.database.db,
    redis: ctx.redis,
    clock: ctx.clock,
    // The second redemption of one code, racing the first (src/store/oidc-adapter.ts).
    alreadyConsumed: () => new errors.InvalidGrant('grant request is invalid'),
  });
  // Registered clients come from `oidc_clients` (src/app/oidc/clients.ts), their secrets opened there.
  const clients = createClientAdapter(ctx);
  const issuer = issuerFor(ctx.config.publicUrl);
  const configuration: Configuration = {
    adapter: (model: string) => (model === 'Client' ? clients : artefacts(model)),
    // oidc-provider's JWK type is its own copy of RFC 7517's; jose's describes the same objects.
    jwks: { keys: signingKeys as NonNullable<Configuration['jwks']>['keys'] },
    // Keygrip takes strings or Buffers; one derived key (rotating PORTCULLIS_SECRET rotates it).
    cookies: { keys: [Buffer.from(ctx.keys.oidcCookies).toString('base64url')] },
    clients: [],
    // `first_party` (docs/oidc.md#clients): consent is skipped for Portcullis-run applications (next step);
    // `service_scope`: the scopes a service client's tokens may carry (resourceIndicatorsFor, above).
    extraClientMetadata: {
      properties: ['first_party', 'service_scope'],
      validator: (_oidcCtx, key, value) => {
        if (key === 'first_party' && value !== undefined && typeof value !== 'boolean') throw new errors.InvalidClientMetadata('first_party must be a boolean');
        if (key === 'service_scope' && value !== undefined && typeof value !== 'string') throw new errors.InvalidClientMetadata('service_scope must be a string');
      },
    },
    // No browser-side client may call the token, revocation, introspection or userinfo endpoints from another
    // origin: deny by default, until a client is registered with allowed origins.
    clientBasedCORS: () => false,
    // Every refresh uses up its refresh token and issues a new one; a used one presented again revokes the whole
    // grant (oidc-provider's refresh_token grant: "refresh token already used"), as OAuth 2.0 Security BCP §4.14.2
    // (RFC 9700) asks of refresh token rotation.
    rotateRefreshToken: true,
    findAccount: findAccountIn(ctx),
    interactions: { url: (_oidcCtx, interaction) => interactionPath(interaction.uid) },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true, allowedPolicy: ownTokensOnly },
      introspection: { enabled: true, allowedPolicy: ownTokensOnly },
      rpInitiatedLogout: { enabled: true },
      // OpenID Connect Back-Channel Logout 1.0, so that `backchannel_logout_uri` is client metadata it knows.
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: resourceIndicatorsFor(issuer),
    },
    ttl: { ...OIDC_LIFETIMES },
  };
  const provider = new Provider(issuer, configuration);
  // Koa's `proxy`: believe X-Forwarded-Proto and X-Forwarded-For only behind a proxy named in TRUST_PROXY.
  provider.proxy = ctx.config.trustProxy !== false && ctx.config.trustProxy !== 0;
  return provider;
}
