/**
 * Sign-in benchmark: how close complete sign-ins over HTTP come to the raw argon2id verify rate (goal
 * ≥ 0.85, i.e. everything around the hash costs under 15 %), with a password alone and with a password
 * and an authenticator-app code (TOTP); the server's memory; and whether the password step's timing
 * tells a known email from an unknown one. It prints figures and never fails on a time: timings depend
 * on the machine.
 *
 *   npm run bench:sign-in -- [--seconds 10] [--rounds 5] [--concurrency N] [--samples 200] [--accounts N] [--database postgres://…]
 *
 * The raw rate, the sign-ins and a bare node:http server doing nothing but the verify are measured in
 * turns (`--rounds`, each phase `seconds / rounds` per round), so a change in the machine's speed during
 * the run (a virtual machine's neighbours) weighs on all of them alike.
 *
 * With --database, the server runs on a fresh database made on that PostgreSQL server and dropped
 * afterwards, so runs start alike and leave nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  agent,
  benchServerEnv,
  closedLoop,
  closeIdleConnections,
  cpuByCommand,
  cpuDelta,
  cpuMsOf,
  databaseCounts,
  freePort,
  freshPostgresDatabase,
  mainThreadOf,
  ownCpuMs,
  passwordSignIn,
  percentile,
  rssMiB,
  SignInBrowser as Browser,
  sleep,
  withBrowser,
  type HttpResponse,
} from './lib.js';
import { DEMO_ORGANISATIONS, DEMO_PASSWORD } from '../src/app/demo.js';
import { generateTotp, TOTP_PERIOD_SECONDS, totpStep } from '../src/core/methods/totp.js';
import { optionsSchema } from '../src/config/schema.js';
import { createPasswordHasher } from '../src/crypto/password-hasher.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_FAILURES_PER_ACCOUNT = 90; // below SIGN_IN_LOCKOUT_THRESHOLD=100, set for the server below
/**
 * A code is chosen when a sign-in starts and posted three requests later. It is chosen only while its
 * step is this far inside the server's window (now ±1 step) at both ends, so a step boundary passing in
 * between, even under queueing, cannot make a valid code expire.
 */
const CODE_WINDOW_MARGIN_MS = 3000;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
    // Sign-ins at once: two per CPU, so that while some are between requests, others keep every core
    // hashing (the server runs one hash per CPU at a time and queues the rest).
    concurrency: { type: 'string', default: String(2 * os.availableParallelism()) },
    samples: { type: 'string', default: '200' },
    accounts: { type: 'string' },
    database: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const concurrency = Number(args.concurrency);
/** The raw rate's callers: one per CPU, the most argon2id verifies this machine completes per second. */
const rawConcurrency = os.availableParallelism();
const samples = Number(args.samples);
/**
 * Accounts with an authenticator app. Each time step of an account can sign in once (replay
 * protection), and the server accepts now−1, now and now+1: an account has at least two unused steps
 * when the measurement starts and one more at each step boundary. Enough for 100 sign-ins/s.
 */
const totpAccountCount = args.accounts === undefined ? Math.max(600, Math.ceil(80 * seconds)) : Number(args.accounts);
if (
  !(seconds > 0) ||
  !Number.isInteger(rounds) ||
  rounds < 1 ||
  !Number.isInteger(concurrency) ||
  concurrency < 1 ||
  !Number.isInteger(samples) ||
  samples < 1 ||
  !Number.isInteger(totpAccountCount) ||
  totpAccountCount < 1
) {
  throw new Error('--seconds must be > 0, --rounds, --concurrency, --samples and --accounts whole numbers ≥ 1');
}
if (args.database !== undefined && !/^postgres(ql)?:\/\//.test(args.database)) throw new Error('--database must be a postgres:// address');

// The same argon2 parameters the server will use: its defaults, or what this environment overrides.
const argon2 = optionsSchema
  .pick({ PASSWORD_ARGON2_MEMORY_KIB: true, PASSWORD_ARGON2_ITERATIONS: true, PASSWORD_ARGON2_PARALLELISM: true })
  .parse(process.env);

const median = (xs: number[]) => percentile(xs, 50);

/**
 * Runs `node bin/portcullis.js …` directly (no npm, no shell), so a spawned server's pid is the process
 * that serves and its /proc entry is the one to sample.
 */
function portcullis(argv: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [path.join(ROOT, 'bin/portcullis.js'), ...argv], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Starts bench/bare-sign-in-server.ts on `port`; resolves once it listens. */
async function startBareServer(port: number, pageBytes: number, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/bare-sign-in-server.ts'), String(port), String(pageBytes), DEMO_PASSWORD], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the bare server exited with ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
  });
  return child;
}

