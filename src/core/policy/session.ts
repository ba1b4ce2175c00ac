/**
 * The session a sign-in may open under the method policy, as a table of named checks (in the manner of
 * node oidc-provider's prompts): each check says whether it decides, and if so the session, the
 * registered methods that may be used for it, and its reasons from the catalogue (`core/reasons.ts`).
 * The checks' conditions do not overlap and together cover everyone — each is about what the person has
 * registered — so their order is only the order a reader takes them in (no first-match surprises).
 *
 * The rule the table keeps (issue #12): someone with a registered second method always faces a second
 * factor. NIST SP 800-63B-4 §6.1.2.1 binds a new authenticator only under an existing one, so a person
 * whose methods the policy no longer enables uses them — during grace — to open a session that can only
 * set up an allowed method; after grace only a Temporary Access Pass opens that door. Never the password
 * alone, and never the registration grant, which is for people with no method at all.
 */
import type { MethodSummary, SecondFactorKind } from '../methods/registry.js';
import type { PolicyReason } from '../reasons.js';
import { meetsRequirement, type CompiledRequirement } from './document.js';

export type SessionDecision =
  /** Sign in with one of `usable` for a full session. */
  | { session: 'full' }
  /** Only a session limited to Security info, to register a compliant method. */
  | { session: 'registration-only'; because: 'in-grace' | 'registration-due' | 'campaign' }
  /**
   * Every registered method is one the methods policy does not enable for them: it may still be used,
   * until `until` (null: no requirement's grace ends it), for a session that can only set up an allowed one.
   */
  | { session: 'registration-only'; because: 'methods-not-enabled'; until: Date | null }
  /** No usable method and no bootstrap but a Temporary Access Pass. */
  | { session: 'tap-only' };

/** What the checks look at, worked out once by the evaluator. */
export interface SessionFacts {
  now: Date;
  /** Every active second method of the person, enabled by the policy or not. */
  registered: readonly MethodSummary[];
  /** Of those, the ones the methods policy enables for them. */
  registeredEnabled: readonly MethodSummary[];
  /** Kinds allowed for a full session now. */
  allowed: ReadonlySet<SecondFactorKind>;
  /** Enforced requirements that apply to them, are not exempted, and are in effect now. */
  restricting: readonly CompiledRequirement[];
  /**
   * Enforced requirements that apply to them, in effect or not yet, with the end of a live exception
   * from each (it holds the requirement's dates off until then).
   */
  enforced: ReadonlyArray<{ requirement: CompiledRequirement; exemptUntil: Date | null }>;
  /** An enforced registration requirement's date has passed (and no exception covers it). */
  registrationDue: boolean;
}

export interface SessionOutcome {
  decision: SessionDecision;
  usable: MethodSummary[];
  /** Catalogued reasons, and the per-requirement `in-grace:ID` / `non-compliant:ID` ones. */
  reasons: Array<PolicyReason | `in-grace:${string}` | `non-compliant:${string}`>;
}

export interface SessionCheck {
  name: string;
  /** The outcome when this check decides, or null when it does not apply. */
  decide(facts: SessionFacts): SessionOutcome | null;
}

/**
 * When a requirement stops letting methods it does not accept open even a restricted session: its date
 * when its bootstrap allows nothing during grace, the end of its grace when only after, else never.
 */
export function bootstrapEnds(requirement: CompiledRequirement): Date | null {
  if (requirement.bootstrap.duringGrace === 'tap-only') return requirement.effective;
  if (requirement.bootstrap.afterGrace === 'tap-only') return requirement.graceUntil;
  return null;
}

/** The earliest end among the requirements (an exception moves one's end to its own), or null for none. */
function earliestEnd(enforced: SessionFacts['enforced']): Date | null {
  const ends = enforced.flatMap(({ requirement, exemptUntil }) => {
    const end = bootstrapEnds(requirement);
    if (!end) return [];
    return [exemptUntil ? Math.max(end.getTime(), exemptUntil.getTime()) : end.getTime()];
  });
  return ends.length ? new Date(Math.min(...ends)) : null;
}

