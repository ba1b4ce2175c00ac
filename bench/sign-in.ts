/**
 * Sign-in benchmark: how close complete password sign-ins over HTTP come to the raw argon2id verify
 * rate (goal ≥ 0.85, i.e. everything around the hash costs under 15 %), the server's memory, and
 * whether the password step's timing tells a known email from an unknown one. It prints figures and
 * never fails on a time: timings depend on the machine.
 *
 *   npm run bench:sign-in -- [--seconds 10] [--concurrency N] [--samples 200] [--database postgres://…]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEMO_PASSWORD, DEMO_USERS } from '../src/app/demo.js';
import { optionsSchema } from '../src/config/schema.js';
import { createPasswordHasher } from '../src/crypto/password-hasher.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SESSION_COOKIE = '__Host-portcullis-session';
const MAX_FAILURES_PER_ACCOUNT = 90; // below SIGN_IN_LOCKOUT_THRESHOLD=100, set for the server below

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: String(os.availableParallelism()) },
    samples: { type: 'string', default: '200' },
    database: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);
const samples = Number(args.samples);
if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(samples) || samples < 1) {
  throw new Error('--seconds must be > 0, --concurrency and --samples whole numbers ≥ 1');
}

// The same argon2 parameters the server will use: its defaults, or what this environment overrides.
const argon2 = optionsSchema
  .pick({ PASSWORD_ARGON2_MEMORY_KIB: true, PASSWORD_ARGON2_ITERATIONS: true, PASSWORD_ARGON2_PARALLELISM: true })
  .parse(process.env);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const median = (xs: number[]) => percentile(xs, 50);
function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** VmRSS of a process in MiB, or null where there is no /proc (not Linux) or it has exited. */
async function rssMiB(pid: number): Promise<number | null> {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Runs `node bin/portcullis.js …` directly (no npm, no shell), so a spawned server's pid is the process
 * that serves and its /proc entry is the one to sample.
 */
function portcullis(argv: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [path.join(ROOT, 'bin/portcullis.js'), ...argv], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
}

async function runCli(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = portcullis(argv, env);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin?.end();
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`portcullis ${argv.join(' ')} exited with ${code}:\n${output}`);
}

/**
 * CPU time a process has used, in ms, from /proc/<pid>/stat (utime + stime, in clock ticks of 1/100 s
 * on Linux), or null without /proc. The name field may hold spaces, so fields are counted after ')'.
 */
async function cpuMsOf(pid: number): Promise<number | null> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(')').at(-1)!.trim().split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/**
 * The load generator shares the machine's CPUs with the server, so it must be lean: node:http with a
 * keep-alive agent costs a fraction of fetch (undici) per request. A real deployment's clients are
 * elsewhere; what the client spends here is printed, so it can be read out of the ratio.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

interface HttpResponse {
  status: number;
  location: string | undefined;
  setCookies: string[];
  body: string;
}

function request(origin: URL, method: 'GET' | 'POST', pathname: string, headers: Record<string, string>, body?: string): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: origin.hostname, port: origin.port, method, path: pathname, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, setCookies: res.headers['set-cookie'] ?? [], body: text }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One browser: its own cookie jar and the CSRF token of the last page it saw. */
class Browser {
  private readonly cookies = new Map<string, string>();
  private csrf = '';
  private readonly origin: URL;

  constructor(origin: string) {
    this.origin = new URL(origin);
  }

  private async send(method: 'GET' | 'POST', pathname: string, form?: Record<string, string>): Promise<HttpResponse> {
    const headers: Record<string, string> = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    let body: string | undefined;
    if (form) {
      body = new URLSearchParams({ _csrf: this.csrf, ...form }).toString();
      // What a browser sends with a same-site form post; the server's CSRF check reads both.
      Object.assign(headers, {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': String(Buffer.byteLength(body)),
        origin: this.origin.origin,
        'sec-fetch-site': 'same-origin',
      });
    }
    const response = await request(this.origin, method, pathname, headers, body);
    for (const line of response.setCookies) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    this.csrf = /name="_csrf" value="([^"]+)"/.exec(response.body)?.[1] ?? this.csrf;
    return response;
  }

  /** GET /sign-in, then POST the email; true when the flow reached the password step. */
  async startSignIn(email: string): Promise<boolean> {
    await this.send('GET', '/sign-in');
    const response = await this.send('POST', '/sign-in', { email });
    return response.status === 303 && response.location === '/sign-in/password';
  }

  submitPassword(password: string): Promise<HttpResponse> {
    return this.send('POST', '/sign-in/password', { password });
  }

  hasSession(): boolean {
    return this.cookies.has(SESSION_COOKIE);
  }
}

/** A complete password sign-in in a fresh browser; its duration in ms, or null if it did not succeed. */
async function signIn(origin: string, email: string): Promise<number | null> {
  const started = performance.now();
  const browser = new Browser(origin);
  if (!(await browser.startSignIn(email))) return null;
  const response = await browser.submitPassword(DEMO_PASSWORD);
  const ok = response.status === 303 && response.location === '/account' && browser.hasSession();
  return ok ? performance.now() - started : null;
}