/** Runs a CLI verb with `input` on its standard input; its standard output. */
async function runCli(argv: string[], env: NodeJS.ProcessEnv, input = ''): Promise<string> {
  const child = portcullis(argv, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin?.end(input);
  // 'close', not 'exit': the process may exit before its last output has been read from the pipe.
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`portcullis ${argv.join(' ')} exited with ${code}:\n${stdout}${stderr}`);
  return stdout;
}

/** A complete password sign-in in a fresh browser (bench/lib.ts); its duration in ms, or null if it did not succeed. */
const signIn = (origin: string, email: string) => passwordSignIn(origin, email, DEMO_PASSWORD);

/** A bench account with an authenticator app: the key its set-up page showed, and its last step used. */
interface TotpAccount {
  email: string;
  key: string;
  lastStep: number;
  /** The step of its last successful sign-in, which the server must refuse from then on. */
  signedInStep: number | null;
  busy: boolean;
}

/** What the authenticator app shows during `step` (any instant in it gives the same code). */
const codeAt = (key: string, step: number) => generateTotp(key, new Date((step + 0.5) * TOTP_PERIOD_SECONDS * 1000));

/** The steps whose codes the server will still accept when the code is posted: now ±1, less the margin. */
function acceptedSteps(now = Date.now()): { lo: number; hi: number } {
  return { lo: totpStep(new Date(now + CODE_WINDOW_MARGIN_MS)) - 1, hi: totpStep(new Date(now - CODE_WINDOW_MARGIN_MS)) + 1 };
}

/**
 * Hands out (account, step) pairs the server has not seen, round-robin: each pass over the accounts uses
 * the oldest accepted unused step of each, so an account signs in at most once per step, and its steps
 * reach the server in increasing order (one sign-in per account in flight). When every account has used
 * all its accepted steps, callers wait for the next step boundary; that wait is counted and printed.
 */
class CodeRotation {
  private cursor = 0;
  waitedMs = 0;
  constructor(private readonly accounts: TotpAccount[]) {}

  private take(): { account: TotpAccount; step: number } | null {
    const { lo, hi } = acceptedSteps();
    for (let tried = 0; tried < this.accounts.length; tried++) {
      const account = this.accounts[this.cursor]!;
      this.cursor = (this.cursor + 1) % this.accounts.length;
      const step = Math.max(account.lastStep + 1, lo);
      if (account.busy || step > hi) continue;
      account.busy = true;
      // Spent even if the sign-in fails: the server may have claimed it.
      account.lastStep = step;
      return { account, step };
    }
    return null;
  }

  /** The next pair, or null if none came before `deadline`. */
  async next(deadline: number): Promise<{ account: TotpAccount; step: number } | null> {
    const started = performance.now();
    for (;;) {
      const pair = this.take();
      if (pair || performance.now() >= deadline) {
        this.waitedMs += performance.now() - started;
        return pair;
      }
      await sleep(20);
    }
  }
}

/** A complete password + code sign-in in a fresh browser; its duration in ms, or null if it did not succeed. */
function signInWithCode(origin: string, account: TotpAccount, step: number): Promise<number | null> {
  return withBrowser(origin, async (browser) => {
  const started = performance.now();
  if (!(await browser.startSignIn(account.email))) return null;
  const afterPassword = await browser.submitPassword(DEMO_PASSWORD);
  if (afterPassword.status !== 303 || afterPassword.location !== '/sign-in/verify') return null;
  const response = await browser.submitCode(codeAt(account.key, step));
  const ok = response.status === 303 && response.location === '/account' && browser.hasSession();
  return ok ? performance.now() - started : null;
  });
}

/**
 * Sets up an imported account as its user would: the activation link (a first password), a password-only
 * sign-in, then Security info → Add sign-in method → Authenticator app, reading the key the page shows
 * under "Can't scan the QR code?" and confirming it with a code. Throws on any unexpected page.
 */
