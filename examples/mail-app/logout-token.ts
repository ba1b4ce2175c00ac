/**
 * A relying party's check of a back-channel logout token, step by step as OpenID Connect Back-Channel Logout 1.0
 * §2.6 lists them. Pure apart from the key lookup: the caller passes the issuer, its own client_id, the JWKS and
 * the replay cache; this returns who to sign out, or throws a LogoutTokenError (answered 400, §2.8).
 */
import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export class LogoutTokenError extends Error {
  /** §2.8: "If the logout request was invalid, the RP SHOULD respond with HTTP 400 Bad Request … error invalid_request". */
  readonly error = 'invalid_request';
  constructor(message: string) {
    super(message);
    this.name = 'LogoutTokenError';
  }
}

/** jti values seen, each kept until its token's exp: a token replayed within its lifetime is refused (§2.6 step 7). */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  /** True the first time; false for a jti seen before whose token has not expired. */
  claim(jti: string, exp: number, nowSeconds: number): boolean {
    for (const [key, until] of this.seen) if (until < nowSeconds) this.seen.delete(key);
    if (this.seen.has(jti)) return false;
    this.seen.set(jti, exp);
    return true;
  }
}

export interface LogoutTokenChecks {
  issuer: string;
  clientId: string;
  jwks: JWTVerifyGetKey;
  replay: ReplayCache;
  /** The algorithm the client's ID tokens are signed with (RS256 by default, OpenID Connect Registration §2). */
  algorithms?: string[];
  /** Seconds of clock difference allowed on iat and exp. */
  clockTolerance?: number;
}

export interface LogoutRequest {
  sub: string | null;
  sid: string | null;
  jti: string;
}

export async function validateLogoutToken(token: string, checks: LogoutTokenChecks): Promise<LogoutRequest> {
  // Step 1: an encrypted token (five parts, JWE) was never registered for (no backchannel encryption metadata).
  if (token.split('.').length !== 3) throw new LogoutTokenError('the logout token is not a signed JWT');
  let payload;
  try {
    // Steps 2 and 3: the signature, by a key of the OP's JWKS and the client's algorithm (never `none`); iss,
    // aud (this client), iat and exp as for an ID token; §2.4's explicit type, so an ID token cannot pass as one.
    ({ payload } = await jwtVerify(token, checks.jwks, {
      issuer: checks.issuer,
      audience: checks.clientId,
      algorithms: checks.algorithms ?? ['RS256'],
      typ: 'logout+jwt',
      requiredClaims: ['iat', 'exp', 'jti'],
      clockTolerance: checks.clockTolerance ?? 30,
    }));
  } catch (error) {
    const reason = error instanceof errors.JOSEError ? `${error.code}: ${error.message}` : 'unreadable';
    throw new LogoutTokenError(`the logout token did not verify (${reason})`);
  }
  // Step 4: a sub, a sid, or both.
  const sub = typeof payload.sub === 'string' && payload.sub ? payload.sub : null;
  const sid = typeof payload.sid === 'string' && payload.sid ? payload.sid : null;
  if (!sub && !sid) throw new LogoutTokenError('the logout token names neither sub nor sid');
  // Step 5: an events claim, a JSON object with the back-channel logout member (whose value is a JSON object, §2.4).
  const events = payload.events;
  if (typeof events !== 'object' || events === null || Array.isArray(events)) throw new LogoutTokenError('the logout token has no events object');
  const member = (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT];
  if (typeof member !== 'object' || member === null || Array.isArray(member)) throw new LogoutTokenError(`the events claim has no ${BACKCHANNEL_LOGOUT_EVENT} member`);
  // Step 6: no nonce (an ID token carrying one must never be taken for a logout token).
  if ('nonce' in payload) throw new LogoutTokenError('the logout token holds a nonce');
  // Step 7: not replayed within its lifetime.
  const jti = payload.jti;
  if (typeof jti !== 'string' || !jti) throw new LogoutTokenError('the logout token has no jti');
  if (!checks.replay.claim(jti, payload.exp!, Math.floor(Date.now() / 1000))) throw new LogoutTokenError('the logout token was received before (jti replayed)');
  return { sub, sid, jti };
}
