/**
 * Cluster benchmark: complete sign-ins at a target rate through a small round-robin proxy (the test
 * helper test/helpers/round-robin-proxy.ts, not a product) in front of 1, 2 and 3 Portcullis nodes on
 * this machine, all on one PostgreSQL database and one Redis. Two kinds, one phase each: password +
 * authenticator-app code (TOTP), and password + push, approved by a simulated fleet of devices that
 * use the Authenticator SDK as the CLI authenticator does (src/authenticator: each holds its device
 * event stream open through the proxy, hears of its challenge there and approves it with the number
 * the browser's wait page shows). It prints figures and never fails on a time: timings depend on the
 * machine, and on a 2-core machine the total cannot grow with the nodes; the costs per sign-in are
 * the point.
 *
 *   npm run bench:cluster -- [--rate 40] [--seconds 10] [--nodes 1,2,3] [--devices 200]
 *                            [--database postgres://…] [--redis redis://127.0.0.1:6379/0]
 *
 * --rate is an open loop: a sign-in starts every 1/rate s whatever the others are doing, at most
 * 4 × rate at once; one that cannot start (that many in flight, or no account free to use) is counted
 * as not started. Latency runs from when a sign-in was due to start to its 303 to /account.
 * --seconds is each phase's length, --nodes the node counts to measure (nodes already running are kept
 * as the count grows), --devices the push accounts, each with its own device. --database names the
 * PostgreSQL server where a fresh database is made (and dropped at the end); --redis the Redis server.
 * Without either answering it says so and measures nothing.
 *
 * Per phase: sign-ins per second achieved (completed ÷ the phase's time, in-flight ones drained),
 * p50/p99 and the p50 of each step, errors by reason; CPU ms per sign-in of each node, of PostgreSQL (every `postgres` process),
 * of Redis (`redis-server`) and of this process (load generator, proxy and devices); SQL statements,
 * writes and round trips per sign-in (the nodes' /metrics counters) and Redis commands per sign-in
 * (INFO stats). Other work on the machine, or on the same PostgreSQL or Redis, is counted too: the
 * 1-minute load average is printed, before and after.
 *
 * The users are made directly in the database, as enrolment and pairing would leave them (see
 * bench/fleet.ts and bench/code-step.ts); everything measured goes over HTTP.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Browser, createAccounts, createUsers, fleetEnv, insertTotpMethod, PUSH_MIN_INTERVAL_MS, PUSH_PER_HOUR, startNode, stopNode, type Node } from './fleet.js';
import { agent, cpuByCommand, cpuDelta, cpuMsOf, databaseCounts, DEFAULT_POSTGRES, DEFAULT_REDIS, freePort, freshPostgresDatabase, percentile, postgresAnswers, redisAnswers, sleep, type DatabaseCounts, type HttpResponse } from './lib.js';
import { AuthenticatorClient, exportPublicJwk, generateDeviceKey, MemoryKeyStore } from '../src/authenticator/index.js';
import { generateTotp, totpStep } from '../src/core/methods/totp.js';
import { startRoundRobinProxy, type RoundRobinProxy } from '../test/helpers/round-robin-proxy.js';

/** Sign-ins of each kind before each node count's phases, not counted: templates, JIT paths, pools, Redis channels. */
const WARM_UP = 20;
/** How long a device waits for its challenge on its event stream once the browser shows the number. */
const DEVICE_TIMEOUT_MS = 10_000;
/** A sign-in not done by then is an error (and its account is not used again). */
const SIGN_IN_TIMEOUT_MS = 30_000;

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '40' },
    seconds: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '1,2,3' },
    devices: { type: 'string', default: '200' },
    database: { type: 'string', default: DEFAULT_POSTGRES },
    redis: { type: 'string', default: DEFAULT_REDIS },
  },
});
const rate = Number(args.rate);
const seconds = Number(args.seconds);
const deviceCount = Number(args.devices);
const nodeCounts = args.nodes.split(',').map((n) => Number(n.trim()));
if (!(rate > 0)) throw new Error('--rate must be > 0');
if (!(seconds > 0)) throw new Error('--seconds must be > 0');
if (!Number.isInteger(deviceCount) || deviceCount < 2) throw new Error('--devices must be a whole number ≥ 2');
if (!nodeCounts.length || nodeCounts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--nodes must be whole numbers ≥ 1, separated by commas (1,2,3)');
if (!/^postgres(ql)?:\/\//.test(args.database)) throw new Error('--database must be a postgres:// address (of a server where a database can be created)');
if (!/^rediss?:\/\//.test(args.redis)) throw new Error('--redis must be a redis:// address');
const maxInFlight = Math.max(4, Math.ceil(4 * rate));
/** Sign-ins of each kind the whole run may start. */
const usesPerKind = (WARM_UP + Math.ceil(rate * seconds)) * nodeCounts.length;
// Every push goes to one of the devices' users, who may have at most PUSH_PER_HOUR; keep a margin.
if (Math.ceil(usesPerKind / deviceCount) > PUSH_PER_HOUR - 10) {
  throw new Error(`--devices must be at least ${Math.ceil(usesPerKind / (PUSH_PER_HOUR - 10))} for --rate ${rate}, --seconds ${seconds} and ${nodeCounts.length} node counts (≤ ${PUSH_PER_HOUR} pushes per user an hour)`);
}
/**
 * Each authenticator-app account may use each 30-s step once (replay protection), so an account is
 * used again only in a later step: enough accounts for every sign-in of the run, or for 40 s of them at
 * the rate and those in flight, whichever is fewer.
 */
const totpCount = Math.ceil(Math.min(1.2 * usesPerKind, 40 * rate + maxInFlight));

const fmt = (n: number | null, digits = 1) => (n === null || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits));
const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
const tally = (map: Map<string, number>) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .map(([why, n]) => `${n}× ${why}`)
    .join('; ');

// ── The simulated fleet: CLI-SDK devices ────────────────────────────────────────────────────────────

/**
 * One paired device: an AuthenticatorClient, as the CLI authenticator runs it, holding its event stream
 * open (and reopening it if it drops) and keeping the challenges it hears of for the sign-in waiting.
 */
class Device {
  readonly client: AuthenticatorClient;
  private controller: AbortController | null = null;
  private arrived: string[] = [];
  private waiter: ((id: string) => void) | null = null;
  private readonly seen = new Set<string>();
  /** Times the stream failed and was reopened, and the last reason. */
  streamErrors = 0;
  lastStreamError = '';

  constructor(origin: string, id: string, pair: CryptoKeyPair) {
    this.client = new AuthenticatorClient({ origin, deviceId: id, keyStore: new MemoryKeyStore(pair) });
  }

  /** Opens the event stream (kept open, reopened after a failure, until close()); resolves once the server accepted it. */
  open(timeoutMs = 15_000): Promise<void> {
    this.close();
    const controller = new AbortController();
    this.controller = controller;
    return new Promise<void>((resolve, reject) => {
      const giveUp = setTimeout(() => reject(new Error(`a device's event stream did not open within ${timeoutMs / 1000} s (${this.lastStreamError || 'no error'})`)), timeoutMs);
      const onOpen = () => {
        clearTimeout(giveUp);
        resolve();
      };
      void (async () => {
        while (!controller.signal.aborted) {
          try {
            for await (const event of this.client.events(controller.signal, { onOpen })) this.arrive(event.id);
            if (!controller.signal.aborted) {
              this.streamErrors++;
              this.lastStreamError = 'the server ended the stream';
            }
          } catch (error) {
            if (controller.signal.aborted) break;
            this.streamErrors++;
            this.lastStreamError = (error as Error).message;
          }
          if (!controller.signal.aborted) await sleep(250);
        }
        clearTimeout(giveUp);
      })();
    });
  }

  private arrive(id: string): void {
    // A reopened stream repeats the challenges still waiting.
    if (this.seen.has(id)) return;
    this.seen.add(id);
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter) waiter(id);
    else this.arrived.push(id);
  }

  /** Before a sign-in starts: forget any challenge heard of earlier. */
  expect(): void {
    this.arrived = [];
    this.waiter = null;
  }

  /** The next challenge heard of on the stream (perhaps already), or an error after `timeoutMs`. */
  nextChallenge(timeoutMs: number): Promise<string> {
    const ready = this.arrived.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no challenge on the device's event stream within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiter = (id) => {
        clearTimeout(timer);
        resolve(id);
      };
    });
  }

  close(): void {
    this.controller?.abort();
    this.controller = null;
  }
}

