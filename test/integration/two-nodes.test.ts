/**
 * Several nodes: two `portcullis serve` processes on one PostgreSQL and one Redis. A sign-in starts on
 * node A and waits on its event stream; the phone answers through node B; the decision crosses the Bus
 * (Redis pub/sub) and the sign-in on node A completes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
import { BIN } from '../helpers/cli.js';
import { createTestDatabase, TEST_SECRET, type TestDatabase } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';

const PASSWORD = 'lantern-harbour-correct';

/** A cookie-keeping client over fetch, posting forms as a browser on node A's origin would. */
class HttpBrowser {
  readonly cookies = new Map<string, string>();
  csrf = '';
  constructor(readonly base: string) {}
  async send(method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<{ status: number; location: string | null; body: string }> {
    const headers: Record<string, string> = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    let body: string | undefined;
    if (form) {
      body = new URLSearchParams({ _csrf: this.csrf, ...form }).toString();
      Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', origin: this.base, 'sec-fetch-site': 'same-origin' });
    }
    const response = await fetch(new URL(path, this.base), { method, headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const text = await response.text();
    this.csrf = /name="_csrf" value="([^"]+)"/.exec(text)?.[1] ?? this.csrf;
    return { status: response.status, location: response.headers.get('location'), body: text };
  }
  /** Opens an event stream and resolves with the first event of `name` (or null after `ms`). */
  async firstEvent(path: string, name: string, ms: number, opened: () => void): Promise<string | null> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), ms);
    try {
      const response = await fetch(new URL(path, this.base), {
        headers: { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '), accept: 'text/event-stream' },
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return null;
        buffer += decoder.decode(value, { stream: true });
        if (first) {
          first = false;
          opened();
        }
        const match = new RegExp(`event: ${name}\\ndata: ([^\\n]*)\\n\\n`).exec(buffer);
        if (match) return match[1]!;
      }
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }
}

async function waitUntilUp(url: string): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

describe('two nodes, one PostgreSQL, one Redis', () => {
  let database: TestDatabase;
  let ctx: AppContext;
  const nodes: ChildProcess[] = [];
  let nodeA = '';
  let nodeB = '';
  const device = { client: null as TestDevice | null, id: '' };

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    const [portA, portB] = [await freePort(), await freePort()];
    nodeA = `http://localhost:${portA}`;
    nodeB = `http://localhost:${portB}`;
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: 'redis://127.0.0.1:6379/0',
      PORTCULLIS_SECRET: TEST_SECRET,
      // Both nodes serve one site behind a load balancer: one public address.
      PUBLIC_URL: nodeA,
      LOG_LEVEL: 'warn',
    };
    const config = loadConfig({ env: { ...env, PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-nodes-')) } });
    ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    await addOrganisation(ctx, 'Test Trust', { kind: 'system' });
    const { user } = await addUser(ctx, { email: 'nina@example.org', displayName: 'Nina', organisation: 'Test Trust', roles: [], password: PASSWORD }, { kind: 'system' });
    // A paired phone (what pairing leaves behind), made directly in the shared database.
    device.client = await TestDevice.create();
    device.id = randomUUID();
    device.client.deviceId = device.id;
    const now = new Date();
    await ctx.store.methods.insertPending({ id: device.id, userId: user.id, kind: 'push', label: 'Nina’s phone', phoneE164: null, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 600_000) });
    await ctx.store.push.insertDevice({ id: device.id, userId: user.id, publicJwk: JSON.stringify(device.client.publicJwk), subscriptionSealed: null, now });
    await ctx.store.methods.activate(user.id, device.id, now, null);

    for (const [port, dir] of [
      [portA, 'a'],
      [portB, 'b'],
    ] as const) {
      const child = spawn(process.execPath, [BIN, 'serve'], {
        // Two nodes on one machine cannot share the default metrics port; these need none.
        env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1', METRICS_PORT: '0', PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), `pc-node-${dir}-`)) },
        stdio: 'ignore',
      });
      nodes.push(child);
    }
    await Promise.all([waitUntilUp(`${nodeA}/readyz`), waitUntilUp(`${nodeB}/readyz`)]);
  });

  afterAll(async () => {
    for (const node of nodes) node.kill('SIGTERM');
    await Promise.all(nodes.map((node) => new Promise((resolve) => (node.exitCode !== null ? resolve(null) : node.once('exit', resolve)))));
    await ctx?.close();
    await database?.drop();
  });

  it('completes a sign-in on node A the moment the phone approves through node B', async () => {
    const browser = new HttpBrowser(nodeA);
    await browser.send('GET', '/sign-in');
    await browser.send('POST', '/sign-in', { email: 'nina@example.org' });
    const afterPassword = await browser.send('POST', '/sign-in/password', { password: PASSWORD });
    expect(afterPassword.location).toBe('/sign-in/verify');
    const page = await browser.send('GET', '/sign-in/verify');
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(page.body)![1]!;

    // The phone talks to node B only.
    const sign = (method: string, p: string, fields: Record<string, unknown> = {}) => device.client!.sign(method, p, fields);
    const list = await fetch(`${nodeB}/device/v1/challenges`, { headers: { authorization: `PortcullisDevice ${await sign('GET', '/device/v1/challenges')}` } });
    const { challenges } = (await list.json()) as { challenges: Array<{ id: string }> };
    expect(challenges).toHaveLength(1);

    // Node A's wait page is listening when the decision is made on node B.
    const event = browser.firstEvent('/sign-in/push-events', 'decision', 10_000, () => {
      void (async () => {
        const decisionPath = `/device/v1/challenges/${challenges[0]!.id}/decision`;
        const answer = await fetch(`${nodeB}${decisionPath}`, {
          method: 'POST',
          headers: { authorization: `PortcullisDevice ${await sign('POST', decisionPath, { decision: 'approve', number })}` },
        });
        expect(answer.status).toBe(200);
      })();
    });
    // Node A checked the database when the stream opened (still pending), so this event can only have
    // come from node B through Redis.
    expect(JSON.parse((await event)!)).toEqual({ status: 'approved' });

    const done = await browser.send('POST', '/sign-in/verify', {});
    expect(done.location).toBe('/account');
    expect((await browser.send('GET', '/account')).body).toContain('My account');
  });
});
