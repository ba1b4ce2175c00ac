/**
 * The method policy at work: the current version (cached, and dropped on every node when a new one is
 * applied), each user's evaluation by the pure core, applying and checking documents, exceptions,
 * campaign snoozes, and the checks that keep Security info and directory changes within the policy.
 */
import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import type { Actor } from '../core/audit.js';
import { PortcullisError } from '../core/errors.js';
import { compilePolicy, meetsRequirement, type CompiledPolicy, type PolicyProblem } from '../core/policy/document.js';
import { appliesTo, evaluatePolicy, type Evaluation, type PolicySubject } from '../core/policy/evaluate.js';
import { parseProfile } from '../core/policy/profile.js';
import { countStranded, type StrandedCount } from '../core/policy/stranded.js';
import { unsatisfiable, validatePolicy, type DirectoryShape } from '../core/policy/validate.js';
import { activeProfileCounts } from '../store/repositories/policy-profile.js';
import type { MethodRow, UserRow } from '../store/schema.js';
import type { PolicyFacts } from '../store/repositories/policy.js';
import { methodDefinitions, type MethodSummary, type SecondFactorKind } from '../core/methods/registry.js';
import { defaultRefusal, deletionRefusal, describeStanding, phraseFor, registrableKinds, type Registrable, type Standing } from '../core/policy/changes.js';
import { TAP_OPTION, type SignInPolicy } from '../core/sign-in/flow.js';
import { methodMeetsAcr } from '../core/oidc/acr.js';
import type { AppContext } from './context.js';
import { methodSummaries, summarise } from './methods/index.js';

/** With no policy applied, every built method is enabled for everyone and nothing is required. */
export const DEFAULT_POLICY_DOCUMENT = {
  version: 1,
  methods: {
    sms: { enabled: true },
    voice: { enabled: true },
    totp: { enabled: true },
    push: { enabled: true },
    tap: { enabled: true },
  },
};

const CACHE_MS = 30_000;
export const POLICY_TOPIC = 'policy:applied';

interface CachedPolicy {
  version: number;
  policy: CompiledPolicy;
  loadedAt: number;
}

/** `generation` counts the `policy:applied` events seen, so that a load begun before one is not kept after it. */
const caches = new WeakMap<AppContext, { current: CachedPolicy | null; subscribed: boolean; generation: number }>();

function compiledOrThrow(input: unknown): CompiledPolicy {
  const result = compilePolicy(input);
  if (!result.ok) throw new PortcullisError('policy-invalid', { problems: result.problems.map((p) => `${p.path}: ${p.message}`).join('; ') });
  return result.policy;
}

/** Reads YAML or JSON (YAML is a superset of JSON). */
export function readPolicyText(text: string): unknown {
  try {
    return parseYaml(text, { maxAliasCount: 50 });
  } catch (error) {
    throw new PortcullisError('policy-invalid', { problems: `not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}` });
  }
}

export async function currentPolicy(ctx: AppContext): Promise<{ version: number; policy: CompiledPolicy }> {
  let cache = caches.get(ctx);
  if (!cache) {
    cache = { current: null, subscribed: false, generation: 0 };
    caches.set(ctx, cache);
  }
  if (!cache.subscribed) {
    cache.subscribed = true;
    const entry = cache;
    ctx.bus.subscribe(POLICY_TOPIC, () => {
      entry.generation += 1;
      entry.current = null;
    });
  }
  const now = Date.now();
  if (cache.current && now - cache.current.loadedAt < CACHE_MS) return cache.current;
  const generation = cache.generation;
  const latest = await ctx.store.policy.latest();
  const policy = latest ? compiledOrThrow(readPolicyText(latest.document)) : compiledOrThrow(DEFAULT_POLICY_DOCUMENT);
  const loaded = { version: latest?.version ?? 0, policy, loadedAt: now };
  // A version applied while this load was reading may be newer than what it read: not kept.
  if (cache.generation === generation) cache.current = loaded;
  return loaded;
}

export async function directoryShape(ctx: AppContext): Promise<DirectoryShape> {
  const [roles, groups, clients] = await Promise.all([
    ctx.store.roles.list(),
    ctx.store.database.db.selectFrom('groups').select('name').execute(),
    ctx.store.database.db.selectFrom('oidc_clients').select('key').execute(),
  ]);
  return { roles: roles.map((r) => ({ name: r.name, elevated: r.elevated })), groups: groups.map((g) => g.name), clients: clients.map((c) => c.key) };
}

export interface PolicyCheck {
  ok: boolean;
  problems: PolicyProblem[];
  policy?: CompiledPolicy;
  /**
   * Active people whose registered methods the document would all turn off (issue #12): not a problem
   * with the document, but applying it needs the operator's say-so (`--allow-stranded`).
   */
  stranded?: StrandedCount;
}