const expectation = (email: string) => (what: string, response: HttpResponse, ok: boolean) => {
  if (!ok) throw new Error(`set-up of ${email}: ${what} answered ${response.status} ${response.location ?? ''}`);
};

/** The activation link followed: the account's first password, DEMO_PASSWORD. */
async function activateAccount(browser: Browser, email: string, activationPath: string): Promise<void> {
  const expect = expectation(email);
  const activation = await browser.send('GET', activationPath);
  expect('the activation page', activation, activation.status === 200);
  const activated = await browser.send('POST', activationPath, { password: DEMO_PASSWORD, confirm: DEMO_PASSWORD });
  expect('the activation', activated, activated.status === 303);
}

async function enrolAccount(origin: string, email: string, activationPath: string): Promise<TotpAccount> {
  const browser = new Browser(origin);
  const expect = expectation(email);
  await activateAccount(browser, email, activationPath);
  if (!(await browser.startSignIn(email))) throw new Error(`set-up of ${email}: the email step failed`);
  const signedIn = await browser.submitPassword(DEMO_PASSWORD);
  expect('the password sign-in', signedIn, signedIn.status === 303 && browser.hasSession());
  // The session's CSRF seed is new since the sign-in: a page gives its token.
  const add = await browser.send('GET', '/security-info/add');
  expect('Add sign-in method', add, add.status === 200);
  const chosen = await browser.send('POST', '/security-info/add', { method: 'totp' });
  expect('choosing an authenticator app', chosen, chosen.status === 303 && /^\/security-info\/add\/[^/?]+$/.test(chosen.location ?? ''));
  const setUp = await browser.send('GET', chosen.location!);
  const key = /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(setUp.body)?.[1]?.replace(/ /g, '');
  if (!key) throw new Error(`set-up of ${email}: no key on the set-up page (${setUp.status})`);
  // The oldest step the server accepts, which leaves the most unused steps for the measurement.
  const step = acceptedSteps().lo;
  const done = await browser.send('POST', chosen.location!, { code: codeAt(key, step) });
  expect('confirming the app with a code', done, done.status === 303 && done.location === '/security-info?done=added');
  return { email, key, lastStep: step, signedInStep: null, busy: false };
}

/** One measurement, summed over its rounds. */
interface Phase {
  latencies: number[];
  failures: number;
  elapsedMs: number;
  /** CPU the serving process spent (null when it could not be read), and this process. */
  serverCpuMs: number | null;
  clientCpuMs: number;
  /** Of those, their main threads' (null when it could not be read), and the times the server's was given a CPU. */
  serverMainCpuMs: number | null;
  clientMainCpuMs: number | null;
  serverMainSlices: number | null;
  serverMainSystemMs: number | null;
  /** The server's statements, writes and round trips to the database (null when they could not be read). */
  statements: number | null;
  writes: number | null;
  roundTrips: number | null;
  /** PostgreSQL's own processes (on this machine), when the server runs on PostgreSQL. */
  postgresCpuMs: number | null;
  peakRss: number | null;
}
const newPhase = (): Phase => ({
  latencies: [],
  failures: 0,
  elapsedMs: 0,
  serverCpuMs: 0,
  clientCpuMs: 0,
  serverMainCpuMs: 0,
  clientMainCpuMs: 0,
  serverMainSlices: 0,
  statements: 0,
  writes: 0,
  roundTrips: 0,
  postgresCpuMs: 0,
  serverMainSystemMs: 0,
  peakRss: null,
});
const perSecond = (phase: Phase) => phase.latencies.length / (phase.elapsedMs / 1000);
/** CPU per attempt of the server, and of this process (client and server share the machine). */
const cpuPerAttempt = (phase: Phase) => {
  const attempts = phase.latencies.length + phase.failures;
  const per = (ms: number | null) => (ms === null ? null : ms / attempts);
  return {
    server: per(phase.serverCpuMs),
    client: per(phase.clientCpuMs),
    serverMain: per(phase.serverMainCpuMs),
    clientMain: per(phase.clientMainCpuMs),
    serverMainSlices: per(phase.serverMainSlices),
    serverMainSystem: per(phase.serverMainSystemMs),
    statements: per(phase.statements),
    writes: per(phase.writes),
    roundTrips: per(phase.roundTrips),
    postgres: per(phase.postgresCpuMs),
  };
};
/** Adds the difference `after − before` to `sum`; null once any reading was missing. */
const addDelta = (sum: number | null, before: number | null, after: number | null) =>
  sum === null || before === null || after === null ? null : sum + after - before;

