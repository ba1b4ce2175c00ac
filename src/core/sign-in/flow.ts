/**
 * The sign-in flow as a state machine: `reduceSignIn(state, event, now) → { state, effects, error }`.
 * Identifier first (email, then password); later steps (second factor, policy interrupts) are further
 * states. The server performs the effects: it verifies passwords, counts failures, writes audit events
 * and starts sessions, and feeds results back in as events. The flow's `returnTo` says who asked for
 * the sign-in (a page here, or later an OpenID Connect interaction) and receives the result.
 *
 * No user enumeration (OWASP ASVS 5 V6.3.8, NIST SP 800-63B §5.2.2): any well-formed email address
 * moves on to the password step; an unknown address still costs one password verification and gets
 * the same error, status and pages as a wrong password.
 */
import type { AuditEvent } from '../audit.js';
import { isValidEmail, normaliseEmail } from '../email.js';
import type { ErrorCode, ErrorParams } from '../errors.js';
import type { MethodUse } from '../methods.js';
import type { SignInReason } from '../reasons.js';
import type { SessionRestriction } from '../session.js';
import type { ThrottleAssessment } from '../throttle.js';
import { describeDuration } from '../duration.js';

export type SignInState =
  | { step: 'identify'; returnTo: string }
  | { step: 'password'; email: string; returnTo: string }
  | { step: 'complete'; userId: string; methods: MethodUse[]; restricted: SessionRestriction | null; returnTo: string };

export interface AccountSnapshot {
  id: string;
  email: string;
  status: 'active' | 'disabled';
  hasPassword: boolean;
}

export type SignInEvent =
  | { type: 'email-submitted'; email: string }
  | { type: 'change-email' }
  /** The password form was posted; `throttle` is the current assessment for this address and client. */
  | { type: 'password-submitted'; passwordGiven: boolean; throttle: ThrottleAssessment }
  /**
   * The server verified the password (against the account's hash, or against a dummy hash when there
   * is no account or no password, so the cost is the same).
   */
  | { type: 'password-verified'; account: AccountSnapshot | null; passwordCorrect: boolean; needsRehash: boolean };

export type SignInEffect =
  | { type: 'verify-password'; email: string }
  | { type: 'record-password-failure'; email: string }
  | { type: 'clear-password-failures'; email: string }
  | { type: 'rehash-password'; userId: string }
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

const unchanged = (state: SignInState, error: SignInError | null = null, effects: SignInEffect[] = []): SignInResult => ({
  state,
  effects,
  error,
});

function failure(
  state: Extract<SignInState, { step: 'password' }>,
  reason: SignInReason,
  now: Date,
  account: AccountSnapshot | null,
  extra: SignInEffect[] = [],
): SignInEffect[] {
  return [
    ...extra,
    {
      type: 'audit',
      event: {
        type: 'sign-in.failed',
        at: now,
        actor: account ? { kind: 'user', userId: account.id } : { kind: 'anonymous' },
        subjectUserId: account?.id ?? null,
        details: { email: state.email, reason, method: 'password' },
      },
    },
    { type: 'count-sign-in', reason },
  ];
}

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
          return unchanged(
            state,
            { code: 'sign-in-throttled', params: { wait: describeDuration(retryAfterSeconds) }, field: 'password', retryAfterSeconds },
            failure(state, reason, now, null),
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
          failure(state, reason, now, account, [{ type: 'record-password-failure', email: state.email }]),
        );
      }
      // The password is right, so saying the account is off reveals nothing to someone without it.
      if (account.status !== 'active') {
        return unchanged(
          state,
          { code: 'account-disabled', params: {} },
          failure(state, 'account-disabled', now, account, [{ type: 'clear-password-failures', email: state.email }]),
        );
      }
      const at = now.toISOString();
      const effects: SignInEffect[] = [{ type: 'clear-password-failures', email: state.email }];
      if (event.needsRehash) effects.push({ type: 'rehash-password', userId: account.id });
      effects.push(
        {
          type: 'audit',
          event: {
            type: 'sign-in.succeeded',
            at: now,
            actor: { kind: 'user', userId: account.id },
            subjectUserId: account.id,
            details: { methods: ['password'] },
          },
        },
        { type: 'count-sign-in', reason: 'success' },
      );
      return unchanged(
        { step: 'complete', userId: account.id, methods: [{ method: 'password', at }], restricted: null, returnTo: state.returnTo },
        null,
        effects,
      );
    }

    case 'complete':
      return unchanged(state);
  }
}
