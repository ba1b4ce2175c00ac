/**
 * The server bench/oidc measures: `portcullis serve --demo` (createAppContext, the demo users and policy,
 * buildApp, listen, the delivery dispatcher), with two registered clients, and counters on what it sends
 * to its stores. It is started by bench/oidc with an IPC channel, and answers "read" with its CPU time
 * (process.cpuUsage(): every thread of this process, user + system) and its counts, so the bench can take
 * the differences over a measured window:
 *
 * - SQL statements: every call that runs one on the database driver (better-sqlite3's Statement run /
 *   get / all / iterate; pg's Client#query, one round trip each), BEGIN and COMMIT included, by SQL text;
 * - Redis commands (ioredis' sendCommand: every command, those in a MULTI or pipeline too) and round
 *   trips (a command sent alone, or a whole pipeline).
 *
 * The counters wrap the drivers' prototypes, so the application's code is the shipped code.
 *
 *   tsx bench/oidc-server.ts   (environment as for `portcullis serve`; BENCH_REDIRECT_URI for the app client)
 */
import SQLite from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createAppContext, createLogger } from '../src/app/context.js';
import { DEMO_ORGANISATIONS, DEMO_PASSWORD, ensureDemo } from '../src/app/demo.js';
import { addUser } from '../src/app/directory.js';
import { addClient } from '../src/app/oidc/clients.js';
import { loadConfig } from '../src/config/load.js';
import { buildApp } from '../src/server/app.js';

/** What the server reports to bench/oidc. */
export interface ServerReading {
  cpuMs: number;
  statements: number;
  /** Statements by their SQL text (its first 120 characters). */
  bySql: Record<string, number>;
  /** SQLite only: the ms spent running them (in this process), by the same text. */
  sqliteMs: Record<string, number>;
  redisCommands: number;
  redisRoundTrips: number;
  /** Redis commands by name. */
  byRedisCommand: Record<string, number>;
}

export interface ServerReady {
  type: 'ready';
  /** People with a password and no second method, as `uma.user@example.org` in the demo. */
  accounts: string[];
  app: { clientId: string; secret: string; redirectUri: string };
  /** The same application registered with `--id-token-alg ES256`. */
  appEs256: { clientId: string; secret: string; redirectUri: string };
  service: { clientId: string; secret: string; scope: string };
}

export const SERVICE_SCOPE = 'reports:read';

let statements = 0;
const bySql = new Map<string, number>();
const countSql = (text: string) => {
  statements++;
  const key = text.slice(0, 120);
  bySql.set(key, (bySql.get(key) ?? 0) + 1);
};

// better-sqlite3: one Statement prototype for every statement (src/store/database.ts caches them).
const probe = new SQLite(':memory:');
const statementPrototype = Object.getPrototypeOf(probe.prepare('select 1')) as Record<'run' | 'get' | 'all' | 'iterate', (...args: unknown[]) => unknown> & { source: string };
probe.close();
/** SQLite runs in this thread: the time each statement takes, by SQL text (PostgreSQL's is its own CPU). */
const sqliteMs = new Map<string, number>();
for (const method of ['run', 'get', 'all', 'iterate'] as const) {
  const original = statementPrototype[method];
  statementPrototype[method] = function (this: { source: string }, ...args: unknown[]) {
    countSql(this.source);
    const started = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      const key = this.source.slice(0, 120);
      sqliteMs.set(key, (sqliteMs.get(key) ?? 0) + performance.now() - started);
    }
  };
}

// pg: Kysely's PostgresDriver runs every query (BEGIN and COMMIT too) as client.query(text, values).
const clientPrototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
const originalQuery = clientPrototype.query;
clientPrototype.query = function (this: unknown, ...args: unknown[]) {
  const [text] = args;
  countSql(typeof text === 'string' ? text : typeof (text as { text?: unknown })?.text === 'string' ? (text as { text: string }).text : '?');
  return originalQuery.apply(this, args);
};

