/**
 * Admin console benchmark (issue #15 point 8): the dashboard's counts and filtered user searches over a
 * directory the size of a national email service — 1.5 million users in 300 organisations of uneven
 * size, 10% with an elevated role — on SQLite and PostgreSQL. Goal (docs/performance.md): under half a
 * second each. It prints figures and never fails on a time.
 *
 *   npm run bench:admin -- [--users 1500000] [--database sqlite|postgres://…] [--runs 7] [--explain]
 *
 * Without --database it runs on SQLite, then on PostgreSQL at 127.0.0.1:5432 if that answers. Each run
 * fills a fresh database (a temporary SQLite file; a new PostgreSQL database, dropped afterwards) with
 * the shipped example policy applied (its date a week ago with 14 days' grace, as bench/policy), and
 * times the use cases the console and the admin API call (src/app/admin-api.ts): one warm-up, then
 * `--runs` timed calls each. Every SQL statement is counted (the drivers' prototypes are wrapped, as in
 * bench/oidc-server.ts); for a case whose median misses the goal its slowest statement's plan is printed,
 * and with --explain every statement's plan of every case (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's
 * EXPLAIN ANALYZE).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CompiledQuery, sql } from 'kysely';
import pino from 'pino';
import { benchTargets, countStatements, freshDatabase, mix, percentile, skewedOrganisations, type Target } from './lib.js';
import { ADMIN_TOKEN_SCOPES, dashboard, searchUsers, type AdminCaller, type UserFilter } from '../src/app/admin-api.js';
import { STATE_NAMES, type StateName } from '../src/app/compliance.js';
import { createAppContext, type AppContext } from '../src/app/context.js';
import { addOrganisation } from '../src/app/directory.js';
import { applyPolicyText } from '../src/app/policy.js';
import { authorityOf } from '../src/core/admin/scope.js';
import { profileKey } from '../src/core/policy/profile.js';
import { loadConfig } from '../src/config/load.js';

const GOAL_MS = 500;
const ORGANISATIONS = 300;

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '1500000' },
    database: { type: 'string' },
    runs: { type: 'string', default: '7' },
    explain: { type: 'boolean', default: false },
  },
});
const userCount = Number(args.users);
const runs = Number(args.runs);
if (!(Number.isInteger(userCount) && userCount >= 10_000)) throw new Error('--users must be a whole number ≥ 10000');
if (!(Number.isInteger(runs) && runs >= 1)) throw new Error('--runs must be a whole number ≥ 1');
if (args.database !== undefined && args.database !== 'sqlite' && !/^postgres(ql)?:\/\//.test(args.database)) {
  throw new Error('--database must be sqlite or a postgres:// address (of a server where a database can be created)');
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-GB', { maximumFractionDigits: digits, minimumFractionDigits: digits });

// ── Every SQL statement, counted and timed (the application's code is the shipped code) ────────────

interface Seen {
  text: string;
  params: unknown[];
  ms: number;
}
let recording = false;
let statements = 0;
let slowest: Seen | null = null;
let distinct = new Map<string, Seen>();
const note = (text: string, params: unknown[], ms: number) => {
  if (!recording) return;
  statements++;
  const seen = distinct.get(text);
  if (!seen) distinct.set(text, { text, params, ms });
  else seen.ms = Math.max(seen.ms, ms);
  if (!slowest || ms > slowest.ms) slowest = { text, params, ms };
};

countStatements(note);

// ── The directory ───────────────────────────────────────────────────────────────────────────────────

const organisationOf = skewedOrganisations(ORGANISATIONS);

/**
 * Registered methods: typical users as bench/policy has them (many on text messages, some on calls and
 * code apps, a growing share on push, one in eight with none yet); those with elevated rights further
 * along the move to push the policy asks of them (55% there), as a year into the requirement.
 */
function methodsFor(i: number, elevated: boolean): string[] {
  const r = mix(i, 0x5bd1e995) % 100;
  if (elevated) {
    if (r < 5) return [];
    if (r < 25) return ['sms'];
    if (r < 33) return ['totp'];
    if (r < 38) return ['voice'];
    if (r < 45) return ['sms', 'totp'];
    if (r < 80) return ['push'];
    return ['push', 'sms'];
  }
  if (r < 12) return [];
  if (r < 50) return ['sms'];
  if (r < 58) return ['voice'];
  if (r < 68) return ['totp'];
  if (r < 78) return ['sms', 'totp'];
  if (r < 92) return ['push'];
  return ['push', 'sms'];
}

