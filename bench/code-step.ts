/**
 * Code-step benchmark: how many authenticator-app codes the second sign-in step can verify per second,
 * in-process, with replay protection on (goal ≥ 3,000/s on SQLite and ≥ 1,500/s on PostgreSQL on the
 * 2-core development machine), and their p50/p99 latency. Every accepted verification is a fresh, valid
 * code for a step its method has not used yet, so it does the full work: open the sealed seed, check the
 * code against the current step ±1, and win the conditional UPDATE that claims the step. The refused
 * replays an attacker would send are measured apart. It prints figures and never fails on a time.
 *
 *   npm run bench:code-step -- [--seconds 5] [--concurrency N] [--methods N] [--database sqlite|postgres://…]
 *
 * Without --database it runs on SQLite, then on PostgreSQL at 127.0.0.1:5432 if that answers. Each run
 * gets a fresh database (a temporary SQLite file; a new PostgreSQL database, dropped afterwards).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { insertTotpMethod } from './fleet.js';
import { DEFAULT_POSTGRES, freshDatabase, percentile, postgresAnswers, type Target } from './lib.js';
import { createAppContext, type AppContext } from '../src/app/context.js';
import { addOrganisation } from '../src/app/directory.js';
import { totpStrategy } from '../src/app/methods/totp/index.js';
import { generateTotp, TOTP_PERIOD_SECONDS, totpStep } from '../src/core/methods/totp.js';
import type { CodeVerification } from '../src/core/sign-in/flow.js';
import { loadConfig } from '../src/config/load.js';
import type { ChallengeContext } from '../src/app/methods/strategy.js';
import type { MethodRow, UserRow } from '../src/store/schema.js';

const GOALS = { sqlite: 3000, postgres: 1500 } as const;
/**
 * A code is only handed out while its step is safely inside the server's window of now ±1 step, this far
 * from either edge, so a step boundary passing while a verification waits its turn cannot turn a valid
 * code into an expired one.
 */
const WINDOW_MARGIN_MS = 1000;
/** Set-up rows per transaction: enough to amortise the commit, small enough to keep transactions short. */
const SETUP_BATCH = 250;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string' },
    methods: { type: 'string' },
    database: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const methodsOption = args.methods === undefined ? undefined : Number(args.methods);
const concurrencyOption = args.concurrency === undefined ? undefined : Number(args.concurrency);
if (!(seconds > 0)) throw new Error('--seconds must be > 0');
if (methodsOption !== undefined && !(Number.isInteger(methodsOption) && methodsOption >= 1)) throw new Error('--methods must be a whole number ≥ 1');
if (concurrencyOption !== undefined && !(Number.isInteger(concurrencyOption) && concurrencyOption >= 1)) throw new Error('--concurrency must be a whole number ≥ 1');
if (args.database !== undefined && args.database !== 'sqlite' && !/^postgres(ql)?:\/\//.test(args.database)) {
  throw new Error('--database must be sqlite or a postgres:// address (of a server where a database can be created)');
}

const fmt = (n: number, digits = 1) => (Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** One user's authenticator app, with what the bench (the user's phone) knows about it. */
interface Account {
  user: UserRow;
  /** The row as a fresh read would return it now: the bench mirrors each step it claims. */
  row: MethodRow;
  seed: string;
  /** The last step used or handed out; codes are used in increasing steps, as the server demands. */
  lastStep: number;
  busy: boolean;
  codes: Map<number, string>;
}

/** A verification to make: a code for `step`, and the method's row as it was before the step was claimed. */
interface Use {
  account: Account;
  step: number;
  code: string;
  rowBefore: MethodRow;
}

/** The steps the server accepts now (now ±1), narrowed by the margin at both ends. */
function acceptedSteps(now = Date.now()): { lo: number; hi: number } {
  return { lo: totpStep(new Date(now + WINDOW_MARGIN_MS)) - 1, hi: totpStep(new Date(now - WINDOW_MARGIN_MS)) + 1 };
}

/**
 * Hands out fresh (method, step) pairs round-robin: each pass over the methods uses one step of each,
 * oldest accepted first, so a method yields up to three codes at once (now−1, now, now+1) and one more
 * per 30-second step after that. At most one verification per method is in flight, so the steps of a
 * method reach the server in increasing order and every one of them must win its claim.
 */
