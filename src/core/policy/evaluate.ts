/**
 * Pure evaluation of the method policy for one user at one moment:
 * `evaluatePolicy(subject, policy, now)` → the methods allowed at sign-in, the method to prompt, the
 * session a sign-in would open (full, restricted to registering, or refused), the compliance state of
 * every requirement and overall, the interrupts due after sign-in, and named reasons.
 *
 * All requirements that apply to a user hold at once (intersection). A requirement restricts sign-in
 * only in `enforce` mode and from its effective date; before it, the user is told and nudged. After the
 * date, a user whose registered methods are all too weak may use them, during grace, for a session that
 * can only register a compliant method; after grace only a Temporary Access Pass opens that door. The
 * session itself is decided by the named checks of `session.ts`; someone with a registered method never
 * gets one from the password alone, even when the policy enables none of their methods (issue #12).
 */
import { methodDefinitions, orderMethods, type MethodSummary, type SecondFactorKind } from '../methods/registry.js';
import type { PolicyReason } from '../reasons.js';
import { meetsRequirement, type CompiledCampaign, type CompiledPolicy, type CompiledRequirement, type TargetSet } from './document.js';
import { decideSession, type SessionDecision } from './session.js';
import { appliesToApplications, isClientTarget } from './applications.js';

export type { SessionDecision } from './session.js';

export interface PolicySubject {
  roles: readonly string[];
  /** Holds any role marked elevated. */
  elevated: boolean;
  groups: readonly string[];
  /** Active second-factor methods. */
  registered: readonly MethodSummary[];
  defaultMethodId: string | null;
  hasActiveTap: boolean;
  exceptions: ReadonlyArray<{ requirementId: string; until: Date }>;
  snoozes: ReadonlyArray<{ campaignId: string; count: number; until: Date | null }>;
  /**
   * The applications (client policy keys) the evaluation is for: the sign-in's client at the interaction,
   * or the clients the person uses in the report (./applications.ts). Absent: a sign-in to Portcullis
   * itself, which requirements targeting applications do not reach.
   */
  applications?: readonly string[];
}

export type ComplianceState =
  | { state: 'compliant' }
  | { state: 'exempt'; until: Date }
  | { state: 'action-needed'; by: Date }
  | { state: 'in-grace'; until: Date }
  | { state: 'non-compliant'; since: Date };

/** Order of concern: later is worse. The state of a fixed subject only moves forward as time passes. */
export const STATE_RANK: Record<ComplianceState['state'], number> = { compliant: 0, exempt: 1, 'action-needed': 1, 'in-grace': 2, 'non-compliant': 3 };

export interface RequirementResult {
  id: string;
  name: string;
  type: 'requirement' | 'registration';
  mode: 'enforce' | 'report-only';
  strength: string | null;
  state: ComplianceState;
}

export type Interrupt =
  /** "Set it up now" / "Remind me later": a campaign's nudge, with the deadline it is for. */
  | { kind: 'campaign'; campaignId: string; method: SecondFactorKind; deadline: Date | null; snoozesLeft: number }
  /** The campaign's snoozes ran out: registration is required now, even before the date. */
  | { kind: 'campaign-required'; campaignId: string; method: SecondFactorKind; deadline: Date | null }
  /** No second method yet: nudged before the registration date. */
  | { kind: 'register-first'; deadline: Date | null };

export interface Evaluation {
  /** Methods the methods policy enables for this user (TAP included). */
  enabled: ReadonlySet<string>;
  /** Second-factor kinds allowed for a full session now: enabled ∩ every enforced requirement in effect. */
  allowed: ReadonlySet<SecondFactorKind>;
  /** The user's registered methods that may be used to sign in now (for the decided session). */
  usable: MethodSummary[];
  /** The method to prompt: the default if usable, otherwise the strongest usable (system-preferred). */
  prompt: MethodSummary | null;
  decision: SessionDecision;
  requirements: RequirementResult[];
  /** The worst state among enforced requirements. */
  state: ComplianceState;
  /** The earliest date an enforced requirement not yet met comes into force, if any. */
  deadline: Date | null;
  interrupts: Interrupt[];
  /** Named, stable reasons for the decision, for logs and reports. */
  reasons: string[];
  pushNumberDigits: number | null;
  tapEnabled: boolean;
  tapFullSession: boolean;
}

