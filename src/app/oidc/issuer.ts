/**
 * Where the OpenID Connect provider lives: its mount and its issuer (`${PUBLIC_URL}/oidc`). Kept apart
 * from src/server/oidc so that use cases and CLI verbs can name the issuer without loading oidc-provider.
 */
export const OIDC_MOUNT = '/oidc';

export function issuerFor(publicUrl: URL): string {
  return `${publicUrl.origin}${publicUrl.pathname.replace(/\/$/, '')}${OIDC_MOUNT}`;
}