class Rotation {
  private cursor = 0;
  constructor(private readonly accounts: Account[]) {}

  next(): Use | null {
    const { lo, hi } = acceptedSteps();
    for (let tried = 0; tried < this.accounts.length; tried++) {
      const account = this.accounts[this.cursor]!;
      this.cursor = (this.cursor + 1) % this.accounts.length;
      if (account.busy) continue;
      const step = Math.max(account.lastStep + 1, lo);
      if (step > hi) continue;
      const code = account.codes.get(step);
      // Codes are made before each timed phase; a step not made then is not handed out.
      if (code === undefined) continue;
      account.busy = true;
      account.lastStep = step;
      return { account, step, code, rowBefore: account.row };
    }
    return null;
  }
}

/**
 * Makes the codes of every step a phase may use, before it starts: generating them is the authenticator
 * app's work, not the server's, and must not be timed.
 */
function prepareCodes(accounts: Account[], phaseMs: number): void {
  const first = acceptedSteps().lo;
  const last = totpStep(new Date(Date.now() + phaseMs + 10_000)) + 1;
  for (const account of accounts) {
    for (const step of account.codes.keys()) if (step < first) account.codes.delete(step);
    for (let step = Math.max(first, account.lastStep + 1); step <= last; step++) {
      if (!account.codes.has(step)) account.codes.set(step, generateTotp(account.seed, new Date((step * TOTP_PERIOD_SECONDS + TOTP_PERIOD_SECONDS / 2) * 1000)));
    }
  }
}

interface PhaseResult {
  perSecond: number;
  /** Of the calls with the expected outcome only. */
  latencies: number[];
  outcomes: Map<string, number>;
  expected: 'ok' | 'code-reused';
  cpuMsPerCall: number;
  /** Set when the fresh codes ran out before the time was up: the rate is over the time actually used. */
  exhaustedAfterMs: number | null;
}

/**
 * A closed loop: `concurrency` callers repeat `task` until the time is up or `take` has nothing left.
 * `expected` is the outcome the phase is about (ok, or code-reused); anything else is counted and printed.
 */
async function phase<T>(
  concurrency: number,
  ms: number,
  take: () => T | null,
  task: (item: T) => Promise<CodeVerification>,
  expected: 'ok' | 'code-reused',
): Promise<PhaseResult> {
  const latencies: number[] = [];
  const outcomes = new Map<string, number>();
  let exhaustedAt: number | null = null;
  const cpuBefore = ownCpuMs();
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const item = take();
        if (item === null) {
          exhaustedAt ??= performance.now();
          return;
        }
        const t0 = performance.now();
        const result = await task(item);
        const latency = performance.now() - t0;
        const outcome = result.ok ? 'ok' : result.reason;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (outcome === expected) latencies.push(latency);
      }
    }),
  );
  const elapsed = performance.now() - started;
  const calls = [...outcomes.values()].reduce((a, b) => a + b, 0);
  return {
    perSecond: latencies.length / (elapsed / 1000),
    latencies,
    outcomes,
    expected,
    cpuMsPerCall: calls ? (ownCpuMs() - cpuBefore) / calls : NaN,
    exhaustedAfterMs: exhaustedAt === null ? null : exhaustedAt - started,
  };
}

