/**
 * How long each OpenID Connect artefact lives, in seconds: oidc-provider's `ttl` option, written out
 * (oidc-provider warns at start-up about every one left to its defaults). These are its defaults, apart
 * from the authorization code, which is a minute (RFC 6749 §4.1.2 recommends at most ten).
 */
export const OIDC_LIFETIMES = {
  AccessToken: 60 * 60,
  AuthorizationCode: 60,
  ClientCredentials: 10 * 60,
  DeviceCode: 10 * 60,
  BackchannelAuthenticationRequest: 10 * 60,
  IdToken: 60 * 60,
  Interaction: 60 * 60,
  RefreshToken: 14 * 24 * 60 * 60,
  Session: 14 * 24 * 60 * 60,
  Grant: 14 * 24 * 60 * 60,
} as const;

/**
 * How long a signing key keeps verifying after it stops being current: the longest lifetime of anything
 * it could have signed (an ID token, or a JWT access token if clients are given them), plus a margin for
 * nodes that have not yet reloaded the key set (KEY_SET_REFRESH_SECONDS) and for clocks that differ.
 */
export const KEY_SET_REFRESH_SECONDS = 60;
/**
 * A rotated-in key is published at once and signs only this long after it was made: by then every node has
 * reloaded the key set (KEY_SET_REFRESH_SECONDS, twice over, and half a minute for clocks), so no node signs
 * with a key another node does not yet publish in /oidc/jwks. The key it replaces signs until then.
 */
export const KEY_PUBLISH_AHEAD_SECONDS = 2 * KEY_SET_REFRESH_SECONDS + 30;
export const SIGNING_KEY_RETIRE_AFTER_SECONDS = Math.max(OIDC_LIFETIMES.IdToken, OIDC_LIFETIMES.AccessToken) + 5 * 60;
