/**
 * The sample application's back-channel logout endpoint (examples/mail-app; OpenID Connect Back-Channel Logout 1.0
 * §2.6 and §2.8), against a stand-in OP that serves only discovery and a JWKS: a valid logout token is answered 200;
 * each way of breaking one, 400 with a JSON invalid_request and Cache-Control: no-store.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKCHANNEL_LOGOUT_EVENT } from '../examples/mail-app/logout-token.js';
import { startMailApp, type MailApp } from '../examples/mail-app/mail-app.js';

const CLIENT_ID = 'mail-client';
let op: Server;
let issuer = '';
let mail: MailApp;
let key: CryptoKey;
let otherKey: CryptoKey;
let jti = 0;

beforeAll(async () => {
  otherKey = (await generateKeyPair('RS256')).privateKey;
  // The JWKS publishes the public half of `key` only.
  const pair = await generateKeyPair('RS256', { extractable: true });
  key = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  op = createServer((request, response) => {
    const json = (body: object) => response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    if (request.url === '/.well-known/openid-configuration') {
      return json({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, end_session_endpoint: `${issuer}/session/end`, id_token_signing_alg_values_supported: ['RS256'] });
    }
    if (request.url === '/jwks') return json({ keys: [jwk] });
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => op.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(op.address() as AddressInfo).port}`;
  mail = await startMailApp({ issuer, clientId: CLIENT_ID, clientSecret: 'not-used-here', port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await mail?.close();
  await new Promise((resolve) => op?.close(resolve));
});

const now = () => Math.floor(Date.now() / 1000);

function claims(overrides: Partial<JWTPayload> & Record<string, unknown> = {}): JWTPayload {
  jti += 1;
  return { iss: issuer, aud: CLIENT_ID, iat: now(), exp: now() + 120, jti: `jti-${jti}-${Math.random()}`, sub: 'user-1', sid: 'sid-1', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...overrides };
}

async function sign(payload: JWTPayload, options: { typ?: string; with?: CryptoKey; drop?: string[] } = {}): Promise<string> {
  const body = { ...payload };
  for (const name of options.drop ?? []) delete body[name];
  return new SignJWT(body).setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: options.typ ?? 'logout+jwt' }).sign(options.with ?? key);
}

async function post(body: string, contentType = 'application/x-www-form-urlencoded') {
  const response = await fetch(`${mail.url}/backchannel-logout`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
  return { status: response.status, cacheControl: response.headers.get('cache-control'), body: (await response.json()) as { error?: string; error_description?: string } };
}
const postToken = (token: string) => post(new URLSearchParams({ logout_token: token }).toString());

describe("the mail app's back-channel logout endpoint", () => {
  it('answers a valid logout token 200 (§2.8), and the same token again 400: its jti was seen (§2.6 step 7)', async () => {
    const token = await sign(claims());
    expect(await postToken(token)).toMatchObject({ status: 200, cacheControl: 'no-store' });
    expect(await postToken(token)).toMatchObject({ status: 400, cacheControl: 'no-store', body: { error: 'invalid_request', error_description: expect.stringMatching(/jti replayed/) } });
  });

  it('accepts a token with sid only, or sub only (§2.6 step 4)', async () => {
    expect((await postToken(await sign(claims(), { drop: ['sub'] }))).status).toBe(200);
    expect((await postToken(await sign(claims(), { drop: ['sid'] }))).status).toBe(200);
  });

  it.each<[string, () => Promise<string>]>([
    ['signed by a key not in the JWKS (step 2)', () => sign(claims(), { with: otherKey })],
    ['another issuer (step 3)', () => sign(claims({ iss: 'https://evil.example' }))],
    ['another audience (step 3)', () => sign(claims({ aud: 'another-client' }))],
    ['expired (step 3)', () => sign(claims({ iat: now() - 600, exp: now() - 300 }))],
    ['without exp (§2.4)', () => sign(claims(), { drop: ['exp'] })],
    ['without iat (step 3)', () => sign(claims(), { drop: ['iat'] })],
    ['without jti (§2.4)', () => sign(claims(), { drop: ['jti'] })],
    ['typed as an ID token, not logout+jwt (§2.4)', () => sign(claims(), { typ: 'JWT' })],
    ['neither sub nor sid (step 4)', () => sign(claims(), { drop: ['sub', 'sid'] })],
    ['no events claim (step 5)', () => sign(claims(), { drop: ['events'] })],
    ['events without the back-channel logout member (step 5)', () => sign(claims({ events: { 'http://schemas.openid.net/event/other': {} } }))],
    ['the member not an object (step 5)', () => sign(claims({ events: { [BACKCHANNEL_LOGOUT_EVENT]: true } }))],
    ['a nonce (step 6)', () => sign(claims({ nonce: 'n-1' }))],
    ['alg none', async () => `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'logout+jwt' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`],
    ['an encrypted (five-part) token (step 1)', async () => 'a.b.c.d.e'],
  ])('answers a token %s with 400 invalid_request', async (_what, make) => {
    expect(await postToken(await make())).toMatchObject({ status: 400, cacheControl: 'no-store', body: { error: 'invalid_request' } });
  });

  it('answers a request without logout_token, or not form-encoded, with 400 (§2.5)', async () => {
    expect((await post('')).status).toBe(400);
    expect((await post(JSON.stringify({ logout_token: await sign(claims()) }), 'application/json')).status).toBe(400);
  });
});
