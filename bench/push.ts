/**
 * Push benchmark: how long a sign-in's wait page takes to hear of an approval, from the moment the app
 * sends it (p50 and p99), on one node and across two nodes (the sign-in on node A, the app's decision
 * sent to node B, the event crossing Redis); and how many waiting sign-ins one node holds open, with
 * its memory. It prints figures and never fails on a time: timings depend on the machine.
 *
 *   npm run bench:push -- [--samples 200] [--users 200] [--waiting 1000] [--concurrency N]
 *                         [--database postgres://…] [--redis redis://127.0.0.1:6379/0]
 *
 * One node runs on SQLite, or with --database on a fresh database made on that PostgreSQL server. The
 * two nodes run on a fresh database on that server (or on 127.0.0.1:5432 without --database) and on
 * Redis; they are skipped, with a note, if either does not answer. Every database is dropped at the end.
 *
 * The users and their paired phones are made directly in the database, as pairing would leave them (see
 * test/integration/two-nodes.test.ts); everything measured goes over HTTP, as a browser and the
 * Portcullis Authenticator would send it (docs/device-api.md).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { Browser, createAccounts, fleetEnv, PUSH_MIN_INTERVAL_MS, PUSH_PER_HOUR, startNode, stopNode, type Node, type WaitStream } from './fleet.js';
import { agent, DEFAULT_REDIS, freePort, freshPostgresDatabase, percentile, postgresAnswers, redisAnswers, request, rssMiB, sleep, type HttpResponse } from './lib.js';

const DEFAULT_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';
/** A decision that has not reached the wait page by then is counted as lost (the page would poll). */
const EVENT_TIMEOUT_MS = 15_000;
/** Samples before each measurement that are not counted: templates, JIT paths, pools, Redis channels. */
const WARM_UP = 10;

