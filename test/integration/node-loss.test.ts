/**
 * Issue #17 point 2, node loss: two `portcullis serve` processes on one PostgreSQL database and one
 * Redis (a private redis-server this test owns), behind a round-robin load balancer (a test helper that
 * skips a node whose connection is refused), with PostgreSQL reached through a TCP proxy the test can
 * stop. Nothing here touches the shared PostgreSQL cluster or the shared Redis.
 *
 * - A node is SIGKILLed after the password step of a sign-in with a text-message code, and while a
 *   sign-in with push waits on its event stream: both journeys finish through the load balancer on the
 *   other node, and the session works there.
 * - Redis stopped: the password step answers 503 "Sign-in is not working at the moment" (never a 500,
 *   never a sign-in without its throttle check) and /readyz says not ready; when Redis is back on the
 *   same port, sign-in works again on both nodes without a restart.
 * - PostgreSQL cut off for a few seconds under a stream of requests: requests then get the same 503
 *   (no 500), /readyz is 503 during and 200 after, and both nodes recover by themselves.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext, type AppContext } from '../../src/app/context.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { loadConfig } from '../../src/config/load.js';
import { freePort } from '../helpers/browser.js';
import { createTestDatabase, TEST_SECRET, type TestDatabase } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { FetchBrowser } from '../helpers/fetch-browser.js';
import { startRoundRobinProxy, type RoundRobinProxy } from '../helpers/round-robin-proxy.js';
import { startPrivateRedis, startServer, waitForOk, type PrivateRedis, type ServerProcess } from '../helpers/server-process.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const UNAVAILABLE = 'Sign-in is not working at the moment';

describe('losing a node, Redis or PostgreSQL (issue #17)', () => {
  let database: TestDatabase;
  let ctx: AppContext;
  let redis: PrivateRedis;
  let pgProxy: TcpProxy;
  let balancer: RoundRobinProxy;
  const ports: number[] = [];
  const nodes: Array<ServerProcess | null> = [null, null];
  let env: Record<string, string>;
  const run = randomUUID().slice(0, 8);
  const email = (name: string) => `${name}-${run}@example.org`;
  const phone = `+4474009${String(Math.floor(Math.random() * 100000)).padStart(5, '0')}`;
  const device = { client: null as TestDevice | null };

  const startNode = async (index: number) => {
    nodes[index] = await startServer(env, { port: ports[index]! });
  };

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    const direct = new URL(database.url);
    pgProxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    const proxied = new URL(database.url);
    proxied.port = String(pgProxy.port);
    redis = await startPrivateRedis();
    ports.push(await freePort(), await freePort());
    balancer = await startRoundRobinProxy(ports.map((port) => ({ host: '127.0.0.1', port })));
    env = {
      DATABASE_URL: proxied.toString(),
      REDIS_URL: redis.url,
      PORTCULLIS_SECRET: TEST_SECRET,
      // Both nodes serve one site behind the load balancer: its address is the public one.
      PUBLIC_URL: balancer.url,
      TRUST_PROXY: '127.0.0.1',
    };
    const config = loadConfig({ env: { ...env, DATABASE_URL: database.url, REDIS_URL: '', PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-loss-')), LOG_LEVEL: 'silent' } });
    ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    await addOrganisation(ctx, 'Test Trust', actor);
    const now = new Date();
    const [nina, sam] = await Promise.all([
      addUser(ctx, { email: email('nina'), displayName: 'Nina', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor),
      addUser(ctx, { email: email('sam'), displayName: 'Sam', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor),
      addUser(ctx, { email: email('pat'), displayName: 'Pat', organisation: 'Test Trust', roles: [], password: PASSWORD }, actor),
    ]);
    // Nina has a paired phone (push), Sam a mobile number for codes by text: what set-up leaves behind.
    device.client = await TestDevice.create();
    device.client.deviceId = randomUUID();
    await ctx.store.methods.insertPending({ id: device.client.deviceId, userId: nina.user.id, kind: 'push', label: 'Nina’s phone', phoneE164: null, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 600_000) });
    await ctx.store.push.insertDevice({ id: device.client.deviceId, userId: nina.user.id, publicJwk: JSON.stringify(device.client.publicJwk), subscriptionSealed: null, now });
    await ctx.store.methods.activate(nina.user.id, device.client.deviceId, now, null);
    const smsId = randomUUID();
    await ctx.store.methods.insertPending({ id: smsId, userId: sam.user.id, kind: 'sms', label: '', phoneE164: phone, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 600_000) });
    await ctx.store.methods.activate(sam.user.id, smsId, now, null);
    await Promise.all([startNode(0), startNode(1)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node?.kill()));
    await balancer?.close();
    await redis?.stop();
    await ctx?.close();
    await pgProxy?.close();
    await database?.drop();
  });

  /** Email and password through the load balancer; the answer to the password. */
  async function passwordStep(browser: FetchBrowser, address: string) {
    await browser.send('GET', '/sign-in');
    await browser.send('POST', '/sign-in', { email: address });
    await browser.send('GET', '/sign-in/password');
    return browser.send('POST', '/sign-in/password', { password: PASSWORD });
  }

  const lastNode = () => balancer.answeredBy[balancer.answeredBy.length - 1]!;
  const noUnhandledErrors = () => {
    for (const node of nodes) expect(node?.output() ?? '').not.toContain('unhandled error');
  };

  it('finishes a sign-in with a text-message code on the other node when the first dies after the password', async () => {
    const browser = new FetchBrowser(balancer.url);
    const afterPassword = await passwordStep(browser, email('sam'));
    expect(afterPassword.location).toBe('/sign-in/verify');
    const victim = lastNode();
    await nodes[victim]!.kill();

    const page = await browser.send('GET', '/sign-in/verify');
    expect(page.status).toBe(200);
    let code: string | undefined;
    await expect.poll(async () => (code = (await ctx.delivery.listOutbox({ to: phone, limit: 1 }))[0]?.code)).toMatch(/^\d{6}$/);
    const done = await browser.send('POST', '/sign-in/verify', { code: code! });
    expect(done.location).toBe('/account');
    expect(balancer.answeredBy.at(-1)).toBe(1 - victim);
    const account = await browser.send('GET', '/account');
    expect(account.status).toBe(200);
    expect(account.body).toContain('My account');
    await startNode(victim);
  });

  it('finishes a sign-in with push on the other node when the node holding the waiting page dies', async () => {
    const browser = new FetchBrowser(balancer.url);
    const afterPassword = await passwordStep(browser, email('nina'));
    expect(afterPassword.location).toBe('/sign-in/verify');
    const page = await browser.send('GET', '/sign-in/verify');
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(page.body)![1]!;

    // The waiting page's event stream is open on one node; that node dies.
    const controller = new AbortController();
    const stream = await fetch(`${balancer.url}/sign-in/push-events`, {
      headers: { cookie: [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; '), accept: 'text/event-stream' },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    const victim = lastNode();
    const streamEnded = stream.body!.getReader().read().then(
      () => 'ended',
      () => 'ended',
    );
    await nodes[victim]!.kill();
    expect(await streamEnded).toBe('ended');

    // The phone answers through the load balancer (the survivor), and the page, continuing, signs in there.
    const sign = (method: string, p: string, fields: Record<string, unknown> = {}) => device.client!.sign(method, p, fields);
    const list = await fetch(`${balancer.url}/device/v1/challenges`, { headers: { authorization: `PortcullisDevice ${await sign('GET', '/device/v1/challenges')}` } });
    const { challenges } = (await list.json()) as { challenges: Array<{ id: string }> };
    expect(challenges).toHaveLength(1);
    const decisionPath = `/device/v1/challenges/${challenges[0]!.id}/decision`;
    const decided = await fetch(`${balancer.url}${decisionPath}`, {
      method: 'POST',
      headers: { authorization: `PortcullisDevice ${await sign('POST', decisionPath, { decision: 'approve', number })}` },
    });
    expect(decided.status).toBe(200);
    const done = await browser.send('POST', '/sign-in/verify', {});
    expect(done.location).toBe('/account');
    expect((await browser.send('GET', '/account')).body).toContain('My account');
    controller.abort();
    await startNode(victim);
    noUnhandledErrors();
  });

  it('refuses sign-in with a clear 503 while Redis is down, never skipping its throttle, and recovers without a restart', async () => {
    await redis.stop();
    const answers = [];
    for (let i = 0; i < 4; i += 1) {
      const browser = new FetchBrowser(balancer.url);
      const started = Date.now();
      const answer = await passwordStep(browser, email('pat'));
      answers.push({ status: answer.status, location: answer.location, ms: Date.now() - started });
      expect(answer.status, answer.body.slice(0, 300)).toBe(503);
      expect(answer.body).toContain(UNAVAILABLE);
      expect(answer.headers.get('retry-after')).toBe('30');
      // Not signed in: no session, no way past the password.
      expect(answer.location).toBeNull();
      expect((await browser.send('GET', '/account')).status).not.toBe(200);
    }
    for (const node of nodes) {
      const ready = await fetch(`${node!.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not ready', database: true, redis: false });
    }
    // Every refusal came quickly: the page says so rather than hanging.
    for (const answer of answers) expect(answer.ms).toBeLessThan(10_000);
    console.info(`Redis down: sign-ins refused in ${answers.map((a) => `${a.ms} ms`).join(', ')}`);

    await redis.start();
    await Promise.all(nodes.map((node) => waitForOk(`${node!.url}/readyz`, 15_000)));
    for (let i = 0; i < 2; i += 1) {
      // Round robin: one sign-in's password lands on each node in turn.
      const browser = new FetchBrowser(balancer.url);
      const afterPassword = await passwordStep(browser, email('pat'));
      expect(afterPassword.status, afterPassword.body.slice(0, 300)).toBe(303);
      expect(afterPassword.location).toMatch(/^\/security-info\/get-started/);
    }
    expect(new Set(balancer.answeredBy.slice(-8))).toEqual(new Set([0, 1]));
    noUnhandledErrors();
  });

  it('answers 503 while PostgreSQL is cut off, says not ready, and recovers by itself when it is back', async () => {
    const results: Array<{ status: number; body: string; phase: 'before' | 'during' | 'after' }> = [];
    let phase: 'before' | 'during' | 'after' = 'before';
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const browser = new FetchBrowser(balancer.url);
        const at = phase;
        try {
          const answer = await passwordStep(browser, email('pat'));
          results.push({ status: answer.status, body: answer.body, phase: at });
        } catch {
          results.push({ status: 0, body: '', phase: at });
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 800));
    phase = 'during';
    await pgProxy.stop();
    await new Promise((r) => setTimeout(r, 1000));
    for (const node of nodes) {
      const ready = await fetch(`${node!.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not ready', database: false });
    }
    await new Promise((r) => setTimeout(r, 2000));
    await pgProxy.start();
    phase = 'after';
    await Promise.all(nodes.map((node) => waitForOk(`${node!.url}/readyz`, 15_000)));
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await load;

    const during = results.filter((r) => r.phase === 'during');
    expect(during.length).toBeGreaterThan(0);
    for (const result of during) {
      expect([303, 503]).toContain(result.status); // a request that got its connection before the cut may finish
      if (result.status === 503) expect(result.body).toContain(UNAVAILABLE);
    }
    expect(during.some((r) => r.status === 503)).toBe(true);
    expect(results.every((r) => r.status !== 500 && r.status !== 0)).toBe(true);
    // Recovered by itself, on both nodes: the last sign-ins all went through.
    const after = results.filter((r) => r.phase === 'after').slice(-4);
    expect(after.length).toBeGreaterThan(1);
    for (const result of after) expect(result.status).toBe(303);
    noUnhandledErrors();
  });
});
