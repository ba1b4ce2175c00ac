/**
 * Passkey-step benchmark: how many passkey assertions the second sign-in step verifies per second,
 * in-process, beside authenticator-app (TOTP) codes in the same run and on the same database, with their
 * p50/p99 latency and this process's CPU per verification. Both are measured the same way: a fresh read
 * of the method's row, then the strategy's verify(), which does the full work and wins its conditional
 * UPDATE (the TOTP step claim; the passkey's compare-and-set of the stored credential and its counter).
 * It prints figures and never fails on a time; it fails loudly if a first assertion is not accepted.
 *
 *   npm run bench:passkey-step -- [--seconds 3] [--database sqlite|postgres://…]
 *
 * Without --database it runs on SQLite, then on PostgreSQL at 127.0.0.1:5432 if that answers. Each run
 * gets a fresh database (a temporary SQLite file; a new PostgreSQL database, dropped afterwards).
 *
 * The passkeys are a software authenticator here: an ES256 (P-256) key pair per credential. What the
 * authenticator and the browser do (signing, building the response JSON) is done before each timed phase,
 * like code-step makes its codes beforehand; so is issuing the challenges (beginChallenge: an HMAC, which
 * the server does when it shows the challenge page, a request of its own).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { assertionFor, newSoftwareCredential, type SoftwareCredential } from '../test/helpers/software-authenticator.js';
import { DEFAULT_POSTGRES, freshDatabase, percentile, postgresAnswers, type Target } from './lib.js';
import { createAppContext, type AppContext } from '../src/app/context.js';
import { addOrganisation } from '../src/app/directory.js';
import { passkeyStrategy } from '../src/app/methods/passkey/index.js';
import type { StoredCredential } from '../src/app/methods/passkey/webauthn.js';
import { totpStrategy } from '../src/app/methods/totp/index.js';
import { generateTotp, TOTP_PERIOD_SECONDS, TOTP_SECRET_BYTES, totpSecretFromBytes, totpStep } from '../src/core/methods/totp.js';
import type { CodeVerification } from '../src/core/sign-in/flow.js';
import { loadConfig } from '../src/config/load.js';
import { sealText } from '../src/crypto/seal.js';
import type { ChallengeContext } from '../src/app/methods/strategy.js';
import type { MethodRow, NewUserRow, UserRow } from '../src/store/schema.js';

/** A generous ceiling on the TOTP rate (code-step's five times its goal), to size the codes made before timing. */
const PLANNED_RATE = { sqlite: 15000, postgres: 7500 } as const;
/** The same for passkey assertions, each signed beforehand (about 0.05 ms of this process's CPU apiece). */
const PASSKEY_PLANNED_RATE = { sqlite: 4000, postgres: 3000 } as const;
/** Passkey credentials per concurrent caller: it uses them round-robin, never one another's. */
const CREDENTIALS_PER_WORKER = 8;
/** As in code-step: a code is handed out only while its step is this far inside the accepted window. */
const WINDOW_MARGIN_MS = 1000;
const SETUP_BATCH = 250;
const PORT = 8080;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    database: { type: 'string' },
  },
});
const seconds = Number(args.seconds);
if (!(seconds > 0)) throw new Error('--seconds must be > 0');
if (args.database !== undefined && args.database !== 'sqlite' && !/^postgres(ql)?:\/\//.test(args.database)) {
  throw new Error('--database must be sqlite or a postgres:// address (of a server where a database can be created)');
}

const fmt = (n: number, digits = 1) => (Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

// ── The phase loop ──────────────────────────────────────────────────────────────────────────────────

interface PhaseResult {
  perSecond: number;
  latencies: number[];
  outcomes: Map<string, number>;
  cpuMsPerCall: number;
  exhaustedAfterMs: number | null;
}

/** A closed loop: caller i repeats `task(take(i))` until the time is up or its work runs out. */
async function phase<T>(concurrency: number, ms: number, take: (worker: number) => T | null, task: (item: T) => Promise<CodeVerification>): Promise<PhaseResult> {
  const latencies: number[] = [];
  const outcomes = new Map<string, number>();
  let exhaustedAt: number | null = null;
  const cpuBefore = ownCpuMs();
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        const item = take(worker);
        if (item === null) {
          exhaustedAt ??= performance.now();
          return;
        }
        const t0 = performance.now();
        const result = await task(item);
        const latency = performance.now() - t0;
        const outcome = result.ok ? 'ok' : result.reason;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (result.ok) latencies.push(latency);
      }
    }),
  );
  const elapsed = performance.now() - started;
  const calls = [...outcomes.values()].reduce((a, b) => a + b, 0);
  return {
    perSecond: latencies.length / (elapsed / 1000),
    latencies,
    outcomes,
    cpuMsPerCall: calls ? (ownCpuMs() - cpuBefore) / calls : NaN,
    exhaustedAfterMs: exhaustedAt === null ? null : exhaustedAt - started,
  };
}