const { values: args } = parseArgs({
  options: {
    samples: { type: 'string', default: '200' },
    users: { type: 'string', default: '200' },
    waiting: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: String(os.availableParallelism()) },
    database: { type: 'string' },
    redis: { type: 'string', default: DEFAULT_REDIS },
  },
});
const samples = Number(args.samples);
const userCount = Number(args.users);
const waitingCount = Number(args.waiting);
const concurrency = Number(args.concurrency);
for (const [name, value, min] of [
  ['--samples', samples, 1],
  ['--users', userCount, 2],
  ['--waiting', waitingCount, 0],
  ['--concurrency', concurrency, 1],
] as const) {
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number ≥ ${min}`);
}
if (args.database !== undefined && !/^postgres(ql)?:\/\//.test(args.database)) throw new Error('--database must be a postgres:// address');
if (!/^rediss?:\/\//.test(args.redis)) throw new Error('--redis must be a redis:// address');
// The two-node phase sends the most pushes per user: twice (samples + warm-up) over the users.
if (Math.ceil((2 * (samples + WARM_UP)) / userCount) > PUSH_PER_HOUR - 10) {
  throw new Error(`--users must be at least ${Math.ceil((2 * (samples + WARM_UP)) / (PUSH_PER_HOUR - 10))} for --samples ${samples} (≤ ${PUSH_PER_HOUR} pushes per user an hour)`);
}

const fmt = (n: number | null, digits = 1) => (n === null || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));

/**
 * The V8 heap in use in a server, in MiB, from its /metrics (prom-client's default metrics): live
 * objects and garbage not yet collected, so a noisy figure, but one without the allocator's slack.
 */
async function heapUsedMiB(metricsOrigin: string): Promise<number | null> {
  try {
    const response = await request(new URL(metricsOrigin), 'GET', '/metrics', {});
    const match = /^portcullis_nodejs_heap_size_used_bytes ([0-9.e+]+)$/m.exec(response.body);
    return match ? Number(match[1]) / 1024 / 1024 : null;
  } catch {
    return null;
  }
}

/** How many file descriptors a process has open, or null without /proc. */
async function openFds(pid: number | 'self'): Promise<number | null> {
  try {
    return (await readdir(`/proc/${pid}/fd`)).length;
  } catch {
    return null;
  }
}

/** A process's soft limit on open files (`ulimit -n`), or null without /proc. */
async function openFilesLimit(pid: number | 'self'): Promise<string | null> {
  try {
    return /^Max open files\s+(\S+)/m.exec(await readFile(`/proc/${pid}/limits`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** A paired phone: signs its requests as docs/device-api.md says (compact JWS, ES256, kid = device id). */
class Phone {
  constructor(
    readonly deviceId: string,
    private readonly privateKey: CryptoKey,
  ) {}

  static async create(): Promise<{ phone: Phone; publicJwk: string }> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const { kty, crv, x, y } = await exportJWK(publicKey);
    return { phone: new Phone(randomUUID(), privateKey), publicJwk: JSON.stringify({ kty, crv, x, y }) };
  }

  sign(method: 'GET' | 'POST', pathname: string, fields: Record<string, unknown> = {}): Promise<string> {
    const payload = { iat: Math.floor(Date.now() / 1000), jti: randomBytes(16).toString('base64url'), htm: method, htu: pathname, ...fields };
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'ES256', typ: 'portcullis-device+jwt', kid: this.deviceId })
      .sign(this.privateKey);
  }

  send(origin: string, method: 'GET' | 'POST', pathname: string, jws: string): Promise<HttpResponse> {
    return request(new URL(origin), method, pathname, { authorization: `PortcullisDevice ${jws}` });
  }

  /** GET /device/v1/challenges: the id of this phone's one pending challenge. */
  async pendingChallenge(origin: string): Promise<string> {
    const response = await this.send(origin, 'GET', '/device/v1/challenges', await this.sign('GET', '/device/v1/challenges'));
    if (response.status !== 200) throw new Error(`listing challenges answered ${response.status}: ${response.body}`);
    const { challenges } = JSON.parse(response.body) as { challenges: Array<{ id: string }> };
    if (challenges.length !== 1) throw new Error(`${challenges.length} pending challenges, not 1`);
    return challenges[0]!.id;
  }
}

interface Account {
  email: string;
  phone: Phone;
  /** performance.now() when its last sample ended: a user is not pushed to again sooner than the server allows. */
  lastUsed: number;
}

/** Users with a password and a paired phone (bench/fleet.ts), as this bench rotates them. */
async function createPushAccounts(env: NodeJS.ProcessEnv, count: number, prefix: string): Promise<Account[]> {
  const accounts = await createAccounts(env, count, prefix, async () => {
    const { phone, publicJwk } = await Phone.create();
    return { id: phone.deviceId, publicJwk, device: phone };
  });
  return accounts.map(({ email, device }) => ({ email, phone: device, lastUsed: -Infinity }));
}

/** Round-robin over the accounts, never handing out one the server would still refuse a push to. */
class Rotation {
  private cursor = 0;
  constructor(private readonly accounts: Account[]) {}
  async next(): Promise<Account> {
    const account = this.accounts[this.cursor]!;
    this.cursor = (this.cursor + 1) % this.accounts.length;
    const wait = account.lastUsed + PUSH_MIN_INTERVAL_MS + 100 - performance.now();
    if (wait > 0) await sleep(wait);
    return account;
  }
}

interface Sample {
  /** From just before the approval request is sent to the wait page's `event: decision`. */
  eventMs: number;
  /** From the same moment to the end of the app's answer (200 { status }). */
  answerMs: number;
}

/**
 * One sample: a user signs in on `signInOrigin` to the push step and opens the wait page's event stream;
 * the phone lists its challenge and approves it with the number through `deviceOrigin`. The clock runs
 * from just before the approval request is sent (after it is signed) to the stream's decision event.
 * Then the browser completes the sign-in, as the wait page does, which checks the approval was real.
 */
async function sample(signInOrigin: string, deviceOrigin: string, account: Account): Promise<{ sample: Sample | null; failure?: string }> {
  const browser = new Browser(signInOrigin);
  const number = await browser.toPushStep(account.email);
  const stream = browser.openPushEvents(EVENT_TIMEOUT_MS);
  try {
    await stream.opened;
    // Listing the challenge takes a round trip to the device's node after the stream opened, so node A's
    // Redis subscription is in place before the decision is published (as it would be for a person).
    const challengeId = await account.phone.pendingChallenge(deviceOrigin);
    const decisionPath = `/device/v1/challenges/${challengeId}/decision`;
    const jws = await account.phone.sign('POST', decisionPath, { decision: 'approve', number });
    const started = performance.now();
    const [answer, decision] = await Promise.all([account.phone.send(deviceOrigin, 'POST', decisionPath, jws), stream.decision]);
    if (answer.status !== 200) return { sample: null, failure: `approval answered ${answer.status} ${answer.body}` };
    if (!decision) return { sample: null, failure: 'no decision event' };
    if (decision.status !== 'approved') return { sample: null, failure: `decision event ${decision.status}` };
    if (!(await browser.complete())) return { sample: null, failure: 'the sign-in did not complete after the approval' };
    return { sample: { eventMs: decision.at - started, answerMs: answer.at - started } };
  } finally {
    stream.close();
  }
}

interface LatencyResult {
  samples: Sample[];
  failures: Map<string, number>;
}

/** `count` samples one at a time (so each is the time of one approval, not a queue), after a warm-up. */
async function measureLatency(rows: Array<{ signIn: string; device: string }>, rotation: Rotation, count: number): Promise<LatencyResult[]> {
  const results = rows.map(() => ({ samples: [] as Sample[], failures: new Map<string, number>() }));
  for (let i = 0; i < WARM_UP + count; i++) {
    // Rows interleaved, so drift in the machine's speed affects them alike.
    for (const [r, row] of rows.entries()) {
      const account = await rotation.next();
      const outcome = await sample(row.signIn, row.device, account).catch((error: Error) => ({ sample: null, failure: error.message }));
      // From when the sample ended, which is after its push was sent: the server counts from the push.
      account.lastUsed = performance.now();
      if (i < WARM_UP) {
        if (!outcome.sample) throw new Error(`a warm-up sample failed: ${outcome.failure}`);
        continue;
      }
      if (outcome.sample) results[r]!.samples.push(outcome.sample);
      else results[r]!.failures.set(outcome.failure!, (results[r]!.failures.get(outcome.failure!) ?? 0) + 1);
    }
  }
  return results;
}

const latencyRow = (r: LatencyResult) => {
  const events = r.samples.map((s) => s.eventMs);
  const answers = r.samples.map((s) => s.answerMs);
  const early = r.samples.filter((s) => s.eventMs <= s.answerMs).length;
  const failed = [...r.failures].map(([why, n]) => `${n}× ${why}`).join('; ');
  return (
    `p50 ${fmt(percentile(events, 50))} ms  p99 ${fmt(percentile(events, 99))} ms  max ${fmt(Math.max(...events))} ms   (n=${events.length}` +
    `${failed ? `, failed: ${failed}` : ''}; the app's answer p50 ${fmt(percentile(answers, 50))} ms, the event came first in ${early})`
  );
};

