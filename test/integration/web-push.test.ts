/**
 * Web Push as the server really sends it, to a local stand-in for a push service that decrypts the
 * message as a browser would (RFC 8291) and checks the VAPID signature (RFC 8292).
 */
import { createECDH, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import ece from 'http_ece';
import { importJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { vapidKeys } from '../../src/app/methods/push/shared.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { TestBrowser } from '../helpers/http.js';
import { makeLocalhostCertificate } from '../helpers/tls.js';

const PASSWORD = 'lantern-harbour-correct';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

describe('Web Push to a local push service', () => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let receiver: Server;
  let origin = '';
  const received: Received[] = [];
  let answer = 201;
  // The browser's side of the subscription: its ECDH key and auth secret.
  const ua = createECDH('prime256v1');
  ua.generateKeys();
  const auth = randomBytes(16);

  const waitForMessage = async (count: number) => {
    for (let i = 0; i < 100 && received.length < count; i += 1) await new Promise((r) => setTimeout(r, 50));
    expect(received.length).toBeGreaterThanOrEqual(count);
    return received[count - 1]!;
  };

  beforeAll(async () => {
    // Push services speak TLS, and so does the web-push library; this stand-in uses a throwaway
    // certificate, which this test process alone is told to accept.
    const certificate = makeLocalhostCertificate();
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    receiver = createServer({ cert: certificate.cert, key: certificate.key }, (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        received.push({ path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) });
        response.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    const address = receiver.address();
    origin = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    ctx = await createTestContext('sqlite', { VAPID_SUBJECT: 'mailto:security@example.org' });
    await addOrganisation(ctx, 'Test Trust', { kind: 'system' });
    await addUser(ctx, { email: 'wendy@example.org', displayName: 'Wendy', organisation: 'Test Trust', roles: [], password: PASSWORD }, { kind: 'system' });
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  it('sends only the challenge id, encrypted for the browser and signed with the server’s VAPID key', async () => {
    const browser = new TestBrowser(app);
    await browser.signIn('wendy@example.org', PASSWORD);
    const started = await browser.get('/security-info/add/code-app');
    const key = /id="totp-key">([A-Z2-7 ]+)</.exec((await browser.get(started.headers.location!)).body)![1]!.replace(/ /g, '');
    await browser.post(started.headers.location!, { code: generateTotp(key, new Date()) });
    await browser.get('/security-info/add');
    const page = await browser.post('/security-info/add', { method: 'push' });
    const url = /href="(http:\/\/localhost:8080\/authenticator\/#pair=[A-Za-z0-9_-]+)"/.exec(page.body)![1]!;

    const subscription = { endpoint: `${origin}/push/subscription-1`, keys: { p256dh: ua.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } };
    const refused = await (await TestDevice.create(app)).pair(url, 'Phone', { pushSubscription: { ...subscription, endpoint: 'https://metadata.internal/push' } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ error: 'push-subscription-invalid' });

    const device = await TestDevice.create(app);
    const paired = await device.pair(url, 'Phone', { pushSubscription: subscription });
    expect(paired.statusCode).toBe(201);
    const { testChallengeId } = paired.json() as { testChallengeId: string };

    const message = await waitForMessage(1);
    expect(message.path).toBe('/push/subscription-1');
    expect(message.headers['content-encoding']).toBe('aes128gcm');
    expect(message.headers.ttl).toBe('60');
    expect(message.headers.urgency).toBe('high');
    const plaintext = ece.decrypt(message.body, { version: 'aes128gcm', privateKey: ua, authSecret: auth });
    expect(JSON.parse(plaintext.toString())).toEqual({ challengeId: testChallengeId });
    expect(message.body.toString()).not.toContain('wendy');

    // RFC 8292: Authorization: vapid t=<JWT>, k=<public key>.
    const match = /^vapid t=([^,]+), k=([A-Za-z0-9_-]+)$/.exec(String(message.headers.authorization));
    expect(match).not.toBeNull();
    expect(match![2]).toBe(vapidKeys(ctx).publicKey);
    const point = Buffer.from(match![2]!, 'base64url');
    const publicKey = await importJWK({ kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, 'ES256');
    const { payload } = await jwtVerify(match![1]!, publicKey);
    expect(payload.aud).toBe(origin);
    expect(payload.sub).toBe('mailto:security@example.org');
    expect(payload.exp! - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(24 * 3600);

    // A push service that says the subscription is gone (410): the server forgets it.
    answer = 410;
    const [test] = await device.pending();
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec((await browser.get(/data-next="([^"]+)"/.exec(page.body)![1]!)).body)![1]!;
    await device.decide(test!.id, 'approve', number);
    const user = await ctx.store.users.findByEmail('wendy@example.org');
    await ctx.store.users.setDefaultMethod(user!.id, device.deviceId, new Date());
    const signIn = new TestBrowser(app);
    await signIn.signIn('wendy@example.org', PASSWORD);
    await waitForMessage(2);
    for (let i = 0; i < 50 && (await ctx.store.push.findDevice(device.deviceId))!.push_subscription_sealed !== null; i += 1) await new Promise((r) => setTimeout(r, 50));
    expect((await ctx.store.push.findDevice(device.deviceId))!.push_subscription_sealed).toBeNull();
  });
});
