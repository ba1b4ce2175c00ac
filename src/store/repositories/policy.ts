import { sql, type Kysely, type RawBuilder } from 'kysely';
import { prepared } from '../prepared.js';
import type { DatabaseSchema, PolicyExceptionRow, TemporaryAccessPassRow } from '../schema.js';


/** What the method policy needs to know about a user from the directory, read in one statement. */
export interface PolicyFacts {
  /** Sorted by role name. */
  roles: Array<{ role: string; scope: string; elevated: boolean }>;
  /** Group names, sorted as the directory sorts them. */
  groups: string[];
  pass: { expiresAt: string; multiUse: boolean; usedAt: string | null } | null;
  /** Exceptions not revoked and not ended at `now`. */
  exceptions: Array<{ requirementId: string; until: string }>;
  snoozes: Array<{ campaignId: string; count: number; until: string | null }>;
}

/**
 * Every sign-in evaluates the policy for its user: roles, groups, a pass, exceptions and snoozes in one
 * round trip rather than five. Each part is a text column per field; `kind` says which part a row is.
 * `who` is the user's id, or a subquery for it (the password step reads them by address, with the user).
 */
function factsSql(who: RawBuilder<string>, now: string) {
  return sql<FactRow>`
    select 'role' as kind, ra.role_name as a, ra.scope as b, cast(r.elevated as text) as c
      from role_assignments ra inner join roles r on r.name = ra.role_name where ra.user_id = ${who}
    union all
    select 'group', g.name, g.name_normalised, null
      from group_members m inner join ${sql.table('groups')} g on g.id = m.group_id where m.user_id = ${who}
    union all
    select 'pass', p.expires_at, cast(p.multi_use as text), p.used_at from temporary_access_passes p where p.user_id = ${who}
    union all
    select 'exception', e.requirement_id, e.until, null
      from policy_exceptions e where e.user_id = ${who} and e.revoked_at is null and e.until > ${now}
    union all
    select 'snooze', s.campaign_id, cast(s.count as text), s.until from campaign_snoozes s where s.user_id = ${who}`;
}

interface FactRow {
  kind: string;
  a: string | null;
  b: string | null;
  c: string | null;
}

// Every sign-in runs one of these (src/store/prepared.ts).
const factsById = prepared(2, (db, userId, now) => ({ compile: () => factsSql(sql`${userId}`, now).compile(db) }));
const factsByEmail = prepared(2, (db, email, now) => ({
  compile: () => factsSql(sql`(select u.id from users u where u.email_normalised = ${email})`, now).compile(db),
}));

function factsOf(rows: FactRow[]): PolicyFacts {
  const facts: PolicyFacts = { roles: [], groups: [], pass: null, exceptions: [], snoozes: [] };
  const groups: Array<{ name: string; key: string }> = [];
  for (const { kind, a, b, c } of rows) {
    if (kind === 'role') facts.roles.push({ role: a!, scope: b!, elevated: c === '1' });
    else if (kind === 'group') groups.push({ name: a!, key: b! });
    else if (kind === 'pass') facts.pass = { expiresAt: a!, multiUse: b === '1', usedAt: c };
    else if (kind === 'exception') facts.exceptions.push({ requirementId: a!, until: b! });
    else if (kind === 'snooze') facts.snoozes.push({ campaignId: a!, count: Number(b), until: c });
  }
  facts.roles.sort((x, y) => byText(x.role, y.role) || byText(x.scope, y.scope));
  facts.groups = groups.sort((x, y) => byText(x.key, y.key)).map((g) => g.name);
  return facts;
}

const byText = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

