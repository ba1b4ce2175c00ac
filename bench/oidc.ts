/**
 * OpenID Connect benchmark (issue #13 point 9): refresh-token grants and client-credentials grants per
 * second, and per CPU of the server, against Keycloak's sizing guide (120 of each per second per vCPU)
 * and a goal of five times that (600/s per CPU); and complete authorization-code flows with a password
 * sign-in per second, as a share of bench/sign-in's password sign-ins measured in the same run on the
 * same server. With each grant's cost: SQL statements (and Redis commands) per grant, and server CPU per
 * grant. It prints figures and never fails on a time: timings depend on the machine.
 *
 *   npm run bench:oidc -- [--seconds 10] [--rounds 5] [--concurrency N] [--sign-in-concurrency N]
 *                         [--database all|sqlite|postgres://…] [--redis redis://127.0.0.1:6379/0]
 *
 * Targets: SQLite; PostgreSQL (a fresh database on the --database server, or 127.0.0.1:5432, dropped
 * afterwards); PostgreSQL + Redis (REDIS_URL: the short-lived models, among them access tokens and client
 * credentials, go to Redis; refresh tokens and grants stay in the database). `--database sqlite` runs
 * SQLite alone, `--database postgres://…` the two PostgreSQL targets; a target whose server does not answer
 * is skipped with a note.
 *
 * The server is bench/oidc-server.ts in a child process: `portcullis serve --demo`'s start-up (the real
 * buildApp, listening on a port) plus two clients and counters on the database and Redis drivers. The load
 * generator is this process: bench/lib.ts's LeanConnection (keep-alive HTTP/1.1 over TCP, one request at a
 * time per connection; node:http's client or undici would take about three times the CPU per request from
 * the 2 cores the server shares). "Per CPU" is therefore the server's own CPU time over the window
 * (process.cpuUsage() in the server: all its threads, user + system), never wall time × CPUs: grants per
 * CPU-second of the Portcullis process. PostgreSQL's own CPU (its backends for this database, from /proc)
 * and this process's are printed beside it.
 *
 * The phases run in turns (`--rounds`, each phase `seconds / rounds` per round), so a change in the
 * machine's speed (other processes) weighs on all of them alike.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  closedLoop,
  benchServerEnv,
  closeIdleConnections,
  cpuMsOf,
  DEFAULT_POSTGRES,
  DEFAULT_REDIS,
  freePort,
  freshDatabase,
  LeanConnection,
  ownCpuMs,
  passwordSignIn,
  percentile,
  postgresAnswers,
  redisAnswers,
  SignInBrowser,
  sleep,
  withBrowser,
  type HttpResponse,
  type Target,
} from './lib.js';
import type { ServerReading, ServerReady } from './oidc-server.js';
import { DEMO_PASSWORD } from '../src/app/demo.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Keycloak's sizing guide: refresh-token and client-credentials grants per second per vCPU. */
const KEYCLOAK_PER_VCPU = 120;
const GOAL_PER_CPU = 5 * KEYCLOAK_PER_VCPU;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
    // Grants at once: enough to keep the server's event loop busy while others wait on the database.
    concurrency: { type: 'string', default: String(4 * os.availableParallelism()) },
    // As bench/sign-in: two sign-ins per CPU, so that the hashing threads are never idle.
    'sign-in-concurrency': { type: 'string', default: String(2 * os.availableParallelism()) },
    database: { type: 'string', default: 'all' },
    redis: { type: 'string', default: DEFAULT_REDIS },
    // Which measurements to run (for profiling one of them): refresh, client-credentials, code-flow, sign-in.
    phases: { type: 'string', default: 'refresh,refresh-es256,client-credentials,code-flow,sign-in' },
    // Write a V8 CPU profile of each server into this directory (node --cpu-prof), for where the time goes.
    profile: { type: 'string' },
  },
});
const PHASES = ['refresh', 'refresh-es256', 'client-credentials', 'code-flow', 'sign-in'] as const;
const phasesToRun = new Set(args.phases.split(',').map((name) => name.trim()));
for (const name of phasesToRun) if (!(PHASES as readonly string[]).includes(name)) throw new Error(`--phases: ${name} is not one of ${PHASES.join(', ')}`);
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const concurrency = Number(args.concurrency);
const signInConcurrency = Number(args['sign-in-concurrency']);
if (!(seconds > 0) || ![rounds, concurrency, signInConcurrency].every((n) => Number.isInteger(n) && n >= 1)) {
  throw new Error('--seconds must be > 0; --rounds, --concurrency and --sign-in-concurrency whole numbers ≥ 1');
}
if (args.database !== 'all' && args.database !== 'sqlite' && !/^postgres(ql)?:\/\//.test(args.database)) {
  throw new Error('--database must be all, sqlite or a postgres:// address (of a server where a database can be created)');
}
if (!/^rediss?:\/\//.test(args.redis)) throw new Error('--redis must be a redis:// address');

const fmt = (n: number | null, digits = 1) => (n === null || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const median = (xs: number[]) => percentile(xs, 50);
const base64url = (bytes: Buffer) => bytes.toString('base64url');

/**
 * Hands out accounts with a password and no second method, one sign-in in flight per account: the server
 * checks one password attempt at a time per address and answers a second at once as busy.
 */
class Accounts {
  private readonly free: string[];
  constructor(emails: string[]) {
    this.free = [...emails];
  }
  async with<T>(use: (email: string) => Promise<T>): Promise<T> {
    const email = this.free.shift();
    if (email === undefined) throw new Error('more sign-ins at once than accounts: raise BENCH_ACCOUNTS');
    try {
      return await use(email);
    } finally {
      this.free.push(email);
    }
  }
}

// ── The server ──────────────────────────────────────────────────────────────────────────────────────

interface Server {
  child: ChildProcess;
  ready: ServerReady;
  read(): Promise<ServerReading>;
  log(): string;
}

async function startServer(env: NodeJS.ProcessEnv): Promise<Server> {
  const profile = args.profile ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(args.profile)] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', path.join(ROOT, 'bench/oidc-server.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let log = '';
  const keep = (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const waiting = new Map<number, (reading: ServerReading) => void>();
  let nextId = 0;
  const ready = await new Promise<ServerReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 120 s:\n${log}`)), 120_000);
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}:\n${log}`)));
    child.on('message', (message: { type: string; id?: number; reading?: ServerReading }) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message as unknown as ServerReady);
      } else if (message.type === 'reading') {
        waiting.get(message.id!)?.(message.reading!);
        waiting.delete(message.id!);
      }
    });
  });
  return {
    child,
    ready,
    log: () => log,
    read: () =>
      new Promise((resolve) => {
        const id = nextId++;
        waiting.set(id, resolve);
        child.send({ type: 'read', id });
      }),
  };
}

