/**
 * The tamper-evident audit log (issue #15 point 5): the sealer chains every event, and `audit verify`
 * names the first broken entry after someone with database access (but not PORTCULLIS_SECRET) drops the
 * append-only triggers and edits, deletes, reorders, truncates or inserts rows — on SQLite and PostgreSQL.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FAST_ID_MARGIN, sealAuditLog, startAuditSealer, verifyAuditLog, type AuditVerification } from '../../src/app/audit-chain.js';
import { spawn } from 'node:child_process';
import { freePort } from '../helpers/browser.js';
import { BIN, runCli } from '../helpers/cli.js';
import { createTestContext, dialects, TEST_SECRET, type TestContext, type TestDialect } from '../helpers/context.js';

/** A person with a database client and the rights to drop triggers: everything but the secret. */
interface Attacker {
  run(text: string, ...params: unknown[]): Promise<void>;
  /** Drops every append-only trigger (and, on PostgreSQL, the chain's foreign key), by their real names. */
  dropProtections(): Promise<void>;
  close(): Promise<void>;
}

async function attackerOn(ctx: TestContext, dialect: TestDialect): Promise<Attacker> {
  if (dialect === 'sqlite') {
    if (ctx.config.database.kind !== 'sqlite') throw new Error('expected SQLite');
    const db = new SQLite(ctx.config.database.file);
    const run = async (text: string, ...params: unknown[]) => {
      db.prepare(text).run(...params);
    };
    return {
      run,
      async dropProtections() {
        // Foreign keys are a per-connection setting in SQLite (better-sqlite3 turns them on).
        db.pragma('foreign_keys = OFF');
        for (const table of ['audit_events', 'audit_chain', 'audit_checkpoints']) {
          await run(`drop trigger ${table}_no_update`);
          await run(`drop trigger ${table}_no_delete`);
        }
      },
      close: async () => {
        db.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: ctx.database.url });
  await client.connect();
  const run = async (text: string, ...params: unknown[]) => {
    // node-postgres numbers parameters $1, $2…; the tests write ? as SQLite does.
    let i = 0;
    await client.query(text.replace(/\?/g, () => `$${++i}`), params);
  };
  return {
    run,
    async dropProtections() {
      for (const table of ['audit_events', 'audit_chain', 'audit_checkpoints']) {
        await run(`drop trigger ${table}_no_update on ${table}`);
        await run(`drop trigger ${table}_no_truncate on ${table}`);
      }
      await run('alter table audit_chain drop constraint audit_chain_event_fk');
    },
    close: () => client.end(),
  };
}

async function appendEvents(ctx: TestContext, count: number, from = 1): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await ctx.store.audit.append({
      type: 'sign-in.succeeded',
      at: ctx.clock(),
      actor: { kind: 'user', userId: `user-${i}` },
      subjectUserId: `user-${i}`,
      ip: '192.0.2.1',
      details: { n: i, method: 'totp' },
    });
  }
}

const first = (result: AuditVerification) => result.problems[0];