// ── Set-up ──────────────────────────────────────────────────────────────────────────────────────────

interface NewUserMethod {
  user: NewUserRow & { id: string };
  method: { id: string; kind: string; label: string; secretSealed: string | null; data: string | null; lookupKey: string | null; totpStep: number | null };
}

/** Users, each with one active method, written through the store as an enrolment leaves them. */
async function createUsersWithMethods(ctx: AppContext, items: NewUserMethod[]): Promise<void> {
  const now = ctx.clock();
  const batches: NewUserMethod[][] = [];
  for (let i = 0; i < items.length; i += SETUP_BATCH) batches.push(items.slice(i, i + SETUP_BATCH));
  const writeBatch = (batch: NewUserMethod[]) =>
    ctx.store.transaction(async (repos) => {
      for (const { user, method } of batch) {
        await repos.users.insert(user);
        await repos.methods.insertPending({
          id: method.id,
          userId: user.id,
          kind: method.kind,
          label: method.label,
          phoneE164: null,
          secretSealed: method.secretSealed,
          now,
          pendingExpiresAt: new Date(now.getTime() + 15 * 60_000),
          data: method.data,
          lookupKey: method.lookupKey,
        });
        if (!(await repos.methods.activate(user.id, method.id, now, method.totpStep))) throw new Error(`could not activate method ${method.id}`);
      }
    });
  const parallel = ctx.store.dialect === 'postgres' ? 8 : 1;
  for (let i = 0; i < batches.length; i += parallel) await Promise.all(batches.slice(i, i + parallel).map(writeBatch));
}

function newUser(organisationId: string, tag: string, at: string): NewUserRow & { id: string } {
  return {
    id: randomUUID(),
    email: `bench-${tag}@example.org`,
    email_normalised: `bench-${tag}@example.org`,
    display_name: `Bench ${tag}`,
    organisation_id: organisationId,
    status: 'active',
    password_hash: null,
    password_changed_at: null,
    created_at: at,
    updated_at: at,
    default_method_id: null,
  };
}

// ── TOTP (as bench/code-step.ts) ────────────────────────────────────────────────────────────────────

interface TotpAccount {
  user: UserRow;
  methodId: string;
  seed: string;
  lastStep: number;
  busy: boolean;
}
interface TotpUse {
  account: TotpAccount;
  step: number;
  code: string;
}

function acceptedSteps(now = Date.now()): { lo: number; hi: number } {
  return { lo: totpStep(new Date(now + WINDOW_MARGIN_MS)) - 1, hi: totpStep(new Date(now - WINDOW_MARGIN_MS)) + 1 };
}

/** Fresh (method, step) pairs round-robin, at most one in flight per method, steps increasing; codes made beforehand. */
class TotpRotation {
  private cursor = 0;
  private readonly codes = new Map<string, string>();
  constructor(private readonly accounts: TotpAccount[]) {}

  prepare(phaseMs: number): void {
    const first = acceptedSteps().lo;
    const last = totpStep(new Date(Date.now() + phaseMs + 10_000)) + 1;
    for (const account of this.accounts) {
      for (let step = Math.max(first, account.lastStep + 1); step <= last; step++) {
        this.codes.set(`${account.methodId}:${step}`, generateTotp(account.seed, new Date((step * TOTP_PERIOD_SECONDS + TOTP_PERIOD_SECONDS / 2) * 1000)));
      }
    }
  }

  next(): TotpUse | null {
    const { lo, hi } = acceptedSteps();
    for (let tried = 0; tried < this.accounts.length; tried++) {
      const account = this.accounts[this.cursor]!;
      this.cursor = (this.cursor + 1) % this.accounts.length;
      if (account.busy) continue;
      const step = Math.max(account.lastStep + 1, lo);
      if (step > hi) continue;
      const code = this.codes.get(`${account.methodId}:${step}`);
      if (code === undefined) continue;
      account.busy = true;
      account.lastStep = step;
      return { account, step, code };
    }
    return null;
  }
}

// ── Passkeys: a software authenticator ──────────────────────────────────────────────────────────────

/** A software credential (test/helpers/software-authenticator.ts) and the method it is. */
interface Credential extends SoftwareCredential {
  user: UserRow;
  methodId: string;
}

interface Assertion {
  credential: Credential;
  challengeId: string;
  context: ChallengeContext;
  response: unknown;
}

// ── A run ───────────────────────────────────────────────────────────────────────────────────────────

