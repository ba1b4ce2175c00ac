/**
 * What OpenID Connect tests repeat (issue #13): a listening Portcullis, a registered application discovered by
 * openid-client 6 over http, an authorization request with PKCE (RFC 7636, S256), state and, when asked, nonce,
 * a person with a password and an authenticator app, the sign-in pages from the interaction back, and a relying
 * party's back-channel logout endpoint. The shapes are those of the functions in
 * test/integration/oidc-sign-in.test.ts, so that the OIDC test files can share them.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import * as oauth from 'openid-client';
import { expect } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { addClient, type ClientInput } from '../../src/app/oidc/clients.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { freePort, listen } from './browser.js';
import { createTestContext, type TestContext, type TestDialect } from './context.js';
import { FetchBrowser, type FetchAnswer } from './fetch-browser.js';

export const PASSWORD = 'lantern-harbour-correct';
export const ORGANISATION = 'Test Trust';
export const REDIRECT = 'http://127.0.0.1:8400/callback';
export const AFTER_LOGOUT = 'http://127.0.0.1:8400/signed-out';
export const systemActor = { kind: 'system' } as const;
export const cliActor = { kind: 'cli' as const, name: 'test' };

export interface OidcServer {
  ctx: TestContext;
  app: FastifyInstance;
  /** `http://localhost:<port>`, which is PUBLIC_URL. */
  origin: string;
  /** `${origin}/oidc`. */
  issuer: URL;
  close(): Promise<void>;
}

/** Portcullis listening on a free port of localhost, PUBLIC_URL its origin, with the organisation people join. */
export async function startOidcServer(
  dialect: TestDialect,
  env: Record<string, string> = {},
  options: { controlClock?: boolean } = {},
): Promise<OidcServer> {
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const ctx = await createTestContext(dialect, { PUBLIC_URL: origin, SIGN_IN_LOCKOUT_THRESHOLD: '100', ...env }, options);
  await addOrganisation(ctx, ORGANISATION, systemActor);
  const app = await buildApp(ctx);
  await listen(app, port);
  return {
    ctx,
    app,
    origin,
    issuer: new URL(`${origin}/oidc`),
    async close() {
      await app.close();
      await ctx.destroy();
    },
  };
}

export interface ApplicationOptions {
  firstParty: boolean;
  name?: string;
  key?: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  backChannelLogoutUri?: string;
  /** `--id-token-alg`: how its ID tokens are signed (RS256 unless said). */
  idTokenAlg?: 'RS256' | 'ES256';
}

export interface Application {
  clientId: string;
  key: string;
  secret: string;
  /** openid-client's configuration: discovered over http (allowInsecureRequests, tests only), client_secret_basic. */
  config: oauth.Configuration;
}

/** A confidential client registered as `portcullis client add --confidential` does, and discovered. */
export async function application(ctx: TestContext, issuer: URL, options: ApplicationOptions): Promise<Application> {
  const input: ClientInput = {
    name: options.name ?? (options.firstParty ? 'Staff rota' : 'Timesheets'),
    ...(options.key ? { key: options.key } : {}),
    redirectUris: options.redirectUris ?? [REDIRECT],
    postLogoutRedirectUris: options.postLogoutRedirectUris ?? [],
    ...(options.backChannelLogoutUri ? { backChannelLogoutUri: options.backChannelLogoutUri } : {}),
    confidential: true,
    firstParty: options.firstParty,
    service: false,
    scopes: [],
    ...(options.idTokenAlg ? { idTokenAlg: options.idTokenAlg } : {}),
  };
  const { client, secret } = await addClient(ctx, input, cliActor);
  // The application expects its own algorithm (openid-client refuses any other, as it should).
  const metadata = options.idTokenAlg ? { id_token_signed_response_alg: options.idTokenAlg } : undefined;
  const config = await oauth.discovery(issuer, client.clientId, metadata, oauth.ClientSecretBasic(secret!), { execute: [oauth.allowInsecureRequests] });
  return { clientId: client.clientId, key: client.key, secret: secret!, config };
}

export interface AuthorizationRequest {
  url: string;
  state: string;
  /** Redeems the code of a callback URL at the token endpoint, checking state, and the nonce when one was sent. */
  redeem(callback: string): Promise<oauth.TokenEndpointResponse & oauth.TokenEndpointResponseHelpers>;
}

/**
 * An authorization request (PKCE S256, state; `scope` openid email profile unless given). A `nonce` among the
 * parameters is checked in the ID token by `redeem` (OpenID Connect Core 1.0 §3.1.3.7 step 11).
 */
export async function authorize(config: oauth.Configuration, parameters: Record<string, string> = {}): Promise<AuthorizationRequest> {
  const verifier = oauth.randomPKCECodeVerifier();
  const state = oauth.randomState();
  const url = oauth.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email profile',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...parameters,
  });
  const redeem = (callback: string) =>
    oauth.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      ...(parameters.nonce ? { expectedNonce: parameters.nonce } : {}),
    });
  return { url: url.href, state, redeem };
}

