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
 * would answer anything under /oidc). The third step: claims (`findAccount`, `claims`), acr/amr from the
 * interaction's login result, `acrValues`, a login check for `acr_values`, and grants remembered by account.
 */
import { issuerFor, OIDC_MOUNT } from '../../app/oidc/issuer.js';
import type { JWK } from 'jose';
import Provider, { errors, interactionPolicy, type Configuration, type FindAccount, type KoaContextWithOIDC } from 'oidc-provider';
import type { AppContext } from '../../app/context.js';
import { createClientAdapter } from '../../app/oidc/clients.js';
import { rememberedGrantId } from '../../app/oidc/grants.js';
import { askedAcrFor } from '../../app/oidc/application-policy.js';
import { ACR_VALUES_SUPPORTED, askedAcrValues } from '../../core/oidc/acr.js';
import { OIDC_LIFETIMES } from '../../app/oidc/lifetimes.js';
import { oidcArtefactAdapter } from '../../app/oidc/grants.js';
import { createPageRenderer } from '../plugins/views.js';
import { providerPages } from './pages.js';

/** Where oidc-provider sends the browser to sign in or consent: a Portcullis page outside the mount. */
export { issuerFor, OIDC_MOUNT };

export const interactionPath = (uid: string): string => `/oidc-interaction/${uid}`;


/**
 * Accounts are Portcullis users; a disabled user is no account. `sub` is the user's id, which never changes
 * (OpenID Connect Core 1.0 §2: "never reassigned"), never the email address, which can. `email_verified` is
 * true only once the person proved the address is theirs by activating their account from the emailed link
 * (`user.activated`); a user given a first password by an administrator (`user add --password`, an import)
 * never did, so it is false for them (§5.1: true only if the OP "took affirmative steps").
 */
function findAccountIn(ctx: AppContext): FindAccount {
  return async (_oidcCtx, sub) => {
    const user = await ctx.store.users.findById(sub);
    if (!user || user.status !== 'active') return undefined;
    return {
      accountId: user.id,
      // oidc-provider keeps only the claims that the scope (`claims` below) or the claims parameter asks for, so
      // the audit log is read only when email_verified may be one of them: not for an ID token or userinfo of
      // `openid` alone (a refresh grant of `openid offline_access` reads one statement fewer).
      claims: async (_use: string, scope: string, asked?: Record<string, unknown>) => {
        const claims = { sub: user.id, email: user.email, name: user.display_name };
        if (!scope.split(' ').includes('email') && !(asked && 'email_verified' in asked)) return claims;
        const activated = await ctx.store.audit.list({ subjectUserId: user.id, type: 'user.activated', limit: 1 });
        return { ...claims, email_verified: activated.length > 0 };
      },
    };
  };
}

/**
 * The acr values asked by an essential `acr` claims request (OpenID Connect Core 1.0 §5.5.1.1). oidc-provider
 * also puts `acr_values` there, as a voluntary request: only an essential one counts here.
 */
function claimsAcr(oidcCtx: KoaContextWithOIDC): string[] {
  const acr = (oidcCtx.oidc.claims as { id_token?: { acr?: { essential?: unknown; value?: unknown; values?: unknown } } } | undefined)?.id_token?.acr;
  if (!acr || acr.essential !== true) return [];
  const values = Array.isArray(acr.values) ? acr.values : [acr.value];
  return values.filter((value): value is string => typeof value === 'string');
}

/**
 * oidc-provider's prompts with one more login check: `acr_values` are voluntary to oidc-provider (it never
 * prompts for them), so a provider session that signed in with less would be used as it is, a silent
 * downgrade. Here a session whose acr is not one of those asked is sent to the login prompt, where the
 * interaction (src/app/oidc/interactions.ts) steps it up, or says it cannot be met (RFC 9470 §3). What is
 * asked includes what the method policy's requirements for this client ask (`client:KEY`), from the app
 * layer (src/app/oidc/application-policy.ts), so a session too weak for them is never silently reused.
 */
