/**
 * What the benchmarks share: statistics, free ports and process memory, fresh databases, and a lean
 * HTTP "browser" (node:http with keep-alive, a cookie jar and the CSRF token of the last page).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createPostgresDatabase, postgresAnswers } from '../test/helpers/postgres.js';

export { postgresAnswers } from '../test/helpers/postgres.js';

export const DEFAULT_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_REDIS = 'redis://127.0.0.1:6379/0';

/** Whether a Redis server answers at `url` (within 2 s). */
export async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The p-th percentile (nearest rank); NaN for no samples. */
/**
 * The environment of a Portcullis server a benchmark starts: its own data directory, port and secret, no
 * metrics listener (nothing to collide with another server on this machine), warnings only in the log, and
 * limits high enough that the load is never throttled.
 */
export function benchServerEnv(options: { dataDir: string; port: number; origin: string; databaseUrl?: string; metricsPort?: number }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORTCULLIS_DATA_DIR: options.dataDir,
    PORT: String(options.port),
    PUBLIC_URL: options.origin,
    HOST: '127.0.0.1',
    METRICS_PORT: String(options.metricsPort ?? 0),
    LOG_LEVEL: 'warn',
    PORTCULLIS_SECRET: randomBytes(32).toString('base64url'),
    SIGN_IN_LOCKOUT_THRESHOLD: '100',
    SIGN_IN_IP_FAILURE_LIMIT: '1000000',
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
  };
}

/** The server's database counters (src/app/metrics.ts), read from its metrics listener; null if unreadable. */
export interface DatabaseCounts {
  statements: number;
  writes: number;
  roundTrips: number;
}

export async function databaseCounts(metricsUrl: string): Promise<DatabaseCounts | null> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    const counts = { statements: read('portcullis_database_statements_total'), writes: read('portcullis_database_writes_total'), roundTrips: read('portcullis_database_round_trips_total') };
    return Object.values(counts).every(Number.isFinite) ? counts : null;
  } catch {
    return null;
  }
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** VmRSS of a process in MiB, or null where there is no /proc (not Linux) or it has exited. */
export async function rssMiB(pid: number): Promise<number | null> {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** A fresh PostgreSQL database on the server `adminUrl` names, as test/helpers/context.ts makes them. */
export function freshPostgresDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  return createPostgresDatabase(adminUrl, 'portcullis_bench');
}

export type Target = { kind: 'sqlite' } | { kind: 'postgres'; adminUrl: string };

/** A fresh database for one run: a SQLite file in `dataDir`, or a new PostgreSQL database. */
export async function freshDatabase(target: Target, dataDir: string): Promise<{ url: string; label: string; drop(): Promise<void> }> {
  if (target.kind === 'sqlite') return { url: `sqlite:${path.join(dataDir, 'bench.db')}`, label: 'SQLite', drop: async () => undefined };
  const database = await freshPostgresDatabase(target.adminUrl);
  return { ...database, label: `PostgreSQL at ${new URL(database.url).host}` };
}

// ── HTTP ────────────────────────────────────────────────────────────────────────────────────────────

/** Keep-alive connections for pages and API requests (an event stream takes a connection of its own). */
export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface HttpResponse {
  status: number;
  location: string | undefined;
  setCookies: string[];
  body: string;
  /** performance.now() when the answer's last byte arrived. */
  at: number;
}

export function request(origin: URL, method: 'GET' | 'POST', pathname: string, headers: Record<string, string>, body?: string): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: origin.hostname, port: origin.port, method, path: pathname, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, setCookies: res.headers['set-cookie'] ?? [], body: text, at: performance.now() }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One keep-alive HTTP/1.1 connection that sends one request at a time, written and parsed by hand: a
 * load generator on the same CPUs as the server takes CPU from it, and node:http's client costs about
 * three times as much per request. It reads what Portcullis sends (a Content-Length on every response);
 * anything else is an error, never a guess.
 */
export class LeanConnection {
  private socket: Socket | null = null;
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: { resolve(response: HttpResponse): void; reject(error: Error): void } | null = null;

  constructor(private readonly origin: URL) {}