interface Directory {
  organisations: Array<{ id: string; name: string; users: number }>;
  exceptions: number;
  disabled: number;
}

/** Fills the directory with multi-row inserts in large transactions (seeding is not what is measured). */
async function seed(ctx: AppContext, count: number): Promise<Directory> {
  const db = ctx.store.database.db;
  const organisations: Directory['organisations'] = [];
  for (let k = 0; k < ORGANISATIONS; k++) {
    const row = await addOrganisation(ctx, `NHS Trust ${String(k + 1).padStart(3, '0')}`, { kind: 'system' });
    organisations.push({ id: row.id, name: row.name, users: 0 });
  }
  const group = await ctx.store.groups.create('MFA pilot', 'Early adopters', new Date());
  const now = new Date().toISOString();
  const soon = new Date(Date.now() + 30 * 86_400_000).toISOString();
  let exceptionCount = 0;
  let disabledCount = 0;
  const batch = 1000;
  const started = performance.now();
  for (let from = 0; from < count; from += batch * 20) {
    await db.transaction().execute(async (trx) => {
      for (let start = from; start < Math.min(count, from + batch * 20); start += batch) {
        const users = [];
        const roles = [];
        const methods = [];
        const members = [];
        const exceptions = [];
        for (let i = start; i < Math.min(count, start + batch); i++) {
          const id = randomUUID();
          const k = organisationOf(i);
          const organisation = organisations[k]!;
          organisation.users++;
          const elevatedRole = i % 10 === 0 ? (i % 30 === 0 ? 'helpdesk' : 'local-admin') : null;
          const kinds = methodsFor(i, elevatedRole !== null);
          const inGroup = i % 50 === 0;
          const disabled = i % 97 === 0;
          if (disabled) disabledCount++;
          const email = `user-${i}@trust-${k + 1}.nhs.uk`;
          users.push({
            id,
            email,
            email_normalised: email,
            display_name: `User ${i}`,
            organisation_id: organisation.id,
            status: disabled ? ('disabled' as const) : ('active' as const),
            password_hash: null,
            password_changed_at: null,
            created_at: now,
            updated_at: now,
            default_method_id: null,
            push_blocked_at: null,
            // As the repositories keep it (src/store/repositories/policy-profile.ts).
            policy_profile: profileKey({ roles: elevatedRole ? ['user', elevatedRole] : ['user'], groups: inGroup ? [group.name] : [], kinds }),
          });
          roles.push({ user_id: id, role_name: 'user', scope: '*', created_at: now });
          if (elevatedRole) roles.push({ user_id: id, role_name: elevatedRole, scope: organisation.id, created_at: now });
          for (const kind of kinds) {
            methods.push({ id: randomUUID(), user_id: id, kind, status: 'active' as const, label: '', phone_e164: kind === 'sms' || kind === 'voice' ? '+447700900123' : null, secret_sealed: null, totp_last_step: null, created_at: now, activated_at: now, last_used_at: null, pending_expires_at: null });
          }
          if (inGroup) members.push({ group_id: group.id, user_id: id, added_at: now });
          // One elevated user in 40 has a live exception to the push requirement (a lost phone, a new one on order).
          if (i % 400 === 0) {
            exceptions.push({ id: randomUUID(), user_id: id, requirement_id: 'elevated-rights-push', until: soon, reason: 'Lost phone', created_by: 'bench', created_at: now, revoked_at: null, revoked_by: null });
            exceptionCount++;
          }
        }
        await trx.insertInto('users').values(users).execute();
        await trx.insertInto('role_assignments').values(roles).execute();
        if (methods.length) await trx.insertInto('methods').values(methods).execute();
        if (members.length) await trx.insertInto('group_members').values(members).execute();
        if (exceptions.length) await trx.insertInto('policy_exceptions').values(exceptions).execute();
      }
    });
    if (from % 300_000 === 0) process.stderr.write(`  … ${fmt(Math.min(count, from + batch * 20))} users (${fmt((performance.now() - started) / 1000, 0)} s)\n`);
  }
  await sql`ANALYZE`.execute(db);
  return { organisations, exceptions: exceptionCount, disabled: disabledCount };
}

