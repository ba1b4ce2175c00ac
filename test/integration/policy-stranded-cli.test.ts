/**
 * Issue #12, point 2, at the operator's terminal: `policy check` and `policy apply` count, by role, the
 * people a new document would strand (every method they registered turned off for them), and refuse
 * unless told `--allow-stranded`. Through the real `portcullis` binary, on SQLite and PostgreSQL, as in
 * policy-cli.test.ts; the test sets up people through the store and reads back what the verbs wrote.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext, type AppContext } from '../../src/app/context.js';
import { addOrganisation, addUser, disableUser } from '../../src/app/directory.js';
import { applyPolicyText } from '../../src/app/policy.js';
import { isPortcullisError } from '../../src/core/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { createTestDatabase, dialects, TEST_SECRET, type TestDatabase } from '../helpers/context.js';

const actor = { kind: 'system' } as const;
const dayFromNow = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
const EXAMPLE = path.resolve(import.meta.dirname, '..', '..', 'examples', 'nhsmail-elevated-rights.yaml');

/** Texts and calls turned off for elevated roles, push required of them in 30 days. */
const NO_PHONES_FOR_ELEVATED = `version: 1
timeZone: UTC
methods:
  sms: { enabled: true, exclude: [elevated] }
  voice: { enabled: true, exclude: [elevated] }
  totp: { enabled: true }
  push: { enabled: true }
  tap: { enabled: true }
requirements:
  - id: elevated-push
    include: [elevated]
    strength: app-push
    effective: ${dayFromNow(30)}
    graceDays: 7
`;

const STRANDED_TABLE = /ROLE\s+PEOPLE\nuser\s+3\nhelpdesk\s+2\nlocal-admin\s+1\n/;

