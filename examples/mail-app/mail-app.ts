/**
 * "Mail", a sample application that signs people in through Portcullis (issue #13 point 7; docs/oidc.md#the-sample-application).
 * A confidential client (client_secret_basic) with openid-client 6: authorization code + PKCE S256 + state + nonce.
 *
 * - `/` the inbox: fake messages, the person's name, the claims received and the ID token's verified signature;
 * - `/settings` sensitive settings: needs `urn:portcullis:acr:app-push` from a sign-in at most 5 minutes old, else
 *   sends the person back with `acr_values` and `max_age=300` and checks what comes back itself (RFC 9470 §3, §5);
 * - `POST /logout` RP-Initiated Logout 1.0 (id_token_hint, post_logout_redirect_uri, state);
 * - `POST /backchannel-logout` Back-Channel Logout 1.0 (§2.6 checks in logout-token.ts; 200, or 400 with JSON, §2.8).
 *
 * node:http only; sessions in memory behind an HttpOnly, SameSite=Lax cookie.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'openid-client';
import { LogoutTokenError, ReplayCache, validateLogoutToken } from './logout-token.js';
import { inbox, page, problem, settings, signedOut, type ClaimRow } from './pages.js';

export const APP_PUSH = 'urn:portcullis:acr:app-push';
/** Sensitive settings need a push approval from a sign-in at most this old (the max_age sent, OIDC Core §3.1.2.1). */
export const STEP_UP_MAX_AGE = 300;
const PENDING_SECONDS = 600;
/** A session unused for this long is forgotten (the ID token it holds lasts an hour). */
const IDLE_SECONDS = 8 * 3600;
const COOKIE = 'mail_session';
const BODY_LIMIT = 16 * 1024;
const STYLESHEET = readFileSync(new URL('./style.css', import.meta.url), 'utf8');

export interface MailAppOptions {
  /** Portcullis's issuer, e.g. http://localhost:8080/oidc. */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** 0 for any free port. */
  port: number;
  /** Where browsers reach the app (its redirect URI is `${publicUrl}/callback`); by default http://localhost:<port>. */
  publicUrl?: string;
  host?: string;
}

export interface SignedIn {
  sub: string;
  sid: string | null;
  idToken: string;
  idClaims: oauth.IDToken;
  email: string;
  name: string;
  signature: { alg: string; kid: string };
}

interface PendingAuthorization {
  state: string;
  nonce: string;
  verifier: string;
  purpose: 'sign-in' | 'step-up';
  startedAt: number;
}

export interface MailSession {
  id: string;
  csrf: string;
  user: SignedIn | null;
  pending: PendingAuthorization | null;
  /** The state sent with an RP-initiated logout, to recognise the browser's return (RP-Initiated Logout 1.0 §3). */
  logoutState: string | null;
  notice: 'none' | 'signed-out' | 'ended-by-portcullis';
  usedAt: number;
}

export interface MailApp {
  url: string;
  sessions: ReadonlyMap<string, MailSession>;
  close(): Promise<void>;
}

const token = () => randomBytes(32).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

