/**
 * The oidc-provider instance (docs/oidc.md): its configuration, built from ours. This is the one place
 * that touches oidc-provider's own types; the casts it needs are here.
 *
 * What this step configures (issue #13): the issuer `${PUBLIC_URL}/oidc`; storage through OidcAdapter;
 * the signing keys from the database; cookies signed with a key derived from PORTCULLIS_SECRET; PKCE
 * required for every client, S256 only (RFC 7636 §4.2; oidc-provider 9 supports no other method);
 * revocation (RFC 7009), introspection (RFC 7662) and RP-initiated logout; no development interactions.
 * Interactions are sent to `/oidc-interaction/<uid>`, outside the mount (oidc-provider's catch-all 404
 * would answer anything under /oidc); that surface is the next step.
 */
import type { JWK } from 'jose';
import Provider, { errors, type Configuration, type FindAccount } from 'oidc-provider';
import type { AppContext } from '../../app/context.js';
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

export function createProvider(ctx: AppContext, signingKeys: JWK[]): Provider {
  const configuration: Configuration = {
    adapter: createOidcAdapterFactory({
      db: ctx.store.database.db,
      redis: ctx.redis,
      clock: ctx.clock,
      // The second redemption of one code, racing the first (src/store/oidc-adapter.ts).
      alreadyConsumed: () => new errors.InvalidGrant('grant request is invalid'),
    }),
    // oidc-provider's JWK type is its own copy of RFC 7517's; jose's describes the same objects.
    jwks: { keys: signingKeys as NonNullable<Configuration['jwks']>['keys'] },
    // Keygrip takes strings or Buffers; one derived key (rotating PORTCULLIS_SECRET rotates it).
    cookies: { keys: [Buffer.from(ctx.keys.oidcCookies).toString('base64url')] },
    clients: [],
    findAccount: findAccountIn(ctx),
    interactions: { url: (_oidcCtx, interaction) => interactionPath(interaction.uid) },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    ttl: { ...OIDC_LIFETIMES },
  };
  const provider = new Provider(issuerFor(ctx.config.publicUrl), configuration);
  // Koa's `proxy`: believe X-Forwarded-Proto and X-Forwarded-For only behind a proxy named in TRUST_PROXY.
  provider.proxy = ctx.config.trustProxy !== false && ctx.config.trustProxy !== 0;
  return provider;
}