/** A refusal as an operator sees it: the exit code and plain lines on stderr, never a stack trace. */
function expectRefusal(result: CliResult, code: number, message: RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toContain('Unexpected error');
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe.each(dialects)('policy check and apply count whom a document would strand (issue #12) on %s', (dialect) => {
  let database: TestDatabase;
  let ctx: AppContext;
  let env: Record<string, string>;
  let dir: string;
  let phones = 0;
  const cli = (args: string[], input?: string) => runCli(args, env, input);
  const versions = async () => Number((await ctx.store.database.db.selectFrom('policy_versions').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);

  async function person(email: string, roles: Array<{ role: string; organisations: string[] }>, kinds: Array<'sms' | 'voice' | 'push'>): Promise<void> {
    const { user } = await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Test Trust', roles }, actor);
    for (const kind of kinds) {
      phones += 1;
      const id = randomUUID();
      const now = new Date();
      const phone = kind === 'push' ? null : `+4474013${String(phones).padStart(5, '0')}`;
      await ctx.store.methods.insertPending({ id, userId: user.id, kind, label: kind === 'push' ? 'Phone' : '', phoneE164: phone, secretSealed: null, now, pendingExpiresAt: new Date(now.getTime() + 60_000) });
      expect(await ctx.store.methods.activate(user.id, id, now, null)).toBe(true);
    }
  }

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    dir = mkdtempSync(path.join(os.tmpdir(), 'pc-stranded-cli-'));
    env = { DATABASE_URL: database.url, PORTCULLIS_SECRET: TEST_SECRET, PORTCULLIS_DATA_DIR: dir, PUBLIC_URL: 'https://id.example.org' };
    ctx = await createAppContext(loadConfig({ env: { ...env, LOG_LEVEL: 'silent' } }), { logger: pino({ level: 'silent' }) });
    await addOrganisation(ctx, 'Test Trust', actor);
    const helpdesk = [{ role: 'helpdesk', organisations: [] }];
    await person('sam@example.org', helpdesk, ['sms']); // stranded: texts only
    await person('vic@example.org', helpdesk, ['voice', 'sms']); // stranded: two methods, both turned off
    await person('lee@example.org', [{ role: 'local-admin', organisations: ['Test Trust'] }], ['sms']); // stranded
    await person('pat@example.org', helpdesk, ['sms', 'push']); // keeps push
    await person('olive@example.org', [], ['sms']); // texts stay enabled for typical users
    await person('nina@example.org', helpdesk, []); // no method: the registration grant is theirs
    await person('gone@example.org', helpdesk, ['sms']);
    await disableUser(ctx, 'gone@example.org', actor); // not counted
  });

  afterAll(async () => {
    await ctx?.close();
    await database?.drop();
  });

  it('policy check names how many, by role, and fails unless --allow-stranded; a document stranding nobody passes as before', async () => {
    const file = path.join(dir, 'no-phones.yaml');
    writeFileSync(file, NO_PHONES_FOR_ELEVATED);
    const [refused, allowed, fromStdin, example] = await Promise.all([
      cli(['policy', 'check', file]),
      cli(['policy', 'check', file, '--allow-stranded']),
      cli(['policy', 'check', '-'], NO_PHONES_FOR_ELEVATED),
      cli(['policy', 'check', EXAMPLE]),
    ]);
    expectRefusal(refused, 1, /^This policy turns off every sign-in method that 3 people have registered:\n/);
    expect(refused.stderr).toMatch(STRANDED_TABLE);
    expect(refused.stderr).toContain('after that, only with a Temporary Access Pass.');
    expect(refused.stderr.trim().split('\n').at(-1)).toBe(`${file}: would strand 3 people; nothing was applied. Give --allow-stranded to accept that.`);
    expect(refused.stdout).toBe('');

    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(STRANDED_TABLE);
    expect(allowed.stdout).toContain(`${file} is a valid policy: 1 requirement`);
    expectRefusal(fromStdin, 1, /\n-: would strand 3 people; nothing was applied\./);

    expect(example.code, example.stderr).toBe(0);
    expect(example.stdout).not.toMatch(/strand|turns off/);
    expect(await versions()).toBe(0);
  });

  it('policy apply refuses with the count and stores nothing; with --allow-stranded it applies', async () => {
    const file = path.join(dir, 'no-phones.yaml');
    const refused = await cli(['policy', 'apply', file, '--comment', 'no more texts for admins']);
    expectRefusal(refused, 1, STRANDED_TABLE);
    expect(refused.stderr).toContain('would strand 3 people; nothing was applied. Give --allow-stranded to accept that.');
    expect(await versions()).toBe(0);
    expect(await ctx.store.audit.list({ type: 'policy.applied' })).toEqual([]);

    const applied = await cli(['policy', 'apply', file, '--allow-stranded', '--comment', 'no more texts for admins']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(STRANDED_TABLE);
    expect(applied.stdout.trim().split('\n').at(-1)).toBe(`Applied ${file} as policy version 1. Every node uses it within seconds.`);
    expect(await versions()).toBe(1);
  });

  it('the use case itself refuses too, so no other caller can strand people unawares', async () => {
    const error = await applyPolicyText(ctx, NO_PHONES_FOR_ELEVATED, actor, 'from code').then(
      () => null,
      (e: unknown) => e,
    );
    expect(isPortcullisError(error) && error.code).toBe('policy-strands-people');
    expect(isPortcullisError(error) && error.message).toContain('3 people (user 3, helpdesk 2, local-admin 1)');
    expect(await versions()).toBe(1);
  });

  it('--help says what --allow-stranded is for', async () => {
    const [check, apply] = await Promise.all([cli(['policy', 'check', '--help']), cli(['policy', 'apply', '--help'])]);
    for (const help of [check, apply]) {
      expect(help.code).toBe(0);
      const text = help.stdout.replace(/\s+/g, ' '); // Commander wraps to the terminal's width
      expect(text).toContain('--allow-stranded accept that the policy turns off every method some people have registered');
    }
  });
});
