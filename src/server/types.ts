import type { ActiveSession } from '../app/sessions.js';

export type Surface = 'page' | 'api';

declare module 'fastify' {
  interface FastifyRequest {
    /** A fresh nonce for this response's Content-Security-Policy. */
    cspNonce: string;
    /** The signed-in session, resolved on page surfaces; null when signed out. */
    auth: ActiveSession | null;
  }
  interface FastifyReply {
    /** Renders a Nunjucks view with the page context (organisation, nonce, CSRF token, user). */
    render(template: string, data?: Record<string, unknown>, status?: number): FastifyReply;
  }
  interface FastifyContextConfig {
    /** This route's Content-Security-Policy, when it differs from its surface's. */
    csp?: string;
    /** This route's Permissions-Policy, when it differs from the site's (the authenticator app may use the camera). */
    permissionsPolicy?: string;
    /** false for requests authenticated by something other than the session cookie (device API, token endpoint). */
    csrf?: boolean;
    /** 'api' routes answer errors in JSON; others with a page. */
    surface?: Surface;
  }
}
