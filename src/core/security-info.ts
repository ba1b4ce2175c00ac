/**
 * Who may change what on Security info. Adding, removing or changing a method, the default or the
 * password is a change of authenticators, which NIST SP 800-63B §6.1.2.1 ("binding to an existing
 * subscriber") allows only after authenticating with an existing factor of the same strength: here,
 * a second factor used within the last `freshnessSeconds` (10 minutes by default). The one exception is
 * a user with no second method at all, right after their password: they may register their first one,
 * and are told by email that it happened.
 */
export type ChangeAccess =
  | { allowed: true; via: 'recent-second-factor' | 'registration-grant' }
  | { allowed: false; need: 'step-up' };

export interface ChangeAccessInput {
  action: 'add-method' | 'change';
  lastSecondFactorAt: Date | null;
  /** Every active second method, enabled by the policy or not: only someone with none has the grant (issue #12). */
  activeMethodCount: number;
  registrationGrantUntil: Date | null;
  now: Date;
  freshnessSeconds: number;
}

export function decideChangeAccess(input: ChangeAccessInput): ChangeAccess {
  const t = input.now.getTime();
  if (input.lastSecondFactorAt && t - input.lastSecondFactorAt.getTime() <= input.freshnessSeconds * 1000 && input.lastSecondFactorAt.getTime() <= t) {
    return { allowed: true, via: 'recent-second-factor' };
  }
  if (
    input.action === 'add-method' &&
    input.activeMethodCount === 0 &&
    input.registrationGrantUntil !== null &&
    t < input.registrationGrantUntil.getTime()
  ) {
    return { allowed: true, via: 'registration-grant' };
  }
  return { allowed: false, need: 'step-up' };
}