/** Users, each with one active authenticator app, made through the store as an enrolment leaves them. */
async function createAccounts(ctx: AppContext, count: number): Promise<Account[]> {
  const organisation = await addOrganisation(ctx, 'Bench Trust', { kind: 'system' });
  const now = ctx.clock();
  // As if enrolled a minute ago: the enrolment's step is used, and now−1, now and now+1 are not.
  const enrolledStep = totpStep(now) - 2;
  const seeds = new Map<string, string>();
  const batches: number[][] = [];
  for (let i = 0; i < count; i += SETUP_BATCH) batches.push(Array.from({ length: Math.min(SETUP_BATCH, count - i) }, (_, j) => i + j));
  const writeBatch = (batch: number[]) =>
    ctx.store.transaction(async (repos) => {
      for (const i of batch) {
        const userId = randomUUID();
        const at = now.toISOString();
        await repos.users.insert({
          id: userId,
          email: `bench-${i}@example.org`,
          email_normalised: `bench-${i}@example.org`,
          display_name: `Bench ${i}`,
          organisation_id: organisation.id,
          status: 'active',
          password_hash: null,
          password_changed_at: null,
          created_at: at,
          updated_at: at,
          default_method_id: null,
        });
        const { methodId, seed } = await insertTotpMethod(ctx, repos, userId, now, enrolledStep);
        seeds.set(methodId, seed);
      }
    });
  // PostgreSQL takes several transactions at once (its pool has 10 connections); SQLite runs them in turn.
  const parallel = ctx.store.dialect === 'postgres' ? 8 : 1;
  for (let i = 0; i < batches.length; i += parallel) await Promise.all(batches.slice(i, i + parallel).map(writeBatch));

  const db = ctx.store.database.db;
  const users = new Map((await db.selectFrom('users').selectAll().execute()).map((u) => [u.id, u]));
  const rows = await db.selectFrom('methods').selectAll().where('kind', '=', 'totp').execute();
  return rows.map((row) => ({ user: users.get(row.user_id)!, row, seed: seeds.get(row.id)!, lastStep: enrolledStep, busy: false, codes: new Map() }));
}

