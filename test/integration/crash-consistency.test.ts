/**
 * Issue #17 point 1, crash consistency: `portcullis serve` (a real process) is SIGKILLed in the middle
 * of a load of sign-ins (password and authenticator code), authenticator-app enrolments and policy edits
 * (`portcullis policy apply`, one of which is SIGKILLed too), then started again on the same database,
 * on SQLite and on PostgreSQL. Email goes over SMTP to a sink in this process, which holds its final
 * reply a moment, so messages are accepted while the server dies. After the restart:
 *
 * - every write whose confirmation the client received is there: a sign-in that reached /account has a
 *   session that still works and its audit event; an enrolment that reached "added" is active and
 *   audited; a policy edit that exited 0 is a version with its audit event;
 * - an enrolment started but not confirmed cannot be used to sign in (the password step does not ask for it);
 * - every active method has its `method.added` event and its email (they commit together);
 * - every email in the outbox was delivered exactly once (by its Message-ID, the outbox id), or is a dead
 *   letter that `portcullis outbox --dead` shows — "outcome unknown" when the node died mid-send — and
 *   none was delivered twice;
 * - the audit log kept every row read before the crash, unchanged and in order, its chain verifies
 *   (`portcullis audit verify`), it still refuses updates,
 *   and (SQLite) has no gap in its ids.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext, type AppContext } from '../../src/app/context.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { OUTCOME_UNKNOWN } from '../../src/channels/outbox.js';
import { loadConfig } from '../../src/config/load.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { sealText } from '../../src/crypto/seal.js';
import { freePort } from '../helpers/browser.js';
import { BIN, runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';
import { FetchBrowser } from '../helpers/fetch-browser.js';
import { startServer, startSmtpSink, type ServerProcess, type SmtpSink } from '../helpers/server-process.js';

const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const POLICY = `version: 1
timeZone: UTC
methods:
  sms: { enabled: true, include: [all] }
  voice: { enabled: true, include: [all] }
  totp: { enabled: true, include: [all] }
  push: { enabled: true, include: [all] }
  tap: { enabled: true, include: [all] }
`;

/** A base32 TOTP seed (160 bits). */
function newSeed(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return Array.from(randomBytes(32), (b) => alphabet[b % 32]).join('');
}

const keyFrom = (html: string) => /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(html)?.[1]?.replace(/ /g, '') ?? null;

