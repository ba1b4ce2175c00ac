/**
 * Applications in the policy (issue #13 point 4), through the real `portcullis` binary on SQLite and
 * PostgreSQL: `client add --key` (and the key made from the name), `policy check`/`apply` refusing a
 * `client:KEY` no client has (exit 2), `client remove` refusing a client the policy in force names, and
 * `report compliance` / `policy what-if` counting a client requirement over the people who use the
 * application (those holding a live grant for it). The `it`s run in order and build on each other.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext, type AppContext } from '../../src/app/context.js';
import type { ComplianceRow, ComplianceSummary } from '../../src/app/compliance.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { loadConfig } from '../../src/config/load.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

const actor = { kind: 'system' } as const;
const DAY_MS = 86_400_000;
const dayFromNow = (days: number): string => new Date(Date.now() + days * DAY_MS).toISOString().slice(0, 10);
const METHODS = { sms: { enabled: true }, voice: { enabled: true }, totp: { enabled: true }, push: { enabled: true }, tap: { enabled: true } };

describe.each(dialects)('applications in the policy, through the portcullis command, on %s', (dialect) => {
  let database: TestDatabase;
  let ctx: AppContext;
  let env: Record<string, string>;
  let dir: string;
  const cli = (args: string[]) => runCli(args, env);
  const file = (name: string, value: unknown): string => {
    const full = path.join(dir, name);
    writeFileSync(full, JSON.stringify(value));
    return full;
  };
  const portalPolicy = (key: string, extra: Record<string, unknown> = {}) => ({
    version: 1,
    timeZone: 'UTC',
    methods: METHODS,
    // "Push for everyone who signs in to the admin portal": one line.
    requirements: [{ id: 'portal-push', include: [`client:${key}`], strength: 'app-push', effective: dayFromNow(-2), ...extra }],
  });
  const clients: Record<string, string> = {};
  const run = randomUUID().slice(0, 6);

  async function person(label: string, kinds: Array<'totp' | 'push'>): Promise<string> {
    const { user } = await addUser(ctx, { email: `${label}-${run}@example.org`, displayName: label, organisation: 'Test Trust', roles: [] }, actor);
    for (const kind of kinds) {
      const id = randomUUID();
      const now = new Date();
      await ctx.store.methods.insertPending({ id, userId: user.id, kind, label: 'Phone', phoneE164: null, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 60_000) });
      expect(await ctx.store.methods.activate(user.id, id, now, null)).toBe(true);
    }
    return user.id;
  }

  /** A grant as oidc-provider's Grant model leaves it (through the adapter: account_id, client_id). */
  async function grant(userId: string, clientId: string, expiresInDays = 14): Promise<void> {
    const id = randomUUID();
    await ctx.store.database.db
      .insertInto('oidc_artefacts')
      .values({
        model: 'Grant',
        id,
        payload: JSON.stringify({ jti: id, kind: 'Grant', accountId: userId, clientId }),
        grant_id: null,
        user_code: null,
        uid: null,
        account_id: userId,
        client_id: clientId,
        expires_at: new Date(Date.now() + expiresInDays * DAY_MS).toISOString(),
        consumed_at: null,
      })
      .execute();
  }

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    dir = mkdtempSync(path.join(os.tmpdir(), 'pc-policy-apps-'));
    env = { DATABASE_URL: database.url, PORTCULLIS_SECRET: TEST_SECRET, PORTCULLIS_DATA_DIR: dir, PUBLIC_URL: 'https://id.example.org' };
    ctx = await createAppContext(loadConfig({ env: { ...env, LOG_LEVEL: 'silent' } }), { logger: pino({ level: 'silent' }) });
    await addOrganisation(ctx, 'Test Trust', actor);
  });
  afterAll(async () => {
    await ctx?.close();
    await database?.drop();
  });

  it('client add --key: the key is shown by add, list and show (and their JSON); a taken or malformed key exits 2 naming --key; without it, the name slugified, made unique', async () => {
    const added = await cli(['client', 'add', '--name', 'Admin portal', '--key', 'admin-portal', '--redirect-uri', 'https://portal.example.org/cb', '--json']);
    expect(added.code, added.stderr).toBe(0);
    const portal = JSON.parse(added.stdout) as { clientId: string; key: string };
    expect(portal.key).toBe('admin-portal');
    clients.portal = portal.clientId;

    const taken = await cli(['client', 'add', '--name', 'Another', '--key', 'admin-portal', '--redirect-uri', 'https://other.example.org/cb']);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain('--key');
    expect(taken.stderr).toContain('admin-portal is taken');
    for (const bad of ['Admin Portal', '-portal', 'a'.repeat(65), '']) {
      const refused = await cli(['client', 'add', '--name', 'Bad', '--key', bad, '--redirect-uri', 'https://bad.example.org/cb']);
      expect(refused.code, bad).toBe(2);
      expect(refused.stderr, bad).toContain('--key');
    }

    const mail = await cli(['client', 'add', '--name', 'Mail app', '--redirect-uri', 'https://mail.example.org/cb']);
    expect(mail.code, mail.stderr).toBe(0);
    expect(mail.stdout).toContain('Policy key: mail-app');
    clients.mail = /Client ID: (\S+)/.exec(mail.stdout)![1]!;
    const second = await cli(['client', 'add', '--name', 'Mail app', '--redirect-uri', 'https://mail2.example.org/cb', '--json']);
    expect((JSON.parse(second.stdout) as { key: string }).key).toBe('mail-app-2');

    const listed = JSON.parse((await cli(['client', 'list', '--json'])).stdout) as Array<{ clientId: string; key: string }>;
    expect(listed.map((c) => c.key)).toEqual(['admin-portal', 'mail-app', 'mail-app-2']);
    expect((await cli(['client', 'list'])).stdout).toMatch(/admin-portal\s+Admin portal/);
    expect((await cli(['client', 'show', clients.portal])).stdout).toMatch(/Policy key:\s+admin-portal/);
    expect((JSON.parse((await cli(['client', 'show', clients.portal, '--json'])).stdout) as { key: string }).key).toBe('admin-portal');
  });

  it('policy check and apply refuse a client:KEY that names no registered client (exit 2), naming the path and the key; nothing is applied', async () => {
    const unknown = file('unknown.json', portalPolicy('payroll'));
    for (const verb of ['check', 'apply']) {
      const result = await cli(['policy', verb, unknown]);
      expect(result.code, verb).toBe(2);
      expect(result.stderr).toContain('requirements[0]: names client:payroll');
    }
    expect(await ctx.store.policy.latest()).toBeFalsy();
    // A client target anywhere but a requirement is refused too, naming where.
    const misplaced = file('misplaced.json', { version: 1, methods: { ...METHODS, sms: { enabled: true, exclude: ['client:admin-portal'] } } });
    const refused = await cli(['policy', 'check', misplaced]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('methods.sms.exclude[0]: client:admin-portal: an application can be targeted only by a requirement');
  });

  it('report compliance and policy what-if count a client requirement over the people who use the application (a live grant for it)', async () => {
    const totpUsers = [await person('ava', ['totp']), await person('ben', ['totp'])];
    const pushUser = await person('cal', ['totp', 'push']);
    const mailOnly = await person('dee', ['totp']);
    const expired = await person('eve', ['totp']);
    const nobody = await person('fay', ['totp']);
    for (const id of [...totpUsers, pushUser]) await grant(id, clients.portal!);
    await grant(totpUsers[0]!, clients.mail!);
    await grant(mailOnly, clients.mail!);
    await grant(expired, clients.portal!, -1);
    void nobody;

    const applied = await cli(['policy', 'apply', file('portal.json', portalPolicy('admin-portal')), '--comment', 'admin portal push']);
    expect(applied.code, applied.stderr).toBe(0);

    const report = await cli(['report', 'compliance', '--format', 'json']);
    expect(report.code, report.stderr).toBe(0);
    const summary = JSON.parse(report.stdout) as ComplianceSummary;
    expect(summary.users.total).toBe(6);
    const requirement = summary.requirements.find((r) => r.id === 'portal-push')!;
    // Ava, Ben and Cal hold a grant for the portal; Dee only for the mail app, Eve's expired, Fay has none.
    expect(requirement.total).toBe(3);
    expect(requirement.byState['non-compliant']).toBe(2);
    expect(requirement.byState.compliant).toBe(1);
    expect(summary.users.byState['non-compliant']).toBe(2);

    const whatIf = await cli(['policy', 'what-if', '--date', dayFromNow(0), '--json']);
    expect(whatIf.code, whatIf.stderr).toBe(0);
    const rows = whatIf.stdout.trim().split('\n').map((line) => JSON.parse(line) as ComplianceRow);
    expect(rows.map((r) => r.email).sort()).toEqual([`ava-${run}@example.org`, `ben-${run}@example.org`]);
    expect(rows[0]!.why[0]).toMatch(/^portal-push: non-compliant since/);

    // The per-user CSV agrees with the summary.
    const csv = await cli(['report', 'compliance', '--format', 'csv']);
    expect(csv.stdout.split('\r\n').filter((line) => line.includes('portal-push')).length).toBe(2);
  });

  it('client remove refuses a client the policy in force names, saying to change the policy first', async () => {
    const refused = await cli(['client', 'remove', clients.portal!]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('The policy in force names client:admin-portal');
    expect(refused.stderr).toContain('change the policy first');
    expect((await cli(['client', 'show', clients.portal!])).code).toBe(0);
    // A client the policy does not name goes.
    expect((await cli(['client', 'remove', clients.mail!])).code).toBe(0);
  });
});
