/**
 * What the benchmarks of whole Portcullis processes share (bench/push.ts, bench/cluster.ts): nodes
 * started as `node bin/portcullis.js serve`, the environment they get, users with a password and a
 * paired phone made directly in the database, and a browser that takes the sign-in steps over HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { FormBrowser, freePort, sleep } from './lib.js';
import { createAppContext, type AppContext } from '../src/app/context.js';
import { TOTP_SECRET_BYTES, totpSecretFromBytes } from '../src/core/methods/totp.js';
import { sealText } from '../src/crypto/seal.js';
import type { Repositories } from '../src/store/index.js';
import { addOrganisation, insertUser } from '../src/app/directory.js';
import { loadConfig } from '../src/config/load.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PASSWORD = 'lantern-harbour-correct';
export const ORGANISATION = 'Bench Trust';
/** The server's shortest gap between two pushes to one user, set below; a user is not reused sooner. */
export const PUSH_MIN_INTERVAL_MS = 1000;
/** The most pushes to one user in an hour, set below (the highest the server accepts). */
export const PUSH_PER_HOUR = 100;

/**
 * What every node gets, around `secret` (PORTCULLIS_SECRET, one for all the nodes of a site): limits
 * raised so a rotation of users never meets them, and long-lived challenges. Any REDIS_URL or
 * DATABASE_URL of the caller's environment is left out: each bench sets its own.
 */
export function fleetEnv(secret: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: 'warn',
    PORTCULLIS_SECRET: secret,
    PUSH_MIN_INTERVAL: `${PUSH_MIN_INTERVAL_MS / 1000}s`,
    PUSH_PER_HOUR: String(PUSH_PER_HOUR),
    PUSH_CHALLENGE_LIFETIME: '300s',
    SIGN_IN_IP_FAILURE_LIMIT: '1000000',
  };
  delete env.REDIS_URL;
  delete env.DATABASE_URL;
  return env;
}

/**
 * The load generator shares the machine's CPUs with the servers, so it is lean, as in bench/sign-in.ts:
 * node:http with a keep-alive agent for the pages and the app's requests. Event streams get a
 * connection each (`agent: false`), as a browser's wait page holds one.
 */
/** What an open `/sign-in/push-events` stream gives: when it opened, and its `decision` event. */
export interface WaitStream {
  /** Resolves when the first bytes (`: open`) arrived; rejects if the stream could not be opened. */
  opened: Promise<void>;
  /** The decision's status and when it arrived, or null if the stream ended without one (or timed out). */
  decision: Promise<{ status: string; at: number } | null>;
  /** True once the stream has ended, for whatever reason. */
  readonly ended: boolean;
  close(): void;
}

/** One browser over HTTP, with the sign-in steps the cluster benches take. */
export class Browser extends FormBrowser {
  /**
   * GET /sign-in, POST the email, POST the password; throws unless the password step answered 303
   * /sign-in/verify (for a push user the server has then sent the challenge).
   */
  async passwordSteps(email: string): Promise<void> {
    await this.send('GET', '/sign-in');
    const afterEmail = await this.send('POST', '/sign-in', { email });
    if (afterEmail.status !== 303 || afterEmail.location !== '/sign-in/password') throw new Error(`${email}: the email step answered ${afterEmail.status}`);
    const afterPassword = await this.send('POST', '/sign-in/password', { password: PASSWORD });
    if (afterPassword.status !== 303 || afterPassword.location !== '/sign-in/verify') {
      const error = /nhsuk-error-summary__list[^>]*>([\s\S]*?)<\/ul>/.exec(afterPassword.body)?.[1]?.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
      throw new Error(`${email}: the password step answered ${afterPassword.status} ${afterPassword.location ?? ''} ${error ?? ''}`);
    }
  }

  /**
   * The password steps (the default method is push, so the server sends a challenge), then GET
   * /sign-in/verify; the number the wait page shows.
   */
  async toPushStep(email: string): Promise<string> {
    await this.passwordSteps(email);
    const page = await this.send('GET', '/sign-in/verify');
    const number = /<span class="nhsuk-u-visually-hidden">Number: <\/span>(\d+)/.exec(page.body)?.[1];
    if (!number) throw new Error(`${email}: no number on the wait page (${page.status})`);
    return number;
  }