// ── Measuring ───────────────────────────────────────────────────────────────────────────────────────

interface Measured {
  label: string;
  medianMs: number;
  maxMs: number;
  statements: number;
  found: string;
  slowest: Seen | null;
  distinct: Seen[];
}

/** One warm-up, then `runs` timed calls; the statements of one call, and the slowest statement seen. */
async function measure<T>(label: string, call: () => Promise<T>, describe: (result: T) => string): Promise<Measured> {
  const first = await call();
  const times: number[] = [];
  statements = 0;
  slowest = null;
  distinct = new Map();
  recording = true;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await call();
    times.push(performance.now() - started);
  }
  // pg's notes arrive on the promise's settlement, already past by now; nothing is left in flight.
  recording = false;
  return { label, medianMs: percentile(times, 50), maxMs: Math.max(...times), statements: statements / runs, found: describe(first), slowest, distinct: [...distinct.values()] };
}

async function explain(ctx: AppContext, dialect: 'sqlite' | 'postgres', seen: Seen): Promise<string> {
  const db = ctx.store.database.db;
  if (dialect === 'sqlite') {
    const { rows } = await db.executeQuery<{ id: number; parent: number; detail: string }>(CompiledQuery.raw(`EXPLAIN QUERY PLAN ${seen.text}`, seen.params));
    const depth = new Map<number, number>([[0, 0]]);
    return rows
      .map((r) => {
        const d = (depth.get(r.parent) ?? 0) + 1;
        depth.set(r.id, d);
        return `${'  '.repeat(d)}${r.detail}`;
      })
      .join('\n');
  }
  const { rows } = await db.executeQuery<Record<string, string>>(CompiledQuery.raw(`EXPLAIN (ANALYZE, BUFFERS) ${seen.text}`, seen.params));
  return rows.map((r) => `  ${Object.values(r)[0]}`).join('\n');
}

const shorten = (text: string) => (text.length > 600 ? `${text.slice(0, 600)} … (${fmt(text.length)} characters)` : text);