interface PushAccount {
  email: string;
  device: Device;
  /** performance.now() when its last sign-in ended: the server refuses pushes to one user closer together. */
  lastUsed: number;
}

interface TotpAccount {
  email: string;
  seed: string;
  /** The last 30-s step a code was made for: the server takes each step once. */
  lastStep: number;
}

/**
 * Users with a password and an active authenticator app as their default method, in the push accounts'
 * organisation. As if enrolled a minute ago: the enrolment's step is used, and now−1, now and now+1 are not.
 */
function createTotpAccounts(env: NodeJS.ProcessEnv, count: number, prefix: string): Promise<TotpAccount[]> {
  return createUsers(env, count, prefix, async (ctx, repos, userId, now) => {
    const enrolledStep = totpStep(now) - 2;
    const { methodId, seed } = await insertTotpMethod(ctx, repos, userId, now, enrolledStep);
    await repos.users.setDefaultMethod(userId, methodId, now);
    return { seed, lastStep: enrolledStep };
  });
}

/** Accounts in the order they were last used; the oldest is handed out once `ready` says it may be used again. */
class AccountQueue<A> {
  private readonly queue: A[];
  constructor(
    accounts: A[],
    private readonly ready: (account: A) => boolean,
  ) {
    this.queue = [...accounts];
  }
  take(): A | null {
    const head = this.queue[0];
    return head !== undefined && this.ready(head) ? this.queue.shift()! : null;
  }
  give(account: A): void {
    this.queue.push(account);
  }
}

