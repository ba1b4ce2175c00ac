/**
 * RP-initiated logout ends the Portcullis session too (docs/oidc.md#signing-out). oidc-provider ends its own
 * session when the person answers "Yes, sign out" (logout=yes, OpenID Connect RP-Initiated Logout 1.0 §2:
 * "the OP SHOULD ask the End-User whether to log out of the OP as well"); a person who signed out of the
 * provider but stayed signed in to Portcullis would be signed straight back in by the next authorization
 * request, so ours ends with it. "No, stay signed in" ends neither.
 *
 * Our session is found by its cookie, which the browser sends with the confirmation's POST (same site): the
 * `oidc_session_id` column is not filled, so there is no other link between the two sessions. This runs as
 * Koa middleware on the provider, after its handler, so the session is gone before the redirect is answered.
 */
import type Provider from 'oidc-provider';
import type { AppContext } from '../../app/context.js';
import { endSession, resolveSession } from '../../app/sessions.js';
import { SESSION_COOKIE } from '../cookies.js';

/** The session cookie, expired (Set-Cookie by hand: Koa's cookies refuse Secure on http://localhost). */
const CLEARED_SESSION_COOKIE = `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax`;

export function endPortcullisSessionOnLogout(provider: Provider, ctx: AppContext): void {
  provider.use(async (koa, next) => {
    await next();
    const oidc = (koa as { oidc?: { route?: string; params?: Record<string, unknown> } }).oidc;
    // Only a confirmed sign-out that oidc-provider carried out (its answer is a 303 to where it goes next).
    if (oidc?.route !== 'end_session_confirm' || !oidc.params?.logout || koa.status !== 303) return;
    const token = koa.cookies.get(SESSION_COOKIE, { signed: false });
    if (!token) return;
    const session = await resolveSession(ctx, token);
    if (session) await endSession(ctx, session, { ip: koa.ip, userAgent: koa.get('user-agent') || null });
    koa.append('set-cookie', CLEARED_SESSION_COOKIE);
  });
}
