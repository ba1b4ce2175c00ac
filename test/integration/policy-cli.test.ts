/**
 * The operator verbs of the method policy (issue #5) through the real `portcullis` binary, on SQLite
 * and PostgreSQL: `policy check|apply|show|history|what-if`, `report compliance`, `exception
 * add|list|revoke`, `tap issue`, `push unblock`, `user reset-methods`, `session revoke` and
 * `group add|list|add-member|remove-member`. The CLI processes and this test share one database: the
 * test sets up users and methods through the store, runs the verbs, and reads back what they wrote.
 * Policy dates are set relative to the real time (timeZone UTC); no clock is moved.
 *
 * The `it`s run in order and build on each other (as in cli.test.ts): the policy applied in the
 * second is the one the later ones work under.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext, type AppContext } from '../../src/app/context.js';
import { CSV_HEADER } from '../../src/app/compliance-csv.js';
import type { ComplianceRow, ComplianceSummary } from '../../src/app/compliance.js';
import { addOrganisation, addUser, disableUser } from '../../src/app/directory.js';
import { hashPass } from '../../src/app/methods/tap/index.js';
import { loadConfig } from '../../src/config/load.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

const actor = { kind: 'system' } as const;
const DAY_MS = 86_400_000;
const NOBODY = 'nobody@example.org';

/** A date `days` from now (negative: ago), as a policy and `--date` write it (UTC). */
const dayFromNow = (days: number): string => new Date(Date.now() + days * DAY_MS).toISOString().slice(0, 10);
/** "12 December 2026": a day as the CLI prints it. */
const longDay = (date: string): string =>
  new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(`${date}T00:00:00Z`));

/** Who the CLI records as the actor: `cli:` and the operating-system user running it. */
const cliName = (): string => {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
};

