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

describe.each(stores)('attempt leases and budgets ($name, issue #12)', ({ dialect, env }) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(dialect, env);
  });
  afterAll(async () => {
    await ctx?.destroy();
  });
  const at = (base: Date, seconds: number) => new Date(base.getTime() + seconds * 1000);

  it('grants one lease of many asked for at once, reads the counter under it, and lets a lapsed one be taken', async () => {
    const now = new Date();
    const key = `test:lease:${randomUUID()}`;
    await ctx.throttles.increment(key, now, at(now, 600));
    const asked = await Promise.all(Array.from({ length: 20 }, () => ctx.throttles.acquire(key, now, at(now, 30))));
    const granted = asked.filter((a) => a !== null);
    expect(granted).toHaveLength(1);
    expect(granted[0]!.counter).toEqual({ count: 1, lockedUntil: null });
    expect(await ctx.throttles.acquire(key, at(now, 29), at(now, 59))).toBeNull();
    // Its holder died: the lease lapses by itself, and the next attempt finds the count kept.
    const next = await ctx.throttles.acquire(key, at(now, 31), at(now, 61));
    expect(next?.counter).toEqual({ count: 1, lockedUntil: null });
    // The first holder's late release does not free the second holder's lease.
    await ctx.throttles.release(granted[0]!.lease);
    expect(await ctx.throttles.acquire(key, at(now, 32), at(now, 62))).toBeNull();
    await ctx.throttles.release(next!.lease);
    expect(await ctx.throttles.acquire(key, at(now, 33), at(now, 63))).not.toBeNull();
  });

  it('counts a failure and frees the lease, locking at the threshold before anyone else may start', async () => {
    const now = new Date();
    const key = `test:fail:${randomUUID()}`;
    const failure = { now, expiresAt: at(now, 600), threshold: 3, lockFor: (count: number) => at(now, 60 * count) };
    const counts: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const held = await ctx.throttles.acquire(key, now, at(now, 30));
      expect(held).not.toBeNull();
      counts.push(await ctx.throttles.fail(held!.lease, failure));
    }
    expect(counts).toEqual([1, 2, 3]);
    const locked = await ctx.throttles.acquire(key, now, at(now, 30));
    expect(locked?.counter).toEqual({ count: 3, lockedUntil: at(now, 180) });
    await ctx.throttles.succeed(locked!.lease);
    expect(await ctx.throttles.get(key, now)).toBeNull();
    // A lease on a counter that did not exist reads as no counter at all.
    const fresh = await ctx.throttles.acquire(`test:fresh:${randomUUID()}`, now, at(now, 30));
    expect(fresh?.counter).toBeNull();
  });

  it('never takes more of a budget than its limit when asked all at once, and takes back what is given back', async () => {
    const now = new Date();
    const key = `test:budget:${randomUUID()}`;
    const taken = await Promise.all(Array.from({ length: 25 }, () => ctx.throttles.take(key, 10, now, at(now, 60))));
    expect(taken.filter(Boolean)).toHaveLength(10);
    expect((await ctx.throttles.get(key, now))?.count).toBe(10);
    await ctx.throttles.giveBack(key, now);
    expect(await ctx.throttles.take(key, 10, now, at(now, 60))).toBe(true);
    expect(await ctx.throttles.take(key, 10, now, at(now, 60))).toBe(false);
  });
});