const sameText = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function securityHeaders(issuerOrigin: string): Record<string, string> {
  return {
    // The Sign out form's redirect goes on to Portcullis's end-session endpoint, which Chromium checks against form-action.
    'Content-Security-Policy': `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' ${issuerOrigin}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    // The callback's URL holds the code: never sent on as a Referer.
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  };
}

async function readForm(request: IncomingMessage): Promise<URLSearchParams | null> {
  if (!(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) return null;
  let body = '';
  for await (const chunk of request) {
    body += (chunk as Buffer).toString('utf8');
    if (body.length > BODY_LIMIT) return null;
  }
  return new URLSearchParams(body);
}

function cookieValue(request: IncomingMessage, name: string): string | null {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return null;
}

export async function startMailApp(options: MailAppOptions): Promise<MailApp> {
  const issuerUrl = new URL(options.issuer);
  const insecure = issuerUrl.protocol === 'http:';
  const config = await oauth.discovery(issuerUrl, options.clientId, { id_token_signed_response_alg: 'RS256' }, oauth.ClientSecretBasic(options.clientSecret), insecure ? { execute: [oauth.allowInsecureRequests] } : {});
  const metadata = config.serverMetadata();
  const jwksUri = metadata.jwks_uri!;
  const jwks = createRemoteJWKSet(new URL(jwksUri));
  const replay = new ReplayCache();
  const sessions = new Map<string, MailSession>();
  const headers = securityHeaders(issuerUrl.origin);
  let base = '';
  const secureCookie = () => (base.startsWith('https:') ? '; Secure' : '');

  const send = (response: ServerResponse, status: number, html: string) => {
    response.writeHead(status, { ...headers, 'Content-Type': 'text/html; charset=utf-8' }).end(html);
  };
  const redirect = (response: ServerResponse, location: string, cookie?: string) => {
    response.writeHead(303, { ...headers, Location: location, ...(cookie ? { 'Set-Cookie': cookie } : {}) }).end();
  };
  const sessionCookie = (id: string) => `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax${secureCookie()}`;
  let prunedAt = 0;
  const sessionOf = (request: IncomingMessage) => {
    const now = nowSeconds();
    if (now - prunedAt > 60) {
      prunedAt = now;
      for (const [id, session] of sessions) if (now - session.usedAt > IDLE_SECONDS) sessions.delete(id);
    }
    const id = cookieValue(request, COOKIE);
    const session = id ? (sessions.get(id) ?? null) : null;
    if (session) session.usedAt = now;
    return session;
  };
  const newSession = (): MailSession => {
    const session: MailSession = { id: token(), csrf: token(), user: null, pending: null, logoutState: null, notice: 'none', usedAt: nowSeconds() };
    sessions.set(session.id, session);
    return session;
  };

  /** Sends the browser to Portcullis: PKCE S256 (RFC 7636), state (RFC 6749 §10.12), nonce (OIDC Core §3.1.2.1). */
  async function authorize(response: ServerResponse, session: MailSession, purpose: PendingAuthorization['purpose'], isNew: boolean) {
    const pending: PendingAuthorization = { state: oauth.randomState(), nonce: oauth.randomNonce(), verifier: oauth.randomPKCECodeVerifier(), purpose, startedAt: nowSeconds() };
    session.pending = pending;
    const url = oauth.buildAuthorizationUrl(config, {
      redirect_uri: `${base}/callback`,
      scope: 'openid email profile',
      code_challenge: await oauth.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      // RFC 9470 §4: the class wanted, and how recent the sign-in must be.
      ...(purpose === 'step-up' ? { acr_values: APP_PUSH, max_age: String(STEP_UP_MAX_AGE) } : {}),
    });
    redirect(response, url.href, isNew ? sessionCookie(session.id) : undefined);
  }

  const meetsStepUp = (claims: oauth.IDToken) => claims.acr === APP_PUSH && typeof claims.auth_time === 'number' && nowSeconds() - claims.auth_time <= STEP_UP_MAX_AGE;

  async function callback(request: IncomingMessage, response: ServerResponse, url: URL) {
    const session = sessionOf(request);
    const pending = session?.pending;
    if (!session || !pending || nowSeconds() - pending.startedAt > PENDING_SECONDS || url.searchParams.get('state') !== pending.state) {
      return send(response, 400, page({ title: 'Sign-in not recognised', csrf: null, body: problem({ heading: 'This sign-in was not started here', text: 'Start again from Mail.' }) }));
    }
    session.pending = null;
    const error = url.searchParams.get('error');
    if (error) {
      const heading = pending.purpose === 'step-up' ? 'Sensitive settings need a push approval' : 'You were not signed in';
      return send(response, 403, page({ title: heading, csrf: session.user ? session.csrf : null, body: problem({ heading, text: 'Portcullis did not confirm it was you.', reference: error }) }));
    }
    let tokens;
    try {
      tokens = await oauth.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
        ...(pending.purpose === 'step-up' ? { maxAge: STEP_UP_MAX_AGE } : {}),
      });
    } catch (failure) {
      const reference = failure instanceof oauth.ResponseBodyError || failure instanceof oauth.AuthorizationResponseError ? failure.error : (failure as Error).name;
      return send(response, 400, page({ title: 'Sign-in failed', csrf: null, body: problem({ heading: 'Sign-in failed', text: 'Mail could not complete the sign-in.', reference }) }));
    }
    const idToken = tokens.id_token!;
    // OIDC Core §3.1.3.7 lets a client trust TLS for a token from the token endpoint; this one checks the signature
    // with the issuer's published keys all the same, and shows it did.
    const { protectedHeader } = await jwtVerify(idToken, jwks, { issuer: metadata.issuer, audience: options.clientId, algorithms: ['RS256'] });
    const claims = tokens.claims()!;
    if (pending.purpose === 'step-up') {
      // RFC 9470 §5: never trust that the step-up happened; the ID token must say so, for the same person.
      if (!session.user || claims.sub !== session.user.sub || !meetsStepUp(claims)) {
        const heading = 'Sensitive settings need a push approval';
        return send(response, 403, page({ title: heading, csrf: session.user ? session.csrf : null, body: problem({ heading, text: 'The sign-in that came back was not an approved push within the last 5 minutes.', reference: String(claims.acr ?? 'no acr') }) }));
      }
    }
    const info = await oauth.fetchUserInfo(config, tokens.access_token, claims.sub);
    const user: SignedIn = {
      sub: claims.sub,
      sid: typeof claims.sid === 'string' ? claims.sid : null,
      idToken,
      idClaims: claims,
      email: typeof info.email === 'string' ? info.email : '',
      name: typeof info.name === 'string' ? info.name : claims.sub,
      signature: { alg: protectedHeader.alg, kid: protectedHeader.kid ?? '' },
    };
    // A new session id at each sign-in (no fixation); the old one is forgotten.
    sessions.delete(session.id);
    const fresh: MailSession = { ...session, id: token(), csrf: token(), user, notice: 'none', logoutState: null };
    sessions.set(fresh.id, fresh);
    redirect(response, pending.purpose === 'step-up' ? '/settings' : '/', sessionCookie(fresh.id));
  }

  function claimRows(user: SignedIn): ClaimRow[] {
    const c = user.idClaims;
    const when = (seconds: unknown) => (typeof seconds === 'number' ? `${seconds} (${new Date(seconds * 1000).toISOString()})` : '—');
    return [
      { claim: 'sub', value: c.sub, source: 'ID token' },
      { claim: 'email', value: user.email, source: 'UserInfo' },
      { claim: 'name', value: user.name, source: 'UserInfo' },
      { claim: 'acr', value: String(c.acr ?? '—'), source: 'ID token' },
      { claim: 'amr', value: Array.isArray(c.amr) ? c.amr.join(' ') : '—', source: 'ID token' },
      { claim: 'auth_time', value: when(c.auth_time), source: 'ID token' },
    ];
  }

  async function backchannelLogout(request: IncomingMessage, response: ServerResponse) {
    const json = (status: number, body: object) => response.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
    // §2.5: a form-encoded POST with logout_token.
    const form = await readForm(request);
    const logoutToken = form?.get('logout_token');
    if (!logoutToken) return json(400, { error: 'invalid_request', error_description: 'logout_token is required (application/x-www-form-urlencoded)' });
    try {
      const { sub, sid } = await validateLogoutToken(logoutToken, { issuer: metadata.issuer, clientId: options.clientId, jwks, replay });
      // §2.7: end the sessions of that sub (and of that sid, when one was kept from an ID token).
      for (const session of sessions.values()) {
        if (session.user && ((sub && session.user.sub === sub) || (sid && session.user.sid === sid))) {
          session.user = null;
          session.notice = 'ended-by-portcullis';
        }
      }
      return json(200, {});
    } catch (error) {
      if (error instanceof LogoutTokenError) return json(400, { error: error.error, error_description: error.message });
      throw error;
    }
  }

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const url = new URL(request.url ?? '/', base);
    const route = `${request.method} ${url.pathname}`;
    const session = sessionOf(request);
    switch (route) {
      case 'GET /readyz':
        return response.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' }).end('ready\n');
      case 'GET /style.css':
        return response.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(STYLESHEET);
      case 'GET /': {
        if (session?.user) {
          return send(response, 200, page({ title: 'Inbox', csrf: session.csrf, body: inbox({ name: session.user.name, email: session.user.email, claims: claimRows(session.user), signature: { ...session.user.signature, jwksUri } }) }));
        }
        // Back from Portcullis's end-session endpoint with the state this browser was given.
        const state = url.searchParams.get('state');
        if (session && state && session.logoutState && sameText(state, session.logoutState)) {
          session.logoutState = null;
          session.notice = 'signed-out';
        }
        return send(response, 200, page({ title: 'Mail', csrf: null, body: signedOut(session?.notice ?? 'none') }));
      }
      case 'GET /login': {
        const current = session ?? newSession();
        return authorize(response, current, 'sign-in', current !== session);
      }
      case 'GET /callback':
        return callback(request, response, url);
      case 'GET /settings': {
        if (!session?.user) return redirect(response, '/login');
        if (!meetsStepUp(session.user.idClaims)) return authorize(response, session, 'step-up', false);
        return send(response, 200, page({ title: 'Sensitive settings', csrf: session.csrf, body: settings({ confirmedAt: new Date((session.user.idClaims.auth_time ?? 0) * 1000).toISOString() }) }));
      }
      case 'POST /logout': {
        const form = await readForm(request);
        if (!session || !form || !sameText(form.get('csrf') ?? '', session.csrf)) return send(response, 403, page({ title: 'Not signed out', csrf: null, body: problem({ heading: 'That request was not from Mail', text: 'Nothing was changed.' }) }));
        const user = session.user;
        session.user = null;
        if (!user) return redirect(response, '/');
        session.logoutState = oauth.randomState();
        // RP-Initiated Logout 1.0 §2: the ID token as a hint, a registered post-logout URI, and state.
        const end = oauth.buildEndSessionUrl(config, { id_token_hint: user.idToken, post_logout_redirect_uri: `${base}/`, state: session.logoutState });
        return redirect(response, end.href);
      }
      case 'POST /backchannel-logout':
        return backchannelLogout(request, response);
      default:
        return send(response, 404, page({ title: 'Not found', csrf: null, body: problem({ heading: 'Page not found', text: 'There is no such page in Mail.' }) }));
    }
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      process.stderr.write(`mail-app: ${(error as Error).stack ?? String(error)}\n`);
      if (!response.headersSent) send(response, 500, page({ title: 'Something went wrong', csrf: null, body: problem({ heading: 'Something went wrong', text: 'Try again in a moment.' }) }));
      else response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? 'localhost', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  base = (options.publicUrl ?? `http://localhost:${port}`).replace(/\/$/, '');
  return {
    url: base,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
