/**
 * Policy benchmark: pure evaluations per second, and `report compliance` over a directory the size of a
 * national email service — 1.5 million users, 10% with an elevated role — on SQLite and PostgreSQL.
 * Goals (docs/performance.md): the summary in under 2 s; the per-user CSV streamed at 200,000 rows/s or
 * more with flat memory. It prints figures and never fails on a time.
 *
 *   npm run bench:policy -- [--users 1500000] [--database sqlite|postgres://…] [--seconds 3]
 *
 * Without --database it runs on SQLite, then on PostgreSQL at 127.0.0.1:5432 if that answers. Each run
 * fills a fresh database (a temporary SQLite file; a new PostgreSQL database, dropped afterwards) with
 * the shipped example policy applied, and times the same code the CLI runs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import pino from 'pino';
import { benchTargets, freshDatabase, type Target } from './lib.js';
import { compliancePages, complianceSummary, type ComplianceRow } from '../src/app/compliance.js';
import { createAppContext, type AppContext } from '../src/app/context.js';
import { addOrganisation } from '../src/app/directory.js';
import { applyPolicyText, currentPolicy } from '../src/app/policy.js';
import { writeComplianceCsv } from '../src/app/compliance-csv.js';
import { evaluatePolicy, type PolicySubject } from '../src/core/policy/evaluate.js';
import { profileKey } from '../src/core/policy/profile.js';
import { loadConfig } from '../src/config/load.js';

const GOALS = { summarySeconds: 2, csvRowsPerSecond: 200_000 };

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '1500000' },
    database: { type: 'string' },
    seconds: { type: 'string', default: '3' },
  },
});
const userCount = Number(args.users);
const seconds = Number(args.seconds);
if (!(Number.isInteger(userCount) && userCount >= 1000)) throw new Error('--users must be a whole number ≥ 1000');
if (!(seconds > 0)) throw new Error('--seconds must be > 0');
if (args.database !== undefined && args.database !== 'sqlite' && !/^postgres(ql)?:\/\//.test(args.database)) {
  throw new Error('--database must be sqlite or a postgres:// address (of a server where a database can be created)');
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-GB', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rssMb = () => process.memoryUsage().rss / 1024 / 1024;

/**
 * Registered methods, as a national service might have them two years into MFA: many on text
 * messages, some on calls and code apps, a growing share on push, and one in eight with none yet.
 */
function methodsFor(i: number): string[] {
  const r = (i * 2654435761) % 100;
  if (r < 12) return [];
  if (r < 50) return ['sms'];
  if (r < 58) return ['voice'];
  if (r < 68) return ['totp'];
  if (r < 78) return ['sms', 'totp'];
  if (r < 92) return ['push'];
  return ['push', 'sms'];
}

/** Fills the directory with multi-row inserts in large transactions (seeding is not what is measured). */
async function seed(ctx: AppContext, count: number): Promise<void> {
  const db = ctx.store.database.db;
  const organisations = await Promise.all(Array.from({ length: 20 }, (_, i) => addOrganisation(ctx, `Trust ${i + 1}`, { kind: 'system' })));
  const group = await ctx.store.groups.create('MFA pilot', 'Early adopters', new Date());
  const now = new Date().toISOString();
  const soon = new Date(Date.now() + 30 * 86_400_000).toISOString();
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
          const organisation = organisations[i % organisations.length]!;
          const elevatedRole = i % 10 === 0 ? (i % 30 === 0 ? 'helpdesk' : 'local-admin') : null;
          const kinds = methodsFor(i);
          const inGroup = i % 50 === 0;
          users.push({
            id,
            email: `user${i}@nhs.example`,
            email_normalised: `user${i}@nhs.example`,
            display_name: `User ${i}`,
            organisation_id: organisation.id,
            status: i % 97 === 0 ? ('disabled' as const) : ('active' as const),
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
          if (i % 1000 === 10) exceptions.push({ id: randomUUID(), user_id: id, requirement_id: 'elevated-rights-push', until: soon, reason: 'Lost phone', created_by: 'bench', created_at: now, revoked_at: null, revoked_by: null });
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
}

/** Pure evaluations per second of the shipped policy, over a mix of subjects (no cache in the way). */
function evaluationsPerSecond(policy: Parameters<typeof evaluatePolicy>[1], ms: number): number {
  const subjects: PolicySubject[] = Array.from({ length: 64 }, (_, i) => ({
    roles: i % 10 === 0 ? ['user', 'local-admin'] : ['user'],
    elevated: i % 10 === 0,
    groups: i % 7 === 0 ? ['MFA pilot'] : [],
    registered: methodsFor(i).map((kind, j) => ({ id: `m${j}`, kind: kind as 'sms', detail: '' })),
    defaultMethodId: null,
    hasActiveTap: i % 13 === 0,
    exceptions: [],
    snoozes: i % 5 === 0 ? [{ campaignId: 'move-to-push', count: 1, until: new Date(Date.now() - 1000) }] : [],
  }));
  const now = new Date();
  let n = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    for (let i = 0; i < 1000; i++) evaluatePolicy(subjects[(n + i) % subjects.length]!, policy, now);
    n += 1000;
  }
  return n / ((performance.now() - started) / 1000);
}

/** A sink that counts bytes, as a pipe to a file would take them. */
function countingSink(): Writable & { bytes: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      sink.bytes += chunk.length;
      done();
    },
  }) as Writable & { bytes: number };
  sink.bytes = 0;
  return sink;
}