export function createPolicyRepository(db: Kysely<DatabaseSchema>) {
  return {
    async facts(userId: string, now: Date): Promise<PolicyFacts> {
      return factsOf((await factsById(db, userId, now.toISOString())).rows);
    },
    /** The same, for the user with this normalised address (empty when there is none). */
    async factsByEmail(emailNormalised: string, now: Date): Promise<PolicyFacts> {
      return factsOf((await factsByEmail(db, emailNormalised, now.toISOString())).rows);
    },
    async latest(): Promise<{ version: number; document: string; applied_by: string; applied_at: string } | undefined> {
      return db.selectFrom('policy_versions').select(['version', 'document', 'applied_by', 'applied_at']).orderBy('version', 'desc').limit(1).executeTakeFirst();
    },
    /** The next version number; the primary key refuses a second writer of the same number. */
    async insertVersion(row: { document: string; appliedBy: string; now: Date; comment: string }): Promise<number> {
      const last = await db.selectFrom('policy_versions').select((eb) => eb.fn.max('version').as('v')).executeTakeFirst();
      const version = Number(last?.v ?? 0) + 1;
      await db.insertInto('policy_versions').values({ version, document: row.document, applied_by: row.appliedBy, applied_at: row.now.toISOString(), comment: row.comment }).execute();
      return version;
    },
    async versions(): Promise<Array<{ version: number; applied_by: string; applied_at: string; comment: string }>> {
      return db.selectFrom('policy_versions').select(['version', 'applied_by', 'applied_at', 'comment']).orderBy('version', 'desc').execute();
    },
    async insertException(row: Omit<PolicyExceptionRow, 'revoked_at' | 'revoked_by'>): Promise<void> {
      await db.insertInto('policy_exceptions').values({ ...row, revoked_at: null, revoked_by: null }).execute();
    },
    async exceptions(filter: { userId?: string; includeEnded?: boolean; now: Date }): Promise<Array<PolicyExceptionRow & { email: string }>> {
      let query = db.selectFrom('policy_exceptions as e').innerJoin('users as u', 'u.id', 'e.user_id').selectAll('e').select('u.email').orderBy('e.created_at', 'desc');
      if (filter.userId) query = query.where('e.user_id', '=', filter.userId);
      if (!filter.includeEnded) query = query.where('e.revoked_at', 'is', null).where('e.until', '>', filter.now.toISOString());
      return query.execute();
    },
    async revokeException(id: string, by: string, now: Date): Promise<PolicyExceptionRow | undefined> {
      return db
        .updateTable('policy_exceptions')
        .set({ revoked_at: now.toISOString(), revoked_by: by })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
    },
    async snoozes(userId: string): Promise<Array<{ campaign_id: string; count: number; until: string | null }>> {
      return db.selectFrom('campaign_snoozes').select(['campaign_id', 'count', 'until']).where('user_id', '=', userId).execute();
    },
    async snooze(userId: string, campaignId: string, until: Date): Promise<number> {
      const row = await db
        .insertInto('campaign_snoozes')
        .values({ user_id: userId, campaign_id: campaignId, count: 1, until: until.toISOString() })
        .onConflict((oc) => oc.columns(['user_id', 'campaign_id']).doUpdateSet((eb) => ({ count: eb('campaign_snoozes.count', '+', 1), until: until.toISOString() })))
        .returning('count')
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },
    async replacePass(row: TemporaryAccessPassRow): Promise<void> {
      await db.deleteFrom('temporary_access_passes').where('user_id', '=', row.user_id).execute();
      await db.insertInto('temporary_access_passes').values(row).execute();
    },
    async pass(userId: string): Promise<TemporaryAccessPassRow | undefined> {
      return db.selectFrom('temporary_access_passes').selectAll().where('user_id', '=', userId).executeTakeFirst();
    },
    /** Uses a one-time pass up atomically (of two racing sign-ins, one wins); a multi-use pass just records its use. */
    async usePass(userId: string, passHash: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('temporary_access_passes')
        .set({ used_at: now.toISOString() })
        .where('user_id', '=', userId)
        .where('pass_hash', '=', passHash)
        .where('expires_at', '>', now.toISOString())
        .where((eb) => eb.or([eb('multi_use', '=', 1), eb('used_at', 'is', null)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async deletePass(userId: string): Promise<void> {
      await db.deleteFrom('temporary_access_passes').where('user_id', '=', userId).execute();
    },
  };
}

export type PolicyRepository = ReturnType<typeof createPolicyRepository>;