/** A closed loop: `workers` callers repeat `task` until the time is up; latencies of successes only. */
async function closedLoop(workers: number, ms: number, task: () => Promise<number | null>) {
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < deadline) {
        const latency = await task();
        if (latency === null) failures++;
        else latencies.push(latency);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { perSecond: latencies.length / elapsed, latencies, failures };
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-'));
const port = await freePort();
const origin = `http://localhost:${port}`;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PORTCULLIS_DATA_DIR: dataDir,
  PORT: String(port),
  PUBLIC_URL: origin,
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  PORTCULLIS_SECRET: randomBytes(32).toString('base64url'),
  SIGN_IN_LOCKOUT_THRESHOLD: '100',
  SIGN_IN_IP_FAILURE_LIMIT: '1000000',
  ...(args.database ? { DATABASE_URL: args.database } : {}),
};
const databaseLabel = args.database ? `PostgreSQL at ${new URL(args.database).host}` : 'SQLite';
// A run-unique tag, so unknown addresses are never repeated, even in a PostgreSQL database kept between runs.
const runTag = randomBytes(4).toString('hex');
const accounts = DEMO_USERS.map((u) => u.email);
let server: ChildProcess | undefined;
let serverLog = '';

try {
  // The demo users all have DEMO_PASSWORD and no second factor yet, so each sign-in ends at /account.
  await runCli(['demo'], env);
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

  // Raw argon2id in this process while the server idles, at the server's parameters and concurrency.
  process.stderr.write(`raw argon2id verify for ${seconds} s …\n`);
  const hasher = await createPasswordHasher({
    memoryKib: argon2.PASSWORD_ARGON2_MEMORY_KIB,
    iterations: argon2.PASSWORD_ARGON2_ITERATIONS,
    parallelism: argon2.PASSWORD_ARGON2_PARALLELISM,
  });
  const phc = await hasher.hash(DEMO_PASSWORD);
  const rawCpuBefore = ownCpuMs();
  const raw = await closedLoop(concurrency, seconds * 1000, async () => {
    const started = performance.now();
    return (await hasher.verify(phc, DEMO_PASSWORD)) ? performance.now() - started : null;
  });
  const rawCpuPerVerify = (ownCpuMs() - rawCpuBefore) / raw.latencies.length;

  // Warm-up: one sign-in per account compiles templates and JIT paths, and clears any failure count
  // a PostgreSQL database kept from an earlier run.
  for (const email of accounts) {
    if ((await signIn(origin, email)) === null) throw new Error(`warm-up sign-in failed for ${email}:\n${serverLog}`);
  }

  process.stderr.write(`sign-ins over HTTP for ${seconds} s at concurrency ${concurrency} …\n`);
  let peakRss = idleRss;
  const sampler = setInterval(() => {
    void rssMiB(serverPid).then((rss) => {
      if (rss !== null && (peakRss === null || rss > peakRss)) peakRss = rss;
    });
  }, 100);
  // CPU of both sides: client and server share this machine, so the client's share is argon2's loss.
  const [serverCpuBefore, clientCpuBefore] = [await cpuMsOf(serverPid), ownCpuMs()];
  let next = 0;
  const signIns = await closedLoop(concurrency, seconds * 1000, () => signIn(origin, accounts[next++ % accounts.length]!));
  clearInterval(sampler);
  const serverCpuAfter = await cpuMsOf(serverPid);
  const attempts = signIns.latencies.length + signIns.failures;
  const serverCpuPerSignIn = serverCpuBefore !== null && serverCpuAfter !== null ? (serverCpuAfter - serverCpuBefore) / attempts : null;
  const clientCpuPerSignIn = (ownCpuMs() - clientCpuBefore) / attempts;

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

  const fmt = (n: number | null, digits = 1) => (n === null || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
  const rows: Array<[string, string]> = [
    [
      `raw argon2id verify (m=${argon2.PASSWORD_ARGON2_MEMORY_KIB},t=${argon2.PASSWORD_ARGON2_ITERATIONS},p=${argon2.PASSWORD_ARGON2_PARALLELISM}):`,
      `${fmt(raw.perSecond)} /s   p50 ${fmt(median(raw.latencies))} ms`,
    ],
    [
      'complete password sign-ins over HTTP:',
      `${fmt(signIns.perSecond)} /s   p50 ${fmt(median(signIns.latencies))} ms  p99 ${fmt(percentile(signIns.latencies, 99))} ms` +
        `   (${signIns.latencies.length} ok, ${signIns.failures} failed)`,
    ],
    ['ratio (goal ≥ 0.85):', fmt(signIns.perSecond / raw.perSecond, 2)],
    [
      'CPU per sign-in, server / bench client:',
      `${fmt(serverCpuPerSignIn)} ms / ${fmt(clientCpuPerSignIn)} ms   (one raw verify ${fmt(rawCpuPerVerify)} ms, ` +
        `so argon2 is ${fmt(serverCpuPerSignIn === null ? null : (100 * rawCpuPerVerify) / serverCpuPerSignIn, 0)} % of the server's)`,
    ],
    ['server RSS idle / peak under load:', `${fmt(idleRss, 0)} MiB / ${fmt(peakRss, 0)} MiB`],
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
  process.stdout.write(`\nbench/sign-in  (node ${process.version}, ${os.availableParallelism()} CPUs, concurrency ${concurrency}, ${seconds} s each, ${databaseLabel})\n`);
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}${value}\n`);
} finally {
  agent.destroy();
  const child = server;
  if (child && child.exitCode === null) {
    const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
    child.kill('SIGTERM');
    // It finishes requests in flight on SIGTERM; a server that hangs is not worth waiting for.
    if (!(await Promise.race([exited, sleep(10_000).then(() => false)]))) child.kill('SIGKILL');
  }
  await rm(dataDir, { recursive: true, force: true });
}
