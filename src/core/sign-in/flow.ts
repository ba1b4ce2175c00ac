/**
 * The sign-in flow as a state machine: `reduceSignIn(state, event, now) → { state, effects, error }`.
 * Identifier first (email, then password), then a second factor when the user has one; later steps
 * (policy interrupts) are further states. The server performs the effects: it verifies passwords and
 * codes, starts challenges, counts failures, writes audit events and starts sessions, and feeds results
 * back in as events. The flow's `returnTo` says who asked for the sign-in (a page here, or later an
 * OpenID Connect interaction) and receives the result.
 *
 * A step-up is the same machine started at the second-factor step for someone already signed in.
 *
 * No user enumeration (OWASP ASVS 5 V6.3.8, NIST SP 800-63B §5.2.2): any well-formed email address
 * moves on to the password step; an unknown address still costs one password verification and gets
 * the same error, status and pages as a wrong password.
 */
import type { AuditEvent } from '../audit.js';
import { describeDuration } from '../duration.js';
import { isValidEmail, normaliseEmail } from '../email.js';
import type { ErrorCode, ErrorParams } from '../errors.js';
import type { MethodUse } from '../methods.js';
import { methodDefinitions, methodToPrompt, orderMethods, type MethodSummary, type SecondFactorKind } from '../methods/registry.js';
import type { SignInReason } from '../reasons.js';
import type { SessionRestriction } from '../session.js';
import type { ThrottleAssessment } from '../throttle.js';

/**
 * sign-in: ends in a new session. step-up: adds a second factor to the current session.
 * reset: "Forgot your password?" — an emailed code, then a second factor, then a new password; never a
 * session (a reset must never bypass MFA).
 */
export type SignInPurpose = 'sign-in' | 'step-up' | 'reset';

/** The second-factor challenge in progress: which method, and the challenge the server started (if any). */
export interface CurrentChallenge {
  methodId: string;
  kind: SecondFactorKind;
  challengeId: string | null;
}

export type SignInState =
  | { step: 'identify'; returnTo: string }
  | { step: 'password'; email: string; returnTo: string }
  | {
      step: 'second-factor';
      purpose: SignInPurpose;
      userId: string;
      email: string;
      methods: MethodUse[];
      /**
       * The methods to offer, in order: a live Temporary Access Pass first, then the user's methods the
       * policy allows for this sign-in (default first, then strongest).
       */
      options: MethodSummary[];
      current: CurrentChallenge;
      /** The session a method in `options` opens (a pass decides its own: see `tapFullSession`). */
      restricted?: SessionRestriction | null;
      /** The policy lets a Temporary Access Pass open a full session (onboarding). */
      tapFullSession?: boolean;
      /** A campaign of the policy is due for this person: its interrupt follows the sign-in. */
      campaignDue?: boolean;
      returnTo: string;
    }
  /** Reset: a code went to the address's mailbox (if it has an account; the pages are the same if not). */
  | { step: 'reset-email-code'; email: string; challengeId: string; returnTo: string }
  /** Reset: the emailed code and a second factor were right; a new password may be set. */
  | { step: 'reset-new-password'; userId: string; email: string; returnTo: string }
  | {
      step: 'complete';
      purpose: SignInPurpose;
      userId: string;
      methods: MethodUse[];
      restricted: SessionRestriction | null;
      /** The user has no second method: offer to set one up (skippable for now). */
      offerRegistration: boolean;
      /** A campaign of the policy is due: "Set it up now" or "Remind me later" before going on. */
      campaignDue?: boolean;
      returnTo: string;
    };

export interface AccountSnapshot {
  id: string;
  email: string;
  status: 'active' | 'disabled';
  hasPassword: boolean;
  /** Active second-factor methods the method policy allows for this sign-in. */
  secondFactors: MethodSummary[];
  defaultMethodId: string | null;
  policy: SignInPolicy;
}

/** What the method policy decided for this sign-in (the server asks the core's `evaluatePolicy`). */
export interface SignInPolicy {
  /**
   * full: `secondFactors` open a full session. registration-only: they open a session restricted to
   * registering a compliant method. tap-only: only a Temporary Access Pass opens any session.
   */
  session: 'full' | 'registration-only' | 'tap-only';
  /** The user has a live Temporary Access Pass: it is offered first. */
  tap: boolean;
  /** A pass opens a full session (the policy's onboarding setting) rather than a restricted one. */
  tapFullSession: boolean;
  /**
   * A campaign asks this person to set up a method by a date and may be snoozed: its interrupt follows
   * the sign-in. Decided with the rest of the policy at the password, so finishing needs no second look.
   */
  campaignDue?: boolean;
  /**
   * The person has an active second method, whether or not the policy enables it: the password alone
   * never opens a session for them (issue #12; NIST SP 800-63B-4 §6.1.2.1).
   */
  hasRegisteredMethod?: boolean;
}