export function matchesTarget(target: string, subject: Pick<PolicySubject, 'roles' | 'groups' | 'elevated'>): boolean {
  if (target === 'all') return true;
  if (target === 'elevated') return subject.elevated;
  if (target.startsWith('role:')) return subject.roles.includes(target.slice(5));
  if (target.startsWith('group:')) return subject.groups.includes(target.slice(6));
  return false;
}

/**
 * Included by some target and excluded by none: the set's user part. A set whose include holds only
 * `client:` targets has no user part and selects everyone (its client part is `appliesToApplications`).
 */
export function appliesTo(set: TargetSet, subject: Pick<PolicySubject, 'roles' | 'groups' | 'elevated'>): boolean {
  const people = set.include.filter((t) => !isClientTarget(t));
  return (people.length === 0 || people.some((t) => matchesTarget(t, subject))) && !set.exclude.some((t) => matchesTarget(t, subject));
}

/** The methods the methods policy enables for a subject. */
export function enabledMethods(policy: CompiledPolicy, subject: Pick<PolicySubject, 'roles' | 'groups' | 'elevated'>): Set<string> {
  const enabled = new Set<string>();
  for (const [kind, entry] of Object.entries(policy.methods)) if (entry?.enabled && appliesTo(entry, subject)) enabled.add(kind);
  return enabled;
}

function requirementState(requirement: CompiledRequirement, compliant: boolean, exemptUntil: Date | null, now: Date): ComplianceState {
  if (compliant) return { state: 'compliant' };
  if (exemptUntil && exemptUntil.getTime() > now.getTime()) return { state: 'exempt', until: exemptUntil };
  if (now.getTime() < requirement.effective.getTime()) return { state: 'action-needed', by: requirement.effective };
  if (now.getTime() < requirement.graceUntil.getTime()) return { state: 'in-grace', until: requirement.graceUntil };
  return { state: 'non-compliant', since: requirement.graceUntil };
}

function worst(states: readonly ComplianceState[]): ComplianceState {
  return states.reduce<ComplianceState>((w, s) => (STATE_RANK[s.state] > STATE_RANK[w.state] ? s : w), { state: 'compliant' });
}

function pushDigits(policy: CompiledPolicy, subject: PolicySubject): number | null {
  const push = policy.methods.push;
  if (!push) return null;
  const override = push.numberDigitsTargets.find((t) => appliesTo(t, subject));
  return override?.numberDigits ?? push.numberDigits;
}