describe.each(dialects)('a SIGKILL under load on %s (issue #17)', (dialect) => {
  let database: TestDatabase;
  let ctx: AppContext;
  let sink: SmtpSink;
  let server: ServerProcess | undefined;
  let env: Record<string, string>;
  let port = 0;
  const base = () => `http://localhost:${port}`;
  const policyDir = mkdtempSync(path.join(os.tmpdir(), 'pc-crash-policy-'));
  const run = randomUUID().slice(0, 8);
  const signers: Array<{ email: string; seed: string }> = [];
  const enrollers: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    sink = await startSmtpSink({ replyDelayMs: 150 });
    port = await freePort();
    env = {
      DATABASE_URL: database.url,
      PORTCULLIS_SECRET: TEST_SECRET,
      PUBLIC_URL: `http://localhost:${port}`,
      EMAIL_PROVIDER: 'smtp',
      SMTP_URL: sink.url,
      EMAIL_FROM: 'Portcullis <no-reply@portcullis.test>',
      // A claim lapses after 8 s, so a message left mid-send by the killed node is settled quickly.
      DELIVERY_SEND_TIMEOUT: '2s',
      SIGN_IN_LOCKOUT_THRESHOLD: '100',
    };
    const config = loadConfig({ env: { ...env, PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-crash-')), LOG_LEVEL: 'silent' } });
    ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
    await addOrganisation(ctx, 'Test Trust', actor);
    // Users made in parallel (each password is hashed with argon2id: the slow part of the set-up).
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const email = `signer-${run}-${i}@example.org`;
        const { user } = await addUser(ctx, { email, displayName: `Signer ${i}`, organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
        // An authenticator app set up earlier (what enrolment leaves behind), its seed sealed as the app seals it.
        const seed = newSeed();
        const id = randomUUID();
        const now = new Date();
        await ctx.store.methods.insertPending({
          id,
          userId: user.id,
          kind: 'totp',
          label: 'Authenticator app',
          phoneE164: null,
          secretSealed: sealText(ctx.keys.keyEncryption, seed, `totp-seed:${id}`),
          now,
          pendingExpiresAt: new Date(now.getTime() + 600_000),
        });
        await ctx.store.methods.activate(user.id, id, now, null);
        signers.push({ email, seed });
      }),
    );
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const email = `enroller-${run}-${i}@example.org`;
        await addUser(ctx, { email, displayName: `Enroller ${i}`, organisation: 'Test Trust', roles: [], password: PASSWORD }, actor);
        enrollers.push(email);
      }),
    );
    writeFileSync(path.join(policyDir, 'policy.yaml'), POLICY);
    server = await startServer(env, { port });
  }, 60_000);

  afterAll(async () => {
    await server?.kill();
    await ctx?.close();
    await sink?.close();
    await database?.drop();
  });

  it('loses no confirmed write, leaves no half-enrolled method usable, sends each email at most once and keeps the audit log whole', async () => {
    const cliEnv = { ...env, PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-crash-cli-')), LOG_LEVEL: 'silent' };
    let killed = false;
    const confirmedSignIns: FetchBrowser[] = [];
    const confirmedEnrolments: Array<{ email: string; methodId: string }> = [];
    const unconfirmedEnrolments: Array<{ email: string; methodId: string; key: string }> = [];
    const confirmedPolicies: string[] = [];

    /** Runs `step` until the server dies under it (a refused or reset connection) or the list is done. */
    const guarded = async <T>(items: T[], step: (item: T) => Promise<void>) => {
      for (const item of items) {
        if (killed) return;
        try {
          await step(item);
        } catch {
          if (killed) return; // the server died mid-request: nothing was confirmed
          throw new Error('a request failed while the server was up');
        }
      }
    };

    const signIn = async ({ email, seed }: { email: string; seed: string }) => {
      const browser = new FetchBrowser(base());
      await browser.send('GET', '/sign-in');
      await browser.send('POST', '/sign-in', { email });
      await browser.send('GET', '/sign-in/password');
      const afterPassword = await browser.send('POST', '/sign-in/password', { password: PASSWORD });
      expect(afterPassword.location).toBe('/sign-in/verify');
      await browser.send('GET', '/sign-in/verify');
      const done = await browser.send('POST', '/sign-in/verify', { code: generateTotp(seed, new Date()) });
      if (done.status === 303 && done.location === '/account') confirmedSignIns.push(browser);
    };

    const enrol = async (email: string, index: number) => {
      const browser = new FetchBrowser(base());
      await browser.send('GET', '/sign-in');
      await browser.send('POST', '/sign-in', { email });
      await browser.send('GET', '/sign-in/password');
      const afterPassword = await browser.send('POST', '/sign-in/password', { password: PASSWORD });
      expect(afterPassword.location).toMatch(/^\/security-info\/get-started/);
      await browser.send('GET', '/security-info/add');
      const chosen = await browser.send('POST', '/security-info/add', { method: 'totp' });
      expect(chosen.status).toBe(303);
      const methodId = chosen.location!.split('/').pop()!;
      const page = await browser.send('GET', chosen.location!);
      const key = keyFrom(page.body);
      expect(key).not.toBeNull();
      // Every third set-up is left unfinished: started, never confirmed.
      if (index % 3 === 2) {
        unconfirmedEnrolments.push({ email, methodId, key: key! });
        return;
      }
      const done = await browser.send('POST', chosen.location!, { code: generateTotp(key!, new Date()) });
      if (done.status === 303 && done.location === '/security-info?done=added') confirmedEnrolments.push({ email, methodId });
    };

    const editPolicy = async (n: number) => {
      const result = await runCli(['policy', 'apply', path.join(policyDir, 'policy.yaml'), '--comment', `load ${run} ${n}`], cliEnv);
      if (result.code === 0) confirmedPolicies.push(`load ${run} ${n}`);
      else throw new Error(result.stderr);
    };

    // A few audit rows as they stood before the crash, to compare after it.
    const auditRows = () => ctx.store.database.db.selectFrom('audit_events').selectAll().orderBy('id').execute();

    const chunks = <T>(items: T[], n: number) => Array.from({ length: n }, (_, k) => items.filter((_, i) => i % n === k));
    const signerWork = chunks(signers, 4).map((list) => guarded(list, signIn));
    const enrolWork = chunks(
      enrollers.map((email, i) => ({ email, i })),
      8,
    ).map((list) => guarded(list, ({ email, i }) => enrol(email, i)));
    const policyWork = (async () => {
      for (let n = 0; n < 50 && !killed; n += 1) await editPolicy(n);
    })();

    // Let the load run, then kill the server (and, at the same moment, a policy edit in progress).
    // Killed once every front has something confirmed (not after a fixed time: machines differ).
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (confirmedSignIns.length < 2 || confirmedEnrolments.length < 3 || unconfirmedEnrolments.length < 1 || confirmedPolicies.length < 1)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const doomedPolicy = spawn(process.execPath, [BIN, 'policy', 'apply', path.join(policyDir, 'policy.yaml'), '--comment', `doomed ${run}`], {
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...cliEnv },
      stdio: 'ignore',
    });
    await new Promise((r) => setTimeout(r, 150));
    const before = await auditRows();
    killed = true;
    await server!.kill();
    doomedPolicy.kill('SIGKILL');
    await Promise.all([...signerWork, ...enrolWork, policyWork]);
    const sinkAtCrash = sink.messages.length;

    // The load did something on each front before the crash (else this proves little).
    expect(confirmedSignIns.length).toBeGreaterThan(0);
    expect(confirmedEnrolments.length).toBeGreaterThan(0);
    expect(unconfirmedEnrolments.length).toBeGreaterThan(0);
    expect(confirmedPolicies.length).toBeGreaterThan(0);

    server = await startServer(env, { port });
    const db = ctx.store.database.db;

    // Confirmed sign-ins: the session still works, and each has its audit event.
    for (const browser of confirmedSignIns) {
      browser.csrf = '';
      const account = await browser.send('GET', '/account');
      expect(account.status).toBe(200);
      expect(account.body).toContain('My account');
    }
    const after = await auditRows();
    const succeeded = after.filter((row) => row.type === 'sign-in.succeeded');
    expect(succeeded.length).toBeGreaterThanOrEqual(confirmedSignIns.length);

    // Confirmed enrolments: active and audited. Unconfirmed: not active, and not asked for at sign-in.
    const methods = await db.selectFrom('methods').select(['id', 'user_id', 'status', 'kind']).execute();
    const statusOf = (id: string) => methods.find((m) => m.id === id)?.status;
    for (const { methodId } of confirmedEnrolments) expect(statusOf(methodId)).toBe('active');
    for (const { email, methodId, key } of unconfirmedEnrolments) {
      expect(statusOf(methodId)).not.toBe('active');
      const browser = new FetchBrowser(base());
      await browser.send('GET', '/sign-in');
      await browser.send('POST', '/sign-in', { email });
      await browser.send('GET', '/sign-in/password');
      const afterPassword = await browser.send('POST', '/sign-in/password', { password: PASSWORD });
      expect(afterPassword.location).not.toBe('/sign-in/verify');
      // The unfinished app's code is not a way in on the verify step either.
      const verify = await browser.send('POST', '/sign-in/verify', { code: generateTotp(key, new Date()) });
      expect(verify.location ?? '').not.toBe('/account');
    }
    // Every active method made by an enrolment has its audit event and its email, whether or not the
    // client heard back (the three commit together).
    const added = new Set(after.filter((row) => row.type === 'method.added').map((row) => (JSON.parse(row.details) as { methodId: string }).methodId));
    const enrollerIds = new Set(
      (await db.selectFrom('users').select('id').where('email', 'in', enrollers).execute()).map((u) => u.id),
    );
    const activeEnrolled = methods.filter((m) => m.status === 'active' && enrollerIds.has(m.user_id));
    expect(activeEnrolled.length).toBeGreaterThanOrEqual(confirmedEnrolments.length);
    for (const method of activeEnrolled) expect(added.has(method.id), `method.added for ${method.id}`).toBe(true);

    // Confirmed policy edits: each a version, each audited; versions have no gap, and each has its event.
    const versions = await db.selectFrom('policy_versions').select(['version', 'comment']).orderBy('version').execute();
    for (const comment of confirmedPolicies) expect(versions.map((v) => v.comment)).toContain(comment);
    expect(versions.map((v) => Number(v.version))).toEqual(versions.map((_, i) => i + 1));
    const appliedVersions = after.filter((row) => row.type === 'policy.applied').map((row) => (JSON.parse(row.details) as { version: number }).version);
    expect(appliedVersions.sort((a, b) => a - b)).toEqual(versions.map((v) => Number(v.version)));

    // The audit log: every row read before the crash is there, unchanged and in the same order.
    expect(after.slice(0, before.length)).toEqual(before);
    const ids = after.map((row) => Number(row.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    // SQLite's rowids have no gap (a rolled-back insert takes no id); a PostgreSQL sequence may skip a
    // number for a transaction the crash rolled back, which is no lost row.
    if (dialect === 'sqlite') expect(ids).toEqual(ids.map((_, i) => ids[0]! + i));
    await expect(db.updateTable('audit_events').set({ type: 'tampered' }).where('id', '=', ids[0]!).execute()).rejects.toThrow(/append-only/);
    // Its chain verifies end to end (docs/operations.md#the-audit-log): the killed node's sealing stopped
    // mid-way at worst, and what it had not sealed is sealed now, in order.
    const verified = await runCli(['audit', 'verify', '--json'], cliEnv);
    expect(verified.code, verified.stderr + verified.stdout).toBe(0);
    expect((JSON.parse(verified.stdout) as { ok: boolean }).ok).toBe(true);

    // The outbox settles: nothing pending or mid-send once the killed node's claims have lapsed.
    const outbox = async () => db.selectFrom('outbox').select(['id', 'status', 'last_error', 'channel']).where('channel', '=', 'email').execute();
    await expect.poll(async () => (await outbox()).filter((m) => m.status === 'pending' || m.status === 'sending').length, { timeout: 20_000, interval: 250 }).toBe(0);
    const rows = await outbox();
    expect(rows.length).toBeGreaterThanOrEqual(activeEnrolled.length);
    const delivered = new Map<string, number>();
    for (const message of sink.messages) {
      const id = /^<([0-9a-f-]{36})@/.exec(message.messageId)?.[1] ?? message.messageId;
      delivered.set(id, (delivered.get(id) ?? 0) + 1);
    }
    // Never twice; never a message the outbox does not know.
    for (const [id, times] of delivered) {
      expect(times, `message ${id} delivered ${times} times`).toBe(1);
      expect(rows.some((row) => row.id === id), `sink message ${id} is in the outbox`).toBe(true);
    }
    const dead = rows.filter((row) => row.status === 'dead');
    const unknown = dead.filter((row) => row.last_error === OUTCOME_UNKNOWN).length;
    for (const row of rows) {
      if (row.status === 'sent') expect(delivered.get(row.id), `sent message ${row.id} delivered once`).toBe(1);
      else {
        // Dead only because its outcome is unknown: the node died mid-send, or the sink's answer came late.
        expect(row.status).toBe('dead');
        expect(row.last_error).toMatch(/^(outcome-unknown|provider-timeout):/);
      }
    }
    // A dead letter is visible to the operator.
    const listed = await runCli(['outbox', '--dead', '--json', '--limit', '500'], cliEnv);
    expect(listed.code, listed.stderr).toBe(0);
    const listedIds = (JSON.parse(listed.stdout) as Array<{ id: string; lastError: string; to: string }>).map((d) => d.id);
    for (const row of dead) expect(listedIds).toContain(row.id);
    for (const email of enrollers) expect(listed.stdout).not.toContain(email); // recipients masked

    // Nothing delivered after the restart was a second copy; the restarted node delivers new mail.
    expect(sink.messages.length).toBeGreaterThanOrEqual(sinkAtCrash);
    console.info(
      `${dialect}: ${confirmedSignIns.length} sign-ins, ${confirmedEnrolments.length} enrolments (${unconfirmedEnrolments.length} left unfinished), ${confirmedPolicies.length} policy edits confirmed; ` +
        `${rows.length} emails: ${rows.length - dead.length} sent once, ${dead.length} dead (${unknown} left mid-send by the crash, ${dead.length - unknown} timed out); ${before.length}/${after.length} audit rows before/after`,
    );
  }, 60_000);
});