/**
 * Who a compiled document would strand, from the users counted per policy profile (one GROUP BY, then
 * each distinct profile once in the core: ADR 0006), not user by user.
 */
export async function strandedBy(ctx: AppContext, policy: CompiledPolicy, shape: DirectoryShape): Promise<StrandedCount> {
  const elevated = new Set(shape.roles.filter((r) => r.elevated).map((r) => r.name));
  const profiles = await activeProfileCounts(ctx.store.database.db);
  return countStranded(policy, profiles.map((p) => ({ profile: parseProfile(p.profile), users: p.users })), elevated);
}

/** Parses, compiles and checks a policy against the directory as it is now, and counts whom it would strand. */
export async function checkPolicyText(ctx: AppContext, text: string): Promise<PolicyCheck> {
  let value: unknown;
  try {
    value = readPolicyText(text);
  } catch (error) {
    return { ok: false, problems: [{ path: '', message: (error as PortcullisError).params.problems as string }] };
  }
  const compiled = compilePolicy(value);
  if (!compiled.ok) return { ok: false, problems: compiled.problems };
  const shape = await directoryShape(ctx);
  const problems = validatePolicy(compiled.policy, shape);
  return { ok: problems.length === 0, problems, policy: compiled.policy, stranded: await strandedBy(ctx, compiled.policy, shape) };
}

/** "2 people (helpdesk 2, user 2)": a stranded count in a sentence. */
export function describeStranded(stranded: StrandedCount): string {
  return `${stranded.total} ${stranded.total === 1 ? 'person' : 'people'} (${stranded.byRole.map((r) => `${r.role} ${r.people}`).join(', ')})`;
}

/**
 * Applies a document as the next version. One that would strand people (every method they registered
 * turned off for them) is refused unless `allowStranded` says the operator knows (issue #12).
 */
export async function applyPolicyText(ctx: AppContext, text: string, actor: Actor, comment = '', options: { allowStranded?: boolean } = {}): Promise<{ version: number }> {
  const check = await checkPolicyText(ctx, text);
  if (!check.ok) throw new PortcullisError('policy-invalid', { problems: check.problems.map((p) => `${p.path ? `${p.path}: ` : ''}${p.message}`).join('; ') });
  if (check.stranded && check.stranded.total > 0 && !options.allowStranded) throw new PortcullisError('policy-strands-people', { people: describeStranded(check.stranded) });
  const now = ctx.clock();
  const version = await ctx.store.transaction(async (repos) => {
    const v = await repos.policy.insertVersion({ document: text, appliedBy: actorName(actor), now, comment });
    await repos.audit.append({ type: 'policy.applied', at: now, actor, subjectUserId: null, ip: null, details: { version: v, comment } });
    return v;
  });
  await ctx.bus.publish(POLICY_TOPIC, String(version));
  const cache = caches.get(ctx);
  if (cache) {
    cache.generation += 1;
    cache.current = null;
  }
  return { version };
}

export function actorName(actor: Actor): string {
  switch (actor.kind) {
    case 'user':
      return `user:${actor.userId}`;
    case 'cli':
      return `cli:${actor.name}`;
    default:
      return actor.kind;
  }
}

/** Everything the core needs to know about a user to evaluate the policy. */
export async function subjectFor(
  ctx: AppContext,
  user: UserRow,
  overrides: { roles?: string[]; groups?: string[]; registered?: MethodSummary[]; facts?: PolicyFacts } = {},
): Promise<PolicySubject> {
  const now = ctx.clock();
  const [facts, registered, roles] = await Promise.all([
    overrides.facts ?? ctx.store.policy.facts(user.id, now),
    overrides.registered ?? methodSummaries(ctx, user.id),
    overrides.roles ? ctx.store.roles.list() : Promise.resolve([]),
  ]);
  const { pass } = facts;
  const roleNames = overrides.roles ?? [...new Set(facts.roles.map((a) => a.role))];
  const elevated = overrides.roles ? overrides.roles.some((r) => roles.find((x) => x.name === r)?.elevated) : facts.roles.some((a) => a.elevated);
  return {
    roles: roleNames,
    elevated,
    groups: overrides.groups ?? facts.groups,
    registered,
    defaultMethodId: user.default_method_id,
    hasActiveTap: Boolean(pass && Date.parse(pass.expiresAt) > now.getTime() && (pass.multiUse || pass.usedAt === null)),
    exceptions: facts.exceptions.map((e) => ({ requirementId: e.requirementId, until: new Date(e.until) })),
    snoozes: facts.snoozes.map((s) => ({ campaignId: s.campaignId, count: s.count, until: s.until ? new Date(s.until) : null })),
  };
}