/** Runs a closed loop for `ms` and adds its results, CPU and the serving process's peak RSS to `into`. */
async function runPhase(into: Phase, pid: number | null, workers: number, ms: number, task: (deadline: number) => Promise<number | null | undefined>) {
  const sampler =
    pid === null
      ? undefined
      : setInterval(() => {
          void rssMiB(pid).then((rss) => {
            if (rss !== null && (into.peakRss === null || rss > into.peakRss)) into.peakRss = rss;
          });
        }, 100);
  const readings = async () => ({
    database: pid === null ? null : await databaseCounts(metricsUrl),
    postgres: postgres ? await cpuByCommand('postgres') : null,
    server: pid === null ? null : await cpuMsOf(pid),
    serverMain: pid === null ? null : await mainThreadOf(pid),
    clientMain: await mainThreadOf(process.pid),
    client: ownCpuMs(),
  });
  const before = await readings();
  const result = await closedLoop(workers, ms, task);
  const after = await readings();
  into.clientCpuMs += after.client - before.client;
  into.serverCpuMs = addDelta(into.serverCpuMs, before.server, after.server);
  into.serverMainCpuMs = addDelta(into.serverMainCpuMs, before.serverMain?.cpuMs ?? null, after.serverMain?.cpuMs ?? null);
  into.serverMainSlices = addDelta(into.serverMainSlices, before.serverMain?.slices ?? null, after.serverMain?.slices ?? null);
  into.serverMainSystemMs = addDelta(into.serverMainSystemMs, before.serverMain?.systemMs ?? null, after.serverMain?.systemMs ?? null);
  into.postgresCpuMs =
    into.postgresCpuMs === null || !before.postgres || !after.postgres ? null : (() => {
      const delta = cpuDelta(before.postgres, after.postgres);
      return delta === null ? null : into.postgresCpuMs + delta;
    })();
  into.statements = addDelta(into.statements, before.database?.statements ?? null, after.database?.statements ?? null);
  into.writes = addDelta(into.writes, before.database?.writes ?? null, after.database?.writes ?? null);
  into.roundTrips = addDelta(into.roundTrips, before.database?.roundTrips ?? null, after.database?.roundTrips ?? null);
  into.clientMainCpuMs = addDelta(into.clientMainCpuMs, before.clientMain?.cpuMs ?? null, after.clientMain?.cpuMs ?? null);
  clearInterval(sampler);
  into.latencies.push(...result.latencies);
  into.failures += result.failures;
  into.elapsedMs += result.elapsedMs;
}

/** A password sign-in on the bare server; its duration in ms, or null if it did not succeed. */
function bareSignIn(origin: string): Promise<number | null> {
  return withBrowser(origin, async (browser) => {
    const started = performance.now();
    if (!(await browser.startSignIn('someone@example.org'))) return null;
    const response = await browser.submitPassword(DEMO_PASSWORD);
    return response.status === 303 && response.location === '/account' ? performance.now() - started : null;
  });
}

const fmt = (n: number | null, digits = 1) => (n === null || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));

// Another process's load skews every figure here: the 1-minute load average is printed, before and after.
const loadAtStart = os.loadavg()[0]!;
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-'));
const port = await freePort();
const origin = `http://localhost:${port}`;
const metricsPort = await freePort();
const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
const postgres = args.database ? await freshPostgresDatabase(args.database) : null;
const env = benchServerEnv({ dataDir, port, origin, metricsPort, ...(postgres ? { databaseUrl: postgres.url } : {}) });
const databaseLabel = postgres ? `PostgreSQL at ${new URL(postgres.url).host}` : 'SQLite';
// A run-unique tag for the unknown addresses of the enumeration samples.
const runTag = randomBytes(4).toString('hex');
/**
 * The password-only accounts: several per sign-in at once. One address is checked one attempt at a time
 * (its lease, src/app/sign-in-attempts.ts), so sign-ins sent together for one address are refused as busy
 * (429): the three demo users without a phone, used round-robin by four callers, had a third of them refused.
 */