async function run(target: Target): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-bench-policy-'));
  const database = await freshDatabase(target, dataDir);
  let ctx: AppContext | undefined;
  try {
    const config = loadConfig({
      env: { PUBLIC_URL: 'http://localhost:8080', PORTCULLIS_SECRET: randomBytes(32).toString('base64url'), PORTCULLIS_DATA_DIR: dataDir, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
    });
    ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    // The article's policy with its date a week ago, so every state occurs.
    const example = await readFile(new URL('../examples/nhsmail-elevated-rights.yaml', import.meta.url), 'utf8');
    const lastWeek = new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 10);
    await applyPolicyText(ctx, example.replace(/effective: 2023-11-30/, `effective: ${lastWeek}\n    graceDays: 14`).replace(/ *graceDays: 0 # the article gives none\n/, ''), { kind: 'system' });
    const { policy } = await currentPolicy(ctx);

    process.stderr.write(`${database.label}: filling ${fmt(userCount)} users …\n`);
    const seedStarted = performance.now();
    await seed(ctx, userCount);
    process.stderr.write(`${database.label}: filled in ${fmt((performance.now() - seedStarted) / 1000, 0)} s\n`);

    const rate = evaluationsPerSecond(policy, seconds * 1000);

    // The summary, twice: the first run reads the tables from disk, the second from the cache.
    const times: number[] = [];
    let summary;
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      summary = await complianceSummary(ctx);
      times.push((performance.now() - started) / 1000);
    }

    // The CSV, streamed to a counting sink; memory sampled as it goes, the peak of the first half of the
    // rows apart from the second's: flat memory means the second half needs no more than the first.
    const rssBefore = rssMb();
    const half = summary!.users.total / 2;
    let streamed = 0;
    const peaks = [rssBefore, rssBefore];
    const sample = () => {
      const which = streamed < half ? 0 : 1;
      peaks[which] = Math.max(peaks[which]!, rssMb());
    };
    const sampler = setInterval(sample, 50);
    async function* counted(pages: AsyncIterable<ComplianceRow[]>) {
      for await (const page of pages) {
        streamed += page.length;
        yield page;
      }
    }
    const sink = countingSink();
    const csvStarted = performance.now();
    const rows = await writeComplianceCsv(counted(compliancePages(ctx)), sink);
    const csvSeconds = (performance.now() - csvStarted) / 1000;
    clearInterval(sampler);
    sample();

    let json = 0;
    const jsonStarted = performance.now();
    for await (const page of compliancePages(ctx, { onlyAtRisk: true })) json += page.length;
    const atRiskSeconds = (performance.now() - jsonStarted) / 1000;

    const s = summary!;
    console.log(`\n${database.label} — ${fmt(userCount)} users (${fmt(s.users.total)} active, ${fmt(s.elevated.total)} elevated), policy version ${s.policyVersion}`);
    console.log(`  pure evaluations:          ${fmt(rate)}/s (one core, no cache)`);
    console.log(`  summary:                   ${fmt(times[0]!, 2)} s first, ${fmt(times[1]!, 2)} s again (goal < ${GOALS.summarySeconds} s) — ${s.combinations} combinations evaluated`);
    console.log(`  CSV, every user:           ${fmt(rows)} rows in ${fmt(csvSeconds, 2)} s = ${fmt(rows / csvSeconds)} rows/s (goal ≥ ${fmt(GOALS.csvRowsPerSecond)}), ${fmt(sink.bytes / 1024 / 1024, 1)} MB`);
    console.log(`  memory while streaming:    RSS ${fmt(rssBefore)} MB before; peak ${fmt(peaks[0]!)} MB in the first half of the rows, ${fmt(peaks[1]!)} MB in the second`);
    console.log(`  at-risk rows only:         ${fmt(json)} rows in ${fmt(atRiskSeconds, 2)} s`);
    console.log(`  states (all users):        ${Object.entries(s.users.byState).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
    console.log(`  states (elevated):         ${Object.entries(s.elevated.byState).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
  } finally {
    await ctx?.close();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const targets = await benchTargets(args.database);
console.log(`Policy benchmark on ${os.cpus().length} cores, Node ${process.version}`);
for (const target of targets) await run(target);
