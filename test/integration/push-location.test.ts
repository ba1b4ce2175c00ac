/**
 * The context shown with a push request: the client's address as the trusted proxy reports it, and a
 * coarse location from the proxy's header (LOCATION_HEADER) — never from a client talking directly.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { TestBrowser } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';

describe('push request context behind a proxy', () => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let device: TestDevice;

  beforeAll(async () => {
    ctx = await createTestContext('sqlite', { TRUST_PROXY: '10.0.0.1', LOCATION_HEADER: 'X-Client-Location', PUSH_MIN_INTERVAL: '1' }, { controlClock: true });
    await addOrganisation(ctx, 'Test Trust', { kind: 'system' });
    const { user } = await addUser(ctx, { email: 'lou@example.org', displayName: 'Lou', organisation: 'Test Trust', roles: [], password: PASSWORD }, { kind: 'system' });
    app = await buildApp(ctx);
    device = await TestDevice.create(app);
    device.clock = () => ctx.clock().getTime();
    device.deviceId = randomUUID();
    const now = new Date();
    await ctx.store.methods.insertPending({ id: device.deviceId, userId: user.id, kind: 'push', label: 'Phone', phoneE164: null, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 600_000) });
    await ctx.store.push.insertDevice({ id: device.deviceId, userId: user.id, publicJwk: JSON.stringify(device.publicJwk), subscriptionSealed: null, now });
    await ctx.store.methods.activate(user.id, device.deviceId, now, null);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  async function signInVia(remoteAddress: string, headers: Record<string, string>) {
    const browser = new TestBrowser(app, remoteAddress);
    await browser.get('/sign-in', headers);
    await browser.post('/sign-in', { email: 'lou@example.org' }, headers);
    await browser.get('/sign-in/password', headers);
    const response = await browser.post('/sign-in/password', { password: PASSWORD }, headers);
    const [challenge] = await device.pending();
    if (!challenge) throw new Error(`no push request: ${response.statusCode} ${/nhsuk-error-summary[\s\S]*?<\/ul>/.exec(response.body)?.[0] ?? response.headers.location}`);
    await device.decide(challenge!.id, 'deny');
    return challenge!;
  }

  it('shows the forwarded address and the proxy’s location', async () => {
    const challenge = await signInVia('10.0.0.1', { 'x-forwarded-for': '198.51.100.77', 'x-client-location': 'Leeds, United Kingdom' });
    expect(challenge).toMatchObject({ ip: '198.51.100.77', location: 'Leeds, United Kingdom' });
  });

  it('ignores a location header sent by a client directly', async () => {
    ctx.advance(2);
    const challenge = await signInVia('203.0.113.9', { 'x-client-location': 'Somewhere Else' });
    expect(challenge).toMatchObject({ ip: '203.0.113.9', location: null });
  });
});