const passwordAccountCount = 8 * concurrency;
const accounts = Array.from({ length: passwordAccountCount }, (_, i) => `bench-password-${i}@example.org`);
let server: ChildProcess | undefined;
let bare: ChildProcess | undefined;
let serverLog = '';

try {
  // The demo organisation, for the imported accounts below.
  await runCli(['demo'], env);
  // The accounts, password-only and second-factor: one import (a CLI start per account would take minutes),
  // each with a one-time activation link that the set-up below follows to set the password.
  const csv = [
    'email,name,organisation',
    ...accounts.map((email, i) => `${email},Bench password ${i},${DEMO_ORGANISATIONS[0]}`),
    ...Array.from({ length: totpAccountCount }, (_, i) => `bench-totp-${i}@example.org,Bench ${i},${DEMO_ORGANISATIONS[0]}`),
  ];
  const imported = (await runCli(['import', 'users', '-'], env, `${csv.join('\n')}\n`))
    .split('\n')
    .slice(1)
    .flatMap((line) => {
      const [email, url] = line.split(',');
      return email && url ? [{ email, activationPath: new URL(url).pathname }] : [];
    });
  if (imported.length !== passwordAccountCount + totpAccountCount) throw new Error(`imported ${imported.length} of ${passwordAccountCount + totpAccountCount} accounts`);
  const passwordActivations = imported.slice(0, passwordAccountCount);
  const totpActivations = imported.slice(passwordAccountCount);

  server = portcullis(['serve'], env);
  server.stderr?.on('data', (chunk: Buffer) => (serverLog = (serverLog + chunk.toString()).slice(-4000)));
  server.stdout?.on('data', (chunk: Buffer) => (serverLog = (serverLog + chunk.toString()).slice(-4000)));
  const serverPid = server.pid!;
  const giveUpAt = Date.now() + 60_000;
  for (let ready = false; !ready; ) {
    if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}:\n${serverLog}`);
    if (Date.now() > giveUpAt) throw new Error(`the server did not answer /healthz within 60 s:\n${serverLog}`);
    ready = await fetch(`${origin}/healthz`).then((r) => r.ok, () => false);
    if (!ready) await sleep(100);
  }
  await sleep(1000); // let start-up garbage be collected before reading the idle figure
  const idleRss = await rssMiB(serverPid);

  // Set up an authenticator app on every second-factor account over HTTP, first: the time that passes
  // before their measurement gives each account unused steps again.
  process.stderr.write(`setting up an authenticator app for ${totpAccountCount} accounts over HTTP …\n`);
  const setUpStarted = performance.now();
  const totpAccounts: TotpAccount[] = [];
  let nextToEnrol = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (nextToEnrol < totpActivations.length) {
        const { email, activationPath } = totpActivations[nextToEnrol++]!;
        totpAccounts.push(await enrolAccount(origin, email, activationPath));
      }
    }),
  );
  // The password-only accounts: their activation link (a first password), nothing more.
  for (const { email, activationPath } of passwordActivations) await activateAccount(new Browser(origin), email, activationPath);
  const setUpSeconds = (performance.now() - setUpStarted) / 1000;
  await sleep(1000); // let the set-up's garbage be collected before the raw measurement
  const setUpRss = await rssMiB(serverPid);

  // Raw argon2id in this process (the server idles meanwhile), at the server's parameters, one verify per
  // CPU at a time: the most this machine completes. More callers only queue (or, without the hasher's
  // limit, make the hashes take turns on the cores and run slower).
  const hasher = await createPasswordHasher({
    memoryKib: argon2.PASSWORD_ARGON2_MEMORY_KIB,
    iterations: argon2.PASSWORD_ARGON2_ITERATIONS,
    parallelism: argon2.PASSWORD_ARGON2_PARALLELISM,
    concurrency: rawConcurrency,
  });
  const phc = await hasher.hash(DEMO_PASSWORD);

  // Warm-up: one sign-in per account compiles templates and JIT paths; a few with a code, likewise.
  for (const email of accounts) {
    if ((await signIn(origin, email)) === null) throw new Error(`warm-up sign-in failed for ${email}:\n${serverLog}`);
  }
  const rotation = new CodeRotation(totpAccounts);
  for (let i = 0; i < Math.min(10, totpAccounts.length); i++) {
    const pair = await rotation.next(performance.now() + 60_000);
    if (!pair || (await signInWithCode(origin, pair.account, pair.step)) === null) throw new Error(`warm-up sign-in with a code failed:\n${serverLog}`);
    pair.account.busy = false;
  }
  rotation.waitedMs = 0;

  // The bare server answers with a page as long as the real sign-in page.
  const pageBytes = Buffer.byteLength((await new Browser(origin).send('GET', '/sign-in')).body);
  const bareOrigin = `http://127.0.0.1:${await freePort()}`;
  bare = await startBareServer(Number(new URL(bareOrigin).port), pageBytes, env);
  for (let i = 0; i < 20; i++) if ((await bareSignIn(bareOrigin)) === null) throw new Error('a sign-in on the bare server failed');

  const raw = newPhase();
  const bareSignIns = newPhase();
  const signIns = newPhase();
  const codeSignIns = newPhase();
  const sliceMs = (seconds * 1000) / rounds;
  let next = 0;
  for (let round = 1; round <= rounds; round++) {
    process.stderr.write(`round ${round} of ${rounds}: raw argon2id, the bare server, password sign-ins, password + code sign-ins, ${fmt(sliceMs / 1000)} s each …\n`);
    await runPhase(raw, null, rawConcurrency, sliceMs, async () => {
      const started = performance.now();
      return (await hasher.verify(phc, DEMO_PASSWORD)) ? performance.now() - started : null;
    });
    await runPhase(bareSignIns, bare.pid ?? null, concurrency, sliceMs, () => bareSignIn(bareOrigin));
    await runPhase(signIns, serverPid, concurrency, sliceMs, () => signIn(origin, accounts[next++ % accounts.length]!));
    await runPhase(codeSignIns, serverPid, concurrency, sliceMs, async (deadline) => {
      const pair = await rotation.next(deadline);
      if (!pair) return undefined;
      try {
        const latency = await signInWithCode(origin, pair.account, pair.step);
        if (latency !== null) pair.account.signedInStep = pair.step;
        return latency;
      } finally {
        pair.account.busy = false;
      }
    });
  }
  const rawCpuPerVerify = raw.clientCpuMs / raw.latencies.length;
  // The raw verifies' own threads, without this process's event loop waiting on them.
  const rawThreadsPerVerify = raw.clientMainCpuMs === null ? null : (raw.clientCpuMs - raw.clientMainCpuMs) / raw.latencies.length;
  // Replay protection was on: the code an account has just signed in with is refused when sent again.
  const replayed = totpAccounts.find((a) => a.signedInStep !== null && a.signedInStep >= acceptedSteps().lo);
  const replayedStep = replayed?.signedInStep ?? null;
  let replay = 'not tried (no recent code)';
  if (replayed && replayedStep !== null) {
    const browser = new Browser(origin);
    if (!(await browser.startSignIn(replayed.email))) throw new Error('the email step failed for the replay check');
    await browser.submitPassword(DEMO_PASSWORD);
    const response = await browser.submitCode(codeAt(replayed.key, replayedStep));
    replay = response.status === 303 ? `ACCEPTED (${response.location ?? ''})` : `refused (${response.status})`;
  }

  // Enumeration timing: one password step at a time (no queueing noise), known and unknown
  // interleaved so drift in the machine's speed affects both alike; the order within a pair alternates.
  process.stderr.write(`password step, known vs unknown email, ${samples} samples each …\n`);
  const failuresSoFar = new Map<string, number>();
  const known: number[] = [];
  const unknown: number[] = [];
  const statuses = { known: new Set<number>(), unknown: new Set<number>() };
  const wrongPasswordStep = async (email: string, kind: 'known' | 'unknown') => {
    const browser = new Browser(origin);
    if (!(await browser.startSignIn(email))) throw new Error(`email step failed for ${email}`);
    const started = performance.now();
    const response = await browser.submitPassword('not-the-password');
    (kind === 'known' ? known : unknown).push(performance.now() - started);
    statuses[kind].add(response.status);
  };
  for (let i = 0; i < samples; i++) {
    const email = accounts[i % accounts.length]!;
    // A success clears the account's failure count, keeping it well below the lockout threshold.
    if ((failuresSoFar.get(email) ?? 0) >= MAX_FAILURES_PER_ACCOUNT) {
      if ((await signIn(origin, email)) === null) throw new Error(`reset sign-in failed for ${email}`);
      failuresSoFar.set(email, 0);
    }
    failuresSoFar.set(email, (failuresSoFar.get(email) ?? 0) + 1);
    const pair: Array<() => Promise<void>> = [
      () => wrongPasswordStep(email, 'known'),
      () => wrongPasswordStep(`nobody-${runTag}-${i}@example.org`, 'unknown'),
    ];
    if (i % 2) pair.reverse();
    for (const step of pair) await step();
  }

  const cpuRow = (phase: Phase) => {
    const cpu = cpuPerAttempt(phase);
    return (
      `${fmt(cpu.server)} ms / ${fmt(cpu.client)} ms   (one raw verify ${fmt(rawCpuPerVerify)} ms, ` +
      `so argon2 is ${fmt(cpu.server === null ? null : (100 * rawCpuPerVerify) / cpu.server, 0)} % of the server's)`
    );
  };
  // Where the server's CPU goes: its event loop (HTTP, the application, SQLite) and its other threads
  // (argon2 above all), against the threads of one raw verify: any excess there is argon2 running slower
  // beside a busy event loop and load generator on the same CPUs. How often the event loop was given a CPU
  // counts its wake-ups: each request, each hash finished, each database answer (PostgreSQL).
  const threadRow = (phase: Phase) => {
    const cpu = cpuPerAttempt(phase);
    const others = cpu.server === null || cpu.serverMain === null ? null : cpu.server - cpu.serverMain;
    return (
      `${fmt(cpu.serverMain, 2)} ms (${fmt(cpu.serverMainSystem, 2)} in the kernel) / ${fmt(others, 2)} ms   (one raw verify's threads ${fmt(rawThreadsPerVerify, 2)} ms; ` +
      `the event loop was given a CPU ${fmt(cpu.serverMainSlices)} times per sign-in)`
    );
  };
  // What each sign-in asked of the database (src/app/metrics.ts): SQLite runs in the server's process,
  // so it has no round trips; on PostgreSQL, statements sent together in a pipeline are one.
  const databaseRow = (phase: Phase) => {
    const per = cpuPerAttempt(phase);
    return (
      `${fmt(per.statements)} statements (${fmt(per.writes)} writes), ${postgres ? `${fmt(per.roundTrips)} round trips` : 'no round trips (in-process)'}, ` +
      `${fmt(per.serverMainSlices)} wake-ups of the event loop`
    );
  };
  // PostgreSQL runs on the same CPUs: its share of each sign-in is CPU the hashes do not get. With it,
  // what this machine can give at most, as a share of the bare server's rate: the bare server's CPU per
  // sign-in (its own and the client's) over all the CPU one of these sign-ins takes.
  const postgresRow = (phase: Phase) => {
    const per = cpuPerAttempt(phase);
    const bare = cpuPerAttempt(bareSignIns);
    const all = per.server === null || per.client === null || per.postgres === null ? null : per.server + per.client + per.postgres;
    const bareAll = bare.server === null || bare.client === null ? null : bare.server + bare.client;
    return (
      `${fmt(per.postgres, 2)} ms per sign-in; with the server's and the bench client's ${fmt(all)} ms in all against the bare server's ${fmt(bareAll)} ms, ` +
      `so at most ${fmt(all === null || bareAll === null ? null : bareAll / all, 2)} of its rate on these CPUs`
    );
  };
  const rateRow = (phase: Phase) =>
    `${fmt(perSecond(phase))} /s   p50 ${fmt(median(phase.latencies))} ms  p99 ${fmt(percentile(phase.latencies, 99))} ms` +
    `   (${phase.latencies.length} ok, ${phase.failures} failed)`;
  const ratio = (phase: Phase) => fmt(perSecond(phase) / perSecond(raw), 2);
  // Against this machine's ceiling: what a server that does nothing but the verify reaches in the same run.
  const ofBare = (phase: Phase) => fmt(perSecond(phase) / perSecond(bareSignIns), 2);
  const rows: Array<[string, string]> = [
    [
      `raw argon2id verify (m=${argon2.PASSWORD_ARGON2_MEMORY_KIB},t=${argon2.PASSWORD_ARGON2_ITERATIONS},p=${argon2.PASSWORD_ARGON2_PARALLELISM}):`,
      `${fmt(perSecond(raw))} /s   p50 ${fmt(median(raw.latencies))} ms   (${rawConcurrency} at a time, one per CPU)`,
    ],
    ['bare node:http server, verify only:', `${rateRow(bareSignIns)}   ratio ${ratio(bareSignIns)} (this machine's ceiling with this client)`],
    ['CPU per sign-in, bare server / bench client:', cpuRow(bareSignIns)],
    ['  of which event loop / other threads:', threadRow(bareSignIns)],
    ['complete password sign-ins over HTTP:', rateRow(signIns)],
    ['ratio (goal ≥ 0.85):', `${ratio(signIns)}   (${ofBare(signIns)} of the bare server's rate)`],
    ['CPU per sign-in, server / bench client:', cpuRow(signIns)],
    ['  of which event loop / other threads:', threadRow(signIns)],
    ['database per sign-in:', databaseRow(signIns)],
    ...(postgres ? ([["PostgreSQL's own CPU:", postgresRow(signIns)]] as Array<[string, string]>) : []),
    ['complete password + TOTP sign-ins over HTTP:', rateRow(codeSignIns)],
    ['ratio (goal ≥ 0.85):', `${ratio(codeSignIns)}   (${ofBare(codeSignIns)} of the bare server's rate)`],
    ['CPU per sign-in, server / bench client:', cpuRow(codeSignIns)],
    ['  of which event loop / other threads:', threadRow(codeSignIns)],
    ['database per sign-in:', databaseRow(codeSignIns)],
    ...(postgres ? ([["PostgreSQL's own CPU:", postgresRow(codeSignIns)]] as Array<[string, string]>) : []),
    [
      'TOTP accounts:',
      `${totpAccounts.length}, set up in ${fmt(setUpSeconds)} s; each step of each used once; ` +
        `waiting for an unused step: ${fmt(rotation.waitedMs / 1000)} s over all callers; a code sent again: ${replay}`,
    ],
    [
      'server RSS idle / after set-up / peak:',
      `${fmt(idleRss, 0)} MiB / ${fmt(setUpRss, 0)} MiB / ${fmt(signIns.peakRss, 0)} MiB under password sign-ins, ` +
        `${fmt(codeSignIns.peakRss, 0)} MiB under password + TOTP`,
    ],
    [
      'password step, known vs unknown email:',
      `${fmt(median(known))} ms vs ${fmt(median(unknown))} ms median (difference ${fmt(median(known) - median(unknown))} ms)` +
        `   p90 ${fmt(percentile(known, 90))} vs ${fmt(percentile(unknown, 90))} ms, n=${samples} each`,
    ],
  ];
  // The same status for both is part of not revealing which addresses have accounts.
  const knownStatuses = [...statuses.known].sort().join(',');
  const unknownStatuses = [...statuses.unknown].sort().join(',');
  if (knownStatuses !== unknownStatuses) rows.push(['WARNING: status differs, known vs unknown:', `${knownStatuses} vs ${unknownStatuses}`]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  process.stdout.write(
    `\nbench/sign-in  (node ${process.version}, ${os.availableParallelism()} CPUs, load ${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}, ` +
      `${concurrency} sign-ins at a time, ${seconds} s each in ${rounds} rounds, ${databaseLabel})\n`,
  );
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}${value}\n`);
} finally {
  agent.destroy();
  closeIdleConnections();
  bare?.kill('SIGTERM');
  const child = server;
  if (child && child.exitCode === null) {
    const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
    child.kill('SIGTERM');
    // It finishes requests in flight on SIGTERM; a server that hangs is not worth waiting for.
    if (!(await Promise.race([exited, sleep(10_000).then(() => false)]))) child.kill('SIGKILL');
  }
  await postgres?.drop();
  await rm(dataDir, { recursive: true, force: true });
}