describe.each(dialects)('the audit chain on %s', (dialect) => {
  const contexts: TestContext[] = [];
  const fresh = async (options: Parameters<typeof createTestContext>[2] = {}) => {
    const ctx = await createTestContext(dialect, {}, options);
    contexts.push(ctx);
    return ctx;
  };
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((ctx) => ctx.destroy()));
  });

  /** Ten events, sealed and checkpointed, verified intact; then the attacker's connection with protections dropped. */
  async function sealedLog(): Promise<{ ctx: TestContext; attacker: Attacker }> {
    const ctx = await fresh();
    await appendEvents(ctx, 10);
    const sealed = await sealAuditLog(ctx, { checkpoint: 'now' });
    expect(sealed).toMatchObject({ locked: true, sealed: 10, head: { seq: 10 } });
    expect(sealed.checkpoint).toMatchObject({ seq: 10 });
    const before = await verifyAuditLog(ctx);
    expect(before).toMatchObject({ ok: true, entries: 10, events: 10, problems: [] });
    const attacker = await attackerOn(ctx, dialect);
    await attacker.dropProtections();
    return { ctx, attacker };
  }

  it('seals every event in order and verifies an intact log; the audit list still works', async () => {
    const ctx = await fresh();
    await appendEvents(ctx, 25);
    expect(await verifyAuditLog(ctx, { pageSize: 7 })).toMatchObject({ ok: true, entries: 25, events: 25, sealed: 25, head: { seq: 25 }, lastCheckpoint: { seq: 25 } });
    // Sealing again finds nothing; the chain's rows are in id order here (one writer at a time).
    expect((await sealAuditLog(ctx)).sealed).toBe(0);
    const rows = await ctx.store.database.db.selectFrom('audit_chain').select(['seq', 'event_id']).orderBy('seq').execute();
    expect(rows.map((r) => Number(r.event_id))).toEqual(rows.map((r) => r.seq));
    expect((await ctx.store.audit.list({ limit: 3 })).map((r) => Number(r.id))).toEqual([25, 24, 23]);
  });

  it('refuses updates and deletes of the chain and its checkpoints while the triggers are there', async () => {
    const ctx = await fresh();
    await appendEvents(ctx, 2);
    await sealAuditLog(ctx, { checkpoint: 'now' });
    const attacker = await attackerOn(ctx, dialect);
    try {
      await expect(attacker.run('update audit_chain set mac = ? where seq = 1', 'x')).rejects.toThrow(/audit_chain is append-only/);
      await expect(attacker.run('delete from audit_chain where seq = 2')).rejects.toThrow(/append-only/);
      await expect(attacker.run('delete from audit_checkpoints')).rejects.toThrow(/audit_checkpoints is append-only/);
      if (dialect === 'postgres') await expect(attacker.run('truncate audit_events cascade')).rejects.toThrow(/append-only/);
    } finally {
      await attacker.close();
    }
    expect((await verifyAuditLog(ctx)).ok).toBe(true);
  });

  it('(a) names an edited event', async () => {
    const { ctx, attacker } = await sealedLog();
    await attacker.run('update audit_events set details = ? where id = 4', '{"n":4,"method":"passkey"}');
    await attacker.close();
    const result = await verifyAuditLog(ctx);
    expect(result.ok).toBe(false);
    expect(first(result)).toMatchObject({ kind: 'event-changed', seq: 4, eventId: 4 });
    expect(first(result)!.message).toContain('Entry 4: event 4 does not match its MAC');
    expect(result.problemCount).toBe(1);
  });

  it('(b) names a deleted event', async () => {
    const { ctx, attacker } = await sealedLog();
    await attacker.run('delete from audit_events where id = 6');
    await attacker.close();
    const result = await verifyAuditLog(ctx);
    expect(result.ok).toBe(false);
    expect(first(result)).toMatchObject({ kind: 'event-missing', seq: 6, eventId: 6 });
  });

  it('(c) names reordered entries: two events swapped, or two chain rows swapped whole', async () => {
    const { ctx, attacker } = await sealedLog();
    // Event 3 takes event 5's contents and 5 takes 3's (their ids stay).
    await attacker.run("update audit_events set actor_id = 'user-5', subject_user_id = 'user-5', details = ? where id = 3", '{"n":5,"method":"totp"}');
    await attacker.run("update audit_events set actor_id = 'user-3', subject_user_id = 'user-3', details = ? where id = 5", '{"n":3,"method":"totp"}');
    let result = await verifyAuditLog(ctx);
    expect(first(result)).toMatchObject({ kind: 'event-changed', seq: 3, eventId: 3 });
    expect(result.problems.map((p) => p.seq)).toEqual([3, 5]);

    // Put the contents back, then swap chain rows 7 and 8 with their MACs.
    await attacker.run("update audit_events set actor_id = 'user-3', subject_user_id = 'user-3', details = ? where id = 3", '{"n":3,"method":"totp"}');
    await attacker.run("update audit_events set actor_id = 'user-5', subject_user_id = 'user-5', details = ? where id = 5", '{"n":5,"method":"totp"}');
    expect((await verifyAuditLog(ctx)).ok).toBe(true);
    await attacker.run('update audit_chain set seq = -7 where seq = 7');
    await attacker.run('update audit_chain set seq = 7 where seq = 8');
    await attacker.run('update audit_chain set seq = 8 where seq = -7');
    await attacker.close();
    result = await verifyAuditLog(ctx);
    expect(result.ok).toBe(false);
    expect(first(result)).toMatchObject({ kind: 'out-of-order', seq: 7, eventId: 8 });
  });

  it('(d) names a deleted chain entry', async () => {
    const { ctx, attacker } = await sealedLog();
    await attacker.run('delete from audit_chain where seq = 5');
    await attacker.close();
    const result = await verifyAuditLog(ctx);
    expect(result.ok).toBe(false);
    expect(first(result)).toMatchObject({ kind: 'entry-missing', seq: 5 });
    expect(first(result)!.message).toBe('Entry 5 is missing from the chain: removed.');
  });

  it('(e) names a tail truncated after a checkpoint, from the table or from a log copy', async () => {
    const { ctx, attacker } = await sealedLog();
    const head = (await verifyAuditLog(ctx)).head!;
    await attacker.run('delete from audit_chain where seq > 8');
    await attacker.run('delete from audit_events where id > 8');
    let result = await verifyAuditLog(ctx);
    expect(result.ok).toBe(false);
    expect(result.entries).toBe(8);
    expect(first(result)).toMatchObject({ kind: 'checkpoint-off-chain', seq: 10 });
    expect(first(result)!.message).toContain('the chain ends at entry 8: entries after it were removed');

    // Checkpoints deleted too: the table alone cannot tell, the operator's copy of the log line can.
    await attacker.run('delete from audit_checkpoints');
    await attacker.close();
    expect((await verifyAuditLog(ctx, { checkpoint: false })).ok).toBe(true);
    result = await verifyAuditLog(ctx, { expected: [head] });
    expect(first(result)).toMatchObject({ kind: 'checkpoint-off-chain', seq: 10 });
  });

  it('(f) names an event written into the table directly with an old time, and never seals it', async () => {
    const { ctx, attacker } = await sealedLog();
    const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
    await attacker.run(
      "insert into audit_events (at, type, actor_type, actor_id, subject_user_id, ip, details) values (?, 'role.granted', 'cli', 'root', 'user-1', null, '{}')",
      dayAgo,
    );
    await attacker.close();
    await appendEvents(ctx, 2, 11);
    const result = await verifyAuditLog(ctx);
    expect(result.ok).toBe(false);
    expect(result.entries).toBe(12);
    expect(first(result)).toMatchObject({ kind: 'event-unsealed', seq: null, eventId: 11 });
    expect(first(result)!.message).toContain('written into audit_events directly');
    expect((await sealAuditLog(ctx, { full: true })).sealed).toBe(0);
  });

  it('loses no event and seals none twice when sealing runs while events are appended', async () => {
    const ctx = await fresh();
    const appends = Array.from({ length: 200 }, (_, i) => appendEvents(ctx, 1, i + 1));
    const seals = Array.from({ length: 8 }, (_, i) => new Promise((resolve) => setTimeout(resolve, i * 5)).then(() => sealAuditLog(ctx)));
    await Promise.all([...appends, ...seals]);
    const result = await verifyAuditLog(ctx);
    expect(result).toMatchObject({ ok: true, entries: 200, events: 200 });
    const ids = await ctx.store.database.db.selectFrom('audit_chain').select('event_id').execute();
    expect(new Set(ids.map((r) => Number(r.event_id))).size).toBe(200);
  });

  it('seals in the background and at stop, and logs the checkpoints for copies outside the database', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>));
        done();
      },
    });
    const ctx = await fresh({ controlClock: true, logger: pino({ level: 'info' }, destination) });
    await appendEvents(ctx, 3);
    const sealer = startAuditSealer(ctx, { intervalMs: 10 });
    await expect.poll(async () => (await ctx.store.database.db.selectFrom('audit_chain').select('seq').execute()).length).toBe(3);
    // Not due again within AUDIT_CHECKPOINT_INTERVAL: one checkpoint so far.
    await appendEvents(ctx, 2, 4);
    await expect.poll(async () => (await ctx.store.database.db.selectFrom('audit_chain').select('seq').execute()).length).toBe(5);
    expect(lines.filter((l) => l.event === 'audit.checkpoint').map((l) => l.seq)).toEqual([3]);
    await appendEvents(ctx, 1, 6);
    await expect.poll(async () => (await ctx.store.database.db.selectFrom('audit_chain').select('seq').execute()).length).toBe(6);
    ctx.advance(15 * 60 + 1);
    await expect.poll(() => lines.filter((l) => l.event === 'audit.checkpoint').map((l) => l.seq)).toEqual([3, 6]);
    await appendEvents(ctx, 1, 7);
    await sealer.stop();
    const checkpoints = lines.filter((l) => l.event === 'audit.checkpoint');
    expect(checkpoints.map((l) => l.seq)).toEqual([3, 6, 7]);
    expect(checkpoints[2]).toMatchObject({ level: 30, msg: 'audit.checkpoint', mac: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const result = await verifyAuditLog(ctx, { expected: [{ seq: 7, mac: checkpoints[2]!.mac as string }] });
    expect(result).toMatchObject({ ok: true, entries: 7 });
  });

  it.runIf(dialect === 'postgres')('seals an event whose transaction committed after a later one was sealed', async () => {
    const ctx = await fresh();
    await appendEvents(ctx, 2);
    const slow = new pg.Client({ connectionString: ctx.database.url });
    await slow.connect();
    try {
      await slow.query('begin');
      const inserted = await slow.query<{ id: string }>(
        "insert into audit_events (at, type, actor_type, details) values ($1, 'sign-out', 'system', '{}') returning id",
        [new Date().toISOString()],
      );
      const lateId = Number(inserted.rows[0]!.id);
      await appendEvents(ctx, 1, 3);
      expect((await sealAuditLog(ctx)).sealed).toBe(3);
      await slow.query('commit');
      const next = await sealAuditLog(ctx);
      expect(next).toMatchObject({ sealed: 1, head: { seq: 4 } });
      const chain = await ctx.store.database.db.selectFrom('audit_chain').select(['seq', 'event_id']).orderBy('seq').execute();
      // The chain's order is the seal order: the late event is the last entry, though not the highest id.
      expect(chain.map((r) => Number(r.event_id))).toEqual([1, 2, 4, lateId]);
      expect(lateId).toBe(3);
      expect(await verifyAuditLog(ctx)).toMatchObject({ ok: true, entries: 4, events: 4 });
    } finally {
      await slow.end();
    }
  });

  it.runIf(dialect === 'postgres')('seals a late commit that many events overtook on the next full pass (serve: every 30 seconds)', async () => {
    const ctx = await fresh();
    const slow = new pg.Client({ connectionString: ctx.database.url });
    await slow.connect();
    try {
      await slow.query('begin');
      await slow.query("insert into audit_events (at, type, actor_type, details) values ($1, 'sign-out', 'system', '{}')", [new Date().toISOString()]);
      await appendEvents(ctx, FAST_ID_MARGIN + 5);
      expect((await sealAuditLog(ctx)).sealed).toBe(FAST_ID_MARGIN + 5);
      await slow.query('commit');
      // Too far below the highest sealed id for the every-second run; within the late-commit floor.
      expect((await sealAuditLog(ctx)).sealed).toBe(0);
      expect(await sealAuditLog(ctx, { full: true })).toMatchObject({ sealed: 1, head: { seq: FAST_ID_MARGIN + 6 } });
      expect(await verifyAuditLog(ctx)).toMatchObject({ ok: true, entries: FAST_ID_MARGIN + 6 });
      const chain = await ctx.store.database.db.selectFrom('audit_chain').select('event_id').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
      expect(Number(chain.event_id)).toBe(1);
    } finally {
      await slow.end();
    }
  });

  it('portcullis serve seals within seconds, and seals and checkpoints the last events on SIGTERM', async () => {
    const ctx = await fresh();
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: ctx.config.database.kind === 'sqlite' ? `sqlite:${ctx.config.database.file}` : ctx.database.url,
        PORTCULLIS_SECRET: TEST_SECRET,
        PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-audit-serve-')),
        PORT: String(port),
        HOST: '127.0.0.1',
        METRICS_PORT: '0',
        PUBLIC_URL: `http://localhost:${port}`,
        LOG_LEVEL: 'info',
      },
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.resume();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await expect.poll(() => stdout, { timeout: 30_000 }).toContain('Portcullis is serving');
      const entries = async () => (await ctx.store.database.db.selectFrom('audit_chain').select('seq').execute()).length;
      await appendEvents(ctx, 3);
      await expect.poll(entries, { timeout: 5000 }).toBe(3);
      await appendEvents(ctx, 2, 4);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(await entries()).toBe(5);
      const checkpoints = stdout
        .split('\n')
        .filter((line) => line.includes('"audit.checkpoint"'))
        .map((line) => JSON.parse(line) as { seq: number; mac: string });
      expect(checkpoints.at(-1)).toMatchObject({ seq: 5, mac: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(await verifyAuditLog(ctx, { expected: [checkpoints.at(-1)!] })).toMatchObject({ ok: true, entries: 5 });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('portcullis audit verify: exits 0 on an intact log, 1 naming the first broken entry', async () => {
    const { ctx, attacker } = await sealedLog();
    const env = {
      DATABASE_URL: ctx.config.database.kind === 'sqlite' ? `sqlite:${ctx.config.database.file}` : ctx.database.url,
      PORTCULLIS_SECRET: TEST_SECRET,
      PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pc-audit-')),
      PUBLIC_URL: 'https://id.example.org',
      LOG_LEVEL: 'silent',
    };
    const help = await runCli(['audit', 'verify', '--help'], env);
    expect(help.stdout).toContain('Needs: the server configuration');

    let result = await runCli(['audit', 'verify'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^The audit log verifies: 10 entries, head 10 [0-9a-f]{16}, last checkpoint entry 10 at /);

    await attacker.run('update audit_events set ip = ? where id = 7', '198.51.100.9');
    await attacker.close();
    result = await runCli(['audit', 'verify'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('The audit log does not verify: 1 problem in 10 entries');
    expect(result.stderr).toContain('First broken entry: Entry 7: event 7 does not match its MAC');

    result = await runCli(['audit', 'verify', '--json'], env);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, problems: [{ kind: 'event-changed', seq: 7, eventId: 7 }] });

    // A wrong secret cannot vouch for the log: every entry fails.
    result = await runCli(['audit', 'verify', '--json'], { ...env, PORTCULLIS_SECRET: Buffer.alloc(32, 8).toString('base64url') });
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ problemCount: 10 });

    result = await runCli(['audit', 'verify', '--checkpoint', 'nonsense'], env);
    expect(result.code).toBe(2);
  });
});