// ── The two sign-ins ────────────────────────────────────────────────────────────────────────────────

/** A short account of a page that was not the one expected: status, redirect and any error summary. */
function describe(response: HttpResponse): string {
  const error = /nhsuk-error-summary__list[^>]*>([\s\S]*?)<\/ul>/.exec(response.body)?.[1]?.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
  return `${response.status}${response.location ? ` → ${response.location}` : ''}${error ? ` (${error})` : ''}`;
}

/** The names of the steps whose times signIn returns, by kind. */
const STEPS = { totp: ['password steps', 'code step'], push: ['to the wait page', 'challenge heard', 'approval', 'completion'] } as const;

/** Password + code: the password steps (→ 303 /sign-in/verify), then the current code (→ 303 /account); each step's ms. */
async function totpSignIn(origin: string, account: TotpAccount): Promise<number[]> {
  const browser = new Browser(origin);
  const t0 = performance.now();
  await browser.passwordSteps(account.email);
  const t1 = performance.now();
  const now = new Date();
  account.lastStep = totpStep(now);
  const done = await browser.send('POST', '/sign-in/verify', { code: generateTotp(account.seed, now) });
  if (done.status !== 303 || done.location !== '/account') throw new Error(`the code step answered ${describe(done)}`);
  return [t1 - t0, performance.now() - t1];
}

/**
 * Password + push: the password steps and the wait page (its number); the account's device hears of the
 * challenge on its event stream and approves it with that number; then the browser posts
 * /sign-in/verify, as the wait page does on its event (→ 303 /account).
 */
