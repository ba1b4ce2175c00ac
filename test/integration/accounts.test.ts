/**
 * Activation links, password rehashing, operations endpoints, logs without secrets, and throttling
 * state in Redis — through buildApp() and inject(), on SQLite and PostgreSQL.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { createPasswordHasher, readArgon2Parameters } from '../../src/crypto/password-hasher.js';
import { createLogger } from '../../src/app/context.js';
import { buildApp } from '../../src/server/app.js';
import { buildMetricsApp } from '../../src/server/ops/metrics-server.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';

const actor = { kind: 'system' } as const;

class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(chunk.toString());
    done();
  }
  get text(): string {
    return this.lines.join('');
  }
}

describe.each(dialects)('accounts and operations on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const logs = new LogCapture();

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { LOG_LEVEL: 'info' }, { logger: createLogger({ logLevel: 'info' }, logs) });
    await addOrganisation(ctx, 'Test Trust', actor);
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('lets a new user set a first password from a one-time activation link, then sign in', async () => {
    const { activationUrl } = await addUser(ctx, { email: 'new@example.org', displayName: 'New Starter', organisation: 'Test Trust', roles: [] }, actor);
    expect(activationUrl).toMatch(/^http:\/\/localhost:8080\/activate\/[A-Za-z0-9_-]{43}$/);
    const path = new URL(activationUrl!).pathname;
    const token = path.split('/').pop()!;
    const browser = new TestBrowser(app);

    // An account with no password cannot sign in, and looks like any wrong password.
    expect((await new TestBrowser(app).signIn('new@example.org', 'anything-at-all')).statusCode).toBe(401);

    const page = await browser.get(path);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Create your password');
    expect(page.body).toContain('new@example.org');

    const common = await browser.post(path, { password: 'password123', confirm: 'password123' });
    expect(common.statusCode).toBe(400);
    expect(common.body).toContain('This password is too common and easy to guess');
    const short = await browser.post(path, { password: 'short', confirm: 'short' });
    expect(short.body).toContain('Your password must be 8 characters or more');
    const mismatch = await browser.post(path, { password: 'harbour-lantern-new', confirm: 'harbour-lantern-nwe' });
    expect(mismatch.body).toContain('The passwords do not match');

    const saved = await browser.post(path, { password: 'harbour-lantern-new', confirm: 'harbour-lantern-new' });
    expect(saved.statusCode).toBe(303);
    expect(saved.headers.location).toBe('/sign-in?activated=1');
    expect((await browser.get('/sign-in?activated=1')).body).toContain('Your password has been saved');

    // The link worked once.
    expect((await new TestBrowser(app).get(path)).statusCode).toBe(410);
    expect((await browser.post(path, { password: 'another-password-1', confirm: 'another-password-1' })).statusCode).toBe(410);
    expect((await new TestBrowser(app).signIn('new@example.org', 'harbour-lantern-new')).statusCode).toBe(303);

    const user = await ctx.store.users.findByEmail('new@example.org');
    const events = await ctx.store.audit.list({ subjectUserId: user!.id });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['user.created', 'user.activated']));
    // The token never reaches a log line.
    expect(logs.text).not.toContain(token);
    expect(logs.text).toContain('/activate/[redacted]');
  });

  it('refuses an expired activation link', async () => {
    const { activationUrl } = await addUser(ctx, { email: 'late@example.org', displayName: 'Late', organisation: 'Test Trust', roles: [] }, actor);
    await ctx.store.database.db.updateTable('user_tokens').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).execute();
    const response = await new TestBrowser(app).get(new URL(activationUrl!).pathname);
    expect(response.statusCode).toBe(410);
    expect(response.body).toContain('This link has expired or has already been used');
  });

  it('upgrades a password hash made with older argon2id parameters at the next sign-in', async () => {
    const older = await createPasswordHasher({ memoryKib: 12_288, iterations: 3, parallelism: 1 });
    await addUser(ctx, { email: 'old@example.org', displayName: 'Old Hash', organisation: 'Test Trust', roles: [] }, actor);
    const user = await ctx.store.users.findByEmail('old@example.org');
    await ctx.store.users.setPasswordHash(user!.id, await older.hash('lantern-harbour-old'), new Date(), true);
    expect((await new TestBrowser(app).signIn('old@example.org', 'lantern-harbour-old')).statusCode).toBe(303);
    const after = await ctx.store.users.findByEmail('old@example.org');
    expect(readArgon2Parameters(after!.password_hash!)).toEqual({ memoryKib: 19_456, iterations: 2, parallelism: 1 });
    expect(await ctx.hasher.verify(after!.password_hash!, 'lantern-harbour-old')).toBe(true);
    expect(ctx.hasher.needsRehash(after!.password_hash!)).toBe(false);
  });

  it('never writes a password, cookie or session token to the logs', async () => {
    await addUser(ctx, { email: 'quiet@example.org', displayName: 'Quiet', organisation: 'Test Trust', roles: [], password: 'secret-lantern-words' }, actor);
    const browser = new TestBrowser(app);
    await browser.signIn('quiet@example.org', 'secret-lantern-words');
    await browser.signIn('quiet@example.org', 'another-secret-words');
    expect(logs.lines.length).toBeGreaterThan(5);
    expect(logs.text).not.toContain('secret-lantern-words');
    expect(logs.text).not.toContain('another-secret-words');
    for (const value of browser.cookies.values()) expect(logs.text).not.toContain(value);
  });

  it('logs a lockout, with the client address and no password', async () => {
    for (let i = 0; i < 10; i += 1) await new TestBrowser(app, '198.51.100.7').signIn('target@example.org', `guess-number-${i}`);
    const line = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'sign-in.locked-out');
    expect(line).toMatchObject({ level: 40, ip: '198.51.100.7', lockoutNumber: 1, seconds: 60 });
    expect(logs.text).not.toContain('guess-number-');
  });

  it('answers /healthz and /readyz, and /metrics only on the metrics listener', async () => {
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', database: true });

    await new TestBrowser(app).signIn('nobody-here@example.org', 'wrong-password-1');
    // Issue #12: not on the public app at all.
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    const metricsApp = await buildMetricsApp(ctx);
    const metrics = await metricsApp.inject({ method: 'GET', url: '/metrics' });
    await metricsApp.close();
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toMatch(/portcullis_sign_ins_total\{outcome="success",reason="success"\} [1-9]/);
    expect(metrics.body).toMatch(/portcullis_sign_ins_total\{outcome="failure",reason="credentials-incorrect"\} [1-9]/);
    expect(metrics.body).toMatch(/portcullis_http_request_duration_seconds_count\{method="POST",route="\/sign-in\/password",status_code="303"\} [1-9]/);
    expect(metrics.body).toMatch(/portcullis_password_verifications_total [1-9]/);
  });

  it('counts an unknown address, a wrong password and an account with no password yet alike in /metrics, and tells them apart in the audit log (issue #12)', async () => {
    await addUser(ctx, { email: 'known@example.org', displayName: 'Known', organisation: 'Test Trust', roles: [], password: 'lantern-harbour-correct' }, actor);
    await addUser(ctx, { email: 'unset@example.org', displayName: 'Unset', organisation: 'Test Trust', roles: [] }, actor);
    const metricsApp = await buildMetricsApp(ctx);
    const signInLines = async () =>
      (await metricsApp.inject({ method: 'GET', url: '/metrics' })).body.split('\n').filter((line) => line.startsWith('portcullis_sign_ins_total{'));
    const changeAfter = async (email: string) => {
      const before = await signInLines();
      const response = await new TestBrowser(app, '198.51.100.77').signIn(email, 'not-the-password-1');
      expect(response.statusCode).toBe(401);
      const after = await signInLines();
      return after.filter((line) => !before.includes(line)).map((line) => line.replace(/ \d+$/, ''));
    };
    const unknown = await changeAfter('stranger@example.org');
    const wrong = await changeAfter('known@example.org');
    const unset = await changeAfter('unset@example.org');
    await metricsApp.close();
    expect(unknown).toEqual(['portcullis_sign_ins_total{outcome="failure",reason="credentials-incorrect"}']);
    expect(wrong).toEqual(unknown);
    expect(unset).toEqual(unknown);

    const failures = (await ctx.store.audit.list({ type: 'sign-in.failed', limit: 500 })).map((e) => JSON.parse(e.details) as { email: string; reason: string });
    const reasonsFor = (email: string) => failures.filter((f) => f.email === email).map((f) => f.reason);
    expect(reasonsFor('stranger@example.org')).toEqual(['unknown-account']);
    expect(reasonsFor('known@example.org')).toEqual(['password-incorrect']);
    expect(reasonsFor('unset@example.org')).toEqual(['no-password-set']);
  });

  it('reports not ready when the database is unreachable', async () => {
    const other = await createTestContext(dialect);
    const otherApp = await buildApp(other);
    await other.store.database.close();
    const ready = await otherApp.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'not ready', database: false });
    await otherApp.close();
    await other.database.drop();
  });

  it('answers an unexpected error with a plain page and a 500, logging it without the request body', async () => {
    const broken = await buildApp(ctx);
    broken.get('/boom', async () => {
      throw new Error('kaboom');
    });
    const response = await broken.inject({ method: 'GET', url: '/boom' });
    expect(response.statusCode).toBe(500);
    expect(response.body).toContain('Sorry, there is a problem with the service');
    expect(response.body).not.toContain('kaboom');
    await broken.close();
  });
});

describe('behind https', () => {
  it('sends HSTS when PUBLIC_URL is https, and only then', async () => {
    const ctx = await createTestContext('sqlite', { PUBLIC_URL: 'https://id.example.org' });
    const app = await buildApp(ctx);
    try {
      const response = await app.inject({ method: 'GET', url: '/sign-in' });
      expect(response.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    } finally {
      await app.close();
      await ctx.destroy();
    }
  });
});

describe('throttling state in Redis', () => {
  let ctx: TestContext;
  let app: FastifyInstance;

  beforeAll(async () => {
    ctx = await createTestContext('postgres', { REDIS_URL: 'redis://127.0.0.1:6379/0', SIGN_IN_LOCKOUT_THRESHOLD: '3' });
    await addOrganisation(ctx, 'Test Trust', actor);
    await addUser(ctx, { email: 'redis@example.org', displayName: 'R', organisation: 'Test Trust', roles: [], password: 'lantern-harbour-correct' }, actor);
    app = await buildApp(ctx);
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('locks an address across nodes with the counters in Redis, not in the database', async () => {
    const email = `redis-${Date.now()}@example.org`;
    for (let i = 0; i < 3; i += 1) expect((await new TestBrowser(app).signIn(email, `wrong-${i}-pw`)).statusCode).toBe(401);
    const second = await buildApp(ctx);
    try {
      expect((await new TestBrowser(second).signIn(email, 'wrong-again-pw')).statusCode).toBe(429);
    } finally {
      await second.close();
    }
    const rows = await ctx.store.database.db.selectFrom('throttles').selectAll().execute();
    expect(rows).toEqual([]);
    expect(await ctx.redis!.keys('portcullis:throttle:sign-in:email:*')).not.toEqual([]);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.json()).toEqual({ status: 'ready', database: true, redis: true });
  });
});