async function runOn(target: Target): Promise<void> {
  const loadAtStart = os.loadavg()[0]!;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-passkey-step-'));
  const database = await freshDatabase(target, dataDir);
  let ctx: AppContext | undefined;
  try {
    const config = loadConfig({
      env: {
        // rpId "localhost", origin http://localhost:8080 (WebAuthn allows http on localhost).
        PUBLIC_URL: `http://localhost:${PORT}`,
        PORTCULLIS_SECRET: randomBytes(32).toString('base64url'),
        PORTCULLIS_DATA_DIR: dataDir,
        DATABASE_URL: database.url,
        LOG_LEVEL: 'silent',
      },
    });
    ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    const app = ctx;
    const publicUrl = new URL(app.config.publicUrl.toString());
    const origin = publicUrl.origin;
    // As code-step: SQLite is one connection that answers synchronously; PostgreSQL's pool has 10.
    const concurrency = target.kind === 'postgres' ? 8 : 1;
    const ms = seconds * 1000;
    const planned = Math.ceil(seconds * PLANNED_RATE[target.kind]);

    // Set-up: TOTP methods (three fresh codes each now) and passkey credentials, in their own users.
    const organisation = await addOrganisation(app, 'Bench Trust', { kind: 'system' });
    const at = app.clock().toISOString();
    const enrolledStep = totpStep(app.clock()) - 2;
    const totpCount = Math.ceil(planned / 3);
    const credentialCount = concurrency * CREDENTIALS_PER_WORKER;
    process.stderr.write(`${database.label}: creating ${totpCount} users with an authenticator app and ${credentialCount} with a passkey …\n`);
    const setupStarted = performance.now();
    const totpAccounts: TotpAccount[] = [];
    const credentials: Credential[] = [];
    const items: NewUserMethod[] = [];
    for (let i = 0; i < totpCount; i++) {
      const user = newUser(organisation.id, `totp-${i}`, at);
      const methodId = randomUUID();
      const seed = totpSecretFromBytes(randomBytes(TOTP_SECRET_BYTES));
      totpAccounts.push({ user: user as UserRow, methodId, seed, lastStep: enrolledStep, busy: false });
      items.push({
        user,
        method: { id: methodId, kind: 'totp', label: 'Authenticator app', secretSealed: sealText(app.keys.keyEncryption, seed, `totp-seed:${methodId}`), data: null, lookupKey: null, totpStep: enrolledStep },
      });
    }
    for (let i = 0; i < credentialCount; i++) {
      const user = newUser(organisation.id, `passkey-${i}`, at);
      const methodId = randomUUID();
      const id = randomBytes(16).toString('base64url');
      const credential = newSoftwareCredential(id);
      const stored: StoredCredential = {
        id,
        publicKey: credential.publicKey,
        counter: 0,
        transports: ['internal'],
        aaguid: '00000000-0000-0000-0000-000000000000',
        algorithm: -7,
        backupEligible: false,
        backedUp: false,
        userVerified: true,
      };
      credentials.push({ ...credential, user: user as UserRow, methodId });
      items.push({ user, method: { id: methodId, kind: 'passkey', label: 'Passkey', secretSealed: null, data: JSON.stringify(stored), lookupKey: id, totpStep: null } });
    }
    await createUsersWithMethods(app, items);
    // The users as the store returns them (every column), as a sign-in has them.
    const stored = new Map((await app.store.database.db.selectFrom('users').selectAll().execute()).map((u) => [u.id, u]));
    for (const holder of [...totpAccounts, ...credentials]) holder.user = stored.get(holder.user.id)!;
    const setupSeconds = (performance.now() - setupStarted) / 1000;

    /** Caller `worker`'s challenge context; its challenges are bound to it, as a flow's are to its cookie. */
    const contextOf = (worker: number): ChallengeContext => ({ purpose: 'sign-in', binding: `bench:${worker}`, ip: '127.0.0.1' });
    /** A challenge from the strategy and the authenticator's answer to it. */
    const setupRows = new Map<string, MethodRow>();
    const prepareAssertion = async (credential: Credential, context: ChallengeContext): Promise<Assertion> => {
      let row = setupRows.get(credential.methodId);
      if (!row) {
        row = await app.store.methods.findForUser(credential.user.id, credential.methodId);
        if (!row) throw new Error(`method ${credential.methodId} is gone`);
        setupRows.set(credential.methodId, row);
      }
      const { challengeId } = await passkeyStrategy.beginChallenge(app, credential.user, row, context);
      if (!challengeId) throw new Error('passkeyStrategy.beginChallenge gave no challenge');
      return { credential, challengeId, context, response: assertionFor(credential, challengeId, origin, { userHandle: Buffer.from(credential.user.id, 'utf8').toString('base64url') }) };
    };
    /**
     * One second-step verification: the method's row is read fresh (a sign-in reads it too, and verify()
     * compare-and-sets the credential JSON against what was read), then the strategy checks the assertion.
     */
    const verifyAssertion = async (assertion: Assertion): Promise<CodeVerification> => {
      const { credential } = assertion;
      const row = await app.store.methods.findForUser(credential.user.id, credential.methodId);
      if (!row) throw new Error(`method ${credential.methodId} is gone`);
      return passkeyStrategy.verify(app, credential.user, row, assertion.challengeId, { type: 'ceremony', response: assertion.response }, assertion.context);
    };

    // One assertion end to end before anything is timed.
    {
      const check = await verifyAssertion(await prepareAssertion(credentials[0]!, contextOf(0)));
      if (!check.ok) {
        // code-expired is what the strategy answers when its challenge check (challengeValid) refuses.
        throw new Error(`${database.label}: a first passkey assertion was refused (${check.reason}${check.reason === 'code-expired' ? ': the challenge beginChallenge issued was not accepted' : ''})`);
      }
      const row = await app.store.methods.findForUser(credentials[0]!.user.id, credentials[0]!.methodId);
      const counter = (JSON.parse(row?.data ?? '{}') as Partial<StoredCredential>).counter;
      if (counter !== credentials[0]!.counter) throw new Error(`${database.label}: the stored counter is ${counter}, not ${credentials[0]!.counter}, after a first assertion`);
      process.stderr.write(`${database.label}: a first passkey assertion verified (counter ${counter}).\n`);
    }

    // TOTP, as code-step's "fresh code, row read + verify()".
    const totpContext: ChallengeContext = { purpose: 'sign-in', binding: 'flow:bench', ip: '127.0.0.1' };
    const rotation = new TotpRotation(totpAccounts);
    rotation.prepare(ms);
    process.stderr.write(`${database.label}: TOTP codes, row read + verify(), ${seconds} s at concurrency ${concurrency} …\n`);
    const totp = await phase(
      concurrency,
      ms,
      () => rotation.next(),
      async (use: TotpUse) => {
        const row = await app.store.methods.findForUser(use.account.user.id, use.account.methodId);
        if (!row) throw new Error(`method ${use.account.methodId} is gone`);
        const result = await totpStrategy.verify(app, use.account.user, row, null, { type: 'code', code: use.code }, totpContext);
        use.account.busy = false;
        return result;
      },
    );

    // Passkeys: each caller's assertions, made beforehand over its own credentials round-robin, in
    // counter order per credential (the caller sends them in that order, one at a time).
    const plannedAssertions = Math.ceil(seconds * PASSKEY_PLANNED_RATE[target.kind]);
    process.stderr.write(`${database.label}: making ${plannedAssertions} passkey assertions …\n`);
    const queues: Assertion[][] = Array.from({ length: concurrency }, () => []);
    const perWorker = Math.ceil(plannedAssertions / concurrency);
    for (let worker = 0; worker < concurrency; worker++) {
      const own = credentials.slice(worker * CREDENTIALS_PER_WORKER, (worker + 1) * CREDENTIALS_PER_WORKER);
      const context = contextOf(worker);
      for (let i = 0; i < perWorker; i++) queues[worker]!.push(await prepareAssertion(own[i % own.length]!, context));
    }
    const cursors = new Array<number>(concurrency).fill(0);
    process.stderr.write(`${database.label}: passkey assertions, row read + verify(), ${seconds} s at concurrency ${concurrency} …\n`);
    const passkey = await phase(concurrency, ms, (worker) => queues[worker]![cursors[worker]!++] ?? null, verifyAssertion);

    const line = (label: string, r: PhaseResult): [string, string] => {
      const others = [...r.outcomes].filter(([outcome]) => outcome !== 'ok');
      const notes = [
        `non-ok: ${others.length ? others.map(([o, n]) => `${n} ${o}`).join(', ') : 0}`,
        r.exhaustedAfterMs === null ? '' : `ran out of prepared work after ${fmt(r.exhaustedAfterMs / 1000)} s (the rate is over that time)`,
      ].filter(Boolean);
      return [
        label,
        `${fmt(r.perSecond, 0).padStart(6)} /s   p50 ${fmt(percentile(r.latencies, 50), 3)} ms   p99 ${fmt(percentile(r.latencies, 99), 3)} ms` +
          `   CPU ${fmt(r.cpuMsPerCall, 3)} ms per verification   (n=${r.latencies.length}; ${notes.join('; ')})`,
      ];
    };
    const rows = [line('TOTP codes verified/s:', totp), line('passkey assertions verified/s:', passkey)];
    const width = Math.max(...rows.map(([label]) => label.length)) + 2;
    process.stdout.write(
      `\nbench/passkey-step  (node ${process.version}, ${os.availableParallelism()} CPUs, load ${loadAtStart.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}, ` +
        `${database.label}, concurrency ${concurrency}, ${seconds} s each, row read + verify(), ${totpAccounts.length} TOTP methods and ${credentials.length} passkeys made in ${fmt(setupSeconds)} s)\n`,
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
