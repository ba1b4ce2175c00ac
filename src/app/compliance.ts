/**
 * Compliance over the whole directory: the summary (`portcullis report compliance`), one row per user
 * (CSV or JSON, streamed), and "what if" a date came (`portcullis policy what-if`).
 *
 * There is one evaluator, the core's `evaluatePolicy`. A user's compliance depends only on their roles,
 * groups, the kinds of method they have registered (together their policy profile, kept on the user's
 * row: src/core/policy/profile.ts) and their live exceptions, so the database counts users per profile
 * with one indexed GROUP BY, the few with live exceptions are counted apart, and the core evaluates each
 * distinct combination once — a few dozen evaluations for a million and a half users.
 *
 * A requirement targeting an application (`client:KEY`, docs/policy.md#applications) applies to the people
 * who use it: those holding a live grant for that client (oidc-provider's Grant rows, by their indexed
 * `client_id` and `account_id`). Only when the policy has such a requirement, a second GROUP BY counts the
 * users per profile and per set of applications used (the applications the policy names, and "another"),
 * and those users move from their profile's count to that combination's.
 */
import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import type { MethodSummary, SecondFactorKind } from '../core/methods/registry.js';
import { formatDay } from '../core/policy/dates.js';
import { parseProfile, type Profile } from '../core/policy/profile.js';
import { listsModels, type CompiledPolicy } from '../core/policy/document.js';
import { evaluatePolicy, type ComplianceState, type Evaluation, type PolicySubject } from '../core/policy/evaluate.js';
import { applicationsFor, hasApplicationRequirements, namedApplications } from '../core/policy/applications.js';
import { activeProfileCounts } from '../store/repositories/policy-profile.js';
import type { DatabaseSchema } from '../store/schema.js';
import type { AppContext } from './context.js';
import { currentPolicy } from './policy.js';


export type StateName = ComplianceState['state'];
export const STATE_NAMES: readonly StateName[] = ['compliant', 'exempt', 'action-needed', 'in-grace', 'non-compliant'];

type Evaluated = Evaluation & { subjectElevated: boolean };

interface Combination {
  roles: string[];
  groups: string[];
  kinds: SecondFactorKind[];
  exceptions: string[];
  /** The applications used, as `applicationsFor` gives them (empty: none, or no requirement targets one). */
  applications?: string[];
  /**
   * The models of the person's methods (`kind:model`, sorted), only when a requirement's strength lists
   * models (issue #14): a passkey then meets it only if its model is listed.
   */
  models?: string[];
}

/** A combination's methods: one per kind, or one per model of a kind whose models are known. */
function registeredOf(kinds: readonly SecondFactorKind[], models: readonly string[]): MethodSummary[] {
  return kinds.flatMap((kind, i): MethodSummary[] => {
    const ofKind = models.filter((m) => m.startsWith(`${kind}:`)).map((m) => m.slice(kind.length + 1));
    if (ofKind.length === 0) return [{ id: `m${i}`, kind, detail: '' }];
    return ofKind.map((model, j) => ({ id: `m${i}.${j}`, kind, detail: '', model }));
  });
}