  /** After the approval: POST /sign-in/verify, as the wait page does on its event; true if signed in. */
  async complete(): Promise<boolean> {
    const done = await this.send('POST', '/sign-in/verify', {});
    return done.status === 303 && done.location === '/account';
  }

  /** Opens the wait page's event stream on its own connection. */
  openPushEvents(timeoutMs: number): WaitStream {
    let ended = false;
    let resolveOpened!: () => void;
    let rejectOpened!: (error: Error) => void;
    const opened = new Promise<void>((resolve, reject) => {
      resolveOpened = resolve;
      rejectOpened = reject;
    });
    opened.catch(() => undefined);
    let settle!: (value: { status: string; at: number } | null) => void;
    const decision = new Promise<{ status: string; at: number } | null>((resolve) => (settle = resolve));
    const req = http.request(
      {
        host: this.origin.hostname,
        port: this.origin.port,
        method: 'GET',
        path: '/sign-in/push-events',
        headers: { cookie: this.cookieHeader(), accept: 'text/event-stream' },
        agent: false,
      },
      (res) => {
        if (res.statusCode !== 200) {
          rejectOpened(new Error(`the event stream answered ${res.statusCode}`));
          res.resume();
          return;
        }
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const at = performance.now();
          buffer += chunk;
          resolveOpened();
          const match = /event: decision\ndata: ([^\n]*)\n\n/.exec(buffer);
          if (match) {
            settle({ status: (JSON.parse(match[1]!) as { status: string }).status, at });
            req.destroy();
          }
        });
      },
    );
    const timer = setTimeout(() => req.destroy(), timeoutMs);
    req.on('error', (error) => rejectOpened(error));
    req.on('close', () => {
      ended = true;
      clearTimeout(timer);
      rejectOpened(new Error('the event stream closed before it opened'));
      settle(null);
    });
    req.end();
    return {
      opened,
      decision,
      get ended() {
        return ended;
      },
      close: () => req.destroy(),
    };
  }
}

/** A device for a new account: its id (the push method's too), its public JWK as stored, and what the caller keeps of it. */
export interface NewDevice<D> {
  id: string;
  publicJwk: string;
  device: D;
}

export interface PairedAccount<D> {
  email: string;
  device: D;
}

/**
 * Makes `count` users (`<prefix>-<i>@example.org`) with a password, directly in the database the servers
 * will use (`env`: the same secret, so what is sealed here the nodes can open), one transaction per user;
 * `addMethod` gives each its second method in that transaction and says what the bench keeps of it. The
 * password is hashed once (at the servers' argon2 parameters, from the same environment) and given to
 * all, so the set-up takes seconds.
 */
export async function createUsers<T>(
  env: NodeJS.ProcessEnv,
  count: number,
  prefix: string,
  addMethod: (ctx: AppContext, repos: Repositories, userId: string, now: Date) => Promise<T>,
): Promise<Array<{ email: string } & T>> {
  const ctx = await createAppContext(loadConfig({ env: { ...env, REDIS_URL: undefined } }), { logger: pino({ level: 'silent' }) });
  try {
    if (!(await ctx.store.organisations.findByName(ORGANISATION))) await addOrganisation(ctx, ORGANISATION, { kind: 'system' });
    const hash = await ctx.hasher.hash(PASSWORD);
    const accounts: Array<{ email: string } & T> = [];
    let next = 0;
    // SQLite is one synchronous connection: more callers only queue. PostgreSQL's pool has 10.
    const parallel = ctx.store.dialect === 'postgres' ? 8 : 1;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < count) {
          const i = next++;
          const email = `${prefix}-${i}@example.org`;
          const now = new Date();
          const kept = await ctx.store.transaction(async (repos) => {
            const { user } = await insertUser(ctx, repos, { email, displayName: `Bench ${i}`, organisation: ORGANISATION, roles: [] }, { kind: 'system' });
            await repos.users.setPasswordHash(user.id, hash, now, true);
            return addMethod(ctx, repos, user.id, now);
          });
          accounts.push({ email, ...kept });
        }
      }),
    );
    return accounts;
  } finally {
    await ctx.close();
  }
}

