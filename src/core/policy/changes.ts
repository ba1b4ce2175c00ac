/**
 * What the method policy says about a person's own changes on Security info, decided by the same
 * evaluator sign-in uses (no second reading of the policy that could drift):
 *
 * - which methods they may add (those the methods policy enables for them), and, in a restricted
 *   session, which of those would lift the restriction;
 * - whether a method may be their default (not one the policy disallows now);
 * - whether a method may be deleted (not the last one that meets an enforced requirement).
 *
 * Reasons are plain sentences for the page, naming the requirement and its date.
 */
import { methodDefinitions, secondFactorKinds, type MethodSummary, type SecondFactorKind } from '../methods/registry.js';
import { formatDay } from './dates.js';
import { ANY_LISTED_MODEL, type CompiledPolicy } from './document.js';
import { evaluatePolicy, type Evaluation, type PolicySubject } from './evaluate.js';

/** The kinds a person can set up themselves from Security info in this build. */
export const SELF_SERVICE_KINDS: readonly SecondFactorKind[] = secondFactorKinds.filter((k) => methodDefinitions[k].selfService);

const CANDIDATE_ID = '\u0000candidate';

function withMethod(subject: PolicySubject, kind: SecondFactorKind): PolicySubject {
  return { ...subject, registered: [...subject.registered, { id: CANDIDATE_ID, kind, detail: '', model: ANY_LISTED_MODEL }] };
}

export interface Registrable {
  /** Kinds the methods policy enables for this person, strongest first. */
  enabled: SecondFactorKind[];
  /** Of those, the kinds whose registration would open a full session at sign-in (lifting a restriction). */
  liftsRestriction: SecondFactorKind[];
  /** Of those, the kinds that would meet every enforced requirement, now and on its date. */
  meetsAll: SecondFactorKind[];
}

export function registrableKinds(subject: PolicySubject, policy: CompiledPolicy, now: Date): Registrable {
  const current = evaluatePolicy(subject, policy, now);
  const enabled = SELF_SERVICE_KINDS.filter((k) => current.enabled.has(k)).sort((a, b) => methodDefinitions[b].strength - methodDefinitions[a].strength);
  const liftsRestriction: SecondFactorKind[] = [];
  const meetsAll: SecondFactorKind[] = [];
  for (const kind of enabled) {
    // A backup (recovery codes) is never the method to set up: it is added beside another.
    if (methodDefinitions[kind].backupOnly) continue;
    const after = evaluatePolicy(withMethod(subject, kind), policy, now);
    if (after.decision.session !== 'full') continue;
    liftsRestriction.push(kind);
    // An exception is not the method meeting the requirement: it ends, and then only a compliant kind will do.
    if (after.requirements.every((r) => r.mode !== 'enforce' || r.state.state === 'compliant')) meetsAll.push(kind);
  }
  return { enabled, liftsRestriction, meetsAll };
}

/** Why a method may not be the default now, or null when it may. */
export function defaultRefusal(evaluation: Evaluation, policy: CompiledPolicy, method: MethodSummary, now: Date): string | null {
  if (!evaluation.enabled.has(method.kind)) return 'Your organisation does not allow this method for your role.';
  if (evaluation.allowed.has(method.kind)) return null;
  const requirement = policy.requirements.find(
    // Only a requirement that restricts this person now: one they are exempt from does not.
    (r) =>
      r.mode === 'enforce' &&
      now.getTime() >= r.effective.getTime() &&
      !r.methods.has(method.kind) &&
      evaluation.requirements.some((x) => x.id === r.id && x.state.state !== 'exempt'),
  );
  if (!requirement) return 'Your organisation does not allow this method for your role.';
  return `${requirement.name}, from ${formatDay(requirement.effective, policy.timeZone)}.`;
}

/** Why a method may not be deleted (it is the last one meeting an enforced requirement), or null when it may. */
export function deletionRefusal(subject: PolicySubject, policy: CompiledPolicy, methodId: string, now: Date): string | null {
  const before = evaluatePolicy(subject, policy, now);
  const after = evaluatePolicy({ ...subject, registered: subject.registered.filter((m) => m.id !== methodId) }, policy, now);
  for (const result of before.requirements) {
    if (result.mode !== 'enforce' || result.state.state !== 'compliant') continue;
    const later = after.requirements.find((r) => r.id === result.id);
    if (later && later.state.state !== 'compliant' && later.state.state !== 'exempt') {
      const date =
        result.type === 'requirement'
          ? policy.requirements.find((r) => r.id === result.id)?.effective
          : policy.registration.find((r) => r.id === result.id)?.by;
      return `It is your only sign-in method that meets “${result.name}”${date ? ` (from ${formatDay(date, policy.timeZone)})` : ''}. Add another one that does first.`;
    }
  }
  return null;
}

export function phraseFor(kinds: readonly SecondFactorKind[]): string {
  const phrases = [...new Set(kinds.map((k) => methodDefinitions[k].phrase))];
  if (phrases.length <= 1) return phrases[0] ?? 'another sign-in method';
  return `${phrases.slice(0, -1).join(', ')} or ${phrases.at(-1)}`;
}

