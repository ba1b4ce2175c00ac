/**
 * Cookie names and attributes. `__Host-` prefixed (so Secure, Path=/, no Domain: no subdomain can set
 * or read them), HttpOnly, SameSite=Lax (OWASP ASVS 5 V3.3). Browsers accept Secure cookies from
 * http://localhost, which is the only place plain http is allowed (config checks PUBLIC_URL).
 */
import type { CookieSerializeOptions } from '@fastify/cookie';

export const SESSION_COOKIE = '__Host-portcullis-session';
export const SIGN_IN_COOKIE = '__Host-portcullis-sign-in';
export const CSRF_COOKIE = '__Host-portcullis-csrf';

export function cookieOptions(maxAgeSeconds?: number): CookieSerializeOptions {
  return {
    path: '/',
    httpOnly: true,
    secure: true,
    sameSite: 'lax',
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
  };
}