function interactionPolicyWithAcr(ctx: AppContext): interactionPolicy.DefaultPolicy {
  const policy = interactionPolicy.base();
  policy.get('login')!.checks.add(
    new interactionPolicy.Check('acr_values', 'the requested authentication context class was not reached', async (oidcCtx) => {
      const params = oidcCtx.oidc.params as { acr_values?: unknown } | undefined;
      const requested = askedAcrValues(typeof params?.acr_values === 'string' ? params.acr_values : undefined, claimsAcr(oidcCtx));
      const accountId = oidcCtx.oidc.session?.accountId;
      const clientId = oidcCtx.oidc.client?.clientId;
      const asked = accountId && clientId ? await askedAcrFor(ctx, accountId, clientId, requested) : requested;
      if (asked.length === 0) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      return asked.includes(oidcCtx.oidc.acr) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}

/**
 * The grant a request may reuse: the one just consented to, the provider session's, or — in another browser —
 * the one this person gave this client before (src/app/oidc/grants.ts), so that consent is asked once. A grant
 * revoked on "My account" is found by none of these (Grant.find gives nothing), and consent is asked again.
 */
function loadExistingGrantIn(ctx: AppContext): NonNullable<Configuration['loadExistingGrant']> {
  return async (oidcCtx) => {
    const { oidc } = oidcCtx;
    const clientId = oidc.client?.clientId;
    const accountId = oidc.session?.accountId;
    if (!clientId) return undefined;
    const result = oidc.result as { consent?: { grantId?: string } } | undefined;
    const candidates = [result?.consent?.grantId, oidc.session?.grantIdFor(clientId)];
    for (const grantId of candidates) {
      if (!grantId) continue;
      const grant = await oidc.provider.Grant.find(grantId);
      if (grant && grant.accountId === accountId) return grant;
    }
    const remembered = accountId ? await rememberedGrantId(ctx, accountId, clientId) : undefined;
    return remembered ? oidc.provider.Grant.find(remembered) : undefined;
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
  const artefacts = oidcArtefactAdapter(ctx, {
    // The second redemption of one code, racing the first (src/store/oidc-adapter.ts).
    alreadyConsumed: () => new errors.InvalidGrant('grant request is invalid'),
  });
  // Registered clients come from `oidc_clients` (src/app/oidc/clients.ts), their secrets opened there.
  const clients = createClientAdapter(ctx);
  const issuer = issuerFor(ctx.config.publicUrl);
  // Its error, logout and signed-out pages are ours (./pages.ts).
  const pages = providerPages(createPageRenderer(ctx.config.organisationName));
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
    // OpenID Connect Core 1.0 §5.4: which claims each scope gives. acr and amr come from the provider session
    // (the interaction's login result), not from findAccount; oidc-provider puts them in an ID token only when
    // asked (acr_values, the claims parameter) or when a granted scope names them, so `openid` does: every ID
    // token says how the person signed in (issue #13).
    claims: { acr: null, amr: null, auth_time: null, sid: null, openid: ['sub', 'acr', 'amr'], email: ['email', 'email_verified'], profile: ['name'] },
    // Discovery's acr_values_supported (src/core/oidc/acr.ts): the classes the enabled methods can reach.
    acrValues: [...ACR_VALUES_SUPPORTED],
    loadExistingGrant: loadExistingGrantIn(ctx),
    interactions: { url: (_oidcCtx, interaction) => interactionPath(interaction.uid), policy: interactionPolicyWithAcr(ctx) },
    pkce: { required: () => true },
    // oidc-provider sends its outgoing requests through an SSRF guard that refuses loopback and private addresses
    // (10/8, 172.16/12, 192.168/16…), meant for URIs that dynamic registration lets anyone set. Here there is no
    // dynamic registration: every URI it fetches was registered by an administrator with the CLI, and the only one it
    // fetches is a client's backchannel_logout_uri, for the logout token of an RP-initiated logout (Back-Channel
    // Logout 1.0 §2.5), often on the organisation's own network, where the guard failed it silently ("fetch failed").
    // So the guard's dispatcher is left out; the 2.5 s timeout it sets is kept (test/integration/oidc-conformance.test.ts).
    fetch: (input, init) => {
      const { dispatcher: _ssrfGuard, ...options } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
      return globalThis.fetch(input, options);
    },
    renderError: pages.renderError,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true, allowedPolicy: ownTokensOnly },
      introspection: { enabled: true, allowedPolicy: ownTokensOnly },
      rpInitiatedLogout: { enabled: true, logoutSource: pages.logoutSource, postLogoutSuccessSource: pages.postLogoutSuccessSource },
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