async function run(target: Target): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-admin-'));
  const database = await freshDatabase(target, dataDir);
  const dialect = target.kind;
  let ctx: AppContext | undefined;
  try {
    const config = loadConfig({
      env: { PUBLIC_URL: 'http://localhost:8080', PORTCULLIS_SECRET: randomBytes(32).toString('base64url'), PORTCULLIS_DATA_DIR: dataDir, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
    });
    ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    // The article's policy with its date a week ago and 14 days' grace, as bench/policy applies it.
    const example = await readFile(new URL('../examples/nhsmail-elevated-rights.yaml', import.meta.url), 'utf8');
    const lastWeek = new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10);
    await applyPolicyText(ctx, example.replace(/effective: 2023-11-30/, `effective: ${lastWeek}\n    graceDays: 14`).replace(/ *graceDays: 0 # the article gives none\n/, ''), { kind: 'system' });

    process.stderr.write(`${database.label}: filling ${fmt(userCount)} users …\n`);
    const seedStarted = performance.now();
    const directory = await seed(ctx, userCount);
    process.stderr.write(`${database.label}: filled in ${fmt((performance.now() - seedStarted) / 1000, 0)} s\n`);

    const db = ctx.store.database.db;
    const counted = await db.selectFrom('users').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
    const sizes = [...directory.organisations].sort((a, b) => a.users - b.users);
    // The local administrator's organisation: the median one.
    const local = sizes[Math.floor(sizes.length / 2)]!;
    const caller = (grants: Array<{ role: string; scope: string }>): AdminCaller => ({ user: null, authority: authorityOf(grants), scopes: new Set(ADMIN_TOKEN_SCOPES), actor: { kind: 'system' } });
    const globalAdmin = caller([{ role: 'global-admin', scope: '*' }]);
    const localAdmin = caller([{ role: 'local-admin', scope: local.id }]);

    // The state the policy puts most elevated users in, short of compliant.
    const overview = await dashboard(ctx, globalAdmin);
    const localOverview = await dashboard(ctx, localAdmin);
    const worst = (byState: Record<StateName, number>): StateName =>
      STATE_NAMES.filter((s) => s !== 'compliant' && s !== 'exempt').reduce((best, s) => (byState[s] > byState[best] ? s : best), 'non-compliant' as StateName);
    const state = worst(overview.elevated.byState);
    const localState = worst(localOverview.elevated.byState);

    const search = (who: AdminCaller, filter: Omit<UserFilter, 'limit'>) => () => searchUsers(ctx!, who, { ...filter, limit: 50 });
    const pageOne = await searchUsers(ctx, globalAdmin, { compliance: state, limit: 50 });
    const after = pageOne.at(-1)?.email;
    const rows = (r: Awaited<ReturnType<typeof searchUsers>>) => `${r.length} rows${r.length ? ` (${r[0]!.email} … ${r.at(-1)!.email})` : ''}`;
    const counts = (d: Awaited<ReturnType<typeof dashboard>>) =>
      `${fmt(d.users.total)} active, ${fmt(d.elevated.total)} elevated (${STATE_NAMES.filter((s) => d.elevated.byState[s]).map((s) => `${s} ${fmt(d.elevated.byState[s])}`).join(', ')})`;

    const cases: Measured[] = [];
    cases.push(await measure('1. dashboard, global administrator', () => dashboard(ctx!, globalAdmin), counts));
    cases.push(await measure(`2. dashboard, local administrator (${fmt(local.users)} users)`, () => dashboard(ctx!, localAdmin), counts));
    cases.push(await measure(`3a. global, compliance ${state}`, search(globalAdmin, { compliance: state }), rows));
    cases.push(await measure('3b. global, role local-admin + method sms', search(globalAdmin, { role: 'local-admin', method: 'sms' }), rows));
    cases.push(await measure(`3c. local, compliance ${localState}`, search(localAdmin, { compliance: localState }), rows));
    cases.push(await measure("3d. global, q 'user-12'", search(globalAdmin, { q: 'user-12' }), rows));
    // A prefix that sorts late and one that matches nobody: each as cheap as an early one (index ranges).
    cases.push(await measure("3f. global, q 'user-999'", search(globalAdmin, { q: 'user-999' }), rows));
    cases.push(await measure("3g. global, q 'zz' (nobody)", search(globalAdmin, { q: 'zz' }), rows));
    cases.push(await measure(`3e. global, compliance ${state}, page 2`, search(globalAdmin, { compliance: state, ...(after ? { after } : {}) }), rows));

    console.log(
      `\n${database.label} — ${fmt(Number(counted.n))} users in ${ORGANISATIONS} organisations (${fmt(sizes[0]!.users)} to ${fmt(sizes.at(-1)!.users)} users; the local administrator's ${local.name}, ${fmt(local.users)}), ` +
        `${fmt(directory.disabled)} disabled, ${fmt(directory.exceptions)} live exceptions`,
    );
    console.log(`  everyone: ${counts(overview)}`);
    console.log(`  ${'case'.padEnd(58)} ${'median'.padStart(9)} ${'max'.padStart(9)}  statements  found`);
    for (const c of cases) {
      const miss = c.medianMs > GOAL_MS ? '  ✗ over 500 ms' : '';
      console.log(`  ${c.label.padEnd(58)} ${`${fmt(c.medianMs, 1)} ms`.padStart(9)} ${`${fmt(c.maxMs, 1)} ms`.padStart(9)}  ${fmt(c.statements, 0).padStart(10)}  ${c.found}${miss}`);
    }
    console.log(`  (goal < ${GOAL_MS} ms each; ${runs} timed calls after one warm-up)`);
    for (const c of cases) {
      if (c.medianMs <= GOAL_MS || !c.slowest) continue;
      console.log(`\n  ${c.label}: slowest statement ${fmt(c.slowest.ms, 1)} ms\n    ${shorten(c.slowest.text)}\n    parameters: ${c.slowest.params.length}`);
      console.log(await explain(ctx, dialect, c.slowest));
    }
    if (args.explain) {
      for (const c of cases) {
        console.log(`\n  ${c.label}: ${c.distinct.length} distinct statements`);
        for (const seen of c.distinct) {
          console.log(`\n   ${fmt(seen.ms, 1)} ms at most: ${shorten(seen.text)}\n    parameters: ${seen.params.length}`);
          console.log(await explain(ctx, dialect, seen));
        }
      }
    }
  } finally {
    await ctx?.close();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const targets = await benchTargets(args.database);
console.log(`Admin console benchmark on ${os.cpus().length} cores, Node ${process.version}`);
for (const target of targets) await run(target);