async function stopServer(server: Server | undefined): Promise<void> {
  const child = server?.child;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
  child.kill('SIGTERM');
  if (!(await Promise.race([exited, sleep(10_000).then(() => false)]))) child.kill('SIGKILL');
}

/**
 * CPU time of the PostgreSQL backends serving one database, from /proc (the server is on this machine):
 * the backends found at the start, read again at the end, and those that started in between, whole.
 */
class PostgresCpu {
  private constructor(private readonly client: pg.Client) {}

  static async open(url: string): Promise<PostgresCpu | null> {
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname)) return null;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return new PostgresCpu(client);
  }

  async backends(): Promise<Map<number, number | null>> {
    const { rows } = await this.client.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    return new Map(await Promise.all(rows.map(async ({ pid }) => [pid, await cpuMsOf(pid)] as [number, number | null])));
  }

  static delta(before: Map<number, number | null>, after: Map<number, number | null>): number | null {
    let sum = 0;
    for (const [pid, ms] of after) {
      if (ms === null) return null;
      sum += ms - (before.get(pid) ?? 0);
    }
    return sum;
  }

  close(): Promise<void> {
    return this.client.end();
  }
}

// ── The protocol, as an application and a browser speak it ─────────────────────────────────────────

interface TokenAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** A client's request to /oidc/token, authenticated with client_secret_basic (RFC 6749 §2.3.1). */
async function tokenRequest(connection: LeanConnection, client: { clientId: string; secret: string }, params: Record<string, string>): Promise<TokenAnswer> {
  const body = new URLSearchParams(params).toString();
  const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.secret)}`).toString('base64');
  const response = await connection.send('POST', '/oidc/token', {
    authorization: `Basic ${basic}`,
    'content-type': 'application/x-www-form-urlencoded',
    'content-length': String(Buffer.byteLength(body)),
    accept: 'application/json',
  }, body);
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(response.body) as Record<string, unknown>;
  } catch {
    // Not JSON: the status says what went wrong.
  }
  return { status: response.status, body: parsed };
}

/** Keep-alive connections for the applications' back channel (the token endpoint). */
const backChannel: LeanConnection[] = [];
async function withBackChannel<T>(origin: string, use: (connection: LeanConnection) => Promise<T>): Promise<T> {
  const connection = backChannel.pop() ?? new LeanConnection(new URL(origin));
  try {
    return await use(connection);
  } finally {
    backChannel.push(connection);
  }
}

type App = ServerReady['app'];

/**
 * An authorization request (PKCE S256, state) in `browser`, followed through every redirect: the
 * interaction, and — when it asks for a sign-in — the sign-in pages as bench/sign-in takes them (GET the
 * page, POST the email, POST the password). A password-only person is offered to set up a second method
 * (the "get started" page); they skip it, as its link does, back to the interaction. Ends at the
 * application's redirect URI: the code and the verifier, or null on anything unexpected.
 */
async function authorize(origin: string, browser: SignInBrowser, app: App, scope: string, email: string | null, prompt?: string): Promise<{ code: string; verifier: string } | null> {
  const verifier = base64url(randomBytes(32));
  const state = base64url(randomBytes(16));
  const query = new URLSearchParams({
    client_id: app.clientId,
    redirect_uri: app.redirectUri,
    response_type: 'code',
    scope,
    state,
    code_challenge: base64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    ...(prompt ? { prompt } : {}),
  });
  let response: HttpResponse = await browser.send('GET', `/oidc/auth?${query}`);
  for (let hops = 0; hops < 16; hops++) {
    if (response.status !== 303 && response.status !== 302) return null;
    const location = response.location ?? '';
    if (location.startsWith(`${app.redirectUri}?`)) {
      const back = new URL(location).searchParams;
      const code = back.get('code');
      return code && back.get('state') === state ? { code, verifier } : null;
    }
    const url = new URL(location, origin);
    if (url.origin !== new URL(origin).origin) return null;
    if (url.pathname === '/sign-in') {
      const returnTo = url.searchParams.get('returnTo');
      if (email === null || !returnTo || !(await browser.startSignIn(email, url.pathname + url.search, returnTo))) return null;
      response = await browser.submitPassword(DEMO_PASSWORD);
      if (response.status !== 303 || !browser.hasSession()) return null;
      const after = new URL(response.location ?? '', origin);
      if (after.pathname === '/security-info/get-started') {
        if (after.searchParams.get('returnTo') !== returnTo) return null;
        response = await browser.send('GET', returnTo);
      }
      continue;
    }
    response = await browser.send('GET', url.pathname + url.search);
  }
  return null;
}

/** Redeems a code at the token endpoint (RFC 6749 §4.1.3, with the PKCE verifier). */
function redeem(origin: string, app: App, grant: { code: string; verifier: string }): Promise<TokenAnswer> {
  return withBackChannel(origin, (connection) =>
    tokenRequest(connection, app, { grant_type: 'authorization_code', code: grant.code, redirect_uri: app.redirectUri, code_verifier: grant.verifier }),
  );
}

/** A complete authorization-code flow with a password sign-in, in a fresh browser; ms, or null on failure. */
function codeFlow(origin: string, app: App, email: string): Promise<number | null> {
  return withBrowser(origin, async (browser) => {
    const started = performance.now();
    const grant = await authorize(origin, browser, app, 'openid email profile', email);
    if (!grant) return null;
    const tokens = await redeem(origin, app, grant);
    const ok = tokens.status === 200 && typeof tokens.body.id_token === 'string' && typeof tokens.body.access_token === 'string';
    return ok ? performance.now() - started : null;
  });
}

/** One refresh chain: its own connection and its current refresh token, replaced by each refresh. */
interface Chain {
  connection: LeanConnection;
  refreshToken: string;
  /** The one before the current, to check reuse detection at the end. */
  previous: string | null;
}

// ── Measurements ────────────────────────────────────────────────────────────────────────────────────

/** One measurement, summed over its rounds. */
interface Phase {
  name: string;
  latencies: number[];
  failures: number;
  elapsedMs: number;
  serverCpuMs: number;
  clientCpuMs: number;
  postgresCpuMs: number | null;
  statements: number;
  redisCommands: number;
  redisRoundTrips: number;
  bySql: Map<string, number>;
  sqliteMs: Map<string, number>;
  byRedis: Map<string, number>;
}
const newPhase = (name: string): Phase => ({
  name,
  latencies: [],
  failures: 0,
  elapsedMs: 0,
  serverCpuMs: 0,
  clientCpuMs: 0,
  postgresCpuMs: 0,
  statements: 0,
  redisCommands: 0,
  redisRoundTrips: 0,
  bySql: new Map(),
  sqliteMs: new Map(),
  byRedis: new Map(),
});
const addCounts = (into: Map<string, number>, before: Record<string, number>, after: Record<string, number>) => {
  for (const [key, n] of Object.entries(after)) {
    const delta = n - (before[key] ?? 0);
    if (delta) into.set(key, (into.get(key) ?? 0) + delta);
  }
};

async function runPhase(into: Phase, server: Server, postgres: PostgresCpu | null, workers: number, ms: number, task: () => Promise<number | null | undefined>) {
  const [before, pgBefore] = await Promise.all([server.read(), postgres?.backends() ?? null]);
  const clientBefore = ownCpuMs();
  const result = await closedLoop(workers, ms, task);
  const clientAfter = ownCpuMs();
  const [after, pgAfter] = await Promise.all([server.read(), postgres?.backends() ?? null]);
  into.latencies.push(...result.latencies);
  into.failures += result.failures;
  into.elapsedMs += result.elapsedMs;
  into.serverCpuMs += after.cpuMs - before.cpuMs;
  into.clientCpuMs += clientAfter - clientBefore;
  const pgDelta = pgBefore && pgAfter ? PostgresCpu.delta(pgBefore, pgAfter) : null;
  into.postgresCpuMs = into.postgresCpuMs === null || pgDelta === null ? null : into.postgresCpuMs + pgDelta;
  into.statements += after.statements - before.statements;
  into.redisCommands += after.redisCommands - before.redisCommands;
  into.redisRoundTrips += after.redisRoundTrips - before.redisRoundTrips;
  addCounts(into.bySql, before.bySql, after.bySql);
  addCounts(into.sqliteMs, before.sqliteMs, after.sqliteMs);
  addCounts(into.byRedis, before.byRedisCommand, after.byRedisCommand);
}

const perSecond = (phase: Phase) => phase.latencies.length / (phase.elapsedMs / 1000);
/** Successful operations per CPU-second of the server process. */
const perCpu = (phase: Phase) => phase.latencies.length / (phase.serverCpuMs / 1000);
const attempts = (phase: Phase) => phase.latencies.length + phase.failures;

/**
 * The statements of a phase per operation, most frequent first, as `n × SQL`; on SQLite, which runs in the
 * server's thread, with the ms they took per operation.
 */
function statementMix(phase: Phase, limit = 14): string[] {
  const n = attempts(phase);
  return [...phase.bySql]
    .filter(([, count]) => count / n >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([text, count]) => {
      const ms = phase.sqliteMs.get(text);
      return `${fmt(count / n, 2).padStart(6)} ×${ms === undefined ? '' : ` ${fmt(ms / n, 3).padStart(6)} ms`}  ${text.replace(/\s+/g, ' ')}`;
    });
}
function redisMix(phase: Phase): string {
  const n = attempts(phase);
  return [...phase.byRedis].sort((a, b) => b[1] - a[1]).map(([name, count]) => `${name} ${fmt(count / n, 2)}`).join(', ');
}

// ── One target ──────────────────────────────────────────────────────────────────────────────────────

interface TargetSpec {
  label: string;
  target: Target;
  redisUrl: string | null;
}

async function runOn(spec: TargetSpec): Promise<void> {
  const loadAtStart = os.loadavg()[0]!;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-oidc-'));
  const database = await freshDatabase(spec.target, dataDir);
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...benchServerEnv({ dataDir, port, origin, databaseUrl: database.url }),
    BENCH_ACCOUNTS: String(Math.max(32, 2 * signInConcurrency)),
    ...(spec.redisUrl ? { REDIS_URL: spec.redisUrl } : { REDIS_URL: '' }),
  };

  let server: Server | undefined;
  let postgres: PostgresCpu | null = null;
  try {
    process.stderr.write(`${spec.label}: starting the server …\n`);
    server = await startServer(env);
    const { app, service } = server.ready;
    const accounts = new Accounts(server.ready.accounts);
    postgres = spec.target.kind === 'postgres' ? await PostgresCpu.open(database.url) : null;

    // Warm-up: templates, JIT paths, prepared statements, pools; and a check that each flow works.
    for (const email of server.ready.accounts) {
      if ((await codeFlow(origin, app, email)) === null) throw new Error(`a warm-up code flow failed for ${email}:\n${server.log()}`);
      if ((await passwordSignIn(origin, email, DEMO_PASSWORD)) === null) throw new Error(`a warm-up sign-in failed for ${email}:\n${server.log()}`);
    }
    const warmConnection = new LeanConnection(new URL(origin));
    for (let i = 0; i < 50; i++) {
      const answer = await tokenRequest(warmConnection, service, { grant_type: 'client_credentials', scope: service.scope });
      if (answer.status !== 200 || answer.body.scope !== service.scope) throw new Error(`a client credentials grant answered ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    warmConnection.close();

    // The refresh chains: one person signs in once through the code flow with offline_access (which needs
    // prompt=consent, OpenID Connect Core 1.0 §11); the browser's session then authorizes again without a
    // sign-in for each further chain. Every chain's refresh token belongs to this person's one grant per
    // application: the RS256 one (every client's default), and the same application registered with
    // `--id-token-alg ES256`.
    const person = server.ready.accounts[0]!;
    const browser = new SignInBrowser(origin);
    const refreshChains = async (client: typeof app, signInFirst: boolean) => {
      const chains: Chain[] = [];
      for (let i = 0; i < concurrency; i++) {
        const grant = await authorize(origin, browser, client, 'openid offline_access', i === 0 && signInFirst ? person : null, 'consent');
        const tokens = grant ? await redeem(origin, client, grant) : null;
        if (!tokens || tokens.status !== 200 || typeof tokens.body.refresh_token !== 'string') {
          throw new Error(`no refresh token for chain ${i}: ${tokens?.status} ${JSON.stringify(tokens?.body)}\n${server!.log()}`);
        }
        chains.push({ connection: new LeanConnection(new URL(origin)), refreshToken: tokens.body.refresh_token, previous: null });
      }
      const counted = { idTokens: 0 };
      const idleChains = [...chains];
      const run = async (): Promise<number | null> => {
        const chain = idleChains.pop()!;
        try {
          const started = performance.now();
          const answer = await tokenRequest(chain.connection, client, { grant_type: 'refresh_token', refresh_token: chain.refreshToken });
          const next = answer.body.refresh_token;
          // Rotation (docs/oidc.md#the-grants): each refresh gives a new refresh token, used for the next.
          if (answer.status !== 200 || typeof next !== 'string' || next === chain.refreshToken || typeof answer.body.access_token !== 'string') return null;
          if (typeof answer.body.id_token === 'string') counted.idTokens++;
          chain.previous = chain.refreshToken;
          chain.refreshToken = next;
          return performance.now() - started;
        } finally {
          idleChains.push(chain);
        }
      };
      for (let i = 0; i < 5 * concurrency; i++) if ((await run()) === null) throw new Error(`a warm-up refresh failed:\n${server!.log()}`);
      counted.idTokens = 0;
      return { chains, run, counted };
    };
    const rs256 = await refreshChains(app, true);
    const es256 = await refreshChains(server.ready.appEs256, false);
    const chains = rs256.chains;
    const refresh = rs256.run;

    const serviceConnections = Array.from({ length: concurrency }, () => new LeanConnection(new URL(origin)));
    const clientCredentials = async (): Promise<number | null> => {
      const connection = serviceConnections.pop()!;
      try {
        const started = performance.now();
        const answer = await tokenRequest(connection, service, { grant_type: 'client_credentials', scope: service.scope });
        return answer.status === 200 && typeof answer.body.access_token === 'string' && answer.body.scope === service.scope ? performance.now() - started : null;
      } finally {
        serviceConnections.push(connection);
      }
    };

    const refreshes = newPhase('refresh');
    const refreshesEs256 = newPhase('refresh, ES256');
    const credentials = newPhase('client credentials');
    const flows = newPhase('code flows');
    const signIns = newPhase('sign-ins');
    const sliceMs = (seconds * 1000) / rounds;
    for (let round = 1; round <= rounds; round++) {
      process.stderr.write(`${spec.label}: round ${round} of ${rounds}: ${[...phasesToRun].join(', ')}, ${fmt(sliceMs / 1000)} s each …\n`);
      if (phasesToRun.has('refresh')) await runPhase(refreshes, server, postgres, concurrency, sliceMs, refresh);
      if (phasesToRun.has('refresh-es256')) await runPhase(refreshesEs256, server, postgres, concurrency, sliceMs, es256.run);
      if (phasesToRun.has('client-credentials')) await runPhase(credentials, server, postgres, concurrency, sliceMs, clientCredentials);
      if (phasesToRun.has('code-flow')) await runPhase(flows, server, postgres, signInConcurrency, sliceMs, () => accounts.with((email) => codeFlow(origin, app, email)));
      if (phasesToRun.has('sign-in')) await runPhase(signIns, server, postgres, signInConcurrency, sliceMs, () => accounts.with((email) => passwordSignIn(origin, email, DEMO_PASSWORD)));
    }

    // Reuse detection is on (RFC 9700 §4.14.2): a used refresh token sent again is refused and revokes the
    // grant, so the chain's current token stops working too. Checked after the measurement, as it ends
    // every chain (they share one grant).
    const chain = chains[0]!;
    let reuse = 'not tried';
    if (chain.previous) {
      const again = await tokenRequest(chain.connection, app, { grant_type: 'refresh_token', refresh_token: chain.previous });
      const current = await tokenRequest(chain.connection, app, { grant_type: 'refresh_token', refresh_token: chain.refreshToken });
      reuse =
        again.status === 400 && again.body.error === 'invalid_grant' && current.status === 400
          ? 'refused (invalid_grant), and the current token of the grant with it'
          : `NOT REFUSED: reused ${again.status} ${String(again.body.error ?? '')}, current ${current.status}`;
    }
    for (const c of [...chains.map((x) => x.connection), ...es256.chains.map((x) => x.connection), ...serviceConnections]) c.close();

    printTable(spec, loadAtStart, { refreshes, refreshesEs256, credentials, flows, signIns }, { idTokensInRefresh: rs256.counted.idTokens, idTokensInRefreshEs256: es256.counted.idTokens, reuse });
  } finally {
    await stopServer(server);
    await postgres?.close();
    closeIdleConnections();
    for (const c of backChannel.splice(0)) c.close();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function printTable(
  spec: TargetSpec,
  loadAtStart: number,
  phases: { refreshes: Phase; refreshesEs256: Phase; credentials: Phase; flows: Phase; signIns: Phase },
  notes: { idTokensInRefresh: number; idTokensInRefreshEs256: number; reuse: string },
): void {
  const { refreshes, refreshesEs256, credentials, flows, signIns } = phases;
  const rate = (phase: Phase) =>
    `${fmt(perSecond(phase))} /s   p50 ${fmt(median(phase.latencies), 2)} ms  p99 ${fmt(percentile(phase.latencies, 99), 2)} ms   (${phase.latencies.length} ok, ${phase.failures} failed)`;
  const goal = (phase: Phase) => {
    const value = perCpu(phase);
    // The database's CPU counted too, where it can be read (PostgreSQL's backends for this database).
    const withDatabase =
      phase.postgresCpuMs === null || spec.target.kind !== 'postgres' ? '' : `; with PostgreSQL's CPU counted too: ${fmt(phase.latencies.length / ((phase.serverCpuMs + phase.postgresCpuMs) / 1000), 0)} /s per CPU`;
    return (
      `${fmt(value, 0)} /s per CPU   (Keycloak ${KEYCLOAK_PER_VCPU}/s per vCPU: ×${fmt(value / KEYCLOAK_PER_VCPU, 1)}; ` +
      `goal ≥ ${GOAL_PER_CPU}: ${value >= GOAL_PER_CPU ? 'MET' : 'NOT MET'}${withDatabase})`
    );
  };
  const cost = (phase: Phase) => {
    const n = attempts(phase);
    const pgCpu = phase.postgresCpuMs === null ? '' : `, PostgreSQL ${fmt(phase.postgresCpuMs / n, 2)} ms`;
    return `server CPU ${fmt(phase.serverCpuMs / n, 2)} ms (${fmt(phase.serverCpuMs / phase.elapsedMs, 2)} CPUs busy)${pgCpu}, bench client ${fmt(phase.clientCpuMs / n, 2)} ms`;
  };
  const store = (phase: Phase) => {
    const n = attempts(phase);
    const redis = spec.redisUrl ? `; Redis ${fmt(phase.redisCommands / n, 1)} commands in ${fmt(phase.redisRoundTrips / n, 1)} round trips` : '';
    return `${fmt(phase.statements / n, 1)} SQL statements${spec.target.kind === 'postgres' ? ' (one round trip each)' : ''}${redis}`;
  };
  const ran = (phase: Phase) => attempts(phase) > 0;
  const rows: Array<[string, string]> = [];
  if (ran(refreshes)) {
    rows.push(
      ['refresh-token grants (rotating):', rate(refreshes)],
      ['  per CPU of the server:', goal(refreshes)],
      ['  per grant:', `${store(refreshes)}; ${cost(refreshes)}`],
      ['  with an ID token:', `${notes.idTokensInRefresh} of ${refreshes.latencies.length} (scope openid offline_access: each refresh signs a new ID token, RS256)`],
    );
  }
  if (ran(refreshesEs256)) {
    rows.push(
      ['refresh-token grants, ES256 client:', rate(refreshesEs256)],
      ['  per CPU of the server:', goal(refreshesEs256)],
      ['  per grant:', `${store(refreshesEs256)}; ${cost(refreshesEs256)}`],
      ['  with an ID token:', `${notes.idTokensInRefreshEs256} of ${refreshesEs256.latencies.length} (the same, for a client registered with --id-token-alg ES256)`],
    );
  }
  if (ran(credentials)) {
    rows.push(
      ['client-credentials grants:', rate(credentials)],
      ['  per CPU of the server:', goal(credentials)],
      ['  per grant:', `${store(credentials)}; ${cost(credentials)}`],
    );
  }
  if (ran(flows)) rows.push(['code flows with a password sign-in:', rate(flows)], ['  per flow:', `${store(flows)}; ${cost(flows)}`]);
  if (ran(signIns)) rows.push(['password sign-ins (bench/sign-in):', rate(signIns)], ['  per sign-in:', `${store(signIns)}; ${cost(signIns)}`]);
  if (ran(flows) && ran(signIns)) {
    rows.push(['code flows / password sign-ins:', `${fmt(perSecond(flows) / perSecond(signIns), 2)}   (the whole flow's rate as a share of the sign-in's alone: same server, same run)`]);
  }
  rows.push(['a used refresh token sent again:', notes.reuse]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  process.stdout.write(
    `\nbench/oidc  (node ${process.version}, ${os.availableParallelism()} CPUs, load ${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}, ${spec.label}, ` +
      `${concurrency} grants at a time, ${signInConcurrency} flows or sign-ins at a time, ${seconds} s each in ${rounds} rounds; ` +
      `"per CPU" = per CPU-second of the server process; load generator: this process, keep-alive HTTP/1.1)\n`,
  );
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}${value}\n`);
  for (const [title, phase] of [['refresh grant', refreshes], ['refresh grant (ES256)', refreshesEs256], ['client credentials grant', credentials], ['code flow', flows]] as const) {
    if (!ran(phase)) continue;
    process.stdout.write(`statements per ${title}${spec.target.kind === 'sqlite' ? ' (count, and ms in SQLite, which runs in the server\'s thread)' : ''}:\n${statementMix(phase).map((line) => `  ${line}`).join('\n')}\n`);
    if (spec.redisUrl && phase.redisCommands) process.stdout.write(`  Redis commands per ${title}: ${redisMix(phase)}\n`);
  }
}

// ── Which targets ───────────────────────────────────────────────────────────────────────────────────

const specs: TargetSpec[] = [];
const notes: string[] = [];
if (args.database === 'all' || args.database === 'sqlite') specs.push({ label: 'SQLite', target: { kind: 'sqlite' }, redisUrl: null });
if (args.database !== 'sqlite') {
  const adminUrl = args.database === 'all' ? DEFAULT_POSTGRES : args.database;
  const host = new URL(adminUrl).host;
  if (await postgresAnswers(adminUrl)) {
    specs.push({ label: `PostgreSQL at ${host}`, target: { kind: 'postgres', adminUrl }, redisUrl: null });
    if (await redisAnswers(args.redis)) specs.push({ label: `PostgreSQL at ${host} + Redis at ${new URL(args.redis).host}`, target: { kind: 'postgres', adminUrl }, redisUrl: args.redis });
    else notes.push(`PostgreSQL + Redis skipped: no Redis at ${new URL(args.redis).host}`);
  } else {
    notes.push(`PostgreSQL skipped: no PostgreSQL at ${host}`);
  }
}
for (const spec of specs) await runOn(spec);
for (const note of notes) process.stdout.write(`\n${note}\n`);
