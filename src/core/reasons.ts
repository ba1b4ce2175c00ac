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
] as const;

export type SignInReason = (typeof signInReasons)[number];