/** Runs `task` over `items` with `workers` callers at a time. */
async function pool<T>(items: T[], workers: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(workers, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await task(items[i]!, i);
      }
    }),
  );
}

interface CapacityResult {
  requested: number;
  atPushStep: number;
  opened: number;
  stillOpen: number;
  openErrors: Map<string, number>;
  signInSeconds: number;
  openSeconds: number;
  rss: { before: number | null; atPushStep: number | null; open: number | null; quiet: number | null; after: number | null };
  heap: { before: number | null; atPushStep: number | null; open: number | null; quiet: number | null; after: number | null };
  serverFds: number | null;
  serverFdLimit: string | null;
  benchFds: number | null;
  benchFdLimit: string | null;
  approved: number;
  approveErrors: Map<string, number>;
  received: number;
  otherStatuses: Map<string, number>;
  approveSeconds: number;
  eventMs: number[];
}

/**
 * Capacity: every account signs in to the push step (distinct users: one pending push per user), then
 * opens its wait page's event stream and keeps it open; the server's RSS is read before, at the push step
 * and with the streams open. Then every phone approves (`concurrency` at a time) and each stream must
 * receive its decision.
 */
async function capacity(node: Node, accounts: Account[]): Promise<CapacityResult> {
  const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  await sleep(1000); // let earlier garbage be collected before the first reading
  const before = await rssMiB(node.pid);
  const heapBefore = await heapUsedMiB(node.metricsOrigin);

  process.stderr.write(`capacity: ${accounts.length} sign-ins to the push step at concurrency ${concurrency} …\n`);
  const flows: Array<{ account: Account; browser: Browser; number: string; stream?: WaitStream; approvedAt?: number }> = [];
  const signInErrors = new Map<string, number>();
  let started = performance.now();
  await pool(accounts, concurrency, async (account) => {
    const browser = new Browser(node.origin);
    try {
      flows.push({ account, browser, number: await browser.toPushStep(account.email) });
    } catch (error) {
      count(signInErrors, (error as Error).message.replace(/^[^:]+: /, ''));
    }
  });
  if (signInErrors.size) process.stderr.write(`sign-ins that did not reach the push step: ${[...signInErrors].map(([m, n]) => `${n}× ${m}`).join('; ')}\n`);
  const signInSeconds = (performance.now() - started) / 1000;
  await sleep(1000);
  const atPushStep = await rssMiB(node.pid);
  const heapAtPushStep = await heapUsedMiB(node.metricsOrigin);

  process.stderr.write(`capacity: opening ${flows.length} wait-page event streams …\n`);
  const openErrors = new Map<string, number>();
  started = performance.now();
  // Well past the time the set-up and approvals take; the challenges live 300 s (set below).
  const streamTimeout = 280_000;
  await pool(flows, 64, async (flow) => {
    const stream = flow.browser.openPushEvents(streamTimeout);
    try {
      await stream.opened;
      flow.stream = stream;
    } catch (error) {
      count(openErrors, (error as NodeJS.ErrnoException).code ?? (error as Error).message);
    }
  });
  const openSeconds = (performance.now() - started) / 1000;
  await sleep(2000); // held open a while; garbage collected before the reading
  const open = await rssMiB(node.pid);
  const heapOpen = await heapUsedMiB(node.metricsOrigin);
  // Then as they are held while nothing else happens: a node that has served nothing for one of its
  // 5-second checks collects its garbage once (src/cli/commands/serve.ts, collectWhenQuiet), giving
  // back what the burst of sign-ins left. Waiting pages are held for minutes, so this is the state
  // most of them are held in.
  await sleep(11_000);
  const quiet = await rssMiB(node.pid);
  const heapQuiet = await heapUsedMiB(node.metricsOrigin);
  const [serverFds, serverFdLimit, benchFds, benchFdLimit] = await Promise.all([openFds(node.pid), openFilesLimit(node.pid), openFds('self'), openFilesLimit('self')]);
  const waiting = flows.filter((f) => f.stream);
  const stillOpen = waiting.filter((f) => !f.stream!.ended).length;

  process.stderr.write(`capacity: approving ${waiting.length} from the phones at concurrency ${concurrency} …\n`);
  const approveErrors = new Map<string, number>();
  let approved = 0;
  started = performance.now();
  await pool(waiting, concurrency, async (flow) => {
    try {
      const challengeId = await flow.account.phone.pendingChallenge(node.origin);
      const decisionPath = `/device/v1/challenges/${challengeId}/decision`;
      const jws = await flow.account.phone.sign('POST', decisionPath, { decision: 'approve', number: flow.number });
      flow.approvedAt = performance.now();
      const answer = await flow.account.phone.send(node.origin, 'POST', decisionPath, jws);
      if (answer.status === 200) approved++;
      else count(approveErrors, `${answer.status} ${answer.body}`);
    } catch (error) {
      count(approveErrors, (error as Error).message);
    }
  });
  const approveSeconds = (performance.now() - started) / 1000;
  const otherStatuses = new Map<string, number>();
  const eventMs: number[] = [];
  let received = 0;
  // Every stream's decision, or how it ended, as it settles; a decision not there by then counts as missing.
  const settled = new Map<number, { status: string; at: number } | null>();
  const all = Promise.all(waiting.map((f, i) => f.stream!.decision.then((d) => settled.set(i, d))));
  await Promise.race([all, sleep(EVENT_TIMEOUT_MS)]);
  for (const [i, flow] of waiting.entries()) {
    const decision = settled.get(i);
    if (!decision) {
      count(otherStatuses, decision === undefined ? 'no event yet' : 'stream ended without an event');
      continue;
    }
    if (decision.status !== 'approved') {
      count(otherStatuses, decision.status);
      continue;
    }
    received++;
    if (flow.approvedAt !== undefined) eventMs.push(decision.at - flow.approvedAt);
  }
  for (const flow of waiting) flow.stream!.close();
  await sleep(2000);
  const after = await rssMiB(node.pid);
  const heapAfter = await heapUsedMiB(node.metricsOrigin);
  return {
    requested: accounts.length,
    atPushStep: flows.length,
    opened: waiting.length,
    stillOpen,
    openErrors,
    signInSeconds,
    openSeconds,
    rss: { before, atPushStep, open, quiet, after },
    heap: { before: heapBefore, atPushStep: heapAtPushStep, open: heapOpen, quiet: heapQuiet, after: heapAfter },
    serverFds,
    serverFdLimit,
    benchFds,
    benchFdLimit,
    approved,
    approveErrors,
    received,
    otherStatuses,
    approveSeconds,
    eventMs,
  };
}

