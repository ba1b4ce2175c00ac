/**
 * The throttle counters' stores, on each database and in Redis: a sign-in reads its address's and its
 * IP's counters in one round trip (getBoth), and each comes back as its own.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';

const stores = [...dialects.map((dialect) => ({ name: dialect, dialect, env: {} })), { name: 'redis', dialect: 'postgres' as const, env: { REDIS_URL: 'redis://127.0.0.1:6379/0' } }];

describe.each(stores)('throttle counters ($name)', ({ dialect, env }) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(dialect, env);
  });
  afterAll(async () => {
    await ctx?.destroy();
  });

  it('reads two counters at once, each as its own, in the order asked', async () => {
    const now = new Date();
    const later = new Date(now.getTime() + 60_000);
    const [a, b, none] = [`test:a:${randomUUID()}`, `test:b:${randomUUID()}`, `test:none:${randomUUID()}`];
    await ctx.throttles.increment(a, now, later);
    await ctx.throttles.increment(a, now, later);
    await ctx.throttles.increment(b, now, later);
    await ctx.throttles.lock(b, later);
    const [first, second] = await ctx.throttles.getBoth(a, b, now);
    expect(first).toEqual({ count: 2, lockedUntil: null });
    expect(second).toEqual({ count: 1, lockedUntil: later });
    expect(await ctx.throttles.getBoth(none, a, now)).toEqual([null, { count: 2, lockedUntil: null }]);
    expect(await ctx.throttles.getBoth(a, a, now)).toEqual([first, first]);
    await ctx.throttles.clear(a);
    expect(await ctx.throttles.getBoth(a, b, now)).toEqual([null, second]);
  });
});