  private open(): Socket {
    const socket = connect({ host: this.origin.hostname, port: Number(this.origin.port), noDelay: true });
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.parse();
    });
    const fail = (error: Error) => {
      this.socket = null;
      this.buffer = Buffer.alloc(0);
      const waiting = this.waiting;
      this.waiting = null;
      waiting?.reject(error);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the connection closed')));
    this.socket = socket;
    return socket;
  }

  private parse(): void {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end === -1 || !this.waiting) return;
    const lines = this.buffer.toString('latin1', 0, end).split('\r\n');
    let length = -1;
    let location: string | undefined;
    const setCookies: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'location') location = value;
      else if (name === 'set-cookie') setCookies.push(value);
      else if (name === 'transfer-encoding') length = NaN;
    }
    if (!(length >= 0)) {
      this.socket?.destroy(new Error(`a response without a Content-Length: ${lines[0]}`));
      return;
    }
    if (this.buffer.length < end + 4 + length) return;
    const body = this.buffer.toString('utf8', end + 4, end + 4 + length);
    this.buffer = this.buffer.subarray(end + 4 + length);
    const waiting = this.waiting;
    this.waiting = null;
    waiting.resolve({ status: Number(lines[0]!.slice(9, 12)), location, setCookies, body, at: performance.now() });
  }

  send(method: 'GET' | 'POST', pathname: string, headers: Record<string, string>, body?: string): Promise<HttpResponse> {
    if (this.waiting) return Promise.reject(new Error('one request at a time on a LeanConnection'));
    let head = `${method} ${pathname} HTTP/1.1\r\nhost: ${this.origin.host}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    if (body === undefined && method === 'POST') head += 'content-length: 0\r\n';
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      (this.socket ?? this.open()).write(body === undefined ? `${head}\r\n` : `${head}\r\n${body}`);
    });
  }

  close(): void {
    this.socket?.end();
    this.socket = null;
  }
}

/** One browser: its own cookie jar and the CSRF token of the last page it saw. */
export class FormBrowser {
  protected readonly cookies = new Map<string, string>();
  private csrf = '';
  protected readonly origin: URL;

  /** `connection`: send over this one (for load generators) rather than node:http's agent. */
  constructor(
    origin: string,
    private readonly connection?: LeanConnection,
  ) {
    this.origin = new URL(origin);
  }

  protected cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async send(method: 'GET' | 'POST', pathname: string, form?: Record<string, string>): Promise<HttpResponse> {
    const headers: Record<string, string> = { cookie: this.cookieHeader() };
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
    const response = this.connection ? await this.connection.send(method, pathname, headers, body) : await request(this.origin, method, pathname, headers, body);
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
}

/**
 * The least any server could do for a password sign-in over HTTP: the same three requests as Portcullis
 * (GET /sign-in with a page of `pageBytes`, POST the email, POST the password) with node:http and nothing
 * else — no database, templates, cookies to check, CSRF or audit. `passwordIsRight` is the only work
 * (argon2id in bench/bare-sign-in-server.ts, nothing in bench/sign-in-overhead.ts).
 */
export function createBareSignInServer(pageBytes: number, passwordIsRight: (password: string) => Promise<boolean>): http.Server {
  const form = '<form method="post"><input type="hidden" name="_csrf" value="bare"><input name="email"></form>';
  const page = `<!DOCTYPE html><html><body>${form}${' '.repeat(Math.max(0, pageBytes - form.length - 40))}</body></html>`;
  const pageLength = Buffer.byteLength(page);
  return http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      if (request.method === 'GET') {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': pageLength, 'set-cookie': 'flow=; Path=/; HttpOnly' });
        response.end(page);
      } else if (request.url === '/sign-in') {
        response.writeHead(303, { location: '/sign-in/password', 'content-length': 0, 'set-cookie': 'flow=bare; Path=/; HttpOnly' });
        response.end();
      } else {
        void passwordIsRight(new URLSearchParams(body).get('password') ?? '').then((ok) => {
          response.writeHead(303, { location: ok ? '/account' : '/sign-in/password', 'content-length': 0, ...(ok ? { 'set-cookie': 'session=bare; Path=/; HttpOnly' } : {}) });
          response.end();
        });
      }
    });
  });
}

// ── Password sign-ins and closed loops (bench/sign-in, bench/oidc) ─────────────────────────────────

export const SESSION_COOKIE = '__Host-portcullis-session';
/** Where a password-only sign-in lands: a user without a second method is offered to set one up. */
export const AFTER_PASSWORD_ONLY: ReadonlySet<string> = new Set(['/account', '/security-info/get-started?returnTo=%2Faccount']);

/** One browser over HTTP, with the sign-in steps the benches take. */
export class SignInBrowser extends FormBrowser {
  /**
   * GET the sign-in page (`signInPath`: /sign-in, or where an application's authorization sent the browser),
   * then POST the email with the page's `returnTo`; true when the flow reached the password step.
   */
  async startSignIn(email: string, signInPath = '/sign-in', returnTo?: string): Promise<boolean> {
    await this.send('GET', signInPath);
    const response = await this.send('POST', '/sign-in', returnTo === undefined ? { email } : { email, returnTo });
    return response.status === 303 && response.location === '/sign-in/password';
  }

  submitPassword(password: string): Promise<HttpResponse> {
    return this.send('POST', '/sign-in/password', { password });
  }

  /** Posted straight after the password's redirect, as the password is posted after the email's. */
  submitCode(code: string): Promise<HttpResponse> {
    return this.send('POST', '/sign-in/verify', { code });
  }

  hasSession(): boolean {
    return this.cookies.has(SESSION_COOKIE);
  }
}

/**
 * Each sign-in is a fresh browser (its own cookies) on a keep-alive connection of its own while it
 * runs; connections are reused, as a browser reuses its connection to a site.
 */
const idleConnections = new Map<string, LeanConnection[]>();
export async function withBrowser<T>(origin: string, use: (browser: SignInBrowser) => Promise<T>): Promise<T> {
  const idle = idleConnections.get(origin) ?? [];
  idleConnections.set(origin, idle);
  const connection = idle.pop() ?? new LeanConnection(new URL(origin));
  try {
    return await use(new SignInBrowser(origin, connection));
  } finally {
    idle.push(connection);
  }
}

/** Closes the connections withBrowser keeps for reuse. */
export function closeIdleConnections(): void {
  for (const connection of [...idleConnections.values()].flat()) connection.close();
  idleConnections.clear();
}

/**
 * bench/sign-in's "password" case: a complete password sign-in in a fresh browser (GET /sign-in, POST
 * the email, POST the password); its duration in ms, or null if it did not end signed in.
 */
export function passwordSignIn(origin: string, email: string, password: string): Promise<number | null> {
  return withBrowser(origin, async (browser) => {
    const started = performance.now();
    if (!(await browser.startSignIn(email))) return null;
    const response = await browser.submitPassword(password);
    const ok = response.status === 303 && AFTER_PASSWORD_ONLY.has(response.location ?? '') && browser.hasSession();
    return ok ? performance.now() - started : null;
  });
}

/**
 * A closed loop: `workers` callers repeat `task` until the time is up; latencies of successes only. A
 * task answering undefined did nothing (it found no work before the deadline) and is not counted.
 */
export async function closedLoop(workers: number, ms: number, task: (deadline: number) => Promise<number | null | undefined>) {
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < deadline) {
        const latency = await task(deadline);
        if (latency === undefined) continue;
        if (latency === null) failures++;
        else latencies.push(latency);
      }
    }),
  );
  return { elapsedMs: performance.now() - started, latencies, failures };
}

// ── CPU time ──────────────────────────────────────────────────────────────────────────────────────

/** This process's CPU time in ms, all threads (user + system). */
export const ownCpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/**
 * The fields of a /proc stat file (a process's or a thread's) after its name, which may hold spaces, so
 * they are counted after ')': [11] is utime and [12] stime, in clock ticks of 1/100 s on Linux.
 */
async function statFields(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split(')').at(-1)!.trim().split(' ');
}

/** CPU time a process has used, in ms (utime + stime), or null without /proc. */
const CLOCK_TICK_MS = (() => {
  try {
    return 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);
  } catch {
    return 10;
  }
})();

/** CPU ms (utime + stime) of every process whose /proc/<pid>/comm is `name`, by pid; empty without /proc. */
export async function cpuByCommand(name: string): Promise<Map<number, number>> {
  const found = new Map<number, number>();
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  } catch {
    return found;
  }
  await Promise.all(
    pids.map(async (pid) => {
      try {
        if ((await readFile(`/proc/${pid}/comm`, 'utf8')).trim() !== name) return;
        // The fields after the name (which may hold spaces): [11] utime, [12] stime, in clock ticks.
        const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(')').at(-1)!.trim().split(' ');
        found.set(Number(pid), (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS);
      } catch {
        // It exited meanwhile.
      }
    }),
  );
  return found;
}

/** CPU between two readings of cpuByCommand: processes that started meanwhile count whole; those that ended are lost. */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number | null {
  if (after.size === 0) return null;
  let sum = 0;
  for (const [pid, ms] of after) sum += ms - (before.get(pid) ?? 0);
  return sum;
}

export async function cpuMsOf(pid: number): Promise<number | null> {
  try {
    const fields = await statFields(`/proc/${pid}/stat`);
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * A process's main thread (its event loop): from /proc/<pid>/task/<pid>/schedstat, the CPU time it has
 * used in ms (the file counts nanoseconds) and how many times it has been given a CPU (each wake-up, and
 * each time it was preempted); from its stat, the part of that spent in the kernel; or null without
 * them. The rest of a process's CPU is its other threads': argon2's, the garbage collector's helpers,
 * libuv's pool.
 */
export async function mainThreadOf(pid: number): Promise<{ cpuMs: number; slices: number; systemMs: number } | null> {
  try {
    const [ns, , slices] = (await readFile(`/proc/${pid}/task/${pid}/schedstat`, 'utf8')).trim().split(' ');
    const fields = await statFields(`/proc/${pid}/task/${pid}/stat`);
    return { cpuMs: Number(ns) / 1e6, slices: Number(slices), systemMs: Number(fields[12]) * 10 };
  } catch {
    return null;
  }
}

// ── What the large-directory benchmarks share (bench/policy, bench/admin, bench/import) ──────────────

/**
 * The databases a benchmark runs on, from its `--database`: none given, SQLite then PostgreSQL at
 * 127.0.0.1:5432 if it answers; `sqlite` alone; or a PostgreSQL server's URL alone.
 */
export async function benchTargets(database: string | undefined): Promise<Target[]> {
  const targets: Target[] = [];
  if (database === undefined || database === 'sqlite') targets.push({ kind: 'sqlite' });
  if (database === undefined) {
    if (await postgresAnswers(DEFAULT_POSTGRES)) targets.push({ kind: 'postgres', adminUrl: DEFAULT_POSTGRES });
    else process.stderr.write(`PostgreSQL at ${DEFAULT_POSTGRES} does not answer: SQLite only.\n`);
  } else if (database !== 'sqlite') targets.push({ kind: 'postgres', adminUrl: database });
  return targets;
}

/**
 * Calls `note` for every SQL statement this process runs, with its time: better-sqlite3's (one Statement
 * prototype for all; SQLite runs in this thread, so the time is its work) and node-postgres's (Kysely's
 * PostgresDriver runs every query, BEGIN and COMMIT too, as client.query(text, values); the time is the
 * round trip's).
 */
export function countStatements(note: (text: string, params: unknown[], ms: number) => void): void {
  const probe = new SQLite(':memory:');
  const statementPrototype = Object.getPrototypeOf(probe.prepare('select 1')) as Record<'run' | 'get' | 'all' | 'iterate', (...a: unknown[]) => unknown>;
  probe.close();
  for (const method of ['run', 'get', 'all', 'iterate'] as const) {
    const original = statementPrototype[method];
    statementPrototype[method] = function (this: { source: string }, ...a: unknown[]) {
      const started = performance.now();
      try {
        return original.apply(this, a);
      } finally {
        note(this.source, a.length === 1 && Array.isArray(a[0]) ? (a[0] as unknown[]) : a, performance.now() - started);
      }
    };
  }
  const clientPrototype = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const originalQuery = clientPrototype.query;
  clientPrototype.query = function (this: unknown, ...a: unknown[]) {
    const started = performance.now();
    const result = originalQuery.apply(this, a);
    const text = typeof a[0] === 'string' ? a[0] : String((a[0] as { text?: unknown })?.text ?? '?');
    const params = Array.isArray(a[1]) ? (a[1] as unknown[]) : [];
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      void (result as Promise<unknown>).then(
        () => note(text, params, performance.now() - started),
        () => undefined,
      );
    }
    return result;
  };
}

/** A 32-bit mix of i (and a salt), so that what is drawn with different salts is independent. */
export function mix(i: number, salt: number): number {
  let h = (i ^ salt) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * User i's organisation, of `count`, organisation k's share ∝ (k + 1)^-0.8: at 1.5 million users and 300
 * organisations the largest has about 130,000 users and the median a few thousand, as a national
 * service's trusts do.
 */
export function skewedOrganisations(count: number): (i: number) => number {
  const weights = Array.from({ length: count }, (_, k) => (k + 1) ** -0.8);
  const total = weights.reduce((a, b) => a + b, 0);
  let sum = 0;
  const cumulative = weights.map((w) => (sum += w / total));
  return (i: number) => {
    const u = mix(i, 0x9e3779b9) / 2 ** 32;
    let lo = 0;
    let hi = count - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}
