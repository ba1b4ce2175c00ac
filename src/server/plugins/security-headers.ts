/**
 * Security headers on every response. The Content-Security-Policy is set per surface (a route may
 * state its own in `config.csp`): pages allow scripts only from this origin or with this response's
 * nonce, never 'unsafe-inline'. frame-ancestors 'none' stops framing (clickjacking); HSTS is sent
 * when PUBLIC_URL is https.
 */
import fp from 'fastify-plugin';
import { secureRandomBytes } from '../../crypto/tokens.js';

export function pageCsp(nonce: string): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
}

export const PERMISSIONS_POLICY = 'camera=(), microphone=(), geolocation=(), payment=()';

export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

export const securityHeaders = fp<{ https: boolean }>(async (app, options) => {
  app.decorateRequest('cspNonce', '');
  app.addHook('onRequest', async (request) => {
    request.cspNonce = secureRandomBytes(16).toString('base64');
  });
  app.addHook('onSend', async (request, reply) => {
    const config = request.routeOptions.config;
    const csp = config?.csp ?? (config?.surface === 'api' ? API_CSP : pageCsp(request.cspNonce));
    reply.header('content-security-policy', csp);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    // same-origin, not no-referrer: with no-referrer, browsers send "Origin: null" on form posts, defeating the Origin check.
    reply.header('referrer-policy', 'same-origin');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    // No powerful feature anywhere, unless a surface says otherwise (the authenticator app's QR scanner).
    reply.header('permissions-policy', config?.permissionsPolicy ?? PERMISSIONS_POLICY);
    if (options.https) reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
  });
}, { name: 'security-headers' });
