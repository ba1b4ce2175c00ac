/**
 * CSRF protection for every state-changing request authenticated by cookies (OWASP ASVS 5 V3.5):
 * 1. Fetch metadata and Origin: a request that says it comes from another site is refused
 *    (Sec-Fetch-Site other than same-origin, or an Origin other than PUBLIC_URL's);
 * 2. a synchronizer token: a random seed in a __Host- cookie and, in every form, an HMAC of it under a
 *    key derived from the secret ("signed double-submit cookie"). The seed is replaced at sign-in and
 *    sign-out.
 * Routes authenticated otherwise (device API, OIDC token endpoint) set `config.csrf: false`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { PortcullisError } from '../../core/errors.js';
import { hmac, randomToken, safeEqual } from '../../crypto/tokens.js';
import { CSRF_COOKIE, cookieOptions } from '../cookies.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface CsrfOptions {
  key: Uint8Array;
  publicOrigin: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The CSRF seed in force for this response (from the cookie, or newly issued). */
    csrfSeed: string | null;
  }
  interface FastifyReply {
    /** The token to put in this page's forms; issues a seed cookie if the browser has none. */
    csrfToken(): string;
    /** Replaces the seed (at sign-in and sign-out), so a token from before no longer works. */
    rotateCsrf(): void;
  }
}

export function csrfTokenFor(key: Uint8Array, seed: string): string {
  return hmac(key, `csrf:${seed}`);
}

/** Whether the request's own headers say it came from this site (when a browser sends them). */
export function isSameOrigin(request: FastifyRequest, publicOrigin: string): boolean {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return false;
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== publicOrigin) return false;
  return true;
}

export const csrfProtection = fp<CsrfOptions>(
  async (app, options) => {
    app.decorateRequest('csrfSeed', null);
    app.decorateReply('csrfToken', function (this: FastifyReply) {
      if (!this.request.csrfSeed) {
        this.request.csrfSeed = randomToken(32);
        this.setCookie(CSRF_COOKIE, this.request.csrfSeed, cookieOptions());
      }
      return csrfTokenFor(options.key, this.request.csrfSeed);
    });
    app.decorateReply('rotateCsrf', function (this: FastifyReply) {
      this.request.csrfSeed = randomToken(32);
      this.setCookie(CSRF_COOKIE, this.request.csrfSeed, cookieOptions());
    });

    app.addHook('onRequest', async (request) => {
      const seed = request.cookies[CSRF_COOKIE];
      request.csrfSeed = seed && /^[A-Za-z0-9_-]{43}$/.test(seed) ? seed : null;
    });

    app.addHook('preHandler', async (request) => {
      if (SAFE_METHODS.has(request.method) || request.routeOptions.config?.csrf === false) return;
      if (!isSameOrigin(request, options.publicOrigin)) throw new PortcullisError('csrf-failed');
      const body = request.body as Record<string, unknown> | undefined;
      const sent = typeof body?._csrf === 'string' ? body._csrf : request.headers['x-csrf-token'];
      if (!request.csrfSeed || typeof sent !== 'string' || !safeEqual(sent, csrfTokenFor(options.key, request.csrfSeed))) {
        throw new PortcullisError('csrf-failed');
      }
    });
  },
  { name: 'csrf', dependencies: ['@fastify/cookie'] },
);
