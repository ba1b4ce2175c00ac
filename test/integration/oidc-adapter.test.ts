/**
 * The OpenID Connect provider's storage adapter (src/store/oidc-adapter.ts), method by method, on
 * SQLite, on PostgreSQL, and on PostgreSQL with Redis for the short-lived models (issue #13).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcAdapterFactory, deleteExpiredOidcArtefacts, REDIS_MODELS, type OidcAdapter } from '../../src/store/oidc-adapter.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';

class AlreadyConsumed extends Error {}

const stores = [
  ...dialects.map((dialect) => ({ name: dialect, dialect, env: {} })),
  { name: 'postgres and redis', dialect: 'postgres' as const, env: { REDIS_URL: 'redis://127.0.0.1:6379/0' } },
];

// One model of each kind the adapter treats differently: in the database always (Session, RefreshToken,
// Grant), and in Redis when it is configured (AuthorizationCode, AccessToken, Interaction, DeviceCode).
const MODELS = ['Session', 'RefreshToken', 'Grant', 'AuthorizationCode', 'AccessToken', 'Interaction', 'DeviceCode'];

describe.each(stores)('oidc adapter on $name', ({ dialect, env }) => {
  let ctx: TestContext;
  let adapter: (model: string) => OidcAdapter;
  const usesRedis = 'REDIS_URL' in env;

  beforeAll(async () => {
    ctx = await createTestContext(dialect, env, { controlClock: true });
    // Redis keeps data between runs: every run has its own prefix.
    adapter = createOidcAdapterFactory({
      db: ctx.store.database.db,
      redis: ctx.redis,
      clock: ctx.clock,
      alreadyConsumed: () => new AlreadyConsumed(),
      redisPrefix: `test:oidc:${randomUUID()}:`,
    });
  });
  afterAll(async () => ctx?.destroy());

  const inRedis = (model: string) => usesRedis && REDIS_MODELS.has(model);

  it.each(MODELS)('%s: upsert then find returns the payload; a second upsert replaces it; destroy removes it', async (model) => {
    const a = adapter(model);
    const id = randomUUID();
    expect(await a.find(id)).toBeUndefined();
    await a.upsert(id, { jti: id, kind: model, scope: 'openid' }, 300);
    expect(await a.find(id)).toEqual({ jti: id, kind: model, scope: 'openid' });
    await a.upsert(id, { jti: id, kind: model, scope: 'openid email' }, 300);
    expect(await a.find(id)).toEqual({ jti: id, kind: model, scope: 'openid email' });
    // The same id under another model is another artefact.
    expect(await adapter(model === 'Session' ? 'Grant' : 'Session').find(id)).toBeUndefined();
    await a.destroy(id);
    expect(await a.find(id)).toBeUndefined();
  });

  it.each(MODELS)('%s: is not found once expired', async (model) => {
    const a = adapter(model);
    const id = randomUUID();
    await a.upsert(id, { jti: id }, 60);
    if (inRedis(model)) {
      // Redis expires the key itself, at the lifetime given.
      const ttl = await ctx.redis!.pttl(`${(a as unknown as { prefix: string }).prefix}${model}:${id}`);
      expect(ttl).toBeGreaterThan(55_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
      return;
    }
    ctx.advance(61);
    expect(await a.find(id)).toBeUndefined();
    // …and the periodic housekeeping deletes the row.
    expect(await deleteExpiredOidcArtefacts(ctx.store.database.db, ctx.clock())).toBeGreaterThanOrEqual(1);
    const left = await ctx.store.database.db.selectFrom('oidc_artefacts').select('id').where('id', '=', id).execute();
    expect(left).toEqual([]);
  });

  it('keeps an artefact without a lifetime until it is destroyed', async () => {
    const a = adapter('Grant');
    const id = randomUUID();
    await a.upsert(id, { jti: id });
    ctx.advance(365 * 24 * 3600);
    expect(await a.find(id)).toEqual({ jti: id });
    expect(await deleteExpiredOidcArtefacts(ctx.store.database.db, ctx.clock())).toBeGreaterThanOrEqual(0);
    expect(await a.find(id)).toEqual({ jti: id });
  });

  it('findByUid finds a Session by its fixed uid, not by its jti, and only that model', async () => {
    const jti = randomUUID();
    const uid = randomUUID();
    await adapter('Session').upsert(jti, { jti, uid, kind: 'Session' }, 300);
    expect(await adapter('Session').findByUid(uid)).toMatchObject({ jti, uid });
    expect(await adapter('Session').findByUid(randomUUID())).toBeUndefined();
    expect(await adapter('Grant').findByUid(uid)).toBeUndefined();
  });

  it('findByUserCode finds a DeviceCode by the code the user typed', async () => {
    const id = randomUUID();
    const userCode = `BCDF-${randomUUID().slice(0, 4)}`;
    await adapter('DeviceCode').upsert(id, { jti: id, userCode }, 300);
    expect(await adapter('DeviceCode').findByUserCode(userCode)).toMatchObject({ jti: id, userCode });
    expect(await adapter('DeviceCode').findByUserCode('XXXX-XXXX')).toBeUndefined();
  });

  it.each(['AuthorizationCode', 'RefreshToken'])('%s: consume marks it consumed once; a second consume is refused', async (model) => {
    const a = adapter(model);
    const id = randomUUID();
    await a.upsert(id, { jti: id, grantId: randomUUID() }, 60);
    await a.consume(id);
    const found = await a.find(id);
    expect(found?.consumed).toBeTypeOf('number');
    expect(Math.abs(found!.consumed! - Math.floor(ctx.clock().getTime() / 1000))).toBeLessThanOrEqual(1);
    await expect(a.consume(id)).rejects.toBeInstanceOf(AlreadyConsumed);
    // Saving it again does not make it redeemable again.
    await a.upsert(id, { jti: id }, 60);
    expect((await a.find(id))?.consumed).toBe(found!.consumed);
  });

  it.each(['AuthorizationCode', 'RefreshToken'])('%s: of ten consumes racing, exactly one wins (RFC 6749 §4.1.2: a code is used once)', async (model) => {
    const a = adapter(model);
    const id = randomUUID();
    await a.upsert(id, { jti: id }, 60);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => a.consume(id)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyConsumed);
  });

  it('refuses to consume what does not exist (nothing is created)', async () => {
    const id = randomUUID();
    await expect(adapter('AuthorizationCode').consume(id)).rejects.toBeInstanceOf(AlreadyConsumed);
    expect(await adapter('AuthorizationCode').find(id)).toBeUndefined();
  });

  it('revokeByGrantId removes every artefact of the grant, in both stores, whichever model it is called on', async () => {
    const grantId = randomUUID();
    const otherGrant = randomUUID();
    const ids = { AuthorizationCode: randomUUID(), AccessToken: randomUUID(), RefreshToken: randomUUID(), DeviceCode: randomUUID() };
    for (const [model, id] of Object.entries(ids)) await adapter(model).upsert(id, { jti: id, grantId }, 600);
    const kept = randomUUID();
    await adapter('AccessToken').upsert(kept, { jti: kept, grantId: otherGrant }, 600);
    await adapter('Grant').upsert(grantId, { jti: grantId, kind: 'Grant' }, 600);

    await adapter('RefreshToken').revokeByGrantId(grantId);

    for (const [model, id] of Object.entries(ids)) expect(await adapter(model).find(id), model).toBeUndefined();
    expect(await adapter('AccessToken').find(kept)).toMatchObject({ grantId: otherGrant });
    // The Grant itself is oidc-provider's to destroy (it does when its revokeGrantPolicy says so).
    expect(await adapter('Grant').find(grantId)).toMatchObject({ kind: 'Grant' });
  });

  it('puts the short-lived models in Redis only when it is configured, and the long-lived ones in the database', async () => {
    for (const model of MODELS) {
      const id = randomUUID();
      await adapter(model).upsert(id, { jti: id }, 300);
      const rows = await ctx.store.database.db.selectFrom('oidc_artefacts').select('model').where('id', '=', id).execute();
      expect(rows.length, model).toBe(inRedis(model) ? 0 : 1);
    }
    expect(REDIS_MODELS.has('Session') || REDIS_MODELS.has('Grant') || REDIS_MODELS.has('RefreshToken') || REDIS_MODELS.has('Client')).toBe(false);
  });
});
