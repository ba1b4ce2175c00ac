/**
 * What the Security info page learns about a pairing (`pairingStatus`), on SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { pairingStatus, startPairing } from '../../src/app/methods/push/pairing.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';

describe.each(dialects)('pairing status on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  // Regression (found by the authenticator web app's end-to-end pairing journey, under load): between
  // the test request being marked approved and the method being activated, a Security info page that
  // looked said "The set-up did not finish" and stopped listening, though the phone had approved.
  it('still says "paired" while an approved test request is being recorded, then "approved"', async () => {
    await addOrganisation(ctx, 'Test Trust', { kind: 'system' });
    await addUser(ctx, { email: 'lee@example.org', displayName: 'Lee', organisation: 'Test Trust', roles: [], password: 'lantern-harbour-correct' }, { kind: 'system' });
    const user = (await ctx.store.users.findByEmail('lee@example.org'))!;
    const pairing = await startPairing(ctx, user);
    const device = await TestDevice.create(app);
    const paired = await device.pair(pairing.url, 'Work phone');
    expect(paired.statusCode).toBe(201);
    const testChallengeId = (paired.json() as { testChallengeId: string }).testChallengeId;

    await ctx.store.push.decide(testChallengeId, 'approved', ctx.clock());
    expect(await pairingStatus(ctx, user, pairing.enrolmentId)).toMatchObject({ state: 'paired', methodId: device.deviceId });
    await ctx.store.methods.activate(user.id, device.deviceId, ctx.clock(), null);
    expect(await pairingStatus(ctx, user, pairing.enrolmentId)).toMatchObject({ state: 'approved', methodId: device.deviceId });
  });
});