async function runOn(target: Target): Promise<void> {
  // Another process's load skews every figure here: the 1-minute load average is printed, before and after.
  const loadAtStart = os.loadavg()[0]!;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-code-step-'));
  const database = await freshDatabase(target, dataDir);
  let ctx: AppContext | undefined;
  try {
    const config = loadConfig({
      env: {
        PUBLIC_URL: 'http://localhost:8080',
        PORTCULLIS_SECRET: randomBytes(32).toString('base64url'),
        PORTCULLIS_DATA_DIR: dataDir,
        DATABASE_URL: database.url,
        LOG_LEVEL: 'silent',
      },
    });
    ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    const app = ctx;
    // SQLite is one connection that answers synchronously: more callers only queue. PostgreSQL's pool has 10.
    const concurrency = concurrencyOption ?? (target.kind === 'postgres' ? 8 : 1);
    // Each method gives three fresh codes at once: enough methods for both fresh phases at five times the
    // goal (a quiet machine runs SQLite at about four times it). If they run out, the phase ends early
    // and its rate is over the time it ran, which the output says.
    const methodCount = methodsOption ?? Math.ceil((2 * seconds * 5 * GOALS[target.kind]) / 3);

    process.stderr.write(`${database.label}: creating ${methodCount} users with an authenticator app …\n`);
    const setupStarted = performance.now();
    const accounts = await createAccounts(app, methodCount);
    const setupSeconds = (performance.now() - setupStarted) / 1000;
    // Half the methods for each fresh phase, so a fast first phase cannot leave the second without codes.
    const halves = [accounts.slice(0, Math.ceil(accounts.length / 2)), accounts.slice(Math.ceil(accounts.length / 2))] as const;
    const rotations = halves.map((half) => new Rotation(half));
    const context: ChallengeContext = { purpose: 'sign-in', binding: 'flow:bench', ip: '127.0.0.1' };
    const used: Use[] = [];

    /** A fresh code; on success the bench's copy of the row takes the claimed step, as a re-read would. */
    const fresh = (readRow: boolean) => async (use: Use) => {
      const { account } = use;
      const row = readRow ? await app.store.methods.findForUser(account.user.id, account.row.id) : account.row;
      if (!row) throw new Error(`method ${account.row.id} is gone`);
      const result = await totpStrategy.verify(app, account.user, row, null, { type: 'code', code: use.code }, context);
      // A refusal should not happen here; it is counted and printed, and its step stays spent.
      if (result.ok) {
        account.row = { ...account.row, totp_last_step: use.step };
        used.push(use);
      }
      account.busy = false;
      return result;
    };

    const ms = seconds * 1000;
    const results: Array<[string, PhaseResult]> = [];
    prepareCodes(halves[0], ms);
    process.stderr.write(`${database.label}: fresh codes, verify() alone, ${seconds} s at concurrency ${concurrency} …\n`);
    results.push(['fresh code, verify():', await phase(concurrency, ms, () => rotations[0]!.next(), fresh(false), 'ok')]);
    prepareCodes(halves[1], ms);
    process.stderr.write(`${database.label}: fresh codes, row read + verify() …\n`);
    results.push(['fresh code, row read + verify():', await phase(concurrency, ms, () => rotations[1]!.next(), fresh(true), 'ok')]);

    // Replays of codes just accepted, while their steps are still inside the window (an older code is
    // refused as incorrect, which is not the path measured here).
    let replayCursor = 0;
    const nextReplay = (): Use | null => {
      const { lo, hi } = acceptedSteps();
      for (let tried = 0; tried < used.length; tried++) {
        const use = used[replayCursor]!;
        replayCursor = (replayCursor + 1) % used.length;
        if (use.step >= lo && use.step <= hi) return use;
      }
      return null;
    };
    process.stderr.write(`${database.label}: replays, row re-read …\n`);
    results.push([
      'replay, row re-read (the check refuses):',
      await phase(
        concurrency,
        ms,
        nextReplay,
        async (use) => {
          const row = await app.store.methods.findForUser(use.account.user.id, use.account.row.id);
          if (!row) throw new Error(`method ${use.account.row.id} is gone`);
          return totpStrategy.verify(app, use.account.user, row, null, { type: 'code', code: use.code }, context);
        },
        'code-reused',
      ),
    ]);
    process.stderr.write(`${database.label}: replays racing the first use …\n`);
    results.push([
      'replay racing the first use (the UPDATE refuses):',
      // The row as read before the step was claimed: what a request racing the winning one holds.
      await phase(concurrency, ms, nextReplay, (use) => totpStrategy.verify(app, use.account.user, use.rowBefore, null, { type: 'code', code: use.code }, context), 'code-reused'),
    ]);

    const goal = GOALS[target.kind];
    const rows = results.map(([label, r]): [string, string] => {
      const others = [...r.outcomes].filter(([outcome]) => outcome !== r.expected);
      const notes = [
        others.length ? `unexpected: ${others.map(([o, n]) => `${n} ${o}`).join(', ')}` : '',
        r.exhaustedAfterMs === null ? '' : `fresh codes ran out after ${fmt(r.exhaustedAfterMs / 1000)} s: raise --methods`,
      ].filter(Boolean);
      return [
        label,
        `${fmt(r.perSecond, 0).padStart(6)} /s   p50 ${fmt(percentile(r.latencies, 50), 2)} ms  p99 ${fmt(percentile(r.latencies, 99), 2)} ms` +
          `   CPU ${fmt(r.cpuMsPerCall * 1000, 0)} µs/call in this process   (n=${r.latencies.length})${notes.length ? `   ${notes.join('; ')}` : ''}`,
      ];
    });
    const freshRate = results[0]![1].perSecond;
    const readRate = results[1]![1].perSecond;
    rows.push([`goal ≥ ${goal.toLocaleString('en-GB')}/s:`, `verify() ${freshRate >= goal ? 'met' : 'NOT met'}; row read + verify() ${readRate >= goal ? 'met' : 'NOT met'}`]);
    const width = Math.max(...rows.map(([label]) => label.length)) + 2;
    process.stdout.write(
      `\nbench/code-step  (node ${process.version}, ${os.availableParallelism()} CPUs, load ${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}, ` +
        `${database.label}, concurrency ${concurrency}, ${seconds} s each, ${accounts.length} methods made in ${fmt(setupSeconds)} s)\n`,
    );
    for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}${value}\n`);
  } finally {
    await ctx?.close();
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const targets: Target[] = [];
if (args.database === undefined) {
  targets.push({ kind: 'sqlite' });
  if (await postgresAnswers(DEFAULT_POSTGRES)) targets.push({ kind: 'postgres', adminUrl: DEFAULT_POSTGRES });
  else process.stderr.write(`PostgreSQL does not answer at ${new URL(DEFAULT_POSTGRES).host}: SQLite only.\n`);
} else {
  targets.push(args.database === 'sqlite' ? { kind: 'sqlite' } : { kind: 'postgres', adminUrl: args.database });
}
for (const target of targets) await runOn(target);