/**
 * Users with a password and a paired phone (`newDevice` makes its key) as their default method, as pairing
 * leaves them once the test request is approved.
 */
export function createAccounts<D>(env: NodeJS.ProcessEnv, count: number, prefix: string, newDevice: () => Promise<NewDevice<D>>): Promise<Array<PairedAccount<D>>> {
  return createUsers(env, count, prefix, async (_ctx, repos, userId, now) => {
    const { id: deviceId, publicJwk, device } = await newDevice();
    await repos.methods.insertPending({
      id: deviceId,
      userId,
      kind: 'push',
      label: 'Bench phone',
      phoneE164: null,
      secretSealed: null,
      now,
      pendingExpiresAt: new Date(now.getTime() + 600_000),
    });
    await repos.push.insertDevice({ id: deviceId, userId, publicJwk, subscriptionSealed: null, now });
    await repos.methods.activate(userId, deviceId, now, null);
    await repos.users.setDefaultMethod(userId, deviceId, now);
    return { device };
  });
}

/**
 * An active authenticator app for `userId`, as enrolment leaves it: a new seed, sealed as
 * src/app/methods/totp seals it (bound to the method's id: a mismatch fails every verification), its
 * enrolment at `enrolledStep`. Returns the method's id and the seed (what the app would hold).
 */
export async function insertTotpMethod(ctx: AppContext, repos: Repositories, userId: string, now: Date, enrolledStep: number): Promise<{ methodId: string; seed: string }> {
  const methodId = randomUUID();
  const seed = totpSecretFromBytes(randomBytes(TOTP_SECRET_BYTES));
  await repos.methods.insertPending({
    id: methodId,
    userId,
    kind: 'totp',
    label: 'Authenticator app',
    phoneE164: null,
    secretSealed: sealText(ctx.keys.keyEncryption, seed, `totp-seed:${methodId}`),
    now,
    pendingExpiresAt: new Date(now.getTime() + 15 * 60_000),
  });
  if (!(await repos.methods.activate(userId, methodId, now, enrolledStep))) throw new Error(`could not activate method ${methodId}`);
  return { methodId, seed };
}

export interface Node {
  origin: string;
  /** Where its /metrics listener answers. */
  metricsOrigin: string;
  pid: number;
  child: ChildProcess;
  log(): string;
}

/**
 * Runs `node bin/portcullis.js serve` directly (no npm, no shell), so the spawned pid is the process that
 * serves and its /proc entry is the one to sample; resolves once /readyz answers.
 */
export async function startNode(env: NodeJS.ProcessEnv, port: number): Promise<Node> {
  // /metrics has a listener of its own, and several nodes on one machine need one each.
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/portcullis.js'), 'serve'], {
    cwd: ROOT,
    env: { ...env, PORT: String(port), HOST: '127.0.0.1', METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  child.stdout?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  const origin = `http://localhost:${port}`;
  const giveUpAt = Date.now() + 60_000;
  for (let ready = false; !ready; ) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}:\n${log}`);
    if (Date.now() > giveUpAt) throw new Error(`the server did not answer /readyz within 60 s:\n${log}`);
    ready = await fetch(`${origin}/readyz`).then((r) => r.ok, () => false);
    if (!ready) await sleep(100);
  }
  return { origin, metricsOrigin: `http://127.0.0.1:${metricsPort}`, pid: child.pid!, child, log: () => log };
}

export async function stopNode(node: Node | undefined): Promise<void> {
  const child = node?.child;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
  child.kill('SIGTERM');
  // It finishes requests in flight on SIGTERM; a server that hangs is not worth waiting for.
  if (!(await Promise.race([exited, sleep(10_000).then(() => false)]))) child.kill('SIGKILL');
}
