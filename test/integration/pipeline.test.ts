/**
 * Issue #18 point 2: the sign-in path's statements, and on PostgreSQL its round trips. Statements issued
 * together inside a pipelined scope travel together (src/store/pipeline.ts); the writes nobody reads back
 * are started alongside and waited for before the scope returns, so nothing is answered before it is
 * written (OWASP ASVS 5 V16: a crash loses nothing confirmed), and a write that fails fails the request.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { addressBudgetKey, beginPasswordAttempt, beginWith } from '../../src/app/sign-in-attempts.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { hashToken } from '../../src/crypto/tokens.js';
import { buildApp } from '../../src/server/app.js';
import { write } from '../../src/store/pipeline.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const keyFrom = (html: string) => /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(html)?.[1]?.replace(/ /g, '') ?? '';

describe.each(dialects)('the sign-in path asks little of the database, on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const codeAt = (key: string, offsetSteps = 0) => generateTotp(key, new Date(ctx.clock().getTime() + offsetSteps * 30_000));
  /** What `work` asked of the database: statements, writes and round trips. */
  const counted = async <T>(work: () => Promise<T>) => {
    const before = { ...ctx.store.database.counts };
    const result = await work();
    const after = ctx.store.database.counts;
    return { result, statements: after.statements - before.statements, writes: after.writes - before.writes, roundTrips: after.roundTrips - before.roundTrips };
  };

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { SIGN_IN_LOCKOUT_THRESHOLD: '100', SIGN_IN_IP_FAILURE_LIMIT: '3' }, { controlClock: true });
    await addOrganisation(ctx, 'Test Trust', actor);
    for (const email of ['pat@example.org', 'sam@example.org']) {
      await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
    }
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('signs in with a password in 9 statements, and on PostgreSQL in 2 round trips', async () => {
    const browser = new TestBrowser(app);
    await browser.get('/sign-in');
    await browser.post('/sign-in', { email: 'sam@example.org' });
    const step = await counted(() => browser.post('/sign-in/password', { password: PASSWORD }));
    expect(step.result.headers.location).toBe('/security-info/get-started?returnTo=%2Faccount');
    // The lease and the address's budget with the user, their methods and directory facts; then the
    // lease cleared, the budget given back, the audit event and the session.
    expect(step.statements).toBeLessThanOrEqual(9);
    expect(step.writes).toBeLessThanOrEqual(6);
    expect(step.roundTrips).toBe(dialect === 'postgres' ? 2 : 0);
  });

  it('signs in with a password and an authenticator app in 17 statements, and on PostgreSQL in 6 round trips', async () => {
    const enrol = new TestBrowser(app);
    await enrol.signIn('pat@example.org', PASSWORD);
    await enrol.get('/security-info/add');
    const chosen = await enrol.post('/security-info/add', { method: 'totp' });
    const key = keyFrom((await enrol.get(chosen.headers.location!)).body);
    expect((await enrol.post(chosen.headers.location!, { code: codeAt(key) })).headers.location).toBe('/security-info?done=added');

    const browser = new TestBrowser(app);
    await browser.get('/sign-in');
    await browser.post('/sign-in', { email: 'pat@example.org' });
    const password = await counted(() => browser.post('/sign-in/password', { password: PASSWORD }));
    expect(password.result.headers.location).toBe('/sign-in/verify');
    const code = await counted(() => browser.post('/sign-in/verify', { code: codeAt(key, 1) }));
    expect(code.result.statusCode).toBe(303);
    expect(code.result.headers.location).toBe('/account');
    expect(password.statements + code.statements).toBeLessThanOrEqual(17);
    // Password: [lease, budget, user, methods, facts], then [lease cleared, budget back, flow stored].
    // Code: the flow; [lease, user, method]; the step claimed; [lease cleared, audit, flow gone, session].
    expect({ password: password.roundTrips, code: code.roundTrips }).toEqual(dialect === 'postgres' ? { password: 2, code: 4 } : { password: 0, code: 0 });

    // The closing writes were all made before the answer: the session opens My account at once, and
    // the flow is gone, so the same cookie cannot finish the sign-in twice.
    expect((await browser.get('/account')).statusCode).toBe(200);
    const again = await browser.post('/sign-in/verify', { code: codeAt(key, 1) });
    expect(again.headers.location ?? '').not.toBe('/account');
  });

  it('ends an attempt begun beside reads that failed, so the address is not left leased', async () => {
    const input = { email: 'sam@example.org', ip: '192.0.2.44' };
    await expect(ctx.store.pipelined(() => beginWith(beginPasswordAttempt(ctx, input), Promise.reject(new Error('the read failed'))))).rejects.toThrow('the read failed');
    // Had the lease been kept, the next attempt would be refused as one already in progress.
    const next = await beginPasswordAttempt(ctx, input);
    expect(next.granted).toBe(true);
    if (next.granted) await next.attempt.end();
  });

  it("never lets an attempt refused as busy hold a unit of the client address's budget (issue #12 stays atomic)", async () => {
    const ip = '192.0.2.77';
    const held = await beginPasswordAttempt(ctx, { email: 'pat@example.org', ip });
    expect(held.granted).toBe(true);
    // Six more for the held address, each refused as busy, sent together with one for another address
    // from the same client address: the budget (3 here) has room for that one, and the busy ones must
    // not take it, even for a moment.
    const attempts = await Promise.all([
      ...Array.from({ length: 6 }, () => ctx.store.pipelined(() => beginPasswordAttempt(ctx, { email: 'pat@example.org', ip }))),
      ctx.store.pipelined(() => beginPasswordAttempt(ctx, { email: 'sam@example.org', ip })),
    ]);
    expect(attempts.map((a) => (a.granted ? 'granted' : a.throttle.reason))).toEqual([...Array(6).fill('attempt-in-progress'), 'granted']);
    const counter = await ctx.throttles.get(addressBudgetKey(ctx, ip, ctx.clock()), ctx.clock());
    expect(counter?.count).toBe(2);
    for (const attempt of [held, attempts[6]!]) if (attempt.granted) await attempt.attempt.end();
  });

  it('waits for the writes started in a scope before it returns, and fails when one of them fails', async () => {
    const db = ctx.store.database.db;
    const now = ctx.clock();
    const id = hashToken(`pipeline-test-${dialect}`);
    const state = { step: 'password', email: 'x@example.org', returnTo: '/account' } as const;
    // Written alongside and not awaited by the work: there when the scope returns.
    await ctx.store.pipelined(async () => {
      await ctx.store.signInFlows.insert(id, state, now, new Date(now.getTime() + 60_000));
      return 'done';
    });
    expect(await ctx.store.signInFlows.find(id, now)).toEqual(state);
    // The same row again: its primary key refuses it, and the scope throws rather than return the work's answer.
    await expect(
      ctx.store.pipelined(async () => {
        await ctx.store.signInFlows.insert(id, state, now, new Date(now.getTime() + 60_000));
        return 'answered';
      }),
    ).rejects.toThrow();
    // Outside a scope, `write` is simply a write.
    await write(db, async (on) => void (await on.deleteFrom('sign_in_flows').where('id', '=', id).execute()));
    expect(await ctx.store.signInFlows.find(id, now)).toBeUndefined();
  });

  // PostgreSQL only: SQLite has one connection, which a transaction holds until it ends.
  it.runIf(dialect === 'postgres')('gives a transaction begun inside a scope a connection of its own: a write started beside it is not in it', async () => {
    const now = ctx.clock();
    const inside = hashToken(`inside-${dialect}`);
    const beside = hashToken(`beside-${dialect}`);
    const state = { step: 'password', email: 'y@example.org', returnTo: '/account' } as const;
    const expires = new Date(now.getTime() + 60_000);
    await expect(
      ctx.store.pipelined(async () => {
        await ctx.store.transaction(async (repos) => {
          await repos.signInFlows.insert(inside, state, now, expires);
          // Started while the transaction is open, through the store rather than the transaction: it
          // must not land inside it (it would if the two shared the scope's connection).
          await ctx.store.signInFlows.insert(beside, state, now, expires);
          throw new Error('rolled back');
        });
      }),
    ).rejects.toThrow('rolled back');
    // The transaction's insert was rolled back; the one beside it, made outside the transaction, stands.
    expect(await ctx.store.signInFlows.find(inside, now)).toBeUndefined();
    expect(await ctx.store.signInFlows.find(beside, now)).toEqual(state);
  });

  it.runIf(dialect === 'postgres')('sends statements issued together on one connection in one round trip', async () => {
    const { result, statements, roundTrips } = await counted(() =>
      ctx.store.pipelined(() => Promise.all([ctx.store.users.findByEmail('pat@example.org'), ctx.store.users.findByEmail('sam@example.org'), ctx.store.policy.facts('nobody', ctx.clock())])),
    );
    expect(result[0]?.email).toBe('pat@example.org');
    expect(result[1]?.email).toBe('sam@example.org');
    expect(statements).toBe(3);
    expect(roundTrips).toBe(1);
    // The same reads outside a scope: each its own.
    const apart = await counted(() => Promise.all([ctx.store.users.findByEmail('pat@example.org'), ctx.store.users.findByEmail('sam@example.org')]));
    expect(apart.roundTrips).toBe(2);
  });
});
