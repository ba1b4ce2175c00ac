/**
 * Bulk import in batches (issue #18 point 7): a CSV spanning several batches, with bad rows in different
 * batches — each reported by its line with the message `user add` would give, none of it written — and
 * every good row written as `addUser` writes one: its roles, policy profile, a working activation link
 * and its `user.created` event.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser, findActivation } from '../../src/app/directory.js';
import { ImportFormatError, importUsers, type FailedRow, type ImportedRow } from '../../src/app/import-users.js';
import { profileKey } from '../../src/core/policy/profile.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';

const operator = { kind: 'cli', name: 'operator' } as const;
const ROWS = 3000;
const BATCH = 400;

/** Line n of the file (the header is line 1): row i is on line i + 2. */
const lineOf = (i: number) => i + 2;

describe.each(dialects)('bulk import on %s', (dialect) => {
  let ctx: TestContext;
  const organisations = ['North Trust', 'South Trust', 'East Practice'];

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    for (const name of organisations) await addOrganisation(ctx, name, operator);
    await addUser(ctx, { email: 'already@example.org', displayName: 'Already Here', organisation: 'North Trust', roles: [] }, operator);
  });
  afterAll(async () => ctx?.destroy());

  const count = async (table: 'users' | 'user_tokens' | 'audit_events' | 'role_assignments') =>
    Number((await ctx.store.database.db.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);

  it('imports the good rows of several batches whole, and reports each bad row by its line, writing none of it', async () => {
    // Bad rows in different batches (400 rows each), with what `user add` says of each.
    const bad = new Map<number, { cells: string; message: string }>([
      [5, { cells: 'not-an-email,Bad Email,North Trust,', message: 'Enter an email address in the correct format, like name@example.com' }],
      [450, { cells: 'nowhere@example.org,No Org,Missing Trust,', message: 'There is no organisation called Missing Trust' }],
      [901, { cells: 'norole@example.org,No Role,South Trust,wizard', message: 'There is no role called wizard' }],
      [1333, { cells: 'user-10@example.org,Twice In File,North Trust,', message: 'A user with the email address user-10@example.org already exists' }], // another batch's
      [1334, { cells: 'USER-1200@Example.org,Twice In Batch,North Trust,', message: 'A user with the email address USER-1200@Example.org already exists' }], // this batch's
      [1700, { cells: 'user-1590@example.org,Twice Next Batch,South Trust,', message: 'A user with the email address user-1590@example.org already exists' }], // the batch before, maybe still being written
      [2100, { cells: 'already@example.org,Already,North Trust,', message: 'A user with the email address already@example.org already exists' }],
      [2500, { cells: 'scoped@example.org,Scoped User,North Trust,user:South Trust', message: 'The user role applies everywhere and cannot be scoped to an organisation' }],
      [2999, { cells: 'name@example.org,,North Trust,', message: 'Enter a display name of 1 to 200 characters, without line breaks or control characters' }],
    ]);
    const roleOf = (i: number) => (i % 10 === 0 ? 'helpdesk' : i % 25 === 0 ? 'local-admin:South Trust;helpdesk' : '');
    const lines = ['email,name,organisation,roles'];
    for (let i = 0; i < ROWS; i++) lines.push(bad.get(i)?.cells ?? `user-${i}@example.org,User ${i},${organisations[i % 3]},${roleOf(i)}`);
    const before = { users: await count('users'), tokens: await count('user_tokens'), audit: await count('audit_events'), roles: await count('role_assignments') };

    const imported: ImportedRow[] = [];
    const failed: FailedRow[] = [];
    const report = await importUsers(ctx, Readable.from(lines.map((l) => `${l}\n`)), operator, { imported: (r) => imported.push(r), failed: (r) => failed.push(r) }, { batchSize: BATCH });

    const expectedFailures = [...bad].map(([i, b]) => ({ line: lineOf(i), email: b.cells.split(',')[0], message: b.message }));
    expect(report.failed).toEqual(expectedFailures);
    expect(failed).toEqual(expectedFailures);
    expect(report.imported).toBe(ROWS - bad.size);
    expect(imported.length).toBe(report.imported);
    expect(imported.map((r) => r.line)).toEqual([...Array(ROWS).keys()].filter((i) => !bad.has(i)).map(lineOf));

    // Nothing of a bad row: no user, and the counts of every table add up to the good rows only.
    for (const email of ['nowhere@example.org', 'norole@example.org', 'scoped@example.org', 'name@example.org']) expect(await ctx.store.users.findByEmail(email)).toBeUndefined();
    expect((await ctx.store.users.findByEmail('user-10@example.org'))?.display_name).toBe('User 10');
    expect((await ctx.store.users.findByEmail('already@example.org'))?.display_name).toBe('Already Here');
    const good = [...Array(ROWS).keys()].filter((i) => !bad.has(i));
    const extraRoles = good.reduce((n, i) => n + (i % 10 === 0 ? 1 : i % 25 === 0 ? 2 : 0), 0);
    expect({ users: await count('users'), tokens: await count('user_tokens'), audit: await count('audit_events'), roles: await count('role_assignments') }).toEqual({
      users: before.users + good.length,
      tokens: before.tokens + good.length,
      audit: before.audit + good.length,
      roles: before.roles + good.length + extraRoles,
    });

    // Every good row whole: roles, profile, a link that works, the audit event — a sample from each batch.
    const south = (await ctx.store.organisations.findByName('South Trust'))!;
    for (const i of [0, 1, 25, 399, 400, 1200, 1335, 2550, 2998]) {
      const user = (await ctx.store.users.findByEmail(`user-${i}@example.org`))!;
      const own = (await ctx.store.organisations.findByName(organisations[i % 3]!))!;
      expect(user).toMatchObject({ display_name: `User ${i}`, organisation_id: own.id, status: 'active', password_hash: null });
      const expectedRoles = i % 10 === 0 ? [{ role: 'helpdesk', scope: '*' }, { role: 'user', scope: '*' }] : i % 25 === 0 ? [{ role: 'helpdesk', scope: '*' }, { role: 'local-admin', scope: south.id }, { role: 'user', scope: '*' }] : [{ role: 'user', scope: '*' }];
      expect((await ctx.store.roles.assignmentsOf(user.id)).map(({ role, scope }) => ({ role, scope }))).toEqual(expectedRoles);
      expect(user.policy_profile).toBe(profileKey({ roles: expectedRoles.map((r) => r.role), groups: [], kinds: [] }));
      const link = imported.find((r) => r.line === lineOf(i))!;
      expect(link.email).toBe(`user-${i}@example.org`);
      expect(link.activationUrl).toMatch(/^http:\/\/localhost:8080\/activate\/[A-Za-z0-9_-]{43}$/);
      expect((await findActivation(ctx, link.activationUrl!.split('/').at(-1)!))?.id).toBe(user.id);
      const events = await ctx.store.audit.list({ subjectUserId: user.id });
      expect(events.map((e) => [e.type, e.actor_type, e.actor_id])).toEqual([['user.created', 'cli', 'operator']]);
      expect(JSON.parse(events[0]!.details)).toEqual({
        email: `user-${i}@example.org`,
        organisation: own.name,
        roles: i % 10 === 0 ? ['user', 'helpdesk'] : i % 25 === 0 ? ['user', 'local-admin', 'helpdesk'] : ['user'],
        passwordSet: false,
      });
    }
  });

  it('writes the same rows as `user add`, the reason of an administrator included', async () => {
    const actor = { kind: 'cli', name: 'operator', reason: 'Ticket 42' } as const;
    const added = await addUser(ctx, { email: 'single@example.org', displayName: 'Single', organisation: 'East Practice', roles: [{ role: 'local-admin', organisations: [] }] }, actor);
    const report = await importUsers(ctx, Readable.from(['email,name,organisation,roles\nbulk@example.org,Bulk,East Practice,local-admin\n']), actor);
    expect(report).toEqual({ imported: 1, failed: [] });
    const bulk = (await ctx.store.users.findByEmail('bulk@example.org'))!;
    const strip = <T extends { id: string; email: string; email_normalised: string; display_name: string; created_at: string; updated_at: string }>(u: T) => {
      const { id: _id, email: _e, email_normalised: _n, display_name: _d, created_at: _c, updated_at: _u, ...rest } = u;
      return rest;
    };
    expect(strip(bulk)).toEqual(strip((await ctx.store.users.findById(added.user.id))!));
    expect((await ctx.store.roles.assignmentsOf(bulk.id)).map((a) => [a.role, a.scope])).toEqual((await ctx.store.roles.assignmentsOf(added.user.id)).map((a) => [a.role, a.scope]));
    const [one] = await ctx.store.audit.list({ subjectUserId: added.user.id });
    const [other] = await ctx.store.audit.list({ subjectUserId: bulk.id });
    expect({ ...other!, id: 0, at: '', subject_user_id: '', details: JSON.parse(other!.details.replaceAll('bulk@', 'x@')) }).toEqual({
      ...one!,
      id: 0,
      at: '',
      subject_user_id: '',
      details: JSON.parse(one!.details.replaceAll('single@', 'x@')),
    });
  });

  it('fails only the row whose email another writer took after the batch was read', async () => {
    // Another writer adds race@ after the batch was read and checked, just before it is written.
    let raced = false;
    const racing = {
      ...ctx,
      store: {
        ...ctx.store,
        transaction: (async (work) => {
          if (!raced) {
            raced = true;
            await addUser(ctx, { email: 'race@example.org', displayName: 'First', organisation: 'North Trust', roles: [] }, operator);
          }
          return ctx.store.transaction(work);
        }) as typeof ctx.store.transaction,
      },
    };
    const csv = 'email,name,organisation\nr1@example.org,R1,North Trust\nrace@example.org,Second,North Trust\nr3@example.org,R3,South Trust\n';
    const report = await importUsers(racing, Readable.from([csv]), operator);
    expect(raced).toBe(true);
    expect(report).toEqual({ imported: 2, failed: [{ line: 3, email: 'race@example.org', message: 'A user with the email address race@example.org already exists' }] });
    expect((await ctx.store.users.findByEmail('race@example.org'))?.display_name).toBe('First');
    for (const email of ['r1@example.org', 'r3@example.org']) {
      const user = (await ctx.store.users.findByEmail(email))!;
      expect((await ctx.store.audit.list({ subjectUserId: user.id })).map((e) => e.type)).toEqual(['user.created']);
      expect(user.policy_profile).toBe(profileKey({ roles: ['user'], groups: [], kinds: [] }));
    }
  });

  it('refuses a header missing a column before writing anything', async () => {
    const users = await count('users');
    await expect(importUsers(ctx, Readable.from(['email,name\nx@example.org,X\n']), operator)).rejects.toBeInstanceOf(ImportFormatError);
    expect(await count('users')).toBe(users);
  });
});