/** The answer is the redirect to the application's redirect URI. */
export const atApplication = (answer: FetchAnswer, redirectUri = REDIRECT): boolean => answer.status === 303 && (answer.location ?? '').startsWith(redirectUri);
/** The `error` of a redirect to the application. */
export const errorAt = (answer: FetchAnswer): string | null => new URL(answer.location!).searchParams.get('error');

export interface Person {
  email: string;
  userId: string;
  displayName: string;
  /** A browser not yet signed in to Portcullis. */
  browser: FetchBrowser;
  /** A TOTP code the server accepts now and no earlier code of this person used (never sleeps). */
  code: () => string;
}

/**
 * A person with a password and an authenticator app (added on Security info), with a random address. `accept`
 * is the browser's Accept header (oidc-provider renders its pages as HTML only to a browser that accepts it).
 */
export async function personWithTotp(ctx: TestContext, origin: string, options: { accept?: string } = {}): Promise<Person> {
  const id = randomUUID().slice(0, 8);
  const email = `person-${id}@example.org`;
  const displayName = `Person ${id}`;
  await addUser(ctx, { email, displayName, organisation: ORGANISATION, roles: [], password: PASSWORD }, systemActor);
  const user = (await ctx.store.users.findByEmail(email))!;
  const setup = new FetchBrowser(origin);
  await setup.send('GET', '/sign-in');
  await setup.send('POST', '/sign-in', { email });
  await setup.send('GET', '/sign-in/password');
  await setup.send('POST', '/sign-in/password', { password: PASSWORD });
  await setup.send('GET', '/security-info/add');
  const chosen = await setup.send('POST', '/security-info/add', { method: 'totp' });
  const page = await setup.send('GET', chosen.location!);
  const key = /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.body)![1]!.replace(/ /g, '');
  // Each code is of the earliest step the server still accepts (RFC 6238 §5.2: one step of drift either way)
  // that no earlier code used (a step is used once), worked out when it is asked for: up to three codes in one
  // step's time, whatever step boundary passes meanwhile.
  let used = -Infinity;
  const code = () => {
    used = Math.max(Math.floor(Date.now() / 30_000) - 1, used + 1);
    return generateTotp(key, new Date(used * 30_000));
  };
  const added = await setup.send('POST', chosen.location!, { code: code() });
  expect(added.location).toBe('/security-info?done=added');
  return { email, userId: user.id, displayName, browser: new FetchBrowser(origin, options.accept ? { accept: options.accept } : {}), code };
}

/** The sign-in pages (email, password, code), from the email page the interaction sent the browser to, back to the interaction. */
export async function signIn(browser: FetchBrowser, email: string, code: string, at: FetchAnswer & { url: string }): Promise<FetchAnswer & { url: string }> {
  const origin = browser.base;
  expect(new URL(at.url, origin).pathname).toBe('/sign-in');
  const returnTo = new URL(at.url, origin).searchParams.get('returnTo')!;
  expect(returnTo).toMatch(/^\/oidc-interaction\/[\w-]+$/);
  await browser.send('POST', '/sign-in', { email, returnTo });
  await browser.send('GET', '/sign-in/password');
  expect((await browser.send('POST', '/sign-in/password', { password: PASSWORD })).location).toBe('/sign-in/verify');
  await browser.send('GET', '/sign-in/verify');
  const verified = await browser.send('POST', '/sign-in/verify', { code });
  expect(verified.location).toBe(returnTo);
  return browser.follow(verified.location!);
}

/**
 * Signs the person in to the application (their browser follows the request, signs in, comes back) and redeems
 * the code: the tokens, with the ID token verified by openid-client.
 */
export async function signInToApplication(person: Person, config: oauth.Configuration, parameters: Record<string, string> = {}) {
  const request = await authorize(config, parameters);
  const back = await signIn(person.browser, person.email, person.code(), await person.browser.follow(request.url));
  expect(atApplication(back)).toBe(true);
  return request.redeem(back.location!);
}

/** A relying party's back-channel logout endpoint (Back-Channel Logout 1.0 §2.5): keeps each logout_token posted; answers `status`. */
export class BackChannelReceiver {
  readonly tokens: string[] = [];
  status = 200;
  url = '';
  private server: Server | null = null;

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        // §2.5: a form-encoded POST; anything else is not a logout request.
        if (request.method === 'POST' && request.headers['content-type'] === 'application/x-www-form-urlencoded') {
          const token = new URLSearchParams(body).get('logout_token');
          if (token) this.tokens.push(token);
        }
        response.writeHead(this.status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/backchannel`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Waits (briefly) until `probe` returns something: what happens after a response, such as a back-channel delivery. */
export async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
