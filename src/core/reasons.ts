/**
 * Reasons: named, stable codes for why a decision was taken. The audit log, the sign-in log, metrics
 * and admin reports show them; pages translate them. Never rename one: add a new one.
 */
export const signInReasons = [
  'success',
  'password-incorrect',
  'unknown-account',
  'no-password-set',
  'account-disabled',
  'throttled-account',
  'throttled-ip',
  // Second factors (the sign-in log's "code incorrect", "code expired", "too many attempts", "throttled")
  'code-incorrect',
  'code-reused',
  'code-expired',
  'too-many-attempts',
  'throttled',
  // Push, in the spirit of Microsoft's sign-in log ("MFA denied; user declined", …)
  'push-denied',
  'push-timeout',
  'push-fraud-reported',
  'push-wrong-number',
  'push-refused',
  // Method policy
  'policy-needs-tap',
  // Another attempt for the same address or user was still being checked (issue #12)
  'attempt-in-progress',
] as const;

export type SignInReason = (typeof signInReasons)[number];

/** The sign-in log's words for a reason (Microsoft Entra's where it has them). */
export const signInReasonText: Record<SignInReason, string> = {
  success: 'Success',
  'password-incorrect': 'Password incorrect',
  'unknown-account': 'Unknown account',
  'no-password-set': 'No password set yet',
  'account-disabled': 'Account turned off',
  'throttled-account': 'Throttled: too many attempts for this address',
  'throttled-ip': 'Throttled: too many attempts from this client',
  'code-incorrect': 'Code incorrect',
  'code-reused': 'Code already used',
  'code-expired': 'Code expired',
  'too-many-attempts': 'Too many attempts',
  throttled: 'Throttled',
  'push-denied': 'MFA denied; user declined',
  'push-timeout': 'MFA denied; no response',
  'push-fraud-reported': 'MFA denied; fraud reported',
  'push-wrong-number': 'MFA denied; wrong number',
  'push-refused': 'MFA denied; push not sent (limits)',
  'policy-needs-tap': 'Blocked by method policy; needs a Temporary Access Pass',
  'attempt-in-progress': 'Throttled: another attempt was still being checked',
};

/**
 * Why the method policy decided the session a sign-in may open (`Evaluation.reasons`, beside the
 * per-requirement ones such as `in-grace:ID`). Each names one check of `src/core/policy/session.ts`.
 */
export const policyReasons = [
  'no-method-registered',
  'campaign-snoozes-used',
  // Issue #12: every registered method is one the methods policy no longer enables for the person.
  'registered-methods-not-enabled',
  'bootstrap-with-disabled-method',
  'bootstrap-needs-tap',
] as const;

export type PolicyReason = (typeof policyReasons)[number];

export const policyReasonText: Record<PolicyReason, string> = {
  'no-method-registered': 'No second method registered',
  'campaign-snoozes-used': 'Every “Remind me later” used: registration required now',
  'registered-methods-not-enabled': 'Every registered method is turned off for them by the methods policy',
  'bootstrap-with-disabled-method': 'A method turned off for them opens only a session to set up an allowed one, until grace ends',
  'bootstrap-needs-tap': 'Every registered method is turned off for them and grace has ended: only a Temporary Access Pass',
};