export async function evaluateUser(
  ctx: AppContext,
  user: UserRow,
  options: { at?: Date; registered?: MethodSummary[]; facts?: PolicyFacts } = {},
): Promise<Evaluation & { subject: PolicySubject; policy: CompiledPolicy }> {
  const { policy } = await currentPolicy(ctx);
  const subject = await subjectFor(ctx, user, { ...(options.registered ? { registered: options.registered } : {}), ...(options.facts ? { facts: options.facts } : {}) });
  return { ...evaluatePolicy(subject, policy, options.at ?? ctx.clock()), subject, policy };
}

/**
 * What a sign-in (or a step-up, or a reset) may offer this user now: the methods the policy allows,
 * the session they open, and whether a live Temporary Access Pass is offered first.
 */
export async function signInPolicy(
  ctx: AppContext,
  user: UserRow,
  rows?: readonly MethodRow[],
  facts?: PolicyFacts,
): Promise<{ usable: MethodSummary[]; policy: SignInPolicy; evaluation: Evaluation }> {
  const evaluation = await evaluateUser(ctx, user, { ...(rows ? { registered: summarise(rows) } : {}), ...(facts ? { facts } : {}) });
  return {
    usable: evaluation.usable,
    policy: {
      session: evaluation.decision.session,
      tap: evaluation.tapEnabled && evaluation.subject.hasActiveTap,
      tapFullSession: evaluation.tapFullSession,
      campaignDue: evaluation.interrupts.some((interrupt) => interrupt.kind === 'campaign'),
      hasRegisteredMethod: evaluation.subject.registered.length > 0,
    },
    evaluation,
  };
}

/** The options a step-up or a reset offers: the allowed methods, then a live pass (never first: it may be one-time). */
/**
 * The methods a step-up offers. With `acr` (an application asked for that class, docs/oidc.md), only those
 * that reach it — a push for `…:app-push` — when the person has any; otherwise all of them.
 */
export function stepUpOptions(allowed: { usable: MethodSummary[]; policy: SignInPolicy }, includePass: boolean, acr?: unknown): MethodSummary[] {
  const all = [...allowed.usable, ...(includePass && allowed.policy.tap ? [TAP_OPTION] : [])];
  if (typeof acr !== 'string') return all;
  const reaching = all.filter((method) => methodMeetsAcr(method.kind, acr));
  return reaching.length ? reaching : all;
}

/**
 * A role or group change that would leave the user unable to satisfy the policy is refused (the same
 * check `policy check` runs over every combination).
 */
export async function assertDirectoryChangeKeepsPolicy(ctx: AppContext, user: UserRow, change: { roles?: string[]; groups?: string[] }): Promise<void> {
  const { policy } = await currentPolicy(ctx);
  const subject = await subjectFor(ctx, user, change);
  const problems = unsatisfiable(policy, subject);
  if (problems.length) throw new PortcullisError('policy-unsatisfiable', { email: user.email, problems: problems.join('; ') });
}

// ── Exceptions ──────────────────────────────────────────────────────────────────────────────────────

/** A lost phone gets 24 hours; an approved exception at most 180 days. */
export const EXCEPTION_MAX_DAYS = 180;

export async function addException(
  ctx: AppContext,
  input: { email: string; requirementId: string; until: Date; reason: string },
  actor: Actor,
): Promise<{ id: string }> {
  const user = await ctx.store.users.findByEmail(input.email);
  if (!user) throw new PortcullisError('user-not-found', { email: input.email });
  const { policy } = await currentPolicy(ctx);
  if (!policy.requirements.some((r) => r.id === input.requirementId) && !policy.registration.some((r) => r.id === input.requirementId)) {
    throw new PortcullisError('requirement-not-found', { id: input.requirementId });
  }
  const now = ctx.clock();
  if (input.until.getTime() <= now.getTime()) throw new PortcullisError('exception-until-invalid', { max: EXCEPTION_MAX_DAYS });
  if (input.until.getTime() > now.getTime() + EXCEPTION_MAX_DAYS * 86_400_000) throw new PortcullisError('exception-until-invalid', { max: EXCEPTION_MAX_DAYS });
  if (input.reason.trim().length < 3) throw new PortcullisError('exception-reason-missing');
  const id = randomUUID();
  await ctx.store.transaction(async (repos) => {
    await repos.policy.insertException({
      id,
      user_id: user.id,
      requirement_id: input.requirementId,
      until: input.until.toISOString(),
      reason: input.reason.trim(),
      created_by: actorName(actor),
      created_at: now.toISOString(),
    });
    await repos.audit.append({
      type: 'policy.exception-added',
      at: now,
      actor,
      subjectUserId: user.id,
      ip: null,
      details: { exceptionId: id, requirementId: input.requirementId, until: input.until.toISOString(), reason: input.reason.trim() },
    });
  });
  return { id };
}