async function pushSignIn(origin: string, account: PushAccount): Promise<number[]> {
  account.device.expect();
  const browser = new Browser(origin);
  const t0 = performance.now();
  const number = await browser.toPushStep(account.email);
  const t1 = performance.now();
  let challengeId: string;
  try {
    challengeId = await account.device.nextChallenge(DEVICE_TIMEOUT_MS);
  } catch (error) {
    // Lost on the way, or never started? What the device API lists says which.
    const pending = await account.device.client.pendingChallenges().then(
      (list) => `${list.length} pending`,
      (e: Error) => `listing failed: ${e.message}`,
    );
    throw new Error(`${(error as Error).message} (GET /device/v1/challenges: ${pending})`);
  }
  const t2 = performance.now();
  const { status } = await account.device.client.decide(challengeId, { decision: 'approve', number });
  if (status !== 'approved') throw new Error(`the approval answered ${status}`);
  const t3 = performance.now();
  if (!(await browser.complete())) throw new Error('the sign-in did not complete after the approval');
  return [t1 - t0, t2 - t1, t3 - t2, performance.now() - t3];
}

type Kind = 'totp' | 'push';

/** One sign-in of `kind` on an account from its queue, within SIGN_IN_TIMEOUT_MS: its steps' ms if it ended signed in, else why not. */
async function signIn(kind: Kind, origin: string, queues: Queues, account: TotpAccount | PushAccount): Promise<{ steps: number[] } | { failure: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done within ${SIGN_IN_TIMEOUT_MS / 1000} s`)), SIGN_IN_TIMEOUT_MS);
  });
  const attempt = kind === 'totp' ? totpSignIn(origin, account as TotpAccount) : pushSignIn(origin, account as PushAccount);
  try {
    const steps = await Promise.race([attempt, timeout]);
    if (kind === 'totp') queues.totp.give(account as TotpAccount);
    else queues.push.give({ ...(account as PushAccount), lastUsed: performance.now() });
    return { steps };
  } catch (error) {
    // A push account that failed may have a challenge still pending, which would refuse the next; and an
    // account whose sign-in timed out may still be in use. Neither is used again. A refused code leaves nothing behind.
    const timedOut = (error as Error).message.startsWith('not done within');
    if (kind === 'totp' && !timedOut) queues.totp.give(account as TotpAccount);
    const message = (error as Error).message.replace(/^[^\s:]+@example\.org: /, '');
    return { failure: message.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '…') };
  } finally {
    clearTimeout(timer);
  }
}

interface Queues {
  totp: AccountQueue<TotpAccount>;
  push: AccountQueue<PushAccount>;
}

// ── What is counted around a phase ──────────────────────────────────────────────────────────────────

/** Redis's total_commands_processed, read over a connection of the bench's own, less the INFO commands it sent itself. */
class RedisCounter {
  private readonly redis: Redis;
  private sent = 0;
  constructor(url: string) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined);
  }
  /** The count so far, not counting this bench's INFO commands (Redis counts a command after it ran, so not this one). */
  async read(): Promise<number | null> {
    try {
      const sentBefore = this.sent++;
      const info = await this.redis.info('stats');
      const total = Number(/^total_commands_processed:(\d+)/m.exec(info)?.[1] ?? NaN);
      return Number.isFinite(total) ? total - sentBefore : null;
    } catch {
      return null;
    }
  }
  close(): void {
    this.redis.disconnect();
  }
}

interface Reading {
  nodesCpu: Array<number | null>;
  postgresCpu: Map<number, number>;
  redisCpu: Map<number, number>;
  ownCpu: number;
  database: Array<DatabaseCounts | null>;
  redisCommands: number | null;
}

async function read(nodes: Node[], redisCounter: RedisCounter): Promise<Reading> {
  const [nodesCpu, postgresCpu, redisCpu, database, redisCommands] = await Promise.all([
    Promise.all(nodes.map((node) => cpuMsOf(node.pid))),
    cpuByCommand('postgres'),
    cpuByCommand('redis-server'),
    Promise.all(nodes.map((node) => databaseCounts(`${node.metricsOrigin}/metrics`))),
    redisCounter.read(),
  ]);
  const { user, system } = process.cpuUsage();
  return { nodesCpu, postgresCpu, redisCpu, ownCpu: (user + system) / 1000, database, redisCommands };
}

// ── A phase: sign-ins started at the rate, open loop ────────────────────────────────────────────────

interface PhaseResult {
  completed: number;
  elapsedMs: number;
  latencies: number[];
  /** Each completed sign-in's steps' ms (STEPS[kind]). */
  steps: number[][];
  errors: Map<string, number>;
  capped: number;
  noAccount: number;
  before: Reading;
  after: Reading;
}

async function phase(kind: Kind, origin: string, nodes: Node[], queues: Queues, redisCounter: RedisCounter): Promise<PhaseResult> {
  const latencies: number[] = [];
  const steps: number[][] = [];
  const errors = new Map<string, number>();
  let capped = 0;
  let noAccount = 0;
  const inFlight = new Set<Promise<void>>();
  const before = await read(nodes, redisCounter);
  const total = Math.ceil(rate * seconds);
  const interval = 1000 / rate;
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    if (inFlight.size >= maxInFlight) {
      capped++;
      continue;
    }
    const account = kind === 'totp' ? queues.totp.take() : queues.push.take();
    if (!account) {
      noAccount++;
      continue;
    }
    const run: Promise<void> = signIn(kind, origin, queues, account).then((outcome) => {
      inFlight.delete(run);
      if ('steps' in outcome) {
        latencies.push(performance.now() - due);
        steps.push(outcome.steps);
      } else count(errors, outcome.failure);
    });
    inFlight.add(run);
  }
  await Promise.all(inFlight);
  const elapsedMs = performance.now() - started;
  const after = await read(nodes, redisCounter);
  return { completed: latencies.length, elapsedMs, latencies, steps, errors, capped, noAccount, before, after };
}

/** `count` sign-ins of `kind`, four at a time, not counted; the failures by reason. */
async function warmUp(kind: Kind, origin: string, queues: Queues, total: number): Promise<Map<string, number>> {
  const failures = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < total) {
        const account = kind === 'totp' ? queues.totp.take() : queues.push.take();
        if (!account) {
          await sleep(100);
          continue;
        }
        next++;
        const outcome = await signIn(kind, origin, queues, account);
        if ('failure' in outcome) count(failures, outcome.failure);
      }
    }),
  );
  return failures;
}

function phaseRows(label: string, kind: Kind, r: PhaseResult, nodeCount: number): Array<[string, string]> {
  const per = (value: number | null) => (value === null || r.completed === 0 ? null : value / r.completed);
  const nodeCpu = Array.from({ length: nodeCount }, (_, i) => {
    const [a, b] = [r.before.nodesCpu[i], r.after.nodesCpu[i]];
    return a === null || a === undefined || b === null || b === undefined ? null : b - a;
  });
  const nodesSum = nodeCpu.every((ms) => ms !== null) ? nodeCpu.reduce<number>((s, ms) => s + ms!, 0) : null;
  const database = (field: keyof DatabaseCounts) => {
    let sum = 0;
    for (let i = 0; i < nodeCount; i++) {
      const [a, b] = [r.before.database[i], r.after.database[i]];
      if (!a || !b) return null;
      sum += b[field] - a[field];
    }
    return sum;
  };
  const redisCommands = r.before.redisCommands === null || r.after.redisCommands === null ? null : r.after.redisCommands - r.before.redisCommands;
  const errorCount = [...r.errors.values()].reduce((s, n) => s + n, 0);
  return [
    [label, `${fmt(r.completed / (r.elapsedMs / 1000))} sign-ins/s of ${fmt(rate, rate % 1 ? 1 : 0)} targeted (${r.completed} completed in ${fmt(r.elapsedMs / 1000)} s)`],
    ['  latency of the complete sign-in:', `p50 ${fmt(percentile(r.latencies, 50), 0)} ms  p99 ${fmt(percentile(r.latencies, 99), 0)} ms  max ${fmt(r.latencies.length ? Math.max(...r.latencies) : null, 0)} ms`],
    ['  steps, p50 each:', STEPS[kind].map((name, i) => `${name} ${fmt(percentile(r.steps.map((s) => s[i]!), 50), 0)} ms`).join(', ')],
    ['  errors:', errorCount ? `${errorCount}: ${tally(r.errors)}` : '0'],
    ['  not started:', `${r.capped + r.noAccount} (${r.capped} at the cap of ${maxInFlight} in flight, ${r.noAccount} with no account free)`],
    [
      '  CPU ms per sign-in, nodes:',
      `${nodeCpu.map((ms, i) => `node ${i + 1} ${fmt(per(ms))}`).join(', ')}${nodeCount > 1 ? `; sum ${fmt(per(nodesSum))}` : ''}`,
    ],
    [
      '  CPU ms per sign-in, PostgreSQL / Redis / bench:',
      `${fmt(per(cpuDelta(r.before.postgresCpu, r.after.postgresCpu)))} / ${fmt(per(cpuDelta(r.before.redisCpu, r.after.redisCpu)))} / ${fmt(per(r.after.ownCpu - r.before.ownCpu))}` +
        '   (bench: load generator, proxy and devices)',
    ],
    ['  database per sign-in:', `${fmt(per(database('statements')))} statements, ${fmt(per(database('writes')))} writes, ${fmt(per(database('roundTrips')))} round trips`],
    ['  Redis commands per sign-in:', fmt(per(redisCommands))],
  ];
}

// ── The run ────────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  // Another process's load skews every figure here: the 1-minute load average is printed, before and after.
  const loadAtStart = os.loadavg()[0]!;
  const [pgUp, redisUp] = await Promise.all([postgresAnswers(args.database), redisAnswers(args.redis)]);
  if (!pgUp || !redisUp) {
    const missing = [!pgUp && `no PostgreSQL at ${new URL(args.database).host}`, !redisUp && `no Redis at ${new URL(args.redis).host}`].filter(Boolean).join(', ');
    process.stdout.write(`bench/cluster: nothing measured (${missing}); it needs both.\n`);
    return;
  }
  // Sign-ins in flight take a connection each; the shared agent's limit would queue them in this process.
  agent.maxSockets = Number.POSITIVE_INFINITY;

  const dataDirs: string[] = [];
  const newDataDir = async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-cluster-'));
    dataDirs.push(dir);
    return dir;
  };
  const nodes: Node[] = [];
  const nodePorts: number[] = [];
  let devices: Device[] = [];
  let proxy: RoundRobinProxy | null = null;
  let redisCounter: RedisCounter | null = null;
  let database: { url: string; drop(): Promise<void> } | null = null;
  const rows: Array<[string, string]> = [];
  try {
    database = await freshPostgresDatabase(args.database);
    // The proxy's port is chosen first: every node's PUBLIC_URL is its address, the one browsers see.
    const proxyPort = await freePort();
    const publicUrl = `http://localhost:${proxyPort}`;
    const env: NodeJS.ProcessEnv = {
      ...fleetEnv(randomBytes(32).toString('base64url')),
      DATABASE_URL: database.url,
      PUBLIC_URL: publicUrl,
      TRUST_PROXY: '127.0.0.1',
    };

    process.stderr.write(`creating ${deviceCount} users with a paired device and ${totpCount} with an authenticator app …\n`);
    const setUpStarted = performance.now();
    const pushAccounts: PushAccount[] = (
      await createAccounts({ ...env, PORTCULLIS_DATA_DIR: await newDataDir() }, deviceCount, 'bench-cluster-push', async () => {
        const pair = await generateDeviceKey();
        const id = randomUUID();
        return { id, publicJwk: JSON.stringify(await exportPublicJwk(pair.publicKey)), device: new Device(publicUrl, id, pair) };
      })
    ).map(({ email, device }) => ({ email, device, lastUsed: -Infinity }));
    devices = pushAccounts.map((a) => a.device);
    const totpAccounts = await createTotpAccounts({ ...env, PORTCULLIS_DATA_DIR: await newDataDir() }, totpCount, 'bench-cluster-code');
    rows.push(['users made in the database:', `${deviceCount} with a device, ${totpCount} with an authenticator app, in ${fmt((performance.now() - setUpStarted) / 1000)} s`]);
    const queues: Queues = {
      totp: new AccountQueue(totpAccounts, (a) => totpStep(new Date()) > a.lastStep),
      push: new AccountQueue(pushAccounts, (a) => performance.now() > a.lastUsed + PUSH_MIN_INTERVAL_MS + 100),
    };
    redisCounter = new RedisCounter(args.redis);

    for (const nodeCount of nodeCounts) {
      while (nodes.length < nodeCount) {
        const port = await freePort();
        process.stderr.write(`starting node ${nodes.length + 1} …\n`);
        nodes.push(await startNode({ ...env, REDIS_URL: args.redis, PORTCULLIS_DATA_DIR: await newDataDir() }, port));
        nodePorts.push(port);
      }
      const serving = nodes.slice(0, nodeCount);
      // A new proxy over these nodes, at the same address; every device's stream reopened through it.
      for (const device of devices) device.close();
      await proxy?.close();
      proxy = await startRoundRobinProxy(
        nodePorts.slice(0, nodeCount).map((port) => ({ host: '127.0.0.1', port })),
        proxyPort,
      );
      process.stderr.write(`${nodeCount} node${nodeCount > 1 ? 's' : ''}: opening ${devices.length} device event streams …\n`);
      // All at once, as phones reconnect to a node that has just started (the burst that lost
      // subscriptions before src/channels/bus.ts waited for its subscriber to be ready).
      await Promise.all(devices.map((device) => device.open()));
      process.stderr.write(`${nodeCount} node${nodeCount > 1 ? 's' : ''}: warming up (${WARM_UP} sign-ins of each kind) …\n`);
      for (const kind of ['totp', 'push'] as const) {
        const failures = await warmUp(kind, publicUrl, queues, WARM_UP);
        if (failures.size) process.stderr.write(`  warm-up ${kind} failures: ${tally(failures)}\n`);
      }
      const streamErrorsBefore = devices.reduce((s, d) => s + d.streamErrors, 0);
      const label = `${nodeCount} node${nodeCount > 1 ? 's' : ''}`;
      for (const [kind, name] of [
        ['totp', 'password + TOTP'],
        ['push', 'password + push'],
      ] as const) {
        process.stderr.write(`${label}: ${name}, ${seconds} s at ${rate}/s …\n`);
        rows.push(...phaseRows(`${label}, ${name}:`, kind, await phase(kind, publicUrl, serving, queues, redisCounter), nodeCount));
      }
      const streamErrors = devices.reduce((s, d) => s + d.streamErrors, 0) - streamErrorsBefore;
      if (streamErrors) rows.push([`${label}, device event streams reopened:`, `${streamErrors} (last: ${devices.find((d) => d.lastStreamError)?.lastStreamError ?? ''})`]);
    }

    // Warnings the nodes logged that bear on the figures (their logs keep the last 4,000 characters).
    for (const [i, node] of nodes.entries()) {
      const warnings = new Map<string, number>();
      for (const match of node.log().matchAll(/"msg":"(Redis[^"]*)"/g)) count(warnings, match[1]!);
      if (warnings.size) rows.push([`node ${i + 1} logged:`, tally(warnings)]);
    }
    const width = Math.max(...rows.map(([label]) => label.length)) + 2;
    process.stdout.write(
      `\nbench/cluster  (node ${process.version}, ${os.availableParallelism()} CPUs, load ${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}, ` +
        `target ${rate}/s, ${seconds} s per phase, PostgreSQL at ${new URL(database.url).host} + Redis at ${new URL(args.redis).host})\n`,
    );
    for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}${value}\n`);
  } catch (error) {
    for (const [i, node] of nodes.entries()) if (node.log().trim()) process.stderr.write(`node ${i + 1} (${node.origin}) log:\n${node.log()}\n`);
    throw error;
  } finally {
    for (const device of devices) device.close();
    await proxy?.close();
    redisCounter?.close();
    agent.destroy();
    await Promise.all(nodes.map((node) => stopNode(node)));
    await database?.drop();
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
  }
}

await main();