/** No method policy in the way: every active method opens a full session. */
export const UNRESTRICTED: SignInPolicy = { session: 'full', tap: false, tapFullSession: false };

/** The option a Temporary Access Pass takes in a sign-in's list of methods. */
export const TAP_OPTION: MethodSummary = { id: 'tap', kind: 'tap', detail: '' };

export type CodeVerification =
  | { ok: true }
  | {
      ok: false;
      reason:
        | 'code-format'
        | 'code-incorrect'
        | 'code-expired'
        | 'code-too-many-attempts'
        | 'code-reused'
        /** A push not answered yet: keep waiting, nothing failed. */
        | 'pending'
        | 'push-denied'
        | 'push-timeout'
        | 'push-fraud-reported'
        | 'push-wrong-number';
    };

export type SignInEvent =
  | { type: 'email-submitted'; email: string }
  | { type: 'change-email' }
  /** The password form was posted; `throttle` is the current assessment for this address and client. */
  | { type: 'password-submitted'; passwordGiven: boolean; throttle: ThrottleAssessment }
  /**
   * The server verified the password (against the account's hash, or against a dummy hash when there
   * is no account or no password, so the cost is the same).
   */
  | { type: 'password-verified'; account: AccountSnapshot | null; passwordCorrect: boolean; needsRehash: boolean }
  /** The server started a challenge for the current method (sent a code, or opened a push request). */
  | { type: 'challenge-started'; challengeId: string | null }
  /** Starting the challenge failed in an expected way (a quota was hit). */
  | { type: 'challenge-refused'; error: { code: ErrorCode; params: ErrorParams } }
  /** "Sign in another way": another of the user's methods. */
  | { type: 'method-chosen'; methodId: string }
  | { type: 'code-submitted'; codeGiven: boolean; throttle: ThrottleAssessment }
  | { type: 'code-verified'; result: CodeVerification }
  /** A challenge answered outside the form (push approval, passkey) — for the methods that come next. */
  | { type: 'challenge-completed'; challengeId: string }
  /**
   * Reset: the emailed code was checked. `account` is the user with their second factors, present only
   * when the code was right (an unknown address's code is never right).
   */
  | { type: 'reset-email-code-verified'; result: CodeVerification; account: { id: string; options: MethodSummary[]; defaultMethodId: string | null } | null };

export type SignInEffect =
  | { type: 'verify-password'; email: string }
  | { type: 'record-password-failure'; email: string }
  | { type: 'clear-password-failures'; email: string }
  | { type: 'rehash-password'; userId: string }
  | { type: 'begin-challenge'; userId: string; methodId: string; kind: SecondFactorKind }
  | { type: 'verify-code'; userId: string; methodId: string; kind: SecondFactorKind; challengeId: string | null }
  | { type: 'record-second-factor-failure'; userId: string }
  | { type: 'clear-second-factor-failures'; userId: string }
  | { type: 'audit'; event: Omit<AuditEvent, 'ip'> }
  | { type: 'count-sign-in'; reason: SignInReason };

export interface SignInError {
  code: ErrorCode;
  params: ErrorParams;
  /** The form field the error is about, for the error summary's link. */
  field?: string;
  retryAfterSeconds?: number;
}

export interface SignInResult {
  state: SignInState;
  effects: SignInEffect[];
  error: SignInError | null;
}

export function startSignIn(returnTo: string): SignInState {
  return { step: 'identify', returnTo };
}

/**
 * A step-up for a signed-in user: straight to the second factor, at the default method (or the
 * strongest). The caller starts its challenge with a `method-chosen` event for `current.methodId`, the
 * same event "Sign in another way" uses. Null when the user has no second method to step up with.
 */