/** Where a person stands with the policy, in words for the Security info banner and the sign-in interrupt. */
export interface Standing {
  tone: 'required' | 'due' | 'info';
  heading: string;
  body: string[];
  steps: readonly string[];
  /** The kinds to set up, strongest first. */
  needed: SecondFactorKind[];
}

export function describeStanding(input: {
  evaluation: Evaluation;
  policy: CompiledPolicy;
  registrable: Registrable;
  /** This session is restricted to registration. */
  restricted: boolean;
  now: Date;
}): Standing | null {
  const { evaluation, policy, registrable, restricted } = input;
  const day = (d: Date) => formatDay(d, policy.timeZone);
  const needed = (restricted ? registrable.liftsRestriction : registrable.meetsAll).length
    ? restricted
      ? registrable.liftsRestriction
      : registrable.meetsAll
    : registrable.enabled.filter((k) => !methodDefinitions[k].backupOnly);
  const preferred = registrable.meetsAll.find((k) => needed.includes(k)) ?? needed[0];
  const steps = (preferred && methodDefinitions[preferred].setUpSteps) ?? [];
  const pending = evaluation.requirements.filter((r) => r.mode === 'enforce' && r.state.state !== 'compliant' && r.state.state !== 'exempt');
  const requirement = pending.find((r) => r.type === 'requirement') ?? pending[0];
  const compiled = requirement ? policy.requirements.find((r) => r.id === requirement.id) : undefined;
  const registration = requirement ? policy.registration.find((r) => r.id === requirement.id) : undefined;
  const campaign = evaluation.interrupts.find((i) => i.kind === 'campaign-required' || i.kind === 'campaign');

  if (restricted) {
    const body: string[] = [];
    const decision = evaluation.decision;
    if (decision.session === 'registration-only' && decision.because === 'methods-not-enabled') {
      // Issue #12: what they have is no longer allowed, whatever any requirement's date says.
      const kinds = [...new Set(evaluation.usable.map((m) => m.kind))];
      const it = new Set(kinds.map((k) => methodDefinitions[k].phrase)).size > 1 ? 'them' : 'it';
      body.push(`Your organisation no longer lets you sign in with ${phraseFor(kinds)}.`);
      body.push(
        decision.until
          ? `Until ${day(decision.until)} you can sign in with ${it}, but only to set up a new way to sign in.`
          : `You can still sign in with ${it}, but only to set up a new way to sign in.`,
      );
    } else if (compiled && requirement?.state.state === 'in-grace') {
      body.push(`${compiled.name}, from ${day(compiled.effective)}.`);
      body.push(`Until ${day(requirement.state.until)} you can sign in with your current method, but only to set up a new one.`);
    } else if (compiled) {
      body.push(`${compiled.name}, from ${day(compiled.effective)}.`);
      body.push('Until you set it up, you can only use this page.');
    } else if (campaign && campaign.kind === 'campaign-required') {
      body.push(`Your organisation asks everyone in your role to use ${phraseFor([campaign.method])}${campaign.deadline ? ` by ${day(campaign.deadline)}` : ''}, and you have used all your reminders.`);
    } else if (registration) {
      body.push(`Your organisation has required a second way to sign in since ${day(registration.by)}.`);
    } else {
      body.push('You signed in with a Temporary Access Pass. It lets you set up a sign-in method for yourself.');
    }
    return { tone: 'required', heading: `Set up ${phraseFor(needed)} to finish signing in`, body, steps, needed };
  }
  if (requirement?.state.state === 'action-needed' && compiled) {
    const weaker = [...new Set(evaluation.usable.map((m) => m.kind))].filter((k) => !compiled.methods.has(k));
    return {
      tone: 'due',
      heading: `Set up ${phraseFor(needed)} by ${day(compiled.effective)}`,
      body: [
        `${compiled.name}, from ${day(compiled.effective)}.`,
        weaker.length ? `After that date you will not be able to sign in with ${phraseFor(weaker)}.` : 'After that date you will need it to sign in.',
      ],
      steps,
      needed,
    };
  }
  if (requirement?.state.state === 'action-needed' && registration) {
    return {
      tone: 'due',
      heading: `Set up a second way to sign in by ${day(registration.by)}`,
      body: ['Your organisation requires everyone to have a second way to sign in, so that someone who learns your password still cannot get into your account.'],
      steps,
      needed,
    };
  }
  if (campaign) {
    return {
      tone: 'info',
      heading: `Move to ${phraseFor([campaign.method])}`,
      body: [`Your organisation asks everyone in your role to use ${phraseFor([campaign.method])}${campaign.deadline ? ` by ${day(campaign.deadline)}` : ' as soon as possible'}.`],
      steps: methodDefinitions[campaign.method].setUpSteps.length ? methodDefinitions[campaign.method].setUpSteps : steps,
      needed: [campaign.method],
    };
  }
  const exempt = evaluation.requirements.find((r) => r.state.state === 'exempt');
  if (exempt && exempt.state.state === 'exempt') {
    return { tone: 'info', heading: `You have an exception until ${day(exempt.state.until)}`, body: [`It is for “${exempt.name}”. Set up ${phraseFor(needed)} before it ends.`], steps, needed };
  }
  return null;
}