/** Every registered method is turned off for them: the person issue #12 is about. */
export function onlyDisabledMethods(registered: readonly { kind: string }[], enabled: ReadonlySet<string>): boolean {
  return registered.length > 0 && registered.every((m) => !enabled.has(m.kind));
}

/**
 * A registered method that may open a full session: its kind allowed now, and its model one that every
 * requirement in force listing models for that kind accepts (a strength's model list, issue #14).
 */
function allowedMethod(f: Pick<SessionFacts, 'allowed' | 'restricting'>, m: MethodSummary): boolean {
  return f.allowed.has(m.kind) && f.restricting.every((r) => !r.models[m.kind] || meetsRequirement(r, m));
}

const allowedMethodRegistered: SessionCheck = {
  name: 'allowed-method-registered',
  decide(f) {
    const usable = f.registeredEnabled.filter((m) => allowedMethod(f, m));
    return usable.length ? { decision: { session: 'full' }, usable, reasons: [] } : null;
  },
};

const registeredMethodsTooWeak: SessionCheck = {
  name: 'registered-methods-too-weak',
  decide(f) {
    // Enabled methods, all too weak for a requirement in force: its bootstrap rule decides.
    if (f.registeredEnabled.length === 0 || f.registeredEnabled.some((m) => allowedMethod(f, m))) return null;
    const t = f.now.getTime();
    const unmet = f.restricting.filter((r) => !f.registeredEnabled.some((m) => meetsRequirement(r, m)));
    const reasons: SessionOutcome['reasons'] = unmet.map((r) => (t < r.graceUntil.getTime() ? (`in-grace:${r.id}` as const) : (`non-compliant:${r.id}` as const)));
    const tapOnly = unmet.some((r) => (t < r.graceUntil.getTime() ? r.bootstrap.duringGrace : r.bootstrap.afterGrace) === 'tap-only');
    if (tapOnly) return { decision: { session: 'tap-only' }, usable: [], reasons };
    return { decision: { session: 'registration-only', because: 'in-grace' }, usable: [...f.registeredEnabled], reasons };
  },
};

const registeredMethodsNotEnabled: SessionCheck = {
  name: 'registered-methods-not-enabled',
  decide(f) {
    if (f.registered.length === 0 || f.registeredEnabled.length > 0) return null;
    // The grace is each enforced requirement's own, in effect or still ahead: before its date (and
    // through its grace when its bootstrap allows), the method they have is their only way to prove it
    // is them. With no requirement to end it, there is no date after which it stops.
    const until = earliestEnd(f.enforced);
    if (until && f.now.getTime() >= until.getTime()) {
      return { decision: { session: 'tap-only' }, usable: [], reasons: ['registered-methods-not-enabled', 'bootstrap-needs-tap'] };
    }
    return {
      decision: { session: 'registration-only', because: 'methods-not-enabled', until },
      usable: [...f.registered],
      reasons: ['registered-methods-not-enabled', 'bootstrap-with-disabled-method'],
    };
  },
};

const noMethodRegistered: SessionCheck = {
  name: 'no-method-registered',
  decide(f) {
    // No second method at all: the registration requirement decides, and any requirement past grace.
    if (f.registered.length > 0) return null;
    const t = f.now.getTime();
    const pastGrace = f.restricting.some((r) => t >= r.graceUntil.getTime() && r.bootstrap.afterGrace === 'tap-only');
    const decision: SessionDecision = pastGrace
      ? { session: 'tap-only' }
      : f.registrationDue || f.restricting.length > 0
        ? { session: 'registration-only', because: 'registration-due' }
        : { session: 'full' };
    return { decision, usable: [], reasons: ['no-method-registered'] };
  },
};

export const SESSION_CHECKS: readonly SessionCheck[] = [allowedMethodRegistered, registeredMethodsTooWeak, registeredMethodsNotEnabled, noMethodRegistered];

/** The one check that decides, with its name. */
export function decideSession(facts: SessionFacts): SessionOutcome & { check: string } {
  for (const check of SESSION_CHECKS) {
    const outcome = check.decide(facts);
    if (outcome) return { ...outcome, check: check.name };
  }
  // Unreachable (the checks cover every case; a property test holds them to it): failing loudly beats
  // a silent default that might open a session.
  throw new Error('no session check decided');
}