// Another process's load skews every figure here: the 1-minute load average is printed, before and after.
const loadAtStart = os.loadavg()[0]!;
const secret = randomBytes(32).toString('base64url');
/** What every node gets: limits raised so the rotation of users never meets them, and long-lived challenges for the capacity run. */
const commonEnv = fleetEnv(secret);
const dataDirs: string[] = [];
const newDataDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-'));
  dataDirs.push(dir);
  return dir;
};
const databases: Array<{ drop(): Promise<void> }> = [];
const nodes: Node[] = [];
const rows: Array<[string, string]> = [];
let oneNodeLabel = '';
let twoNodeLabel = '';

try {
  // ── One node ─────────────────────────────────────────────────────────────────────────────────────
  const onePort = await freePort();
  const oneDb = args.database ? await freshPostgresDatabase(args.database) : null;
  if (oneDb) databases.push(oneDb);
  oneNodeLabel = oneDb ? `PostgreSQL at ${new URL(oneDb.url).host}` : 'SQLite';
  const oneEnv: NodeJS.ProcessEnv = {
    ...commonEnv,
    PORTCULLIS_DATA_DIR: await newDataDir(),
    PUBLIC_URL: `http://localhost:${onePort}`,
    ...(oneDb ? { DATABASE_URL: oneDb.url } : {}),
  };
  process.stderr.write(`one node (${oneNodeLabel}): creating ${userCount} + ${waitingCount} users with a paired phone …\n`);
  let setUpStarted = performance.now();
  const oneAccounts = await createPushAccounts(oneEnv, userCount + waitingCount, 'bench-push');
  const oneSetUpSeconds = (performance.now() - setUpStarted) / 1000;
  const one = await startNode(oneEnv, onePort);
  nodes.push(one);
  process.stderr.write(`one node: ${samples} approvals, one at a time …\n`);
  const [oneResult] = await measureLatency([{ signIn: one.origin, device: one.origin }], new Rotation(oneAccounts.slice(0, userCount)), samples);
  rows.push([`one node (${oneNodeLabel}), approve → wait page event:`, latencyRow(oneResult!)]);
  rows.push(['  users made in the database:', `${userCount + waitingCount} in ${fmt(oneSetUpSeconds)} s`]);

  // ── Capacity, on the same node ───────────────────────────────────────────────────────────────────
  if (waitingCount > 0) {
    const c = await capacity(one, oneAccounts.slice(userCount));
    const perWaiting = (a: number | null, b: number | null) => (a === null || b === null || c.opened === 0 ? null : ((b - a) * 1024) / c.opened);
    const tally = (map: Map<string, number>) => [...map].map(([k, n]) => `${n}× ${k}`).join('; ');
    const rate = c.atPushStep / c.signInSeconds;
    const bound =
      c.opened < c.requested
        ? `errors: ${tally(c.openErrors) || `${c.requested - c.atPushStep} sign-ins did not reach the push step`}`
        : `--waiting ${waitingCount}, nothing failed. File descriptors: server ${c.serverFds ?? 'n/a'} open of ${c.serverFdLimit ?? 'n/a'}, ` +
          `this bench ${c.benchFds ?? 'n/a'} of ${c.benchFdLimit ?? 'n/a'}. Sign-ins reached the push step at ${fmt(rate)}/s and a challenge ` +
          `lives at most 300 s, so from a standing start about ${fmt(rate * 300, 0)} can wait at once`;
    rows.push([
      'one node, waiting sign-ins held open:',
      `${c.opened} of ${c.requested}, ${c.stillOpen} still open after 2 s (sign-ins to the push step ${fmt(c.signInSeconds)} s at concurrency ${concurrency}; streams opened in ${fmt(c.openSeconds)} s)`,
    ]);
    rows.push([
      '  server RSS before / at push step / streams open / held, node quiet / after:',
      `${fmt(c.rss.before, 0)} / ${fmt(c.rss.atPushStep, 0)} / ${fmt(c.rss.open, 0)} / ${fmt(c.rss.quiet, 0)} / ${fmt(c.rss.after, 0)} MiB`,
    ]);
    rows.push([
      '  V8 heap used, the same five:',
      `${fmt(c.heap.before, 0)} / ${fmt(c.heap.atPushStep, 0)} / ${fmt(c.heap.open, 0)} / ${fmt(c.heap.quiet, 0)} / ${fmt(c.heap.after, 0)} MiB`,
    ]);
    rows.push([
      '  RSS per waiting sign-in:',
      `${fmt(perWaiting(c.rss.before, c.rss.open))} KiB in all, of which the open event stream ${fmt(perWaiting(c.rss.atPushStep, c.rss.open))} KiB ` +
        `(V8 heap: ${fmt(perWaiting(c.heap.before, c.heap.open))} KiB and ${fmt(perWaiting(c.heap.atPushStep, c.heap.open))} KiB); ` +
        `held with the node quiet, ${fmt(perWaiting(c.rss.before, c.rss.quiet))} KiB in all`,
    ]);
    rows.push(['  bound by:', bound]);
    rows.push([
      '  decisions received after approval:',
      `${c.received} of ${c.opened} (${c.approved} approvals answered 200 in ${fmt(c.approveSeconds)} s at concurrency ${concurrency}` +
        `${c.approveErrors.size ? `; refused: ${tally(c.approveErrors)}` : ''}${c.otherStatuses.size ? `; other: ${tally(c.otherStatuses)}` : ''})`,
    ]);
    rows.push([
      '  approve → event with them all open:',
      `p50 ${fmt(percentile(c.eventMs, 50))} ms  p99 ${fmt(percentile(c.eventMs, 99))} ms   (approvals ${concurrency} at a time)`,
    ]);
  }
  await stopNode(one);

  // ── Two nodes: PostgreSQL + Redis ───────────────────────────────────────────────────────────────
  const adminUrl = args.database ?? DEFAULT_POSTGRES;
  const [pgUp, redisUp] = await Promise.all([postgresAnswers(adminUrl), redisAnswers(args.redis)]);
  if (!pgUp || !redisUp) {
    rows.push(['two nodes:', `skipped (${[!pgUp && `no PostgreSQL at ${new URL(adminUrl).host}`, !redisUp && `no Redis at ${new URL(args.redis).host}`].filter(Boolean).join(', ')})`]);
  } else {
    const twoDb = await freshPostgresDatabase(adminUrl);
    databases.push(twoDb);
    twoNodeLabel = `PostgreSQL at ${new URL(twoDb.url).host} + Redis at ${new URL(args.redis).host}`;
    const [portA, portB] = [await freePort(), await freePort()];
    // Both nodes serve one site behind a load balancer: one public address and one secret.
    const twoEnv: NodeJS.ProcessEnv = { ...commonEnv, DATABASE_URL: twoDb.url, PUBLIC_URL: `http://localhost:${portA}` };
    process.stderr.write(`two nodes (${twoNodeLabel}): creating ${userCount} users with a paired phone …\n`);
    setUpStarted = performance.now();
    const twoAccounts = await createPushAccounts({ ...twoEnv, PORTCULLIS_DATA_DIR: await newDataDir() }, userCount, 'bench-push');
    const twoSetUpSeconds = (performance.now() - setUpStarted) / 1000;
    const redisEnv = { ...twoEnv, REDIS_URL: args.redis };
    const [a, b] = await Promise.all([
      startNode({ ...redisEnv, PORTCULLIS_DATA_DIR: await newDataDir() }, portA),
      startNode({ ...redisEnv, PORTCULLIS_DATA_DIR: await newDataDir() }, portB),
    ]);
    nodes.push(a, b);
    process.stderr.write(`two nodes: ${samples} approvals through node B and ${samples} through node A, one at a time …\n`);
    const [across, same] = await measureLatency(
      [
        { signIn: a.origin, device: b.origin },
        { signIn: a.origin, device: a.origin },
      ],
      new Rotation(twoAccounts),
      samples,
    );
    rows.push(['two nodes, sign-in on A, approval to B:', latencyRow(across!)]);
    rows.push(['  same set-up, approval to A itself:', latencyRow(same!)]);
    rows.push(['  users made in the database:', `${userCount} in ${fmt(twoSetUpSeconds)} s`]);
    await Promise.all([stopNode(a), stopNode(b)]);
  }

  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  process.stdout.write(
    `\nbench/push  (node ${process.version}, ${os.availableParallelism()} CPUs, load ${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}, ` +
      `one node on ${oneNodeLabel}${twoNodeLabel ? `, two nodes on ${twoNodeLabel}` : ''}, ${samples} samples each, ${userCount} users rotated)\n`,
  );
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}${value}\n`);
} catch (error) {
  for (const node of nodes) if (node.log().trim()) process.stderr.write(`server ${node.origin} log:\n${node.log()}\n`);
  throw error;
} finally {
  agent.destroy();
  await Promise.all(nodes.map((node) => stopNode(node)));
  for (const database of databases) await database.drop();
  for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
}