export function startStepUp(input: {
  userId: string;
  email: string;
  options: MethodSummary[];
  defaultMethodId: string | null;
  methods: MethodUse[];
  returnTo: string;
}): Extract<SignInState, { step: 'second-factor' }> | null {
  const first = methodToPrompt(input.options, input.defaultMethodId);
  if (!first) return null;
  return {
    step: 'second-factor',
    purpose: 'step-up',
    userId: input.userId,
    email: input.email,
    methods: input.methods,
    options: orderMethods(input.options, input.defaultMethodId),
    current: { methodId: first.id, kind: first.kind, challengeId: null },
    returnTo: input.returnTo,
  };
}

const unchanged = (state: SignInState, error: SignInError | null = null, effects: SignInEffect[] = []): SignInResult => ({
  state,
  effects,
  error,
});

function failureEffects(
  input: { email: string; userId: string | null; method: 'password' | SecondFactorKind },
  reason: SignInReason,
  now: Date,
  extra: SignInEffect[] = [],
): SignInEffect[] {
  return [
    ...extra,
    {
      type: 'audit',
      event: {
        type: 'sign-in.failed',
        at: now,
        actor: input.userId ? { kind: 'user', userId: input.userId } : { kind: 'anonymous' },
        subjectUserId: input.userId,
        details: { email: input.email, reason, method: input.method },
      },
    },
    { type: 'count-sign-in', reason },
  ];
}

function complete(
  state: { purpose: SignInPurpose; userId: string; email: string; methods: MethodUse[]; returnTo: string },
  session: { restricted: SessionRestriction | null; offerRegistration: boolean; campaignDue: boolean },
  now: Date,
  extra: SignInEffect[],
): SignInResult {
  const { restricted, offerRegistration, campaignDue } = session;
  if (state.purpose === 'reset') {
    // Both factors are proven: the next step is the new password, not a session.
    return unchanged({ step: 'reset-new-password', userId: state.userId, email: state.email, returnTo: state.returnTo }, null, extra);
  }
  const effects: SignInEffect[] = [
    ...extra,
    {
      type: 'audit',
      event: {
        type: 'sign-in.succeeded',
        at: now,
        actor: { kind: 'user', userId: state.userId },
        subjectUserId: state.userId,
        details: { methods: state.methods.map((m) => m.method), purpose: state.purpose, ...(restricted ? { restricted } : {}) },
      },
    },
    { type: 'count-sign-in', reason: 'success' },
  ];
  return unchanged(
    {
      step: 'complete',
      purpose: state.purpose,
      userId: state.userId,
      methods: state.methods,
      restricted,
      offerRegistration,
      ...(campaignDue ? { campaignDue } : {}),
      returnTo: state.returnTo,
    },
    null,
    effects,
  );
}

/** The session a completed second factor opens: a pass decides its own; otherwise the policy's decision. */
function sessionAfter(state: Extract<SignInState, { step: 'second-factor' }>): SessionRestriction | null {
  if (state.current.kind === 'tap') return state.tapFullSession ? null : 'registration-only';
  return state.restricted ?? null;
}

/** The message shown for a failed verification: a reused code looks like any wrong one. */
export function errorForVerification(reason: Exclude<CodeVerification, { ok: true }>['reason']): ErrorCode {
  if (reason === 'pending') return 'push-not-approved-yet';
  return reason === 'code-reused' ? 'code-incorrect' : reason;
}

type FailedReason = Exclude<Exclude<CodeVerification, { ok: true }>['reason'], 'pending' | 'code-format'>;

const CODE_REASONS: Record<FailedReason, SignInReason> = {
  'code-incorrect': 'code-incorrect',
  'code-expired': 'code-expired',
  'code-too-many-attempts': 'too-many-attempts',
  'code-reused': 'code-reused',
  'push-denied': 'push-denied',
  'push-timeout': 'push-timeout',
  'push-fraud-reported': 'push-fraud-reported',
  'push-wrong-number': 'push-wrong-number',
};

/**
 * Failures the sign-in counts toward the second-factor lockout: wrong codes. Time-outs never count;
 * push denials, wrong numbers and reports are counted when the device answers (src/app/methods/push/decisions.ts), since
 * an attacker's own sign-in page would never report them.
 */
const COUNTED: ReadonlySet<FailedReason> = new Set(['code-incorrect', 'code-reused', 'code-too-many-attempts']);

