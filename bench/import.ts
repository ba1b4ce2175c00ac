/**
 * Bulk import benchmark (issue #18 point 7): `importUsers` (the code behind `portcullis import users`)
 * reading a CSV of 1.5 million users — 300 organisations, 10% of rows with an elevated role in their own
 * organisation, a few hundred deliberately bad rows — into a fresh SQLite and a fresh PostgreSQL database.
 * Goal (docs/performance.md): under 2 minutes, memory flat. It prints figures and never fails on a time.
 *
 *   npm run bench:import -- [--users 1500000] [--database sqlite|postgres://…] [--batch 2000]
 *
 * Without --database it runs on SQLite, then on PostgreSQL at 127.0.0.1:5432 if that answers. The CSV is
 * written to a temporary file first (not timed); the import then reads it as the CLI does, counting the
 * activation links rather than printing them. The process's RSS is sampled every second. Every SQL
 * statement is counted (bench/lib.ts's countStatements). The file, the SQLite
 * database and the PostgreSQL database are removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { benchTargets, countStatements, freshDatabase, mix, skewedOrganisations, type Target } from './lib.js';
import { createAppContext, type AppContext } from '../src/app/context.js';
import { addOrganisation } from '../src/app/directory.js';
import { DEFAULT_IMPORT_BATCH, importUsers } from '../src/app/import-users.js';
import { loadConfig } from '../src/config/load.js';

const GOAL_S = 120;
const ORGANISATIONS = 300;

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '1500000' },
    database: { type: 'string' },
    batch: { type: 'string', default: String(DEFAULT_IMPORT_BATCH) },
  },
});
const userCount = Number(args.users);
const batchSize = Number(args.batch);
if (!(Number.isInteger(userCount) && userCount >= 1000)) throw new Error('--users must be a whole number ≥ 1000');
if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error('--batch must be a whole number ≥ 1');
if (args.database !== undefined && args.database !== 'sqlite' && !/^postgres(ql)?:\/\//.test(args.database)) {
  throw new Error('--database must be sqlite or a postgres:// address (of a server where a database can be created)');
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-GB', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes: number) => bytes / 1024 / 1024;

// ── Every SQL statement, counted ────────────────────────────────────────────────────────────────────

let statements = 0;
/** Time in statements by what they do ("insert into users", "select … users", "begin"), in ms. */
let byKind = new Map<string, { n: number; ms: number }>();
const kindOf = (text: string) => {
  const m = /^\s*(insert into|select|update|delete from)\b[^"]*?(?:from )?"?(\w+)"?/i.exec(text);
  return m ? `${m[1]!.toLowerCase()} ${m[2]}` : text.trim().split(/\s+/)[0]!.toLowerCase();
};
const note = (text: string, ms: number) => {
  statements++;
  const kind = kindOf(text);
  const seen = byKind.get(kind) ?? { n: 0, ms: 0 };
  seen.n++;
  seen.ms += ms;
  byKind.set(kind, seen);
};
countStatements((text, _params, ms) => note(text, ms));

// ── The file ─────────────────────────────────────────────────────────────────────────────────────────

const organisationOf = skewedOrganisations(ORGANISATIONS);

const organisationName = (k: number) => `NHS Trust ${String(k + 1).padStart(3, '0')}`;
const emailOf = (i: number) => `user-${i}@trust-${organisationOf(i) + 1}.nhs.uk`;

/** One row in BAD_EVERY is bad (about 300 at 1.5 million), in turn each of the four kinds. */
const BAD_EVERY = 5000;
const BAD_KINDS = ['bad email', 'unknown organisation', 'duplicate in its batch', 'duplicate of an earlier batch'] as const;
const badKindOf = (i: number) => (i % BAD_EVERY === BAD_EVERY / 2 ? BAD_KINDS[Math.floor(i / BAD_EVERY) % BAD_KINDS.length]! : null);

function rowOf(i: number): string {
  const k = organisationOf(i);
  const bad = badKindOf(i);
  if (bad === 'bad email') return `user-${i}.trust-${k + 1}.nhs.uk,User ${i},${organisationName(k)},`;
  if (bad === 'unknown organisation') return `${emailOf(i)},User ${i},Closed Trust ${i},`;
  // Of a good row 7 rows back (the same batch mostly), or 4,000 back (an earlier batch): its email in other case.
  if (bad === 'duplicate in its batch') return `${emailOf(i - 7).toUpperCase()},User ${i},${organisationName(k)},`;
  if (bad === 'duplicate of an earlier batch') return `${emailOf(i - 4000)},User ${i},${organisationName(k)},`;
  // One row in ten with an elevated role: helpdesk scoped to their organisation, or local-admin (there by default).
  const r = mix(i, 0x5bd1e995) % 100;
  const roles = r < 4 ? `helpdesk:${organisationName(k)}` : r < 10 ? 'local-admin' : '';
  return `${emailOf(i)},User ${i},${organisationName(k)},${roles}`;
}

/** Writes the CSV with back-pressure (never the whole file in memory); the count of bad rows planted. */
async function writeCsv(file: string, count: number): Promise<{ planted: number; bytes: number }> {
  const out = createWriteStream(file);
  out.write('email,name,organisation,roles\n');
  let planted = 0;
  let chunk = '';
  for (let i = 0; i < count; i++) {
    if (badKindOf(i)) planted++;
    chunk += `${rowOf(i)}\n`;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  return { planted, bytes: (await stat(file)).size };
}

// ── The run ──────────────────────────────────────────────────────────────────────────────────────────

async function run(target: Target, csv: string, planted: number): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-import-'));
  const database = await freshDatabase(target, dataDir);
  let ctx: AppContext | undefined;
  try {
    const config = loadConfig({
      env: { PUBLIC_URL: 'http://localhost:8080', PORTCULLIS_SECRET: randomBytes(32).toString('base64url'), PORTCULLIS_DATA_DIR: dataDir, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
    });
    ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    for (let k = 0; k < ORGANISATIONS; k++) await addOrganisation(ctx, organisationName(k), { kind: 'system' });

    global.gc?.();
    const samples: number[] = [];
    const startRss = process.memoryUsage().rss;
    const sampler = setInterval(() => samples.push(process.memoryUsage().rss), 1000);
    let links = 0;
    let badLink = 0;
    statements = 0;
    byKind = new Map();
    process.stderr.write(`${database.label}: importing ${fmt(userCount)} rows in batches of ${fmt(batchSize)} …\n`);
    const started = performance.now();
    let progress = started;
    const report = await importUsers(
      ctx,
      createReadStream(csv),
      { kind: 'cli', name: 'bench' },
      {
        imported: (row) => {
          links++;
          if (!row.activationUrl?.startsWith('http://localhost:8080/activate/')) badLink++;
          if (links % 250_000 === 0) {
            const now = performance.now();
            process.stderr.write(`  … ${fmt(links)} imported, ${fmt((now - started) / 1000, 1)} s, RSS ${fmt(mib(process.memoryUsage().rss))} MiB (${fmt(250_000 / ((now - progress) / 1000))} rows/s lately)\n`);
            progress = now;
          }
        },
      },
      { batchSize },
    );
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const endRss = process.memoryUsage().rss;
    samples.push(endRss);
    const ran = statements;

    const db = ctx.store.database.db;
    const countOf = async (table: 'users' | 'role_assignments' | 'user_tokens' | 'audit_events') =>
      Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);
    const [users, roles, tokens, events] = [await countOf('users'), await countOf('role_assignments'), await countOf('user_tokens'), await countOf('audit_events')];
    const size =
      target.kind === 'sqlite'
        ? (await stat(database.url.slice('sqlite:'.length))).size + (await stat(`${database.url.slice('sqlite:'.length)}-wal`).catch(() => ({ size: 0 }))).size
        : Number((await db.selectNoFrom((eb) => eb.fn<string>('pg_database_size', [eb.fn('current_database')]).as('n')).executeTakeFirstOrThrow()).n);

    const spent = [...byKind].sort((a, b) => b[1].ms - a[1].ms);
    const byMessage = new Map<string, number>();
    for (const f of report.failed) {
      const message = f.message.replace(/ [^ ]*@[^ ]*| Closed Trust \d+/g, ' …');
      byMessage.set(message, (byMessage.get(message) ?? 0) + 1);
    }
    const lines = [
      `${database.label}: ${fmt(userCount)} rows in ${fmt(seconds, 1)} s — ${fmt(userCount / seconds)} rows/s; goal ${GOAL_S} s: ${seconds <= GOAL_S ? 'met' : `missed by ${fmt(seconds - GOAL_S, 1)} s`}`,
      `  imported ${fmt(report.imported)}, failed ${fmt(report.failed.length)} (planted ${fmt(planted)}: ${report.failed.length === planted ? 'equal' : 'NOT EQUAL'}); activation links counted ${fmt(links)}${badLink ? `, ${badLink} malformed` : ''}`,
      ...[...byMessage].map(([message, n]) => `    ${fmt(n)} × ${message}`),
      `  rows in the database: users ${fmt(users)}, role assignments ${fmt(roles)}, activation tokens ${fmt(tokens)}, audit events ${fmt(events)} (300 organisation.created included); size ${fmt(mib(size))} MiB`,
      `  SQL statements: ${fmt(ran)} (${fmt(ran / userCount, 4)} per row); time in them ${fmt(spent.reduce((t, [, k]) => t + k.ms, 0) / 1000, 1)} s, per row:`,
      ...spent.slice(0, 8).map(([kind, k]) => `    ${kind.padEnd(28)} ${fmt(k.n).padStart(6)} statements, ${fmt((k.ms * 1000) / userCount, 1).padStart(5)} µs a row`),
      `  RSS: ${fmt(mib(startRss))} MiB before, max ${fmt(mib(Math.max(...samples)))} MiB, ${fmt(mib(endRss))} MiB at the end (${samples.length} samples, one a second)`,
      `  RSS every 10 s (MiB): ${samples.filter((_, i) => i % 10 === 9).map((s) => fmt(mib(s))).join(' ')}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await ctx?.close();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const targets = await benchTargets(args.database);

const csvDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-import-csv-'));
try {
  const csv = path.join(csvDir, 'users.csv');
  const writing = performance.now();
  const { planted, bytes } = await writeCsv(csv, userCount);
  process.stderr.write(`CSV: ${fmt(userCount)} rows, ${fmt(mib(bytes))} MiB, ${fmt(planted)} bad rows planted, written in ${fmt((performance.now() - writing) / 1000, 1)} s (${os.cpus().length} CPUs)\n`);
  for (const target of targets) await run(target, csv, planted);
} finally {
  await rm(csvDir, { recursive: true, force: true });
}