/** The models of these users' active methods (`kind:model`, sorted), for the people who have any. */
async function modelsOf(db: Kysely<DatabaseSchema>, users?: Expression<unknown>, organisations: readonly string[] | null = null): Promise<Map<string, { profile: string; models: string[] }>> {
  let query = db
    .selectFrom('methods as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['m.user_id', 'm.kind', 'm.model', 'u.policy_profile as profile'])
    .where('m.status', '=', 'active')
    .where('m.model', 'is not', null)
    .where('u.status', '=', 'active');
  if (users) query = query.where('m.user_id', 'in', users as never);
  if (organisations) query = query.where('u.organisation_id', 'in', organisations);
  const byUser = new Map<string, { profile: string; models: string[] }>();
  for (const row of await query.execute()) {
    const entry = byUser.get(row.user_id) ?? { profile: row.profile, models: [] };
    const model = `${row.kind}:${row.model}`;
    if (!entry.models.includes(model)) entry.models.push(model);
    byUser.set(row.user_id, entry);
  }
  for (const entry of byUser.values()) entry.models.sort();
  return byUser;
}

/**
 * Evaluates each distinct combination once. Exceptions are keyed by requirement: any live exception
 * makes its requirement exempt at `at`, whatever its own end date (each row shows its own).
 */
class CombinationEvaluator {
  private readonly cache = new Map<string, Evaluated>();
  evaluations = 0;
  constructor(
    private readonly policy: CompiledPolicy,
    private readonly elevatedRoles: ReadonlySet<string>,
    private readonly at: Date,
  ) {}

  evaluate(combination: Combination): Evaluated {
    const applications = combination.applications ?? [];
    const models = combination.models ?? [];
    const key = `${combination.roles.join(',')}|${combination.groups.join(',')}|${combination.kinds.join(',')}|${combination.exceptions.join(',')}|${applications.join(',')}|${models.join(',')}`;
    let evaluation = this.cache.get(key);
    if (!evaluation) {
      const subject: PolicySubject = {
        roles: combination.roles,
        elevated: combination.roles.some((r) => this.elevatedRoles.has(r)),
        groups: combination.groups,
        registered: registeredOf(combination.kinds, models),
        defaultMethodId: null,
        hasActiveTap: false,
        exceptions: combination.exceptions.map((requirementId) => ({ requirementId, until: new Date(this.at.getTime() + 366 * 86_400_000) })),
        snoozes: [],
        applications,
      };
      evaluation = { ...evaluatePolicy(subject, this.policy, this.at), subjectElevated: subject.elevated };
      this.evaluations += 1;
      this.cache.set(key, evaluation);
    }
    return evaluation;
  }
}

async function evaluatorFor(ctx: AppContext, at: Date, draft?: CompiledPolicy): Promise<{ evaluator: CombinationEvaluator; policy: CompiledPolicy; version: number }> {
  const [current, roles] = await Promise.all([draft ? null : currentPolicy(ctx), ctx.store.roles.list()]);
  const policy = draft ?? current!.policy;
  const version = current?.version ?? 0;
  return { evaluator: new CombinationEvaluator(policy, new Set(roles.filter((r) => r.elevated).map((r) => r.name)), at), policy, version };
}

export interface StateCounts {
  total: number;
  byState: Record<StateName, number>;
}

/** Live grants, each with its registered client's policy key. */
function liveGrants(db: Kysely<DatabaseSchema>, at: Date) {
  return db
    .selectFrom('oidc_artefacts as g')
    .innerJoin('oidc_clients as c', 'c.client_id', 'g.client_id')
    .where('g.model', '=', 'Grant')
    .where('g.client_id', 'is not', null)
    .where('g.account_id', 'is not', null)
    .where((eb) => eb.or([eb('g.expires_at', 'is', null), eb('g.expires_at', '>', at.toISOString())]));
}

/** The applications each of these users uses (few users: those with live exceptions, or one page). */
async function applicationsOf(db: Kysely<DatabaseSchema>, at: Date, named: ReadonlySet<string>, users: readonly string[] | Expression<unknown>): Promise<Map<string, string[]>> {
  const rows = await liveGrants(db, at)
    .select(['g.account_id', 'c.key'])
    .distinct()
    .where('g.account_id', 'in', users as readonly string[])
    .execute();
  const used = new Map<string, string[]>();
  for (const row of rows) {
    const list = used.get(row.account_id!);
    if (list) list.push(row.key);
    else used.set(row.account_id!, [row.key]);
  }
  return new Map([...used].map(([user, keys]) => [user, applicationsFor(keys, named)]));
}

/**
 * Active users counted per profile and per set of applications used, for those who use any (one GROUP BY
 * over the Grant rows' (model, client_id, account_id) index; a flag per application the policy names).
 */
async function applicationProfileCounts(
  db: Kysely<DatabaseSchema>,
  at: Date,
  named: readonly string[],
  organisations: readonly string[] | null = null,
): Promise<Array<{ profile: string; applications: string[]; users: number }>> {
  const flags = named.map((key, i) => sql`max(case when c.key = ${key} then 1 else 0 end) as ${sql.ref(`a${i}`)}`);
  const other = named.length ? sql`max(case when c.key not in (${sql.join(named)}) then 1 else 0 end)` : sql`1`;
  const columns = [...named.map((_, i) => sql.ref(`s.a${i}`)), sql.ref('s.other')];
  const { rows } = await sql<Record<string, number | string>>`
    select u.policy_profile as profile, ${sql.join(columns)}, count(*) as users
    from (
      select g.account_id, ${sql.join([...flags, sql`${other} as other`])}
      from oidc_artefacts g inner join oidc_clients c on c.client_id = g.client_id
      where g.model = 'Grant' and g.client_id is not null and g.account_id is not null and (g.expires_at is null or g.expires_at > ${at.toISOString()})
      group by g.account_id
    ) s inner join users u on u.id = s.account_id
    where u.status = 'active'${organisations ? sql` and u.organisation_id in (${sql.join(organisations)})` : sql``}
    group by u.policy_profile, ${sql.join(columns)}`.execute(db);
  return rows.map((row) => ({
    profile: String(row.profile),
    applications: [...named.filter((_, i) => Number(row[`a${i}`]) === 1), ...(Number(row.other) === 1 ? ['*'] : [])].sort(),
    users: Number(row.users),
  }));
}

/** Active users' live exceptions at `at`, with each user's profile; of these organisations' users only, when given. */
function liveExceptions(db: Kysely<DatabaseSchema>, at: Date, organisations: readonly string[] | null) {
  let query = db
    .selectFrom('policy_exceptions as e')
    .innerJoin('users as u', 'u.id', 'e.user_id')
    .select(['e.user_id', 'e.requirement_id', 'u.policy_profile as profile'])
    .where('u.status', '=', 'active')
    .where('e.revoked_at', 'is', null)
    .where('e.until', '>', at.toISOString());
  if (organisations) query = query.where('u.organisation_id', 'in', organisations);
  return query.execute();
}

const emptyCounts = (): StateCounts => ({ total: 0, byState: { compliant: 0, exempt: 0, 'action-needed': 0, 'in-grace': 0, 'non-compliant': 0 } });

export interface ComplianceSummary {
  at: string;
  policyVersion: number;
  /** Active users, by their overall state (the worst of the enforced requirements). */
  users: StateCounts;
  elevated: StateCounts;
  /** Users with no second method at all. */
  withoutMethod: number;
  requirements: Array<{ id: string; name: string; type: 'requirement' | 'registration'; mode: 'enforce' | 'report-only'; date: string } & StateCounts>;
  /** Distinct combinations of roles, groups, method kinds and exceptions evaluated. */
  combinations: number;
  /** Active users holding each kind of method (the method mix; one person may count in several). */
  methodMix: Partial<Record<SecondFactorKind, number>>;
}

/**
 * The summary: users counted per combination in SQL, each combination evaluated once by the core; of
 * every active user, or (`organisations`) of those organisations' users only — a local administrator's.
 */
export async function complianceSummary(ctx: AppContext, at: Date = ctx.clock(), organisations?: readonly string[], options: { draft?: CompiledPolicy } = {}): Promise<ComplianceSummary> {
  const db = ctx.store.database.db;
  // A draft (the console's preview of an edit) is counted the same way; its version is 0, as it has none yet.
  const { evaluator, policy, version } = await evaluatorFor(ctx, at, options.draft);
  const inScope = organisations ? (organisations.length ? organisations : ['\u0000none']) : null;
  const [profiles, exceptions] = await Promise.all([activeProfileCounts(db, organisations), liveExceptions(db, at, inScope)]);
  // Users who use applications a requirement targets move from their profile's count to their
  // profile-with-applications' count; then users with live exceptions to their profile-with-exceptions'.
  type Where = { exceptions: string[]; applications: string[]; models: string[] };
  const keyOf = (profile: string, at: Where) => `${profile}#${at.exceptions.join(',')}#${at.applications.join(',')}#${at.models.join(',')}`;
  const counts = new Map<string, { profile: string; users: number } & Where>();
  for (const row of profiles) counts.set(keyOf(row.profile, { exceptions: [], applications: [], models: [] }), { profile: row.profile, exceptions: [], applications: [], models: [], users: row.users });
  const move = (profile: string, from: Where, to: Where, users: number) => {
    const base = counts.get(keyOf(profile, from));
    if (base) base.users -= users;
    const key = keyOf(profile, to);
    const entry = counts.get(key) ?? { profile, ...to, users: 0 };
    entry.users += users;
    counts.set(key, entry);
  };
  const named = hasApplicationRequirements(policy) ? namedApplications(policy) : null;
  if (named) {
    for (const row of await applicationProfileCounts(db, at, named, inScope)) move(row.profile, { exceptions: [], applications: [], models: [] }, { exceptions: [], applications: row.applications, models: [] }, row.users);
  }
  // Where a strength lists models, people whose methods have one move to their combination with those models.
  const models = listsModels(policy) ? await modelsOf(db, undefined, inScope) : new Map<string, { profile: string; models: string[] }>();
  const applicationsOfModelled = named && models.size ? await applicationsOf(db, at, new Set(named), [...models.keys()]) : new Map<string, string[]>();
  for (const [userId, entry] of models) {
    const applications = applicationsOfModelled.get(userId) ?? [];
    move(entry.profile, { exceptions: [], applications, models: [] }, { exceptions: [], applications, models: entry.models }, 1);
  }
  const exempted = new Map<string, { profile: string; requirements: Set<string> }>();
  for (const row of exceptions) {
    const entry = exempted.get(row.user_id) ?? { profile: row.profile, requirements: new Set<string>() };
    entry.requirements.add(row.requirement_id);
    exempted.set(row.user_id, entry);
  }
  const applicationsOfExempted = named && exempted.size ? await applicationsOf(db, at, new Set(named), [...exempted.keys()]) : new Map<string, string[]>();
  for (const [userId, { profile, requirements }] of exempted) {
    const applications = applicationsOfExempted.get(userId) ?? [];
    const userModels = models.get(userId)?.models ?? [];
    move(profile, { exceptions: [], applications, models: userModels }, { exceptions: [...requirements].sort(), applications, models: userModels }, 1);
  }
  const rows = [...counts.values()].filter((c) => c.users > 0);

  const users = emptyCounts();
  const elevated = emptyCounts();
  let withoutMethod = 0;
  const requirementDates = new Map<string, Date>([
    ...policy.requirements.map((r) => [r.id, r.effective] as [string, Date]),
    ...policy.registration.map((r) => [r.id, r.by] as [string, Date]),
  ]);
  const perRequirement = new Map<string, ComplianceSummary['requirements'][number]>();
  const methodMix: Partial<Record<SecondFactorKind, number>> = {};
  for (const row of rows) {
    const count = row.users;
    const { roles, groups, kinds } = parseProfile(row.profile);
    for (const kind of kinds) methodMix[kind] = (methodMix[kind] ?? 0) + count;
    const evaluation = evaluator.evaluate({ roles, groups, kinds, exceptions: row.exceptions, applications: row.applications, models: row.models });
    users.total += count;
    users.byState[evaluation.state.state] += count;
    if (kinds.length === 0) withoutMethod += count;
    if (evaluation.subjectElevated) {
      elevated.total += count;
      elevated.byState[evaluation.state.state] += count;
    }
    for (const result of evaluation.requirements) {
      let entry = perRequirement.get(result.id);
      if (!entry) {
        entry = { id: result.id, name: result.name, type: result.type, mode: result.mode, date: requirementDates.get(result.id)!.toISOString(), ...emptyCounts() };
        perRequirement.set(result.id, entry);
      }
      entry.total += count;
      entry.byState[result.state.state] += count;
    }
  }
  return { at: at.toISOString(), policyVersion: version, users, elevated, withoutMethod, requirements: [...perRequirement.values()], combinations: evaluator.evaluations, methodMix };
}

export interface ComplianceRow {
  email: string;
  name: string;
  organisation: string;
  elevated: boolean;
  roles: string[];
  groups: string[];
  methods: SecondFactorKind[];
  state: StateName;
  /** The date that goes with the state: by (action needed), until (in grace, exempt), since (non-compliant). */
  date: string | null;
  /** Each enforced or reported requirement not met, with its state: "elevated-rights-push: in-grace until …". */
  why: string[];
}

function stateDate(state: ComplianceState): Date | null {
  switch (state.state) {
    case 'action-needed':
      return state.by;
    case 'in-grace':
    case 'exempt':
      return state.until;
    case 'non-compliant':
      return state.since;
    default:
      return null;
  }
}

export interface RowFilter {
  at?: Date;
  role?: string;
  email?: string;
  /** Only users not compliant (and not exempt) at `at`. */
  onlyAtRisk?: boolean;
  batchSize?: number;
}

const STATE_WORDS: Record<StateName, string> = {
  'action-needed': 'action needed by',
  'in-grace': 'in grace until',
  'non-compliant': 'non-compliant since',
  exempt: 'exempt until',
  compliant: '',
};

/** What every user of one combination shares: worked out once, reused for each of them. */
interface Shared {
  evaluation: Evaluated;
  profile: Profile;
  date: string | null;
  why: string[];
  atRisk: boolean;
}

/**
 * Every active user's row, a page at a time (keyset pages over the primary key: flat memory however
 * many users there are). Each page is one query for the users and one for their live exceptions.
 */
export async function* compliancePages(ctx: AppContext, filter: RowFilter = {}): AsyncGenerator<ComplianceRow[]> {
  const at = filter.at ?? ctx.clock();
  const db: Kysely<DatabaseSchema> = ctx.store.database.db;
  const { evaluator, policy } = await evaluatorFor(ctx, at);
  const organisations = new Map((await db.selectFrom('organisations').select(['id', 'name']).execute()).map((o) => [o.id, o.name]));
  const batchSize = filter.batchSize ?? 10_000;
  const day = (d: Date) => formatDay(d, policy.timeZone);
  const describe = (r: Evaluation['requirements'][number], when: string | null | undefined) =>
    `${r.id}${r.mode === 'report-only' ? ' (report only)' : ''}: ${STATE_WORDS[r.state.state]} ${when ? day(new Date(when)) : ''}`.trim();
  const shared = new Map<string, Shared>();
  const named = hasApplicationRequirements(policy) ? new Set(namedApplications(policy)) : null;
  const modelled = listsModels(policy);
  const sharedFor = (profileText: string, exceptions: string[], applications: string[], models: string[]): Shared => {
    const key = `${profileText}#${exceptions.join(',')}#${applications.join(',')}#${models.join(',')}`;
    let entry = shared.get(key);
    if (!entry) {
      const profile = parseProfile(profileText);
      const evaluation = evaluator.evaluate({ ...profile, exceptions, applications, models });
      const state = evaluation.state.state;
      entry = {
        evaluation,
        profile,
        date: stateDate(evaluation.state)?.toISOString() ?? null,
        why: evaluation.requirements.filter((r) => r.state.state !== 'compliant').map((r) => describe(r, stateDate(r.state)?.toISOString())),
        atRisk: state !== 'compliant' && state !== 'exempt',
      };
      shared.set(key, entry);
    }
    return entry;
  };
  // Pages are ranges of the table in its storage order, not of ids (ids are random UUIDs, so walking the
  // id index fetches rows from all over the table: on SQLite 83,000 rows/s instead of 254,000 at 1.5
  // million). SQLite: rowid ranges (an update never changes a rowid). PostgreSQL: ranges of blocks (TID
  // range scans) inside one REPEATABLE READ transaction, whose snapshot keeps each row where it was when
  // the report began — an update meanwhile writes its new version elsewhere, invisible here — so nobody
  // is counted twice or missed. Disabled users are skipped below, not in SQL, so that no planner prefers
  // the (status, profile) index.
  const sqlite = ctx.store.database.dialect === 'sqlite';
  const snapshot = sqlite ? null : await db.startTransaction().setIsolationLevel('repeatable read').execute();
  const q: Kysely<DatabaseSchema> = snapshot ?? db;
  try {
    const ranges: Array<Expression<SqlBool>> = [];
    if (filter.email) {
      // One person: their row by the email index.
      ranges.push(sql<SqlBool>`u.email_normalised = ${filter.email.trim().toLowerCase()}`);
    } else if (sqlite) {
      const { last } = (await sql<{ last: number | null }>`select max(rowid) as last from users`.execute(q)).rows[0]!;
      for (let from = 0; from < (last ?? 0); from += batchSize) ranges.push(sql<SqlBool>`u.rowid > ${from} and u.rowid <= ${from + batchSize}`);
    } else {
      // The first statement takes the snapshot: every row it can see is in a block that exists now.
      const { blocks, perBlock } = (
        await sql<{ blocks: string; perBlock: number }>`select pg_relation_size('users') / current_setting('block_size')::int as blocks,
          case when reltuples > 0 and relpages > 0 then reltuples / relpages else 50 end as "perBlock"
          from pg_class where oid = 'users'::regclass`.execute(q)
      ).rows[0]!;
      const step = Math.max(1, Math.floor(batchSize / Number(perBlock)));
      for (let from = 0; from < Number(blocks); from += step) ranges.push(sql<SqlBool>`u.ctid >= ${`(${from},0)`}::tid and u.ctid < ${`(${from + step},0)`}::tid`);
    }
    for (const range of ranges) {
      let query = q
        .selectFrom('users as u')
        .select(['u.id', 'u.email', 'u.display_name', 'u.organisation_id', 'u.policy_profile', 'u.status'])
        .where(range);
      if (filter.role) {
        const role = filter.role;
        query = query.where((eb) => eb.exists(eb.selectFrom('role_assignments as ra').select('ra.user_id').whereRef('ra.user_id', '=', 'u.id').where('ra.role_name', '=', role)));
      }
      const users = await query.execute();
      if (users.length === 0) continue;
      // This range's live exceptions (few: most ranges have none).
      const exceptionsOf = new Map<string, Array<{ requirement_id: string; until: string }>>();
      const pageExceptions = await q
        .selectFrom('policy_exceptions as e')
        .select(['e.user_id', 'e.requirement_id', 'e.until'])
        .where('e.revoked_at', 'is', null)
        .where('e.until', '>', at.toISOString())
        .where('e.user_id', 'in', q.selectFrom('users as u').select('u.id').where(range))
        .execute();
      for (const row of pageExceptions) {
        const list = exceptionsOf.get(row.user_id);
        if (list) list.push(row);
        else exceptionsOf.set(row.user_id, [row]);
      }
      // This range's users' applications, only when a requirement targets one.
      const applications = named ? await applicationsOf(q, at, named, q.selectFrom('users as u').select('u.id').where(range)) : null;
      // And their methods' models, only when a strength lists models.
      const pageModels = modelled ? await modelsOf(q, q.selectFrom('users as u').select('u.id').where(range)) : null;
      const page: ComplianceRow[] = [];
      for (const user of users) {
        if (user.status !== 'active') continue;
        const userExceptions = exceptionsOf.get(user.id);
        const common = sharedFor(
          user.policy_profile,
          userExceptions ? [...new Set(userExceptions.map((e) => e.requirement_id))].sort() : [],
          applications?.get(user.id) ?? [],
          pageModels?.get(user.id)?.models ?? [],
        );
        if (filter.onlyAtRisk && !common.atRisk) continue;
        const { evaluation, profile } = common;
        let { date, why } = common;
        if (userExceptions) {
          // An exemption's own end date (the combination's evaluation uses a stand-in).
          const until = (id: string) => userExceptions.filter((e) => e.requirement_id === id).reduce((latest, e) => (e.until > latest ? e.until : latest), '');
          const exempt = evaluation.requirements.filter((r) => r.state.state === 'exempt');
          if (evaluation.state.state === 'exempt') date = exempt.filter((r) => r.mode === 'enforce').map((r) => until(r.id)).sort()[0] ?? null;
          why = evaluation.requirements.filter((r) => r.state.state !== 'compliant').map((r) => describe(r, r.state.state === 'exempt' ? until(r.id) : stateDate(r.state)?.toISOString()));
        }
        page.push({
          email: user.email,
          name: user.display_name,
          organisation: organisations.get(user.organisation_id) ?? '',
          elevated: evaluation.subjectElevated,
          roles: profile.roles,
          groups: profile.groups,
          methods: profile.kinds,
          state: evaluation.state.state,
          date,
          why,
        });
      }
      if (page.length) yield page;
    }
  } finally {
    // Read only: ending it either way releases the snapshot and the connection.
    if (snapshot) await snapshot.rollback().execute();
  }
}

/** The same rows one at a time, for callers that want them so (what-if, tests). */
export async function* complianceRows(ctx: AppContext, filter: RowFilter = {}): AsyncGenerator<ComplianceRow> {
  for await (const page of compliancePages(ctx, filter)) yield* page;
}

/**
 * Today's snapshot of the counts (the dashboard's trend), of everyone and of each organisation: written
 * once a day by whichever node's housekeeping gets there first; false when today's was there already.
 */
export async function snapshotCompliance(ctx: AppContext, at: Date = ctx.clock()): Promise<boolean> {
  const db = ctx.store.database.db;
  const day = at.toISOString().slice(0, 10);
  if (await db.selectFrom('compliance_snapshots').select('day').where('day', '=', day).where('scope', '=', '*').executeTakeFirst()) return false;
  const organisations = await db.selectFrom('organisations').select('id').execute();
  const rows = [];
  for (const scope of ['*', ...organisations.map((o) => o.id)]) {
    const summary = await complianceSummary(ctx, at, scope === '*' ? undefined : [scope]);
    rows.push({ day, scope, counts: JSON.stringify({ users: summary.users, elevated: summary.elevated, withoutMethod: summary.withoutMethod }), created_at: at.toISOString() });
  }
  // Another node may have written today's meanwhile: its rows stand.
  const result = await db.insertInto('compliance_snapshots').values(rows).onConflict((oc) => oc.columns(['day', 'scope']).doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export interface TrendPoint {
  day: string;
  elevated: StateCounts;
  users: StateCounts;
}

/** The last `days` days' snapshots, summed over these organisations (or everyone's), oldest first. */
export async function complianceTrend(ctx: AppContext, organisations: readonly string[] | undefined, days = 30): Promise<TrendPoint[]> {
  const since = new Date(ctx.clock().getTime() - days * 86_400_000).toISOString().slice(0, 10);
  const scopes = organisations ?? ['*'];
  if (scopes.length === 0) return [];
  const rows = await ctx.store.database.db.selectFrom('compliance_snapshots').select(['day', 'counts']).where('scope', 'in', scopes).where('day', '>=', since).orderBy('day').execute();
  const byDay = new Map<string, TrendPoint>();
  for (const row of rows) {
    const counts = JSON.parse(row.counts) as { users: StateCounts; elevated: StateCounts };
    const point = byDay.get(row.day) ?? { day: row.day, users: emptyCounts(), elevated: emptyCounts() };
    for (const which of ['users', 'elevated'] as const) {
      point[which].total += counts[which].total;
      for (const state of STATE_NAMES) point[which].byState[state] += counts[which].byState[state] ?? 0;
    }
    byDay.set(row.day, point);
  }
  return [...byDay.values()];
}

/**
 * Who is in one compliance state, for a search (the admin console's users, issue #15 point 3): the
 * profiles whose users are in `state` (each evaluated once), and — since exceptions, applications and
 * method models can move a person out of their profile's state — the few people whose own state was
 * worked out one by one: `included` (in `state` whatever their profile says) and `excluded` (their
 * profile is, they are not). A user matches when (profile in profiles and id not in excluded) or id in included.
 */
export async function stateSelector(
  ctx: AppContext,
  state: StateName,
  candidates: readonly string[],
  organisations: readonly string[] | null,
  at: Date = ctx.clock(),
): Promise<{ profiles: string[]; included: string[]; excluded: string[] }> {
  const db = ctx.store.database.db;
  const { evaluator, policy } = await evaluatorFor(ctx, at);
  const none = { exceptions: [] as string[], applications: [] as string[], models: [] as string[] };
  const profiles = candidates.filter((p) => evaluator.evaluate({ ...parseProfile(p), ...none }).state.state === state);
  const matching = new Set(profiles);
  const candidateSet = new Set(candidates);
  const inScope = (query: ReturnType<typeof activeUsers>) => (organisations ? query.where('u.organisation_id', 'in', organisations.length ? organisations : ['\u0000none']) : query);
  const activeUsers = () => db.selectFrom('users as u').select('u.id').where('u.status', '=', 'active');
  // The people whose state may not be their profile's: live exceptions, users of the applications a
  // requirement names, and holders of methods whose model a strength lists.
  const special = new Map<string, { profile: string; exceptions: string[]; applications: string[]; models: string[] }>();
  const entry = (userId: string, profile: string) => {
    let e = special.get(userId);
    if (!e) special.set(userId, (e = { profile, exceptions: [], applications: [], models: [] }));
    return e;
  };
  for (const row of await liveExceptions(db, at, organisations ? (organisations.length ? organisations : ['\u0000none']) : null)) {
    const e = entry(row.user_id, row.profile);
    if (!e.exceptions.includes(row.requirement_id)) e.exceptions.push(row.requirement_id);
  }
  if (listsModels(policy)) for (const [userId, m] of await modelsOf(db, undefined, organisations)) entry(userId, m.profile).models = m.models;
  const named = hasApplicationRequirements(policy) ? new Set(namedApplications(policy)) : null;
  if (named) {
    const users = inScope(activeUsers()).where('u.id', 'in', liveGrants(db, at).select('g.account_id'));
    const used = await applicationsOf(db, at, named, users);
    const profilesOf = used.size ? await db.selectFrom('users').select(['id', 'policy_profile']).where('id', 'in', [...used.keys()]).execute() : [];
    for (const row of profilesOf) entry(row.id, row.policy_profile).applications = used.get(row.id) ?? [];
  }
  const included: string[] = [];
  const excluded: string[] = [];
  for (const [userId, e] of special) {
    if (!candidateSet.has(e.profile)) continue;
    const own = evaluator.evaluate({ ...parseProfile(e.profile), exceptions: [...e.exceptions].sort(), applications: e.applications, models: e.models }).state.state;
    if (own === state && !matching.has(e.profile)) included.push(userId);
    if (own !== state && matching.has(e.profile)) excluded.push(userId);
  }
  return { profiles, included, excluded };
}

/** The compliance state of each of a few users (a page of a search): their profile, exceptions, applications and models. */
export async function statesOf(ctx: AppContext, users: ReadonlyArray<{ id: string; profile: string }>, at: Date = ctx.clock()): Promise<Map<string, StateName>> {
  if (users.length === 0) return new Map();
  const db = ctx.store.database.db;
  const { evaluator, policy } = await evaluatorFor(ctx, at);
  const ids = users.map((u) => u.id);
  const exceptions = await db
    .selectFrom('policy_exceptions')
    .select(['user_id', 'requirement_id'])
    .where('user_id', 'in', ids)
    .where('revoked_at', 'is', null)
    .where('until', '>', at.toISOString())
    .execute();
  const named = hasApplicationRequirements(policy) ? new Set(namedApplications(policy)) : null;
  const applications = named ? await applicationsOf(db, at, named, ids) : new Map<string, string[]>();
  const models = listsModels(policy) ? await modelsOf(db, db.selectFrom('users').select('id').where('id', 'in', ids)) : new Map<string, { models: string[] }>();
  return new Map(
    users.map((u) => {
      const own = [...new Set(exceptions.filter((e) => e.user_id === u.id).map((e) => e.requirement_id))].sort();
      const evaluation = evaluator.evaluate({ ...parseProfile(u.profile), exceptions: own, applications: applications.get(u.id) ?? [], models: models.get(u.id)?.models ?? [] });
      return [u.id, evaluation.state.state];
    }),
  );
}