/** A refusal as an operator sees it: the exit code and one plain line on stderr, never a stack trace. */
function expectRefusal(result: CliResult, code: number, message: string | RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  if (typeof message === 'string') expect(result.stderr.trim()).toBe(message);
  else expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toContain('Unexpected error');
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

/** The standard output of a verb that must succeed (with its stderr in the failure message if not). */
function stdoutOf(result: CliResult): string {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

// The enforcement date of the scenario policy: 30 days from now, then 7 days' grace.
const EFFECTIVE = dayFromNow(30);
const GRACE_ENDS = dayFromNow(37);

/** Push (or a passkey) for everyone with elevated rights from EFFECTIVE; registration reported on. */
const SCENARIO = `version: 1
timeZone: UTC
methods:
  sms: { enabled: true }
  voice: { enabled: true }
  totp: { enabled: true }
  push: { enabled: true }
  tap: { enabled: true }
requirements:
  - id: elevated-push
    name: Those with elevated rights must use push notifications
    include: [elevated]
    strength: app-push
    effective: ${EFFECTIVE}
    graceDays: 7
    mode: enforce
registration:
  - id: all-registered
    include: [all]
    by: ${dayFromNow(60)}
    mode: report-only
`;

/** Push is never enabled for helpdesk, yet required of them: no helpdesk holder could satisfy it. */
const UNSATISFIABLE = `version: 1
timeZone: UTC
methods:
  sms: { enabled: true }
  totp: { enabled: true }
  push: { enabled: true, exclude: [role:helpdesk] }
requirements:
  - id: helpdesk-push
    include: [role:helpdesk]
    strength: app-push
    effective: ${EFFECTIVE}
`;

const UNKNOWN_ROLE = SCENARIO.replace('include: [elevated]', 'include: [role:superuser]');
const UNKNOWN_STRENGTH = SCENARIO.replace('strength: app-push', 'strength: retina');
const BROKEN_YAML = 'version: 1\nmethods: [sms,\n';

const EXAMPLE = path.resolve(import.meta.dirname, '..', '..', 'examples', 'nhsmail-elevated-rights.yaml');

describe.each(dialects)('policy and administration verbs of the portcullis command on %s', (dialect) => {
  let database: TestDatabase;
  let ctx: AppContext;
  let env: Record<string, string>;
  let dir: string;
  const ids: Record<string, string> = {};
  const cli = (args: string[], input?: string) => runCli(args, env, input);
  const file = (name: string, text: string): string => {
    const full = path.join(dir, name);
    writeFileSync(full, text);
    return full;
  };
  const db = () => ctx.store.database.db;
  const count = async (table: 'policy_versions' | 'policy_exceptions' | 'temporary_access_passes', userId?: string): Promise<number> => {
    let query = db().selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n'));
    if (userId && table !== 'policy_versions') query = query.where('user_id', '=', userId);
    return Number((await query.executeTakeFirstOrThrow()).n);
  };
  const latestVersion = async (): Promise<number> => Number((await db().selectFrom('policy_versions').select((eb) => eb.fn.max('version').as('v')).executeTakeFirst())?.v ?? 0);
  const emailsTo = async (email: string) => ctx.delivery.listOutbox({ to: email, limit: 100 });
  const sessionCount = async (userId: string) => Number((await db().selectFrom('sessions').select((eb) => eb.fn.countAll<number | string>().as('n')).where('user_id', '=', userId).executeTakeFirstOrThrow()).n);

  async function addMethod(userId: string, kind: 'sms' | 'totp' | 'push'): Promise<string> {
    const id = randomUUID();
    const now = new Date();
    const phone = kind === 'sms' ? `+4474009${String(Object.keys(ids).length).padStart(5, '0')}` : null;
    await ctx.store.methods.insertPending({ id, userId, kind, label: kind === 'sms' ? '' : 'Phone', phoneE164: phone, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 60_000) });
    expect(await ctx.store.methods.activate(userId, id, now, null)).toBe(true);
    return id;
  }

  async function addSession(userId: string): Promise<void> {
    const now = new Date();
    await ctx.store.sessions.insert({
      id: randomBytes(32).toString('hex'),
      userId,
      now,
      expiresAt: new Date(now.getTime() + 3_600_000),
      methods: [{ method: 'password', at: now.toISOString() }],
      restricted: null,
      ip: null,
      userAgent: null,
    });
  }

  async function person(email: string, displayName: string, options: { elevated?: boolean; kinds?: Array<'sms' | 'totp' | 'push'> } = {}): Promise<string> {
    const roles = options.elevated ? [{ role: 'helpdesk', organisations: [] }] : [];
    const { user } = await addUser(ctx, { email, displayName, organisation: 'Test Trust', roles }, actor);
    ids[email] = user.id;
    for (const kind of options.kinds ?? []) await addMethod(user.id, kind);
    return user.id;
  }

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    dir = mkdtempSync(path.join(os.tmpdir(), 'pc-policy-cli-'));
    env = {
      DATABASE_URL: database.url,
      PORTCULLIS_SECRET: TEST_SECRET,
      PORTCULLIS_DATA_DIR: dir,
      PUBLIC_URL: 'https://id.example.org',
    };
    // The same configuration as the CLI's, so keys (the pass's keyed hash, sealed outbox payloads) agree.
    ctx = await createAppContext(loadConfig({ env: { ...env, LOG_LEVEL: 'silent' } }), { logger: pino({ level: 'silent' }) });
    // The directory is set up before any policy is applied (this process would not see a later one
    // for up to 30 s: its policy cache is dropped only by applies on its own bus).
    await addOrganisation(ctx, 'Test Trust', actor);
    await person('sam@example.org', 'Sam Sms', { elevated: true, kinds: ['sms'] }); // elevated, only a phone
    await person('pat@example.org', 'Pat Push', { elevated: true, kinds: ['push', 'sms'] }); // elevated, compliant
    await person('ezra@example.org', 'Ezra', { elevated: true, kinds: ['sms'] }); // elevated, will be exempted
    await person('gina@example.org', 'Gina', { elevated: true, kinds: ['push'] }); // elevated, compliant; groups
    await person('olive@example.org', 'Olive', { kinds: ['sms'] });
    await person('nina@example.org', 'Nina'); // no second method
    await person('formula@example.org', '=HYPERLINK("http://evil.example","click")', { kinds: ['sms'] });
    await person('at@example.org', '@SUM(1+1)', { kinds: ['sms'] });
    await person('tara@example.org', 'Tara', { kinds: ['sms'] }); // Temporary Access Pass
    await person('rita@example.org', 'Rita', { kinds: ['sms', 'totp'] }); // reset-methods
    await person('sid@example.org', 'Sid', { kinds: ['sms'] }); // session revoke
    await person('paul@example.org', 'Paul', { kinds: ['sms'] }); // push unblock
    await person('gone@example.org', 'Gone', { kinds: ['sms'] });
    await disableUser(ctx, 'gone@example.org', actor); // not counted anywhere
  });

  afterAll(async () => {
    await ctx?.close();
    await database?.drop();
  });

  const ACTIVE_USERS = 12;

  it('policy check: a valid file passes; an unknown role, a combination that could satisfy nothing, bad YAML or a missing file are named, and nothing is stored', async () => {
    const [example, scenarioFromStdin, unknownRole, unsatisfiable, unknownStrength, broken, missing] = await Promise.all([
      cli(['policy', 'check', EXAMPLE]),
      cli(['policy', 'check', '-'], SCENARIO),
      cli(['policy', 'check', file('unknown-role.yaml', UNKNOWN_ROLE)]),
      cli(['policy', 'check', file('unsatisfiable.yaml', UNSATISFIABLE)]),
      cli(['policy', 'check', file('unknown-strength.yaml', UNKNOWN_STRENGTH)]),
      cli(['policy', 'check', file('broken.yaml', BROKEN_YAML)]),
      cli(['policy', 'check', path.join(dir, 'missing.yaml')]),
    ]);
    expect(example.code, example.stderr).toBe(0);
    expect(example.stdout.trim()).toBe(
      `${EXAMPLE} is a valid policy: 1 requirement, 1 registration requirement, 1 campaign; every combination of roles and groups can satisfy it.`,
    );
    expect(scenarioFromStdin.code, scenarioFromStdin.stderr).toBe(0);
    expect(scenarioFromStdin.stdout).toContain('- is a valid policy: 1 requirement, 1 registration requirement, 0 campaigns');

    expectRefusal(unknownRole, 1, /^requirements\[0\]: names the role superuser, which does not exist\n.*unknown-role\.yaml: 1 problem; nothing was applied\.\n$/);
    // The combination is named, with why it cannot be met (intersection leaves no method).
    expectRefusal(
      unsatisfiable,
      1,
      /^requirements: Users with the role helpdesk could satisfy nothing: they must meet helpdesk-push \(app-push\), but only sms, totp are enabled for them, and no enabled method meets all of it\n.*unsatisfiable\.yaml: 1 problem; nothing was applied\.\n$/,
    );
    expectRefusal(unknownStrength, 1, /requirements\[0\]\.strength: names no strength \(known: mfa, app-push, phishing-resistant\)/);
    expectRefusal(broken, 1, /^not valid YAML or JSON: .+\n.*broken\.yaml: 1 problem; nothing was applied\.\n$/);
    expectRefusal(missing, 1, `Cannot read ${path.join(dir, 'missing.yaml')}: no such file`);

    expect(await count('policy_versions')).toBe(0);
    const [show, history] = await Promise.all([cli(['policy', 'show']), cli(['policy', 'history'])]);
    expect(stdoutOf(show).trim()).toBe('No policy has been applied: every method is enabled for everyone and nothing is required.');
    expect(stdoutOf(history).trim()).toBe('No policy has been applied yet.');
  });

  it('policy apply stores a new version with who and why; a bad file changes nothing; show and history read the versions back', async () => {
    const applied = await cli(['policy', 'apply', EXAMPLE, '--comment', 'NHSmail: elevated rights and MFA']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout.trim()).toBe(`Applied ${EXAMPLE} as policy version 1. Every node uses it within seconds.`);
    expect(await latestVersion()).toBe(1);

    // A bad file is refused with its problems, and the version does not move.
    const refused = await Promise.all([
      cli(['policy', 'apply', path.join(dir, 'unknown-role.yaml'), '--comment', 'typo']),
      cli(['policy', 'apply', path.join(dir, 'unsatisfiable.yaml')]),
      cli(['policy', 'apply', '-'], BROKEN_YAML),
    ]);
    expectRefusal(refused[0]!, 1, /names the role superuser, which does not exist\n.*1 problem; nothing was applied\./);
    expectRefusal(refused[1]!, 1, /Users with the role helpdesk could satisfy nothing/);
    expectRefusal(refused[2]!, 1, /not valid YAML or JSON/);
    expect(await latestVersion()).toBe(1);
    expect(await count('policy_versions')).toBe(1);

    const scenario = file('scenario.yaml', SCENARIO);
    const second = await cli(['policy', 'apply', scenario, '--comment', 'Push for elevated rights from next month']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('as policy version 2.');

    const [show, showFirst, showMissing, showNotANumber, history, historyTable] = await Promise.all([
      cli(['policy', 'show']),
      cli(['policy', 'show', '--version', '1']),
      cli(['policy', 'show', '--version', '3']),
      cli(['policy', 'show', '--version', '1.5']), // PostgreSQL once answered this with a raw SQL error and exit 70
      cli(['policy', 'history', '--json']),
      cli(['policy', 'history']),
    ]);
    expect(stdoutOf(show)).toBe(SCENARIO); // the document as applied, byte for byte
    expect(stdoutOf(showFirst)).toBe(readFileSync(EXAMPLE, 'utf8'));
    expectRefusal(showMissing, 1, 'There is no policy version 3');
    expectRefusal(showNotANumber, 2, '--version must be a policy version number such as 1, not 1.5');

    const versions = JSON.parse(stdoutOf(history)) as Array<{ version: number; appliedBy: string; appliedAt: string; comment: string }>;
    expect(versions.map((v) => [v.version, v.comment, v.appliedBy])).toEqual([
      [2, 'Push for elevated rights from next month', cliName()],
      [1, 'NHSmail: elevated rights and MFA', cliName()],
    ]);
    for (const v of versions) expect(Date.now() - Date.parse(v.appliedAt)).toBeLessThan(120_000);
    expect(stdoutOf(historyTable)).toMatch(/^VERSION\s+APPLIED\s+BY\s+COMMENT\n2\s+\S+\s+cli:\S+\s+Push for elevated rights from next month\n1\s/);
    expect((await ctx.store.audit.list({ type: 'policy.applied' })).length).toBe(2);
  });

  it('policy what-if names who would not be compliant on a date, and why, as the date passes the enforcement date and the grace', async () => {
    const at = (date: string, ...more: string[]) => cli(['policy', 'what-if', '--date', date, ...more]);
    const rows = (result: CliResult): ComplianceRow[] => {
      expect(result.code, result.stderr).toBe(0);
      return result.stdout.trim() ? result.stdout.trim().split('\n').map((line) => JSON.parse(line) as ComplianceRow) : [];
    };
    const [before, inGrace, after, afterTable, byRole, compliantUser, oneUser, both, badDate, noRole, noDate] = await Promise.all([
      at(dayFromNow(29), '--json'),
      at(dayFromNow(33), '--json'),
      at(dayFromNow(45), '--json'),
      at(dayFromNow(45)),
      at(dayFromNow(45), '--role', 'helpdesk'),
      at(dayFromNow(45), '--user', 'pat@example.org'),
      at(dayFromNow(45), '--user', 'SAM@example.org', '--json'),
      at(dayFromNow(45), '--role', 'helpdesk', '--user', 'sam@example.org'),
      at('2026-02-30'),
      at(dayFromNow(45), '--role', 'superuser'),
      cli(['policy', 'what-if']),
    ]);
    const summary = (list: ComplianceRow[]) => Object.fromEntries(list.map((r) => [r.email, r.state]));

    // The elevated users with only a phone move from action-needed (before the date: listed, as what-if
    // lists everyone not yet compliant, but nothing restricts them) to in-grace (they may still sign in
    // with it, to register push) to non-compliant (only a Temporary Access Pass lets them in). The
    // compliant ones (push, or no requirement for them) are never listed.
    const early = rows(before);
    expect(summary(early)).toEqual({ 'sam@example.org': 'action-needed', 'ezra@example.org': 'action-needed' });
    expect(early.find((r) => r.email === 'sam@example.org')!.why).toEqual([`elevated-push: action needed by ${longDay(EFFECTIVE)}`]);
    const grace = rows(inGrace);
    expect(summary(grace)).toEqual({ 'sam@example.org': 'in-grace', 'ezra@example.org': 'in-grace' });
    expect(grace[0]!.why).toEqual([`elevated-push: in grace until ${longDay(GRACE_ENDS)}`]);
    const late = rows(after);
    expect(summary(late)).toEqual({ 'sam@example.org': 'non-compliant', 'ezra@example.org': 'non-compliant' });
    expect(late.find((r) => r.email === 'sam@example.org')).toMatchObject({ elevated: true, methods: ['sms'], date: new Date(`${GRACE_ENDS}T00:00:00Z`).toISOString() });

    expect(stdoutOf(afterTable)).toContain(`On ${longDay(dayFromNow(45))}, 2 users would not be compliant:`);
    expect(afterTable.stdout).toMatch(new RegExp(`\\nsam@example\\.org\\s+non-compliant\\s+elevated-push: non-compliant since ${longDay(GRACE_ENDS)}\\n`));
    for (const email of ['pat@', 'gina@', 'olive@', 'nina@', 'gone@']) expect(afterTable.stdout).not.toContain(email);
    expect(stdoutOf(byRole)).toContain('2 holders of helpdesk would not be compliant:');
    expect(stdoutOf(compliantUser).trim()).toBe(`On ${longDay(dayFromNow(45))}, pat@example.org would be compliant.`);
    expect(rows(oneUser).map((r) => r.email)).toEqual(['sam@example.org']);

    expectRefusal(both, 2, 'Give --role or --user, not both');
    expectRefusal(badDate, 2, '--date must be a date as YYYY-MM-DD, not 2026-02-30');
    expectRefusal(noRole, 1, 'There is no role called superuser');
    // A usage mistake exits 2 (docs/operations.md); Commander used to exit 1 itself inside a verb.
    expect(noDate.code).toBe(2);
    expect(noDate.stderr).toContain("required option '--date <YYYY-MM-DD>' not specified");
  });

  it('report compliance: CSV with one row per active user and formula cells neutralised, JSON and table that agree with it', async () => {
    const [csv, json, tableText, later, badFormat] = await Promise.all([
      cli(['report', 'compliance', '--format', 'csv']),
      cli(['report', 'compliance', '--format', 'json']),
      cli(['report', 'compliance']),
      cli(['report', 'compliance', '--format', 'json', '--date', dayFromNow(45)]),
      cli(['report', 'compliance', '--format', 'xml']),
    ]);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.split('\r\n')[0]).toBe(CSV_HEADER.join(','));
    const records = parseCsv(csv.stdout, { columns: true }) as Array<Record<(typeof CSV_HEADER)[number], string>>;
    const active = Number(
      (await db().selectFrom('users').select((eb) => eb.fn.countAll<number | string>().as('n')).where('status', '=', 'active').executeTakeFirstOrThrow()).n,
    );
    expect(active).toBe(ACTIVE_USERS);
    expect(records).toHaveLength(ACTIVE_USERS);
    expect(new Set(records.map((r) => r.email)).size).toBe(ACTIVE_USERS);
    expect(records.map((r) => r.email)).not.toContain('gone@example.org');
    const byEmail = Object.fromEntries(records.map((r) => [r.email, r]));
    // OWASP "CSV injection": a display name is the user's own text; a spreadsheet must not run it.
    expect(byEmail['formula@example.org']!.name).toBe(`'=HYPERLINK("http://evil.example","click")`);
    expect(byEmail['at@example.org']!.name).toBe(`'@SUM(1+1)`);
    for (const record of records) for (const cell of Object.values(record)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    expect(byEmail['sam@example.org']).toMatchObject({
      elevated: 'yes',
      roles: 'helpdesk;user',
      methods: 'sms',
      state: 'action-needed',
      date: new Date(`${EFFECTIVE}T00:00:00Z`).toISOString(),
      why: `elevated-push: action needed by ${longDay(EFFECTIVE)}`,
    });
    expect(byEmail['pat@example.org']).toMatchObject({ elevated: 'yes', methods: 'sms;push', state: 'compliant' });
    // Report-only registration: Nina is reported on, but her state is set by enforced requirements only.
    expect(byEmail['nina@example.org']).toMatchObject({ elevated: 'no', methods: '', state: 'compliant' });
    expect(byEmail['nina@example.org']!.why).toMatch(/^all-registered \(report only\): action needed by /);

    expect(json.code, json.stderr).toBe(0);
    const summary = JSON.parse(json.stdout) as ComplianceSummary;
    expect(summary.policyVersion).toBe(2);
    expect(summary.users.total).toBe(records.length);
    for (const [state, n] of Object.entries(summary.users.byState)) expect(records.filter((r) => r.state === state).length, state).toBe(n);
    expect(summary.users.byState).toMatchObject({ compliant: 10, 'action-needed': 2, 'non-compliant': 0 });
    expect(summary.elevated).toMatchObject({ total: 4, byState: { compliant: 2, 'action-needed': 2 } });
    expect(summary.withoutMethod).toBe(1);
    expect(summary.requirements.find((r) => r.id === 'elevated-push')).toMatchObject({ mode: 'enforce', total: 4 });

    expect(stdoutOf(tableText)).toMatch(new RegExp(`^Compliance on \\d{1,2} \\w+ \\d{4} \\(policy version 2\\), ${ACTIVE_USERS} active users:\\n`));
    expect(tableText.stdout).toMatch(/\neveryone\s+12\s+10\s+0\s+2\s+0\s+0\n/);
    expect(tableText.stdout).toContain('1 active user has no second method.');

    // --date: as it will be after the grace.
    const future = JSON.parse(stdoutOf(later)) as ComplianceSummary;
    expect(future.users.byState).toMatchObject({ compliant: 10, 'non-compliant': 2 });
    expectRefusal(badFormat, 2, '--format must be table, csv or json');
  });

  it('exception add refuses more than 180 days (or no reason, or an unknown requirement) storing nothing; a live one makes the user exempt until it is revoked', async () => {
    const add = (email: string, ...more: string[]) => cli(['exception', 'add', email, '--requirement', 'elevated-push', ...more]);
    const refusals = await Promise.all([
      add('ezra@example.org', '--for', '181d', '--reason', 'Long-term sick leave'),
      add('ezra@example.org', '--until', dayFromNow(200), '--reason', 'Long-term sick leave'),
      add('ezra@example.org', '--until', dayFromNow(-1), '--reason', 'Backdated'),
      add('ezra@example.org', '--for', '24h', '--reason', 'no'),
      add('ezra@example.org', '--reason', 'Neither --until nor --for'),
      add('ezra@example.org', '--for', '24h', '--until', dayFromNow(2), '--reason', 'Both'),
      cli(['exception', 'add', 'ezra@example.org', '--requirement', 'no-such-requirement', '--for', '24h', '--reason', 'Lost phone']),
    ]);
    // An exception lets a user sign in below the policy's strength; it is bounded (at most 180 days, a
    // lost phone 24 hours) and always has a reason, for the audit log (cf. NIST SP 800-63B §6.1.2.3,
    // replacing a lost authenticator).
    expectRefusal(refusals[0]!, 1, 'An exception must end in the future and within 180 days');
    expectRefusal(refusals[1]!, 1, 'An exception must end in the future and within 180 days');
    expectRefusal(refusals[2]!, 1, 'An exception must end in the future and within 180 days');
    expectRefusal(refusals[3]!, 1, 'Give the reason for the exception');
    expectRefusal(refusals[4]!, 2, 'Give --until DATE or --for DURATION (for a lost phone: --for 24h)');
    expectRefusal(refusals[5]!, 2, 'Give --until DATE or --for DURATION (for a lost phone: --for 24h)');
    expectRefusal(refusals[6]!, 1, 'The policy has no requirement called no-such-requirement');
    expect(await count('policy_exceptions')).toBe(0);
    expect((await ctx.store.audit.list({ type: 'policy.exception-added' })).length).toBe(0);

    // A lost phone: 24 hours. And the longest allowed: 180 days from today.
    const startedAt = Date.now();
    const [lostPhone, longest] = await Promise.all([
      add('ezra@example.org', '--for', '24h', '--reason', 'Lost phone, replacement on order'),
      add('sam@example.org', '--until', dayFromNow(180), '--reason', 'Phone contract renewal'),
    ]);
    expect(lostPhone.code, lostPhone.stderr).toBe(0);
    const [, ezraId, ezraUntil] = /^Added exception ([0-9a-f-]{36}): ezra@example\.org is exempt from elevated-push until (\S+)\.\n$/.exec(lostPhone.stdout)!;
    expect(Date.parse(ezraUntil!) - startedAt).toBeGreaterThanOrEqual(DAY_MS - 1000);
    expect(Date.parse(ezraUntil!) - startedAt).toBeLessThan(DAY_MS + 60_000);
    expect(longest.code, longest.stderr).toBe(0);
    const samId = /^Added exception ([0-9a-f-]{36}):/.exec(longest.stdout)![1]!;

    const listed = JSON.parse(stdoutOf(await cli(['exception', 'list', '--json']))) as Array<Record<string, string | null>>;
    expect(listed.map((e) => [e.id, e.email, e.requirement, e.reason, e.createdBy, e.revokedAt]).sort()).toEqual(
      [
        [ezraId, 'ezra@example.org', 'elevated-push', 'Lost phone, replacement on order', cliName(), null],
        [samId, 'sam@example.org', 'elevated-push', 'Phone contract renewal', cliName(), null],
      ].sort(),
    );
    expect(listed.find((e) => e.id === samId)!.until).toBe(new Date(`${dayFromNow(180)}T00:00:00Z`).toISOString());

    const [now, inTwoDays] = await Promise.all([
      cli(['report', 'compliance', '--format', 'json']),
      cli(['report', 'compliance', '--format', 'json', '--date', dayFromNow(2)]),
    ]);
    expect((JSON.parse(stdoutOf(now)) as ComplianceSummary).users.byState).toMatchObject({ exempt: 2, 'action-needed': 0 });
    // Ezra's 24 hours are over by then; Sam's exception still stands.
    expect((JSON.parse(stdoutOf(inTwoDays)) as ComplianceSummary).users.byState).toMatchObject({ exempt: 1, 'action-needed': 1 });

    const revoked = await cli(['exception', 'revoke', samId]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe(`Revoked exception ${samId}.`);
    const [again, live, all, afterRevoke, forUser] = await Promise.all([
      cli(['exception', 'revoke', samId]),
      cli(['exception', 'list', '--json']),
      cli(['exception', 'list', '--all']),
      cli(['report', 'compliance', '--format', 'csv']),
      cli(['exception', 'list', '--user', 'sam@example.org']),
    ]);
    expectRefusal(again, 1, `There is no live exception ${samId}`);
    expect((JSON.parse(stdoutOf(live)) as Array<{ id: string }>).map((e) => e.id)).toEqual([ezraId]);
    expect(stdoutOf(all)).toMatch(new RegExp(`\\n${samId}\\s+sam@example\\.org\\s+elevated-push\\s+\\S+\\s+revoked\\s+Phone contract renewal`));
    expect(all.stdout).toMatch(new RegExp(`\\n${ezraId}\\s+ezra@example\\.org\\s+elevated-push\\s+\\S+\\s+live\\s`));
    const rows = Object.fromEntries((parseCsv(stdoutOf(afterRevoke), { columns: true }) as Array<Record<string, string>>).map((r) => [r.email, r]));
    expect(rows['sam@example.org']!.state).toBe('action-needed');
    expect(rows['ezra@example.org']).toMatchObject({ state: 'exempt', date: ezraUntil });
    expect(stdoutOf(forUser).trim()).toBe('There are no live exceptions.');
    expect((await db().selectFrom('policy_exceptions').select('revoked_by').where('id', '=', samId).executeTakeFirstOrThrow()).revoked_by).toBe(cliName());
  });

  it('tap issue prints a pass once, stores only its keyed hash, replaces any earlier pass and emails the user without it', async () => {
    const tara = ids['tara@example.org']!;
    const issue = (...more: string[]) => cli(['tap', 'issue', 'tara@example.org', ...more]);
    const passOf = (result: CliResult): string => {
      expect(result.code, result.stderr).toBe(0);
      const match = /^ {2}([A-Z0-9]{1,4}(?:-[A-Z0-9]{1,4})*)$/m.exec(result.stdout);
      expect(match, result.stdout).not.toBeNull();
      const pass = match![1]!.replace(/-/g, '');
      expect(pass.length).toBeGreaterThanOrEqual(8);
      expect(pass.length).toBeLessThanOrEqual(48);
      // Read out over the phone: no 0/O or 1/I/L to confuse.
      expect(pass).toMatch(/^[A-HJKMNP-Z2-9]+$/);
      // Shown once: the pass appears a single time in the output, and not at all on stderr.
      expect(result.stdout.split(match![1]!).length - 1).toBe(1);
      expect(result.stdout.split(pass).length - 1).toBe(0);
      expect(result.stderr).not.toContain(pass);
      return match![1]!;
    };
    /**
     * Every column of every table, as text: the pass must be in none of it. OWASP ASVS 5 V6 (authentication
     * secrets are never stored in the clear) and NIST SP 800-63B §5.1.2.2 (a look-up secret is stored
     * hashed, here HMAC-SHA256 under a key derived from PORTCULLIS_SECRET).
     */
    const everything = async (): Promise<string> => {
      const tables = await db().introspection.getTables();
      const dumps: string[] = [];
      for (const table of tables) dumps.push(JSON.stringify(await db().selectFrom(table.name as 'users').selectAll().execute()));
      return dumps.join('\n');
    };

    const [tooShort, notADuration] = await Promise.all([issue('--lifetime', '5m'), issue('--lifetime', 'soon')]);
    expectRefusal(tooShort, 1, 'A Temporary Access Pass must last between 10 minutes and 30 days');
    expectRefusal(notADuration, 2, '--lifetime must be a duration such as 1h or 8h, not soon');
    expect(await count('temporary_access_passes', tara)).toBe(0);

    const startedAt = Date.now();
    const first = await issue('--lifetime', '2h');
    const firstPass = passOf(first);
    const firstRow = await db().selectFrom('temporary_access_passes').selectAll().where('user_id', '=', tara).executeTakeFirstOrThrow();
    expect(firstRow.pass_hash).toBe(hashPass(ctx, tara, firstPass)); // typed with or without the hyphens
    expect(firstRow.pass_hash).toBe(hashPass(ctx, tara, firstPass.replace(/-/g, '').toLowerCase()));
    expect(firstRow.multi_use).toBe(0);
    expect(firstRow.used_at).toBeNull();
    expect(firstRow.created_by).toBe(cliName());
    expect(Date.parse(firstRow.expires_at) - startedAt).toBeGreaterThanOrEqual(2 * 3_600_000 - 1000);
    expect(Date.parse(firstRow.expires_at) - startedAt).toBeLessThan(2 * 3_600_000 + 60_000);
    expect(first.stdout).toContain(`It works once until ${firstRow.expires_at}.`);

    const second = await issue('--multi-use', '--lifetime', '8h');
    const secondPass = passOf(second);
    expect(secondPass.replace(/-/g, '')).not.toBe(firstPass.replace(/-/g, ''));
    expect(second.stdout).toContain('It works any number of times until');
    // Only one pass per user: the second replaced the first.
    const rows = await db().selectFrom('temporary_access_passes').selectAll().where('user_id', '=', tara).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.pass_hash).toBe(hashPass(ctx, tara, secondPass));
    expect(rows[0]!.pass_hash).not.toBe(hashPass(ctx, tara, firstPass));
    expect(rows[0]!.multi_use).toBe(1);

    const dump = await everything();
    for (const pass of [firstPass, secondPass]) {
      expect(dump).not.toContain(pass);
      expect(dump).not.toContain(pass.replace(/-/g, ''));
    }

    // The user is told (NIST SP 800-63B §6.1.2.1: notify on binding), and the email never carries the pass.
    const emails = (await emailsTo('tara@example.org')).filter((m) => m.subject?.startsWith('A Temporary Access Pass was issued'));
    expect(emails).toHaveLength(2);
    for (const email of emails) {
      expect(email).toMatchObject({ channel: 'email', purpose: 'security-notice' });
      for (const pass of [firstPass, secondPass]) expect(email.text).not.toContain(pass.replace(/-/g, ''));
    }
    expect(emails.map((e) => e.text).join('\n')).toContain('It works more than once');
    expect((await ctx.store.audit.list({ subjectUserId: tara, type: 'tap.issued' })).length).toBe(2);
  });

  it('push unblock clears the block set by a fraud report and emails the user; session revoke ends only that user\'s sessions', async () => {
    const paul = ids['paul@example.org']!;
    const sid = ids['sid@example.org']!;
    const olive = ids['olive@example.org']!;
    await ctx.store.push.setUserBlocked(paul, new Date()); // as "No, it's not me" does
    await addSession(sid);
    await addSession(sid);
    await addSession(olive);
    expect((await ctx.store.users.findById(paul))!.push_blocked_at).not.toBeNull();

    const [unblocked, revoked] = await Promise.all([cli(['push', 'unblock', 'paul@example.org']), cli(['session', 'revoke', 'sid@example.org'])]);
    expect(unblocked.code, unblocked.stderr).toBe(0);
    expect(unblocked.stdout.trim()).toBe('Sign-in requests to paul@example.org’s authenticator app are on again. They have been emailed.');
    expect((await ctx.store.users.findById(paul))!.push_blocked_at).toBeNull();
    expect((await emailsTo('paul@example.org')).map((m) => m.subject)).toContain('Sign-in requests to your authenticator app are turned back on');
    expect((await ctx.store.audit.list({ subjectUserId: paul, type: 'push.unblocked' })).length).toBe(1);

    // OWASP ASVS 5 V7.4 (session termination): an administrator can end every session of one user.
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe('Ended 2 sessions of sid@example.org.');
    expect(await sessionCount(sid)).toBe(0);
    expect(await sessionCount(olive)).toBe(1); // someone else's session is untouched
    expect((await emailsTo('sid@example.org')).map((m) => m.subject)).toContain('You were signed out everywhere by an administrator');

    const [notBlocked, nothingToEnd] = await Promise.all([cli(['push', 'unblock', 'paul@example.org']), cli(['session', 'revoke', 'sid@example.org'])]);
    expectRefusal(notBlocked, 1, 'Push is not blocked for paul@example.org');
    expect(nothingToEnd.code).toBe(0);
    expect(nothingToEnd.stdout.trim()).toBe('Ended 0 sessions of sid@example.org.');
  });

  it('user reset-methods removes every method, the default and any pass, ends the sessions, and leaves the user to register again', async () => {
    const rita = ids['rita@example.org']!;
    const [first] = await ctx.store.methods.activeForUser(rita);
    await ctx.store.users.setDefaultMethod(rita, first!.id, new Date());
    await ctx.store.policy.replacePass({
      user_id: rita,
      pass_hash: hashPass(ctx, rita, 'ABCDEFGHJKMNPQRS'),
      multi_use: 0,
      created_by: 'test',
      created_at: new Date().toISOString(),
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      used_at: null,
    });
    await addSession(rita);
    expect((await ctx.store.users.findById(rita))!.policy_profile).toBe('user||5'); // sms (1) + totp (4)

    const reset = await cli(['user', 'reset-methods', 'rita@example.org']);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout.trim()).toBe('Removed 2 sign-in methods from rita@example.org and ended 1 session. They have been emailed.');
    expect(await db().selectFrom('methods').select('id').where('user_id', '=', rita).execute()).toEqual([]);
    const row = (await ctx.store.users.findById(rita))!;
    expect(row.default_method_id).toBeNull();
    expect(row.policy_profile).toBe('user||0');
    expect(await count('temporary_access_passes', rita)).toBe(0);
    expect(await sessionCount(rita)).toBe(0);
    expect((await emailsTo('rita@example.org')).map((m) => m.subject)).toContain('Your sign-in methods were reset');

    // With no second method, the report now lists her as having none to sign in with.
    const report = await cli(['report', 'compliance', '--format', 'csv']);
    const record = (parseCsv(stdoutOf(report), { columns: true }) as Array<Record<string, string>>).find((r) => r.email === 'rita@example.org')!;
    expect(record.methods).toBe('');
    expect(record.why).toMatch(/^all-registered \(report only\): action needed by /);
  });

  it('groups: add, list, add and remove members; a change that would leave a user unable to meet the policy is refused with the reason and changes nothing', async () => {
    const [pilot, contractors, bad] = await Promise.all([
      cli(['group', 'add', 'Push pilot', '--description', 'May use push']),
      cli(['group', 'add', 'Contractors']),
      cli(['group', 'add', '!nope']),
    ]);
    expect(stdoutOf(pilot).trim()).toBe('Added group Push pilot.');
    expect(contractors.code, contractors.stderr).toBe(0);
    expectRefusal(bad, 1, /^A group name must be 1 to 80 letters/);
    expectRefusal(await cli(['group', 'add', 'push PILOT']), 1, 'A group called push PILOT already exists');

    const joined = await cli(['group', 'add-member', 'Push pilot', 'gina@example.org']);
    expect(stdoutOf(joined).trim()).toBe('Added gina@example.org to Push pilot.');

    // Push only for the pilot (never for contractors), yet required of everyone with elevated rights.
    // `policy check` refuses this policy; it is stored as an earlier release might have left it, to
    // show that the directory check stands on its own. Each CLI process reads the latest version.
    const unchecked = `version: 1
timeZone: UTC
methods:
  sms: { enabled: true }
  totp: { enabled: true }
  push: { enabled: true, include: ["group:Push pilot"], exclude: [group:Contractors] }
  tap: { enabled: true }
requirements:
  - id: elevated-push
    include: [elevated]
    strength: app-push
    effective: ${EFFECTIVE}
`;
    expectRefusal(await cli(['policy', 'check', '-'], unchecked), 1, /Users with an elevated role could satisfy nothing/);
    await ctx.store.policy.insertVersion({ document: unchecked, appliedBy: 'test', now: new Date(), comment: 'unchecked' });

    const gina = ids['gina@example.org']!;
    const snapshot = async () => ({
      members: await db().selectFrom('group_members').select(['group_id', 'user_id']).orderBy('group_id').orderBy('user_id').execute(),
      profile: (await ctx.store.users.findById(gina))!.policy_profile,
      audit: (await ctx.store.audit.list({ subjectUserId: gina })).length,
    });
    const before = await snapshot();
    expect(before.profile).toBe('helpdesk,user|Push pilot|8');
    const [leave, join] = await Promise.all([
      cli(['group', 'remove-member', 'Push pilot', 'gina@example.org']),
      cli(['group', 'add-member', 'Contractors', 'gina@example.org']),
    ]);
    for (const refused of [leave, join]) {
      expectRefusal(
        refused,
        1,
        'This change would leave gina@example.org unable to meet the method policy: they must meet elevated-push (app-push), but only sms, totp are enabled for them, and no enabled method meets all of it',
      );
    }
    expect(await snapshot()).toEqual(before);

    // A change that keeps the policy satisfiable goes through: the requirement does not apply to Olive.
    const olive = await cli(['group', 'add-member', 'contractors', 'olive@example.org']);
    expect(stdoutOf(olive).trim()).toBe('Added olive@example.org to Contractors.');
    const listed = JSON.parse(stdoutOf(await cli(['group', 'list', '--json']))) as Array<{ name: string; description: string; members: number }>;
    expect(listed).toEqual([
      { name: 'Contractors', description: '', members: 1 },
      { name: 'Push pilot', description: 'May use push', members: 1 },
    ]);
    const left = await cli(['group', 'remove-member', 'Contractors', 'olive@example.org']);
    expect(stdoutOf(left).trim()).toBe('Removed olive@example.org from Contractors.');
    const [notMember, noGroup, table] = await Promise.all([
      cli(['group', 'remove-member', 'Contractors', 'olive@example.org']),
      cli(['group', 'add-member', 'Nowhere', 'olive@example.org']),
      cli(['group', 'list']),
    ]);
    expectRefusal(notMember, 1, 'olive@example.org is not in the group Contractors');
    expectRefusal(noGroup, 1, 'There is no group called Nowhere');
    expect(stdoutOf(table)).toMatch(/^GROUP\s+MEMBERS\s+DESCRIPTION\nContractors\s+0\nPush pilot\s+1\s+May use push\n$/);
    expect((await ctx.store.users.findById(ids['olive@example.org']!))!.policy_profile).toBe('user||1');
  });

  it('an unknown email is a clear one-line error with a non-zero exit and no stack trace, for every verb that takes one', async () => {
    const results = await Promise.all([
      cli(['tap', 'issue', NOBODY]),
      cli(['push', 'unblock', NOBODY]),
      cli(['user', 'reset-methods', NOBODY]),
      cli(['session', 'revoke', NOBODY]),
      cli(['exception', 'add', NOBODY, '--requirement', 'elevated-push', '--for', '24h', '--reason', 'Lost phone']),
      cli(['exception', 'list', '--user', NOBODY]),
      cli(['group', 'add-member', 'Push pilot', NOBODY]),
      cli(['policy', 'what-if', '--date', dayFromNow(45), '--user', NOBODY]),
    ]);
    for (const result of results) {
      expectRefusal(result, 1, `There is no user with the email address ${NOBODY}`);
      expect(result.stdout).toBe('');
    }
  });
});