export async function revokeException(ctx: AppContext, id: string, actor: Actor): Promise<void> {
  const now = ctx.clock();
  await ctx.store.transaction(async (repos) => {
    const row = await repos.policy.revokeException(id, actorName(actor), now);
    if (!row) throw new PortcullisError('exception-not-found', { id });
    await repos.audit.append({ type: 'policy.exception-revoked', at: now, actor, subjectUserId: row.user_id, ip: null, details: { exceptionId: id, requirementId: row.requirement_id } });
  });
}

/** "Remind me later": the campaign waits `snoozeDays`, and one snooze is used. */
export async function snoozeCampaign(ctx: AppContext, user: UserRow, campaignId: string): Promise<boolean> {
  const { policy } = await currentPolicy(ctx);
  const campaign = policy.campaigns.find((c) => c.id === campaignId);
  if (!campaign) return false;
  const snoozes = await ctx.store.policy.snoozes(user.id);
  if ((snoozes.find((s) => s.campaign_id === campaignId)?.count ?? 0) >= campaign.maxSnoozes) return false;
  const now = ctx.clock();
  await ctx.store.policy.snooze(user.id, campaignId, new Date(now.getTime() + campaign.snoozeDays * 86_400_000));
  await ctx.store.audit.append({ type: 'policy.campaign-snoozed', at: now, actor: { kind: 'user', userId: user.id }, subjectUserId: user.id, ip: null, details: { campaignId } });
  return true;
}

// ── Security info within the policy ─────────────────────────────────────────────────────────────────

/** What this person may set up now, and which of it would lift a restricted session or meet everything. */
export async function registrableFor(ctx: AppContext, user: UserRow): Promise<Registrable> {
  const { policy } = await currentPolicy(ctx);
  return registrableKinds(await subjectFor(ctx, user), policy, ctx.clock());
}

/**
 * Refuses setting up a method the policy does not enable for this person, or, in a session restricted
 * to registration, one that would not lift the restriction (it would not help them sign in).
 */
export async function assertMayRegister(ctx: AppContext, user: UserRow, restricted: boolean, kind: SecondFactorKind): Promise<void> {
  const registrable = await registrableFor(ctx, user);
  const name = methodDefinitions[kind].name;
  if (!registrable.enabled.includes(kind)) throw new PortcullisError('method-not-enabled', { method: name });
  if (restricted && !registrable.liftsRestriction.includes(kind)) {
    throw new PortcullisError('method-not-compliant', { method: name, needed: phraseFor(registrable.liftsRestriction) });
  }
}

export async function assertMayBeDefault(ctx: AppContext, user: UserRow, method: MethodSummary, label: string): Promise<void> {
  const evaluation = await evaluateUser(ctx, user);
  const reason = defaultRefusal(evaluation, evaluation.policy, method, ctx.clock());
  if (reason) throw new PortcullisError('method-not-allowed', { method: label, reason });
}

/** Why deleting this method would break the person's compliance, or null. */
export async function deletionRefusalFor(ctx: AppContext, user: UserRow, methodId: string): Promise<string | null> {
  const { policy } = await currentPolicy(ctx);
  return deletionRefusal(await subjectFor(ctx, user), policy, methodId, ctx.clock());
}

/** Where this person stands with the policy, in words, for Security info and the sign-in interrupt. */
export async function standingFor(ctx: AppContext, user: UserRow, restricted: boolean): Promise<{ standing: Standing | null; evaluation: Evaluation; registrable: Registrable }> {
  const evaluation = await evaluateUser(ctx, user);
  const registrable = registrableKinds(evaluation.subject, evaluation.policy, ctx.clock());
  return { standing: describeStanding({ evaluation, policy: evaluation.policy, registrable, restricted, now: ctx.clock() }), evaluation, registrable };
}

/**
 * Why a new method of this model may not be added, or null: a requirement that applies to the person
 * lists the models that count for its strength (issue #14: only certain security keys for global
 * administrators), and this one is not among them.
 */
export async function modelRefusal(ctx: AppContext, user: UserRow, kind: SecondFactorKind, model: string | null): Promise<string | null> {
  const { policy } = await currentPolicy(ctx);
  const subject = await subjectFor(ctx, user);
  const refusing = policy.requirements.filter((r) => r.mode === 'enforce' && appliesTo(r, subject) && r.models[kind] && !meetsRequirement(r, { kind, model }));
  if (refusing.length === 0) return null;
  return refusing.map((r) => r.name).join('; ');
}