// ioredis: every command goes through sendCommand; a pipeline's (MULTI … EXEC too) with the pipeline's stream.
let redisCommands = 0;
let redisRoundTrips = 0;
const byRedisCommand = new Map<string, number>();
const pipelinesSeen = new WeakSet<object>();
const redisPrototype = Redis.prototype as unknown as { sendCommand: (command: { name: string }, stream?: object) => unknown };
const originalSendCommand = redisPrototype.sendCommand;
redisPrototype.sendCommand = function (this: unknown, command: { name: string }, stream?: object) {
  redisCommands++;
  byRedisCommand.set(command.name, (byRedisCommand.get(command.name) ?? 0) + 1);
  if (!stream || !(stream as { isPipeline?: boolean }).isPipeline) redisRoundTrips++;
  else if (!pipelinesSeen.has(stream)) {
    pipelinesSeen.add(stream);
    redisRoundTrips++;
  }
  return originalSendCommand.call(this, command, stream);
};

const reading = (): ServerReading => {
  const { user, system } = process.cpuUsage();
  return {
    cpuMs: (user + system) / 1000,
    statements,
    bySql: Object.fromEntries(bySql),
    sqliteMs: Object.fromEntries(sqliteMs),
    redisCommands,
    redisRoundTrips,
    byRedisCommand: Object.fromEntries(byRedisCommand),
  };
};

const config = loadConfig();
const ctx = await createAppContext(config, { logger: createLogger(config) });
await ensureDemo(ctx);
// One password attempt at a time per address (src/app/sign-in-attempts.ts): each sign-in in flight needs
// an account of its own, and the demo has three without a second method.
const accountCount = Number(process.env.BENCH_ACCOUNTS ?? '32');
const accounts: string[] = [];
for (let i = 0; i < accountCount; i++) {
  const email = `bench-password-${i}@example.org`;
  await addUser(ctx, { email, displayName: `Bench ${i}`, organisation: DEMO_ORGANISATIONS[0], roles: [], password: DEMO_PASSWORD }, { kind: 'system' });
  accounts.push(email);
}
const cli = { kind: 'cli', name: 'bench' } as const;
const redirectUri = process.env.BENCH_REDIRECT_URI ?? 'http://127.0.0.1:8400/callback';
// First party: consent is not asked (docs/oidc.md#consent), so a flow has no page beyond the sign-in's.
const app = await addClient(
  ctx,
  { name: 'Bench app', redirectUris: [redirectUri], postLogoutRedirectUris: [], confidential: true, firstParty: true, service: false, scopes: [] },
  cli,
);
const appEs256 = await addClient(
  ctx,
  { name: 'Bench app ES256', redirectUris: [redirectUri], postLogoutRedirectUris: [], confidential: true, firstParty: true, service: false, scopes: [], idTokenAlg: 'ES256' },
  cli,
);
const service = await addClient(ctx, { name: 'Bench service', redirectUris: [], postLogoutRedirectUris: [], confidential: false, firstParty: false, service: true, scopes: [SERVICE_SCOPE] }, cli);
const server = await buildApp(ctx);
await server.listen({ host: config.host, port: config.port });
ctx.delivery.start();

process.on('message', (message: { type?: string; id?: number }) => {
  if (message.type === 'read') process.send!({ type: 'reading', id: message.id, reading: reading() });
});
process.once('SIGTERM', () => {
  void (async () => {
    await server.close();
    await ctx.close();
    process.exit(0);
  })();
});
const ready: ServerReady = {
  type: 'ready',
  accounts,
  app: { clientId: app.client.clientId, secret: app.secret!, redirectUri },
  appEs256: { clientId: appEs256.client.clientId, secret: appEs256.secret!, redirectUri },
  service: { clientId: service.client.clientId, secret: service.secret!, scope: SERVICE_SCOPE },
};
process.send!(ready);