export function reduceSignIn(state: SignInState, event: SignInEvent, now: Date): SignInResult {
  switch (state.step) {
    case 'identify': {
      if (event.type !== 'email-submitted') return unchanged(state);
      const email = event.email.trim();
      if (email === '') return unchanged(state, { code: 'email-missing', params: {}, field: 'email' });
      if (!isValidEmail(email)) return unchanged(state, { code: 'email-invalid', params: {}, field: 'email' });
      return unchanged({ step: 'password', email: normaliseEmail(email), returnTo: state.returnTo });
    }

    case 'password': {
      if (event.type === 'change-email') return unchanged(startSignIn(state.returnTo));
      if (event.type === 'password-submitted') {
        if (!event.passwordGiven) return unchanged(state, { code: 'password-missing', params: {}, field: 'password' });
        if (!event.throttle.allowed) {
          const { reason, retryAfterSeconds } = event.throttle;
          const code = reason === 'attempt-in-progress' ? 'attempt-in-progress' : 'sign-in-throttled';
          return unchanged(
            state,
            { code, params: { wait: describeDuration(retryAfterSeconds) }, field: 'password', retryAfterSeconds },
            failureEffects({ email: state.email, userId: null, method: 'password' }, reason, now),
          );
        }
        return unchanged(state, null, [{ type: 'verify-password', email: state.email }]);
      }
      if (event.type !== 'password-verified') return unchanged(state);

      const { account } = event;
      if (!account || !account.hasPassword || !event.passwordCorrect) {
        const reason: SignInReason = !account ? 'unknown-account' : !account.hasPassword ? 'no-password-set' : 'password-incorrect';
        return unchanged(
          state,
          { code: 'credentials-incorrect', params: {}, field: 'password' },
          failureEffects({ email: state.email, userId: account?.id ?? null, method: 'password' }, reason, now, [
            { type: 'record-password-failure', email: state.email },
          ]),
        );
      }
      // The password is right, so saying the account is off reveals nothing to someone without it.
      if (account.status !== 'active') {
        return unchanged(
          state,
          { code: 'account-disabled', params: {} },
          failureEffects({ email: state.email, userId: account.id, method: 'password' }, 'account-disabled', now, [
            { type: 'clear-password-failures', email: state.email },
          ]),
        );
      }
      const passwordEffects: SignInEffect[] = [{ type: 'clear-password-failures', email: state.email }];
      if (event.needsRehash) passwordEffects.push({ type: 'rehash-password', userId: account.id });
      const methods: MethodUse[] = [{ method: 'password', at: now.toISOString() }];
      const { policy } = account;
      // The policy's date has passed, and only a Temporary Access Pass opens the door now.
      if (policy.session === 'tap-only' && !policy.tap) {
        return unchanged(
          state,
          { code: 'policy-needs-tap', params: {} },
          failureEffects({ email: state.email, userId: account.id, method: 'password' }, 'policy-needs-tap', now, passwordEffects),
        );
      }
      const restricted: SessionRestriction | null = policy.session === 'full' ? null : 'registration-only';
      const options = [...(policy.tap ? [TAP_OPTION] : []), ...(policy.session === 'tap-only' ? [] : orderMethods(account.secondFactors, account.defaultMethodId))];
      const first = options[0];
      if (!first && policy.hasRegisteredMethod) {
        // A registered method the policy offers nothing for (the evaluator gives them their method or a
        // pass, so this guards a future change to it): refuse rather than let the password alone in.
        return unchanged(
          state,
          { code: 'policy-needs-tap', params: {} },
          failureEffects({ email: state.email, userId: account.id, method: 'password' }, 'policy-needs-tap', now, passwordEffects),
        );
      }
      if (!first) {
        // No second method: a session (restricted when registration is due) that may register a first one.
        return complete({ purpose: 'sign-in', userId: account.id, email: state.email, methods, returnTo: state.returnTo }, { restricted, offerRegistration: true, campaignDue: policy.campaignDue ?? false }, now, passwordEffects);
      }
      return unchanged(
        {
          step: 'second-factor',
          purpose: 'sign-in',
          userId: account.id,
          email: state.email,
          methods,
          options,
          current: { methodId: first.id, kind: first.kind, challengeId: null },
          restricted,
          tapFullSession: policy.tapFullSession,
          ...(policy.campaignDue ? { campaignDue: true } : {}),
          returnTo: state.returnTo,
        },
        null,
        [...passwordEffects, { type: 'begin-challenge', userId: account.id, methodId: first.id, kind: first.kind }],
      );
    }

    case 'second-factor': {
      switch (event.type) {
        case 'challenge-started':
          return unchanged({ ...state, current: { ...state.current, challengeId: event.challengeId } });
        case 'challenge-refused':
          return unchanged(state, { code: event.error.code, params: event.error.params });
        case 'method-chosen': {
          const chosen = state.options.find((m) => m.id === event.methodId);
          if (!chosen) return unchanged(state, { code: 'method-choice-missing', params: {}, field: 'method' });
          return unchanged({ ...state, current: { methodId: chosen.id, kind: chosen.kind, challengeId: null } }, null, [
            { type: 'begin-challenge', userId: state.userId, methodId: chosen.id, kind: chosen.kind },
          ]);
        }
        case 'code-submitted': {
          // An outside-event method (push) has no code to type: the form only asks "has it been approved?".
          const typed = methodDefinitions[state.current.kind].challengeStyle === 'code';
          if (typed && !event.codeGiven) return unchanged(state, { code: 'code-missing', params: {}, field: 'code' });
          if (!event.throttle.allowed) {
            const { reason, retryAfterSeconds } = event.throttle;
            const busy = reason === 'attempt-in-progress';
            return unchanged(
              state,
              { code: busy ? 'attempt-in-progress' : 'second-factor-throttled', params: { wait: describeDuration(retryAfterSeconds) }, field: 'code', retryAfterSeconds },
              failureEffects({ email: state.email, userId: state.userId, method: state.current.kind }, busy ? 'attempt-in-progress' : 'throttled', now),
            );
          }
          return unchanged(state, null, [
            { type: 'verify-code', userId: state.userId, methodId: state.current.methodId, kind: state.current.kind, challengeId: state.current.challengeId },
          ]);
        }
        case 'code-verified': {
          if (!event.result.ok) {
            const { reason } = event.result;
            // A push not answered yet is not a failure: the page keeps waiting.
            if (reason === 'pending') return unchanged(state, { code: 'push-not-approved-yet', params: {} });
            // Something that is not a code at all was never checked: bad input, refused with nothing
            // recorded (issue #12), like an empty field.
            if (reason === 'code-format') return unchanged(state, { code: 'code-format', params: { digits: 6 }, field: 'code' });
            const counts = COUNTED.has(reason);
            const field = reason.startsWith('push-') ? undefined : 'code';
            return unchanged(
              state,
              { code: errorForVerification(reason), params: {}, ...(field ? { field } : {}) },
              failureEffects(
                { email: state.email, userId: state.userId, method: state.current.kind },
                CODE_REASONS[reason],
                now,
                counts ? [{ type: 'record-second-factor-failure', userId: state.userId }] : [],
              ),
            );
          }
          return complete(
            { ...state, methods: [...state.methods, { method: state.current.kind, at: now.toISOString() }] },
            { restricted: sessionAfter(state), offerRegistration: false, campaignDue: state.campaignDue ?? false },
            now,
            [{ type: 'clear-second-factor-failures', userId: state.userId }],
          );
        }
        case 'challenge-completed': {
          if (event.challengeId !== state.current.challengeId) return unchanged(state);
          return complete(
            { ...state, methods: [...state.methods, { method: state.current.kind, at: now.toISOString() }] },
            { restricted: sessionAfter(state), offerRegistration: false, campaignDue: state.campaignDue ?? false },
            now,
            [{ type: 'clear-second-factor-failures', userId: state.userId }],
          );
        }
        default:
          return unchanged(state);
      }
    }

    case 'reset-email-code': {
      if (event.type !== 'reset-email-code-verified') return unchanged(state);
      if (!event.result.ok || !event.account) {
        const code = event.result.ok ? 'code-incorrect' : errorForVerification(event.result.reason);
        return unchanged(state, { code, params: code === 'code-format' ? { digits: 6 } : {}, field: 'code' });
      }
      const first = methodToPrompt(event.account.options, event.account.defaultMethodId);
      if (!first) return unchanged(state, { code: 'reset-needs-second-method', params: {} });
      return unchanged(
        {
          step: 'second-factor',
          purpose: 'reset',
          userId: event.account.id,
          email: state.email,
          methods: [{ method: 'email', at: now.toISOString() }],
          options: orderMethods(event.account.options, event.account.defaultMethodId),
          current: { methodId: first.id, kind: first.kind, challengeId: null },
          returnTo: state.returnTo,
        },
        null,
        [{ type: 'begin-challenge', userId: event.account.id, methodId: first.id, kind: first.kind }],
      );
    }

    case 'reset-new-password':
    case 'complete':
      return unchanged(state);
  }
}