export function evaluatePolicy(subject: PolicySubject, policy: CompiledPolicy, now: Date): Evaluation {
  const t = now.getTime();
  const reasons: string[] = [];
  const enabled = enabledMethods(policy, subject);
  const enabledKinds = new Set([...enabled].filter((k): k is SecondFactorKind => k !== 'tap' && k in methodDefinitions) as SecondFactorKind[]);
  const registeredEnabled = subject.registered.filter((m) => enabledKinds.has(m.kind));
  for (const m of subject.registered) if (!enabledKinds.has(m.kind)) reasons.push(`method-not-enabled:${m.kind}`);
  const exemptUntil = (id: string): Date | null => {
    const live = subject.exceptions.filter((e) => e.requirementId === id && e.until.getTime() > t);
    return live.length ? new Date(Math.max(...live.map((e) => e.until.getTime()))) : null;
  };

  // Requirements: each one's state, and which restrict sign-in now.
  const results: RequirementResult[] = [];
  const applicable = policy.requirements.filter((r) => appliesTo(r, subject) && appliesToApplications(r, subject.applications));
  const restricting: CompiledRequirement[] = [];
  let allowed = new Set(enabledKinds);
  for (const requirement of applicable) {
    const compliant = registeredEnabled.some((m) => meetsRequirement(requirement, m));
    const exempt = exemptUntil(requirement.id);
    const state = requirementState(requirement, compliant, exempt, now);
    results.push({ id: requirement.id, name: requirement.name, type: 'requirement', mode: requirement.mode, strength: requirement.strength, state });
    if (state.state === 'exempt') reasons.push(`exempt:${requirement.id}`);
    if (requirement.mode === 'enforce' && t >= requirement.effective.getTime() && !(exempt && exempt.getTime() > t)) {
      restricting.push(requirement);
      allowed = new Set([...allowed].filter((k) => requirement.methods.has(k)));
    }
    if (requirement.mode === 'report-only' && state.state !== 'compliant') reasons.push(`report-only:${requirement.id}`);
  }

  // The registration requirement: at least one second method by a date.
  const registrations = policy.registration.filter((r) => appliesTo(r, subject));
  for (const registration of registrations) {
    const compliant = registeredEnabled.length > 0;
    const exempt = exemptUntil(registration.id);
    const state: ComplianceState = compliant
      ? { state: 'compliant' }
      : exempt
        ? { state: 'exempt', until: exempt }
        : t < registration.by.getTime()
          ? { state: 'action-needed', by: registration.by }
          : { state: 'non-compliant', since: registration.by };
    if (state.state === 'exempt') reasons.push(`exempt:${registration.id}`);
    results.push({ id: registration.id, name: registration.name, type: 'registration', mode: registration.mode, strength: null, state });
  }

  const enforced = results.filter((r) => r.mode === 'enforce');
  const state = worst(enforced.map((r) => r.state));
  const deadlines = enforced.flatMap((r) => (r.state.state === 'action-needed' ? [r.state.by] : []));
  const deadline = deadlines.length ? new Date(Math.min(...deadlines.map((d) => d.getTime()))) : null;

  // The session a sign-in may open: one named check decides (session.ts).
  const outcome = decideSession({
    now,
    registered: subject.registered,
    registeredEnabled,
    allowed,
    restricting,
    enforced: applicable.filter((r) => r.mode === 'enforce').map((requirement) => ({ requirement, exemptUntil: exemptUntil(requirement.id) })),
    registrationDue: registrations.some((r) => r.mode === 'enforce' && t >= r.by.getTime() && !exemptUntil(r.id)),
  });
  let decision: SessionDecision = outcome.decision;
  const usable = outcome.usable;
  reasons.push(...outcome.reasons);

  // Interrupts after a full sign-in: campaign nudges, and the nudge to register a first method.
  const interrupts: Interrupt[] = [];
  if (decision.session === 'full') {
    for (const campaign of policy.campaigns.filter((c) => appliesTo(c, subject))) {
      const interrupt = campaignInterrupt(campaign, subject, applicable, registeredEnabled, now);
      if (interrupt) interrupts.push(interrupt);
    }
    if (registeredEnabled.length === 0) {
      const upcoming = registrations.filter((r) => t < r.by.getTime()).map((r) => r.by.getTime());
      interrupts.push({ kind: 'register-first', deadline: upcoming.length ? new Date(Math.min(...upcoming)) : null });
    }
    // A campaign whose snoozes ran out requires registration now: the sign-in opens Security info only.
    if (interrupts.some((i) => i.kind === 'campaign-required')) {
      decision = { session: 'registration-only', because: 'campaign' };
      reasons.push('campaign-snoozes-used' satisfies PolicyReason);
    }
  }

  return {
    enabled,
    allowed,
    usable,
    prompt: orderMethods(usable, subject.defaultMethodId)[0] ?? null,
    decision,
    requirements: results,
    state,
    deadline,
    interrupts,
    reasons,
    pushNumberDigits: pushDigits(policy, subject),
    tapEnabled: enabled.has('tap'),
    tapFullSession: policy.methods.tap?.fullSession ?? false,
  };
}

function campaignInterrupt(
  campaign: CompiledCampaign,
  subject: PolicySubject,
  applicable: readonly CompiledRequirement[],
  registered: readonly MethodSummary[],
  now: Date,
): Interrupt | null {
  // Done when the user has the target method or one at least as strong.
  const target = methodDefinitions[campaign.method].strength;
  if (registered.some((m) => methodDefinitions[m.kind].strength >= target)) return null;
  const related = applicable.filter((r) => r.mode === 'enforce' && r.methods.has(campaign.method)).map((r) => r.effective.getTime());
  const deadline = related.length ? new Date(Math.min(...related)) : null;
  const snooze = subject.snoozes.find((s) => s.campaignId === campaign.id);
  const count = snooze?.count ?? 0;
  if (count >= campaign.maxSnoozes) return { kind: 'campaign-required', campaignId: campaign.id, method: campaign.method, deadline };
  if (snooze?.until && snooze.until.getTime() > now.getTime()) return null;
  return { kind: 'campaign', campaignId: campaign.id, method: campaign.method, deadline, snoozesLeft: campaign.maxSnoozes - count };
}
